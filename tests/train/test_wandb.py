"""W&B: offline by default without a login; each stage gets its own run id; a stage re-run reuses its id."""

from __future__ import annotations

import os
import re

import pytest

from rubricrl.config import compose_experiment
from rubricrl.train.wandb_log import configure_wandb


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish()


def test_offline_runs_one_per_stage_and_online_without_login_falls_back(clean_env, tmp_path):
    import wandb

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=w", "wandb.mode=online"])
    assert configure_wandb(cfg, tmp_path / "w", "w-stage1") == ["wandb"]
    assert os.environ["WANDB_MODE"] == "offline"  # online asked, no key: offline, never a login prompt
    first = wandb.run.id
    wandb.log({"x": 1})
    configure_wandb(cfg, tmp_path / "w", "w-stage2")
    second = wandb.run.id
    configure_wandb(cfg, tmp_path / "w", "w-stage1")
    assert first != second and wandb.run.id == first
    wandb.finish()
    # offline-run-<YYYYMMDD_HHMMSS>-<id>[-<n>]: resuming a run within the same second adds a "-<n>" suffix
    names = [p.name for p in (tmp_path / "w" / "wandb").glob("offline-run-*")]
    runs = {m.group(1) for n in names if (m := re.match(r"offline-run-\d{8}_\d{6}-([a-z0-9]+)", n))}
    assert runs == {first, second}, names


def test_disabled(clean_env, tmp_path):
    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "wandb.mode=disabled"])
    assert configure_wandb(cfg, tmp_path, "x") == []
