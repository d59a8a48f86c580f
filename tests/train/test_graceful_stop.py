"""GracefulStop: a duplicated SIGTERM (Slurm + apptainer forwarding) must not skip the checkpoint.

Real signals sent to a real child process that runs the stop loop the stages use.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = r"""
import sys, time
from rubricrl.train.checkpoint import GracefulStop
with GracefulStop(sigterm_dedup_s=float(sys.argv[1])) as stop:
    print("ready", flush=True)
    while stop.requested is None:
        time.sleep(0.01)
    time.sleep(1.5)                      # "finishing the step": a second signal may arrive meanwhile
    print("checkpoint saved", flush=True)
sys.exit(143)
"""


def _run(dedup_s: float, *sigs: int) -> tuple[int, str]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(dedup_s)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert p.stdout.readline().strip() == "ready"
    for s in sigs:
        p.send_signal(s)
        time.sleep(0.2)
    out, _ = p.communicate(timeout=30)
    return p.returncode, out


def test_sigterm_twice_at_once_still_checkpoints():
    rc, out = _run(30, signal.SIGTERM, signal.SIGTERM)
    assert rc == 143 and "checkpoint saved" in out and "delivered twice" in out


def test_sigterm_again_after_the_window_or_ctrl_c_twice_exits_now():
    rc, out = _run(0, signal.SIGTERM, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM and "checkpoint saved" not in out
    rc, out = _run(30, signal.SIGINT, signal.SIGINT)
    assert rc == 128 + signal.SIGINT and "checkpoint saved" not in out
