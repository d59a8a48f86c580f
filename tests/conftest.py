"""Shared test configuration: skip hardware- or network-bound markers where unavailable, saying why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    skips = {
        "gpu": (not _has_cuda(), "no CUDA GPU on this machine"),
        "cluster": (shutil.which("sbatch") is None or not os.environ.get("RUBRICRL_CLUSTER"),
                    "not on a GPU Slurm cluster (set RUBRICRL_CLUSTER=1 there)"),
        "judge_api": (not os.environ.get("OPENAI_API_KEY"), "OPENAI_API_KEY not set"),
        "vllm": (not VLLM_PYTHON.exists(), "no .venv-vllm; run `make setup-vllm` (make test does)"),
    }
    for item in items:
        for marker, (skip, why) in skips.items():
            if skip and item.get_closest_marker(marker) is not None:  # not `keywords`: tests/cluster/ would match
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def repo_root() -> Path:
    return REPO
