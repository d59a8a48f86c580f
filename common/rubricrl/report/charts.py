"""PNG charts of a comparison: paper rows and our runs side by side, and our deltas vs the reference row.

Our bars are hatched and take :mod:`rubricrl.report.style`'s colours (our first run is ``OURS`` in every
chart), and a run that is not comparable with the paper gets "not comparable" in its legend label and a
watermark across the chart, so a picture cut out of the report cannot pass for a replication. A value from a
task that covers only part of a column is labelled ``‡``; a delta on fewer than ``min_n`` examples gets no
bar, only an ``n=...`` note.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

from rubricrl.report.compare import SUBSET, TableComparison
from rubricrl.report.style import WARN, our_color, paper_color

log = logging.getLogger(__name__)


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
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        fontsize=30,
        color=WARN,
        alpha=0.22,
        ha="center",
        va="center",
        rotation=20,
        fontweight="bold",
        zorder=10,
    )


def _our_label(view) -> str:
    status = "comparable" if view.comparable else "NOT comparable"
    return f"ours: {view.run.model} ({view.scale} scale, {status})"


def comparison_figure(tc: TableComparison):
    """The comparison chart as a matplotlib figure (caller closes it): grouped bars per paper column, every
    paper row, then each of our runs (hatched). Missing: 'n/a'; a partial task's value: '‡'."""
    plt = _pyplot()
    t = tc.table
    keys = t.column_keys
    series: list[tuple[str, list[float | None], dict, set[str]]] = []
    for i, row in enumerate(t.rows):
        series.append((f"paper: {row.model}", [row.values.get(k) for k in keys], {"color": paper_color(i)}, set()))
    for i, view in enumerate(tc.runs):
        series.append(
            (
                _our_label(view),
                [view.values.get(k) for k in keys],
                {"color": our_color(i), "hatch": "//", "edgecolor": "black"},
                set(view.subsets),
            )
        )
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(9.0, 1.3 * len(keys) + 3), 5.6))
    for s, (label, values, style, partial) in enumerate(series):
        xs = [k + (s - (n - 1) / 2) * width for k in range(len(keys))]
        present = [(x, v, key) for x, v, key in zip(xs, values, keys) if v is not None]
        bars = ax.bar([x for x, _, _ in present], [v for _, v, _ in present], width=width, label=label, **style)
        if label.startswith("ours"):
            ax.bar_label(
                bars,
                labels=[t.fmt(v) + (f" {SUBSET}" if key in partial else "") for _, v, key in present],
                fontsize=7,
                padding=2,
            )
            for x, v in zip(xs, values):
                if v is None:
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="#555555")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys)
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.set_ylabel(_short_scale(t.scale))
    flagged = [v for v in tc.runs if not v.comparable]
    subtitle = (
        ("ours NOT comparable: " + "; ".join(sorted({r for v in flagged for r in v.reasons})))
        if flagged
        else "ours at paper scale, full benchmark, paper's grader"
    )
    partial = sorted({f"{k}: {p}" for v in tc.runs for k, p in v.subsets.items()})
    if partial:
        subtitle += f"; {SUBSET} only part of the column: " + "; ".join(partial)
    ax.set_title(f"{t.title}\n{_wrap(subtitle)}", fontsize=9, color=WARN if flagged else "black")
    _finish(fig, ax, bool(flagged), ncol=2)
    return fig


def comparison_chart(tc: TableComparison, path: Path) -> Path:
    """:func:`comparison_figure` saved as PNG."""
    return _save(comparison_figure(tc), path)


def _finish(fig, ax, flagged: bool, ncol: int) -> None:
    """Watermark non-comparable charts and place the legend below."""
    if flagged:
        _watermark(ax, "NOT COMPARABLE")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=ncol, frameon=False)
    fig.tight_layout()


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def delta_figure(tc: TableComparison):
    """The delta chart as a matplotlib figure (caller closes it): our value minus the reference row's, per
    column and run. Columns without our value are 'n/a'; a delta on fewer than ``min_n`` examples gets no bar,
    only 'n=2 < 20'."""
    plt = _pyplot()
    t = tc.table
    ref = tc.reference
    keys = t.column_keys
    n = len(tc.runs)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(9.0, 1.1 * len(keys) + 3), 4.8))
    for s, view in enumerate(tc.runs):
        xs = [k + (s - (n - 1) / 2) * width for k in range(len(keys))]
        shown = [view.shown_delta(k, ref) for k in keys]
        present = [(x, d, key) for x, d, key in zip(xs, shown, keys) if d is not None]
        bars = ax.bar(
            [x for x, _, _ in present],
            [d for _, d, _ in present],
            width=width,
            label=_our_label(view),
            color=our_color(s),
            hatch="//" if not view.comparable else None,
            edgecolor="black",
        )
        ax.bar_label(
            bars,
            labels=[t.fmt(d) + (f" {SUBSET}" if key in view.subsets else "") for _, d, key in present],
            fontsize=7,
            padding=2,
        )
        for x, d, key in zip(xs, shown, keys):
            if d is None:
                note = f"n={view.n.get(key)} < {view.min_n}" if view.delta(key, ref) is not None else "n/a"
                ax.text(x, 0, note, ha="center", va="top", fontsize=7, rotation=90, color="#555555")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlim(-0.6, len(keys) - 0.4)
    ax.margins(y=0.15)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys)
    ax.set_ylabel(f"ours − {ref.model} ({_short_scale(t.scale)})")
    flagged = any(not v.comparable for v in tc.runs)
    left_out = any(v.too_few(k) and v.delta(k, ref) is not None for v in tc.runs for k in keys)
    notes = (["not comparable: orientation only"] if flagged else []) + (
        [f"no bar where our value rests on fewer than {tc.runs[0].min_n} examples"] if left_out else []
    )
    ax.set_title(
        f"Δ vs {ref.model}: {t.title}" + ("\n" + "; ".join(notes) if notes else ""),
        fontsize=9,
        color=WARN if flagged else "black",
    )
    _finish(fig, ax, flagged, ncol=1)
    return fig


def delta_chart(tc: TableComparison, path: Path) -> Path:
    """:func:`delta_figure` saved as PNG."""
    return _save(delta_figure(tc), path)


def write_charts(tables: list[TableComparison], out_dir: Path) -> dict[str, list[Path]]:
    """One comparison chart per table, plus a delta chart where our runs have at least one delta to show
    (present, and on at least ``min_n`` examples).

    Returns:
        table id -> written PNG paths.
    """
    written: dict[str, list[Path]] = {}
    for tc in tables:
        paths = [comparison_chart(tc, out_dir / f"{tc.table.id}.png")]
        if tc.has_deltas:
            paths.append(delta_chart(tc, out_dir / f"{tc.table.id}_delta.png"))
        written[tc.table.id] = paths
        log.info("charts for %s: %s", tc.table.id, ", ".join(str(p) for p in paths))
    return written
