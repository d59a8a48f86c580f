"""Fixtures shared by the replications' pipeline tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login, nothing written outside tmp_path
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish()
