"""Case and punctuation verifiers: all lower / upper case, capitalised words, commas, exclamations."""

from __future__ import annotations

import re
import string

from rubricrl.rubrics.verifiers.registry import VerifierResult, verifier
from rubricrl.rubrics.verifiers.textutil import compare, relation_score

# Punctuation stripped from both ends of a token before it is judged as a word (ASCII + typographic quotes).
_EDGE_PUNCT = string.punctuation + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"


@verifier("all_lowercase")
def all_lowercase(response: str) -> VerifierResult:
    """Every letter is lower case (and there is at least one letter).

    Args:
        response: the text to check.
    """
    letters = [ch for ch in response if ch.isalpha()]
    upper = sum(1 for ch in letters if ch.isupper())
    ok = bool(letters) and upper == 0
    return VerifierResult(ok, 1.0 - upper / len(letters) if letters else 0.0, f"{upper} upper-case letters")


@verifier("all_uppercase")
def all_uppercase(response: str) -> VerifierResult:
    """Every letter is upper case (and there is at least one letter).

    Args:
        response: the text to check.
    """
    letters = [ch for ch in response if ch.isalpha()]
    lower = sum(1 for ch in letters if ch.islower())
    ok = bool(letters) and lower == 0
    return VerifierResult(ok, 1.0 - lower / len(letters) if letters else 0.0, f"{lower} lower-case letters")


@verifier("capital_word_frequency")
def capital_word_frequency(response: str, relation: str, count: int) -> VerifierResult:
    """Words written entirely in capitals (two letters or more, so "I" and "A" do not count).

    A word is a whitespace-separated token with its surrounding punctuation stripped, so an abbreviation
    with dots counts as one word: "U.S." and "U.K." are capital words (as in IFEval, whose NLTK tokenizer
    keeps them whole), "well-KNOWN" is not (it has lower-case letters).

    Args:
        response: the text to check.
        relation: ``at_least``, ``at_most``, ``exactly``, ``less_than`` or ``more_than``.
        count: the number compared against.
    """
    n = sum(
        1
        for w in (tok.strip(_EDGE_PUNCT) for tok in response.split())
        if sum(ch.isalpha() for ch in w) >= 2 and w.isupper()
    )
    return VerifierResult(compare(n, relation, count), relation_score(n, relation, count), f"{n} all-caps words")


@verifier("no_commas")
def no_commas(response: str) -> VerifierResult:
    """No commas at all (ASCII ``,`` or full-width ``\uff0c``).

    Args:
        response: the text to check.
    """
    n = response.count(",") + response.count("\uff0c")
    return VerifierResult(n == 0, 1.0 / (1 + n), f"{n} commas")


@verifier("no_exclamation")
def no_exclamation(response: str) -> VerifierResult:
    """No exclamation marks (``!=`` and ``!==`` operators in code do not count).

    Args:
        response: the text to check.
    """
    n = len(re.findall(r"[!\uff01](?!=)", response))
    return VerifierResult(n == 0, 1.0 / (1 + n), f"{n} exclamation marks")


@verifier("punctuation_count")
def punctuation_count(response: str, mark: str, relation: str, count: int) -> VerifierResult:
    """Occurrences of one punctuation mark or symbol (e.g. at most 2 em dashes ``\u2014``).

    Args:
        response: the text to check.
        mark: the character or short string to count.
        relation: ``at_least``, ``at_most``, ``exactly``, ``less_than`` or ``more_than``.
        count: the number compared against.
    """
    if not mark:
        raise ValueError("punctuation_count: empty mark")
    n = response.count(mark)
    return VerifierResult(compare(n, relation, count), relation_score(n, relation, count), f"{mark!r} x{n}")
