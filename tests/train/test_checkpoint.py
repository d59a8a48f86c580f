"""SIGTERM / SIGINT during real GRPO training writes a checkpoint; the same command resumes from it.

Also: a few GRPO steps on the tiny random Qwen3-MoE (MoE family, Qwen3 chat template) with W&B offline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rubricrl.train.checkpoint import last_checkpoint

SCRIPT = Path(__file__).with_name("grpo_script.py")
pytestmark = pytest.mark.slow


def _start(out: Path, model: str, steps: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), model, str(steps), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_and_rerun_resumes(tmp_path, sig):
    steps = 6
    stage = tmp_path / "t" / "stage"
    proc = _start(
        tmp_path, "tiny-qwen3", steps, "wandb.mode=disabled", "+policy.chat_template_kwargs.enable_thinking=false"
    )
    rollouts = stage / "rollouts.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if rollouts.exists() and rollouts.read_text().count("\n") >= 8:  # first step's rewards are in
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 128 + sig, out
    assert "STOPPED" in out and "Traceback" not in out
    ckpt = last_checkpoint(stage / "checkpoints")
    assert ckpt is not None, out
    saved_step = json.loads((ckpt / "trainer_state.json").read_text())["global_step"]
    assert 1 <= saved_step < steps
    assert not (stage / "final").exists()

    again = _start(
        tmp_path, "tiny-qwen3", steps, "wandb.mode=disabled", "+policy.chat_template_kwargs.enable_thinking=false"
    )
    out2, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out2
    assert f"resuming from {ckpt}" in out2
    assert f"FINISHED global_step={steps}" in out2
    assert (stage / "final" / "model.safetensors").is_file()
    # the resumed run trained only the remaining steps
    resumed_steps = {json.loads(x)["step"] for x in rollouts.read_text().splitlines()}
    assert max(resumed_steps) >= saved_step


def test_tiny_qwen3_moe_grpo_steps_with_offline_wandb(tmp_path):
    proc = _start(
        tmp_path, "tiny-qwen3-moe", 2, "wandb.mode=offline", "+policy.chat_template_kwargs.enable_thinking=false"
    )
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    assert "FINISHED global_step=2" in out
    final = tmp_path / "t" / "stage" / "final"
    assert json.loads((final / "config.json").read_text())["model_type"] == "qwen3_moe"
    assert (
        "<think>" in (final / "chat_template.jinja").read_text()
        or "enable_thinking" in (final / "tokenizer_config.json").read_text()
    )
    assert list((tmp_path / "t" / "wandb").glob("offline-run-*")), "W&B offline run folder missing"
