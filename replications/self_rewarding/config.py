"""The ``self_rewarding:`` config section (self-rewarding rubric RL, Paper B, arXiv 2509.25534).

Data and held-out split, the policy as grader, the teacher, and the held-out evaluation with a fixed judge.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rubricrl.config.schema import ConstrainedGrader, Strict, register_section
from rubricrl.judge.config import JudgeConfig

SECTION = "self_rewarding"  # the top-level config key


class DataSettings(Strict):
    """Training data and the held-out split.

    Attributes:
        subset: HealthBench subset to train on: ``easy`` (Paper B; needs the official files),
            ``offline`` (the 500-example copy; no network), ``offline_easy`` (offline minus Hard).
        heldout_frac: share of ``subset`` held out for evaluation (by hashed ``prompt_id``).
        split_seed: seed of that split (kept apart from ``run.seed`` so runs share the split).
        eval_subset: ``heldout`` (the held-out part) or ``hard`` (HealthBench Hard, as in Paper B).
        train_max_criteria, train_max_prompt_chars, max_train: budget caps on training examples (0 = none).
        heldout_max_criteria, heldout_max_prompt_chars, max_heldout: the same for evaluation examples.
    """

    subset: str = "offline"
    heldout_frac: float = Field(default=0.2, ge=0, lt=1)
    split_seed: int = 0
    eval_subset: Literal["heldout", "hard"] = "heldout"
    train_max_criteria: int = Field(default=0, ge=0)
    train_max_prompt_chars: int = Field(default=0, ge=0)
    max_train: int = Field(default=0, ge=0)
    heldout_max_criteria: int = Field(default=0, ge=0)
    heldout_max_prompt_chars: int = Field(default=0, ge=0)
    max_heldout: int = Field(default=0, ge=0)


class SelfGrader(Strict):
    """The policy as grader.

    Attributes:
        engine: ``live`` (in-process constrained verdicts on the trainer's model object; CPU, one GPU) or
            ``http`` (the top-level ``judge`` config, pointing at the policy engine's vLLM endpoint).
        temperature: grader temperature (Paper B: 0.6; its earlier setting 1.0 scored best). 0 = argmax.
        top_p, top_k: Paper B grader settings (0.95 / 20); applied among the allowed verdict tokens.
        template: judge template (the HealthBench grader template, as the HTTP judge uses).
        max_prompt_tokens: longer grader prompts are ungraded (counted).
        batch_size: criterion prompts per forward pass (live engine).
        seed: seed of the verdict sampling (live engine).
        ungraded: what an ungraded verdict does to the training reward (HealthBench points ratio):
            ``pessimistic`` (default, the training default of every stage: an ungraded positive item is
            not met, an ungraded penalty is present, so no verdict the grader failed to give can raise
            the reward); ``not_met`` counts every ungraded item as not met, MrlX's rule (its parser's
            failure is "not met"; an ungraded penalty then does not apply); ``exclude`` drops the item
            from earned and possible points, as the held-out HealthBench scoring does.
    """

    engine: Literal["live", "http"] = "live"
    temperature: float = Field(default=0.6, ge=0)
    top_p: float | None = Field(default=0.95, gt=0, le=1)
    top_k: int | None = Field(default=20, ge=1)
    template: str = "healthbench"
    max_prompt_tokens: int = Field(default=4096, ge=64)
    batch_size: int = Field(default=16, ge=1)
    seed: int = 0
    ungraded: Literal["pessimistic", "not_met", "exclude"] = "pessimistic"


class FixedGrader(ConstrainedGrader):  # the constrained grader's fields, plus kind / judge
    """A fixed (never trained) grader: the teacher, and the evaluation judge.

    Attributes:
        kind: ``constrained`` (a frozen copy of ``model`` in process, constrained verdict decoding) or
            ``judge`` (any :class:`~rubricrl.judge.JudgeConfig`: an HTTP server of a bigger model, GPT-4.1,
            the in-process transformers judge).
        model: checkpoint alias or path for ``constrained``.
        temperature, top_p, top_k, template, max_prompt_tokens, batch_size: as for the self grader
            (temperature 0 = deterministic argmax verdicts).
        chat_template_kwargs: for ``constrained`` (Qwen3: ``{enable_thinking: false}``).
        judge: the judge config for ``kind: judge``. With ``backend: openai`` and no ``base_url`` /
            ``base_url_file``, the stage starts a local vLLM server from the top-level ``server`` config.
    """

    kind: Literal["constrained", "judge"] = "constrained"
    judge: JudgeConfig | None = None

    @model_validator(mode="after")
    def _needs_judge(self) -> FixedGrader:
        if self.kind == "judge" and self.judge is None:
            raise ValueError("kind: judge needs a 'judge' config (backend, model, ...)")
        return self


class TeacherSettings(Strict):
    """Teacher grading (Paper B: "a small amount of teacher-graded data"; ratio and teacher unknown).

    Attributes:
        fraction: share of training samples the teacher also grades (0 = no teacher).
        replace: teacher verdicts replace self verdicts on those samples (else: agreement only).
        seed: seed of the sample choice.
        grader: the teacher.
    """

    fraction: float = Field(default=0.0, ge=0, le=1)
    replace: bool = True
    seed: int = 0
    grader: FixedGrader = Field(default_factory=FixedGrader)


class EvalSettings(Strict):
    """Held-out evaluation with a fixed judge.

    Attributes:
        max_new_tokens, temperature, top_p: response decoding (temperature 0 = greedy).
        batch_size: sequences generated together.
        seed: sampling seed.
        grader: the fixed judge.
        n_bootstrap: bootstrap resamples (HealthBench reference: 1000).
        ungraded: scoring policy for ungraded verdicts (``exclude``, ``not_met``, ``fail``).
    """

    max_new_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    batch_size: int = Field(default=8, ge=1)
    seed: int = 0
    grader: FixedGrader = Field(default_factory=FixedGrader)
    n_bootstrap: int = Field(default=1000, ge=10)
    ungraded: Literal["exclude", "not_met", "fail"] = "exclude"


class SelfRewardingConfig(Strict):
    """The ``self_rewarding:`` section."""

    data: DataSettings = Field(default_factory=DataSettings)
    grader: SelfGrader = Field(default_factory=SelfGrader)
    teacher: TeacherSettings = Field(default_factory=TeacherSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)


register_section(SECTION, SelfRewardingConfig)
