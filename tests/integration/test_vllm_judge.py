"""The HTTP judge against a real vLLM server on CPU (SmolLM2-135M-Instruct), on real HealthBench examples.

(a) the judge library (``build_judge`` + ``grade_many``) makes real calls and returns only bools or
explicit ungraded verdicts; (b) ``rubricrl grade`` writes a complete graded file and resumes without
re-grading; (c) a server killed in the middle of a grading run costs retries, then explicit ungraded
verdicts, and every record still reaches the output file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

# Structured outputs (the judge's `structured_output`, sent as vLLM's response_format) keep the 135M judge's
# answers parseable; the explanation cap follows max_tokens so a verdict always fits.

SAMPLING = {"temperature": 0.0, "max_tokens": 96}


def judge_yaml(path: Path, base_url: str, model: str, **overrides) -> Path:
    cfg = {
        "backend": "openai",
        "base_url": base_url,
        "model": model,
        "mode": "binary",
        "template": "healthbench",
        "sampling": SAMPLING,
        "retries": 1,
        "concurrency": 4,
        "timeout_s": 60,
        "structured_output": True,
    }
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def check_grade(g: dict) -> None:
    """A grade is a decision or an explicit ungraded verdict with its reason."""
    if g["criteria_met"] is None:
        assert g.get("error"), f"ungraded verdict without an error: {g}"
    else:
        assert isinstance(g["criteria_met"], bool), g


def grade_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "grade", *args], capture_output=True, text=True, timeout=timeout
    )


def test_judge_library_grades_real_examples(vllm_endpoint, healthbench_small):
    from rubricrl.judge import GradingRequest, JudgeConfig, build_judge, close_judge, grade_many
    from rubricrl.rubrics.importers import healthbench_example

    examples = [healthbench_example(r) for r in healthbench_small["records"][:3]]
    requests = [
        GradingRequest(
            conversation=ex.prompt,
            response=healthbench_small["responses_by_id"][ex.prompt_id],
            criteria=list(ex.rubric.criteria),
            rubric_id=ex.prompt_id,
        )
        for ex in examples
    ]
    cfg = JudgeConfig(
        backend="openai",
        base_url=vllm_endpoint["base_url"],
        model=vllm_endpoint["model"],
        sampling=SAMPLING,
        retries=1,
        concurrency=4,
        structured_output=True,
    )
    judge = build_judge(cfg)
    try:
        results = grade_many(judge, requests)
    finally:
        close_judge(judge)
    n_criteria = sum(len(r.criteria) for r in requests)
    assert [len(v) for v in results] == [len(r.criteria) for r in requests]
    for req, verdicts in zip(requests, results):
        assert [v.criterion_id for v in verdicts] == [c.id for c in req.criteria]
        for v in verdicts:
            check_grade(v.to_json())
            assert v.attempts >= 1 and v.judge
    stats = judge.stats.as_dict()
    assert stats["calls"] >= n_criteria, stats
    assert stats["transport_errors"] == 0, stats
    assert stats["graded"] >= 1, f"the server answered but no verdict was usable: {stats}"


def test_grade_cli_writes_every_record_and_resumes(vllm_endpoint, healthbench_small, tmp_path):
    judge = judge_yaml(tmp_path / "judge.yaml", vllm_endpoint["base_url"], vllm_endpoint["model"])
    out = tmp_path / "graded.jsonl"
    args = [
        "--data",
        str(healthbench_small["data"]),
        "--responses",
        str(healthbench_small["responses"]),
        "--judge",
        str(judge),
        "--out",
        str(out),
        "--limit",
        "2",
        "--no-progress",
    ]
    first = grade_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    wanted = healthbench_small["records"][:2]
    assert [r["prompt_id"] for r in records] == [r["prompt_id"] for r in wanted]
    for rec, src in zip(records, wanted):
        assert (
            rec["rubrics"] == src["rubrics"]
            and rec["response"] == healthbench_small["responses_by_id"][rec["prompt_id"]]
        )
        assert len(rec["grades"]) == len(rec["rubrics"])
        for g in rec["grades"]:
            check_grade(g)
        assert rec["judge"]["model"] == vllm_endpoint["model"]
    assert "graded 2 examples" in first.stdout
    again = grade_cli(*args)  # everything is already there: nothing is re-graded
    assert again.returncode == 0, again.stderr[-3000:]
    assert "graded 0 examples (2 already in" in again.stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == records


def test_server_killed_mid_run(healthbench_small, tmp_path, process_group_gone):
    from rubricrl.judge.vllm_server import VLLMServer

    endpoint_file = tmp_path / "endpoint.json"
    retries = 2
    with VLLMServer("smollm2-135m-instruct", endpoint_file=endpoint_file, log_file=tmp_path / "server.log") as server:
        assert json.loads(endpoint_file.read_text())["base_url"] == server.base_url
        judge = judge_yaml(
            tmp_path / "judge.yaml",
            server.base_url,
            server.served_model_name,
            retries=retries,
            concurrency=1,
            timeout_s=30,
            backoff={"initial_s": 0.2, "max_s": 1.0, "factor": 2.0},
        )
        out = tmp_path / "graded.jsonl"
        n = len(healthbench_small["records"])
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rubricrl.cli",
                "grade",
                "--data",
                str(healthbench_small["data"]),
                "--responses",
                str(healthbench_small["responses"]),
                "--judge",
                str(judge),
                "--out",
                str(out),
                "--no-progress",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300
        while not (out.exists() and out.read_text().count("\n") >= 1):  # the first example is graded
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no example graded within 300 s"
            time.sleep(0.2)
        pgid = server.pid
        server.kill()  # the crash: SIGKILL to the whole server, no clean shutdown
        assert process_group_gone(pgid, 10)
        stdout, stderr = proc.communicate(timeout=300)
    assert not endpoint_file.exists()
    assert proc.returncode == 0, stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["prompt_id"] for r in records) == sorted(r["prompt_id"] for r in healthbench_small["records"])
    assert len(records) == n
    grades = [g for r in records for g in r["grades"]]
    for g in grades:
        check_grade(g)
    dead = [g for g in grades if g["criteria_met"] is None and "cannot reach" in (g.get("error") or "")]
    assert dead, "criteria graded after the kill must be ungraded with the transport error"
    assert all(g["attempts"] == retries + 1 for g in dead), "each must have used its full retry budget"
    later = records[-1]  # graded after the kill: nothing of it can be a decision
    assert all(g["criteria_met"] is None for g in later["grades"])
    assert "retries" in stdout and "ungraded" in stdout
