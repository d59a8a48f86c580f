"""Data of the self-rewarding pipeline: HealthBench subsets, a fixed train / held-out split, TRL rows.

Paper B trains on HealthBench "Easy" (the 5000-example set minus every ``prompt_id`` of Hard, see
:func:`rubricrl.data.healthbench.load_subset`) and evaluates on Hard. Without network the pipeline uses
the 500-example offline copy (``offline``) and holds out a part of it for evaluation. The split is by
hashed ``prompt_id`` with a fixed seed (:func:`rubricrl.data.healthbench.split_heldout`), so it depends
on neither file order nor results. Size caps for small budgets (rubric items, prompt characters) are
applied after the split, to both parts alike, and never look at responses or scores.

Files written by the data stage are the published records, unchanged (one JSON object per line), so any
HealthBench tool reads them; the rubric of a TRL row is looked up by its ``prompt_id`` column.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubricrl.data.healthbench import load_examples, load_subset, split_heldout
from rubricrl.errors import UserError
from rubricrl.jsonl import write_jsonl_atomic
from rubricrl.rubrics.importers import HealthBenchExample
from rubricrl.rubrics.schema import Rubric

log = logging.getLogger(__name__)

PROMPT_ID = "prompt_id"


@dataclass(frozen=True)
class SizeCaps:
    """Budget caps for small runs (0 = no cap).

    Attributes:
        max_criteria: keep examples with at most this many rubric items.
        max_prompt_chars: keep examples whose conversation has at most this many characters.
        max_examples: keep at most this many (the first ones, in the split's order).
    """

    max_criteria: int = 0
    max_prompt_chars: int = 0
    max_examples: int = 0


def prompt_chars(ex: HealthBenchExample) -> int:
    """Characters in the example's conversation."""
    return sum(len(str(m.get("content", ""))) for m in ex.prompt)


def apply_caps(examples: Sequence[HealthBenchExample], caps: SizeCaps) -> list[HealthBenchExample]:
    """Examples within ``caps``, order kept."""
    out = [
        ex
        for ex in examples
        if (not caps.max_criteria or len(ex.rubric.criteria) <= caps.max_criteria)
        and (not caps.max_prompt_chars or prompt_chars(ex) <= caps.max_prompt_chars)
    ]
    return out[: caps.max_examples] if caps.max_examples else out


def build_split(
    examples: Sequence[HealthBenchExample],
    heldout_frac: float,
    seed: int,
    train_caps: SizeCaps = SizeCaps(),  # noqa: B008  (frozen, never mutated)
    heldout_caps: SizeCaps = SizeCaps(),  # noqa: B008  (frozen, never mutated)
) -> tuple[list[HealthBenchExample], list[HealthBenchExample]]:
    """Split by hashed ``prompt_id`` with ``seed``, then cap each part.

    Raises:
        UserError: bad fraction, duplicate ids, or a part left empty by the caps.
    """
    train, heldout = split_heldout(examples, heldout_frac, seed)
    train, heldout = apply_caps(train, train_caps), apply_caps(heldout, heldout_caps)
    if not train:
        raise UserError(
            "no training example left after the split and size caps; raise "
            "self_rewarding.data.train caps or lower heldout_frac"
        )
    if heldout_frac > 0 and not heldout:
        raise UserError(
            "no held-out example left after the split and size caps; raise "
            "self_rewarding.data.heldout caps or heldout_frac"
        )
    return train, heldout


def load_training_pool(subset: str, root: Path | None = None) -> list[HealthBenchExample]:
    """Examples of ``subset`` (``easy`` = full minus Hard by ``prompt_id``; ``offline`` = the 500 copy)."""
    return load_subset(subset, root)


def write_examples(path: Path, examples: Sequence[HealthBenchExample]) -> None:
    """Write the published records, unchanged, atomically."""
    write_jsonl_atomic(path, [ex.raw for ex in examples], overwrite=True)


def read_examples(path: Path) -> list[HealthBenchExample]:
    """Read records written by :func:`write_examples` (validated by the HealthBench importer)."""
    return load_examples(path)


def rubric_lookup(examples: Sequence[HealthBenchExample]) -> dict[str, Rubric]:
    """``prompt_id`` -> rubric (the id TRL rows carry in their ``prompt_id`` column)."""
    return {ex.prompt_id: ex.rubric for ex in examples}


def trl_rows(examples: Sequence[HealthBenchExample], system_prompt: str | None = None) -> list[dict[str, Any]]:
    """TRL dataset rows: ``prompt`` (the conversation messages) and ``prompt_id`` (the rubric's key)."""
    rows = []
    for ex in examples:
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in ex.prompt]
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        rows.append({"prompt": msgs, PROMPT_ID: ex.prompt_id})
    return rows


def summary(examples: Sequence[HealthBenchExample]) -> dict[str, float]:
    """Counts for the data stage's metrics: examples, rubric items, negative items, turns, characters."""
    n = len(examples)
    items = sum(len(ex.rubric.criteria) for ex in examples)
    neg = sum(1 for ex in examples for c in ex.rubric.criteria if (c.points or 0) < 0)
    return {
        "examples": n,
        "rubric_items": items,
        "negative_items": neg,
        "mean_items": items / n if n else 0.0,
        "mean_turns": sum(len(ex.prompt) for ex in examples) / n if n else 0.0,
        "mean_prompt_chars": sum(prompt_chars(ex) for ex in examples) / n if n else 0.0,
    }


def ids_digest(examples: Sequence[HealthBenchExample]) -> str:
    """sha256 of the sorted ``prompt_id`` list (provenance of a split)."""

    return hashlib.sha256(json.dumps(sorted(ex.prompt_id for ex in examples)).encode()).hexdigest()
