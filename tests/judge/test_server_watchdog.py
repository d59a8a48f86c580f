"""The judge server never outlives its parent (issue 13 item 6), without vLLM: a stand-in server in a
session of its own, started the way VLLMServer starts vLLM, and a parent that is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from rubricrl.judge.server_watchdog import group_alive, remove_stale_endpoint


def _wait(cond, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


PARENT = textwrap.dedent("""
    import json, subprocess, sys, time
    from pathlib import Path
    from rubricrl.judge.server_watchdog import start_watchdog
    endpoint = Path(sys.argv[1])
    # a "server" with a child of its own, in a new session, like vLLM's API server and engine core
    server = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                               "'import time; time.sleep(600)']); time.sleep(600)"], start_new_session=True)
    endpoint.write_text(json.dumps({"pid": server.pid}))
    start_watchdog(server.pid, endpoint, None, grace_s=2.0)
    print(server.pid, flush=True)
    time.sleep(600)
""")


def test_sigkilled_parent_takes_the_server_and_its_endpoint_file_along(tmp_path):
    endpoint = tmp_path / "endpoint.json"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(endpoint)], stdout=subprocess.PIPE, text=True)
    pgid = int(parent.stdout.readline())
    try:
        assert _wait(lambda: group_alive(pgid)) and endpoint.exists()
        time.sleep(0.5)  # the server's child is up too
        parent.kill()  # SIGKILL: no atexit, no finally
        parent.wait()
        assert _wait(lambda: not group_alive(pgid)), "server group outlived its SIGKILLed parent"
        assert _wait(lambda: not endpoint.exists()), "endpoint file of the dead server was left behind"
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_stale_endpoint_file_is_removed_and_a_live_one_is_kept(tmp_path):
    f = tmp_path / "endpoint.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    f.write_text(json.dumps({"pid": dead.pid, "host": "127.0.0.1", "port": 9, "base_url": "http://127.0.0.1:9/v1"}))
    assert remove_stale_endpoint(f) is None and not f.exists()
    f.write_text("{not json")
    assert remove_stale_endpoint(f) is None and not f.exists()
    import socket

    with socket.socket() as s:  # a live pid that listens where the file says: not stale
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        f.write_text(
            json.dumps(
                {"pid": os.getpid(), "host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}/v1"}
            )
        )
        assert remove_stale_endpoint(f) == f"pid {os.getpid()}, http://127.0.0.1:{port}/v1" and f.exists()
    # the same pid, but nothing listens there any more (the pid was reused): stale
    assert remove_stale_endpoint(f) is None and not f.exists()
