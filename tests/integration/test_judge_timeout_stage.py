"""A Rubicon stage 2 whose judge never answers in time stops with the reward-health error, exit 2, no DONE.

Real parts: the `rubricrl replicate rubicon` command line, the data, stage-1 (one GRPO step of
SmolLM2-135M-Instruct, programmatic rubrics) and hacking stages, and stage 2's TRL GRPO with the HTTP
judge pointed at a local server that holds every request longer than ``judge.timeout_s``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SHORT = [
    "grpo.max_steps=1",
    "rubicon.stage2.grpo.max_steps=2",
    "rubicon.data.max_train_prompts=4",
    "rubicon.data.heldout_tasks=2",
    "rubicon.data.heldout_constraints_per_task=1",
    "rubicon.data.stage2_heldout=1",
    "rubicon.filter.enabled=false",
    "grpo.max_completion_length=8",
    "grpo.save_steps=1000",
    "wandb.mode=disabled",
    # a one-step stage 1 may well see no reward variance: only stage 2's judge is under test here
    "run.min_steps_with_reward_variance=0",
]


class HangingJudge:
    """Accepts chat completions and never answers within the judge's timeout."""

    def __init__(self, hold_s: float = 20.0):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.requests += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(hold_s)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_stage2_with_a_judge_that_times_out_stops_clearly_without_a_done_marker(tmp_path):
    judge = HangingJudge()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "rubricrl.cli",
                "replicate",
                "rubicon",
                f"run.root={tmp_path}",
                "run.name=ci",
                *SHORT,
                "server.enabled=false",
                f"judge.base_url={judge.url}",
                "judge.timeout_s=0.3",
                "judge.retries=0",
                "judge.concurrency=2",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
            timeout=1200,
        )
    finally:
        judge.close()
    run = tmp_path / "ci"
    assert r.returncode == 2, r.stderr[-4000:]
    err = r.stderr
    assert "Traceback" not in err
    assert "stage2_rl: the rewards carry no learning signal: step 1:" in err
    assert "verdicts ungraded (100%), above run.max_ungraded_share=0.5" in err
    assert f"judge: smollm2-135m-instruct at {judge.url} (timeout_s 0.3, concurrency 2, retries 0)" in err
    assert "timeouts" in err and "judge.timeout_s" in err and "judge.concurrency" in err
    for done in ("data", "filter", "stage1_rl", "hacking"):
        assert (run / done / "DONE").is_file(), done
    s2 = run / "stage2_rl"
    assert not (s2 / "DONE").exists() and not (s2 / "final").exists() and not (s2 / "metrics.json").exists()
    health = json.loads((s2 / "reward_health.json").read_text())
    assert health["ok"] is False and health["steps_observed"] == 1 and health["judge_stats"]["timeouts"] > 0
    assert (s2 / "rollouts.jsonl").is_file() and (s2 / "log_history.jsonl").is_file()  # earlier output kept
    assert judge.requests > 0
    assert (run / "stage1_rl" / "final" / "model.safetensors").is_file()
