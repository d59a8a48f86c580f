"""A real `rubricrl serve` killed with SIGKILL leaves no vLLM process and no endpoint file behind
(issue 13 item 6): the server watchdog stops vLLM's process group once its parent is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import SERVED_MODEL, group_alive, wait_gone

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_sigkill_of_rubricrl_serve_takes_vllm_along(tmp_path):
    endpoint_file, log_file = tmp_path / "endpoint.json", tmp_path / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "rubricrl.cli",
        "serve",
        "--model",
        SERVED_MODEL,
        "--endpoint-file",
        str(endpoint_file),
        "--log-file",
        str(log_file),
    ]
    with open(tmp_path / "serve.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 600
    while not endpoint_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"rubricrl serve did not come up:\n{(tmp_path / 'serve.out').read_text()[-3000:]}")
        time.sleep(1)
    pgid = json.loads(endpoint_file.read_text())["pid"]
    try:
        assert group_alive(pgid)
        proc.send_signal(signal.SIGKILL)  # no atexit, no finally: only the watchdog can clean up
        proc.wait()
        assert wait_gone(pgid, timeout_s=60), "vLLM processes outlived a SIGKILLed `rubricrl serve`"
        deadline = time.monotonic() + 10
        while endpoint_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not endpoint_file.exists(), "the endpoint file of the dead server was left behind"
        assert "parent" in log_file.read_text() and "is gone" in log_file.read_text()
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
