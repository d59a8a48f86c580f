"""The task folders: every YAML indexes and its !function hooks resolve; READMEs carry the checklist;
every paper column points at a task the harness knows."""

from __future__ import annotations

from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parents[2] / "eval" / "tasks"
OURS = {
    "healthbench_500",
    "healthbench_full",
    "healthbench_hard",
    "healthbench_consensus",
    "healthbench_easy",
    "healthbench_meta_eval",
    "writingbench",
    "writingbench_en",
    "writingbench_zh",
    "creative_writing",
    "ifeval_local",
    "ifscale_10",
    "ifscale_50",
    "ifscale_100",
    "ifscale_250",
    "ifscale_500",
    "ifscale",
    "rubicon_writing",
    "rubicon_reasoning",
    "rubicon_general",
    "self_rewarding",
}


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS))


def test_every_task_and_group_is_indexed(task_manager):
    missing = OURS - set(task_manager.all_tasks)
    assert not missing


@pytest.mark.parametrize("path", sorted(TASKS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(TASKS)))
def test_yaml_hooks_resolve(path):
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(path, resolve_func=True)
    for key in ("custom_dataset", "process_results", "class"):
        if key in cfg:
            assert callable(cfg[key]), f"{path}: {key}"
    for m in cfg.get("metric_list", []):
        agg = m.get("aggregation")
        assert agg is None or isinstance(agg, str) or callable(agg), f"{path}: {m}"


@pytest.mark.parametrize(
    "folder", sorted(p for p in TASKS.iterdir() if p.is_dir() and not p.name.startswith("_")), ids=lambda p: p.name
)
def test_readme_has_checklist_or_table(folder):
    text = (folder / "README.md").read_text()
    assert "## Changelog" in text
    if folder.name != "paper_suites":
        assert "## Checklist" in text and "## Metrics" in text


def test_paper_table_columns_name_known_tasks(task_manager):
    """Every paper column mapped to one of our tasks (eval/paper_tables/*.yaml) names a task the harness loads."""
    from rubricrl.report.paper_tables import load_paper_tables

    for table in load_paper_tables():
        for col in table.columns:
            if col.key == "Avg":
                continue  # an average of other columns, never a task
            if not col.ours:
                assert col.metric_note, f"{table.id}/{col.key}: a column without a task says why"
            for ref in col.ours:
                assert ref.task in task_manager.all_tasks, f"{table.id}/{col.key}: {ref.task}"
                assert "," in ref.metric and ref.factor in (1, 100)
