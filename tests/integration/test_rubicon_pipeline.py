"""The whole Rubicon pipeline, shortened (a few steps per stage), through the real CLI.

Real parts: SmolLM2-135M-Instruct policy, TRL GRPOTrainer, programmatic verifiers for stage 1, a real
vLLM CPU server with SmolLM2 as the stage-2 judge. Then a re-run skips every finished stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

SHORT = [
    "grpo.max_steps=2",
    "rubicon.stage2.grpo.max_steps=1",
    "rubicon.data.max_train_prompts=8",
    "rubicon.data.heldout_tasks=4",
    "rubicon.data.heldout_constraints_per_task=1",
    "rubicon.data.stage2_heldout=1",
    "rubicon.filter.k=2",
    "rubicon.filter.band=[0.0,1.0]",
    "rubicon.filter.max_new_tokens=16",
    "rubicon.filter.stage2=true",  # the stage-2 prompts are filtered with the stage-1 policy (paper scale's setting)
    "rubicon.rubrics.generate=true",  # instance rubrics for two stage-2 prompts, written by the served SmolLM2
    "rubicon.rubrics.limit=2",
    "grpo.max_completion_length=16",
    "rubicon.eval.max_new_tokens=16",
    "rubicon.eval.samples=1",
    "rubicon.eval.bootstrap=200",
    "wandb.mode=offline",
    # 1-2 step stages may see no reward variance by chance: this test is about the plumbing
    "run.min_steps_with_reward_variance=0",
]
# The stages SHORT runs, in order (it turns on rubrics_stage2 and filter_stage2).
SHORT_STAGES = (
    "data",
    "filter",
    "stage1_rl",
    "hacking",
    "rubrics_stage2",
    "filter_stage2",
    "stage2_rl",
    "eval",
    "report",
)


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rubricrl.cli",
            "replicate",
            "rubicon",
            f"run.root={tmp_path}",
            "run.name=ci",
            *SHORT,
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )


def test_shortened_pipeline_end_to_end_then_skips(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    run = tmp_path / "ci"
    for stage in SHORT_STAGES:
        assert (run / stage / "DONE").is_file(), stage
        prov = json.loads((run / stage / "provenance.json").read_text())
        assert prov["config_hash"]
    assert json.loads((run / "data" / "provenance.json").read_text())["hashes"]["stage1_bank"]
    assert (run / "filter" / "histogram.png").is_file()
    assert (run / "stage1_rl" / "final" / "model.safetensors").is_file()
    assert (run / "hacking" / "taxonomy.md").read_text().startswith("# Reward-hacking taxonomy")
    s2 = [json.loads(x) for x in (run / "stage2_rl" / "rollouts.jsonl").read_text().splitlines()]
    gen = json.loads((run / "rubrics_stage2" / "metrics.json").read_text())
    assert gen["attempted"] == 2 and gen["summary"]["units"] == 2  # each kept, dropped or failed, and counted
    f2 = json.loads((run / "filter_stage2" / "filter_stats.json").read_text())
    assert f2["policy"] == "stage-1 policy" and f2["judge"]["calls"] > 0  # sampled by stage 1, graded by the judge
    kept_rows = [json.loads(x) for x in (run / "filter_stage2" / "kept.jsonl").read_text().splitlines()]
    kept = {r["prompt"][-1]["content"] if isinstance(r["prompt"], list) else r["prompt"] for r in kept_rows}
    assert kept and {x["prompt"] for x in s2} <= kept  # stage 2 trained only on prompts the filter kept
    assert s2 and all(x["defense_per_criterion"] is not None for x in s2)  # defense rubric graded as a veto
    ev = json.loads((run / "eval" / "eval.json").read_text())
    assert ev["stage1_heldout"]["base"]["n"] == 4 and "stage1_minus_base" in ev["stage1_heldout"]
    assert ev["stage2_heldout"]["judge"]["calls"] > 0  # the vLLM judge was really called
    report = (run / "report.md").read_text()
    assert "Held-out evaluation" in report and "tiny scale" in report
    assert list((run / "wandb").glob("offline-run-*"))
    again = _run(tmp_path)
    assert again.returncode == 0 and again.stderr.count("done already, skipped") == 9
