"""GPU-hour estimates from NeMo RL's published GRPO throughput.

Published figures (NeMo RL ``docs/about/performance-summary.md``, DGX-H100, BF16 training and
generation, Megatron backend, on-policy GRPO, OpenMathInstruct-2, 4,096-token max sequence length):

=============  ======  ====  ======  =============  ==========  =================  ==============
model          source  GPUs  G-GBS   G-avg seq len  gen TP      train TP,CP,EP,PP  tokens/s/GPU
=============  ======  ====  ======  =============  ==========  =================  ==============
Qwen3-30B-A3B  v0.6.0  32    2,048   3,203          2           1,1,8,1            1,102 (192 s)
Qwen3-32B      v0.5.0  32    2,048   3,251          4           4,1,1,4            571 (376 s)
=============  ======  ====  ======  =============  ==========  =================  ==============

The v0.6/v0.7 page no longer lists Qwen3-32B; its v0.5.0 figure is the latest published one.
NeMo RL defines tokens/s/GPU as tokens processed in a step / (step time x GPUs), so

    step_time  = rollouts x mean sequence length / (tokens/s/GPU x GPUs)
    GPU-hours  = steps x step_time x GPUs / 3600      (+ separate judge GPUs x the same wall time)

Assumptions (labelled in every estimate's text): tokens/s/GPU stays at the published value for our GPU
count and sequence length (per-GPU throughput usually drops as GPUs are added: optimistic for 64 GPUs);
the mean sequence length is the same fraction of the maximum as in the published run (0.78) unless the
caller passes one; judge calls served by the policy's own engine (self-rewarding) cost their output
tokens at the same rate (prefill ignored: the conversation prefix is cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rubricrl.cluster.arithmetic import Layout
from rubricrl.config_io import read_text
from rubricrl.errors import UserError


@dataclass(frozen=True)
class PublishedThroughput:
    """One row of NeMo RL's performance summary."""

    model: str
    tokens_per_s_per_gpu: float
    gpus: int
    max_seq_len: int
    mean_seq_len: int
    step_time_s: float
    source: str
    rollouts: int = 2048

    @property
    def mean_fraction(self) -> float:
        return self.mean_seq_len / self.max_seq_len


_DOC = "https://github.com/NVIDIA-NeMo/RL/blob/{}/docs/about/performance-summary.md (H100 BF16, on-policy GRPO)"

PUBLISHED: dict[str, PublishedThroughput] = {
    "Qwen/Qwen3-30B-A3B": PublishedThroughput("Qwen/Qwen3-30B-A3B", 1102, 32, 4096, 3203, 192, _DOC.format("v0.6.0")),
    "Qwen/Qwen3-32B": PublishedThroughput("Qwen/Qwen3-32B", 571, 32, 4096, 3251, 376, _DOC.format("v0.5.0")),
}

HEALTHBENCH_CRITERIA_PER_EXAMPLE = 11.9
"""Mean rubric items per example in the offline 500-example HealthBench copy (11.93; measured here)."""


def _layout(config: Any) -> tuple[Layout, dict[str, Any]]:
    if isinstance(config, Layout):
        return config, {}
    if isinstance(config, (str, Path)):
        config = yaml.safe_load(read_text(config))
    if not isinstance(config, dict):
        raise UserError(f"estimate_gpu_hours needs a NeMo RL config (dict or YAML path), got {type(config).__name__}")
    return Layout.from_nemo_config(config), config


def estimate_gpu_hours(
    config: Any,
    *,
    steps: int | None = None,
    mean_seq_len: float | None = None,
    judge_gpus: int = 0,
    judge_calls_per_rollout: float | None = None,
    judge_output_tokens: int = 256,
) -> tuple[float, str]:
    """GPU-hours of one training run, and the text saying how they were obtained.

    Args:
        config: a generated NeMo RL config (dict or path) or a :class:`Layout`.
        steps: GRPO steps (default: ``grpo.max_num_steps`` of the config).
        mean_seq_len: mean tokens per rollout, prompt included (default: the published run's fraction
            of the maximum).
        judge_gpus: GPUs of a separate judge server job running alongside (Rubicon), charged for the
            training wall time.
        judge_calls_per_rollout: grader calls per rollout served by the policy's own engine
            (self-rewarding; default: the HealthBench mean of 11.9 when the config's judge is the
            policy, else 0).
        judge_output_tokens: mean output tokens per grader call (assumption).

    Raises:
        UserError: no published figure for the model, or no step count.
    """
    layout, cfg = _layout(config)
    model = layout.model if layout.model in PUBLISHED else "/".join(layout.model.split("/")[-2:])
    if model not in PUBLISHED:
        raise UserError(
            f"NeMo RL publishes no GRPO throughput for {layout.model!r} "
            f"(known: {', '.join(PUBLISHED)}); pass a figure of your own"
        )
    pub = PUBLISHED[model]
    if steps is None:
        steps = int(((cfg.get("grpo") or {}).get("max_num_steps")) or 0)
    if steps <= 0:
        raise UserError("no step count: pass steps= or set grpo.max_num_steps in the config")
    assumed = []
    if mean_seq_len is None:
        mean_seq_len = pub.mean_fraction * layout.max_seq_len
        assumed.append(
            f"mean sequence length {mean_seq_len:.0f} = {pub.mean_fraction:.2f} x max "
            f"{layout.max_seq_len} (published run's ratio)"
        )
    if judge_calls_per_rollout is None:
        judge_calls_per_rollout = HEALTHBENCH_CRITERIA_PER_EXAMPLE if layout.judge_is_policy else 0.0
    judge_tokens = judge_calls_per_rollout * judge_output_tokens
    if judge_tokens:
        assumed.append(
            f"{judge_calls_per_rollout:g} grader calls x {judge_output_tokens} output tokens per "
            "rollout on the policy's engine at the same tokens/s/GPU"
        )
    tokens = layout.rollouts * (mean_seq_len + judge_tokens)
    step_s = tokens / (pub.tokens_per_s_per_gpu * layout.world)
    wall_h = steps * step_s / 3600
    hours = wall_h * (layout.world + judge_gpus)
    if judge_gpus:
        assumed.append(
            "the separate judge server's latency adds nothing to the step time (it grades while "
            "the batch is generated; a slow judge lengthens every step)"
        )
    if layout.rollouts != pub.rollouts:
        assumed.append(
            f"tokens/s/GPU unchanged from {pub.rollouts} to {layout.rollouts} rollouts per step "
            "(smaller batches use the GPUs less well: optimistic)"
        )
    if layout.world != pub.gpus:
        assumed.append(f"tokens/s/GPU unchanged from {pub.gpus} to {layout.world} GPUs")
    basis = (
        f"{steps} steps x {step_s:.0f} s/step ({layout.rollouts} rollouts x {mean_seq_len + judge_tokens:.0f} "
        f"tokens / ({pub.tokens_per_s_per_gpu:g} tokens/s/GPU x {layout.world} GPUs)) = {wall_h:.1f} h wall "
        f"x {layout.world} training GPUs"
        + (f" + {judge_gpus} judge GPUs" if judge_gpus else "")
        + f" = {hours:.0f} GPU-h. Throughput: NeMo RL published {pub.tokens_per_s_per_gpu:g} tokens/s/GPU "
        f"for {pub.model} on {pub.gpus} H100s ({pub.source}). Assumptions: " + "; ".join(assumed or ["none"])
    )
    return hours, basis
