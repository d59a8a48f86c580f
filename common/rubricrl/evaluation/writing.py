"""Rubric-scored writing tasks: WritingBench and a Creative-Writing-v3-style rubric task.

Both grade each criterion with the rubricrl judge in tiered mode (one call per criterion, a number on
the criterion's scale; see :mod:`rubricrl.evaluation.judging` for which judge) and keep the raw scores
as the per-example value, so the corpus metrics are pure functions of those scores:

* **WritingBench** (5 instance-specific criteria, 1-10 each): example score = mean of its criteria;
  benchmark score = mean over examples x 10 (0-100); also per language (``en``, ``zh``).
* **Creative writing** (criteria 0-20, EQ-Bench Creative Writing v3 style): negative criteria are
  inverted (``20 - x``); piece score = mean x 5 (0-100); benchmark score = mean over pieces.

Ungraded criteria (the judge gave no usable score) are left out of their example's mean and counted
(``n_ungraded``); an example with no graded criterion is left out of the corpus mean.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rubricrl.data.writingbench import load_writingbench
from rubricrl.errors import Problems, UserError
from rubricrl.evaluation import judging
from rubricrl.jsonl import iter_jsonl
from rubricrl.judge.prompts import score_range
from rubricrl.rubrics.importers import rubric_from_writingbench
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.types import Criterion, GradingRequest, Rubric

log = logging.getLogger(__name__)

CW_MAX = 20.0  # Creative Writing v3 criterion scale 0..20


# --------------------------------------------------------------------------------- pure scoring


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    got = [float(v) for v in values if v is not None]
    return sum(got) / len(got) if got else None


def writingbench_example_score(scores: Sequence[float | None]) -> float | None:
    """Mean of an example's graded criterion scores (1-10); None when none was graded."""
    return mean_or_none(scores)


def writingbench_score(examples: Sequence[Sequence[float | None]]) -> float:
    """Benchmark score: mean over examples of their mean criterion score, times 10 (NaN if none)."""
    per = [s for s in (writingbench_example_score(e) for e in examples) if s is not None]
    return 10.0 * sum(per) / len(per) if per else math.nan


def cw_piece_score(scores: Sequence[float | None], negative: Sequence[bool], top: float = CW_MAX) -> float | None:
    """Creative Writing v3 piece score: negative criteria inverted (``top - x``), mean x (100 / top).

    Raises:
        ValueError: ``scores`` and ``negative`` differ in length.
    """
    if len(scores) != len(negative):
        raise ValueError(f"{len(scores)} scores but {len(negative)} criterion flags")
    vals = [None if s is None else (top - float(s) if neg else float(s)) for s, neg in zip(scores, negative)]
    m = mean_or_none(vals)
    return None if m is None else m * (100.0 / top)


def mean_score(values: Sequence[float | None]) -> float:
    """Mean of the non-None values (NaN when none)."""
    m = mean_or_none(values)
    return math.nan if m is None else m


# --------------------------------------------------------------------------------- grading


def grade_scores(
    judge: str, conversation: list[dict[str, str]], response: str, rubric: Rubric
) -> tuple[list[float | None], dict[str, Any]]:
    """Raw tier scores of ``response`` on each criterion of ``rubric`` (None = ungraded)."""
    request = GradingRequest(
        conversation=conversation, response=response, criteria=rubric.criteria, rubric_id=rubric.id
    )
    verdicts, info = judging.grade(judge, request, tiered=True)
    return [v.score for v in verdicts], info


# --------------------------------------------------------------------------------- WritingBench


def writingbench_docs(data_file: str | None, judge: str) -> list[dict[str, Any]]:
    """WritingBench documents: ``index``, ``query``, ``lang``, ``domain1``, ``domain2``, ``record``, ``judge``."""

    examples = load_writingbench(judging.data_file_arg(data_file))
    return [
        {
            "index": str(ex.meta["index"]),
            "query": ex.query,
            "lang": str(ex.meta.get("lang") or ""),
            "domain1": str(ex.meta.get("domain1") or ""),
            "domain2": str(ex.meta.get("domain2") or ""),
            "record": json.dumps(ex.raw, ensure_ascii=False),
            "judge": judge,
        }
        for ex in examples
    ]


def writingbench_dataset(data_file: str | None = None, lang: str | None = None, **metadata: Any) -> dict[str, Any]:
    """lm-eval ``custom_dataset`` hook (``dataset_kwargs``: ``data_file``, ``lang``: ``en`` / ``zh``;
    metadata key ``writingbench_data_file``)."""
    import datasets

    rows = writingbench_docs(
        data_file or metadata.get("writingbench_data_file"), judging.prepare(metadata, tiered=True)
    )
    if lang:
        rows = [r for r in rows if r["lang"] == lang]
        if not rows:
            raise UserError(f"WritingBench has no queries with lang {lang!r}")
    return {"test": datasets.Dataset.from_list(rows)}


def writingbench_process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Grade one response on its 5 checklist criteria; every metric gets the raw scores."""

    rubric = rubric_from_writingbench(json.loads(doc["record"]))
    scores, info = grade_scores(doc["judge"], [{"role": "user", "content": doc["query"]}], results[0], rubric)
    item = {"index": doc["index"], "lang": doc["lang"], "scores": scores, "judge": info}
    return {"score": item, "score_en": item, "score_zh": item, "n_ungraded": float(sum(s is None for s in scores))}


def _wb_agg(lang: str | None):
    def agg(items: Sequence[Mapping[str, Any]]) -> float:
        return writingbench_score([it["scores"] for it in items if lang is None or it["lang"] == lang])

    agg.__name__ = f"agg_score_{lang}" if lang else "agg_score"
    return agg


writingbench_agg = _wb_agg(None)
writingbench_agg_en = _wb_agg("en")
writingbench_agg_zh = _wb_agg("zh")


# --------------------------------------------------------------------------------- creative writing


def cw_rubric(criteria_file: str | Path) -> Rubric:
    """The single rubric of a creative-writing criteria bank (0-20 tiered criteria).

    Raises:
        UserError: the bank does not hold exactly one rubric, or a criterion is not on a 0-20 scale.
    """
    rubrics = load_rubrics([criteria_file])
    if len(rubrics) != 1:
        raise UserError(f"expected one rubric, found {len(rubrics)}", path=str(criteria_file))
    bad = [c.id for c in rubrics[0].criteria if c.binary or _range(c) != (0.0, CW_MAX)]
    if bad:
        raise UserError(
            f"criteria {bad} are not scored 0-{CW_MAX:g} (set scale: [0, 20] and tiers)", path=str(criteria_file)
        )
    return rubrics[0]


def _range(c: Criterion) -> tuple[float, float]:
    return score_range(c)


def cw_docs(prompts_file: str | Path, criteria_file: str | Path, judge: str) -> list[dict[str, Any]]:
    """Creative-writing documents: ``id``, ``prompt``, ``criteria_file``, ``judge``."""

    cw_rubric(criteria_file)  # validate once, up front
    rows, problems = [], []
    for lineno, obj, bad in iter_jsonl(Path(prompts_file)):
        if (
            bad
            or not isinstance(obj, dict)
            or not isinstance(obj.get("id"), str)
            or not isinstance(obj.get("prompt"), str)
        ):
            problems.append(f"{prompts_file}:{lineno}: {bad or 'expected {id: str, prompt: str}'}")
            continue
        rows.append({"id": obj["id"], "prompt": obj["prompt"], "criteria_file": str(criteria_file), "judge": judge})
    if problems:
        raise Problems(problems)
    return rows


_cw_rubrics: dict[str, Rubric] = {}


def cw_process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Grade one piece on every criterion; the metric value is the piece score (0-100) and raw scores."""
    path = doc["criteria_file"]
    if path not in _cw_rubrics:
        _cw_rubrics[path] = cw_rubric(path)
    rubric = _cw_rubrics[path]
    scores, info = grade_scores(doc["judge"], [{"role": "user", "content": doc["prompt"]}], results[0], rubric)
    piece = cw_piece_score(scores, [c.negative for c in rubric.criteria])
    return {
        "rubric_score": {"id": doc["id"], "piece_score": piece, "scores": scores, "judge": info},
        "n_ungraded": float(sum(s is None for s in scores)),
    }


def cw_agg(items: Sequence[Mapping[str, Any]]) -> float:
    """Mean piece score (0-100) over pieces with at least one graded criterion."""
    return mean_score([it["piece_score"] for it in items])
