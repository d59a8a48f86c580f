"""Typed experiment schema: every hyperparameter of a training run, validated after Hydra composition.

Top-level sections (unknown keys anywhere are errors):

=========  ===========================================================================================
``run``    name, output root, seed, scale label, engine (``trl`` locally, ``nemo_rl`` on clusters)
``wandb``  W&B mode (``offline`` by default; ``online`` only when configured), project, entity, tags
``policy`` the model being trained (alias for ``rubricrl.models.resolve_model``, a path, or a hub id)
``grpo``   GRPO settings, named as ``trl.GRPOConfig`` fields (``rubricrl.train.trl_adapter`` maps them)
``judge``  the judge for ``llm`` criteria (``rubricrl.judge.JudgeConfig``, inline)
``server`` a local vLLM judge server started for the stages that need it (``enabled: false`` = none)
``monitor`` the gold-judge drift monitor (:mod:`rubricrl.reward.drift`; off unless a judge is set)
``site``   where it runs: ``local`` or ``slurm`` (account, partition, container, paths); see
           ``configs/train/site/*.yaml``
=========  ===========================================================================================

Pipelines add their own top-level section with :func:`register_section`: each replication declares its own in
``replications/<paper>/config.py`` (:class:`rubricrl.papers.Paper` ``sections``).
A section that is present but not registered is an error, as is any unknown key inside one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rubricrl.judge.config import JudgeConfig

Scale = Literal["tiny", "single_gpu", "paper"]


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class RunConfig(Strict):
    """Identity and placement of a run.

    Attributes:
        name: run folder name under ``root`` (``runs/<name>/<stage>/``).
        root: folder holding runs (relative paths are relative to the working directory).
        seed: seed for data splits, sampling and training.
        scale: which scale overlay composed this config (set by ``configs/train/scale/<scale>.yaml``).
        engine: ``trl`` (local CPU / one GPU) or ``nemo_rl`` (clusters; consumed by the Slurm recipes).
        keep_checkpoints: keep a TRL training stage's ``checkpoints/checkpoint-*`` once the stage is done
            (to train on from a step later). ``false`` deletes them right after the stage's done marker is
            written (a stage that fails before that keeps them, so its rerun resumes): the tiny scale does,
            since a SmolLM2 checkpoint with optimizer state is 1.6 GB and a done stage is skipped on rerun.
            Not part of the config hash, so setting it later reruns nothing and deletes nothing already done.
            NeMo RL stages keep ``nemo_rl/checkpoints/`` either way (``final/`` is converted from them).
        max_ungraded_share: a training stage stops (exit 2, no done marker) as soon as one step has more than
            this share of its verdicts ungraded (a judge timing out or unreachable); 1.0 = never
            (:mod:`rubricrl.reward.health`).
        min_steps_with_reward_variance: a training stage fails at its end, with no done marker, unless at
            least this many steps had rewards that differ within a group (else every GRPO advantage was 0
            and nothing was learned); 0 = no check.
            Neither threshold changes what a passing stage computes, so neither is in the config hash.
        async_reward: TRL stages that grade with an HTTP judge (Rubicon) use the async reward function
            (:class:`rubricrl.train.trl_adapter.AsyncRubricRewardFunc`): TRL awaits it on its own event
            loop, together with any other async reward function of the step, instead of blocking on the
            judge's background loop. Same requests, same rewards (tested); not in the config hash.
            ``benchmarks/reward_overlap.py`` measures both paths.
    """

    name: str = "default"
    root: Path = Path("runs")
    seed: int = 0
    scale: Scale = "tiny"
    engine: Literal["trl", "nemo_rl"] = "trl"
    keep_checkpoints: bool = True
    max_ungraded_share: float = Field(default=0.5, ge=0, le=1)
    min_steps_with_reward_variance: int = Field(default=1, ge=0)
    async_reward: bool = False

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError(f"run.name must be a plain folder name, got {v!r}")
        return v

    @property
    def dir(self) -> Path:
        return self.root / self.name


class WandbConfig(Strict):
    """W&B logging. ``offline`` (default) writes under the run folder and needs no login."""

    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "rubricrl"
    entity: str | None = None
    tags: list[str] = Field(default_factory=list)


class PolicyModel(Strict):
    """The policy being trained.

    Attributes:
        name: a ``resolve_model`` alias (``smollm2-135m-instruct``, ``tiny-qwen3-moe``), a checkpoint
            directory, or (on clusters) a hub id such as ``Qwen/Qwen3-30B-A3B``.
        dtype: parameter dtype for training.
        device: ``cpu`` or ``cuda``.
        chat_template_kwargs: passed to the chat template (Qwen3: ``{enable_thinking: false}``).
        system_prompt: optional system message for every prompt.
    """

    name: str = "smollm2-135m-instruct"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None


LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"]


class GRPOSettings(Strict):
    """GRPO hyperparameters; each key is the ``trl.GRPOConfig`` field of the same name.

    Defaults are the published values where known (REFERENCE.md): KL ``beta`` 0, asymmetric clip
    ``epsilon`` 0.2 / ``epsilon_high`` 0.28, per-token loss (``dapo``: token-level sum over the global
    batch), constant learning rate with warmup, weight decay 0.1. ``extra`` passes any other
    ``GRPOConfig`` field through (checked against TRL's dataclass when the trainer is built).
    """

    learning_rate: float = Field(default=1e-6, gt=0)
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: int = Field(default=10, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    beta: float = Field(default=0.0, ge=0)
    epsilon: float = Field(default=0.2, gt=0)
    epsilon_high: float = Field(default=0.28, gt=0)
    loss_type: LossType = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    num_generations: int = Field(default=4, ge=2)
    per_device_train_batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    num_iterations: int = Field(default=1, ge=1)
    max_steps: int = Field(default=100, ge=1)
    max_completion_length: int = Field(default=256, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    mask_truncated_completions: bool = False
    bf16: bool = False
    gradient_checkpointing: bool = False
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    logging_steps: int = Field(default=1, ge=1)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int | None = 2
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> GRPOSettings:
        if self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) must be >= epsilon ({self.epsilon})")
        gen = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if gen % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x gradient_accumulation_steps ({gen}) must be a "
                f"multiple of num_generations ({self.num_generations})"
            )
        return self

    def merged(self, overrides: dict[str, Any]) -> GRPOSettings:
        """A copy with ``overrides`` (a per-stage partial section) applied and re-validated."""
        data = self.model_dump()
        for k, v in overrides.items():
            if k == "extra":
                data["extra"] = {**data["extra"], **v}
            else:
                data[k] = v
        return GRPOSettings.model_validate(data)

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations


class ServerConfig(Strict):
    """A local vLLM judge server (``rubricrl.judge.vllm_server.VLLMServer``) for stages that judge.

    When ``enabled``, stages that need a model judge start it, point ``judge.base_url`` at it, and stop
    it when done. Clusters run the judge as their own job and leave this off.
    """

    enabled: bool = False
    model: str = "smollm2-135m-instruct"
    max_model_len: int = Field(default=2048, ge=256)
    kv_cache_gib: float = Field(default=1.0, gt=0)
    max_num_seqs: int | None = None
    dtype: str = "auto"
    startup_timeout_s: float = Field(default=300.0, gt=0)


class SlurmSettings(Strict):
    """Slurm job parameters (used by the slurm/ scripts when ``site.launcher`` is ``slurm``)."""

    account: str | None = None
    partition: str | None = None
    qos: str | None = None
    time: str = "04:00:00"
    nodes: int = Field(default=1, ge=1)
    gpus_per_node: int = Field(default=8, ge=0)
    cpus_per_task: int = Field(default=16, ge=1)
    mem: str | None = None
    constraint: str | None = None
    extra_args: list[str] = Field(default_factory=list)


class SitePaths(Strict):
    """Site paths (None = the local defaults: ``data/``, HF cache from the environment).

    A Slurm cluster's container images and repository/run/venv paths are the cluster site file's
    (``slurm/site.example.yaml``, :mod:`rubricrl.cluster.site`), not keys here.
    """

    data_dir: Path | None = None
    hf_home: Path | None = None


class SiteConfig(Strict):
    """Where and how a run executes."""

    name: str = "local"
    launcher: Literal["local", "slurm"] = "local"
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    paths: SitePaths = Field(default_factory=SitePaths)
    env: dict[str, str] = Field(default_factory=dict)


class ConstrainedGrader(Strict):
    """A frozen local model that grades by constrained verdict decoding (no free text to parse).

    The mechanism of the self-rewarding pipeline's fixed graders (:class:`rubricrl.judge.live_policy.LivePolicyGrader`
    on a frozen copy of ``model``): cheap and always parseable on CPU, where a free-text judge of a 135M model
    is not. Programmatic criteria still go to the verifiers.

    Attributes:
        model: checkpoint alias or path (``smollm2-135m-instruct``), loaded frozen on the policy's device.
        temperature: verdict sampling temperature; 0 = argmax (deterministic).
        top_p, top_k: applied among the allowed verdict tokens.
        template: grader template (the HealthBench grader structure).
        max_prompt_tokens: longer grader prompts are ungraded (counted).
        batch_size: criterion prompts per forward pass.
        chat_template_kwargs: for the grader's chat template (Qwen3: ``{enable_thinking: false}``).
    """

    model: str = "smollm2-135m-instruct"
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    template: str = "healthbench"
    max_prompt_tokens: int = Field(default=4096, ge=64)
    batch_size: int = Field(default=16, ge=1)
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)


class MonitorSchedule(Strict):
    """When the gold-judge drift monitor checks and what it tolerates: the fields the experiment's
    ``monitor`` section (:class:`MonitorConfig`) and the NeMo RL environment's ``env.rubric.monitor``
    (:class:`rubricrl.train.nemo_rl_env_config.MonitorEnvConfig`) share, so their defaults and bounds are one.

    Attributes: as :class:`MonitorConfig`.
    """

    every_steps: int = Field(default=10, ge=1)
    sample: int = Field(default=4, ge=1)
    max_gap: float = Field(default=0.15, gt=0)
    on_gap: Literal["warn", "stop"] = "warn"
    window: int = Field(default=3, ge=1)
    max_ungraded_share: float = Field(default=0.5, ge=0, le=1)

    def schedule(self) -> dict[str, Any]:
        """These fields as plain values (what the NeMo RL config carries)."""
        return {k: getattr(self, k) for k in MonitorSchedule.model_fields}


class MonitorConfig(MonitorSchedule):
    """The gold-judge drift monitor (:mod:`rubricrl.reward.drift`): a second judge grades some of the current
    rollouts every few steps; the gap between its reward and the training judge's is logged, and a gap that
    widens past ``max_gap`` warns or stops the stage. Off unless ``judge`` or ``constrained`` is set.

    Which rollouts: at a check step, the step's own rollouts of ``sample`` prompts, the first of the step's
    prompts in one fixed seeded order of prompt ids (``run.seed``; the same order on both engines). Both judges
    grade the same rollouts, so prompt difficulty cancels out of the gap; nothing extra is generated, so the
    monitor never changes what training samples.

    Attributes:
        judge: the gold judge (a :class:`~rubricrl.judge.JudgeConfig`): at paper scale a stronger model than the
            training judge (e.g. ``configs/judge/gpt41-healthbench.yaml``'s GPT-4.1 HealthBench grader, or a
            bigger vLLM judge). An ``openai`` judge without ``base_url`` / ``base_url_file`` grades on the
            training judge's server (the local vLLM server when ``server.enabled``), with its own settings.
        constrained: instead of ``judge``, a frozen local model with constrained verdicts (TRL runs only).
        every_steps: check at step 1 (the baseline), every ``every_steps``-th step, and the last step.
        sample: prompts per check (all their rollouts are graded).
        max_gap: largest tolerated widening of the gap (training judge's mean reward minus the gold judge's)
            over the first check's gap, the mean over the last ``window`` checks.
        on_gap: ``warn`` (logged, in the report) or ``stop`` (the stage stops, exit 2, no done marker).
        window: checks averaged for the widening and fitted for the trend (slope of the gap per step).
        max_ungraded_share: a check whose gold verdicts are ungraded above this share gives no gold reward: it
            is counted and shown as skipped, never averaged in.
        stages: training stages to monitor (empty = every training stage of the pipeline).
            None of these keys changes what a stage computes unless it stops it, so ``monitor`` is not in the
            config hash (as ``run.max_ungraded_share``): turning it on later reruns nothing already done.
    """

    judge: JudgeConfig | None = None
    constrained: ConstrainedGrader | None = None
    stages: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_judge(self) -> MonitorConfig:
        if self.judge is not None and self.constrained is not None:
            raise ValueError("set monitor.judge or monitor.constrained, not both (the monitor has one gold judge)")
        return self

    @property
    def enabled(self) -> bool:
        return self.judge is not None or self.constrained is not None

    def applies_to(self, stage: str) -> bool:
        """The monitor is on for training stage ``stage``."""
        return self.enabled and (not self.stages or stage in self.stages)


class ExperimentConfig(Strict):
    """A whole experiment. Build it with :func:`rubricrl.config.compose_experiment`.

    ``sections`` holds the validated pipeline sections (e.g. ``sections["rubicon"]``).
    """

    paper: str
    run: RunConfig = Field(default_factory=RunConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    policy: PolicyModel = Field(default_factory=PolicyModel)
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)
    judge: JudgeConfig = Field(default_factory=lambda: JudgeConfig(backend="programmatic"))
    server: ServerConfig = Field(default_factory=ServerConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    site: SiteConfig = Field(default_factory=SiteConfig)
    sections: dict[str, Any] = Field(default_factory=dict, exclude=True)

    def section(self, name: str) -> Any:
        """The validated pipeline section ``name`` (raises KeyError with the known names)."""
        if name not in self.sections:
            raise KeyError(f"config has no section {name!r} (has: {sorted(self.sections)})")
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of everything, sections included (what ``config.yaml`` holds)."""
        out = self.model_dump(mode="json")
        for name, sec in self.sections.items():
            out[name] = sec.model_dump(mode="json") if isinstance(sec, BaseModel) else sec
        return out


_SECTIONS: dict[str, type[BaseModel]] = {}


def register_section(name: str, model: type[BaseModel]) -> None:
    """Declare a pipeline section (top-level key ``name`` validated by ``model``)."""
    if name in ExperimentConfig.model_fields:
        raise ValueError(f"{name!r} is a built-in section")
    _SECTIONS[name] = model


def registered_sections() -> dict[str, type[BaseModel]]:
    return dict(_SECTIONS)


def trl_field_names() -> set[str]:
    """Field names of ``trl.GRPOConfig`` (imports TRL; used to check ``grpo.extra``)."""
    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig)}
