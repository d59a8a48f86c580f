"""slurm/convert_checkpoint.sh glue: step selection, atomic output, idempotency, clear errors.

NeMo RL's converter is replaced by a stand-in script (the real one needs the NeMo RL container)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "convert_checkpoint.sh"

CONVERTER = """
import argparse, json, pathlib
p = argparse.ArgumentParser()
p.add_argument("--config"); p.add_argument("--megatron-ckpt-path"); p.add_argument("--hf-ckpt-path")
a = p.parse_args()
out = pathlib.Path(a.hf_ckpt_path); out.mkdir(parents=True)
(out / "config.json").write_text(json.dumps({"from": a.megatron_ckpt_path, "config": a.config}))
"""


def _run(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RR_SITE_ENV"}
    env.update(NEMO_RL_ROOT=str(root), RR_CONVERT_PYTHON="python3")
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_to_hf_picks_latest_step_and_is_idempotent(tmp_path):
    root = tmp_path / "nemo-rl"
    (root / "examples/converters").mkdir(parents=True)
    (root / "examples/converters/convert_megatron_to_hf.py").write_text(CONVERTER)
    ckpt = tmp_path / "ckpts"
    for step in (2, 10, 9):
        (ckpt / f"step_{step}/policy/weights/iter_0000000").mkdir(parents=True)
        (ckpt / f"step_{step}/config.yaml").write_text("policy: {}\n")
    r = _run("to-hf", str(ckpt), str(tmp_path / "hf"), root=root)
    assert r.returncode == 0, r.stderr
    import json

    got = json.loads((tmp_path / "hf/config.json").read_text())
    assert got["from"].endswith("step_10/policy/weights/iter_0000000")
    assert not (tmp_path / "hf.tmp").exists()
    again = _run("to-hf", str(ckpt), str(tmp_path / "hf"), root=root)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    pinned = _run("to-hf", str(ckpt), str(tmp_path / "hf2"), "2", root=root)
    assert pinned.returncode == 0 and "step_2/" in (tmp_path / "hf2/config.json").read_text()


def test_bad_input_exits_2_with_a_reason(tmp_path):
    assert _run("to-hf", str(tmp_path / "missing"), str(tmp_path / "o"), root=tmp_path).returncode == 2
    (tmp_path / "empty").mkdir()
    r = _run("to-hf", str(tmp_path / "empty"), str(tmp_path / "o"), root=tmp_path)
    assert r.returncode == 2 and "no step_<N>" in r.stderr
    assert _run("sideways", "a", "b", root=tmp_path).returncode == 2
