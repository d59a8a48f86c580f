"""TRL adapter: rubric rewards as ``trl.GRPOTrainer`` reward functions, and GRPO settings as ``GRPOConfig``.

Signature translation only; scoring is the one scorer, :class:`rubricrl.reward.scorer.RubricScorer` (task
rubric, defense veto, teacher routing, the rollout record; NeMo RL's environment calls the same code).

* :class:`RubricRewardFunc` is a TRL reward function: ``f(prompts, completions, rubric_id, **columns)
  -> list[float]``. Through TRL's ``log_metric`` it also logs, per batch: ``reward/<family>`` (each rubric
  family), ``reward/task``, ``defense/reward``, ``defense/veto_rate``, ``veto_rate``, per-criterion
  pass rates ``criteria/<rubric>/<criterion>``, ``judge/latency_s``, ``judge/ungraded``,
  ``response/words``, and the judge's side of the step time: ``timing/judge_queue_wait_s`` and
  ``timing/judge_compute_s`` (summed over the step's calls). :class:`AsyncRubricRewardFunc` is the same as
  an async reward function: TRL awaits it on its own event loop, concurrently with its other async reward
  functions, and every judge call of the step is in flight together.
* Step time: :func:`train_grpo` attaches :class:`~rubricrl.train.step_timing.StepTimer`, which logs
  ``timing/step_s``, ``timing/generation_s``, ``timing/reward_s``, ``timing/train_s`` and
  ``timing/reward_share`` per step (``log_history``, W&B); their means are the stage metrics' ``timing``.
  TRL itself logs
  ``completions/mean_length``, ``completions/clipped_ratio``
  (truncation) and ``clip_ratio/*`` (policy-ratio clip fraction). With ``rollouts_path`` every scored
  rollout is appended there as JSONL (:func:`rubricrl.reward.scorer.rollout_record`, the rows NeMo RL's
  environment writes; the hacking analysis mines them).
* :func:`grpo_config` maps :class:`rubricrl.config.GRPOSettings` onto ``trl.GRPOConfig`` field by field.
* :func:`train_grpo` builds the trainer, resumes from the newest checkpoint in its folder, stops with a
  checkpoint on SIGTERM/SIGINT (raising ``StageInterrupted``) and saves the final model to ``final/``.
* Reward health (:mod:`rubricrl.reward.health`): with ``health=`` (from :func:`reward_health`), the reward
  function reports every step's verdicts, ungraded verdicts, rewards and judge counters, and writes
  ``reward_health.json`` in the stage folder; a step above ``run.max_ungraded_share`` stops training at once,
  and a stage with fewer than ``run.min_steps_with_reward_variance`` varying steps fails at its end. Both
  raise :class:`~rubricrl.reward.health.RewardHealthError` (exit 2) before ``final/`` and the done marker
  are written; checkpoints and logs stay.
* Gold-judge drift (:mod:`rubricrl.train.drift_monitor`): with ``monitor=`` (a
  :class:`~rubricrl.train.drift_monitor.GoldMonitor`), the reward function of a check step has the sampled
  rollouts graded by the gold judge as well and logs ``monitor/train_judge_reward``, ``monitor/gold_judge_reward``,
  ``monitor/gap``, ``monitor/gap_widening``, ``monitor/gap_trend`` (and ``monitor/n``, ``monitor/skipped``,
  ``monitor/gold_ungraded_share``, ``monitor/warning``) through ``log_metric``; each check is appended to the
  stage's ``monitor.jsonl``. With several reward batches per step, the step's first batch is checked. The gold
  judge grades inside the reward function, so a check step's ``timing/reward_s`` includes its grading.
  ``monitor.on_gap=stop`` raises :class:`~rubricrl.reward.drift.DriftMonitorError` (exit 2) as the health
  checks do.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rubricrl.config import ExperimentConfig, GRPOSettings
from rubricrl.config.schema import trl_field_names
from rubricrl.errors import UserError
from rubricrl.jsonl import append_jsonl, cut_step_records, write_jsonl_atomic
from rubricrl.judge import RoutingJudge
from rubricrl.models import known_models, resolve_model
from rubricrl.reward.drift import DriftMonitorError
from rubricrl.reward.health import HealthThresholds, RewardHealth, RewardHealthError
from rubricrl.reward.health_file import restore_health, write_health
from rubricrl.reward.scorer import RubricScorer, Scored, TeacherRoutingJudge, count_verdicts, rollout_record
from rubricrl.train.checkpoint import GracefulStop, StopOnSignal, last_checkpoint
from rubricrl.train.drift_monitor import GoldMonitor, Rollout, prompt_key
from rubricrl.train.stages import StageInterrupted
from rubricrl.train.step_timing import StepTimer, timing_summary
from rubricrl.train.wandb_log import configure_wandb

log = logging.getLogger(__name__)


def conversation_of(prompt: Any) -> list[dict[str, str]]:
    """TRL prompt (a string, or a list of chat messages) -> chat messages."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


def text_of(completion: Any) -> str:
    """TRL completion (a string, or ``[{"role": "assistant", "content": ...}]``) -> its text."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion)


class RubricRewardFunc:
    """A TRL reward function over rubric ids in a dataset column.

    Args:
        scorer: the rubric scorer (judge + rubrics + optional defense rubric).
        rubric_column: dataset column holding each row's rubric id.
        rollouts_path: JSONL file each scored rollout is appended to (None = not kept).
        name: the name TRL logs the reward under (``rewards/<name>/mean``).
        health: reward-health monitor told about every batch (raises when a step is mostly ungraded);
            its summary is written to ``health_path`` after each batch.
        health_path: JSON file for that summary (None = not written).
        monitor: the stage's gold-judge drift monitor (None = off); it grades a sample of a check step's rollouts.
        prompt_id_columns: dataset columns holding a prompt's id, first present wins (the rollout record's
            ``prompt_id``; the monitor's sample is chosen by prompt id; without one, a hash of the conversation
            stands in there and the record's ``prompt_id`` is empty).
    """

    def __init__(
        self,
        scorer: RubricScorer,
        rubric_column: str = "rubric_id",
        rollouts_path: Path | None = None,
        name: str = "rubric",
        health: RewardHealth | None = None,
        health_path: Path | None = None,
        monitor: GoldMonitor | None = None,
        prompt_id_columns: Sequence[str] = ("id", "prompt_id"),
    ):
        self.scorer = scorer
        self.rubric_column = rubric_column
        self.rollouts_path = Path(rollouts_path) if rollouts_path else None
        self.__name__ = name
        self.calls = 0
        self.health = health
        self.health_path = Path(health_path) if health_path else None
        self.monitor = monitor
        self.prompt_id_columns = tuple(prompt_id_columns)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        convs, texts, rubric_ids = self._inputs(prompts, completions, kwargs)
        stats0 = _judge_stats(self.scorer.judge)
        scored = self.scorer.score(convs, texts, rubric_ids, self.prompt_ids(kwargs))
        return self._finish(convs, texts, scored, stats0, kwargs)

    def prompt_ids(self, kwargs: dict[str, Any]) -> list[str] | None:
        """The batch's prompt ids from the first of ``prompt_id_columns`` present (None: no such column)."""
        ids = next((kwargs[c] for c in self.prompt_id_columns if c in kwargs), None)
        return [str(i) for i in ids] if ids is not None else None

    def _inputs(
        self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[list[list[dict[str, str]]], list[str], list[str]]:
        if self.rubric_column not in kwargs:
            raise KeyError(f"dataset has no {self.rubric_column!r} column (columns passed: {sorted(kwargs)})")
        rubric_ids = [str(r) for r in kwargs[self.rubric_column]]
        return [conversation_of(p) for p in prompts], [text_of(c) for c in completions], rubric_ids

    def _finish(
        self, convs: list, texts: list[str], scored: list[Scored], stats0: dict[str, float], kwargs: dict[str, Any]
    ) -> list[float]:
        stats1 = _judge_stats(self.scorer.judge)
        self.calls += 1
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        state = kwargs.get("trainer_state")
        step = int(getattr(state, "global_step", 0) or 0)
        metrics = batch_metrics(scored, texts)
        metrics["judge/latency_s"] = self.scorer.last_latency_s
        metrics["judge/ungraded"] = float(stats1.get("ungraded", 0) - stats0.get("ungraded", 0))
        metrics["judge/calls"] = float(stats1.get("calls", 0) - stats0.get("calls", 0))
        for k in ("truncated", "context_recuts"):  # responses cut to the judge's length cap, re-cuts after a 400
            metrics[f"judge/{k}"] = float(stats1.get(k, 0) - stats0.get(k, 0))
        metrics["timing/judge_queue_wait_s"] = float(stats1.get("queue_wait_s", 0) - stats0.get("queue_wait_s", 0))
        metrics["timing/judge_compute_s"] = float(stats1.get("latency_sum_s", 0) - stats0.get("latency_sum_s", 0))
        if log_metric is not None:
            for k, v in metrics.items():
                log_metric(k, v)
        if self.rollouts_path is not None:
            self._append(step, scored)
        rewards = [s.reward for s in scored]
        if self.health is not None:
            n_verdicts, n_ungraded = self.count_verdicts(scored)
            judge_delta = {k: v - stats0.get(k, 0) for k, v in stats1.items()}
            try:  # TRL's step being computed is global_step + 1 (its log_history "step")
                self.health.observe_step(step + 1, n_verdicts, n_ungraded, rewards, judge_delta)
            finally:
                if self.health_path is not None:
                    write_health(self.health_path, self.health)
        if self.monitor is not None and self.monitor.due(step + 1):
            check = self.monitor.check(step + 1, self.rollouts(convs, texts, scored, kwargs))
            if log_metric is not None:
                for k, v in GoldMonitor.metrics(check).items():
                    log_metric(k, v)
        return rewards

    def rollouts(self, convs: list, texts: list[str], scored: list[Scored], kwargs: dict[str, Any]) -> list[Rollout]:
        """The batch as the drift monitor's :class:`Rollout` list (prompt ids from ``prompt_id_columns``)."""
        ids = self.prompt_ids(kwargs)
        assert self.monitor is not None
        defense = self.scorer.defense
        return [
            Rollout(
                key=ids[i] if ids is not None else prompt_key(conv),
                conversation=conv,
                response=text,
                rubric=self.monitor.rubric_for(self.scorer.rubric(s.rubric_id)),
                defense=defense,
                train_reward=s.reward,
            )
            for i, (conv, text, s) in enumerate(zip(convs, texts, scored))
        ]

    def count_verdicts(self, scored: Sequence[Scored]) -> tuple[int, int]:
        """(verdicts, ungraded) the rewards rest on: the model-judged ones when there are any (programmatic
        defense detectors never time out, so counting them would hide a judge that grades nothing), else all."""
        return count_verdicts(scored)

    def _append(self, step: int, scored: list[Scored]) -> None:
        append_jsonl(self.rollouts_path, (rollout_record(step, s) for s in scored))


class AsyncRubricRewardFunc(RubricRewardFunc):
    """:class:`RubricRewardFunc` as an async TRL reward function (same arguments, metrics and rollouts).

    TRL runs async reward functions on its own event loop, all of a step's together; the batch's
    requests are graded concurrently there (:meth:`RubricScorer.ascore`) instead of on the judge's
    background loop.
    """

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],  # type: ignore[override]
        **kwargs: Any,
    ) -> list[float]:
        convs, texts, rubric_ids = self._inputs(prompts, completions, kwargs)
        stats0 = _judge_stats(self.scorer.judge)
        scored = await self.scorer.ascore(convs, texts, rubric_ids, self.prompt_ids(kwargs))
        return self._finish(convs, texts, scored, stats0, kwargs)


def _judge_stats(judge: Any) -> dict[str, float]:
    stats = getattr(judge, "stats", None)
    return stats.as_dict() if stats is not None and hasattr(stats, "as_dict") else {}


def judge_label(judge: Any) -> str:
    """Who grades, for messages: ``model at base_url (timeout_s ..., concurrency ..., retries ...)`` for an
    HTTP judge, else the judge's name (``programmatic verifiers``, the live policy grader)."""
    j = judge
    if isinstance(j, TeacherRoutingJudge) and j.self_judge is not None:
        j = j.self_judge
    if isinstance(j, RoutingJudge):
        if j.model is None:
            return "programmatic verifiers"
        j = j.model
    backend = getattr(j, "backend", None)
    if backend is None:
        return str(getattr(j, "name", type(j).__name__))
    try:
        where = ", ".join(backend.endpoints()) if hasattr(backend, "endpoints") else ""
    except Exception:  # noqa: BLE001 - an endpoint file not written yet still leaves the model name to show
        where = f"(endpoint file {getattr(backend, '_base_url_file', '?')})"
    knobs = ", ".join(f"{k} {getattr(j, k)}" for k in ("timeout_s", "concurrency", "retries") if hasattr(j, k))
    return str(getattr(backend, "model", j)) + (f" at {where}" if where else "") + (f" ({knobs})" if knobs else "")


def reward_health(cfg: ExperimentConfig, settings: GRPOSettings, stage: str, judge: Any) -> RewardHealth:
    """The reward-health monitor of a TRL stage (thresholds from ``cfg.run``, groups of ``num_generations``).

    ``judge``: the stage's judge object (described by :func:`judge_label`) or a description string.
    """
    t = HealthThresholds(cfg.run.max_ungraded_share, cfg.run.min_steps_with_reward_variance)
    label = judge if isinstance(judge, str) else judge_label(judge)
    return RewardHealth(t, judge=label, stage=stage, group_size=settings.num_generations)


def _cut_rollouts(reward_funcs: Sequence[Any], done_steps: int, run_name: str) -> None:
    """Cut the reward functions' rollout logs back to the resumed step (0: no checkpoint, all steps redone).

    An attempt that died after its last checkpoint left rows for steps that training now repeats; without
    this they would appear twice (the hacking analysis mines these files).
    """

    seen: set[Path] = set()
    for fn in reward_funcs:
        for obj in (fn, getattr(fn, "inner", None)):
            path = getattr(obj, "rollouts_path", None)
            if path is None or Path(path) in seen or not Path(path).is_file():
                continue
            seen.add(Path(path))
            kept, cut = cut_step_records(path, done_steps)
            if cut:
                print(
                    f"[{run_name}] {path}: cut {cut} rows of steps after {done_steps} (an earlier attempt's, "
                    f"redone now); {kept} kept",
                    flush=True,
                )


def batch_metrics(scored: Sequence[Scored], texts: Sequence[str]) -> dict[str, float]:
    """Per-batch component metrics (means over the batch; pass rates over graded verdicts)."""
    out: dict[str, float] = {}
    n = len(scored)
    if not n:
        return out
    fam: dict[str, list[float]] = defaultdict(list)
    crit: dict[str, list[float]] = defaultdict(list)
    for s in scored:
        fam[s.family].append(s.reward)
        for cid, v in s.task.per_criterion.items():
            if v is not None:
                crit[f"criteria/{s.rubric_id}/{cid}"].append(float(v))
        if s.defense is not None:
            for cid, v in s.defense.per_criterion.items():
                if v is not None:
                    crit[f"defense_criteria/{cid}"].append(float(v))
    for f, vals in fam.items():
        out[f"reward/{f}"] = sum(vals) / len(vals)
    out["reward/task"] = sum(s.task.reward for s in scored) / n
    out["veto_rate"] = sum(s.vetoed for s in scored) / n
    defended = [s for s in scored if s.defense is not None]
    if defended:
        out["defense/reward"] = sum(s.defense.reward for s in defended) / len(defended)  # type: ignore[union-attr]
        out["defense/veto_rate"] = sum(s.defense_vetoed for s in defended) / len(defended)
    out["ungraded_per_response"] = sum(s.n_ungraded for s in scored) / n
    for k, vals in crit.items():
        out[k] = sum(vals) / len(vals)
    out["response/words"] = sum(len(t.split()) for t in texts) / n
    return out


# Newer TrainingArguments names of named grpo settings (transformers >= 5.2x renamed gradient_checkpointing).
_ALIASES = {"activation_checkpointing": "gradient_checkpointing"}


def grpo_config(
    settings: GRPOSettings,
    output_dir: Path,
    *,
    seed: int,
    report_to: list[str],
    run_name: str,
    device: str = "cpu",
    chat_template_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``trl.GRPOConfig`` from our settings (same field names; ``extra`` passed through after a check)."""
    from trl import GRPOConfig

    known = trl_field_names()
    unknown = sorted(set(settings.extra) - known)
    if unknown:
        raise UserError(
            f"grpo.extra: {', '.join(unknown)} are not trl.GRPOConfig fields (TRL "
            f"{_trl_version()}); see trl/trainer/grpo_config.py"
        )
    kw: dict[str, Any] = {
        "save_strategy": "steps",
        "remove_unused_columns": False,
        "log_completions": False,
        "disable_tqdm": False,
        "logging_first_step": True,
    }
    named = set(GRPOSettings.model_fields) - {"extra"}
    clash = sorted(set(settings.extra) & (named | set(_ALIASES)))
    if clash:
        raise UserError(
            f"grpo.extra: {', '.join(clash)} {'is' if len(clash) == 1 else 'are'} set through named grpo "
            f"keys; set grpo.{_ALIASES.get(clash[0], clash[0])} instead of grpo.extra.{clash[0]}"
        )
    kw.update(settings.model_dump(exclude={"extra"}))
    for new_name, ours in _ALIASES.items():  # use transformers' new name where it has it (the old one warns)
        if new_name in known:
            kw[new_name] = kw.pop(ours)
    kw.update(settings.extra)  # extra wins over our fixed choices above (never names a named setting: checked)
    if chat_template_kwargs:
        kw["chat_template_kwargs"] = dict(chat_template_kwargs)
    return GRPOConfig(
        output_dir=str(output_dir), seed=seed, report_to=report_to, run_name=run_name, use_cpu=device == "cpu", **kw
    )


def _trl_version() -> str:
    import trl

    return trl.__version__


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def policy_path(name: str) -> str:
    """A policy name -> what ``from_pretrained`` loads: a prepared alias / directory, else a hub id as is."""

    if Path(name).expanduser().is_dir() or name in known_models():
        return str(resolve_model(name))
    if "/" in name and not Path(name).exists():
        return name  # hub id (clusters)
    return str(resolve_model(name))  # raises a UserError naming the known aliases


def train_grpo(
    cfg: ExperimentConfig,
    settings: GRPOSettings,
    rows: list[dict[str, Any]],
    reward_funcs: list[Callable[..., list[float]]],
    out_dir: Path,
    run_name: str,
    init_model: str | None = None,
    health: RewardHealth | None = None,
    monitor: GoldMonitor | None = None,
) -> dict[str, Any]:
    """Run GRPO (resuming from ``out_dir``'s newest checkpoint) and save the final model to ``out_dir/final``.

    Args:
        cfg: the experiment (policy, seed, W&B).
        settings: GRPO settings of this stage.
        rows: dataset rows: ``prompt`` (chat messages) plus the columns the reward functions read.
        reward_funcs: TRL reward functions.
        out_dir: the stage folder (checkpoints in ``checkpoints/``, final model in ``final/``).
        run_name: W&B / logging name.
        init_model: start from this checkpoint directory instead of ``cfg.policy.name``.
        health: the reward functions' health monitor (:func:`reward_health`); its steps up to a resumed
            checkpoint are read back from ``out_dir/reward_health.json``, and :meth:`~RewardHealth.finish` is
            checked once training ends (result in ``reward_health`` of the returned metrics).
        monitor: the reward functions' gold-judge drift monitor: its checks after a resumed checkpoint are cut
            from ``monitor.jsonl`` and the rest restored; its summary is ``drift_monitor`` of the returned metrics.

    Raises:
        StageInterrupted: stopped by SIGTERM/SIGINT after writing a checkpoint.
        RewardHealthError: the rewards carried no signal (a step mostly ungraded: training stops at once;
            no step with varying rewards: at the end). ``final/`` is not written; checkpoints and logs stay.
        DriftMonitorError: ``monitor.on_gap=stop`` and the gold judge's reward fell behind (same handling).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    ckpt_dir = out_dir / "checkpoints"
    final = out_dir / "final"
    report_to = configure_wandb(cfg, out_dir.parent, run_name)
    args = grpo_config(
        settings,
        ckpt_dir,
        seed=cfg.run.seed,
        report_to=report_to,
        run_name=run_name,
        device=cfg.policy.device,
        chat_template_kwargs=cfg.policy.chat_template_kwargs,
    )
    path = init_model or policy_path(cfg.policy.name)
    torch.manual_seed(cfg.run.seed)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(cfg.policy.dtype))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )
    StepTimer().attach(trainer)
    resume = last_checkpoint(ckpt_dir)
    if resume is not None:
        print(f"[{run_name}] resuming from {resume}", flush=True)
    health_file = out_dir / "reward_health.json"
    resumed_at = int(resume.name.rsplit("-", 1)[-1]) if resume else None
    if health is not None:
        restore_health(health_file, health, resumed_at)
    _cut_rollouts(reward_funcs, resumed_at or 0, run_name)
    if monitor is not None:
        kept, cut = monitor.resume(resumed_at)
        if cut:
            print(
                f"[{run_name}] {monitor.path}: cut {cut} drift checks of steps after {resumed_at or 0}; {kept} kept",
                flush=True,
            )
    t0 = time.monotonic()
    try:
        with GracefulStop() as stop:
            trainer.add_callback(StopOnSignal(stop))
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except (RewardHealthError, DriftMonitorError):
        _write_history(out_dir / "log_history.jsonl", trainer.state.log_history)
        _finish_wandb()
        raise
    elapsed = time.monotonic() - t0
    _write_history(out_dir / "log_history.jsonl", trainer.state.log_history)
    step = int(trainer.state.global_step)
    if stop.requested is not None and step < settings.max_steps:
        _finish_wandb()
        e = StageInterrupted(
            f"{run_name} stopped at step {step}/{settings.max_steps}; checkpoint in {last_checkpoint(ckpt_dir)}"
        )
        e.exit_code = 128 + int(stop.requested)
        raise e
    health_summary = None
    if health is not None:
        try:
            health_summary = health.finish()
        finally:
            write_health(health_file, health)
            if health.error is not None:
                _finish_wandb()
    trainer.save_model(str(final))
    tok.save_pretrained(str(final))
    _finish_wandb()
    out = {
        "global_step": step,
        "train_seconds": round(elapsed, 2),
        "resumed_from": str(resume) if resume else None,
        "train_loss": float(getattr(result, "training_loss", math.nan)),
        "final_model": str(final),
        "timing": timing_summary(trainer.state.log_history),
    }
    if health_summary is not None:
        out["reward_health"] = {k: v for k, v in health_summary.items() if k != "steps"}
    if monitor is not None:
        out["drift_monitor"] = monitor.summary()
    return out


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    write_jsonl_atomic(path, history, overwrite=True)  # the stage's own log, rewritten whole


def _finish_wandb() -> None:

    if "wandb" not in sys.modules:  # never imported (wandb.mode=disabled, or not installed): no run to finish
        return
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception as e:  # noqa: BLE001 - logging must never fail a run
        log.warning("wandb.finish failed: %s", e)
