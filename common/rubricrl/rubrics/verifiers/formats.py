"""Format verifiers: JSON, lists, sections, headers, titles, highlights, placeholders, wrappers."""

from __future__ import annotations

import json
import re

from rubricrl.rubrics.verifiers.registry import VerifierResult, verifier
from rubricrl.rubrics.verifiers.textutil import bounded_score, in_bounds

_BULLET_RE = re.compile(r"^[ \t]*(?:[-*+\u2022])[ \t]+(?=\S)(?![*\s]*$)", re.M)
_NUMBERED_RE = re.compile(r"^[ \t]*(\d+)[.)][ \t]+\S", re.M)
_HEADER_RE = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+\S", re.M)


def _count_result(what: str, n: int, exact: int | None, lo: int | None, hi: int | None) -> VerifierResult:
    if exact is not None:
        lo = hi = exact
    if lo is None and hi is None:
        raise ValueError(f"{what}: give exact, min_count or max_count")
    return VerifierResult(in_bounds(n, lo, hi), bounded_score(n, lo, hi), f"{n} {what}")


@verifier("valid_json")
def valid_json(response: str, required_keys: list[str] | None = None, allow_code_fence: bool = True) -> VerifierResult:
    """The whole response is one JSON value; optionally an object with the given top-level keys.

    Args:
        response: the text to check.
        required_keys: keys the top-level object must contain (implies an object).
        allow_code_fence: accept the JSON wrapped in one markdown code fence (```json ... ```).
    """
    text = response.strip()
    if allow_code_fence:
        m = re.fullmatch(r"```[a-zA-Z]*\s*\n?(.*?)\n?\s*```", text, re.S)
        if m:
            text = m.group(1).strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        return VerifierResult(False, 0.0, f"not JSON: {e}")
    if required_keys:
        if not isinstance(value, dict):
            return VerifierResult(False, 0.0, "JSON is not an object")
        missing = [k for k in required_keys if k not in value]
        score = 1.0 - len(missing) / len(required_keys)
        return VerifierResult(not missing, score, f"missing keys: {missing}" if missing else "all keys present")
    return VerifierResult(True, 1.0, "valid JSON")


@verifier("bullet_count")
def bullet_count(
    response: str, exact: int | None = None, min_count: int | None = None, max_count: int | None = None
) -> VerifierResult:
    """Number of markdown bullet items (lines starting ``-``, ``*``, ``+`` or ``\u2022`` then a space).

    Args:
        response: the text to check.
        exact: required exact number of bullets (overrides the bounds).
        min_count: inclusive lower bound.
        max_count: inclusive upper bound.
    """
    return _count_result("bullets", len(_BULLET_RE.findall(response)), exact, min_count, max_count)


@verifier("numbered_list")
def numbered_list(
    response: str,
    exact: int | None = None,
    min_count: int | None = None,
    max_count: int | None = None,
    sequential: bool = True,
) -> VerifierResult:
    """Number of numbered-list items (``1.`` or ``1)`` at line start), optionally numbered 1, 2, 3...

    Args:
        response: the text to check.
        exact: required exact number of items.
        min_count: inclusive lower bound.
        max_count: inclusive upper bound.
        sequential: items must be numbered 1, 2, 3, ... in order.
    """
    nums = [int(n) for n in _NUMBERED_RE.findall(response)]
    res = _count_result("numbered items", len(nums), exact, min_count, max_count)
    if sequential and nums and nums != list(range(1, len(nums) + 1)):
        return VerifierResult(False, res.score * 0.5 if res.score else 0.0, f"numbering {nums} is not 1..{len(nums)}")
    return res


@verifier("section_count")
def section_count(
    response: str,
    prefix: str = "SECTION",
    exact: int | None = None,
    min_count: int | None = None,
    case_sensitive: bool = True,
) -> VerifierResult:
    """Sections marked by a numbered header such as "SECTION 1", "SECTION 2" at line start.

    The marker may be preceded by markdown ``#`` or ``**``. Sections must be numbered from 1 upward.

    Args:
        response: the text to check.
        prefix: the marker word ("SECTION", "Part", "Day", ...).
        exact: required exact number of sections.
        min_count: inclusive lower bound.
        case_sensitive: match the marker's case exactly.
    """
    flags = re.M | (0 if case_sensitive else re.I)
    nums = [
        int(n) for n in re.findall(rf"^[ \t]*(?:#+[ \t]*)?\**[ \t]*{re.escape(prefix)}[ \t]+(\d+)\b", response, flags)
    ]
    res = _count_result(f"'{prefix} N' sections", len(nums), exact, min_count, None)
    if nums and nums != list(range(1, len(nums) + 1)):
        return VerifierResult(False, 0.5 * (res.score or 0.0), f"sections numbered {nums}")
    return res


@verifier("markdown_headers")
def markdown_headers(
    response: str,
    exact: int | None = None,
    min_count: int | None = None,
    max_count: int | None = None,
    level: int | None = None,
) -> VerifierResult:
    """Number of markdown ATX headers (``# Title``, ``## Part``), optionally of one level.

    Args:
        response: the text to check.
        exact: required exact number of headers.
        min_count: inclusive lower bound.
        max_count: inclusive upper bound (``max_count: 0`` forbids headers).
        level: count only headers with this many ``#``.
    """
    hashes = _HEADER_RE.findall(response)
    n = sum(1 for h in hashes if level is None or len(h) == level)
    return _count_result("headers", n, exact, min_count, max_count)


@verifier("title_brackets")
def title_brackets(response: str) -> VerifierResult:
    """A title wrapped in double angular brackets appears, e.g. ``<<Letters from the Coast>>``.

    Args:
        response: the text to check.
    """
    m = re.search(r"<<([^<>\n]*\S[^<>\n]*)>>", response)
    return VerifierResult(bool(m), 1.0 if m else 0.0, f"title {m.group(1)!r}" if m else "no <<title>>")


@verifier("highlighted_sections")
def highlighted_sections(response: str, min_count: int) -> VerifierResult:
    """At least ``min_count`` spans highlighted with markdown, ``*like this*`` or ``**like this**``.

    Bullet markers (``* item``) are not highlights; a highlight must not start or end with a space and
    must hold something other than asterisks, so a ``***`` divider line is none (IFEval counts 0 too).

    Args:
        response: the text to check.
        min_count: inclusive lower bound.
    """
    text = _BULLET_RE.sub("", response)
    bold = re.findall(r"\*\*(?=\S)([^*\n]*?\S)\*\*", text)
    rest = re.sub(r"\*\*(?=\S)([^*\n]*?\S)\*\*", "", text)
    ital = re.findall(r"(?<![*\w])\*(?=[^*\s])([^*\n]*?[^*\s])?\*(?![*\w])", rest)
    ital = [s for s in ital if s]
    n = len(bold) + len(ital)
    return VerifierResult(n >= min_count, bounded_score(n, min_count, None), f"{n} highlighted spans")


@verifier("placeholders")
def placeholders(response: str, min_count: int) -> VerifierResult:
    """At least ``min_count`` placeholders in square brackets, e.g. ``[name]``, ``[address]``.

    Markdown links (``[text](url)``) and checkbox marks (``[x]``, ``[ ]``) are not placeholders.

    Args:
        response: the text to check.
        min_count: inclusive lower bound.
    """
    found = re.findall(r"\[([^\[\]\n]+)\](?!\()", response)
    found = [f for f in found if f.strip() and f.strip().lower() != "x"]
    n = len(found)
    return VerifierResult(n >= min_count, bounded_score(n, min_count, None), f"{n} placeholders")


@verifier("wrapped_in_quotes")
def wrapped_in_quotes(response: str) -> VerifierResult:
    """The entire response is wrapped in double quotation marks ("..." or \u201c...\u201d).

    Args:
        response: the text to check.
    """
    t = response.strip()
    ok = len(t) > 2 and ((t[0] == '"' and t[-1] == '"') or (t[0] == "\u201c" and t[-1] == "\u201d"))
    return VerifierResult(ok, 1.0 if ok else 0.0, "wrapped" if ok else "not wrapped in double quotes")


@verifier("postscript")
def postscript(response: str, marker: str = "P.S.") -> VerifierResult:
    """A postscript starting with ``marker`` (e.g. "P.S." or "P.P.S") begins a line and has text after it.

    Dots and spaces inside the marker are matched loosely ("P.S.", "P. S.", "PS:" for "P.S.").

    Args:
        response: the text to check.
        marker: the postscript marker.
    """
    letters = [ch for ch in marker if ch.isalpha()]
    loose = r"[.\s]*".join(re.escape(ch) for ch in letters) + r"[.:\s]*"
    m = re.search(rf"^[ \t]*\**[ \t]*{loose}\**\s*\S", response, re.M | re.I)
    return VerifierResult(bool(m), 1.0 if m else 0.0, "postscript found" if m else f"no line starting {marker!r}")


@verifier("two_responses")
def two_responses(response: str, separator: str = "******", count: int = 2) -> VerifierResult:
    """Exactly ``count`` different, non-empty responses separated by a line holding ``separator``.

    Args:
        response: the text to check.
        separator: the divider, alone on its line (surrounding spaces allowed).
        count: required number of parts.
    """
    parts = re.split(rf"^[ \t]*{re.escape(separator)}[ \t]*$", response.strip(), flags=re.M)
    parts = [p.strip() for p in parts]
    if len(parts) != count or any(not p for p in parts):
        return VerifierResult(False, 0.0, f"{len(parts)} parts (empty ones: {sum(not p for p in parts)})")
    distinct = len({p.lower() for p in parts}) == len(parts)
    return VerifierResult(distinct, 1.0 if distinct else 0.5, "parts differ" if distinct else "parts are identical")


@verifier("no_markdown")
def no_markdown(response: str) -> VerifierResult:
    """Plain prose: no markdown headers, bullet or numbered lists, bold, tables or code fences.

    Args:
        response: the text to check.
    """
    checks = {
        "headers": _HEADER_RE.search(response),
        "bullets": _BULLET_RE.search(response),
        "numbered": _NUMBERED_RE.search(response),
        "bold": re.search(r"\*\*\S[^*\n]*\*\*|__\S[^_\n]*__", response),
        "table": re.search(r"^\s*\|.*\|\s*$", response, re.M),
        "code": re.search(r"^```", response, re.M),
    }
    found = [k for k, v in checks.items() if v]
    return VerifierResult(not found, 1.0 - len(found) / len(checks), f"markdown: {found}" if found else "plain")
