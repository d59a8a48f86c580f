"""The vLLM server command line: the launcher module, not the deprecated shim, where vLLM has it."""

from __future__ import annotations

from pathlib import Path

from rubricrl.judge.vllm_server import LAUNCHER, LEGACY_ENTRY, server_module

REPO = Path(__file__).resolve().parents[2]


def test_the_project_vllm_environment_gets_the_launcher():
    python = REPO / ".venv-vllm" / "bin" / "python"
    if not python.exists():  # make test builds it; a bare checkout has no vLLM at all
        return
    assert server_module(python) == LAUNCHER


def test_an_environment_without_the_launcher_falls_back(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    assert server_module(venv / "bin" / "python") == LEGACY_ENTRY
    site = venv / "lib" / "python3.12" / "site-packages" / Path(*LAUNCHER.split(".")).parent
    site.mkdir(parents=True)
    (site / "entry.py").write_text("")
    assert server_module(venv / "bin" / "python") == LAUNCHER


def test_ctrl_c_again_while_stopping_kills_the_server_and_still_stops_the_caller(tmp_path):
    import subprocess
    import sys

    import pytest

    from rubricrl.judge.vllm_server import VLLMServer

    # A "server" that ignores SIGTERM, in its own process group as vLLM is started.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); print('up', flush=True); time.sleep(120)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "up"
    server = VLLMServer(tmp_path / "model")
    server.proc, server._watchdog = proc, None
    real_wait = proc.wait

    def interrupted_wait(timeout=None):
        if timeout is not None:  # the graceful wait: the user presses Ctrl-C a second time
            raise KeyboardInterrupt
        return real_wait()

    proc.wait = interrupted_wait
    with pytest.raises(KeyboardInterrupt):
        server.stop(timeout_s=30)
    assert proc.poll() is not None  # killed, not left running
