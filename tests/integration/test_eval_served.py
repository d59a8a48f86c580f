"""``make eval`` against a served model: the evaluation runner with ``--base-url`` on a real vLLM server.

The runner (``python -m rubricrl.report.eval_runner``, what ``make eval`` calls) drives lm-eval's
``local-chat-completions`` client against the session's CPU vLLM server (SmolLM2-135M-Instruct, from
``vllm_endpoint``), on one HealthBench example (``healthbench_500``, the offline copy) and one IFScale
instance (``ifscale_10``). HealthBench is graded by the shipped default judge (``smollm2-vllm``), which
reads ``runs/judge.endpoint.json`` relative to the working directory: there the test writes the same
server's endpoint, so one server is both the policy and the judge. Answers are capped at a few tokens.

This is the path that stopped with ``ModuleNotFoundError: Attempted to use an API model, but the
required packages ['tenacity'] are not installed`` while lm-eval's API client packages were missing
from ``common/requirements/main.lock``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

MAX_GEN_TOKS = 24
TASKS = ("healthbench_500", "ifscale_10")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_eval_runner_scores_tasks_on_a_served_model(vllm_endpoint, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "judge.endpoint.json").write_text(json.dumps(vllm_endpoint))  # what `rubricrl serve` writes there
    out = tmp_path / "eval"
    env = {k: v for k, v in os.environ.items() if k != "RUBRICRL_EVAL_JUDGE"}
    cmd = [
        sys.executable,
        "-m",
        "rubricrl.report.eval_runner",
        "--model",
        vllm_endpoint["model"],
        "--suite",
        "self_rewarding",
        "--tasks",
        ",".join(TASKS),
        "--limit",
        "1",
        "--max-gen-toks",
        str(MAX_GEN_TOKS),
        "--base-url",
        vllm_endpoint["base_url"],
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**env, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-5000:]}"

    (results_file,) = (out / vllm_endpoint["model"] / "self_rewarding").rglob("results_*.json")
    assert f"[eval] results: {results_file}" in proc.stdout
    data = json.loads(results_file.read_text())
    assert data["config"]["model"] == "local-chat-completions"
    for task in TASKS:
        assert data["n-samples"][task]["effective"] == 1, data["n-samples"]
    hb, ifs = data["results"]["healthbench_500"], data["results"]["ifscale_10"]
    assert _finite(hb["overall_score,none"]) and 0.0 <= hb["overall_score,none"] <= 1.0, hb
    assert hb["graded_examples,none"] == 1.0, hb
    assert _finite(ifs["keyword_accuracy,none"]) and 0.0 <= ifs["keyword_accuracy,none"] <= 1.0, ifs
    assert data["configs"]["healthbench_500"]["metadata"]["judge"] == "smollm2-vllm"

    side = json.loads((results_file.parent / results_file.name.replace("results_", "rubricrl_eval_")).read_text())
    assert side["backend"] == "local-chat-completions" and side["device"].startswith("server http://127.0.0.1:")
    assert side["skipped"] == {} and side["judge_config"] == "smollm2-vllm"

    for task in TASKS:  # the server answered (a short, non-empty text) for every task
        (samples,) = results_file.parent.glob(f"samples_{task}_*.jsonl")
        (sample,) = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
        assert sample["resps"][0][0].strip(), sample["resps"]
    (hb_samples,) = results_file.parent.glob("samples_healthbench_500_*.jsonl")
    record = json.loads(hb_samples.read_text().splitlines()[0])["graded_examples"]
    assert record["judge"]["model"] == vllm_endpoint["model"]
    assert len(record["grades"]) == len(record["rubrics"])
    assert any(g["criteria_met"] is not None for g in record["grades"]), "the judge graded nothing"
