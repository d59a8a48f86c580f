"""Checks on rubrics beyond the schema, which the loader runs on every load (and so ``rubricrl validate``).

The schema (``rubricrl.rubrics.schema``) checks each model on its own. The checks here need more
context: the raw input (a YAML ``true`` or ``.nan`` where a number belongs, which pydantic would
accept), the verifier registry (unknown verifiers, arguments that do not fit the verifier), the
aggregator registry (unknown aggregator, bad parameters), and every
rubric loaded together (rubric ids must be unique across files). The loader runs them on every load, so
``load_rubrics`` and ``rubricrl validate`` accept exactly the same inputs.

Checks return ``(loc, message)`` pairs, ``loc`` being a pydantic-style location inside one rubric
(``("criteria", 2, "args")``); the loader turns the location into a line number.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from rubricrl.reward.registry import check_spec
from rubricrl.rubrics import verifiers
from rubricrl.rubrics.importers import kind_of
from rubricrl.types import AggregationSpec, Criterion, Rubric, Tier, VetoSpec

logger = logging.getLogger(__name__)

Loc = tuple[Any, ...]

_verifiers_state: dict[str, str | None] = {}


def _verifier_registry() -> dict[str, Any]:
    """The verifier registry with the built-in verifiers loaded, if they import."""
    if "error" not in _verifiers_state:
        try:
            verifiers.check_args("", {})  # triggers the one-time import of the built-in verifiers
            _verifiers_state["error"] = None
        except Exception as e:  # noqa: BLE001 - a broken verifiers module must not crash validation
            _verifiers_state["error"] = f"{type(e).__name__}: {e}"
            logger.warning(
                "built-in verifiers failed to load (%s); only registered ones are known", _verifiers_state["error"]
            )
    return verifiers.VERIFIERS


def _bad_number(v: Any) -> str | None:
    if isinstance(v, bool):
        return f"expected a number, got boolean {str(v).lower()}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"expected a finite number, got {v}"
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


NO_POSITIVE = "no criterion has positive points"


def raw_rubric_problems(node: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Problems in a rubric's raw mapping that the schema would miss or report vaguely.

    Finds duplicate criterion ids (reported at the repeat, naming the first), booleans or
    non-finite values where a number belongs (``points``, ``weight``, tier ``score``) and points-based
    rubrics without any positive points (also when other fields are invalid, which stops the schema's
    own rubric-level check).
    """
    out: list[tuple[Loc, str]] = []
    crits = node.get("criteria")
    if not isinstance(crits, list):
        return out
    first: dict[str, int] = {}
    for i, c in enumerate(crits):
        if not isinstance(c, dict):
            continue
        cid = c.get("id")
        if isinstance(cid, str):
            if cid in first:
                out.append(
                    (("criteria", i, "id"), f"duplicate criterion id {cid!r} (first used by criteria[{first[cid]}])")
                )
            else:
                first[cid] = i
        for key in ("points", "weight"):
            bad = _bad_number(c.get(key))
            if bad:
                out.append((("criteria", i, key), bad))
        tiers = c.get("tiers")
        if isinstance(tiers, list):
            for j, t in enumerate(tiers):
                bad = _bad_number(t.get("score")) if isinstance(t, dict) else None
                if bad:
                    out.append((("criteria", i, "tiers", j, "score"), bad))
    points = [c.get("points") for c in crits if isinstance(c, dict)]
    if points and len(points) == len(crits) and all(_is_number(p) for p in points) and not any(p > 0 for p in points):
        out.append(
            (
                ("criteria",),
                f"{NO_POSITIVE}: every criterion has points <= 0, so the score "
                "denominator would be zero; give at least one criterion positive points",
            )
        )
    return out


def _unknown_verifier(name: str, registry: dict[str, Any]) -> str:
    names = sorted(registry)
    close = difflib.get_close_matches(name, names, n=3)
    msg = f"unknown verifier {name!r}"
    if close:
        msg += f"; did you mean {' or '.join(map(repr, close))}?"
    if not names:
        msg += " (no verifiers are registered)"
    elif len(names) <= 12:
        msg += f" (known: {', '.join(names)})"
    else:
        msg += f" ({len(names)} known; list them with rubricrl.rubrics.verifiers.VERIFIERS)"
    why = _verifiers_state.get("error")
    return msg + (f"; the built-in verifiers failed to load: {why}" if why else "")


def verifier_problems(node: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Unknown verifiers and arguments that do not fit the named verifier, per programmatic criterion.

    Works on the raw rubric mapping, so it reports even when the schema rejects something else.
    """
    out: list[tuple[Loc, str]] = []
    crits = node.get("criteria")
    if not isinstance(crits, list):
        return out
    for i, c in enumerate(crits):
        if not isinstance(c, dict) or c.get("kind") != "programmatic":
            continue
        name, args = c.get("verifier"), c.get("args", {})
        if not isinstance(name, str) or not name or not isinstance(args, dict):
            continue  # the schema reports these
        registry = _verifier_registry()
        if name not in registry:
            out.append((("criteria", i, "verifier"), _unknown_verifier(name, registry)))
            continue
        try:
            problem = verifiers.check_args(name, dict(args))
        except Exception as e:  # noqa: BLE001 - report, never crash
            problem = f"verifier {name!r}: could not check args: {type(e).__name__}: {e}"
        if problem:
            out.append((("criteria", i, "args" if "args" in c else "verifier"), problem))
    return out


def aggregation_problems(rubric: Rubric) -> list[tuple[Loc, str]]:
    """Unknown aggregator or parameters that do not fit it (``rubricrl.reward.registry.check_spec``)."""
    try:
        problem = check_spec(rubric.aggregation, rubric.criteria)
    except Exception as e:  # noqa: BLE001 - report, never crash
        problem = f"could not check the aggregation: {type(e).__name__}: {e}"
    if not problem:
        return []
    key = "name" if "unknown aggregator" in problem else "params"
    return [(("aggregation", key), problem)]


def loc_str(loc: Loc) -> str:
    """``("criteria", 2, "points")`` -> ``criteria[2].points``."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema model that owns the last key of ``loc`` (for listing allowed keys)."""
    names = tuple(p for p in loc[:-1] if not isinstance(p, int))
    return {
        (): Rubric,
        ("criteria",): Criterion,
        ("criteria", "tiers"): Tier,
        ("aggregation",): AggregationSpec,
        ("aggregation", "veto"): VetoSpec,
    }.get(names)


# Words in a model-level error message -> the key the error is about (so the line points at it).
_HINTS = (
    ("tiers", "tiers"),
    ("scale", "scale"),
    ("verifier", "verifier"),
    ("programmatic", "kind"),
    ("points", "points"),
    ("criteri", "criteria"),
)


def _refine(tree: Any, loc: tuple, msg: str) -> tuple:
    cur = tree
    for p in loc:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return loc
    if isinstance(cur, dict):
        for word, key in _HINTS:
            if word in msg and key in cur:
                return loc + (key,)
    return loc


_EXPECTED = {
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "float_type": "a number",
    "bool_type": "true or false",
}


def schema_problems(err: ValidationError, tree: Any) -> list[tuple[Loc, str]]:
    """Translate a pydantic error on a rubric mapping into ``(loc, message)`` pairs a rubric author reads.

    Unknown keys get the allowed keys and a close match; type errors say what was found; a
    model-level error (e.g. tiers not increasing) is pointed at the key it is about.
    """
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            model = _model_at(loc)
            allowed = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
            if allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        elif e["type"] == "missing":
            msg = "missing required key"
        elif e["type"] in _EXPECTED:
            msg = f"expected {_EXPECTED[e['type']]}, got {kind_of(e.get('input'))}"
        elif e["type"] == "invalid_key":
            msg = f"key {loc[-1]} is not a string (quote it)"
        elif e["type"] == "value_error":
            loc = _refine(tree, loc, msg)
        out.append((loc, msg))
    return out


def duplicate_rubric_ids(located: Iterable[tuple[Rubric, str]]) -> list[str]:
    """``where: duplicate rubric id`` for every rubric whose id was already used by an earlier one.

    Args:
        located: ``(rubric, "path:line")`` pairs in load order.
    """
    first: dict[str, str] = {}
    out = []
    for rubric, where in located:
        if rubric.id in first:
            out.append(
                f"{where}: duplicate rubric id {rubric.id!r} (first defined at {first[rubric.id]}); "
                "rubric ids must be unique across all files loaded together"
            )
        else:
            first[rubric.id] = where
    return out
