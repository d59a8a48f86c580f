"""rubicon.filter.stage2 filters the stage-2 prompts between the stages (stage ``filter_stage2``, stage-1 policy).

The stage itself runs for real (SmolLM2 stage-1 policy, vLLM judge) in tests/integration/test_rubicon_pipeline.py;
here: the key is read, the stage graph changes with it, and the cluster plan gives the stage a job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rubricrl.config import compose_experiment
from rubricrl.papers import get_paper

REPO = Path(__file__).resolve().parents[3]


def _graph(*overrides: str) -> dict[str, tuple[str, ...]]:
    cfg = compose_experiment("rubicon", list(overrides))
    return {s.name: s.inputs for s in get_paper("rubicon").stages(cfg)}


def test_the_key_adds_a_stage_2_filter_that_stage_2_trains_after():
    off = _graph("scale=tiny")
    assert "filter_stage2" not in off and "filter_stage2" not in off["stage2_rl"]
    on = _graph("scale=tiny", "rubicon.filter.stage2=true")
    names = list(on)
    assert names.index("stage1_rl") < names.index("filter_stage2") < names.index("stage2_rl")
    assert on["filter_stage2"] == ("data", "stage1_rl") and "filter_stage2" in on["stage2_rl"]
    # a disabled filter filters neither stage
    assert "filter_stage2" not in _graph("scale=tiny", "rubicon.filter.stage2=true", "rubicon.filter.enabled=false")


def test_paper_scale_filters_between_the_stages_and_lists_it(tmp_path):
    assert "filter_stage2" in _graph("scale=paper")
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "--list-stages", f"run.root={tmp_path}"]
        + ["rubicon.filter.stage2=true"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("filter_stage2"))
    assert "stage-1 policy" in line and "(after data, stage1_rl)" in line
