"""PNG charts of a comparison: paper rows and our runs side by side, and our deltas vs the reference row.

Our bars are hatched, and a run that is not comparable with the paper gets "not comparable" in its legend
label and a watermark across the chart, so a picture cut out of the report cannot pass for a replication.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

from rubricrl.report.compare import TableComparison

log = logging.getLogger(__name__)

PAPER_COLORS = ("#4c72b0", "#55a868", "#8172b2", "#937860", "#64b5cd", "#8c8c8c", "#ccb974", "#c44e52")
OUR_COLORS = ("#dd8452", "#da8bc3", "#e5ae38", "#c44e52")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short_scale(scale: str) -> str:
    return scale.split(" (")[0].split(";")[0].strip()


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _watermark(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, fontsize=30, color="#c44e52", alpha=0.22, ha="center",
            va="center", rotation=20, fontweight="bold", zorder=10)


def _our_label(view) -> str:
    status = "comparable" if view.comparable else "NOT comparable"
    return f"ours: {view.run.model} ({view.scale} scale, {status})"


def comparison_chart(tc: TableComparison, path: Path) -> Path:
    """Grouped bars per paper column: every paper row, then each of our runs (hatched). Missing: 'n/a'."""
    plt = _pyplot()
    t = tc.table
    keys = t.column_keys
    series: list[tuple[str, list[float | None], dict]] = []
    for i, row in enumerate(t.rows):
        series.append((f"paper: {row.model}", [row.values.get(k) for k in keys],
                       {"color": PAPER_COLORS[i % len(PAPER_COLORS)]}))
    for i, view in enumerate(tc.runs):
        series.append((_our_label(view), [view.values.get(k) for k in keys],
                       {"color": OUR_COLORS[i % len(OUR_COLORS)], "hatch": "//", "edgecolor": "black"}))
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(9.0, 1.3 * len(keys) + 3), 5.6))
    try:
        for s, (label, values, style) in enumerate(series):
            xs = [k + (s - (n - 1) / 2) * width for k in range(len(keys))]
            present = [(x, v) for x, v in zip(xs, values) if v is not None]
            bars = ax.bar([x for x, _ in present], [v for _, v in present], width=width, label=label, **style)
            if label.startswith("ours"):
                ax.bar_label(bars, labels=[t.fmt(v) for _, v in present], fontsize=7, padding=2)
                for x, v in zip(xs, values):
                    if v is None:
                        ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="#555555")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(keys)
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.set_ylabel(_short_scale(t.scale))
        flagged = [v for v in tc.runs if not v.comparable]
        subtitle = ("ours NOT comparable: " + "; ".join(sorted({r for v in flagged for r in v.reasons}))) if flagged else \
            "ours at paper scale, full benchmark, paper's grader"
        ax.set_title(f"{t.title}\n{_wrap(subtitle)}", fontsize=9, color="#c44e52" if flagged else "black")
        _finish(fig, ax, bool(flagged), path, ncol=2)
    finally:
        plt.close(fig)
    return path


def _finish(fig, ax, flagged: bool, path: Path, ncol: int) -> None:
    """Watermark non-comparable charts, place the legend below, and save."""
    if flagged:
        _watermark(ax, "NOT COMPARABLE")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=ncol, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def delta_chart(tc: TableComparison, path: Path) -> Path:
    """Our value minus the reference row's, per column and run; columns without our value are 'n/a'."""
    plt = _pyplot()
    t = tc.table
    ref = tc.reference
    keys = t.column_keys
    n = len(tc.runs)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(9.0, 1.1 * len(keys) + 3), 4.8))
    try:
        for s, view in enumerate(tc.runs):
            xs = [k + (s - (n - 1) / 2) * width for k in range(len(keys))]
            deltas = [view.delta(k, ref) for k in keys]
            present = [(x, d) for x, d in zip(xs, deltas) if d is not None]
            bars = ax.bar([x for x, _ in present], [d for _, d in present], width=width, label=_our_label(view),
                          color=OUR_COLORS[s % len(OUR_COLORS)], hatch="//" if not view.comparable else None,
                          edgecolor="black")
            ax.bar_label(bars, labels=[t.fmt(d) for _, d in present], fontsize=7, padding=2)
            for x, d in zip(xs, deltas):
                if d is None:
                    ax.text(x, 0, "n/a", ha="center", va="top", fontsize=7, rotation=90, color="#555555")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.margins(y=0.15)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(keys)
        ax.set_ylabel(f"ours − {ref.model} ({_short_scale(t.scale)})")
        flagged = any(not v.comparable for v in tc.runs)
        ax.set_title(f"Δ vs {ref.model}: {t.title}" + ("\nnot comparable: orientation only" if flagged else ""),
                     fontsize=9, color="#c44e52" if flagged else "black")
        _finish(fig, ax, flagged, path, ncol=1)
    finally:
        plt.close(fig)
    return path


def write_charts(tables: list[TableComparison], out_dir: Path) -> dict[str, list[Path]]:
    """One comparison chart per table, plus a delta chart where our runs have at least one value.

    Returns:
        table id -> written PNG paths.
    """
    written: dict[str, list[Path]] = {}
    for tc in tables:
        paths = [comparison_chart(tc, out_dir / f"{tc.table.id}.png")]
        if tc.has_values:
            paths.append(delta_chart(tc, out_dir / f"{tc.table.id}_delta.png"))
        written[tc.table.id] = paths
        log.info("charts for %s: %s", tc.table.id, ", ".join(str(p) for p in paths))
    return written
