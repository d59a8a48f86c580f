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
