"""Typed configuration of rubric generation (``rubricrl rubrics generate --config``). Unknown keys are errors.

Example (the CPU demo, ``configs/rubrics/smollm2-vllm.yaml``)::

    generator: smollm2-vllm            # a policy config (shipped name or path) or an inline mapping
    granularity: instance              # instance: one rubric per prompt; task: one per task id
    scoring: points                    # points (signed, HealthBench) or weight (Rubicon weights)
    max_criteria: 5
    attempts: 3                        # generations per prompt before it is recorded as a failure
    gates:
      dedup: {enabled: true, threshold: 0.85}
      reference_copy: {enabled: true, min_words: 8}
      discrimination: {enabled: true, k: 4, judge: smollm2-vllm, policy: smollm2-vllm}

The generator is any OpenAI-compatible model (a vLLM server, a hosted API, or the policy itself for
self-critique), configured exactly like a policy (:class:`rubricrl.generation.PolicyConfig`); the gate's
judge is a :class:`rubricrl.judge.config.JudgeConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rubricrl.config_io import load_yaml_model
from rubricrl.configs import config_path
from rubricrl.generation import PolicyConfig, load_policy_config
from rubricrl.judge.config import JudgeConfig, load_judge_config
from rubricrl.rubrics.generate.schema import verifier_names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedConfig(_Strict):
    """A human-written rubric to expand (hybrid rubrics).

    Attributes:
        path: rubric file (YAML bank, single rubric, or JSONL), loaded and validated like ``rubricrl validate``.
        id: which rubric of the file; may be omitted when the file holds exactly one.
    """

    path: Path
    id: str | None = None


class DedupGate(_Strict):
    """Near-duplicate criteria within one rubric: the later of two criteria this similar is removed.

    ``threshold``: similarity in [0, 1] (the larger of a character-sequence ratio and a word-set Jaccard).
    """

    enabled: bool = True
    threshold: float = Field(default=0.85, gt=0, le=1)


class ReferenceCopyGate(_Strict):
    """Criteria that copy the reference answer verbatim: flagged (tag ``flag:copies_reference``) or dropped.

    ``min_words``: a run of at least this many consecutive words shared with the reference counts as a copy.
    """

    enabled: bool = True
    min_words: int = Field(default=8, ge=3)
    action: Literal["flag", "drop"] = "flag"


class DiscriminationGate(_Strict):
    """Grade ``k`` policy responses against each rubric; drop the rubric when the scores do not vary.

    The rule is the offline filter's zero-variance rule (:func:`rubricrl.data.filtering.select_prompts`,
    ``min_std``). Responses come from ``policy`` (sampled here) or from ``--responses`` (a responses
    JSONL as ``rubricrl generate`` writes it). Identical responses are graded once (judge noise on the same
    text is not discrimination).
    """

    enabled: bool = True
    k: int = Field(default=4, ge=2, le=64)
    judge: str | JudgeConfig = "smollm2-vllm"
    policy: str | PolicyConfig | None = "smollm2-vllm"
    min_std: float = Field(default=0.0, ge=0)


class Gates(_Strict):
    dedup: DedupGate = Field(default_factory=DedupGate)
    reference_copy: ReferenceCopyGate = Field(default_factory=ReferenceCopyGate)
    discrimination: DiscriminationGate = Field(default_factory=DiscriminationGate)


class GenerateConfig(_Strict):
    """How rubrics are generated.

    Attributes:
        generator: the model that writes rubrics: a policy config name/path or an inline policy mapping.
        granularity: ``instance`` (one rubric per prompt, id = prompt id) or ``task`` (one per group of
            prompts sharing ``task_key``, id = that task id).
        task_key: the prompt record's field holding the task id (``task`` granularity).
        scoring: ``points`` (signed HealthBench points) or ``weight`` (positive weights, ``negative`` for
            penalties). A seed rubric's own form wins.
        tiers: ask for ordered score tiers per criterion (weight scoring only).
        tier_levels: how many tiers when ``tiers`` is on.
        programmatic: offer our verifiers to the model; a criterion becomes programmatic only when it
            names a known verifier with arguments that work.
        verifiers: the verifiers offered (None: every registered one; a short list keeps the prompt short).
        min_criteria, max_criteria: bounds on the criteria the model writes (seed criteria not counted).
        attempts: generations per prompt (or task) before it is recorded in the failures file.
        structured_output: send the criteria list's JSON schema as ``response_format`` (vLLM enforces it).
        template: the generation prompt: ``instance`` (built-in) or a path to a template file.
        seed: a human-written rubric whose criteria are kept; the model adds instance criteria.
        category: rubric category written into each rubric (default: the prompt's ``category``, else ``generated``).
        sampling_seed: base seed of the generator's and the policy's calls (attempt and unit derive theirs).
        gates: the quality gates.
    """

    generator: str | PolicyConfig = "smollm2-vllm"
    granularity: Literal["instance", "task"] = "instance"
    task_key: str = "task_id"
    scoring: Literal["points", "weight"] = "points"
    tiers: bool = False
    tier_levels: int = Field(default=3, ge=2, le=10)
    programmatic: bool = True
    verifiers: list[str] | None = None
    min_criteria: int = Field(default=2, ge=1, le=50)
    max_criteria: int = Field(default=6, ge=1, le=50)
    attempts: int = Field(default=3, ge=1, le=20)
    structured_output: bool = True
    template: str = "instance"
    seed: SeedConfig | None = None
    category: str | None = None
    sampling_seed: int = 0
    gates: Gates = Field(default_factory=Gates)

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.min_criteria > self.max_criteria:
            raise ValueError(f"min_criteria ({self.min_criteria}) is above max_criteria ({self.max_criteria})")
        if self.tiers and self.scoring == "points":
            raise ValueError("tiers need scoring: weight (a points criterion is binary)")
        if self.verifiers is not None:
            known = set(verifier_names())
            unknown = [v for v in self.verifiers if v not in known]
            if unknown:
                raise ValueError(f"unknown verifier(s) {unknown}; known: {', '.join(sorted(known))}")
        return self


def load_generate_config(path: str | Path, overrides: dict[str, Any] | None = None) -> GenerateConfig:
    """Load and validate a generation YAML (errors name file, line and key, or the override).

    Raises:
        UserError: unreadable file, invalid YAML, unknown or ill-typed keys.
    """
    return load_yaml_model(path, GenerateConfig, overrides=overrides, overrides_flag="override")


def resolve_policy(spec: str | PolicyConfig) -> PolicyConfig:
    """A policy config from an inline one, a path, or a shipped name (``configs/policy/``)."""
    if isinstance(spec, PolicyConfig):
        return spec
    return load_policy_config(config_path("policy", spec))


def resolve_judge(spec: str | JudgeConfig) -> JudgeConfig:
    """A judge config from an inline one, a path, or a shipped name (``configs/judge/``)."""
    if isinstance(spec, JudgeConfig):
        return spec
    return load_judge_config(config_path("judge", spec))
