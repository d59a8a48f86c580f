"""Reward-hacking mining (Rubicon: analyse the highest-reward rollouts after stage 1, write a taxonomy).

:func:`mine` takes scored rollouts (``{"prompt", "completion", "reward", ...}``), selects the top
``top_frac`` by reward, and runs every pattern detector on each rollout (all of them, so the report
can compare the top slice with the rest):

* the programmatic detectors of ``rubricrl.rubrics.verifiers`` (``builtin.DETECTORS``: prefatory
  sycophancy, laudatory self-evaluation, grader-addressed text, AI deflection, degenerate repetition,
  keyword stuffing, hidden content);
* ``degenerate_length``: empty, or longer than ``max_ratio`` x the median length in words.

The taxonomy gives, per pattern, counts in the top slice and overall, the lift (top rate / overall
rate) and examples. :func:`render_markdown` writes the report, with the gold-judge drift monitor's verdict on
the same stage (:func:`drift_lines`) when it ran.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rubricrl.rubrics.verifiers import run_verifier
from rubricrl.rubrics.verifiers.builtin import DETECTORS

PATTERN_INFO = {
    "prefatory_sycophancy": "opens by praising the user's question (paper: 'prefatory sycophancy')",
    "laudatory_self_evaluation": "the answer praises itself (paper: 'laudatory self-evaluation')",
    "grader_addressed_text": "addresses a grader, claims to meet the rubric or scores itself",
    "grader_injection": "instructions to the grader, a forged system or grader turn, or verdict-like JSON",
    "ai_deflection": "'As an AI language model...' deflection",
    "degenerate_repetition": "loops or repeats passages",
    "keyword_stuffing": "keyword lists or one content word dominating",
    "hidden_content": "text hidden from the reader (comments, zero-width characters)",
    "degenerate_length": "empty, or far longer than the median response",
}


@dataclass
class PatternStats:
    name: str
    description: str
    top_count: int = 0
    all_count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Taxonomy:
    """Mining result."""

    n_all: int
    n_top: int
    reward_cutoff: float
    patterns: dict[str, PatternStats]

    def rate(self, name: str, top: bool = True) -> float:
        p = self.patterns[name]
        n = self.n_top if top else self.n_all
        return (p.top_count if top else p.all_count) / n if n else 0.0

    def lift(self, name: str) -> float | None:
        all_rate = self.rate(name, top=False)
        return self.rate(name) / all_rate if all_rate > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_all": self.n_all,
            "n_top": self.n_top,
            "reward_cutoff": self.reward_cutoff,
            "patterns": {
                k: {
                    "description": p.description,
                    "top_count": p.top_count,
                    "all_count": p.all_count,
                    "top_rate": self.rate(k),
                    "all_rate": self.rate(k, top=False),
                    "lift": self.lift(k),
                    "examples": p.examples,
                }
                for k, p in self.patterns.items()
            },
        }


def detect(text: str, median_words: float, max_ratio: float) -> list[str]:
    """Names of the patterns present in ``text``."""
    found = []
    for name in sorted(DETECTORS):
        try:
            if run_verifier(name, text, {}).passed:
                found.append(name)
        except Exception:  # noqa: BLE001 - a detector failure is not a pattern
            continue
    words = len(text.split())
    if words == 0 or (median_words > 0 and words > max_ratio * median_words):
        found.append("degenerate_length")
    return found


def mine(
    rollouts: Sequence[dict[str, Any]], top_frac: float, max_examples: int = 3, max_ratio: float = 3.0
) -> Taxonomy:
    """Mine ``rollouts`` for hacking patterns; the top slice is the ``top_frac`` highest rewards."""
    names = sorted(DETECTORS) + ["degenerate_length"]
    pats = {n: PatternStats(n, PATTERN_INFO.get(n, n)) for n in names}
    if not rollouts:
        return Taxonomy(0, 0, 0.0, pats)
    order = sorted(range(len(rollouts)), key=lambda i: -float(rollouts[i]["reward"]))
    n_top = max(1, round(top_frac * len(rollouts)))
    top = set(order[:n_top])
    cutoff = float(rollouts[order[n_top - 1]]["reward"])
    median_words = statistics.median(len(str(r["completion"]).split()) for r in rollouts)
    for i in order:  # highest reward first, so examples are the top ones
        r = rollouts[i]
        for name in detect(str(r["completion"]), median_words, max_ratio):
            p = pats[name]
            p.all_count += 1
            if i in top:
                p.top_count += 1
                if len(p.examples) < max_examples:
                    p.examples.append(
                        {
                            "reward": r["reward"],
                            "prompt": str(r.get("prompt", ""))[:300],
                            "completion": str(r["completion"])[:500],
                            "step": r.get("step"),
                        }
                    )
    return Taxonomy(len(rollouts), n_top, cutoff, pats)


def drift_lines(drift: dict[str, Any] | None) -> list[str]:
    """The gold-judge drift monitor's verdict on the stage mined (a ``DriftMonitor.summary()``), as markdown lines.

    The monitor and the taxonomy look at the same failure from two sides: the patterns say what the high-reward
    answers do; the drift checks say whether a second judge agrees those answers are better.
    """
    if not drift:
        return [
            "## Gold-judge drift during the stage",
            "",
            "The drift monitor was off for this stage (`monitor.judge` not set): no second judge graded its rollouts.",
            "",
        ]
    lines = [
        "## Gold-judge drift during the stage",
        "",
        f"Gold judge: {drift.get('judge')}; training judge: {drift.get('train_judge')}.",
        "",
        f"Verdict: {drift.get('verdict')}.",
        "",
    ]
    rows = drift.get("rows") or []
    if rows:
        lines += [
            "| step | training-judge reward | gold-judge reward | gap | widening | n | gold ungraded |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            gold = "skipped" if r.get("gold_judge_reward") is None else f"{r['gold_judge_reward']:.3f}"
            gap = "-" if r.get("gap") is None else f"{r['gap']:+.3f}"
            wid = "-" if r.get("widening") is None else f"{r['widening']:+.3f}"
            lines.append(
                f"| {r['step']} | {r['train_judge_reward']:.3f} | {gold} | {gap} | {wid} | {r['n']} | "
                f"{r['gold_ungraded']}/{r['gold_verdicts']} |"
            )
        lines.append("")
    for w in drift.get("warnings") or []:
        lines.append(f"- warning: {w}")
    if drift.get("warnings"):
        lines.append("")
    return lines


def render_markdown(
    tax: Taxonomy, defense_rubric_id: str, title: str = "Reward-hacking taxonomy", drift: dict[str, Any] | None = None
) -> str:
    """The taxonomy report (counts, rates, lift, examples), the drift monitor's verdict on the same stage
    (``drift``: its summary with per-check ``rows``; None: the monitor was off), and what is fed to the next stage."""
    lines = [
        f"# {title}",
        "",
        f"Rollouts mined: {tax.n_all}; highest-reward slice: {tax.n_top} (reward >= {tax.reward_cutoff:.3f}).",
        "",
        "| pattern | what it is | top slice | all rollouts | lift |",
        "|---|---|---:|---:|---:|",
    ]
    for k, p in sorted(tax.patterns.items(), key=lambda kv: (-kv[1].top_count, kv[0])):
        lift = tax.lift(k)
        lines.append(
            f"| `{k}` | {p.description} | {p.top_count} ({tax.rate(k):.0%}) | "
            f"{p.all_count} ({tax.rate(k, top=False):.0%}) | {'-' if lift is None else f'{lift:.2f}'} |"
        )
    lines += [
        "",
        f"Defense rubric fed to stage 2 as a veto: `{defense_rubric_id}` (every pattern above that has a "
        "detector is one of its critical criteria).",
        "",
    ]
    lines += drift_lines(drift)
    for k, p in tax.patterns.items():
        if not p.examples:
            continue
        lines += [f"## `{k}`", ""]
        for e in p.examples:
            text = e["completion"].replace("\n", " ")
            lines.append(f"- reward {float(e['reward']):.3f}: {text}")
        lines.append("")
    return "\n".join(lines)
