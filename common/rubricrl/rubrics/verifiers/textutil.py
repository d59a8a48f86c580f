"""Offline text helpers shared by the verifiers: words, sentences, paragraphs, lines, comparisons.

Everything here is pure-stdlib regex work (no NLTK). The sentence splitter handles common
abbreviations ("Dr.", "e.g.", "U.S."), initials ("J. K. Rowling"), decimals ("3.14"), ellipses
("wait... then"), closing quotes after terminal punctuation, numbered-list markers and markdown
list / heading lines (each its own unit).
"""

from __future__ import annotations

import re

WORD_RE = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")

# Lower-cased tokens (without their final period) after which a period does not end a sentence.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf al approx dept inc ltd co corp bros gov gen col lt
    sgt capt rev hon jan feb apr jun jul aug sep sept oct nov dec tues thu thurs fri u.s u.k u.n e.u
    a.m p.m ph.d m.d b.a m.a b.sc eds viz univ assn ave blvd
    """.split()
)
# Abbreviations that precede a number ("No. 5", "fig. 2", "p. 14"): no split when a digit follows.
_BEFORE_NUMBER = frozenset({"no", "nos", "fig", "figs", "vol", "vols", "ch", "chap", "sec", "p", "pp", "para", "eq"})
# Abbreviations that can also close a sentence: split after them when a capital follows.
_CAN_END = frozenset({"etc", "inc", "ltd", "co", "corp", "a.m", "p.m", "u.s", "u.k", "al"})
# Titles: never a sentence end, whatever follows.
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "mt", "gen", "col", "lt", "sgt", "capt", "rev", "hon"})

_LIST_LINE_RE = re.compile(r"^\s*(?:[-*\u2022+]\s+|\d+[.)]\s+|#{1,6}\s+|>\s*)")
_BOUNDARY_RE = re.compile(r"(\.\.\.|\u2026|[.!?]+)([\"'\u201d\u2019)\]*_]*)(\s+)")
_CLOSERS = "\"'\u201d\u2019)]*_"

DIVIDER_PATTERN = r"^[ \t]*\*[ \t]*\*[ \t]*\*[ \t*]*$"

RELATIONS = ("at_least", "at_most", "exactly", "less_than", "more_than")


def words(text: str) -> list[str]:
    """Word tokens: runs of letters/digits, keeping inner apostrophes and hyphens ("don't", "well-known")."""
    return WORD_RE.findall(text)


def lines(text: str, skip_blank: bool = True) -> list[str]:
    """Lines of ``text``; blank ones dropped unless ``skip_blank`` is False."""
    out = text.splitlines()
    return [ln for ln in out if ln.strip()] if skip_blank else out


def paragraphs(text: str, separator: str = "blank_line") -> list[str]:
    """Split ``text`` into non-empty paragraphs.

    Args:
        text: the response.
        separator: ``"blank_line"`` (one or more empty lines) or ``"***"`` (a markdown divider line
            made of three or more asterisks, as in IFEval's paragraph instructions).
    """
    if separator == "***":
        parts = re.split(DIVIDER_PATTERN, text, flags=re.M)
    elif separator == "blank_line":
        parts = re.split(r"\n[ \t]*\n", text.strip())
    else:
        raise ValueError(f"separator must be 'blank_line' or '***', got {separator!r}")
    return [p.strip() for p in parts if p.strip()]


def _units(text: str) -> list[str]:
    """Break text into units that no sentence crosses: paragraphs, list items, headings."""
    units: list[str] = []
    buf: list[str] = []
    for ln in text.splitlines():
        if not ln.strip():
            if buf:
                units.append(" ".join(buf))
                buf = []
        elif _LIST_LINE_RE.match(ln):
            if buf:
                units.append(" ".join(buf))
                buf = []
            units.append(_LIST_LINE_RE.sub("", ln, count=1).strip())
        else:
            buf.append(ln.strip())
    if buf:
        units.append(" ".join(buf))
    return [u for u in units if u]


def _token_before(unit: str, end: int) -> str:
    m = re.search(r"([\w.\-']+)$", unit[:end])
    return m.group(1) if m else ""


def _is_boundary(unit: str, m: re.Match[str]) -> bool:
    punct = m.group(1)
    nxt = unit[m.end() : m.end() + 1]
    if not nxt:
        return True
    upper_next = nxt.isupper() or nxt.isdigit() or nxt in "\"'\u201c\u2018(["
    if punct in ("...", "\u2026"):
        return nxt.isupper() or nxt in "\"'\u201c\u2018"
    if punct[0] in "!?" or "!" in punct or "?" in punct:
        # "Really?" she asked. -> one sentence when a lower-case word follows a closing quote.
        return not (m.group(2) and nxt.islower())
    token = _token_before(unit, m.start(1)).lower().rstrip(".")
    if token in _TITLES:
        return False
    if token in _BEFORE_NUMBER and nxt.isdigit():
        return False
    if token in ABBREVIATIONS:
        return token in _CAN_END and upper_next
    if len(token) == 1 and token.isalpha() and unit[m.start(1) - 1].isupper() and nxt.isupper():
        return False  # an initial: "J. K. Rowling"
    if token.isdigit() and unit[: m.start(1)].strip() == token:
        return False  # a list number at the start of a unit
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):
        return upper_next  # dotted abbreviations such as "a.k.a." or "N.A.S.A."
    return True


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences with an offline, rule-based splitter.

    Paragraphs, list items and headings are separate units; inside a unit a boundary is terminal
    punctuation (optionally followed by closing quotes/brackets) plus whitespace, except after known
    abbreviations and titles, initials, list numbers, and ellipses followed by a lower-case word.
    Decimals ("3.5") never split because no whitespace follows their period.

    Returns:
        Sentences with surrounding whitespace stripped; empty list for empty text.
    """
    out: list[str] = []
    for unit in _units(text):
        start = 0
        for m in _BOUNDARY_RE.finditer(unit):
            if _is_boundary(unit, m):
                piece = unit[start : m.start(3)].strip()
                if piece:
                    out.append(piece)
                start = m.end()
        tail = unit[start:].strip()
        if tail:
            out.append(tail)
    return [s for s in out if words(s) or s.strip(_CLOSERS + ".!?")]


def compare(n: float, relation: str, count: float) -> bool:
    """Evaluate ``n <relation> count`` for the relation names in ``RELATIONS``.

    Raises:
        ValueError: unknown relation.
    """
    rel = relation.strip().lower().replace(" ", "_")
    if rel == "at_least":
        return n >= count
    if rel == "at_most":
        return n <= count
    if rel == "exactly":
        return n == count
    if rel == "less_than":
        return n < count
    if rel == "more_than":
        return n > count
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def bounded_score(n: float, lo: float | None, hi: float | None) -> float:
    """Graded closeness of ``n`` to the interval [lo, hi]: 1 inside, decaying proportionally outside."""
    if lo is not None and n < lo:
        return max(0.0, n / lo) if lo > 0 else 0.0
    if hi is not None and n > hi:
        return max(0.0, hi / n) if n > 0 else 0.0
    return 1.0


def relation_score(n: float, relation: str, count: float) -> float:
    """Graded value for a ``compare`` check: 1 when it holds, else proportional distance."""
    if compare(n, relation, count):
        return 1.0
    rel = relation.strip().lower().replace(" ", "_")
    if rel in ("at_least", "more_than"):
        return bounded_score(n, count, None)
    if rel in ("at_most", "less_than"):
        return bounded_score(n, None, count)
    return max(0.0, 1.0 - abs(n - count) / max(count, 1.0))


def in_bounds(n: float, lo: float | None, hi: float | None) -> bool:
    """True when ``lo <= n <= hi`` (a missing bound is not checked)."""
    return (lo is None or n >= lo) and (hi is None or n <= hi)


def phrase_pattern(phrase: str, whole_word: bool = True) -> str:
    """Regex for ``phrase`` with flexible inner whitespace and optional word boundaries."""
    body = r"\s+".join(re.escape(p) for p in phrase.split())
    if not whole_word:
        return body
    left = r"(?<![\w])" if phrase[:1].isalnum() or phrase[:1] == "_" else ""
    right = r"(?![\w])" if phrase[-1:].isalnum() or phrase[-1:] == "_" else ""
    return left + body + right


def count_phrase(text: str, phrase: str, case_sensitive: bool = False, whole_word: bool = True) -> int:
    """Occurrences of ``phrase`` in ``text``."""
    flags = 0 if case_sensitive else re.I
    return len(re.findall(phrase_pattern(phrase, whole_word), text, flags))


def strip_decoration(text: str) -> str:
    """Strip surrounding whitespace, quotes, and markdown emphasis characters."""
    return text.strip().strip("\"'\u201c\u201d\u2018\u2019*_ \n\t`")
