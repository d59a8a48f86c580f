"""The generator's answer: its JSON schema (structured output), the prompt text describing it, and parsing.

The model answers ``{"criteria": [...]}``; each item has ``text``, the score form (``points``, or ``weight``
with ``negative`` and optional ``tiers``), ``critical`` and, when verifiers are offered, ``verifier`` and
``args``. :func:`parse_answer` turns the answer into a rubric mapping in our schema (ids ``g1``, ``g2``, ...;
a seed rubric's criteria first, unchanged) and lists every problem; :mod:`.generate` then runs the same
checks as ``rubricrl validate`` on it. A criterion naming a verifier becomes ``kind: programmatic`` only when
the verifier exists and its arguments work on a sample text; otherwise it stays an LLM criterion (its text
still describes the check) and a note says why.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rubricrl.rubrics import verifiers
from rubricrl.rubrics.schema import Criterion, Rubric

if TYPE_CHECKING:
    from rubricrl.rubrics.generate.config import GenerateConfig

POINTS = [p for p in range(-10, 11) if p != 0]
WEIGHTS = [1, 2, 3, 4, 5]
TEXT_MIN, TEXT_MAX = 10, 240
#: The criteria of the template's output example (another request's); a generated criterion that copies one is removed.
EXAMPLE_TEXTS = (
    "Says to water the plant right after moving it into the new pot.",
    "Recommends a new pot without a drainage hole.",
)
MIN_WORDS = 4  # a criterion is a sentence a grader can check, not a label ("True/False")
_PROBE = "A short sample reply.\n\nIt has two paragraphs, a few words, and no special format."


class AnswerError(ValueError):
    """The answer cannot become a rubric (the message says why; the generation is retried)."""


@dataclass(frozen=True)
class Form:
    """How criteria are scored: taken from the seed rubric when there is one, else from the config."""

    scoring: str  # "points" | "weight"
    tiers: int  # number of tier levels (0: binary)
    verifiers: tuple[str, ...]  # offered verifiers (empty: no programmatic criteria)

    @property
    def programmatic(self) -> bool:
        return bool(self.verifiers)

    @classmethod
    def of(cls, cfg: GenerateConfig, seed: Rubric | None) -> Form:
        offered = tuple(cfg.verifiers if cfg.verifiers is not None else verifier_names()) if cfg.programmatic else ()
        if seed is not None:
            tiered = [c for c in seed.criteria if c.tiers]
            levels = len(tiered[0].tiers) if tiered else 0  # type: ignore[arg-type]
            return cls("points" if seed.uses_points else "weight", levels, offered)
        return cls(cfg.scoring, cfg.tier_levels if cfg.tiers else 0, offered)


def verifier_names() -> list[str]:
    verifiers.check_args("", {})  # loads the built-in verifiers
    return sorted(verifiers.VERIFIERS)


def verifier_menu(names: Sequence[str]) -> str:
    """One line per verifier: ``name(required args): first docstring line`` (cut to 90 characters)."""
    verifiers.check_args("", {})
    lines = []
    for name in names:
        fn = verifiers.VERIFIERS[name]
        params = list(inspect.signature(fn).parameters.values())[1:]
        sig = ", ".join(
            p.name + (f": {p.annotation}" if p.annotation is not inspect.Parameter.empty else "")
            for p in params
            if p.default is inspect.Parameter.empty
        )
        doc = (fn.__doc__ or "").strip().split("\n")[0].replace("``", "")[:90]
        lines.append(f"- {name}({sig}): {doc}")
    return "\n".join(lines)


def criterion_schema(form: Form) -> dict[str, Any]:
    """JSON schema of one generated criterion."""
    props: dict[str, Any] = {"text": {"type": "string", "minLength": TEXT_MIN, "maxLength": TEXT_MAX}}
    if form.scoring == "points":
        props["points"] = {"type": "integer", "enum": POINTS}
    else:
        props["weight"] = {"type": "integer", "enum": WEIGHTS}
        props["negative"] = {"type": "boolean"}
        if form.tiers:
            tier = {
                "type": "object",
                "properties": {
                    "score": {"type": "integer", "minimum": 0, "maximum": form.tiers - 1},
                    "label": {"type": "string", "maxLength": 24},
                    "description": {"type": "string", "maxLength": 160},
                },
                "required": ["score", "label", "description"],
                "additionalProperties": False,
            }
            props["tiers"] = {"type": "array", "items": tier, "minItems": form.tiers, "maxItems": form.tiers}
    props["critical"] = {"type": "boolean"}
    required = list(props)
    if form.programmatic:
        props["verifier"] = {"anyOf": [{"type": "null"}, {"type": "string", "enum": list(form.verifiers)}]}
        props["args"] = {"type": "object"}
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def answer_schema(form: Form, min_items: int, max_items: int) -> dict[str, Any]:
    """JSON schema of the whole answer: ``{"criteria": [criterion, ...]}``."""
    return {
        "type": "object",
        "properties": {
            "criteria": {
                "type": "array",
                "items": criterion_schema(form),
                "minItems": min_items,
                "maxItems": max_items,
            }
        },
        "required": ["criteria"],
        "additionalProperties": False,
    }


def form_text(form: Form) -> str:
    """The template's ``{{form}}``: how each criterion is scored."""
    if form.scoring == "points":
        lines = [
            '- Give each criterion integer "points" from -10 to 10 (never 0): positive for something a good reply '
            "does, higher when it matters more; negative for a mistake a poor reply makes (the criterion then "
            "describes the mistake, and a grader checks whether the reply makes it).",
            "- At least one criterion must have positive points.",
        ]
    else:
        lines = [
            '- Give each criterion an integer "weight" from 1 to 5 (how much it matters), and "negative": true only '
            "when the criterion describes a mistake to penalise rather than a quality to reward.",
        ]
        if form.tiers:
            lines.append(
                f'- Give each criterion "tiers": exactly {form.tiers} levels with scores 0 to {form.tiers - 1}, '
                "lowest first, each with a short label and a one-sentence description of a reply at that level."
            )
    return "\n".join(lines)


OUTPUT_NOTE_CONCRETE = (
    "The shape is shown below with two criteria written for a different request (repotting a houseplant); "
    "write yours for the request above:"
)
OUTPUT_NOTE_PLACEHOLDERS = "Its shape (replace every <...> with your own content for the request above):"


def output_example(form: Form, concrete: bool = True) -> str:
    """The template's ``{{output}}``: the answer's shape, as two criteria for an unrelated request (repotting a plant).

    Concrete values show a small model the form better than placeholders do; the request they belong to is
    named in the template so that they are not taken as criteria for this one. A retry after an answer that
    copied them (``concrete=False``) shows placeholders instead.
    """
    if not concrete:
        item: dict[str, str] = {"text": '"<one sentence a grader can check in a reply to the request above>"'}
        if form.scoring == "points":
            item["points"] = "<integer from -10 to 10, not 0>"
        else:
            item["weight"], item["negative"] = "<integer from 1 to 5>", "<true or false>"
            if form.tiers:
                item["tiers"] = '[{"score": 0, "label": "<label>", "description": "<a reply at this level>"}, ...]'
        item["critical"] = "<true or false>"
        if form.programmatic:
            item["verifier"], item["args"] = "<null or a check's name>", "<its arguments, or {}>"
        return '{"criteria": [{' + ", ".join(f'"{k}": {v}' for k, v in item.items()) + "}, ...]}"
    good: dict[str, object] = {"text": EXAMPLE_TEXTS[0]}
    bad: dict[str, object] = {"text": EXAMPLE_TEXTS[1]}
    if form.scoring == "points":
        good["points"], bad["points"] = 5, -4
    else:
        good.update(weight=3, negative=False)
        bad.update(weight=2, negative=True)
        if form.tiers:
            levels = [{"score": i, "label": f"level {i}", "description": "..."} for i in range(form.tiers)]
            good["tiers"] = bad["tiers"] = levels
    good["critical"], bad["critical"] = False, True
    if form.programmatic:
        good["verifier"], good["args"] = None, {}
        bad["verifier"], bad["args"] = None, {}
    return json.dumps({"criteria": [good, bad]}, indent=None)


def seed_text(seed: Rubric | None) -> str:
    """The template's ``{{seed}}``: the seed rubric's criteria (kept as they are)."""
    if seed is None:
        return "(none: write every criterion yourself)"
    lines = []
    for c in seed.criteria:
        score = (
            f"[{c.points:g}]" if c.points is not None else f"[weight {c.weight:g}{', negative' if c.negative else ''}]"
        )
        lines.append(f"- {score} {c.text}" + (" (critical)" if c.critical else ""))
    return (
        "These criteria are already in the rubric and are kept as they are. Add criteria specific to this "
        "request in the same form; do not repeat these:\n" + "\n".join(lines)
    )


def verifiers_text(form: Form) -> str:
    if not form.programmatic:
        return "(none are offered: write only criteria a grader judges)"
    return (
        'When a criterion is a mechanical check that one of these functions performs exactly, set "verifier" to its '
        'name and "args" to its arguments; otherwise set "verifier" to null and "args" to {}.\n'
        + verifier_menu(form.verifiers)
    )


@dataclass
class Parsed:
    """A parsed answer: the criteria mappings (before the schema check) and notes on what was changed."""

    criteria: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def _check_verifier(name: str, args: Any) -> str | None:
    """Why ``name(args)`` cannot be a programmatic criterion, or None when it can."""
    if not isinstance(args, dict):
        return f"args of verifier {name!r} are not a mapping"
    problem = verifiers.check_args(name, dict(args))
    if problem:
        return problem
    try:
        verifiers.run_verifier(name, _PROBE, dict(args))
    except Exception as e:  # noqa: BLE001 - any failure means the arguments do not work
        return f"verifier {name!r} fails with args {args}: {type(e).__name__}: {e}"
    return None


def _item(i: int, raw: Any, form: Form, notes: list[str]) -> dict[str, Any]:
    """One generated criterion mapping in our schema (raises AnswerError when it has no usable text)."""
    if not isinstance(raw, dict):
        raise AnswerError(f"criteria[{i}] is not an object")
    text = raw.get("text")
    if not isinstance(text, str) or len(text.strip()) < TEXT_MIN:
        raise AnswerError(f"criteria[{i}].text is missing or shorter than {TEXT_MIN} characters")
    if sum(any(ch.isalpha() for ch in w) for w in text.split()) < MIN_WORDS:
        raise AnswerError(f"criteria[{i}].text is not a sentence (fewer than {MIN_WORDS} words): {text[:60]!r}")
    out: dict[str, Any] = {"id": f"g{i + 1}", "text": " ".join(text.split())}
    if form.scoring == "points":
        pts = raw.get("points")
        if isinstance(pts, bool) or not isinstance(pts, (int, float)) or pts == 0 or abs(pts) > 10:
            raise AnswerError(f"criteria[{i}].points must be a non-zero number from -10 to 10, got {pts!r}")
        out["points"] = float(pts)
    else:
        w = raw.get("weight", 1)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 10:
            raise AnswerError(f"criteria[{i}].weight must be a number in (0, 10], got {w!r}")
        out["weight"] = float(w)
        if raw.get("negative") is True:
            out["negative"] = True
        if form.tiers:
            tiers = raw.get("tiers")
            if not isinstance(tiers, list) or len(tiers) < 2:
                raise AnswerError(f"criteria[{i}].tiers must list at least two levels")
            out["tiers"] = [
                {
                    "score": t.get("score") if isinstance(t, dict) else None,
                    "label": str(t.get("label", "")) if isinstance(t, dict) else "",
                    "description": str(t.get("description", "")) if isinstance(t, dict) else "",
                }
                for t in tiers
            ]
    if raw.get("critical") is True:
        out["critical"] = True
    name = raw.get("verifier")
    if form.programmatic and isinstance(name, str) and name:
        why = _check_verifier(name, raw.get("args", {})) if name in form.verifiers else f"{name!r} was not offered"
        if why is None:
            out.update(kind="programmatic", verifier=name, args=dict(raw.get("args") or {}))
        else:
            notes.append(f"g{i + 1}: kept as an LLM criterion ({why})")
    return out


def parse_answer(answer: Any, form: Form, seed: Rubric | None, max_items: int) -> Parsed:
    """Criteria mappings from the model's answer (the JSON value), seed criteria first.

    Raises:
        AnswerError: not ``{"criteria": [...]}``, no usable criterion, or an item with a bad score.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("criteria"), list):
        raise AnswerError('the answer is not an object with a "criteria" list')
    items = answer["criteria"]
    if not items:
        raise AnswerError("the criteria list is empty")
    notes: list[str] = []
    if len(items) > max_items:
        notes.append(f"kept the first {max_items} of {len(items)} criteria")
        items = items[:max_items]
    generated = [_item(i, raw, form, notes) for i, raw in enumerate(items)]
    kept: list[dict[str, Any]] = []
    if seed is not None:
        kept = [c.model_dump(mode="json", exclude_defaults=True) for c in seed.criteria]
        taken = {c["id"] for c in kept}
        for c in generated:
            while c["id"] in taken:
                c["id"] += "x"
            taken.add(c["id"])
    return Parsed(kept + generated, notes)


def seed_ids(seed: Rubric | None) -> Sequence[str]:
    return [c.id for c in seed.criteria] if seed is not None else ()


__all__ = ["AnswerError", "Criterion", "Form", "Parsed", "answer_schema", "parse_answer"]
