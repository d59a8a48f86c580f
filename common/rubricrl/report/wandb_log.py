"""The comparison table and charts as a W&B run (``wandb.Table`` + ``wandb.Image``); offline by default.

Offline runs need no account: they are written under ``<out>/wandb/offline-run-*`` and can be uploaded
later with ``wandb sync <that folder>``. ``online`` needs ``wandb login`` (or ``WANDB_API_KEY``).

The run id is stable per report folder and paper (:func:`report_run_id`), and the run is opened with
``resume="allow"``: a second ``make report`` continues the same W&B run instead of adding one. W&B cannot
resume an offline run locally, so offline a new report replaces the folder of the previous one (same id; the
report is rebuilt from the results each time), leaving one folder to ``wandb sync``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.report.compare import Comparison, long_rows
from rubricrl.train.wandb_log import drop_offline_runs

log = logging.getLogger(__name__)

MODES = ("off", "offline", "online")
DEFAULT_PROJECT = "rubricrl"


def default_mode() -> str:
    """``$WANDB_MODE`` when it is one of ours (``disabled`` counts as ``off``), else ``offline``."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env == "disabled":
        return "off"
    return env if env in MODES else "offline"


def _online_ready() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text(encoding="utf-8")
    except OSError:
        return False


def report_run_id(out_dir: Path, paper: str) -> str:
    """The W&B run id of the report written to ``out_dir`` for ``paper`` (same folder, same id)."""
    return hashlib.sha1(f"report::{Path(out_dir).resolve()}::{paper}".encode()).hexdigest()[:16]


def log_report(
    comp: Comparison,
    charts: dict[str, list[Path]],
    out_dir: Path,
    mode: str,
    project: str | None = None,
    name: str | None = None,
) -> Path | None:
    """Log the long-format comparison table, the markdown banner and every chart to one W&B run.

    Args:
        comp: the comparison.
        charts: table id -> PNG paths (from :func:`rubricrl.report.charts.write_charts`).
        out_dir: the report folder; the W&B run folder is created under ``out_dir/wandb``.
        mode: ``off``, ``offline`` or ``online``.
        project: W&B project (default ``$WANDB_PROJECT`` or ``rubricrl``).
        name: run name (default ``report-<paper>``).

    Returns:
        The local W&B run folder, or None when ``mode`` is ``off``.

    Raises:
        UserError: unknown mode, or ``online`` without W&B credentials.
    """
    if mode not in MODES:
        raise UserError(f"unknown --wandb mode {mode!r}; choose one of: {', '.join(MODES)}")
    if mode == "off":
        return None
    if mode == "online" and not _online_ready():
        raise UserError(
            "--wandb online needs W&B credentials (`wandb login` or WANDB_API_KEY); "
            "use --wandb offline (the default) and `wandb sync` the run later"
        )
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    out_dir.mkdir(parents=True, exist_ok=True)
    columns, rows = long_rows(comp)
    config: dict[str, Any] = {
        "paper": comp.paper,
        "comparable": comp.comparable,
        "banners": comp.banners,
        "runs": sorted({v.run.model for t in comp.tables for v in t.runs}),
        "judges": sorted({v.run.judge for t in comp.tables for v in t.runs}),
        "scales": sorted({v.scale for t in comp.tables for v in t.runs}),
    }
    run_id = report_run_id(out_dir, comp.paper)
    if mode == "offline":
        drop_offline_runs(out_dir / "wandb", run_id)
    if wandb.run is not None:
        wandb.finish()
    run = wandb.init(
        project=project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT),
        dir=str(out_dir),
        mode=mode,
        name=name or f"report-{comp.paper}",
        job_type="report",
        id=run_id,
        resume="allow",
        settings=wandb.Settings(console="off", silent=True),
    )
    try:
        run.config.update(config, allow_val_change=True)  # a resumed run takes this report's values
        payload: dict[str, Any] = {f"report/{comp.paper}/comparison": wandb.Table(columns=columns, data=rows)}
        for paths in charts.values():
            for p in paths:
                caption = "; ".join(comp.banners) or "comparable with the paper"
                payload[f"report/{comp.paper}/{p.stem}"] = wandb.Image(str(p), caption=caption)
        run.log(payload)
        run.summary["comparable"] = comp.comparable
        run.summary["banner"] = " | ".join(comp.banners) or "comparable"
        run_dir = Path(run.dir).parent
    finally:
        run.finish()
    log.info("W&B %s run written to %s", mode, run_dir)
    return run_dir
