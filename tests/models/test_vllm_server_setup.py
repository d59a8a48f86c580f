"""VLLMServer set-up that needs no server: interpreter checks, ports, the command and environment it builds."""

from __future__ import annotations

import socket
import sys

import pytest

from rubricrl.cli import main
from rubricrl.errors import UserError
from rubricrl.judge import vllm_server
from rubricrl.judge.vllm_server import VLLMServer, check_vllm_python, free_port


def test_missing_vllm_env_says_make_setup_vllm(tmp_path):
    with pytest.raises(UserError, match="make setup-vllm"):
        check_vllm_python(tmp_path / "nope" / "python")


def test_python_without_vllm_is_rejected(tmp_path):
    # The main environment's interpreter exists but has no vllm.
    with pytest.raises(UserError, match="cannot import vllm"):
        check_vllm_python(sys.executable)


def test_env_var_selects_interpreter(monkeypatch, tmp_path):
    monkeypatch.setenv(vllm_server.VLLM_PYTHON_ENV, str(tmp_path / "py"))
    assert vllm_server.default_vllm_python() == tmp_path / "py"


def test_serve_cli_without_vllm_env_is_a_clear_error(tmp_path, capsys):
    code = main(["serve", "--model", str(tmp_path), "--vllm-python", str(tmp_path / "missing-python")])
    err = capsys.readouterr().err
    assert code == 2 and "make setup-vllm" in err and "Traceback" not in err


def test_busy_port_is_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(vllm_server, "check_vllm_python", lambda python=None: tmp_path / "python")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port}.*in use"):
            VLLMServer(str(tmp_path), port=port).start()


def test_command_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/main/venv/stuff")
    s = VLLMServer(
        str(tmp_path),
        served_model_name="judge",
        port=free_port(),
        dtype="float32",
        threads=1,
        kv_cache_gib=2,
        max_num_seqs=4,
        extra_args=["--seed", "7"],
    )
    s.model_dir = tmp_path
    cmd = s.command(tmp_path / "python")
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for part in (
        "--served-model-name judge",
        "--host 127.0.0.1",
        "--dtype float32",
        "--max-model-len 4096",
        "--enforce-eager",
        "--max-num-seqs 4",
        "--seed 7",
    ):
        assert part in joined
    env = s._environment()
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["HF_HUB_OFFLINE"] == "1"
    assert len(env["VLLM_CPU_OMP_THREADS_BIND"].split(",")) == 1
    assert "PYTHONPATH" not in env, "the main environment's paths must not leak into the vLLM interpreter"
    assert s.base_url == f"http://127.0.0.1:{s.port}/v1"


def test_auto_dtype_follows_cpu(tmp_path, monkeypatch):
    s = VLLMServer(str(tmp_path), port=1)
    s.model_dir = tmp_path
    monkeypatch.setattr(vllm_server, "cpu_has_native_bf16", lambda: False)
    assert "float32" in s.command(tmp_path / "py")
    monkeypatch.setattr(vllm_server, "cpu_has_native_bf16", lambda: True)
    assert "bfloat16" in s.command(tmp_path / "py")


def test_stop_before_start_is_harmless(tmp_path):
    VLLMServer(str(tmp_path)).stop()
