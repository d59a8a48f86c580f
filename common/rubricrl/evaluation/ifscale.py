"""IFScale-style keyword inclusion: a report that must contain N given keywords, N = 10..500.

Instances are generated, not downloaded: instance ``i`` of density ``N`` draws ``N`` distinct words
from a shipped word list with ``random.Random(f"{seed}:{N}:{i}")``, so the same seed, word list and N
give the same prompts on any machine. Accuracy of a response = keywords present / N, where a keyword
is present when it occurs as a whole word, case-insensitively (a letter or digit on either side means
it is part of another word). The task score is the mean accuracy over instances; ``all_included`` is
the fraction of responses with every keyword.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError

N_VALUES = (10, 50, 100, 250, 500)
_WORD_RE = re.compile(r"^[a-z][a-z\-]*[a-z]$")

PROMPT = (
    "Write a professional business report for the leadership of a mid-sized company on how it should "
    "prepare for the coming year. The report must use each of the following {n} keywords at least once, "
    "spelled exactly as given: {keywords}.\n\nWrite the report now."
)


def load_words(path: str | Path) -> list[str]:
    """A word list: one lower-case word per line, ``#`` comments and blank lines ignored.

    Raises:
        UserError: a malformed or duplicated word (file and line named).
    """
    p = Path(path)
    out: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(p.read_text(encoding="utf-8").split("\n"), start=1):
        w = line.split("#", 1)[0].strip()
        if not w:
            continue
        if not _WORD_RE.match(w):
            raise UserError(f"not a lower-case word: {w!r}", path=str(p), line=lineno)
        if w in seen:
            raise UserError(f"duplicate word {w!r} (first on line {seen[w]})", path=str(p), line=lineno)
        seen[w] = lineno
        out.append(w)
    return out


def make_instances(words: Sequence[str], n_keywords: int, n_instances: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n_instances`` prompts of ``n_keywords`` distinct keywords each (deterministic).

    Raises:
        UserError: more keywords asked for than the list has, or a non-positive count.
    """
    if n_keywords < 1 or n_instances < 1:
        raise UserError(f"n_keywords and n_instances must be >= 1 (got {n_keywords}, {n_instances})")
    if n_keywords > len(words):
        raise UserError(f"{n_keywords} keywords asked for but the word list has {len(words)} words")
    out = []
    for i in range(n_instances):
        kw = random.Random(f"{seed}:{n_keywords}:{i}").sample(list(words), n_keywords)
        out.append(
            {
                "id": f"ifscale-{n_keywords}-{seed}-{i}",
                "n_keywords": n_keywords,
                "keywords": kw,
                "prompt": PROMPT.format(n=n_keywords, keywords=", ".join(kw)),
            }
        )
    return out


def keyword_hits(response: str, keywords: Sequence[str]) -> list[bool]:
    """For each keyword, whether it occurs in ``response`` as a whole word (case-insensitive)."""
    low = response.lower()
    return [re.search(rf"(?<![^\W_]){re.escape(k.lower())}(?![^\W_])", low) is not None for k in keywords]


def accuracy(response: str, keywords: Sequence[str]) -> float:
    """Keywords present / number of keywords."""
    if not keywords:
        raise ValueError("no keywords")
    hits = keyword_hits(response, keywords)
    return sum(hits) / len(hits)


def load_dataset(
    word_list: str, n_keywords: int = 10, n_instances: int = 20, seed: int = 0, **metadata: Any
) -> dict[str, Any]:
    """lm-eval ``custom_dataset`` hook.

    ``dataset_kwargs``: ``word_list``, ``n_keywords``, ``n_instances``, ``seed``.
    """
    import datasets

    seed = int(metadata.get("ifscale_seed", seed))
    rows = make_instances(load_words(word_list), int(n_keywords), int(n_instances), seed)
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, float]:
    """lm-eval ``process_results``: ``keyword_accuracy`` and ``all_included`` of one response."""
    acc = accuracy(results[0], doc["keywords"])
    return {"keyword_accuracy": acc, "all_included": float(acc == 1.0)}
