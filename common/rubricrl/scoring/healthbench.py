"""HealthBench scoring, matching the reference implementation (openai/simple-evals, ``healthbench_eval.py``).

Per example, the score is ``sum(points of met items) / sum(points of items with points > 0)``; it may be
negative or above 1. It is computed through ``rubricrl.reward``'s ``points_ratio`` aggregator, so the
training reward and the evaluation metric are the same function.

Per-tag scores:

* example-level tags (the record's ``example_tags``: ``theme:...``, ``physician_agreed_category:...``)
  take the example's score;
* rubric-level tags (tags on rubric items: ``axis:...``, ``level:...``, ``cluster:...``) apply the same
  formula restricted to the items carrying the tag; an example with no positive item of that tag does
  not contribute to that tag.

Each metric is the mean over contributing examples, clipped to ``[0, 1]``, reported as ``NAME`` with
``NAME:n_samples`` and ``NAME:bootstrap_std`` (the standard deviation, ``ddof=0``, of the clipped mean
over bootstrap resamples). The reference draws its resamples from numpy's unseeded global state; here
each metric draws ``n_bootstrap`` resamples of its values with ``numpy.random.default_rng(seed)``
(``rng.integers(0, n, size=(n_bootstrap, n))``), so a result is reproducible and independent of the
order in which metrics are computed.

Ungraded verdicts (``criteria_met: null``: the judge could not produce a decision) are counted and
handled by a policy:

* ``exclude`` (default): the item is dropped from both numerator and denominator;
* ``not_met``: the item counts as not met (a lower bound on the score);
* ``fail``: scoring refuses and says how many verdicts are ungraded.

With ``exclude``, an example whose positive items are all ungraded has no score; it is counted in
``n_unscorable`` and left out of every metric.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rubricrl.errors import UserError
from rubricrl.reward import aggregate
from rubricrl.types import AggregationSpec, Criterion, Verdict

log = logging.getLogger(__name__)

UngradedPolicy = Literal["exclude", "not_met", "fail"]
UNGRADED_POLICIES: tuple[str, ...] = ("exclude", "not_met", "fail")
OVERALL = "overall_score"
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0


@dataclass
class ExampleScore:
    """Scores of one graded example.

    Attributes:
        prompt_id: the example's id.
        overall: the example's score (unclipped); ``None`` when no positive item could be scored.
        tags: tag -> score for every example-level tag and every rubric-level tag with a positive item.
        n_ungraded: ungraded verdicts in this example.
    """

    prompt_id: str
    overall: float | None
    tags: dict[str, float] = field(default_factory=dict)
    n_ungraded: int = 0


@dataclass
class HealthBenchReport:
    """Final HealthBench metrics.

    Attributes:
        metrics: reference names -> value: ``overall_score``, every tag, each with ``:n_samples`` and
            ``:bootstrap_std``.
        n_examples: examples read.
        n_scored: examples that have an overall score.
        n_ungraded: ungraded verdicts over all examples.
        n_unscorable: examples without a score (all positive items ungraded under ``exclude``).
        ungraded_policy, n_bootstrap, seed: the settings used.
    """

    metrics: dict[str, float | int]
    n_examples: int
    n_scored: int
    n_ungraded: int
    n_unscorable: int
    ungraded_policy: str
    n_bootstrap: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        """One flat object: the reference metric names, ``score`` (= ``overall_score``) and the counts."""
        out: dict[str, Any] = dict(self.metrics)
        out["score"] = self.metrics.get(OVERALL)
        # simple-evals pops only ``score`` from the clipped-mean metrics; its runner merges the rest back,
        # so its JSON carries ``score:n_samples`` and ``score:bootstrap_std`` as well (those of the overall).
        for suffix in (":n_samples", ":bootstrap_std"):
            if OVERALL + suffix in self.metrics:
                out["score" + suffix] = self.metrics[OVERALL + suffix]
        out.update(
            n_examples=self.n_examples,
            n_scored=self.n_scored,
            n_ungraded=self.n_ungraded,
            n_unscorable=self.n_unscorable,
            ungraded_policy=self.ungraded_policy,
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
        )
        return out


def _check_policy(policy: str) -> None:
    if policy not in UNGRADED_POLICIES:
        raise UserError(f"unknown ungraded policy {policy!r}; choose one of {', '.join(UNGRADED_POLICIES)}")


def points_score(
    criteria: Sequence[Criterion], verdicts: Sequence[Verdict], ungraded: UngradedPolicy = "exclude"
) -> float | None:
    """``sum(points met) / sum(positive points)`` through the shared ``points_ratio`` aggregator.

    Args:
        criteria: points-based criteria.
        verdicts: one verdict per criterion, same order.
        ungraded: ``exclude`` or ``not_met`` (``fail`` is decided before scoring).

    Returns:
        The ratio, or ``None`` when no positive-point item remains to form a denominator.
    """
    if len(criteria) != len(verdicts):
        raise ValueError(f"{len(criteria)} criteria but {len(verdicts)} verdicts")
    usable = [c for c, v in zip(criteria, verdicts) if not (ungraded == "exclude" and v.ungraded)]
    if not any((c.points or 0) > 0 for c in usable):
        return None
    spec = AggregationSpec(name="points_ratio", params={"ungraded": ungraded})
    return float(aggregate(criteria, verdicts, spec).reward)


def score_example(
    prompt_id: str,
    criteria: Sequence[Criterion],
    verdicts: Sequence[Verdict],
    example_tags: Iterable[str],
    ungraded: UngradedPolicy = "exclude",
) -> ExampleScore:
    """Overall and per-tag scores of one example (see the module docstring for the rules)."""
    _check_policy(ungraded)
    n_ungraded = sum(1 for v in verdicts if v.ungraded)
    if ungraded == "fail" and n_ungraded:
        raise UserError(f"{prompt_id}: {n_ungraded} ungraded verdicts and --ungraded fail")
    policy: UngradedPolicy = "exclude" if ungraded == "fail" else ungraded
    overall = points_score(criteria, verdicts, policy)
    out = ExampleScore(prompt_id=prompt_id, overall=overall, n_ungraded=n_ungraded)
    if overall is None:
        return out
    for tag in example_tags:
        out.tags[tag] = overall
    by_tag: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(criteria):
        for tag in dict.fromkeys(c.tags):  # a tag repeated on one item counts once
            by_tag[tag].append(i)
    for tag, idx in by_tag.items():
        score = points_score([criteria[i] for i in idx], [verdicts[i] for i in idx], policy)
        if score is not None:
            out.tags[tag] = score
    return out


def clipped_stats(
    values: Sequence[float], n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> tuple[float, int, float]:
    """Clipped mean, sample count and bootstrap std of the clipped mean.

    Args:
        values: per-example scores (unclipped).
        n_bootstrap: number of resamples (0 gives a std of 0.0).
        seed: seed of ``numpy.random.default_rng`` for the resamples.

    Returns:
        ``(clip(mean, 0, 1), len(values), std over resamples of clip(resample mean, 0, 1))``.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("no values")
    mean = float(np.clip(arr.mean(), 0.0, 1.0))
    if n_bootstrap <= 0:
        return mean, int(arr.size), 0.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_bootstrap, arr.size))
    boot = np.clip(arr[idx].mean(axis=1), 0.0, 1.0)
    return mean, int(arr.size), float(np.std(boot))


def aggregate_examples(
    scores: Sequence[ExampleScore],
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    ungraded_policy: str = "exclude",
) -> HealthBenchReport:
    """Turn per-example scores into the reference metrics (clipped means, counts, bootstrap std)."""
    values: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if s.overall is None:
            continue
        values[OVERALL].append(s.overall)
        for tag, v in s.tags.items():
            values[tag].append(v)
    metrics: dict[str, float | int] = {}
    for name in sorted(values, key=lambda n: (n != OVERALL, n)):
        mean, n, std = clipped_stats(values[name], n_bootstrap, seed)
        metrics[name] = mean
        metrics[f"{name}:n_samples"] = n
        metrics[f"{name}:bootstrap_std"] = std
    n_unscorable = sum(1 for s in scores if s.overall is None)
    if n_unscorable:
        log.warning("%d examples have no gradeable positive item and are left out", n_unscorable)
    return HealthBenchReport(
        metrics=metrics,
        n_examples=len(scores),
        n_scored=len(scores) - n_unscorable,
        n_ungraded=sum(s.n_ungraded for s in scores),
        n_unscorable=n_unscorable,
        ungraded_policy=ungraded_policy,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def score_records(
    records: Sequence[Any],
    ungraded: UngradedPolicy = "exclude",
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> HealthBenchReport:
    """Score graded records (``rubricrl.scoring.graded.GradedRecord``).

    Raises:
        UserError: ``ungraded == "fail"`` and some verdicts are ungraded (the message says how many), or
            no record could be scored.
    """
    _check_policy(ungraded)
    if ungraded == "fail":
        total = sum(r.n_ungraded for r in records)
        if total:
            bad = sum(1 for r in records if r.n_ungraded)
            raise UserError(
                f"{total} ungraded verdicts in {bad} of {len(records)} examples; re-grade them with "
                "`rubricrl grade ... --retry-ungraded`, or score with --ungraded exclude|not_met",
                exit_code=3,
            )
    scores = [score_example(r.prompt_id, r.criteria(), r.verdicts(), r.example_tags, ungraded) for r in records]
    if not any(s.overall is not None for s in scores):
        raise UserError("no example could be scored (no graded positive-point item)")
    return aggregate_examples(scores, n_bootstrap, seed, ungraded)
