"""Parse a judge model's answer into a typed result, or say exactly why it cannot be parsed.

Steps: strip reasoning (``<think>...</think>`` blocks, and everything before a lone ``</think>``),
remove any echoed delimited conversation block (when the per-call tag is known), then take the JSON
from what is left: the last fenced ```json block if there is one, else the last balanced ``{...}`` /
``[...]`` value that has the expected shape. Types are validated strictly: ``criteria_met`` must be a
JSON boolean or the string ``"true"`` / ``"false"`` (any case); a score must be a number (or an
integer-like string) inside the criterion's range. Anything else raises :class:`ParseError`, and so does
any other exception while parsing (a reply nested thousands of levels deep makes the JSON decoder raise
``RecursionError``): the judge's bounded retries treat it as one more parse failure, never a crash.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rubricrl.judge.prompts import strip_delimited

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_INT_STR = re.compile(r"^[+-]?\d+$")


class ParseError(ValueError):
    """The judge's answer could not be turned into a verdict; the message says why."""


F = TypeVar("F", bound=Callable[..., Any])


def _only_parse_errors(fn: F) -> F:
    """Any exception inside a parse function becomes a :class:`ParseError` naming it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ParseError:
            raise
        except RecursionError:
            raise ParseError("the judge output is nested too deeply to parse") from None
        except Exception as e:  # noqa: BLE001 - judge output is untrusted text; nothing in it may crash a run
            raise ParseError(f"unparseable judge output ({type(e).__name__}: {e})") from None

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Parsed:
    """One parsed judgement.

    Attributes:
        met: binary decision (None for score answers).
        score: numeric score (None for binary answers).
        explanation: the judge's reason ("" when absent).
    """

    met: bool | None
    score: float | None
    explanation: str


def strip_reasoning(text: str) -> str:
    """Remove ``<think>...</think>`` blocks and everything up to a lone ``</think>``."""
    text = _THINK_BLOCK.sub("", text)
    idx = text.lower().rfind("</think>")
    if idx >= 0:
        text = text[idx + len("</think>") :]
    # An unterminated <think> means the answer was cut off inside its reasoning.
    idx = text.lower().find("<think>")
    if idx >= 0:
        text = text[:idx]
    return text


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object or list in ``text``, left to right, non-overlapping."""
    dec = json.JSONDecoder()
    out: list[Any] = []
    i = 0
    n = len(text)
    while i < n:
        j = min((k for k in (text.find("{", i), text.find("[", i)) if k >= 0), default=-1)
        if j < 0:
            break
        try:
            value, end = dec.raw_decode(text, j)
        except json.JSONDecodeError:
            i = j + 1
            continue
        except RecursionError:  # nested too deeply: skip this run of the same opener, not one at a time
            i = j + 1
            while i < n and text[i] == text[j]:
                i += 1
            continue
        out.append(value)
        i = end
    return out


@_only_parse_errors
def extract_json(text: str, want: type, key: str | None = None, tag: str | None = None) -> Any:
    """Find the judge's JSON answer in ``text``.

    Args:
        text: raw model output.
        want: ``dict`` or ``list``: the container the answer must be.
        key: for ``dict`` answers, a key the object must carry to count as the answer.
        tag: the per-call delimiter tag; echoed ``<tag>...</tag>`` blocks are removed first.

    Raises:
        ParseError: no JSON value of the expected shape.
    """
    text = strip_reasoning(text)
    if tag:
        text = strip_delimited(text, tag)

    def fits(v: Any) -> bool:
        if not isinstance(v, want):
            return False
        return key is None or not isinstance(v, dict) or key in v

    for block in reversed(_FENCE.findall(text)):
        for v in reversed(_json_values(block)):
            if fits(v):
                return v
    for v in reversed(_json_values(text)):
        if fits(v):
            return v
    shape = f"object with {key!r}" if want is dict and key else ("list" if want is list else "object")
    raise ParseError(f"no JSON {shape} in the judge output ({len(text)} chars after stripping)")


def to_bool(value: Any) -> bool:
    """A JSON boolean, or "true"/"false" in any case; anything else raises ParseError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParseError(f"criteria_met must be a boolean, got {value!r}")


def to_score(value: Any, lo: float, hi: float) -> float:
    """A finite number (or integer-like string) within ``[lo, hi]``; anything else raises."""
    if isinstance(value, bool):
        raise ParseError(f"score must be a number, got boolean {value!r}")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str) and _INT_STR.match(value.strip()):
        x = float(int(value.strip()))
    else:
        raise ParseError(f"score must be a number, got {value!r}")
    if not math.isfinite(x):
        raise ParseError(f"score must be finite, got {value!r}")
    if not lo <= x <= hi:
        raise ParseError(f"score {x:g} outside the allowed range [{lo:g}, {hi:g}]")
    return x


def _explanation(d: dict[str, Any]) -> str:
    e = d.get("explanation", d.get("reason", ""))
    return e if isinstance(e, str) else json.dumps(e)


@_only_parse_errors
def parse_binary(text: str, tag: str | None = None) -> Parsed:
    """Parse ``{"explanation": str, "criteria_met": bool}``."""
    d = extract_json(text, dict, "criteria_met", tag)
    return Parsed(met=to_bool(d["criteria_met"]), score=None, explanation=_explanation(d))


@_only_parse_errors
def parse_score(text: str, lo: float, hi: float, tag: str | None = None) -> Parsed:
    """Parse ``{"explanation": str, "score": number}`` with the score in ``[lo, hi]``."""
    d = extract_json(text, dict, "score", tag)
    return Parsed(met=None, score=to_score(d["score"], lo, hi), explanation=_explanation(d))


def complete_items_of_cut_list(text: str, tag: str | None = None) -> list[Any]:
    """The whole items of a JSON list that the output starts with but that was cut off (``max_tokens``).

    Only an output that *is* a list from its first character (what structured output produces) counts;
    items are decoded one after another with the JSON decoder, so only complete values are kept and the
    cut item is dropped. Empty when the output does not start with ``[`` or no item is complete.
    """
    text = strip_reasoning(text)
    if tag:
        text = strip_delimited(text, tag)
    text = text.strip()
    if not text.startswith("["):
        return []
    decoder = json.JSONDecoder()
    items: list[Any] = []
    i = 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return items
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return items
        items.append(value)


@_only_parse_errors
def parse_batch(
    text: str,
    expected: Sequence[tuple[str, bool, tuple[float, float]]],
    tag: str | None = None,
) -> dict[str, Parsed | ParseError]:
    """Parse a JSON list of ``{"id", "criteria_met" | "score", "explanation"}``.

    Args:
        expected: ``(criterion id, is_binary, (lo, hi))`` per criterion.

    Returns:
        For each expected id, its :class:`Parsed` result or the :class:`ParseError` for that item
        (missing, duplicated, or ill-typed).

    Raises:
        ParseError: no JSON list at all.
    """
    try:
        items = extract_json(text, list, None, tag)
    except ParseError:
        items = complete_items_of_cut_list(text, tag)  # a list cut off at max_tokens: keep its whole items
        if not items:
            raise
    by_id: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        if isinstance(it, dict) and "id" in it:
            by_id.setdefault(str(it["id"]), []).append(it)
    out: dict[str, Parsed | ParseError] = {}
    for cid, is_binary, (lo, hi) in expected:
        found = by_id.get(cid, [])
        if not found:
            out[cid] = ParseError(f"criterion {cid!r} missing from the judge's list")
            continue
        if len(found) > 1:
            out[cid] = ParseError(f"criterion {cid!r} appears {len(found)} times in the judge's list")
            continue
        d = found[0]
        try:
            if is_binary:
                if "criteria_met" not in d:
                    raise ParseError(f"criterion {cid!r}: no 'criteria_met'")
                out[cid] = Parsed(to_bool(d["criteria_met"]), None, _explanation(d))
            else:
                if "score" not in d:
                    raise ParseError(f"criterion {cid!r}: no 'score'")
                out[cid] = Parsed(None, to_score(d["score"], lo, hi), _explanation(d))
        except ParseError as e:
            out[cid] = e
    return out
