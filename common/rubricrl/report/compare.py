"""Evaluation results set against the papers' tables: values on the paper's scale, deltas, comparability.

A run is *comparable* with a paper number only when it ran at paper scale, on the full benchmark (no
``--limit``) and, where the paper names its grader, with that grader. Anything else still shows its numbers
and deltas, but every delta is flagged and the report opens with a banner saying why (e.g. "tiny scale,
SmolLM2-135M on CPU: not comparable to the paper's 30B numbers"). Missing metrics stay missing ("—").

Two more rules keep a small run from reading as a result:
- A value from a task that covers only part of a column (``subset`` in the table's mapping, e.g. one IFScale
  density for the IFS column) is shown in that column marked ``‡``, and its delta is always flagged.
- A delta whose value rests on fewer than ``min_n`` examples (``--min-n``, default :data:`DEFAULT_MIN_N`) is
  left out: the table shows ``n=2 (< 20)`` in its place and the delta chart draws no bar for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rubricrl.papers import find_paper
from rubricrl.report.paper_tables import PaperRow, PaperTable, TaskRef
from rubricrl.report.results import UNKNOWN, RunResult

SCALES = ("tiny", "single_gpu", "paper", "unknown")
TINY_PATTERNS = ("smollm2", "tiny-qwen", "tiny_qwen", "135m", "360m")
MISSING = "—"
FLAG = "†"
SUBSET = "‡"
DEFAULT_MIN_N = 20  # below this many examples a difference of two accuracies is mostly sampling noise


@dataclass
class RunView:
    """One of our runs as seen by one paper table."""

    run: RunResult
    scale: str
    reasons: list[str]
    values: dict[str, float | None]  # column key -> value on the paper's scale
    provenance: dict[str, str]  # column key -> "task metric x factor" actually used
    judged: set[str] = field(default_factory=set)  # column keys whose value came from an LLM-judged task
    used: set[tuple[str, str]] = field(default_factory=set)  # (task, metric) pairs shown in some column
    n: dict[str, int | None] = field(default_factory=dict)  # column key -> examples behind our value (None: unknown)
    subsets: dict[str, str] = field(default_factory=dict)  # column key -> the part of the column our task covers
    min_n: int = DEFAULT_MIN_N

    @property
    def judge(self) -> str:
        """The run's judge where a judged task gave a value here; 'programmatic' where none did; '—' if empty."""
        if self.judged:
            return self.run.judge
        return "programmatic" if any(v is not None for v in self.values.values()) else MISSING

    @property
    def comparable(self) -> bool:
        return not self.reasons

    def delta(self, key: str, reference: PaperRow) -> float | None:
        ours, theirs = self.values.get(key), reference.values.get(key)
        if ours is None or theirs is None:
            return None
        return ours - theirs

    def too_few(self, key: str) -> bool:
        """Our value in this column rests on fewer than ``min_n`` examples (unknown n is not too few)."""
        n = self.n.get(key)
        return n is not None and n < self.min_n

    def shown_delta(self, key: str, reference: PaperRow) -> float | None:
        """The delta as reports show it: None where it is missing or rests on too few examples."""
        return None if self.too_few(key) else self.delta(key, reference)

    def column_comparable(self, key: str) -> bool:
        """The run is comparable and this column's value is the column's full measurement."""
        return self.comparable and key not in self.subsets


@dataclass
class TableComparison:
    """A paper table plus our runs on it."""

    table: PaperTable
    runs: list[RunView]

    @property
    def reference(self) -> PaperRow:
        return self.table.row(self.table.reference_row)

    @property
    def has_values(self) -> bool:
        return any(v is not None for r in self.runs for v in r.values.values())

    @property
    def has_deltas(self) -> bool:
        """Some run has a delta that the report shows (present and on at least ``min_n`` examples)."""
        return any(r.shown_delta(k, self.reference) is not None for r in self.runs for k in self.table.column_keys)


@dataclass
class Comparison:
    """Everything a report renders: per-table comparisons and the scale banners."""

    paper: str
    tables: list[TableComparison]
    banners: list[str] = field(default_factory=list)
    min_n: int = DEFAULT_MIN_N

    def other_results(self) -> list[tuple[str, str, str, float]]:
        """(model, task, metric, value) present in the results but in no paper column (e.g. a subset)."""
        out = []
        for i, view in enumerate(self.tables[0].runs if self.tables else []):
            used = {ref for tc in self.tables for ref in tc.runs[i].used}
            for task, metrics in sorted(view.run.metrics.items()):
                for metric, value in sorted(metrics.items()):
                    if (task, metric) not in used:
                        out.append((view.run.model, task, metric, value))
        return out

    @property
    def comparable(self) -> bool:
        return all(r.comparable for t in self.tables for r in t.runs)


def infer_scale(run: RunResult, table: PaperTable, override: str | None = None) -> str:
    """``override`` (from --scale), else what the run says, else a guess from the model name.

    Only a model whose name contains one of the paper's model names counts as paper scale; known tiny
    models are ``tiny``; anything else is ``unknown`` (and therefore not comparable).
    """
    if override:
        return override
    if run.scale:
        return str(run.scale)
    name = run.model.lower()
    if any(p in name for p in TINY_PATTERNS):
        return "tiny"
    if any(p.lower() in name for p in table.paper_models):
        return "paper"
    return "unknown"


def not_comparable_reasons(run: RunResult, scale: str, table: PaperTable) -> list[str]:
    """Why this run's numbers cannot be read as a replication of the table's (empty = comparable)."""
    reasons = []
    if scale != "paper":
        reasons.append(f"{scale} scale (paper: {table.paper_size})")
    if run.limit is not None:
        reasons.append(f"limited to {run.limit:g} examples per task")
    if table.grader_match and table.grader_match.lower() not in run.judge.lower():
        reasons.append(f"judge {run.judge} is not the paper's {table.grader_short}")
    return reasons


def task_n(run: RunResult, task: str) -> int | None:
    """Examples behind a task's numbers: lm-eval's effective n-samples, else a whole-number ``--limit``."""
    if task in run.n_samples:
        return run.n_samples[task]
    if run.limit is not None and run.limit >= 1:
        return int(run.limit)
    return None


def _column_value(run: RunResult, table: PaperTable, key: str) -> tuple[float | None, TaskRef | None]:
    for ref in table.column(key).ours:
        v = run.value(ref.task, ref.metric)
        if v is not None and not math.isnan(v):
            return v * ref.factor, ref
    return None, None


def view_run(
    run: RunResult, table: PaperTable, scale_override: str | None = None, min_n: int = DEFAULT_MIN_N
) -> RunView:
    """Our run's numbers in the table's columns (None where no mapped metric exists) and its flags."""
    values: dict[str, float | None] = {}
    provenance: dict[str, str] = {}
    judged: set[str] = set()
    used: set[tuple[str, str]] = set()
    n: dict[str, int | None] = {}
    subsets: dict[str, str] = {}
    for key in table.column_keys:
        values[key], ref = _column_value(run, table, key)
        provenance[key] = ""
        n[key] = None
        if ref is not None:
            provenance[key] = f"{ref.task} {ref.metric}" + (f" x {ref.factor:g}" if ref.factor != 1 else "")
            used.add((ref.task, ref.metric))
            n[key] = task_n(run, ref.task)
            if ref.judged:
                judged.add(key)
            if ref.subset:
                subsets[key] = ref.subset
    avg = table.average
    if avg is not None:
        parts = [values.get(k) for k in avg.of]
        values[avg.column] = sum(parts) / len(parts) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
        provenance[avg.column] = f"mean of {', '.join(avg.of)}" if values[avg.column] is not None else ""
        if values[avg.column] is not None:
            ns = [n.get(k) for k in avg.of]
            n[avg.column] = min(ns) if all(x is not None for x in ns) else None  # type: ignore[type-var]
            partial = [f"{k}: {subsets[k]}" for k in avg.of if k in subsets]
            if partial:
                subsets[avg.column] = "includes " + "; ".join(partial)
    scale = infer_scale(run, table, scale_override)
    return RunView(
        run=run,
        scale=scale,
        reasons=not_comparable_reasons(run, scale, table),
        values=values,
        provenance=provenance,
        judged=judged,
        used=used,
        n=n,
        subsets=subsets,
        min_n=min_n,
    )


def _device_label(device: str) -> str:
    d = device.lower()
    if d.startswith("cpu"):
        return "CPU"
    if d.startswith("cuda"):
        return "GPU"
    return device


def banner(view: RunView, table: PaperTable) -> str:
    """The one-line warning for a run that is not comparable, naming model, device and the paper's scale."""
    where = f" on {_device_label(view.run.device)}" if view.run.device != UNKNOWN else ""
    head = f"{view.scale} scale, {view.run.model}{where}: not comparable to the paper's {table.paper_size} numbers"
    extra = [r for r in view.reasons if not r.endswith(f"scale (paper: {table.paper_size})")]
    return head + (f" ({'; '.join(extra)})" if extra else "")


def compare(
    paper: str, tables: list[PaperTable], runs: list[RunResult], scale: str | None = None, min_n: int = DEFAULT_MIN_N
) -> Comparison:
    """Build the comparison of ``runs`` against every table of ``paper``.

    Args:
        min_n: deltas whose value rests on fewer examples are left out of the report (see the module docstring).
    """
    out = Comparison(
        paper=paper,
        tables=[TableComparison(t, [view_run(r, t, scale, min_n) for r in runs]) for t in tables],
        min_n=min_n,
    )
    seen: set[str] = set()
    for tc in out.tables:
        for view in tc.runs:
            if not view.comparable:
                line = banner(view, tc.table)
                if line not in seen:
                    seen.add(line)
                    out.banners.append(line)
    return out


def _fmt_delta(table: PaperTable, view: RunView, key: str, reference: PaperRow) -> str:
    delta = view.delta(key, reference)
    if delta is None:
        return MISSING
    if view.too_few(key):
        return f"n={view.n.get(key)} (< {view.min_n})"
    comparable = view.column_comparable(key)
    text = table.fmt(delta)
    text = text if text.startswith("-") else f"+{text}"
    return text if comparable else f"{text} {FLAG}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(tc: TableComparison) -> list[str]:
    """One markdown section: paper rows, our rows, delta rows vs the reference row, column key, footnotes."""
    t = tc.table
    keys = t.column_keys
    lines = [
        f"## {t.title}",
        "",
        f"Source: arXiv {t.source.get('arxiv', '?')}, {t.source.get('where', '?')}. "
        f"Scale: {t.scale}. Paper scale: {t.paper_scale}. Paper grader: {t.grader}.",
        "",
        "| model | from | scale | judge | " + " | ".join(_cell(k) for k in keys) + " |",
        "|---|---|---|---|" + "---:|" * len(keys),
    ]
    for row in t.rows:
        vals = [t.fmt(row.values.get(k)) for k in keys]
        lines.append(
            f"| {_cell(row.model)} | paper | {_cell(row.size or t.paper_size)} | {t.grader_short} | "
            + " | ".join(vals)
            + " |"
        )
    ref = tc.reference
    for v in tc.runs:
        vals = [t.fmt(v.values.get(k)) + (f" {SUBSET}" if k in v.subsets else "") for k in keys]
        device = f" ({_device_label(v.run.device)})" if v.run.device != UNKNOWN else ""
        lines.append(
            f"| {_cell(v.run.model)} | ours | {v.scale}{device} | {_cell(v.judge)} | " + " | ".join(vals) + " |"
        )
    for v in tc.runs:
        label = f"Δ {_cell(v.run.model)} − {_cell(ref.model)}"
        status = "comparable" if v.comparable else f"**not comparable** {FLAG}"
        deltas = [_fmt_delta(t, v, k, ref) for k in keys]
        lines.append(f"| {label} | {status} | | | " + " | ".join(deltas) + " |")
    lines.append("")
    lines.append("Columns:")
    for c in t.columns:
        used = sorted({v.provenance.get(c.key, "") for v in tc.runs} - {""})
        mapped = ", ".join(f"`{r.task}` `{r.metric}`" + (f" x {r.factor:g}" if r.factor != 1 else "") for r in c.ours)
        part = sorted({v.subsets[c.key] for v in tc.runs if c.key in v.subsets})
        note_part = (
            (f" ({SUBSET} {'; '.join(part)}: part of what the column reports, so its delta is never comparable)")
            if part
            else ""
        )
        ours = (
            f"ours: {'; '.join(f'`{u}`' for u in used)}{note_part}"
            if used
            else (f"ours: none found in these results (looked for {mapped})" if mapped else "ours: no task")
        )
        note = f" {c.metric_note}" if c.metric_note else ""
        lines.append(f"- **{c.key}**: {c.name}. {ours}.{note}")
    flagged = [v for v in tc.runs if not v.comparable]
    if flagged:
        lines.append("")
        for v in flagged:
            lines.append(
                f"{FLAG} {v.run.model}: not comparable: {'; '.join(v.reasons)}. Deltas are for orientation only."
            )
    few = [(v, k) for v in tc.runs for k in keys if v.too_few(k) and v.delta(k, ref) is not None]
    if few:
        lines += [
            "",
            f"Deltas shown as `n=... (< {tc.runs[0].min_n})` are left out, here and in the delta chart "
            f"(none is drawn when no delta is left): our value there rests on fewer than {tc.runs[0].min_n} "
            "examples (`--min-n`), too few for a difference to mean anything.",
        ]
    partial = sorted({f"{k} ({p})" for v in tc.runs for k, p in v.subsets.items()})
    if partial:
        lines += [
            "",
            f"{SUBSET} our task covers only part of what the column reports: {', '.join(partial)}. "
            "Its delta is flagged even for a run that is otherwise comparable.",
        ]
    lines.append("")
    return lines


def render_markdown(comp: Comparison, charts: dict[str, list[str]] | None = None) -> str:
    """The full report: title, banner, runs, one section per table (with its charts when given)."""
    paper = find_paper(comp.paper)
    lines = [f"# rubricrl report: ours vs {paper.label if paper is not None else comp.paper}", ""]
    for b in comp.banners:
        lines.append(f"> **{b}.** Deltas are shown for orientation only and marked {FLAG}.")
        lines.append(">")
    if comp.banners:
        lines[-1] = ""
    runs = comp.tables[0].runs if comp.tables else []
    lines += [
        "## Runs",
        "",
        "| model | scale | judge (judged tasks) | device | limit | examples | results |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, v in enumerate(runs):
        judged = any(tc.runs[i].judged for tc in comp.tables)
        judge = v.run.judge if judged or v.run.judge == UNKNOWN else f"not used here (configured: {v.run.judge})"
        n = sum(v.run.n_samples.values()) if v.run.n_samples else None
        limit = MISSING if v.run.limit is None else f"{v.run.limit:g}"
        lines.append(
            f"| {_cell(v.run.model)} | {v.scale} | {_cell(judge)} | {_cell(v.run.device)} | {limit} | "
            f"{MISSING if n is None else n} | {'<br>'.join(f'`{s}`' for s in v.run.sources)} |"
        )
    lines.append("")
    for v in runs:
        for task, why in sorted(v.run.skipped.items()):
            lines.append(f"- {_cell(v.run.model)}: `{task}` not run: {_cell(why)}")
    if any(v.run.skipped for v in runs):
        lines.append("")
    for tc in comp.tables:
        lines += render_table(tc)
        for png in (charts or {}).get(tc.table.id, []):
            lines += [f"![{tc.table.id}]({png})", ""]
    other = comp.other_results()
    if other:
        lines += [
            "## Other results (no paper column)",
            "",
            "Measured, but not what any column of the paper's tables reports (e.g. another subset or density).",
            "",
            "| model | task | metric | value |",
            "|---|---|---|---:|",
        ]
        lines += [f"| {_cell(m)} | `{t}` | `{k}` | {v:.4g} |" for m, t, k, v in other]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def long_rows(comp: Comparison) -> tuple[list[str], list[list[Any]]]:
    """One row per (table, column, paper row, our run): the shape W&B tables and CSV tools want."""
    columns = [
        "table",
        "column",
        "column_name",
        "paper_model",
        "paper_value",
        "our_model",
        "our_value",
        "delta",
        "scale",
        "judge",
        "limit",
        "comparable",
        "not_comparable_because",
        "our_metric",
        "n_examples",
        "delta_shown",
        "subset",
    ]
    rows: list[list[Any]] = []
    for tc in comp.tables:
        for v in tc.runs:
            for c in tc.table.columns:
                for prow in tc.table.rows:
                    rows.append(
                        [
                            tc.table.id,
                            c.key,
                            c.name,
                            prow.model,
                            prow.values.get(c.key),
                            v.run.model,
                            v.values.get(c.key),
                            v.delta(c.key, prow),
                            v.scale,
                            v.run.judge
                            if c.key in v.judged
                            else ("programmatic" if v.values.get(c.key) is not None else None),
                            v.run.limit,
                            v.column_comparable(c.key),
                            "; ".join(v.reasons),
                            v.provenance.get(c.key, ""),
                            v.n.get(c.key),
                            v.shown_delta(c.key, prow) is not None,
                            v.subsets.get(c.key, ""),
                        ]
                    )
    return columns, rows


def to_json(comp: Comparison) -> dict[str, Any]:
    """Machine-readable summary written beside the markdown (``comparison.json``)."""
    return {
        "paper": comp.paper,
        "comparable": comp.comparable,
        "banners": comp.banners,
        "min_n": comp.min_n,
        "tables": [
            {
                "id": tc.table.id,
                "title": tc.table.title,
                "scale": tc.table.scale,
                "grader": tc.table.grader,
                "reference_row": tc.table.reference_row,
                "paper_rows": [{"model": r.model, "size": r.size, "values": r.values} for r in tc.table.rows],
                "runs": [
                    {
                        "model": v.run.model,
                        "scale": v.scale,
                        "judge": v.judge,
                        "device": v.run.device,
                        "limit": v.run.limit,
                        "comparable": v.comparable,
                        "not_comparable_because": v.reasons,
                        "values": v.values,
                        "metric_used": v.provenance,
                        "sources": v.run.sources,
                        "delta_vs_reference": {k: v.delta(k, tc.reference) for k in tc.table.column_keys},
                        "n_examples": v.n,
                        "subset": v.subsets,
                        "delta_left_out_below_min_n": [
                            k for k in tc.table.column_keys if v.too_few(k) and v.delta(k, tc.reference) is not None
                        ],
                    }
                    for v in tc.runs
                ],
            }
            for tc in comp.tables
        ],
    }
