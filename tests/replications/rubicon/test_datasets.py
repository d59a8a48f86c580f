"""Rubicon prompt sets: held-out tasks are disjoint and fixed by their own seed; bad task files are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from replications.rubicon.datasets import Task, build_stage1, build_stage2, constraint_rubrics, load_tasks
from rubricrl.errors import UserError
from rubricrl.rubrics.loader import load_rubrics

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def s1():
    return load_rubrics([REPO / "rubric_banks/stage1_instruction_following"])


def _split(s1, seed):
    tasks = load_tasks(REPO / "replications/rubicon/data/seed_tasks.jsonl")
    rubrics = constraint_rubrics(s1, ["if-no-commas", "if-all-lowercase", "if-title-brackets"])
    return build_stage1(
        tasks,
        rubrics,
        constraints_per_task=2,
        heldout_tasks=10,
        heldout_constraints_per_task=1,
        heldout_seed=1234,
        seed=seed,
    )


def test_heldout_tasks_are_disjoint_and_do_not_depend_on_the_run_seed(s1):
    train, held = _split(s1, seed=0)
    _, held_other_seed = _split(s1, seed=99)
    assert {r["task_id"] for r in train}.isdisjoint({r["task_id"] for r in held})
    assert held == held_other_seed
    assert len({r["task_id"] for r in held}) == 10 and len(held) == 10
    row = held[0]
    rubric = next(r for r in s1 if r.id == row["rubric_id"])
    assert row["prompt"][-1]["content"].endswith(rubric.instruction)


def test_unknown_constraint_and_too_many_heldout(s1):
    with pytest.raises(UserError, match="unknown rubric"):
        constraint_rubrics(s1, ["nope"])
    with pytest.raises(UserError, match="leaves no train task"):
        build_stage1(
            [Task("a", "x")],
            s1[:1],
            constraints_per_task=1,
            heldout_tasks=1,
            heldout_constraints_per_task=1,
            heldout_seed=0,
            seed=0,
        )


def test_bad_task_lines_are_reported_with_their_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\nnot json\n{"prompt": "z"}\n')
    with pytest.raises(UserError) as e:
        load_tasks(p)
    msg = str(e.value)
    assert f"{p}:2: duplicate id" in msg and f"{p}:3:" in msg and f"{p}:4:" in msg


def test_stage2_rows_use_their_category_rubric():
    bank = {
        r.id: r for r in load_rubrics([REPO / "rubric_banks/stage2_creative", REPO / "rubric_banks/stage2_empathy"])
    }
    prompts = [Task("c1", "story", "creative"), Task("e1", "sad", "empathy"), Task("c2", "poem", "creative")]
    train, held, inst = build_stage2(
        prompts, bank, {"creative": "cw-short-fiction", "empathy": "emp-grief"}, heldout=1, heldout_seed=0, seed=0
    )
    assert len(train) == 2 and len(held) == 1 and inst == []
    assert all(
        r["rubric_id"] == {"creative": "cw-short-fiction", "empathy": "emp-grief"}[r["category"]] for r in train + held
    )
    with pytest.raises(UserError, match="no rubric for"):
        build_stage2(prompts, bank, {"creative": "cw-short-fiction"}, heldout=0, heldout_seed=0, seed=0)


@pytest.mark.parametrize("scale", ["tiny", "single_gpu", "paper"])
def test_data_stage_builds_at_every_scale(tmp_path, scale):
    """Each scale's data settings fit the shipped tasks: held-out and train splits are both non-empty."""
    import json
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rubricrl.cli",
            "replicate",
            "rubicon",
            f"scale={scale}",
            f"run.root={tmp_path}",
            "wandb.mode=disabled",
            "--stage",
            "data",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (metrics,) = tmp_path.glob("*/data/metrics.json")
    m = json.loads(metrics.read_text())
    assert m["stage1_train"] > 0 and m["stage1_heldout"] > 0 and m["stage2_train"] > 0
    train = [json.loads(x) for x in (metrics.parent / "stage1_train.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in (metrics.parent / "stage1_heldout.jsonl").read_text().splitlines()]
    assert not {t["task_id"] for t in train} & {h["task_id"] for h in held}
    assert not any(t["task_id"].startswith("ifeval-") for t in train), "IFEval prompts are an eval benchmark"


def test_filter_disabled_keeps_every_train_prompt_without_sampling(tmp_path):
    """rubicon.filter.enabled=false passes stage-1 train prompts through (policy.name is never loaded)."""
    import json
    import subprocess
    import sys

    args = [
        sys.executable,
        "-m",
        "rubricrl.cli",
        "replicate",
        "rubicon",
        f"run.root={tmp_path}",
        "wandb.mode=disabled",
        "rubicon.filter.enabled=false",
        "policy.name=/nonexistent/model",
    ]
    for stage in ("data", "filter"):
        r = subprocess.run(args + ["--stage", stage], capture_output=True, text=True, cwd=REPO, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    train = (run / "data" / "stage1_train.jsonl").read_text().splitlines()
    assert (run / "filter" / "kept.jsonl").read_text().splitlines() == train
    assert json.loads((run / "filter" / "filter_stats.json").read_text())["enabled"] is False
