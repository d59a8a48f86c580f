"""NeMo RL adapter: a rubric environment, its data processor, registration by name, and the driver.

NeMo RL (v0.7.0) computes rewards in *environments*: Ray actors whose
``step(message_log_batch, metadata) -> EnvironmentReturn`` returns one reward per rollout
(``nemo_rl/environments/interfaces.py``). This module translates signatures only: the grading is
``rubricrl.judge`` (``build_judge`` / ``grade_many``) and the reward is ``rubricrl.reward.rubric_reward``,
the same code the TRL path and the evaluation use.

Wiring (what the generated configs under ``replications/*/nemo_rl/`` contain)::

    data:
      train: {dataset_name: ResponseDataset, data_path: <jsonl of nemo_rl_row()>,
              processor: rubricrl_rubric, env_name: rubric}
    env:
      rubric:                       # RubricEnvConfig
        judge: {backend: openai, base_url_file: <endpoint file>, ...}   # a JudgeConfig
        judge_is_policy: false      # true: the policy's own vLLM server grades (self-rewarding)
        teacher: null               # optional JudgeConfig of a stronger grader
        teacher_fraction: 0.0       # share of prompts (by prompt_id hash) graded by the teacher

Judges: Rubicon points ``judge.base_url_file`` at the endpoint file the judge server job writes.
Self-rewarding sets ``judge_is_policy``; the driver (``rubricrl nemo-config train``,
:func:`rubricrl.train.nemo_rl_driver.run_grpo`) then writes the policy engine's OpenAI-compatible URLs
(``dp_openai_server_base_urls``) to that file before training starts. The HTTP judge client spreads
grader calls over every URL listed, and over judge replicas' ``endpoint.<i>.json`` siblings.

Steps: NeMo RL calls ``step`` once per batch, or once per sample from many threads at once
(``async_engine: true``), and never says which GRPO step a rollout belongs to. The driver
(:mod:`rubricrl.train.nemo_rl_driver`) tells the environment NeMo RL's own step number when the trainer
logs it (:meth:`RubricEnvironment.close_step`); graded rollouts wait until then, so ``rollouts_path`` rows
carry the GRPO step and ``metrics_path`` gets one record per step (criterion and tag means, reward
mean/std, veto and ungraded rates, judge counters of that step). The driver also logs those records
through NeMo RL's logger (``train/rubric/*`` on W&B): NeMo RL v0.7.0's GRPO loop does not log
environment metrics itself. Reward health (:mod:`rubricrl.reward.health`) is checked at every close and
at :meth:`RubricEnvironment.finish`. With ``env.rubric.monitor`` (:class:`MonitorEnvConfig`), a finished check
step's sampled rollouts are graded by the gold judge as well (:mod:`rubricrl.train.drift_monitor`): the step's
record gets ``monitor/*`` (the driver logs them as ``train/monitor/*``, the keys TRL's runs have) and the check is
appended to ``monitor.path``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rubricrl.errors import UserError
from rubricrl.jsonl import cut_step_records
from rubricrl.judge import GradingRequest, JudgeConfig, build_judge, close_judge, grade_many
from rubricrl.judge.parsing import strip_reasoning
from rubricrl.reward import RewardResult, rubric_reward
from rubricrl.reward.drift import DriftMonitorError
from rubricrl.reward.health import HealthThresholds, RewardHealth, RewardHealthError
from rubricrl.reward.health_file import restore_health, write_health
from rubricrl.rubrics.schema import Rubric
from rubricrl.train.drift_monitor import GoldMonitor, Rollout, gold_label, thresholds_of

log = logging.getLogger(__name__)

ENV_NAME = "rubric"
PROCESSOR_NAME = "rubricrl_rubric"
ACTOR_FQN = "rubricrl.train.nemo_rl_env.RubricEnvironmentActor"


class MonitorEnvConfig(BaseModel):
    """``env.rubric.monitor``: the gold-judge drift monitor (the experiment's ``monitor`` section). Unknown keys
    are errors.

    Attributes:
        judge: the gold judge (an HTTP judge: GPT-4.1, a bigger vLLM judge); built at the first check.
        every_steps, sample, max_gap, on_gap, window, max_ungraded_share: as ``monitor.*``
            (:class:`rubricrl.config.schema.MonitorConfig`).
        seed: seed of the prompt order the sample is taken in (``run.seed``).
        path: ``monitor.jsonl`` of the stage (one record per check).
    """

    model_config = ConfigDict(extra="forbid")

    judge: JudgeConfig
    every_steps: int = Field(default=10, ge=1)
    sample: int = Field(default=4, ge=1)
    max_gap: float = Field(default=0.15, gt=0)
    on_gap: Literal["warn", "stop"] = "warn"
    window: int = Field(default=3, ge=1)
    max_ungraded_share: float = Field(default=0.5, ge=0.0, le=1.0)
    seed: int = 0
    path: Path | None = None


class RubricEnvConfig(BaseModel):
    """``env.rubric`` of a NeMo RL config. Unknown keys are errors.

    Attributes:
        judge: grader for ``llm`` criteria (programmatic criteria always go to the verifiers).
        judge_is_policy: the judge is the policy's own vLLM engine (self-rewarding); its sampling
            must then equal the rollout sampling (NeMo RL's HTTP server rejects anything else).
        teacher: optional stronger grader; ``teacher_fraction`` of prompts go to it.
        teacher_fraction: share of prompt ids graded by the teacher (stable across steps and restarts).
        strip_thinking: grade the answer without its ``<think>`` block.
        ungraded: how a training reward counts an ungraded verdict on a rubric that does not say
            (:func:`rubricrl.train.rewards.training_rubric`; the TRL stages' default ``pessimistic``: an
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


# --------------------------------------------------------------------------- data


def nemo_rl_row(
    conversation: list[dict[str, str]],
    rubric: Rubric,
    prompt_id: str,
    judge: str | None = None,
    defense: Rubric | None = None,
    monitor_rubric: Rubric | None = None,
) -> dict[str, Any]:
    """One JSONL row for NeMo RL's ``ResponseDataset`` + the ``rubricrl_rubric`` processor.

    The rubric travels as a JSON string (Arrow cannot hold heterogeneous nested rubrics as columns).
    ``judge="teacher"`` forces this prompt to the teacher grader. ``defense`` is a defense rubric
    graded beside the task rubric; when it vetoes, the reward is its veto floor (Rubicon stage 2, as
    :class:`rubricrl.train.rewards.RubricScorer` does on the TRL path). ``monitor_rubric`` is what the drift
    monitor's gold judge grades instead of ``rubric`` (Rubicon stage 1: the full bank rubric).
    """
    row: dict[str, Any] = {"messages": conversation, "rubric_json": rubric.model_dump_json(), "prompt_id": prompt_id}
    if judge is not None:
        row["judge"] = judge
    if defense is not None:
        row["defense_json"] = defense.model_dump_json()
    if monitor_rubric is not None:
        row["monitor_rubric_json"] = monitor_rubric.model_dump_json()
    return row


def rubric_data_processor(
    datum: dict[str, Any], task_data_spec: Any, tokenizer: Any, max_seq_length: int, idx: int
) -> dict[str, Any]:
    """NeMo RL data processor (``TaskDataProcessFnCallable``): a ``nemo_rl_row`` -> ``DatumSpec``.

    The prompt goes through the tokenizer's chat template; the untemplated conversation and the rubric
    go to ``extra_env_info`` so the judge sees the conversation as the grader prompt expects it.
    Prompts longer than ``max_seq_length`` are cut to a stub and masked (``loss_multiplier`` 0), as
    NeMo RL's own processors do.
    """
    import torch

    messages = [dict(m) for m in datum["messages"]]
    system = getattr(task_data_spec, "system_prompt", None)
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = torch.as_tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.int64)
    length = int(ids.shape[0])
    loss_multiplier = 1.0
    if length >= max_seq_length:
        ids, loss_multiplier = ids[: min(4, max_seq_length)], 0.0
    info = {"conversation": datum["messages"], "rubric": datum["rubric_json"], "prompt_id": datum["prompt_id"]}
    if datum.get("judge"):
        info["judge"] = datum["judge"]
    if datum.get("defense_json"):
        info["defense"] = datum["defense_json"]
    if datum.get("monitor_rubric_json"):
        info["monitor_rubric"] = datum["monitor_rubric_json"]
    return {
        "message_log": [{"role": "user", "content": text, "token_ids": ids}],
        "length": length,
        "extra_env_info": info,
        "loss_multiplier": loss_multiplier,
        "idx": idx,
        "task_name": datum.get("task_name", ENV_NAME),
    }


# --------------------------------------------------------------------------- judges


def read_endpoints(path: Path) -> list[str]:
    """URLs in an endpoint file and its replica siblings (``<stem>.<i><suffix>``, ``slurm/judge.sbatch``).

    The reading is the HTTP judge client's own (:func:`rubricrl.judge.backends.openai_http.read_endpoints`);
    this raises a :class:`UserError` instead of a retryable transport error.
    """
    from rubricrl.judge.backends import TransportError
    from rubricrl.judge.backends.openai_http import read_endpoints as read

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
    from rubricrl.judge.backends.openai_http import endpoint_files

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


# --------------------------------------------------------------------------- environment


def _prompt_fraction(prompt_id: str) -> float:
    return int(hashlib.sha256(prompt_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    m = _mean(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5 if len(values) > 1 else 0.0


@dataclass
class _Graded:
    """One graded rollout waiting for its GRPO step to be closed."""

    request: GradingRequest
    rubric: Rubric
    result: RewardResult
    defense: RewardResult | None
    by_teacher: bool
    defense_rubric: Rubric | None = None
    gold_rubric: Rubric | None = None  # what the drift monitor's gold judge grades (None: ``rubric``)

    @property
    def n_verdicts(self) -> int:
        return len(self.rubric.criteria) + (len(self.defense.per_criterion) if self.defense is not None else 0)

    @property
    def n_ungraded(self) -> int:
        return self.result.n_ungraded + (self.defense.n_ungraded if self.defense is not None else 0)


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
    def _judges(self) -> tuple[Any, Any]:
        with self._build_lock:  # concurrent first calls must build one judge, not one each
            if self._judge is None:
                self._judge = build_env_judge(self.cfg.judge, self.cfg.endpoint_wait_s)
                self._counters["judges_built"] += 1
            if self.cfg.teacher is not None and self._teacher is None:
                self._teacher = build_env_judge(self.cfg.teacher, self.cfg.endpoint_wait_s)
                self._counters["judges_built"] += 1
            return self._judge, self._teacher

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
            from rubricrl.train.rewards import training_rubric

            rubric = training_rubric(rubric, self.cfg.ungraded)
        with self._lock:
            return self._rubrics.setdefault(key, rubric)

    def _uses_teacher(self, meta: dict[str, Any]) -> bool:
        if self.cfg.teacher is None:
            return False
        if meta.get("judge") in ("teacher", "judge"):
            return meta["judge"] == "teacher"
        return _prompt_fraction(str(meta.get("prompt_id", ""))) < self.cfg.teacher_fraction

    def _response(self, log_: list[dict[str, Any]]) -> str:
        text = "".join(str(m["content"]) for m in log_ if m.get("role") == "assistant")
        return strip_reasoning(text).strip() if self.cfg.strip_thinking else text

    def score(
        self, message_log_batch: list[list[dict[str, Any]]], metadata: list[dict[str, Any]]
    ) -> tuple[list[RewardResult], list[dict[str, Any]], list[_Graded]]:
        """Grade a batch: reward results, per-sample metadata out, the graded rollouts."""
        if len(message_log_batch) != len(metadata):
            raise ValueError(f"{len(message_log_batch)} message logs but {len(metadata)} metadata entries")
        judge, teacher = self._judges()
        rubrics, requests, by_teacher, defenses, golds = [], [], [], [], []
        for log_, meta in zip(message_log_batch, metadata):
            if not meta or "rubric" not in meta or "conversation" not in meta:
                raise UserError(
                    "rollout metadata lacks 'rubric'/'conversation': the data must go through "
                    f"the {PROCESSOR_NAME!r} processor (rows from nemo_rl_row())"
                )
            rubric = self._rubric(meta["rubric"], training=True)
            rubrics.append(rubric)
            by_teacher.append(self._uses_teacher(meta))
            requests.append(
                GradingRequest(
                    conversation=list(meta["conversation"]),
                    response=self._response(log_),
                    criteria=rubric.criteria,
                    rubric_id=rubric.id,
                    metadata={"prompt_id": meta.get("prompt_id", "")},
                )
            )
            defenses.append(self._rubric(meta["defense"], training=True) if meta.get("defense") else None)
            golds.append(self._rubric(meta["monitor_rubric"]) if meta.get("monitor_rubric") else None)
        # Defense rubrics are graded by the same grader as their prompt's task rubric.
        jobs = [(i, requests[i], by_teacher[i]) for i in range(len(requests))]
        jobs += [
            (
                len(requests) + i,
                GradingRequest(
                    conversation=requests[i].conversation,
                    response=requests[i].response,
                    criteria=d.criteria,
                    rubric_id=d.id,
                    metadata=requests[i].metadata,
                ),
                by_teacher[i],
            )
            for i, d in enumerate(defenses)
            if d is not None
        ]
        verdicts: dict[int, Any] = {}
        for use_teacher, j in ((False, judge), (True, teacher)):
            mine = [(k, req) for k, req, t in jobs if t == use_teacher]
            if mine:
                for (k, _), v in zip(mine, grade_many(j, [req for _, req in mine])):
                    verdicts[k] = v
        results = [rubric_reward(r, verdicts[i]) for i, r in enumerate(rubrics)]
        guarded = [
            rubric_reward(d, verdicts[len(requests) + i]) if d is not None else None for i, d in enumerate(defenses)
        ]
        for i, (d, g) in enumerate(zip(defenses, guarded)):
            if d is not None and g is not None and g.vetoed:
                veto = d.aggregation.veto
                results[i] = replace(results[i], reward=float(veto.floor if veto is not None else 0.0), vetoed=True)
        out_meta = [
            {
                **meta,
                "reward": res.reward,
                "per_criterion": res.per_criterion,
                "vetoed": res.vetoed,
                "n_ungraded": res.n_ungraded,
                "graded_by": "teacher" if t else "judge",
                "defense_vetoed": bool(g is not None and g.vetoed),
            }
            for meta, res, t, g in zip(metadata, results, by_teacher, guarded)
        ]
        graded = [
            _Graded(req, rub, res, g, t, d, gold)
            for req, rub, res, g, t, d, gold in zip(requests, rubrics, results, guarded, by_teacher, defenses, golds)
        ]
        return results, out_meta, graded

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
                key=str(g.request.metadata.get("prompt_id", "")),
                conversation=list(g.request.conversation),
                response=g.request.response,
                rubric=g.gold_rubric or g.rubric,
                defense=g.defense_rubric,
                train_reward=float(g.result.reward),
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
        from rubricrl.train.step_timing import nemo_rl_step_timing

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
        ordered = sorted(graded, key=lambda g: str(g.request.metadata.get("prompt_id", "")))  # groups adjacent
        self.health.observe_step(
            step,
            sum(g.n_verdicts for g in graded),
            sum(g.n_ungraded for g in graded),
            [g.result.reward for g in ordered],
            None,
        )

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
        path = Path(self.cfg.rollouts_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for g in graded:
                req, rubric, res, d = g.request, g.rubric, g.result, g.defense
                f.write(
                    json.dumps(
                        {
                            "step": step,
                            "prompt": req.conversation[-1]["content"] if req.conversation else "",
                            "prompt_id": req.metadata.get("prompt_id", ""),
                            "rubric_id": rubric.id,
                            "family": rubric.category or rubric.id.split("-")[0],
                            "completion": req.response,
                            "reward": res.reward,
                            "vetoed": res.vetoed,
                            "defense_vetoed": bool(d is not None and d.vetoed),
                            "per_criterion": res.per_criterion,
                            "defense_per_criterion": d.per_criterion if d is not None else None,
                            "graded_by": "teacher" if g.by_teacher else "judge",
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )

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
        rewards = [g.result.reward for g in graded]
        n_criteria = sum(len(g.rubric.criteria) for g in graded)
        per_key: dict[str, list[float]] = {}
        for g in graded:
            for c in g.rubric.criteria:
                value = g.result.per_criterion.get(c.id)
                if value is None:
                    continue
                keys = [f"tag/{t}" for t in c.tags]
                if g.rubric.scope != "instance":
                    keys.append(f"criterion/{g.rubric.id}/{c.id}")
                for k in keys:
                    per_key.setdefault(k, []).append(float(value))
        m: dict[str, float] = {
            "reward/mean": _mean(rewards),
            "reward/std": _std(rewards),
            "reward/min": min(rewards, default=0.0),
            "reward/max": max(rewards, default=0.0),
            "vetoed_frac": _mean([float(g.result.vetoed) for g in graded]),
            "ungraded_frac": sum(g.result.n_ungraded for g in graded) / n_criteria if n_criteria else 0.0,
            "verdicts": float(sum(g.n_verdicts for g in graded)),
            "ungraded": float(sum(g.n_ungraded for g in graded)),
            "teacher_frac": _mean([float(g.by_teacher) for g in graded]),
        }
        if any(g.defense is not None for g in graded):
            m["defense_vetoed_frac"] = _mean([float(g.defense is not None and g.defense.vetoed) for g in graded])
        m.update({k: _mean(v) for k, v in sorted(per_key.items())})
        m.update(self._judge_deltas())
        return m

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
        rewards = torch.tensor([r.reward for r in results], dtype=torch.float32)
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
        self._judge = self._teacher = None
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
