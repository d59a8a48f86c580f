"""Generate one rubric per unit (prompt or task): prompt the generator, parse, validate, gate.

:class:`RubricGenerator` does one unit at a time (:meth:`RubricGenerator.run_unit`); many units run
concurrently under the generator's ``concurrency`` (see :mod:`.run`). Per unit:

1. render the template (``templates/instance.txt``) with the prompt turns, the reference answer, the seed
   rubric's criteria, the score form and the verifiers on offer;
2. call the generator (structured output: the criteria list's JSON schema as ``response_format``);
3. parse the answer into a rubric in our schema with provenance (generator model, template hash, seed
   rubric, prompt ids), without criteria that copy the prompt's own example criteria or text, and run the
   same checks as ``rubricrl validate`` (:mod:`rubricrl.rubrics.validate`); the near-duplicate and
   reference-copy gates run here, and the rubric is checked again after them;
4. an invalid answer (no JSON, bad item, failed validation, transport failure) is retried with the next
   seed up to ``attempts`` times, the reason shown to the model (after an answer that copied the example
   criteria, the shape is shown with placeholders), then returned as a failure with every attempt's reason;
5. the discrimination gate grades ``k`` policy responses with the judge and drops a rubric whose scores
   do not vary (never retried: a rubric that does not discriminate is a result, not an error). When the
   gate itself could not measure (a policy call failed, or more than half the judge's verdicts are
   ungraded) the unit is a failure with reason ``gate call failed``, not a drop: a slow or absent judge
   must not decide which rubrics survive, and a re-run retries failures.

Reasons that start with :data:`CALL_FAILURES` are the servers' failures, not the rubric's
(:func:`is_call_failure`); a pipeline stage stops on them instead of training without those rubrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rubricrl.errors import UserError
from rubricrl.generation import PolicyConfig, Sampler
from rubricrl.judge.backends.openai_http import is_openai_api, openai_strict_schema
from rubricrl.judge.parsing import ParseError, extract_json
from rubricrl.judge.prompts import Template, neutralise, new_tag, parse_template_text
from rubricrl.judge.schemas import response_format
from rubricrl.rubrics.generate import gates
from rubricrl.rubrics.generate.config import GenerateConfig
from rubricrl.rubrics.generate.schema import (
    EXAMPLE_TEXTS,
    OUTPUT_NOTE_CONCRETE,
    OUTPUT_NOTE_PLACEHOLDERS,
    AnswerError,
    Form,
    answer_schema,
    form_text,
    output_example,
    parse_answer,
    seed_ids,
    seed_text,
    verifiers_text,
)
from rubricrl.rubrics.generate.units import Unit
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import Rubric
from rubricrl.rubrics.validate import (
    aggregation_problems,
    loc_str,
    raw_rubric_problems,
    schema_problems,
    verifier_problems,
)

log = logging.getLogger(__name__)

GENERATOR_CALL_FAILED = "generator call failed"
GATE_CALL_FAILED = "gate call failed"
CALL_FAILURES = (GENERATOR_CALL_FAILED, GATE_CALL_FAILED)
MAX_GATE_UNGRADED_SHARE = 0.5  # above this share of ungraded gate verdicts the gate measured nothing


def is_call_failure(reason: str) -> bool:
    """Whether a failure reason is a server's failure (generator or gate calls), not the rubric's."""
    return str(reason).startswith(CALL_FAILURES)


def gate_call_problem(disc: gates.Discrimination, policy_errors: list[str]) -> str | None:
    """Why the discrimination gate could not measure ``disc`` (a call failed), or None when it did."""
    if policy_errors:
        return f"{len(policy_errors)} policy call(s) failed: {policy_errors[0]}"
    if disc.reason == "ungraded" or (disc.n_verdicts and disc.n_ungraded / disc.n_verdicts > MAX_GATE_UNGRADED_SHARE):
        return f"{disc.n_ungraded} of {disc.n_verdicts} judge verdicts ungraded"
    return None


TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BUILTIN_TEMPLATES = ("instance",)
MAX_EXAMPLE_PROMPTS = 3  # a task rubric's prompt shows this many of the task's prompts
ANSWER_EXCERPT = 2000


def load_generation_template(spec: str) -> Template:
    """The built-in ``instance`` template or a template file (``#|`` header, ``{{conversation}}`` placeholder).

    Raises:
        UserError: unknown name or unreadable file.
    """
    if spec in BUILTIN_TEMPLATES:
        path = TEMPLATE_DIR / f"{spec}.txt"
        return parse_template_text(path.read_text(encoding="utf-8"), spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"rubric generation template {spec!r} is neither built in ({', '.join(BUILTIN_TEMPLATES)}) nor a file"
        )
    return parse_template_text(path.read_text(encoding="utf-8"), str(path))


def load_seed(cfg: GenerateConfig) -> Rubric | None:
    """The seed rubric, loaded and validated like ``rubricrl validate``.

    Raises:
        UserError / Problems: the file does not load, or ``seed.id`` is missing from it / needed.
    """
    if cfg.seed is None:
        return None
    rubrics = load_rubrics(cfg.seed.path)
    if cfg.seed.id is None:
        if len(rubrics) != 1:
            raise UserError(f"seed.path holds {len(rubrics)} rubrics; name one with seed.id", path=str(cfg.seed.path))
        return rubrics[0]
    for r in rubrics:
        if r.id == cfg.seed.id:
            return r
    raise UserError(f"seed.id {cfg.seed.id!r} is not in the file", path=str(cfg.seed.path))


def validation_problems(node: dict[str, Any]) -> list[str]:
    """The checks ``rubricrl validate`` runs on a rubric mapping, as ``location: message`` lines."""
    raw = raw_rubric_problems(node) + verifier_problems(node)
    try:
        rubric = Rubric.model_validate(node)
    except ValidationError as e:
        raw += schema_problems(e, node)
        rubric = None
    if rubric is not None:
        raw += aggregation_problems(rubric)
    return [f"{loc_str(loc) + ': ' if loc else ''}{msg}" for loc, msg in raw]


@dataclass
class UnitResult:
    """The outcome of one unit.

    Attributes:
        status: ``kept``, ``dropped`` (by a gate) or ``failed`` (no valid rubric within the attempts).
        rubric: the rubric mapping (kept or dropped ones).
        gate: what the gates found (the gates file's record).
        reasons: failure reason per attempt.
        answer: the last raw answer (failures), cut to 2,000 characters.
    """

    unit_id: str
    status: str
    rubric: dict[str, Any] | None = None
    gate: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    answer: str = ""
    attempts: int = 0


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:3], "big")


class RubricGenerator:
    """Generates and gates rubrics for units.

    Args:
        cfg: the generation config.
        generator: the generator's policy config (``cfg.generator`` resolved).
        generator_sampler: a :class:`~rubricrl.generation.Sampler` for the generator (built from
            ``generator`` when omitted; unit tests pass one over a scripted backend).
        judge: the discrimination gate's judge (an object with ``async grade``), or None when the gate is off.
        policy_sampler: samples the gate's responses, or None when they come from ``responses``.
        responses: prompt id -> responses (from ``--responses``).
        seed: the seed rubric.
    """

    def __init__(
        self,
        cfg: GenerateConfig,
        generator: PolicyConfig,
        *,
        generator_sampler: Any | None = None,
        judge: Any | None = None,
        policy_sampler: Any | None = None,
        responses: dict[str, list[str]] | None = None,
        seed: Rubric | None = None,
    ):
        self.cfg = cfg
        self.seed = seed
        self.form = Form.of(cfg, seed)
        self.template = load_generation_template(cfg.template)
        self.schema = answer_schema(self.form, cfg.min_criteria, cfg.max_criteria)
        self.generator = generator
        if generator_sampler is None:
            gen_cfg = generator
            if cfg.structured_output:
                gen_cfg = generator.model_copy(
                    update={"extra_body": {**generator.extra_body, "response_format": self._response_format()}}
                )
            generator_sampler = Sampler(gen_cfg)
        self.sampler = generator_sampler
        self.judge = judge
        self.policy_sampler = policy_sampler
        self.responses = responses or {}

    def _response_format(self) -> dict[str, Any]:
        schema = self.schema
        if is_openai_api(self.generator.base_url or ""):
            schema = openai_strict_schema(schema)
        return response_format(schema, name="rubric")

    # ------------------------------------------------------------------ prompt

    def prompt(self, unit: Unit, tag: str, feedback: str = "", concrete: bool = True) -> str:
        """The generation prompt for ``unit`` (its template rendered).

        Args:
            unit: what the rubric is for.
            tag: the delimiter tag of this call.
            feedback: why the previous attempt's answer was rejected ("" on the first attempt).
            concrete: show the output shape with example criteria (else with placeholders).
        """
        shown = unit.prompts[:MAX_EXAMPLE_PROMPTS]
        blocks = []
        for p in shown:
            for m in p.messages:
                role = "".join(ch for ch in m["role"] if ch.isalpha() or ch == "_") or "user"
                blocks.append(f'<{tag} role="{role}">\n{neutralise(m["content"])}\n</{tag}>')
        conversation = "\n".join(blocks)
        if len(unit.prompts) > 1:
            conversation = (
                f"(one task: {len(unit.prompts)} prompts; {len(shown)} shown; the rubric must fit every prompt "
                f"of the task)\n{conversation}"
            )
        reference = unit.reference
        values = {
            "tag": tag,
            "conversation": conversation,
            "reference": f'<{tag} role="reference">\n{neutralise(reference)}\n</{tag}>' if reference else "(none)",
            "seed": seed_text(self.seed),
            "form": form_text(self.form),
            "verifiers": verifiers_text(self.form),
            "min_criteria": str(self.cfg.min_criteria),
            "max_criteria": str(self.cfg.max_criteria),
            "output": output_example(self.form, concrete),
            "output_note": OUTPUT_NOTE_CONCRETE if concrete else OUTPUT_NOTE_PLACEHOLDERS,
            "feedback": (
                f"# Your previous answer\nIt was rejected: {feedback}. Write new criteria for the request above.\n\n"
                if feedback
                else ""
            ),
        }
        return self.template.render(values)

    # ------------------------------------------------------------------ rubric

    def provenance(self, unit: Unit) -> tuple[list[str], str]:
        """Tags and source text recording the generator model, template hash, seed rubric and prompt ids."""
        seed = self.seed.id if self.seed is not None else "none"
        prompts = ",".join(p.id for p in unit.prompts)
        tags = [
            "generated",
            f"generator:{self.generator.model}",
            f"template:{self.template.name}@{self.template.hash[:12]}",
            f"seed:{seed}",
            f"prompt:{prompts}",
        ]
        source = (
            f"rubricrl rubrics generate: generator {self.generator.model}, template {self.template.name} "
            f"sha256:{self.template.hash}, seed rubric {seed}, prompt {prompts}"
        )
        return tags, source

    def rubric_node(self, unit: Unit, criteria: list[dict[str, Any]]) -> dict[str, Any]:
        tags, source = self.provenance(unit)
        if self.seed is not None:
            aggregation = self.seed.aggregation.model_dump(mode="json", exclude_defaults=True)
        else:
            aggregation = {"name": "points_ratio" if self.form.scoring == "points" else "weighted_mean"}
        first = unit.prompts[0].messages[-1]["content"]
        node: dict[str, Any] = {
            "id": unit.id,
            "scope": self.cfg.granularity,
            "category": self.cfg.category or unit.category or "generated",
            "title": " ".join(first.split())[:80],
            "criteria": criteria,
            "tags": tags,
            "source": source,
        }
        if aggregation:
            node["aggregation"] = aggregation
        return node

    def instructions(self, feedback: str = "") -> str:
        """The prompt's own text without the request, the reference and the seed (what a criterion must not echo)."""
        values = {
            "tag": "",
            "conversation": "",
            "reference": "",
            "seed": "",
            "form": form_text(self.form),
            "verifiers": verifiers_text(self.form),
            "min_criteria": "",
            "max_criteria": "",
            "output": output_example(self.form, True) + "\n" + output_example(self.form, False),
            "output_note": OUTPUT_NOTE_CONCRETE + "\n" + OUTPUT_NOTE_PLACEHOLDERS,
            "feedback": feedback,
        }
        return self.template.render(values)

    def _build(self, unit: Unit, text: str, gate: dict[str, Any], feedback: str = "") -> dict[str, Any]:
        """A valid, gated rubric mapping from one answer, or raise AnswerError / ParseError with the reason."""
        instructions = self.instructions(feedback)
        answer = extract_json(text, dict, key="criteria")
        parsed = parse_answer(answer, self.form, self.seed, self.cfg.max_criteria)
        criteria = parsed.criteria
        protected = set(seed_ids(self.seed))
        copied = [
            c["id"]
            for c in criteria
            if c["id"] not in protected and gates.copies_instructions(c["text"], instructions, EXAMPLE_TEXTS)
        ]
        criteria = [c for c in criteria if c["id"] not in copied]
        n_new = len(criteria) - len(protected)
        if n_new < self.cfg.min_criteria:
            why = f" ({len(copied)} copied the template's example criteria or instructions)" if copied else ""
            raise AnswerError(f"{n_new} criteria written{why}, at least {self.cfg.min_criteria} asked for")
        problems = validation_problems(self.rubric_node(unit, criteria))
        if problems:
            raise AnswerError("invalid rubric: " + "; ".join(problems))
        g = self.cfg.gates
        removed: list[dict[str, Any]] = []
        if g.dedup.enabled:
            criteria, removed = gates.dedup(criteria, g.dedup.threshold, seed_ids(self.seed))
        copies: list[str] = []
        if g.reference_copy.enabled and unit.reference:
            protected = set(seed_ids(self.seed))
            copies = [
                c
                for c in gates.reference_copies(criteria, unit.reference, g.reference_copy.min_words)
                if c not in protected
            ]
            if g.reference_copy.action == "drop":
                criteria = [c for c in criteria if c["id"] not in copies]
            else:
                for c in criteria:
                    if c["id"] in copies:
                        c["tags"] = [*c.get("tags", []), "flag:copies_reference"]
        node = self.rubric_node(unit, criteria)
        problems = validation_problems(node)
        if problems:
            raise AnswerError("invalid after the dedup / reference gates: " + "; ".join(problems))
        gate.update(
            notes=parsed.notes,
            example_copies=copied,
            duplicates_removed=removed,
            reference_copies=copies,
            reference_copy_action=g.reference_copy.action if copies else None,
            criteria=len(criteria),
            programmatic=sum(c.get("kind") == "programmatic" for c in criteria),
        )
        return node

    async def run_unit(self, unit: Unit) -> UnitResult:
        """Generate, validate and gate one unit's rubric (see the module docstring)."""
        result = UnitResult(unit.id, "failed")
        base = self.cfg.sampling_seed + _stable(unit.id) * 100
        node = None
        concrete = True
        for attempt in range(self.cfg.attempts):
            result.attempts = attempt + 1
            tag = new_tag()
            feedback = result.reasons[-1][:300] if result.reasons else ""
            concrete = concrete and "copied the template's example" not in feedback
            prompt = self.prompt(unit, tag, feedback, concrete)
            text, err = await self.sampler.sample([{"role": "user", "content": prompt}], seed=base + attempt)
            if text is None:
                result.reasons.append(f"{GENERATOR_CALL_FAILED}: {err}")
                continue
            result.answer = text[:ANSWER_EXCERPT]
            gate: dict[str, Any] = {}
            try:
                node = self._build(unit, text, gate, feedback)
            except (ParseError, AnswerError) as e:
                result.reasons.append(str(e))
                log.info("unit %s attempt %d: %s", unit.id, attempt + 1, e)
                continue
            result.gate = {"attempts": attempt + 1, **gate}
            break
        if node is None:
            return result
        result.rubric, result.answer = node, ""
        result.gate["status"] = "kept"
        if self.cfg.gates.discrimination.enabled:
            disc, policy_errors = await self._discriminate(unit, Rubric.model_validate(node))
            result.gate["discrimination"] = disc.to_json()
            problem = gate_call_problem(disc, policy_errors)
            if problem is not None:  # retried by a re-run, never recorded as the rubric's own drop
                result.status, result.rubric = "failed", None
                result.reasons.append(f"{GATE_CALL_FAILED}: {problem}")
                return result
            if disc.reason is not None:
                result.status, result.gate["status"], result.gate["reason"] = "dropped", "dropped", disc.reason
                return result
        result.status = "kept"
        return result

    async def _responses(self, unit: Unit) -> tuple[list[list[dict[str, str]]], list[str], list[str]]:
        """``k`` (conversation, response) pairs for the gate: from ``responses``, else sampled from the policy;
        and the errors of policy calls that failed."""
        k = self.cfg.gates.discrimination.k
        convs: list[list[dict[str, str]]] = []
        texts: list[str] = []
        given = [(p, r) for p in unit.prompts for r in self.responses.get(p.id, [])]
        if given or self.policy_sampler is None:
            for p, r in given[:k]:
                convs.append(p.messages)
                texts.append(r)
            return convs, texts, []
        base = self.cfg.sampling_seed + _stable(unit.id) * 100 + 50
        picks = [unit.prompts[i % len(unit.prompts)] for i in range(k)]
        outs = await asyncio.gather(
            *(self.policy_sampler.sample(p.messages, seed=base + i) for i, p in enumerate(picks))
        )
        errors: list[str] = []
        for p, (text, err) in zip(picks, outs):
            if text is not None:
                convs.append(p.messages)
                texts.append(text)
            else:
                errors.append(str(err))
        return convs, texts, errors

    async def _discriminate(self, unit: Unit, rubric: Rubric) -> tuple[gates.Discrimination, list[str]]:
        convs, texts, errors = await self._responses(unit)
        if errors:
            return gates.Discrimination(reason="too_few_responses"), errors
        disc = await gates.discrimination(rubric, convs, texts, self.judge, self.cfg.gates.discrimination.min_std)
        return disc, errors
