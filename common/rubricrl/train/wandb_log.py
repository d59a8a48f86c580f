"""W&B set-up for training: offline by default, online only when the user asks; never a login prompt.

``configure_wandb(cfg, run_dir)`` sets the environment TRL's W&B callback reads and returns the
``report_to`` list. ``wandb.mode`` in the config decides, but a ``WANDB_MODE`` already in the
environment wins (so a user's ``export WANDB_MODE=online`` is respected). Offline runs are written to
``<run_dir>/wandb`` and can be uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rubricrl.config import ExperimentConfig

log = logging.getLogger(__name__)


def configure_wandb(cfg: ExperimentConfig, run_dir: Path, run_name: str) -> list[str]:
    """Prepare W&B for a trainer; returns ``report_to`` (``[]`` when disabled or wandb is missing)."""
    mode = os.environ.get("WANDB_MODE") or cfg.wandb.mode
    if mode == "disabled":
        return []
    try:
        import wandb  # noqa: F401
    except ImportError:
        log.warning("wandb is not installed: metrics go to the run folder only")
        return []
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_login()):
        log.warning("wandb.mode=online but no WANDB_API_KEY / wandb login found: logging offline instead")
        mode = "offline"
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_PROJECT", cfg.wandb.project)
    wdir = Path(os.environ.get("WANDB_DIR") or run_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    # Start the run here (TRL's callback reuses an active run): an explicit id per (run, stage) makes a resumed
    # stage continue its own W&B run, and a second stage in the same process get a new one (environment
    # variables would be cached by wandb's process-wide settings after the first run).
    import wandb

    if wandb.run is not None:
        wandb.finish()
    wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity, name=run_name, group=cfg.run.name,
               id=_run_id(cfg, run_name), resume="allow", dir=str(wdir), mode=mode, tags=list(cfg.wandb.tags),
               config=cfg.to_dict())
    return ["wandb"]


def _run_id(cfg: ExperimentConfig, run_name: str) -> str:
    """A stable id per (run, stage), so a resumed stage continues the same W&B run."""
    import hashlib

    return hashlib.sha1(f"{cfg.run.dir.resolve()}::{run_name}".encode()).hexdigest()[:16]


def _has_netrc_login() -> bool:
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False
