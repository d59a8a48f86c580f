"""slurm/rubrics_generate.sbatch without a scheduler: array task -> shard file, exit 3 -> 0, merge of the shards.

The script runs under bash with the variables Slurm would set (array task id and count) and a site env with
``RR_RUNTIME=none`` (the venv on PATH, as the local test Slurm runs it). The generator points at a closed
port, so every prompt fails its one attempt: the plumbing (shard names, failures files, merge) is what is
checked here; generation through a real server is tests/integration/test_rubrics_generate_served.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "rubrics_generate.sbatch"


def test_array_tasks_write_shards_and_merge_joins_them(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Prompt {i}"}) + "\n" for i in range(6)))
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "generator": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "retries": 0},
                "attempts": 1,
                "gates": {"discrimination": {"enabled": False}},
            }
        )
    )
    site = tmp_path / "site.env"
    site.write_text(
        f"export RR_RUNTIME=none\nexport RR_REPO={REPO}\nexport RR_VENV={Path(sys.executable).parent.parent}\n"
    )
    out_dir = tmp_path / "out"
    env = {**os.environ, "RR_SITE_ENV": str(site), "SLURM_JOB_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    for task in ("0", "1"):
        r = subprocess.run(
            ["bash", str(SCRIPT), "generate", str(prompts), str(cfg), str(out_dir)],
            env={**env, "SLURM_ARRAY_TASK_ID": task},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert "some prompts failed every attempt" in r.stderr
    failed = [
        json.loads(x)["id"]
        for t in (0, 1)
        for x in (out_dir / f"rubrics.shard{t}.failures.jsonl").read_text().splitlines()
    ]
    assert sorted(failed) == [f"p{i}" for i in range(6)]  # every prompt in exactly one shard
    r = subprocess.run(
        ["bash", str(SCRIPT), "merge", str(out_dir)], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out_dir / "rubrics.summary.json").read_text())
    assert summary["failed"] == 6 and summary["units"] == 6 and len(summary["shards"]) == 2
    assert len((out_dir / "rubrics.failures.jsonl").read_text().splitlines()) == 6
