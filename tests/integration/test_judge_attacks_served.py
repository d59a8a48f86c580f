"""The judge-attack benchmark against the real CPU vLLM judge (a small subset of the suite).

Padding past the judge's context is the attack the defenses must close for certain: without the length
cap the padded twin comes back ungraded (HTTP 400 from the server) and, with ungraded items dropped, its
item vanishes from the reward; with the defenses on it is graded (cut and marked) like any response.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_attack_benchmark_on_the_cpu_judge_padding_loses_nothing_with_defenses_on(vllm_endpoint):
    cmd = [
        sys.executable,
        str(REPO / "benchmarks/judge_attacks.py"),
        "--base-url",
        vllm_endpoint["base_url"],
        "--served-model-name",
        vllm_endpoint["model"],
        "--scenarios",
        "2",
        "--modes",
        "binary",
        "--categories",
        "special_tokens,padding",
        "--defenses",
        "off,on",
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    runs = {r["defenses"]: r for r in result["runs"]}
    assert set(runs) == {"off", "on"}
    for r in runs.values():
        rows = {row["category"]: row for row in r["categories"]}
        assert set(rows) == {"special_tokens", "padding"} and r["clean_n"] == 2
        assert rows["padding"]["scenarios"] == 2 and rows["padding"]["neutral_rate"] is None
    off = {row["category"]: row for row in runs["off"]["categories"]}
    on = {row["category"]: row for row in runs["on"]["categories"]}
    assert off["padding"]["attacked_ungraded"] == 2  # past the 2048-token context: the server refuses it
    assert on["padding"]["attacked_ungraded"] == 0 and runs["on"]["truncated"] >= 2
    assert "| on | binary | padding |" in out.stdout and "command:" in out.stdout
