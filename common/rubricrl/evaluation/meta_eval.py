"""HealthBench meta-evaluation: how well a grader agrees with physicians on rubric items.

The model under evaluation is the *grader*: each document is one (conversation, completion, rubric
item) with the labels several physicians gave (``binary_labels``). The grader prompt is rubricrl's
HealthBench judge template (the one training uses) with the completion as the last assistant turn;
the model's answer is parsed as a binary verdict (``{"explanation", "criteria_met"}``).

Record format (simple-evals ``2025-05-07-06-14-12_oss_meta_eval.jsonl``), one JSON object per line:
``prompt`` (list of ``{role, content}``), ``completion`` (str), ``rubric`` (the item text, str),
``binary_labels`` (list of bool, one per physician), ``anonymized_physician_ids`` (list, aligned),
``category`` (str, e.g. ``cluster:...``), ``prompt_id``, ``completion_id``. A ``rubric`` string that
starts with ``[points]`` gives the item's points; otherwise it is shown as a 1-point item.

Metrics follow simple-evals' pairwise scheme (the HealthBench paper's grader agreement): every
(grader label, physician label) pair of a row is one comparison.

* precision_pos / precision_neg: agreement over pairs where the grader said met / not met;
* recall_pos / recall_neg: agreement over pairs where the physician said met / not met;
* f1_pos, f1_neg: harmonic means of the matching precision and recall;
* ``macro_f1`` = (f1_pos + f1_neg) / 2 (simple-evals' ``pairwise_model_f1_balanced``, its headline);
* ``balanced_accuracy`` = (recall_pos + recall_neg) / 2 (``pairwise_model_recall_balanced``).

A grader answer that cannot be parsed is left out of the agreement and counted in ``ungraded_rate``.
``physician_macro_f1`` is the same macro F1 for each physician against the other physicians of the
rows they labelled, averaged over physicians: the human baseline to compare a grader with.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rubricrl.data import healthbench as hb
from rubricrl.errors import Problems, UserError
from rubricrl.evaluation.judging import stable_tag
from rubricrl.jsonl import iter_jsonl
from rubricrl.judge.parsing import ParseError, parse_binary
from rubricrl.judge.prompts import load_template, prompt_values
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

TEMPLATE = "healthbench"
_POINTS_RE = re.compile(r"^\s*\[\s*(-?\d+(?:\.\d+)?)\s*\]\s*(.+)$", re.S)


# ----------------------------------------------------------------------------------------- records


def record_problems(rec: Any) -> list[str]:
    """What is wrong with one meta-eval record (empty when valid)."""
    if not isinstance(rec, dict):
        return ["expected a JSON object"]
    out = []
    prompt = rec.get("prompt")
    if (
        not isinstance(prompt, list)
        or not prompt
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
        )
    ):
        out.append("prompt: expected a non-empty list of {role, content} messages")
    for key in ("completion", "rubric"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            out.append(f"{key}: missing or not a non-empty string")
    labels = rec.get("binary_labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, bool) for x in labels):
        out.append("binary_labels: expected a non-empty list of true/false")
    ids = rec.get("anonymized_physician_ids")
    if ids is not None and (not isinstance(ids, list) or (isinstance(labels, list) and len(ids) != len(labels))):
        out.append("anonymized_physician_ids: expected a list aligned with binary_labels")
    if not isinstance(rec.get("category", ""), str):
        out.append("category: expected a string")
    return out


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a meta-eval JSONL file.

    Raises:
        Problems: one ``path:line: what is wrong`` per bad line; UserError: missing or empty file.
    """
    out, problems = [], []
    for lineno, rec, bad in iter_jsonl(Path(path)):
        errs = [bad] if bad else record_problems(rec)
        if errs:
            problems.extend(f"{path}:{lineno}: {e}" for e in errs)
        else:
            out.append(rec)
    if problems:
        raise Problems(problems)
    if not out:
        raise UserError("no meta-eval records", path=str(path))
    return out


def criterion_of(rubric: str) -> Criterion:
    """The rubric item as a binary criterion (points from a leading ``[points]``, else 1)."""
    m = _POINTS_RE.match(rubric)
    if m and float(m.group(1)) != 0:
        return Criterion(id="c00", text=m.group(2).strip(), points=float(m.group(1)))
    return Criterion(id="c00", text=rubric.strip(), points=1.0)


def grader_prompt(doc: Mapping[str, Any]) -> str:
    """The grader prompt for one record: rubricrl's HealthBench template, a tag stable per record."""
    c = criterion_of(doc["rubric"])
    tag = doc_tag(doc)
    return load_template(TEMPLATE).render(prompt_values(doc["prompt"], doc["completion"], [c], tag, "binary"))


def doc_tag(doc: Mapping[str, Any]) -> str:
    return stable_tag(str(doc.get("prompt_id", "")), str(doc.get("completion_id", "")), doc["rubric"])


def grader_label(doc: Mapping[str, Any], text: str) -> bool | None:
    """The grader's ``criteria_met`` in ``text`` as answered (physicians labelled the same question,
    so negative items are not flipped, as in simple-evals); None when it cannot be parsed."""
    try:
        return bool(parse_binary(text, doc_tag(doc)).met)
    except ParseError as e:
        log.info("meta-eval: unparsable grader answer (%s)", e)
        return None


# ----------------------------------------------------------------------------------------- metrics


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _mean2(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (a + b) / 2


def pairwise_metrics(pairs: Iterable[tuple[bool, Sequence[bool]]]) -> dict[str, float | None]:
    """Pairwise agreement of a rater with reference labels.

    Args:
        pairs: ``(rater label, reference labels)`` per row.

    Returns:
        ``precision_pos/neg``, ``recall_pos/neg``, ``f1_pos/neg``, ``macro_f1``, ``balanced_accuracy``
        and ``n_pairs``; a value is None when its denominator is empty.
    """
    prec: dict[bool, list[bool]] = {True: [], False: []}
    rec: dict[bool, list[bool]] = {True: [], False: []}
    n = 0
    for mine, others in pairs:
        for other in others:
            prec[mine].append(mine == other)
            rec[other].append(mine == other)
            n += 1
    out: dict[str, float | None] = {
        "precision_pos": _rate(prec[True]),
        "precision_neg": _rate(prec[False]),
        "recall_pos": _rate(rec[True]),
        "recall_neg": _rate(rec[False]),
    }
    out["f1_pos"] = _f1(out["precision_pos"], out["recall_pos"])
    out["f1_neg"] = _f1(out["precision_neg"], out["recall_neg"])
    out["macro_f1"] = _mean2(out["f1_pos"], out["f1_neg"])
    out["balanced_accuracy"] = _mean2(out["recall_pos"], out["recall_neg"])
    out["n_pairs"] = float(n)
    return out


def physician_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float | None]:
    """Each physician against the other physicians of their rows; metrics averaged over physicians
    (physicians whose metric is undefined are skipped)."""
    per: dict[Any, list[tuple[bool, list[bool]]]] = defaultdict(list)
    for row in rows:
        labels = list(row["binary_labels"])
        ids = row.get("anonymized_physician_ids") or [f"p{i}" for i in range(len(labels))]
        for i, (pid, lab) in enumerate(zip(ids, labels)):
            others = labels[:i] + labels[i + 1 :]
            if others:
                per[pid].append((lab, others))
    out: dict[str, float | None] = {}
    for key in ("macro_f1", "balanced_accuracy"):
        vals = [v for v in (pairwise_metrics(p)[key] for p in per.values()) if v is not None]
        out[key] = sum(vals) / len(vals) if vals else None
    return out


def process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """lm-eval ``process_results``: the grader label with the physician labels, for every metric."""
    label = grader_label(doc, results[0])
    item = {
        "label": label,
        "labels": list(doc["binary_labels"]),
        "physicians": list(doc.get("anonymized_physician_ids") or []),
        "category": doc.get("category", ""),
    }
    return {
        "macro_f1": item,
        "balanced_accuracy": item,
        "f1_pos": item,
        "f1_neg": item,
        "physician_macro_f1": item,
        "ungraded_rate": float(label is None),
    }


def _agg(key: str):
    def agg(items: Sequence[Mapping[str, Any]]) -> float:
        value = pairwise_metrics((it["label"], it["labels"]) for it in items if it["label"] is not None)[key]
        return math.nan if value is None else float(value)

    agg.__name__ = f"agg_{key}"
    return agg


agg_macro_f1 = _agg("macro_f1")
agg_balanced_accuracy = _agg("balanced_accuracy")
agg_f1_pos = _agg("f1_pos")
agg_f1_neg = _agg("f1_neg")


def agg_physician_macro_f1(items: Sequence[Mapping[str, Any]]) -> float:
    """Mean physician-vs-physicians macro F1 on the evaluated rows (the human baseline)."""
    rows = [{"binary_labels": it["labels"], "anonymized_physician_ids": it["physicians"] or None} for it in items]
    value = physician_metrics(rows)["macro_f1"]
    return math.nan if value is None else float(value)


def load_dataset(data_file: str | None = None, **metadata: Any) -> dict[str, Any]:
    """lm-eval ``custom_dataset`` hook: the meta-eval records as documents.

    Args:
        data_file: a meta-eval JSONL (or the metadata key ``meta_eval_file``); default the official
            file in the data cache (downloaded once by :func:`rubricrl.data.healthbench.fetch`).
    """
    import datasets

    path = data_file or metadata.get("meta_eval_file")
    if not path:
        path = hb.cached_path("meta_eval")
        if not path.exists():
            log.warning("HealthBench meta-eval file is not in the data cache; downloading it")
            path = hb.fetch("meta_eval")
    rows = load_records(path)
    keep = (
        "prompt",
        "completion",
        "rubric",
        "binary_labels",
        "anonymized_physician_ids",
        "category",
        "prompt_id",
        "completion_id",
    )
    docs = [
        {k: (r.get(k) if k != "anonymized_physician_ids" else [str(x) for x in r.get(k) or []]) for k in keep}
        for r in rows
    ]
    for d in docs:
        d["prompt_id"], d["completion_id"] = str(d["prompt_id"] or ""), str(d["completion_id"] or "")
        d["category"] = d["category"] or ""
    return {"test": datasets.Dataset.from_list(docs)}
