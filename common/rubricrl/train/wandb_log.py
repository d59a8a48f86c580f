"""W&B set-up for training: offline by default, online only when the user asks; never a login prompt.

``configure_wandb(cfg, run_dir)`` sets the environment TRL's W&B callback reads and returns the
``report_to`` list. ``wandb.mode`` in the config decides, but a ``WANDB_MODE`` already in the
environment wins (so a user's ``export WANDB_MODE=online`` is respected). Offline runs are written to
``<run_dir>/wandb`` and can be uploaded later with ``wandb sync``.

Training runs get ``job_type="train"``. ``log_stage_run`` logs what a pipeline stage without a trainer
produced (the held-out evaluation, ``job_type="eval"``; the report, ``job_type="report"``) as its own W&B run
in the same group (``run.name``), with the same stable id scheme, so a re-run stage continues its run (offline:
replaces its local folder).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rubricrl.config import ExperimentConfig

log = logging.getLogger(__name__)


def configure_wandb(cfg: ExperimentConfig, run_dir: Path, run_name: str) -> list[str]:
    """Prepare W&B for a trainer; returns ``report_to`` (``[]`` when disabled or wandb is missing)."""
    mode = _mode(cfg)
    if mode is None:
        return []
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
    wandb.init(
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        name=run_name,
        group=cfg.run.name,
        id=_run_id(cfg, run_name),
        resume="allow",
        dir=str(wdir),
        mode=mode,
        tags=list(cfg.wandb.tags),
        config=cfg.to_dict(),
        job_type="train",
    )
    return ["wandb"]


def _mode(cfg: ExperimentConfig) -> str | None:
    """The W&B mode to use (``WANDB_MODE`` wins over ``wandb.mode``), or None when disabled / not installed."""
    mode = os.environ.get("WANDB_MODE") or cfg.wandb.mode
    if mode == "disabled":
        return None
    try:
        import wandb  # noqa: F401
    except ImportError:
        log.warning("wandb is not installed: metrics go to the run folder only")
        return None
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_login()):
        log.warning("wandb.mode=online but no WANDB_API_KEY / wandb login found: logging offline instead")
        mode = "offline"
    return mode


def log_stage_run(
    cfg: ExperimentConfig,
    run_dir: Path,
    run_name: str,
    job_type: str,
    *,
    summary: Mapping[str, Any] | None = None,
    tables: Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] | None = None,
    images: Mapping[str, Path] | None = None,
    texts: Mapping[str, str] | None = None,
) -> Path | None:
    """Log one non-training stage's results as its own W&B run (offline by default).

    Args:
        cfg: the experiment config (``wandb.*``, ``run.name`` as the group).
        run_dir: ``runs/<run>``; the W&B folder is ``<run_dir>/wandb`` (or ``$WANDB_DIR``).
        run_name: W&B run name (also the seed of its stable id), e.g. ``<run>-eval``.
        job_type: ``eval`` or ``report``.
        summary: scalars for the run summary (non-numbers are skipped).
        tables: key -> (columns, rows), logged as ``wandb.Table``.
        images: key -> PNG path (missing files are skipped).
        texts: key -> text (e.g. the report's markdown), logged as preformatted HTML.

    Returns:
        The local W&B run folder, or None when W&B is disabled or not installed.
    """
    mode = _mode(cfg)
    if mode is None:
        return None
    os.environ.setdefault("WANDB_SILENT", "true")

    import wandb

    wdir = Path(os.environ.get("WANDB_DIR") or run_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    run_id = _run_id(cfg, run_name)
    if mode == "offline":
        drop_offline_runs(wdir / "wandb", run_id)
    if wandb.run is not None:
        wandb.finish()
    run = wandb.init(
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        name=run_name,
        group=cfg.run.name,
        id=run_id,
        resume="allow",
        dir=str(wdir),
        mode=mode,
        tags=list(cfg.wandb.tags),
        job_type=job_type,
        settings=wandb.Settings(console="off", silent=True),
    )
    try:
        run.config.update(cfg.to_dict(), allow_val_change=True)
        payload: dict[str, Any] = {}
        for key, (columns, rows) in (tables or {}).items():
            payload[key] = wandb.Table(columns=list(columns), data=[list(r) for r in rows])
        for key, path in (images or {}).items():
            if Path(path).is_file():
                payload[key] = wandb.Image(str(path))
        for key, text in (texts or {}).items():
            payload[key] = wandb.Html(f"<pre>{html.escape(text)}</pre>")
        if payload:
            run.log(payload)
        for key, value in (summary or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                run.summary[key] = value
        folder = Path(run.dir).parent
    finally:
        run.finish()
    log.info("W&B %s %s run written to %s", mode, job_type, folder)
    return folder


def _run_id(cfg: ExperimentConfig, run_name: str) -> str:
    """A stable id per (run, stage), so a resumed stage continues the same W&B run."""

    return hashlib.sha1(f"{cfg.run.dir.resolve()}::{run_name}".encode()).hexdigest()[:16]


def _has_netrc_login() -> bool:
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def drop_offline_runs(wandb_dir: Path, run_id: str) -> list[Path]:
    """Remove earlier offline folders of ``run_id`` under ``wandb_dir`` (what a re-logged run replaces)."""
    folders = [
        *Path(wandb_dir).glob(f"offline-run-*-{run_id}"),
        *Path(wandb_dir).glob(f"offline-run-*-{run_id}-[0-9]*"),
    ]
    gone = sorted(p for p in set(folders) if p.is_dir())  # "-<n>": a second init of the id within one second
    for p in gone:
        shutil.rmtree(p)
        log.info("replacing the earlier offline W&B run folder %s", p)
    return gone
