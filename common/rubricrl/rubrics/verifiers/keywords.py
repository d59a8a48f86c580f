"""Keyword and content verifiers: required / forbidden words, frequencies, openings and endings."""

from __future__ import annotations

import re

from rubricrl.rubrics.verifiers.registry import VerifierResult, verifier
from rubricrl.rubrics.verifiers.textutil import (
    compare,
    count_phrase,
    phrase_pattern,
    relation_score,
    sentences,
    strip_decoration,
)


@verifier("keywords_present")
def keywords_present(
    response: str,
    keywords: list[str],
    mode: str = "all",
    case_sensitive: bool = False,
    whole_word: bool = True,
) -> VerifierResult:
    """Required keywords or phrases appear.

    Args:
        response: the text to check.
        keywords: words or phrases (inner whitespace matches any whitespace).
        mode: ``"all"`` (every keyword must appear) or ``"any"`` (at least one).
        case_sensitive: match case exactly.
        whole_word: match only at word boundaries ("art" does not match "start").

    Returns:
        score: fraction of keywords found (``mode="any"``: 1 if any found).
    """
    if mode not in ("all", "any"):
        raise ValueError(f"mode must be 'all' or 'any', got {mode!r}")
    if not keywords:
        raise ValueError("keywords_present: empty keyword list")
    found = [k for k in keywords if count_phrase(response, k, case_sensitive, whole_word) > 0]
    missing = [k for k in keywords if k not in found]
    ok = bool(found) if mode == "any" else not missing
    score = (1.0 if found else 0.0) if mode == "any" else len(found) / len(keywords)
    return VerifierResult(ok, score, f"missing: {missing}" if missing else "all present")


@verifier("forbidden_words")
def forbidden_words(
    response: str, words: list[str], case_sensitive: bool = False, whole_word: bool = True
) -> VerifierResult:
    """None of the listed words or phrases appears.

    Args:
        response: the text to check.
        words: forbidden words or phrases.
        case_sensitive: match case exactly.
        whole_word: match only at word boundaries.

    Returns:
        score: fraction of the forbidden words that are absent.
    """
    if not words:
        raise ValueError("forbidden_words: empty word list")
    present = [w for w in words if count_phrase(response, w, case_sensitive, whole_word) > 0]
    return VerifierResult(
        not present, 1.0 - len(present) / len(words), f"present: {present}" if present else "none present"
    )


@verifier("keyword_frequency")
def keyword_frequency(
    response: str, keyword: str, relation: str, count: int, case_sensitive: bool = False
) -> VerifierResult:
    """A word or phrase occurs a given number of times (whole-word matches).

    Args:
        response: the text to check.
        keyword: the word or phrase.
        relation: ``at_least``, ``at_most``, ``exactly``, ``less_than`` or ``more_than``.
        count: the number compared against.
        case_sensitive: match case exactly.
    """
    n = count_phrase(response, keyword, case_sensitive, True)
    return VerifierResult(compare(n, relation, count), relation_score(n, relation, count), f"{keyword!r} x{n}")


@verifier("letter_frequency")
def letter_frequency(
    response: str, letter: str, relation: str, count: int, case_sensitive: bool = False
) -> VerifierResult:
    """A single letter occurs a given number of times anywhere in the text.

    Args:
        response: the text to check.
        letter: one character.
        relation: ``at_least``, ``at_most``, ``exactly``, ``less_than`` or ``more_than``.
        count: the number compared against.
        case_sensitive: count only the given case.
    """
    if len(letter) != 1:
        raise ValueError(f"letter must be one character, got {letter!r}")
    text = response if case_sensitive else response.lower()
    n = text.count(letter if case_sensitive else letter.lower())
    return VerifierResult(compare(n, relation, count), relation_score(n, relation, count), f"{letter!r} x{n}")


def _fold(text: str, case_sensitive: bool) -> str:
    text = re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2018", "'"))
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return text if case_sensitive else text.lower()


@verifier("starts_with")
def starts_with(response: str, phrase: str, case_sensitive: bool = False) -> VerifierResult:
    """The response opens with ``phrase`` (leading whitespace, quotes and markdown emphasis ignored).

    Args:
        response: the text to check.
        phrase: the required opening words.
        case_sensitive: match case exactly.
    """
    body = _fold(response.strip().lstrip("\"'\u201c\u2018*_#> \t"), case_sensitive)
    want = _fold(phrase.strip(), case_sensitive)
    ok = body.startswith(want)
    return VerifierResult(ok, 1.0 if ok else 0.0, f"starts with {body[: len(want) + 10]!r}")


@verifier("ends_with")
def ends_with(
    response: str, phrase: str, case_sensitive: bool = False, allow_trailing_punct: bool = False
) -> VerifierResult:
    """The response ends with ``phrase``, nothing after it (trailing whitespace, quotes, ``*`` ignored).

    Args:
        response: the text to check.
        phrase: the required closing words (include their punctuation, e.g. "Any other questions?").
        case_sensitive: match case exactly.
        allow_trailing_punct: also accept one terminal mark (``.!?``) after a phrase that lacks one.
    """
    body = _fold(strip_decoration(response), case_sensitive)
    want = _fold(phrase.strip(), case_sensitive)
    ok = body.endswith(want)
    if not ok and allow_trailing_punct and body[-1:] in ".!?":
        ok = body[:-1].rstrip("\"'*_ ").endswith(want)
    return VerifierResult(ok, 1.0 if ok else 0.0, f"ends with {body[-len(want) - 10 :]!r}")


@verifier("ends_with_question")
def ends_with_question(response: str) -> VerifierResult:
    """The final sentence is a question (ends with ``?``, closing quotes and emphasis ignored).

    Args:
        response: the text to check.
    """
    sents = sentences(response)
    last = strip_decoration(sents[-1]) if sents else ""
    ok = last.endswith("?")
    return VerifierResult(ok, 1.0 if ok else 0.0, f"last sentence: {last[-60:]!r}")


@verifier("phrase_count")
def phrase_count(
    response: str, phrases: list[str], relation: str, count: int, case_sensitive: bool = False
) -> VerifierResult:
    """Total occurrences of any of ``phrases`` compare to ``count`` (e.g. at most 2 hedges in all).

    Args:
        response: the text to check.
        phrases: words or phrases whose occurrences are summed.
        relation: ``at_least``, ``at_most``, ``exactly``, ``less_than`` or ``more_than``.
        count: the number compared against.
        case_sensitive: match case exactly.
    """
    flags = 0 if case_sensitive else re.I
    n = sum(len(re.findall(phrase_pattern(p), response, flags)) for p in phrases)
    return VerifierResult(compare(n, relation, count), relation_score(n, relation, count), f"{n} occurrences")
