"""NeMo RL adapter: the rubric environment, registration by name, and the step accounting the driver uses.

NeMo RL (v0.7.0) computes rewards in *environments*: Ray actors whose
``step(message_log_batch, metadata) -> EnvironmentReturn`` returns one reward per rollout
(``nemo_rl/environments/interfaces.py``). This module translates signatures only: a rollout's metadata
becomes a :class:`rubricrl.reward.scorer.Sample` and the one scorer grades it
(:func:`rubricrl.reward.scorer.score_samples`: task rubric, defense veto, teacher routing, the rollout
record), the same code the TRL reward functions call. Its config is :mod:`rubricrl.train.nemo_rl_env_config`,
its rows and data processor :mod:`rubricrl.train.nemo_rl_data` (both re-exported here).

Wiring (what the generated configs under ``replications/*/nemo_rl/`` contain)::

    data:
      train: {dataset_name: ResponseDataset, data_path: <jsonl of nemo_rl_row()>,
              processor: rubricrl_rubric, env_name: rubric}
    env:
      rubric:                       # RubricEnvConfig
        judge: {backend: openai, base_url_file: <endpoint file>, ...}   # a JudgeConfig
        judge_is_policy: false      # true: the policy's own vLLM server grades
        teacher: null               # optional JudgeConfig of a stronger grader
        teacher_fraction: 0.0       # share of samples (seeded hash, as on TRL) the teacher grades too
        teacher_replace: true       # its verdicts replace the judge's there (false: agreement only)
        teacher_seed: 0

Judges: a judge server job writes the endpoint file ``judge.base_url_file`` names. With ``judge_is_policy``
the driver (``rubricrl nemo-config train``, :func:`rubricrl.train.nemo_rl_driver.run_grpo`) writes the policy
engine's OpenAI-compatible URLs (``dp_openai_server_base_urls``) to that file before training starts. The
HTTP judge client spreads grader calls over every URL listed, and over judge replicas' ``endpoint.<i>.json``
siblings. With a teacher, the step's record carries ``teacher_frac`` and ``self_vs_teacher/{n,agreement,kappa}``
(the TRL stages' keys).

Steps: NeMo RL calls ``step`` once per batch, or once per sample from many threads at once
(``async_engine: true``), and never says which GRPO step a rollout belongs to. The driver
(:mod:`rubricrl.train.nemo_rl_driver`) tells the environment NeMo RL's own step number when the trainer
logs it (:meth:`RubricEnvironment.close_step`); graded rollouts wait until then, so ``rollouts_path`` rows
carry the GRPO step and ``metrics_path`` gets one record per step (criterion and tag means, reward
mean/std, veto and ungraded rates, judge counters of that step). The driver also logs those records
through NeMo RL's logger (``train/rubric/*`` on W&B): NeMo RL v0.7.0's GRPO loop does not log
environment metrics itself. Reward health (:mod:`rubricrl.reward.health`) is checked at every close and
at :meth:`RubricEnvironment.finish`, counting verdicts as the TRL stages do
(:func:`rubricrl.reward.scorer.count_verdicts`). With ``env.rubric.monitor`` (:class:`MonitorEnvConfig`), a
finished check step's sampled rollouts are graded by the gold judge as well (:mod:`rubricrl.train.drift_monitor`):
the step's record gets ``monitor/*`` (the driver logs them as ``train/monitor/*``, the keys TRL's runs have) and
the check is appended to ``monitor.path``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rubricrl.errors import UserError
from rubricrl.jsonl import append_jsonl, cut_step_records
from rubricrl.judge import JudgeConfig, close_judge
from rubricrl.judge.parsing import strip_reasoning
from rubricrl.reward.drift import DriftMonitorError
from rubricrl.reward.health import HealthThresholds, RewardHealth, RewardHealthError
from rubricrl.reward.health_file import restore_health, write_health
from rubricrl.reward.scorer import (
    Sample,
    Scored,
    TeacherRoutingJudge,
    count_verdicts,
    rollout_record,
    score_samples,
    training_rubric,
)
from rubricrl.rubrics.schema import Rubric
from rubricrl.train.drift_monitor import GoldMonitor, Rollout, gold_label, thresholds_of
from rubricrl.train.nemo_rl_data import ENV_NAME, PROCESSOR_NAME, nemo_rl_row, rubric_data_processor, step_metrics
from rubricrl.train.nemo_rl_env_config import (
    MonitorEnvConfig,
    RubricEnvConfig,
    build_env_judge,
    load_env_config,
    read_endpoints,
    write_endpoints,
)
from rubricrl.train.step_timing import nemo_rl_step_timing

__all__ = [
    "ACTOR_FQN",
    "ENV_NAME",
    "PROCESSOR_NAME",
    "MonitorEnvConfig",
    "RubricEnvConfig",
    "RubricEnvironment",
    "build_env_judge",
    "load_env_config",
    "nemo_rl_row",
    "read_endpoints",
    "register",
    "rubric_data_processor",
    "write_endpoints",
]

log = logging.getLogger(__name__)

ACTOR_FQN = "rubricrl.train.nemo_rl_env.RubricEnvironmentActor"


@dataclass
class _Graded:
    """One scored rollout waiting for its GRPO step to be closed."""

    scored: Scored
    gold_rubric: Rubric | None = None  # what the drift monitor's gold judge grades (None: the task rubric)

    @property
    def sample(self) -> Sample:
        assert self.scored.sample is not None
        return self.scored.sample


@dataclass
class _OpenStep:
    step: int
    graded: list[_Graded] = field(default_factory=list)
    calls: int = 0
    reward_s: float = 0.0  # grading wall time assigned to this step
    timing: dict[str, float] = field(default_factory=dict)  # timing/* figures (note_timing)


class RubricEnvironment:
    """Rubric rewards for NeMo RL rollouts (the logic; :data:`RubricEnvironmentActor` is the Ray actor).

    NeMo RL calls :meth:`step` once per batch (synchronous rollouts) or once per sample, concurrently from
    many threads of one actor (``async_engine: true``); the environment never sees the GRPO step. Graded
    rollouts therefore wait in a buffer until the driver (:mod:`rubricrl.train.nemo_rl_driver`) calls
    :meth:`close_step` with NeMo RL's own step number (when the trainer logs that step), which writes
    their rows to ``rollouts_path`` with that step, and a step's one ``metrics_path`` record once the
    next step (or :meth:`finish`) begins. Every shared field is guarded by one lock.

    Args:
        cfg: the ``env.rubric`` mapping of the NeMo RL config (see :class:`RubricEnvConfig`).
    """

    def __init__(self, cfg: dict[str, Any] | RubricEnvConfig):
        self.cfg = cfg if isinstance(cfg, RubricEnvConfig) else load_env_config(cfg)
        self._judge: Any = None
        self._teacher: Any = None
        self._grader: Any = None  # the judge, or a TeacherRoutingJudge over the judge and the teacher
        self._rubrics: dict[str, Rubric] = {}
        self._lock = threading.Lock()  # buffers, counters, step state, rubric cache
        self._build_lock = threading.Lock()  # judge construction (may wait for the endpoint file)
        self._pending: list[_Graded] = []
        self._open: _OpenStep | None = None
        self._stats_seen: dict[str, dict[str, float]] = {}
        self._counters = {"step_calls": 0, "samples": 0, "judges_built": 0, "steps_closed": 0}
        self._active = 0  # step calls grading now
        self._busy_t0 = 0.0  # since when some call has been grading
        self._busy_s = 0.0  # grading wall time not yet assigned to a step
        self._timing_seen: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.health = RewardHealth(
            HealthThresholds(self.cfg.max_ungraded_share, self.cfg.min_steps_with_reward_variance),
            judge=self._describe(self.cfg.judge),
            stage=self.cfg.stage,
            group_size=self.cfg.group_size,
        )
        m = self.cfg.monitor
        self.monitor = (
            None
            if m is None
            else GoldMonitor(
                thresholds_of(m),
                every_steps=m.every_steps,
                sample=m.sample,
                seed=m.seed,
                path=m.path,
                factory=lambda: build_env_judge(m.judge, self.cfg.endpoint_wait_s),
                label=gold_label(m.judge),
                train_label=self._describe(self.cfg.judge),
                stage=self.cfg.stage,
            )
        )

    @staticmethod
    def _describe(j: JudgeConfig) -> str:
        if j.backend != "openai":
            return f"{j.backend} judge {j.model}" if j.backend != "programmatic" else "programmatic verifiers"
        where = j.base_url or (f"the URLs in {j.base_url_file}" if j.base_url_file else "?")
        return f"{j.model} at {where}"

    # -- judges are built on first use: the policy's endpoints exist only once its engine is up
    def _judges(self) -> Any:
        """The grader of every sample: the judge, or the teacher routing over it (TRL's routing)."""
        with self._build_lock:  # concurrent first calls must build one judge, not one each
            if self._judge is None:
                self._judge = build_env_judge(self.cfg.judge, self.cfg.endpoint_wait_s)
                self._counters["judges_built"] += 1
            if self.cfg.teacher is not None and self._teacher is None:
                self._teacher = build_env_judge(self.cfg.teacher, self.cfg.endpoint_wait_s)
                self._counters["judges_built"] += 1
            if self._grader is None:
                c = self.cfg
                self._grader = (
                    self._judge
                    if self._teacher is None
                    else TeacherRoutingJudge(
                        self._judge, self._teacher, c.teacher_fraction, c.teacher_replace, c.teacher_seed
                    )
                )
            return self._grader

    def _rubric(self, raw: Any, training: bool = False) -> Rubric:
        """The rubric a rollout's metadata carries (parsed once); ``training``: with the ungraded policy
        of training rewards applied (:attr:`RubricEnvConfig.ungraded`)."""
        key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
        if training:
            key = f"train:{self.cfg.ungraded}:{key}"
        with self._lock:
            cached = self._rubrics.get(key)
        if cached is not None:
            return cached
        try:
            rubric = Rubric.model_validate_json(raw) if isinstance(raw, str) else Rubric.model_validate(raw)
        except ValidationError as e:
            raise UserError(f"rollout metadata carries an invalid rubric: {e.errors()[0]['msg']}") from None
        if training:
            rubric = training_rubric(rubric, self.cfg.ungraded)
        with self._lock:
            return self._rubrics.setdefault(key, rubric)

    def _response(self, log_: list[dict[str, Any]]) -> str:
        text = "".join(str(m["content"]) for m in log_ if m.get("role") == "assistant")
        return strip_reasoning(text).strip() if self.cfg.strip_thinking else text

    def score(
        self, message_log_batch: list[list[dict[str, Any]]], metadata: list[dict[str, Any]]
    ) -> tuple[list[Scored], list[dict[str, Any]], list[_Graded]]:
        """Grade a batch with the one scorer: scored rollouts, per-sample metadata out, the graded rollouts."""
        if len(message_log_batch) != len(metadata):
            raise ValueError(f"{len(message_log_batch)} message logs but {len(metadata)} metadata entries")
        grader = self._judges()
        samples, golds = [], []
        for log_, meta in zip(message_log_batch, metadata):
            if not meta or "rubric" not in meta or "conversation" not in meta:
                raise UserError(
                    "rollout metadata lacks 'rubric'/'conversation': the data must go through "
                    f"the {PROCESSOR_NAME!r} processor (rows from nemo_rl_row())"
                )
            forced = meta.get("judge")
            samples.append(
                Sample(
                    conversation=list(meta["conversation"]),
                    response=self._response(log_),
                    rubric=self._rubric(meta["rubric"], training=True),
                    defense=self._rubric(meta["defense"], training=True) if meta.get("defense") else None,
                    prompt_id=str(meta.get("prompt_id", "")),
                    grader=forced if forced in ("teacher", "judge") else None,
                )
            )
            golds.append(self._rubric(meta["monitor_rubric"]) if meta.get("monitor_rubric") else None)
        scored = score_samples(grader, samples)
        out_meta = [
            {
                **meta,
                "reward": s.reward,
                "per_criterion": s.task.per_criterion,
                "vetoed": s.vetoed,
                "n_ungraded": s.task.n_ungraded,
                "graded_by": s.graded_by,
                "teacher": s.teacher,
                "defense_vetoed": s.defense_vetoed,
            }
            for meta, s in zip(metadata, scored)
        ]
        return scored, out_meta, [_Graded(s, gold) for s, gold in zip(scored, golds)]

    # -- step accounting (driven by NeMo RL's own step numbers through the driver)

    def close_step(self, step: int) -> dict[str, float] | None:
        """Assign every rollout graded since the last call to GRPO step ``step`` (NeMo RL's number).

        Writes their rollout rows with that step, merges them into the step's tally, and checks the
        step's ungraded share at once. When ``step`` is a new step, the previous one is finished first:
        its one metrics record is written and returned (for the trainer's logger); otherwise None.

        A finished check step of the drift monitor is graded by the gold judge first (outside the lock: rollouts of
        later steps keep arriving meanwhile), and its ``monitor/*`` figures go into its record.

        Raises:
            UserError: the step's verdicts are mostly ungraded (``max_ungraded_share``), or the finished step's
                drift check stopped training (``monitor.on_gap=stop``); its record is written first.
        """
        with self._lock:
            pending, self._pending = self._pending, []
            finished = None
            if self._open is not None and self._open.step != step:
                finished, self._open = self._open, None
            busy = self._take_busy()
        done, stop = None, None
        if finished is not None:
            figures, stop = self._drift_check(finished, last=False)
            with self._lock:
                done = self._write_record(finished, figures)
        with self._lock:
            if self._open is None:
                self._open = _OpenStep(step)
            self._open.graded += pending
            self._open.reward_s += busy
            self._open.calls += 1
            self._write_rollouts(step, pending)
            try:
                self._observe(self._open.step, pending)
            except RewardHealthError as e:  # a plain UserError crosses Ray's pickling intact
                raise UserError(e.message, exit_code=e.exit_code) from None
            finally:
                self._write_health()
        if stop is not None:
            raise stop
        return done

    def _drift_check(self, op: _OpenStep, last: bool) -> tuple[dict[str, float], UserError | None]:
        """The drift monitor's check of a finished step (when it is due): its ``monitor/*`` figures, and the
        error to raise once the step is written (``on_gap=stop``)."""
        if self.monitor is None or not op.graded or not self.monitor.due(op.step, last=last):
            return {}, None
        rollouts = [
            Rollout(
                key=g.sample.prompt_id,
                conversation=list(g.sample.conversation),
                response=g.sample.response,
                rubric=g.gold_rubric or g.sample.rubric,
                defense=g.sample.defense,
                train_reward=float(g.scored.reward),
            )
            for g in op.graded
        ]
        try:
            check = self.monitor.check(op.step, rollouts)
        except DriftMonitorError as e:
            return GoldMonitor.metrics(self.monitor.state.checks[op.step]), UserError(e.message, exit_code=e.exit_code)
        return GoldMonitor.metrics(check), None

    def note_timing(self, step: int, timer: dict[str, Any]) -> dict[str, float]:
        """NeMo RL's step timer for ``step`` (its ``timing/train`` log) -> the step's ``timing/*`` figures.

        Combines the trainer's timer with the grading wall time assigned to the step
        (:func:`rubricrl.train.step_timing.nemo_rl_step_timing`); the figures also go into the step's
        ``metrics_path`` record as ``timing/*``. Empty when ``step`` is not the open step.
        """

        with self._lock:
            if self._open is None or self._open.step != int(step):
                return {}
            self._open.reward_s += self._take_busy()
            figures = nemo_rl_step_timing(timer, self._open.reward_s, self._judge_timing())
            self._open.timing = figures
            return dict(figures)

    def _take_busy(self) -> float:
        """Grading wall time since the last take (lock held); a call still grading counts up to now."""
        now = time.perf_counter()
        busy, self._busy_s = self._busy_s, 0.0
        if self._active:
            busy += now - self._busy_t0
            self._busy_t0 = now
        return busy

    def _judge_timing(self) -> dict[str, float]:
        """The judge's queue wait and compute seconds since the last call (lock held)."""
        stats = getattr(self._judge, "stats", None) if self._judge is not None else None
        if stats is None:
            return {}
        now = {k: float(v) for k, v in stats.as_dict().items() if k in ("queue_wait_s", "latency_sum_s")}
        delta = {k: v - self._timing_seen.get(k, 0.0) for k, v in now.items()}
        self._timing_seen = now
        return delta

    def finish(self) -> dict[str, Any]:
        """End of training: write the last step's record and check the stage as a whole.

        Returns:
            The reward-health summary (:meth:`rubricrl.reward.health.RewardHealth.summary`).

        Raises:
            RewardHealthError: fewer steps with varying rewards than ``min_steps_with_reward_variance``.
        """
        with self._lock:
            if self._pending:
                log.warning(
                    "%d graded rollouts were never assigned to a step (no close_step after them); they are not written",
                    len(self._pending),
                )
                self._pending = []
            last, self._open = self._open, None
        stop = None
        if last is not None:
            figures, stop = self._drift_check(last, last=True)  # the last step is always checked
            with self._lock:
                self._write_record(last, figures)
        with self._lock:
            try:
                summary = self.health.finish()
            except RewardHealthError as e:
                raise UserError(e.message, exit_code=e.exit_code) from None
            finally:
                self._write_health()
        if stop is not None:
            raise stop
        return summary

    def drift_summary(self) -> dict[str, Any] | None:
        """The drift monitor's summary (None when it is off)."""
        return self.monitor.summary() if self.monitor is not None else None

    def _write_health(self) -> None:
        if self.cfg.health_path is None:
            return
        write_health(self.cfg.health_path, self.health)

    def resume(self, done_steps: int) -> dict[str, int]:
        """Start (or restart) after ``done_steps`` finished GRPO steps (NeMo RL's checkpointed step count).

        Rows and records of later steps, written by an attempt that died before its next checkpoint, are
        cut from ``rollouts_path`` and ``metrics_path`` (NeMo RL repeats those steps), so no step appears
        twice; the reward-health tally of the kept steps is taken back from ``health_path``. Each file is
        rewritten only when every complete line of it is a record with a ``step`` (this environment's own
        output); a torn last line is dropped.

        Returns:
            Lines kept and cut per file.

        Raises:
            UserError: a file holds lines that are not this environment's records (nothing is changed).
        """
        out = {}
        with self._lock:
            self._pending, self._open = [], None
            self._busy_s = 0.0
            for name in ("rollouts_path", "metrics_path"):
                path = getattr(self.cfg, name)
                if path is not None and Path(path).is_file():
                    kept, cut = cut_step_records(Path(path), done_steps)
                    out[f"{name}_kept"], out[f"{name}_cut"] = kept, cut
            if self.cfg.health_path is not None:
                restore_health(self.cfg.health_path, self.health, done_steps)
            if self.monitor is not None and self.monitor.path is not None and self.monitor.path.is_file():
                out["monitor_path_kept"], out["monitor_path_cut"] = self.monitor.resume(done_steps)
        return out

    def counters(self) -> dict[str, int]:
        """How the environment was driven: step calls, samples graded, judges built, steps closed, pending."""
        with self._lock:
            return {**self._counters, "pending": len(self._pending)}

    def _observe(self, step: int, graded: list[_Graded]) -> None:
        if not graded:
            return
        ordered = sorted(graded, key=lambda g: g.sample.prompt_id)  # a prompt's group adjacent
        n_verdicts, n_ungraded = count_verdicts([g.scored for g in graded])
        self.health.observe_step(step, n_verdicts, n_ungraded, [g.scored.reward for g in ordered], None)

    def _write_record(self, op: _OpenStep, figures: dict[str, float]) -> dict[str, float]:
        """Write a finished step's metrics record (lock held; ``figures``: its ``monitor/*``) and return it."""
        metrics = {**self._metrics(op.graded), **figures}
        self.last_metrics = metrics
        self._counters["steps_closed"] += 1
        if self.cfg.metrics_path is not None:
            path = Path(self.cfg.metrics_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "step": op.step,
                            "time": time.time(),
                            "samples": len(op.graded),
                            "closes": op.calls,
                            **metrics,
                            **{f"timing/{k}": v for k, v in op.timing.items()},
                        }
                    )
                    + "\n"
                )
        return metrics

    def _write_rollouts(self, step: int, graded: list[_Graded]) -> None:
        if self.cfg.rollouts_path is None or not graded:
            return
        append_jsonl(Path(self.cfg.rollouts_path), (rollout_record(step, g.scored) for g in graded))

    def _judge_deltas(self) -> dict[str, float]:
        """Judge counters since the last record (snapshots, not resets: grading threads keep counting)."""
        out: dict[str, float] = {}
        for name, j in (("judge", self._judge), ("teacher", self._teacher)):
            stats = getattr(j, "stats", None) if j is not None else None
            if stats is None:
                continue
            now = {k: float(v) for k, v in stats.as_dict().items() if k != "mean_latency_s"}
            before = self._stats_seen.get(name, {})
            delta = {k: v - before.get(k, 0.0) for k, v in now.items()}
            self._stats_seen[name] = now
            if delta.get("calls"):
                delta["mean_latency_s"] = delta.get("latency_sum_s", 0.0) / delta["calls"]
            out.update({f"{name}/{k}": v for k, v in delta.items()})
        return out

    def _metrics(self, graded: list[_Graded]) -> dict[str, float]:
        return {**step_metrics([g.scored for g in graded], self._teacher is not None), **self._judge_deltas()}

    def step(self, message_log_batch: list[list[dict[str, Any]]], metadata: list[dict[str, Any]]) -> Any:
        """NeMo RL ``EnvironmentInterface.step``: one terminal turn, one reward per rollout."""
        import torch
        from nemo_rl.environments.interfaces import EnvironmentReturn

        with self._lock:
            if not self._active:
                self._busy_t0 = time.perf_counter()
            self._active += 1
        try:
            results, out_meta, graded = self.score(message_log_batch, metadata)
        finally:
            with self._lock:
                self._active -= 1
                if not self._active:
                    self._busy_s += time.perf_counter() - self._busy_t0
        with self._lock:
            self._pending += graded
            self._counters["step_calls"] += 1
            self._counters["samples"] += len(graded)
        rewards = torch.tensor([s.reward for s in results], dtype=torch.float32)
        return EnvironmentReturn(
            observations=[
                {"role": "environment", "content": f"Environment: rubric reward {r.reward:.4f}"} for r in results
            ],
            metadata=out_meta,
            next_stop_strings=[None] * len(results),
            rewards=rewards,
            terminateds=torch.ones_like(rewards),
            answers=None,
        )

    def global_post_process_and_metrics(self, batch: Any) -> tuple[Any, dict[str, float]]:
        """NeMo RL hook: the batch unchanged and the metrics of the last finished step."""
        with self._lock:
            return batch, dict(self.last_metrics)

    def shutdown(self) -> None:
        """Close judge clients and caches."""
        for j in (self._judge, self._teacher):
            if j is not None:
                close_judge(j)
        self._judge = self._teacher = self._grader = None
        if self.monitor is not None:
            self.monitor.close()


def _actor_class() -> Any:
    import ray
    from nemo_rl.environments.interfaces import EnvironmentInterface

    cls = type("RubricEnvironmentActor", (RubricEnvironment, EnvironmentInterface), {"__module__": __name__})
    return ray.remote(max_restarts=-1, max_task_retries=-1, max_concurrency=64)(cls)


def __getattr__(name: str) -> Any:
    """``RubricEnvironmentActor`` (the Ray actor NeMo RL instantiates) is built on first access."""
    if name == "RubricEnvironmentActor":
        actor = _actor_class()
        globals()[name] = actor
        return actor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Register the ``rubric`` environment and the ``rubricrl_rubric`` processor with NeMo RL (idempotent)."""
    from nemo_rl.data.processors import PROCESSOR_REGISTRY, register_processor
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.distributed.virtual_cluster import PY_EXECUTABLES
    from nemo_rl.environments.utils import ENV_REGISTRY, register_env

    ACTOR_ENVIRONMENT_REGISTRY.setdefault(ACTOR_FQN, PY_EXECUTABLES.SYSTEM)
    if ENV_NAME not in ENV_REGISTRY:
        register_env(ENV_NAME, ACTOR_FQN)
    if PROCESSOR_NAME not in PROCESSOR_REGISTRY:
        register_processor(PROCESSOR_NAME, rubric_data_processor)
