"""Length verifiers: words, sentences, paragraphs, characters, lines."""

from __future__ import annotations

import re

from rubricrl.rubrics.verifiers.registry import VerifierResult, verifier
from rubricrl.rubrics.verifiers.textutil import (
    DIVIDER_PATTERN,
    bounded_score,
    in_bounds,
    lines,
    paragraphs,
    sentences,
    strip_decoration,
    words,
)


def _range_result(what: str, n: int, lo: int | None, hi: int | None, exact: int | None = None) -> VerifierResult:
    if lo is None and hi is None and exact is None:
        raise ValueError(f"{what}: give at least one bound")
    if exact is not None:
        lo = hi = exact
    ok = in_bounds(n, lo, hi)
    return VerifierResult(
        ok,
        bounded_score(n, lo, hi),
        f"{n} {what} (wanted {lo if lo is not None else '-'}..{hi if hi is not None else '-'})",
    )


@verifier("word_count")
def word_count(response: str, min_words: int | None = None, max_words: int | None = None) -> VerifierResult:
    """Number of words lies within bounds.

    Args:
        response: the text to check.
        min_words: inclusive lower bound (``None``: unchecked).
        max_words: inclusive upper bound (``None``: unchecked).
    """
    return _range_result("words", len(words(response)), min_words, max_words)


@verifier("sentence_count")
def sentence_count(
    response: str, min_sentences: int | None = None, max_sentences: int | None = None, exact: int | None = None
) -> VerifierResult:
    """Number of sentences (offline splitter, see ``textutil.sentences``) lies within bounds.

    Args:
        response: the text to check.
        min_sentences: inclusive lower bound.
        max_sentences: inclusive upper bound.
        exact: required exact count (overrides the bounds).
    """
    return _range_result("sentences", len(sentences(response)), min_sentences, max_sentences, exact)


@verifier("paragraph_count")
def paragraph_count(
    response: str,
    exact: int | None = None,
    min_paragraphs: int | None = None,
    max_paragraphs: int | None = None,
    separator: str = "blank_line",
) -> VerifierResult:
    """Number of paragraphs lies within bounds.

    Args:
        response: the text to check.
        exact: required exact count (overrides the bounds).
        min_paragraphs: inclusive lower bound.
        max_paragraphs: inclusive upper bound.
        separator: ``"blank_line"`` or ``"***"`` (paragraphs divided by a markdown divider line).
            With ``"***"``, an empty paragraph (two dividers in a row, or a divider at either end)
            fails the check.
    """
    paras = paragraphs(response, separator)
    res = _range_result("paragraphs", len(paras), min_paragraphs, max_paragraphs, exact)
    if separator == "***":
        raw = re.split(DIVIDER_PATTERN, response.strip(), flags=re.M)
        if any(not p.strip() for p in raw):
            return VerifierResult(False, 0.0, "empty paragraph between '***' dividers")
    return res


@verifier("char_count")
def char_count(
    response: str, min_chars: int | None = None, max_chars: int | None = None, count_spaces: bool = True
) -> VerifierResult:
    """Number of characters (leading/trailing whitespace excluded) lies within bounds.

    Args:
        response: the text to check.
        min_chars: inclusive lower bound.
        max_chars: inclusive upper bound.
        count_spaces: count whitespace characters too (``False``: only non-whitespace).
    """
    text = response.strip()
    n = len(text) if count_spaces else sum(1 for ch in text if not ch.isspace())
    return _range_result("characters", n, min_chars, max_chars)


@verifier("line_count")
def line_count(
    response: str, max_lines: int | None = None, min_lines: int | None = None, skip_blank: bool = True
) -> VerifierResult:
    """Number of lines lies within bounds (e.g. a haiku in exactly three lines: min=max=3).

    Args:
        response: the text to check.
        max_lines: inclusive upper bound.
        min_lines: inclusive lower bound.
        skip_blank: ignore empty lines when counting.
    """
    return _range_result("lines", len(lines(response.strip(), skip_blank)), min_lines, max_lines)


@verifier("sentence_length")
def sentence_length(response: str, max_words: int | None = None, max_mean_words: float | None = None) -> VerifierResult:
    """Sentences are short: none longer than ``max_words`` and/or a mean length at most ``max_mean_words``.

    Args:
        response: the text to check.
        max_words: longest allowed sentence, in words.
        max_mean_words: highest allowed mean sentence length, in words.
    """
    if max_words is None and max_mean_words is None:
        raise ValueError("sentence_length: give max_words and/or max_mean_words")
    lengths = [len(words(s)) for s in sentences(response)] or [0]
    longest, mean = max(lengths), sum(lengths) / len(lengths)
    ok = (max_words is None or longest <= max_words) and (max_mean_words is None or mean <= max_mean_words)
    over = sum(1 for n in lengths if max_words is not None and n > max_words)
    score = 1.0 - over / len(lengths)
    if max_mean_words is not None and mean > max_mean_words:
        score = min(score, max_mean_words / mean)
    return VerifierResult(ok, score, f"longest {longest} words, mean {mean:.1f}")


@verifier("paragraph_first_word")
def paragraph_first_word(
    response: str, index: int, word: str, separator: str = "blank_line", min_paragraphs: int | None = None
) -> VerifierResult:
    """Paragraph number ``index`` (1-based) starts with ``word`` (case-insensitive, decoration ignored).

    Args:
        response: the text to check.
        index: 1-based paragraph number.
        word: the required first word.
        separator: paragraph separator, as for ``paragraph_count``.
        min_paragraphs: optionally also require at least this many paragraphs.
    """
    paras = paragraphs(response, separator)
    if min_paragraphs is not None and len(paras) < min_paragraphs:
        return VerifierResult(False, 0.0, f"only {len(paras)} paragraphs")
    if index < 1 or index > len(paras):
        return VerifierResult(False, 0.0, f"no paragraph {index} (found {len(paras)})")
    toks = words(strip_decoration(paras[index - 1]))
    first = toks[0] if toks else ""
    ok = first.lower() == word.lower()
    return VerifierResult(ok, 1.0 if ok else 0.0, f"paragraph {index} starts with {first!r}")
