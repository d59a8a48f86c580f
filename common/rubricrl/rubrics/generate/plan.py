"""Jobs and GPU-hours for generating N rubrics on Slurm, from a measured run's tokens per rubric.

Tokens per rubric come from a run's summary (``<out>.summary.json``, ``tokens.per_rubric``: the servers'
``usage``, summed over generation, the gate's policy samples and the gate's judge calls). Without one, the
defaults below are what ``make rubrics-demo N=3`` measured (SmolLM2-135M, the built-in template, k=4).

    GPU-hours = N x tokens per rubric / (tokens/s/GPU x 3600)
    wall time = GPU-hours / (replicas x GPUs per replica)

Every token is charged at one rate (prefill is cheaper than decoding, so this is an upper bound for a
given rate). The default rate is NeMo RL's published GRPO throughput for Qwen3-30B-A3B on H100
(:data:`rubricrl.cluster.throughput.PUBLISHED`), which includes training time; a server that only
generates is faster, so the estimate is pessimistic. Pass ``tokens_per_s_per_gpu`` measured on your judge.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubricrl.cluster.throughput import PUBLISHED
from rubricrl.errors import UserError

#: Measured by ``make rubrics-demo N=3`` (see the README's rubric generation section); used without a summary.
DEFAULT_TOKENS_PER_RUBRIC: dict[str, float] = {
    "generation_prompt_tokens": 2417.3,
    "generation_completion_tokens": 1204.0,
    "gate_policy_prompt_tokens": 112.0,
    "gate_policy_completion_tokens": 682.7,
    "gate_judge_prompt_tokens": 4299.7,
    "gate_judge_completion_tokens": 331.3,
}
DEFAULT_SOURCE = (
    "make rubrics-demo N=3 on 2026-12-02 (SmolLM2-135M-Instruct on the CPU vLLM server, k=4, up to 5 attempts; "
    "retries included: a failed unit's attempts count)"
)


@dataclass
class RubricPlan:
    n: int
    tokens_per_rubric: dict[str, float]
    tokens_source: str
    tokens_per_s_per_gpu: float
    rate_source: str
    replicas: int
    gpus_per_replica: int
    shards: int

    @property
    def tokens(self) -> float:
        return self.n * sum(self.tokens_per_rubric.values())

    @property
    def gpu_hours(self) -> float:
        return self.tokens / (self.tokens_per_s_per_gpu * 3600)

    @property
    def wall_hours(self) -> float:
        return self.gpu_hours / (self.replicas * self.gpus_per_replica)

    def text(self) -> str:
        per = sum(self.tokens_per_rubric.values())
        time = _slurm_time(self.wall_hours * 1.5 + 0.5)
        lines = [
            f"rubric generation plan: {self.n} rubrics over {self.replicas} judge replica(s) x "
            f"{self.gpus_per_replica} GPU(s), {self.shards} generation shards",
            "",
            f"{'job':<10} {'script':<32} {'array':>5} {'GPUs':>5}  {'time':>10}  depends on",
            f"{'judge':<10} {'slurm/judge.sbatch':<32} {self.replicas:>5} {self.gpus_per_replica:>5}  {time:>10}  -",
            f"{'generate':<10} {'slurm/rubrics_generate.sbatch':<32} {self.shards:>5} {0:>5}  {time:>10}  "
            "after judge started",
            f"{'merge':<10} {'slurm/rubrics_generate.sbatch':<32} {1:>5} {0:>5}  {'00:30:00':>10}  afterok generate",
            f"{'cleanup':<10} {'slurm/cleanup.sbatch':<32} {1:>5} {0:>5}  {'00:05:00':>10}  afterany merge",
            "",
            f"tokens per rubric: {per:,.0f} ("
            + ", ".join(f"{k} {v:,.0f}" for k, v in self.tokens_per_rubric.items() if v)
            + f"); from {self.tokens_source}",
            f"total tokens: {self.tokens:,.0f}",
            f"rate: {self.tokens_per_s_per_gpu:,.0f} tokens/s/GPU ({self.rate_source})",
            f"GPU-hours: {self.gpu_hours:,.1f}  (N x tokens per rubric / (tokens/s/GPU x 3600))",
            f"wall time: {self.wall_hours:,.2f} h on {self.replicas * self.gpus_per_replica} GPUs "
            f"(time limits above: 1.5 x that + 30 min)",
        ]
        return "\n".join(lines)

    def commands(self, prompts: str, config: str, out_dir: str, judge_model: str) -> list[str]:
        """The sbatch lines of the plan (``$SITE_ENV``: the site settings file, see slurm/README.md)."""
        time = _slurm_time(self.wall_hours * 1.5 + 0.5)
        exp = "--export=ALL,RR_SITE_ENV=$SITE_ENV"
        judge_env = f"RR_JUDGE_ENDPOINT={out_dir}/judge/endpoint.json"
        return [
            f"judge=$(sbatch --parsable --array=0-{self.replicas - 1} --gpus-per-node={self.gpus_per_replica} "
            f"--time={time} {exp},{judge_env} slurm/judge.sbatch {judge_model})",
            f"gen=$(sbatch --parsable --array=0-{self.shards - 1} --cpus-per-task=2 --time={time} "
            f"--dependency=after:${{judge}} {exp},{judge_env} slurm/rubrics_generate.sbatch generate "
            f"{prompts} {config} {out_dir})",
            f"merge=$(sbatch --parsable --time=00:30:00 --dependency=afterok:${{gen}} {exp} "
            f"slurm/rubrics_generate.sbatch merge {out_dir})",
            f"sbatch --dependency=afterany:${{merge}} {exp},RR_CANCEL_JOBS=${{judge}} slurm/cleanup.sbatch",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "tokens_per_rubric": self.tokens_per_rubric,
            "tokens_source": self.tokens_source,
            "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
            "rate_source": self.rate_source,
            "replicas": self.replicas,
            "gpus_per_replica": self.gpus_per_replica,
            "shards": self.shards,
            "total_tokens": self.tokens,
            "gpu_hours": self.gpu_hours,
            "wall_hours": self.wall_hours,
        }


def _slurm_time(hours: float) -> str:
    minutes = max(1, math.ceil(hours * 60))
    d, rem = divmod(minutes, 24 * 60)
    h, m = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:00" if d else f"{h:02d}:{m:02d}:00"


def tokens_from_summary(path: str | Path) -> dict[str, float]:
    """``tokens.per_rubric`` of a generation summary.

    Raises:
        UserError: unreadable, or the run recorded no token usage (e.g. a transformers backend).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the generation summary: {e}", path=str(p)) from None
    per = ((data.get("tokens") or {}).get("per_rubric")) or {}
    if not per:
        raise UserError("no token usage recorded (the servers reported none); pass another summary", path=str(p))
    return {k: float(v) for k, v in per.items()}


def build_rubric_plan(
    n: int,
    *,
    summary: str | Path | None = None,
    replicas: int = 4,
    gpus_per_replica: int = 1,
    shards: int | None = None,
    tokens_per_s_per_gpu: float | None = None,
) -> RubricPlan:
    """The plan for ``n`` rubrics (see the module docstring)."""
    if n < 1 or replicas < 1 or gpus_per_replica < 1:
        raise UserError("N, replicas and GPUs per replica must be at least 1")
    if summary is not None:
        per, source = tokens_from_summary(summary), f"the measured run {summary}"
    else:
        if not any(DEFAULT_TOKENS_PER_RUBRIC.values()):
            raise UserError("no default tokens per rubric are recorded; pass --summary of a run (make rubrics-demo)")
        per, source = dict(DEFAULT_TOKENS_PER_RUBRIC), f"the default, measured by {DEFAULT_SOURCE}"
    if tokens_per_s_per_gpu is None:
        pub = PUBLISHED["Qwen/Qwen3-30B-A3B"]
        rate, rate_source = (
            float(pub.tokens_per_s_per_gpu),
            f"NeMo RL's published GRPO figure for {pub.model} on H100, {pub.source}; a pessimistic "
            "stand-in for a serving-only judge: pass --tokens-per-s-per-gpu with your server's",
        )
    else:
        if tokens_per_s_per_gpu <= 0:
            raise UserError("--tokens-per-s-per-gpu must be > 0")
        rate, rate_source = float(tokens_per_s_per_gpu), "given"
    return RubricPlan(n, per, source, rate, rate_source, replicas, gpus_per_replica, shards or replicas * 4)
