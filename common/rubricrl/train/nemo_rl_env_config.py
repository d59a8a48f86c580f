"""NeMo RL adapter: the ``env.rubric`` config of the rubric environment, and how it reaches its judges.

:class:`RubricEnvConfig` is what the generated NeMo RL configs under ``replications/*/nemo_rl/`` carry as
``env.rubric`` (built from the experiment config by :func:`rubricrl.cluster.nemo_rl.build_config`); the
environment itself is :mod:`rubricrl.train.nemo_rl_env`. Judges behind an endpoint file (a judge server job,
or the policy's own vLLM engines) are built once the file exists (:func:`build_env_judge`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rubricrl.config.schema import MonitorSchedule
from rubricrl.errors import UserError
from rubricrl.judge import JudgeConfig, build_judge
from rubricrl.judge.backends import TransportError
from rubricrl.judge.backends.openai_http import endpoint_files
from rubricrl.judge.backends.openai_http import read_endpoints as read

log = logging.getLogger(__name__)


class MonitorEnvConfig(MonitorSchedule):
    """``env.rubric.monitor``: the gold-judge drift monitor (the experiment's ``monitor`` section). Unknown keys
    are errors.

    Attributes:
        judge: the gold judge (an HTTP judge: GPT-4.1, a bigger vLLM judge); built at the first check.
        every_steps, sample, max_gap, on_gap, window, max_ungraded_share: ``monitor.*``, one definition
            (:class:`rubricrl.config.schema.MonitorSchedule`).
        seed: seed of the prompt order the sample is taken in (``run.seed``).
        path: ``monitor.jsonl`` of the stage (one record per check).
    """

    judge: JudgeConfig
    seed: int = 0
    path: Path | None = None


class RubricEnvConfig(BaseModel):
    """``env.rubric`` of a NeMo RL config. Unknown keys are errors.

    Attributes:
        judge: grader for ``llm`` criteria (programmatic criteria always go to the verifiers).
        judge_is_policy: the judge is the policy's own vLLM engine (self-rewarding); its sampling
            must then equal the rollout sampling (NeMo RL's HTTP server rejects anything else).
        teacher: optional stronger grader; ``teacher_fraction`` of the samples go to it as well as to ``judge``
            (:class:`rubricrl.reward.scorer.TeacherRoutingJudge`, the TRL stages' routing).
        teacher_fraction: share of samples the teacher grades, chosen by a seeded hash of (rubric id,
            conversation, response): the same samples on both engines, across steps and restarts.
        teacher_replace: the teacher's verdicts replace the judge's on those samples (else: agreement only).
        teacher_seed: seed of that choice.
        strip_thinking: grade the answer without its ``<think>`` block.
        ungraded: how a training reward counts an ungraded verdict on a rubric that does not say
            (:func:`rubricrl.reward.scorer.training_rubric`; the TRL stages' default ``pessimistic``: an
            ungraded penalty counts as present, an ungraded critical item vetoes). ``null`` scores
            rubrics as written.
        metrics_path: JSONL file receiving one metrics record per GRPO step (``step`` is NeMo RL's step
            number, given by the driver; see :meth:`RubricEnvironment.close_step`).
        rollouts_path: JSONL file receiving every graded rollout (prompt, completion, reward, per-criterion
            values; the records the TRL path writes), which the Rubicon hacking analysis mines.
        health_path: JSON file receiving the reward-health summary (steps, verdicts, ungraded, judge
            counters) whenever a step closes and at the end, also when a check fails; the pipeline report
            reads it as ``<stage>/reward_health.json``.
        endpoint_wait_s: how long the first ``step`` waits for ``judge.base_url_file`` to appear.
        max_ungraded_share, min_steps_with_reward_variance: reward-health limits (``run.*`` of the
            experiment config; :mod:`rubricrl.reward.health`): a step with more ungraded verdicts stops
            training, and a stage with fewer varying steps fails at its end.
        group_size: rollouts per prompt (``grpo.num_generations_per_prompt``); variance is judged within
            a prompt's group, what gives GRPO a non-zero advantage.
        stage: the stage name, for messages.
        num_workers: accepted for NeMo RL's env-config convention; grading is async I/O in one actor.
        stop_strings: accepted for NeMo RL's convention (none are needed for single-turn grading).
        monitor: the gold-judge drift monitor (None: off).
    """

    model_config = ConfigDict(extra="forbid")

    judge: JudgeConfig
    judge_is_policy: bool = False
    teacher: JudgeConfig | None = None
    teacher_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    teacher_replace: bool = True
    teacher_seed: int = 0
    strip_thinking: bool = True
    ungraded: Literal["pessimistic", "exclude", "not_met"] | None = "pessimistic"
    metrics_path: Path | None = None
    rollouts_path: Path | None = None
    health_path: Path | None = None
    endpoint_wait_s: float = Field(default=900.0, ge=0)
    max_ungraded_share: float = Field(default=0.5, ge=0.0, le=1.0)
    min_steps_with_reward_variance: int = Field(default=1, ge=0)
    group_size: int | None = Field(default=None, ge=1)
    stage: str = ""
    num_workers: int = Field(default=1, ge=1)
    stop_strings: list[str] | None = None
    monitor: MonitorEnvConfig | None = None


def load_env_config(cfg: dict[str, Any]) -> RubricEnvConfig:
    """Validate ``env.rubric``; errors name every bad key.

    Raises:
        UserError: unknown or ill-typed keys.
    """
    try:
        return RubricEnvConfig.model_validate(cfg)
    except ValidationError as e:
        lines = [f"env.rubric.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise UserError("invalid rubric environment config:\n" + "\n".join(lines)) from None


# --------------------------------------------------------------------------- judges


def read_endpoints(path: Path) -> list[str]:
    """URLs in an endpoint file and its replica siblings (``<stem>.<i><suffix>``, ``slurm/judge.sbatch``).

    The reading is the HTTP judge client's own (:func:`rubricrl.judge.backends.openai_http.read_endpoints`);
    this raises a :class:`UserError` instead of a retryable transport error.
    """

    try:
        return read(path)
    except TransportError as e:
        raise UserError(str(e)) from None


def write_endpoints(path: Path, urls: Sequence[str]) -> None:
    """Write the endpoint file ``read_endpoints`` reads (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"base_url": urls[0], "base_urls": list(urls)}) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_env_judge(cfg: JudgeConfig, wait_s: float = 0.0) -> Any:
    """``build_judge(cfg)`` once ``cfg.base_url_file`` names at least one endpoint file.

    The HTTP client spreads calls over every URL the file(s) list (judge replicas, the policy's
    data-parallel engines); see :mod:`rubricrl.judge.backends.openai_http`.

    Raises:
        UserError: no endpoint file appeared within ``wait_s`` seconds.
    """
    if cfg.backend != "openai" or cfg.base_url_file is None:
        return build_judge(cfg)

    deadline = time.monotonic() + wait_s
    while not endpoint_files(cfg.base_url_file):
        if time.monotonic() >= deadline:
            raise UserError(
                f"judge endpoint file {cfg.base_url_file} did not appear within {wait_s:g} s "
                "(is the judge server job running, or the driver writing the policy's URLs?)"
            )
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.01)))
    urls = read_endpoints(Path(cfg.base_url_file))
    log.info("judge %s over %d endpoint(s): %s", cfg.model, len(urls), ", ".join(urls))
    return build_judge(cfg)
