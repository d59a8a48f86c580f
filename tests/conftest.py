"""Shared test configuration: skip hardware- or network-bound markers where unavailable, saying why."""

from __future__ import annotations

import os
import shutil
import tempfile
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


# The largest test (a whole tiny Rubicon pipeline) writes about 1.5 GB; below this, failures are likely ENOSPC.
LOW_DISK_GB = 3.0


def _free_gb() -> dict[str, float]:
    """Free GB at the repository and at the temp folder (tmp_path lives there)."""
    return {where: shutil.disk_usage(where).free / 1e9 for where in (str(REPO), tempfile.gettempdir())}


def pytest_report_header(config):
    free = ", ".join(f"{gb:.1f} GB at {where}" for where, gb in _free_gb().items())
    return f"disk free: {free} (tmp_path folders of passed tests are deleted as they pass)"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    low = [f"{where} {gb:.1f} GB" for where, gb in _free_gb().items() if gb < LOW_DISK_GB]
    if low and exitstatus != 0:
        terminalreporter.write_line(
            f"DISK NEARLY FULL ({', '.join(low)} free): failures above may be out-of-space "
            "errors, not bugs; free space and rerun",
            red=True,
        )


def pytest_collection_modifyitems(config, items):
    skips = {
        "gpu": (not _has_cuda(), "no CUDA GPU on this machine"),
        "cluster": (
            shutil.which("sbatch") is None or not os.environ.get("RUBRICRL_CLUSTER"),
            "not on a GPU Slurm cluster (set RUBRICRL_CLUSTER=1 there)",
        ),
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
