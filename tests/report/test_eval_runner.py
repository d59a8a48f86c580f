"""``make eval``'s driver: suites, model arguments, the judge record, and a real tiny run feeding the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.errors import UserError
from rubricrl.report import eval_runner
from rubricrl.report.paper_tables import load_paper_tables

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "eval" / "tasks"


def test_suites_come_from_the_task_groups_and_cover_the_mapped_columns():
    rubicon = eval_runner.suite_tasks("rubicon", TASKS)
    assert {"creative_writing", "writingbench", "ifeval_local", "ifscale", "aime24", "mmlu"} <= set(rubicon)
    assert "healthbench_hard" in eval_runner.suite_tasks("self_rewarding", TASKS)
    for paper, names in (("rubicon", rubicon), ("self_rewarding", eval_runner.suite_tasks("self_rewarding", TASKS))):
        for table in load_paper_tables(paper):
            for col in table.columns:
                if col.ours:  # every mapped column is measured by some task of the suite
                    assert {r.task for r in col.ours} & set(names), (table.id, col.key)
    with pytest.raises(UserError, match="unknown suite 'writing'"):
        eval_runner.suite_tasks("writing", TASKS)


def test_suites_fall_back_to_the_paper_tables_without_group_files(tmp_path):
    assert eval_runner.suite_tasks("self_rewarding", tmp_path) == ["healthbench_hard"]


def test_server_model_args_use_local_chat_completions():
    lm, args, name, device = eval_runner.model_args("/ckpt/Qwen3-30B-A3B", "http://127.0.0.1:8000", None, 8, "float32")
    assert lm == "local-chat-completions" and name == "Qwen3-30B-A3B"
    assert args["base_url"] == "http://127.0.0.1:8000/v1/chat/completions" and args["num_concurrent"] == 8
    assert args["model"] == "/ckpt/Qwen3-30B-A3B" and device == "server http://127.0.0.1:8000/v1/chat/completions"
    _, args, _, _ = eval_runner.model_args("m", "http://h:1/v1/", "served", 1, "float32")
    assert args["base_url"] == "http://h:1/v1/chat/completions" and args["model"] == "served"


def test_judge_order(monkeypatch):
    monkeypatch.setenv(eval_runner.JUDGE_ENV, "gpt41-healthbench")
    assert eval_runner.default_judge("smollm2-local") == "smollm2-local"
    assert eval_runner.default_judge(None) == "gpt41-healthbench"


def test_bad_arguments_exit_2_without_traceback(capsys):
    assert eval_runner.main(["--model", "smollm2-135m-instruct", "--suite", "nope"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err
    assert eval_runner.main(["--model", "smollm2-135m-instruct", "--suite", "rubicon", "--limit", "0"]) == 2
    assert eval_runner.main(["--model", "/no/such/checkpoint", "--suite", "rubicon", "--tasks", "ifscale_10"]) == 2


def test_missing_judge_server_fails_before_any_generation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # smollm2-vllm reads runs/judge.endpoint.json relative to the working directory
    rc = eval_runner.main(
        [
            "--model",
            "smollm2-135m-instruct",
            "--suite",
            "rubicon",
            "--tasks",
            "writingbench",
            "--judge",
            "smollm2-vllm",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "rubricrl serve --endpoint-file" in err and "SERVE_JUDGE=1" in err
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_tiny_eval_then_report(tmp_path, capsys):
    """A real harness run (SmolLM2-135M in-process on CPU, one IFScale instance) read back by the report."""
    rc = eval_runner.main(
        [
            "--model",
            "smollm2-135m-instruct",
            "--suite",
            "rubicon",
            "--tasks",
            "ifscale_10,no_such_task",
            "--limit",
            "1",
            "--max-gen-toks",
            "8",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    folder = tmp_path / "eval" / "smollm2-135m-instruct" / "rubicon"
    (results,) = folder.rglob("results_*.json")
    side = json.loads((results.parent / results.name.replace("results_", "rubricrl_eval_")).read_text())
    assert side["scale"] == "tiny" and side["limit"] == 1 and "no_such_task" in side["skipped"]
    data = json.loads(results.read_text())
    assert 0.0 <= data["results"]["ifscale_10"]["keyword_accuracy,none"] <= 1.0
    from rubricrl.cli import main

    assert (
        main(["report", str(folder), "--paper", "rubicon", "--out", str(tmp_path / "rep"), "--wandb", "off", "--quiet"])
        == 0
    )
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "tiny scale, smollm2-135m-instruct on CPU: not comparable to the paper's 30B numbers" in md
    assert "`no_such_task` not run" in md
    # A real lm-eval file of one density lands in the IFS column, marked, with its delta left out at n = 1.
    ours = next(line for line in md.splitlines() if line.startswith("| smollm2-135m-instruct | ours |"))
    ifs = ours.strip("|").split("|")[10].strip()
    assert ifs.endswith(" ‡") and float(ifs[:-2]) == 100 * data["results"]["ifscale_10"]["keyword_accuracy,none"]
    assert "`ifscale_10` | `keyword_accuracy,none`" not in md and "| n=1 (< 20) |" in md
    # Resume: the answer was cached as it came; the same command reuses it instead of generating again.
    from sqlitedict import SqliteDict

    (db,) = (folder / "lm_cache").glob("responses_rank*.db")
    with SqliteDict(str(db), autocommit=True) as cached:
        assert len(cached) == 1
        for key in list(cached):
            cached[key] = "CACHED-ANSWER"
    rc = eval_runner.main(
        [
            "--model",
            "smollm2-135m-instruct",
            "--suite",
            "rubicon",
            "--tasks",
            "ifscale_10",
            "--limit",
            "1",
            "--max-gen-toks",
            "8",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    assert rc == 0
    newest = sorted(folder.rglob("samples_ifscale_10_*.jsonl"))[-1]
    assert json.loads(newest.read_text().splitlines()[0])["resps"] == [["CACHED-ANSWER"]]
