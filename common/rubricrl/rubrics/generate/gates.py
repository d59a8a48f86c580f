"""Quality gates on generated rubrics: near-duplicate criteria, reference copies, discrimination.

* :func:`dedup`: within one rubric, a criterion as similar as ``threshold`` to an earlier one is removed
  (seed criteria are never removed; a generated copy of one is).
* :func:`reference_copies`: criteria sharing a run of ``min_words`` consecutive words with the reference
  answer (flagged, or dropped, by the caller).
* :func:`discrimination`: grade k policy responses against the rubric with the judge; the rubric is dropped
  when the scores do not vary, by the offline filter's zero-variance rule
  (:func:`rubricrl.data.filtering.select_prompts` with ``min_std``), not a rule of its own.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rubricrl.data.filtering import select_prompts
from rubricrl.judge.interfaces import GradingRequest
from rubricrl.reward import rubric_reward
from rubricrl.rubrics.schema import Rubric

_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def similarity(a: str, b: str) -> float:
    """The larger of the character-sequence ratio and the word-set Jaccard of two criterion texts."""
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    ratio = difflib.SequenceMatcher(None, " ".join(wa), " ".join(wb)).ratio()
    sa, sb = set(wa), set(wb)
    return max(ratio, len(sa & sb) / len(sa | sb))


def dedup(
    criteria: Sequence[dict[str, Any]], threshold: float, protected: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Remove near-duplicate criteria; returns ``(kept, removed)``, each removed one with ``duplicate_of``.

    Args:
        criteria: criterion mappings in order.
        threshold: similarity (see :func:`similarity`) at or above which the later criterion is removed.
        protected: ids never removed (the seed rubric's).
    """
    kept: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for c in criteria:
        match = None
        if c["id"] not in protected:
            for k in kept:
                s = similarity(c["text"], k["text"])
                if s >= threshold:
                    match = (k["id"], s)
                    break
        if match is None:
            kept.append(c)
        else:
            removed.append(
                {"id": c["id"], "text": c["text"], "duplicate_of": match[0], "similarity": round(match[1], 3)}
            )
    return kept, removed


def reference_copies(criteria: Sequence[dict[str, Any]], reference: str, min_words: int) -> list[str]:
    """Ids of criteria sharing ``min_words`` consecutive words with ``reference`` (case and punctuation ignored)."""
    ref = words(reference or "")
    if len(ref) < min_words:
        return []
    grams = {tuple(ref[i : i + min_words]) for i in range(len(ref) - min_words + 1)}
    out = []
    for c in criteria:
        w = words(c["text"])
        if any(tuple(w[i : i + min_words]) in grams for i in range(len(w) - min_words + 1)):
            out.append(c["id"])
    return out


def copies_instructions(text: str, instructions: str, examples: Sequence[str], min_words: int = 4) -> bool:
    """Whether a criterion copies the generation prompt instead of writing for the request.

    True when it is as similar as 0.8 to one of the prompt's example criteria, or when its words (at least
    ``min_words`` of them) all appear, in order and contiguously, in the prompt's own instruction text
    (its placeholders, its rejection feedback): a small model echoes those. The request and the reference
    answer are not part of ``instructions``; quoting the request is fine.
    """
    if any(similarity(text, e) >= 0.8 for e in examples):
        return True
    w = words(text)
    if len(w) < min_words:
        return False
    return f" {' '.join(w)} " in f" {' '.join(words(instructions))} "


@dataclass
class Discrimination:
    """What the discrimination gate measured for one rubric.

    Attributes:
        scores: reward of each response (None: every verdict ungraded), in response order.
        distinct: how many distinct responses were graded.
        std: population std of the graded scores (the filter's statistic).
        reason: why the rubric is dropped (``zero_variance``, ``ungraded``, ``too_few_responses``), or None.
        n_ungraded: ungraded verdicts over all gradings.
        n_verdicts: verdicts asked for over all gradings.
    """

    scores: list[float | None] = field(default_factory=list)
    distinct: int = 0
    std: float = 0.0
    reason: str | None = None
    n_ungraded: int = 0
    n_verdicts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "distinct": self.distinct,
            "std": self.std,
            "reason": self.reason,
            "ungraded": self.n_ungraded,
            "verdicts": self.n_verdicts,
        }


async def discrimination(
    rubric: Rubric,
    conversations: Sequence[list[dict[str, str]]],
    responses: Sequence[str],
    judge: Any,
    min_std: float = 0.0,
) -> Discrimination:
    """Grade ``responses`` (to ``conversations``, pairwise) against ``rubric`` and apply the zero-variance rule.

    Identical (conversation, response) pairs are graded once and share the score. A response whose every
    verdict is ungraded has no score; fewer than two scored responses drop the rubric as ``ungraded``.
    """
    out = Discrimination()
    if len(responses) < 2:
        out.reason = "too_few_responses"
        return out
    keys = [(tuple((m["role"], m["content"]) for m in conv), resp) for conv, resp in zip(conversations, responses)]
    unique = list(dict.fromkeys(keys))
    out.distinct = len(unique)

    async def grade(key: tuple) -> tuple[float | None, int, int]:
        conv = [{"role": r, "content": c} for r, c in key[0]]
        verdicts = await judge.grade(GradingRequest(conv, key[1], rubric.criteria, rubric.id))
        ungraded = sum(v.ungraded for v in verdicts)
        if ungraded == len(verdicts):
            return None, ungraded, len(verdicts)
        return rubric_reward(rubric, verdicts).reward, ungraded, len(verdicts)

    graded = dict(zip(unique, await asyncio.gather(*(grade(k) for k in unique))))
    out.scores = [graded[k][0] for k in keys]
    out.n_ungraded = sum(graded[k][1] for k in unique)
    out.n_verdicts = sum(graded[k][2] for k in unique)
    scored = [s for s in out.scores if s is not None]
    if len(scored) < 2:
        out.reason = "ungraded"
        return out
    result = select_prompts({rubric.id: scored}, band=(0.0, 1.0), min_std=min_std)
    out.std = result.stds[rubric.id]
    if rubric.id not in result.kept:
        out.reason = "zero_variance"
    return out
