"""``rubricrl report`` end to end on hand-written result files: numbers, deltas, labels, charts, W&B, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.cli import main
from tests.report.helpers import lm_eval_results, score_json

BANNER = "tiny scale, smollm2-135m-instruct on CPU: not comparable to the paper's 30B numbers"


def _row(markdown: str, start: str, kind: str = "") -> list[str]:
    """Cells of the first comparison-table row whose first cell is ``start`` (and second ``kind``, if given)."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == start and (not kind or cells[1] == kind):
            return cells
    raise AssertionError(f"no row {start!r} in:\n{markdown}")


@pytest.fixture
def tiny(tmp_path) -> Path:
    folder = tmp_path / "runs" / "eval" / "smollm2-135m-instruct" / "rubicon"
    lm_eval_results(
        folder,
        {
            "ifeval_local": {"prompt_level_strict_acc,none": 0.2, "inst_level_strict_acc,none": 0.3},
            "writingbench": {"score,none": 31.5, "n_ungraded,none": 2},
            "ifscale_10": {"keyword_accuracy,none": 0.05},
        },
        pretrained="/x/models/smollm2-135m-instruct",
        limit=5,
        judge="smollm2-vllm",
    )
    return folder


def _report(args, capsys) -> tuple[int, str, str]:
    rc = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_tiny_run_is_labelled_not_comparable_with_deltas_and_dashes(tiny, tmp_path, capsys):
    out_dir = tmp_path / "report"
    rc, out, err = _report(
        [tiny, "--paper", "rubicon", "--out", out_dir, "--wandb", "off", "--quiet", "--min-n", "5"], capsys
    )
    assert rc == 0, err
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    assert BANNER in md.splitlines()[2]  # the banner opens the report, before any number
    assert f"NOTE: {BANNER}" in out
    ours = _row(md, "smollm2-135m-instruct", "ours")  # first table (writing / IF): model, from, scale, judge, C.W, ...
    assert ours[1:4] == ["ours", "tiny (CPU)", "smollm2-vllm (smollm2-135m-instruct)"]
    cw, writing, judge, eq, ife, collie, ifs, avg = ours[4:]
    assert (writing, ife) == ("31.50", "20.00")  # 0.2 prompt-level strict shown on the paper's percent scale
    assert cw == judge == eq == collie == avg == "—"  # no invented numbers, no average of a partial row
    assert ifs == "5.00 ‡"  # ifscale_10 is one density of IFScale: in its column, marked as that part only
    delta = _row(md, "Δ smollm2-135m-instruct − Rubicon-preview")
    assert "not comparable" in delta[1]
    assert delta[5] == "-48.61 †" and delta[8] == "-61.70 †" and delta[4] == "—" and delta[10] == "-55.79 †"
    assert "limited to 5 examples per task" in md
    assert "`ifscale_10` | `keyword_accuracy,none`" not in md  # shown under IFS, so not under "Other results"
    assert "‡ our task covers only part of what the column reports: IFS (N = 10 only)" in md
    for png in [
        "rubicon_writing_if.png",
        "rubicon_writing_if_delta.png",
        "rubicon_reasoning.png",
        "rubicon_general.png",
    ]:
        data = (out_dir / "charts" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"](charts/{png})" in md
    assert not (out_dir / "charts" / "rubicon_reasoning_delta.png").exists()  # nothing of ours to subtract
    summary = json.loads((out_dir / "comparison.json").read_text())
    run = summary["tables"][0]["runs"][0]
    assert summary["comparable"] is False and run["comparable"] is False
    assert run["values"]["Writing"] == 31.5 and run["values"]["C.W"] is None
    assert run["delta_vs_reference"]["IFE"] == pytest.approx(20.0 - 81.70)


def test_paper_scale_full_run_is_comparable_and_unflagged(tmp_path, capsys):
    res = lm_eval_results(
        tmp_path / "r",
        {"ifeval_local": {"prompt_level_strict_acc,none": 0.8}, "social_iqa": {"acc,none": 0.7}},
        pretrained="/ckpt/Rubicon-Qwen3-30B-A3B-step200",
        limit=None,
        device="cuda:0",
    )
    out_dir = tmp_path / "report"
    rc, out, _ = _report([res, "--paper", "rubicon", "--out", out_dir, "--wandb", "off", "--quiet"], capsys)
    assert rc == 0
    md = (out_dir / "report.md").read_text()
    assert "not comparable" not in md and "NOTE:" not in out
    delta = _row(md, "Δ Rubicon-Qwen3-30B-A3B-step200 − Rubicon-preview")
    assert delta[1] == "comparable" and delta[8] == "-1.70"
    general = [line for line in md.split("## Rubicon: general abilities")[1].splitlines() if "Rubicon-Qwen3" in line]
    assert "| 70.00 |" in general[0] and general[0].count("—") == 6  # SIQA only; Avg never computed for this table


def test_scale_override_and_unknown_models_are_never_paper_scale(tmp_path, capsys):
    res = lm_eval_results(
        tmp_path / "r", {"ifeval_local": {"prompt_level_strict_acc,none": 0.5}}, pretrained="/ckpt/my-model", limit=None
    )
    rc, _, _ = _report([res, "--paper", "rubicon", "--out", tmp_path / "a", "--wandb", "off", "--quiet"], capsys)
    assert rc == 0 and "unknown scale, my-model on CPU: not comparable" in (tmp_path / "a" / "report.md").read_text()
    rc, _, _ = _report(
        [res, "--paper", "rubicon", "--out", tmp_path / "b", "--wandb", "off", "--quiet", "--scale", "paper"], capsys
    )
    assert rc == 0 and "not comparable" not in (tmp_path / "b" / "report.md").read_text()


def test_healthbench_hard_needs_the_papers_grader_to_be_comparable(tmp_path, capsys):
    gpt = lm_eval_results(
        tmp_path / "a",
        {"healthbench_hard": {"overall_score,none": 0.45}},
        pretrained="/ckpt/Qwen3-32B-selfreward",
        limit=None,
        judge="gpt41-healthbench",
    )
    small = lm_eval_results(
        tmp_path / "b",
        {"healthbench_hard": {"overall_score,none": 0.30}},
        pretrained="/ckpt/Qwen3-8B-selfreward",
        limit=None,
        judge="smollm2-vllm",
    )
    out_dir = tmp_path / "report"
    rc, _, _ = _report([gpt, small, "--paper", "self_rewarding", "--out", out_dir, "--wandb", "off", "--quiet"], capsys)
    assert rc == 0
    md = (out_dir / "report.md").read_text()
    assert _row(md, "Δ Qwen3-32B-selfreward − Qwen3-32B + self-rewarding, grader temp 0.6")[-1] == "-0.036"
    assert _row(md, "Qwen3-32B-selfreward", "ours")[3] == "gpt41-healthbench (gpt-4.1-2025-04-14)"
    flagged = _row(md, "Δ Qwen3-8B-selfreward − Qwen3-32B + self-rewarding, grader temp 0.6")
    assert "not comparable" in flagged[1] and flagged[-1] == "-0.186 †"
    assert "judge smollm2-vllm (smollm2-135m-instruct) is not the paper's gpt-4.1" in md


def test_score_json_needs_a_task_label_and_has_unknown_judge(tmp_path, capsys):
    s = score_json(tmp_path / "hard_score.json", 0.25)
    rc, _, err = _report([s, "--paper", "self_rewarding", "--out", tmp_path / "o", "--wandb", "off"], capsys)
    assert rc == 2 and f"healthbench_hard={s}" in err and "Traceback" not in err
    rc, _, err = _report(
        [f"healthbench_hard={s}", "--paper", "self_rewarding", "--out", tmp_path / "o", "--wandb", "off", "--quiet"],
        capsys,
    )
    assert rc == 0, err
    md = (tmp_path / "o" / "report.md").read_text()
    ours = _row(md, "hard_score", "ours")
    assert ours[3] == "unknown" and ours[-1] == "0.250"
    assert "judge unknown is not the paper's gpt-4.1" in md


def test_two_files_of_one_model_merge_into_one_row(tmp_path, capsys):
    a = lm_eval_results(
        tmp_path / "r",
        {"ifeval_local": {"prompt_level_strict_acc,none": 0.2}},
        pretrained="/m/smollm2-135m-instruct",
        limit=5,
        stamp="2025-01-01T00-00-00",
    )
    b = lm_eval_results(
        tmp_path / "r",
        {"writingbench": {"score,none": 30.0}},
        pretrained="/m/smollm2-135m-instruct",
        limit=5,
        stamp="2025-01-02T00-00-00",
    )
    rc, _, _ = _report([a, b, "--paper", "rubicon", "--out", tmp_path / "o", "--wandb", "off", "--quiet"], capsys)
    assert rc == 0
    ours = _row((tmp_path / "o" / "report.md").read_text(), "smollm2-135m-instruct", "ours")
    assert ours[5] == "30.00" and ours[8] == "20.00"
    # A folder means the newest result of each task in it: a re-run of one task replaces only that task.
    lm_eval_results(
        tmp_path / "r",
        {"ifeval_local": {"prompt_level_strict_acc,none": 0.4}},
        pretrained="/m/smollm2-135m-instruct",
        limit=5,
        stamp="2025-01-03T00-00-00",
    )
    rc, _, _ = _report(
        [tmp_path / "r", "--paper", "rubicon", "--out", tmp_path / "p", "--wandb", "off", "--quiet"], capsys
    )
    ours = _row((tmp_path / "p" / "report.md").read_text(), "smollm2-135m-instruct", "ours")
    assert rc == 0 and ours[5] == "30.00" and ours[8] == "40.00"


def test_wandb_offline_run_holds_the_table_and_charts(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # --out decides, not the environment
    out_dir = tmp_path / "report"
    rc, out, err = _report([tiny, "--paper", "rubicon", "--out", out_dir, "--quiet"], capsys)  # default: offline
    assert rc == 0, err
    (run_dir,) = (out_dir / "wandb").glob("offline-run-*")
    assert f"W&B offline run: {run_dir}" in out
    assert list(run_dir.glob("*.wandb")) and list(run_dir.glob("*.wandb"))[0].stat().st_size > 0
    (table_file,) = (run_dir / "files" / "media" / "table").rglob("*.table.json")
    table = json.loads(table_file.read_text())
    assert {"paper_model", "paper_value", "our_value", "delta", "scale", "judge", "comparable"} <= set(table["columns"])
    col = table["columns"]
    row = next(
        r
        for r in table["data"]
        if r[col.index("column")] == "Writing" and r[col.index("paper_model")] == "Rubicon-preview"
    )
    assert row[col.index("our_value")] == 31.5 and row[col.index("comparable")] is False
    assert row[col.index("delta")] == pytest.approx(31.5 - 80.11)
    images = list((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert len(images) == 3  # one per table; no delta chart: every delta rests on 5 < 20 examples
    # Same folder, same run: a second report keeps the id (one offline folder to sync, resumed online).
    from rubricrl.report.wandb_log import report_run_id

    run_id = report_run_id(out_dir, "rubicon")
    assert run_dir.name.endswith(f"-{run_id}") and (run_dir / f"run-{run_id}.wandb").is_file()
    rc, out, err = _report([tiny, "--paper", "rubicon", "--out", out_dir, "--quiet"], capsys)
    assert rc == 0, err
    (again,) = (out_dir / "wandb").glob("offline-run-*")
    assert again.name.endswith(f"-{run_id}") and (again / f"run-{run_id}.wandb").stat().st_size > 0
    assert run_id != report_run_id(tmp_path / "other", "rubicon")


@pytest.mark.parametrize(
    "content,needle",
    [
        (
            '{"results": {"ifeval_local": {"prompt_level_strict_acc,none": 0.2}},\n  "config": {"limit": 5,}\n}',
            ":2: not valid JSON",
        ),
        ("[1, 2]", "not lm-eval results: no top-level 'results' object"),
    ],
)
def test_bad_files_are_one_line_errors_with_path(tmp_path, capsys, content, needle):
    bad = tmp_path / "results_bad.json"
    bad.write_text(content, encoding="utf-8")
    rc, _, err = _report([bad, "--paper", "rubicon", "--out", tmp_path / "o", "--wandb", "off"], capsys)
    assert rc == 2 and err.startswith(str(bad)) and needle in err and "Traceback" not in err
    assert not (tmp_path / "o" / "report.md").exists()


def test_cli_errors_missing_file_unknown_paper_wandb_online(tiny, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nope.json"
    rc, _, err = _report([missing, "--paper", "rubicon", "--wandb", "off"], capsys)
    assert rc == 2 and f"{missing}: no such file" in err and "Traceback" not in err
    rc, _, err = _report([tiny, "--paper", "rubicn", "--wandb", "off"], capsys)
    assert rc == 2 and "unknown paper 'rubicn'; choose one of: rubicon, self_rewarding" in err
    rc, _, err = _report([tmp_path / "empty", "--paper", "rubicon", "--wandb", "off"], capsys)
    assert rc == 2
    (tmp_path / "emptydir").mkdir()
    rc, _, err = _report([tmp_path / "emptydir", "--paper", "rubicon", "--wandb", "off"], capsys)
    assert rc == 2 and "no lm-eval results_*.json under this folder" in err
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    rc, _, err = _report([tiny, "--paper", "rubicon", "--out", tmp_path / "o", "--wandb", "online", "--quiet"], capsys)
    assert rc == 2 and "--wandb online needs W&B credentials" in err
    rc, _, err = _report([tiny, "--paper", "rubicon", "--wandb", "sometimes"], capsys)
    assert rc == 2 and "unknown --wandb mode 'sometimes'" in err


def _readme_eval(tmp_path: Path, limit: int = 2) -> Path:
    """What the README's smallest ``make eval`` (LIMIT=2 TASKS=ifeval_local,ifscale_10) writes, by hand."""
    folder = tmp_path / "runs" / "eval" / "smollm2-135m-instruct" / "rubicon"
    lm_eval_results(
        folder,
        {
            "ifeval_local": {"prompt_level_strict_acc,none": 0.0, "inst_level_strict_acc,none": 0.25},
            "ifscale_10": {"keyword_accuracy,none": 0.1, "all_included,none": 0.0},
        },
        pretrained="/x/models/smollm2-135m-instruct",
        limit=limit,
    )
    return folder


def test_readme_smallest_eval_fills_ifs_and_leaves_out_deltas_below_min_n(tmp_path, capsys):
    out_dir = tmp_path / "report"
    rc, _, err = _report(
        [_readme_eval(tmp_path), "--paper", "rubicon", "--out", out_dir, "--wandb", "off", "--quiet"], capsys
    )
    assert rc == 0, err
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    ours = _row(md, "smollm2-135m-instruct", "ours")
    assert ours[8] == "0.00" and ours[10] == "10.00 ‡"  # IFE, and IFS from ifscale_10 in the IFS column
    delta = _row(md, "Δ smollm2-135m-instruct − Rubicon-preview")
    assert delta[8] == delta[10] == "n=2 (< 20)"  # no -81.70 from two examples
    assert "fewer than 20 examples (`--min-n`)" in md
    assert not (out_dir / "charts" / "rubicon_writing_if_delta.png").exists()  # no delta left to draw
    run = json.loads((out_dir / "comparison.json").read_text())["tables"][0]["runs"][0]
    assert run["n_examples"]["IFE"] == 2 and run["delta_left_out_below_min_n"] == ["IFE", "IFS"]
    assert run["delta_vs_reference"]["IFE"] == pytest.approx(-81.70)  # the data keeps the number
    rc, _, _ = _report(
        [
            _readme_eval(tmp_path),
            "--paper",
            "rubicon",
            "--out",
            tmp_path / "all",
            "--wandb",
            "off",
            "--quiet",
            "--min-n",
            "0",
        ],
        capsys,
    )
    shown = _row((tmp_path / "all" / "report.md").read_text(), "Δ smollm2-135m-instruct − Rubicon-preview")
    assert rc == 0 and shown[8] == "-81.70 †"


def test_ifscale_group_is_the_full_column_with_its_leaves_n(tmp_path, capsys):
    res = lm_eval_results(
        tmp_path / "r",
        {
            "ifscale": {"keyword_accuracy,none": 0.5},
            **{f"ifscale_{n}": {"keyword_accuracy,none": 0.5} for n in (10, 50)},
        },
        pretrained="/ckpt/Rubicon-Qwen3-30B-A3B-step200",
        limit=None,
        device="cuda:0",
    )
    data = json.loads(res.read_text())
    data["n-samples"].pop("ifscale")  # lm-eval counts samples of leaf tasks only
    data["group_subtasks"] = {"ifscale": ["ifscale_10", "ifscale_50"], "ifscale_10": [], "ifscale_50": []}
    res.write_text(json.dumps(data))
    rc, _, _ = _report([res, "--paper", "rubicon", "--out", tmp_path / "o", "--wandb", "off", "--quiet"], capsys)
    md = (tmp_path / "o" / "report.md").read_text()
    assert rc == 0 and _row(md, "Rubicon-Qwen3-30B-A3B-step200", "ours")[10] == "50.00"  # unmarked: the whole column
    assert _row(md, "Δ Rubicon-Qwen3-30B-A3B-step200 − Rubicon-preview")[10] == "-10.79"  # comparable, n = 200
    run = json.loads((tmp_path / "o" / "comparison.json").read_text())["tables"][0]["runs"][0]
    assert run["n_examples"]["IFS"] == 200 and run["subset"] == {}


def test_ours_has_one_colour_in_every_chart(tmp_path):
    from matplotlib.colors import to_hex

    from rubricrl.report import charts, style
    from rubricrl.report.compare import compare
    from rubricrl.report.paper_tables import load_paper_tables
    from rubricrl.report.results import read_results

    runs = read_results(str(_readme_eval(tmp_path)))
    comp = compare("rubicon", load_paper_tables("rubicon"), runs, min_n=0)
    seen: set[str] = set()
    paper: set[str] = set()
    for tc in comp.tables:
        figs = [charts.comparison_figure(tc)] + ([charts.delta_figure(tc)] if tc.has_deltas else [])
        for fig in figs:
            ax = fig.axes[0]
            handles, labels = ax.get_legend_handles_labels()
            for h, label in zip(handles, labels):
                colours = {to_hex(p.get_facecolor()) for p in h.patches}
                (seen if label.startswith("ours") else paper).update(colours)
            fig.clf()
    assert seen == {style.OURS}
    assert style.OURS not in paper and not set(style.OUR_COLORS) & set(style.PAPER_COLORS)
