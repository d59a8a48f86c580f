"""The comparison table and charts as a W&B run (``wandb.Table`` + ``wandb.Image``); offline by default.

Offline runs need no account: they are written under ``<out>/wandb/offline-run-*`` and can be uploaded
later with ``wandb sync <that folder>``. ``online`` needs ``wandb login`` (or ``WANDB_API_KEY``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.report.compare import Comparison, long_rows

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


def log_report(comp: Comparison, charts: dict[str, list[Path]], out_dir: Path, mode: str,
               project: str | None = None, name: str | None = None) -> Path | None:
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
        raise UserError("--wandb online needs W&B credentials (`wandb login` or WANDB_API_KEY); "
                        "use --wandb offline (the default) and `wandb sync` the run later")
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
    run = wandb.init(project=project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT), dir=str(out_dir),
                     mode=mode, name=name or f"report-{comp.paper}", job_type="report", config=config,
                     settings=wandb.Settings(console="off", silent=True))
    try:
        payload: dict[str, Any] = {f"report/{comp.paper}/comparison": wandb.Table(columns=columns, data=rows)}
        for table_id, paths in charts.items():
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
