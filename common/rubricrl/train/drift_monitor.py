"""The gold-judge drift monitor of a training stage, for both engines (the rules are :mod:`rubricrl.reward.drift`).

At a check step (:func:`~rubricrl.reward.drift.is_check_step`) the engine adapter hands :meth:`GoldMonitor.check`
the step's graded rollouts (:class:`Rollout`: prompt id, conversation, response, rubric, defense rubric and the
training reward). The monitor takes the rollouts of ``monitor.sample`` prompts
(:func:`~rubricrl.reward.drift.sample_keys`), grades them with the gold judge through the one scorer
(:class:`rubricrl.train.rewards.RubricScorer`: same aggregation and defense veto as the training reward), records
the check in :class:`~rubricrl.reward.drift.DriftMonitor` and appends it to ``monitor.jsonl``
(:mod:`rubricrl.reward.drift_file`), and returns the ``monitor/*`` metrics the adapter logs:

* TRL (:class:`rubricrl.train.trl_adapter.RubricRewardFunc`): in the reward function of the step, through TRL's
  ``log_metric`` (``log_history.jsonl``; W&B ``train/monitor/*``);
* NeMo RL (:class:`rubricrl.train.nemo_rl_env.RubricEnvironment`): when the step is finished, into the step's
  metrics record, which the driver logs through NeMo RL's logger (W&B ``train/monitor/*``).

:func:`build_gold_judge` builds the gold judge from ``monitor.judge`` (a ``JudgeConfig``) or
``monitor.constrained`` (a frozen local model with constrained verdicts).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.judge import JudgeConfig, build_judge, close_judge
from rubricrl.judge.live_policy import load_frozen_grader
from rubricrl.models import resolve_model
from rubricrl.reward.drift import DriftCheck, DriftMonitor, DriftThresholds, is_check_step, monitor_metrics, sample_keys
from rubricrl.reward.drift_file import FILE, append_check, restore_monitor
from rubricrl.reward.scorer import verdict_counts  # the one count reward health uses (re-exported)
from rubricrl.train.rewards import RubricScorer, Scored
from rubricrl.types import Rubric

log = logging.getLogger(__name__)

__all__ = ["FILE", "GoldMonitor", "Rollout", "build_gold_judge", "gold_label", "prompt_key", "verdict_counts"]


@dataclass
class Rollout:
    """One graded rollout of a step, as the monitor needs it.

    Attributes:
        key: its prompt id (the rollouts of one prompt share it).
        conversation: the prompt's chat messages.
        response: the completion text that was graded.
        rubric: the rubric the gold judge grades (the training rubric, or a fuller one: Rubicon stage 1).
        defense: the defense rubric graded beside it as a veto (None: none).
        train_reward: the training reward it got.
    """

    key: str
    conversation: list[dict[str, str]]
    response: str
    rubric: Rubric
    defense: Rubric | None
    train_reward: float


def prompt_key(conversation: Sequence[Mapping[str, Any]]) -> str:
    """A prompt id for a conversation without one (a hash of its messages)."""
    return hashlib.sha256(json.dumps(list(conversation), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def gold_label(mcfg: Any, server_url: str | None = None) -> str:
    """Who the gold judge is, for messages and the report (from its config)."""
    if getattr(mcfg, "constrained", None) is not None:
        c = mcfg.constrained
        return f"frozen {c.model}, constrained verdicts (template {c.template}, T={c.temperature:g})"
    j = mcfg.judge if hasattr(mcfg, "judge") else mcfg
    if j is None:
        return "none"
    if j.backend == "programmatic":
        return "programmatic verifiers"
    where = server_url or j.base_url or (f"the URLs in {j.base_url_file}" if j.base_url_file else None)
    return (
        f"{j.model}"
        + (f" at {where}" if where else "")
        + f" (backend {j.backend}, mode {j.mode}, template {j.template}, T={j.sampling.temperature:g})"
    )


def build_gold_judge(
    mcfg: Any,
    *,
    shared: JudgeConfig | None = None,
    served_model: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> Any:
    """The gold judge of ``mcfg`` (a :class:`rubricrl.config.schema.MonitorConfig`).

    Args:
        mcfg: the monitor config (``judge`` or ``constrained``).
        shared: the endpoint to grade on when ``monitor.judge`` is an ``openai`` judge without ``base_url`` /
            ``base_url_file``: the training judge's (or the local vLLM server's) config; only its ``base_url``,
            ``base_url_file`` and, for a local server, ``model`` are taken.
        device, dtype: where a ``constrained`` grader's frozen model runs (the policy's).

    Raises:
        UserError: an HTTP gold judge with no endpoint to grade on; what ``build_judge`` raises (missing API key
            variable, unknown template).
    """
    if mcfg.constrained is not None:
        return _constrained(mcfg.constrained, device, dtype)
    jc = mcfg.judge
    if jc.backend == "openai" and jc.base_url is None and jc.base_url_file is None:
        if shared is None or (shared.base_url is None and shared.base_url_file is None):
            raise UserError(
                "monitor.judge (backend openai) has no base_url or base_url_file, and the stage has no "
                "judge server to share: set monitor.judge.base_url (or base_url_file), or use "
                "monitor.constrained, or monitor.judge=null to turn the drift monitor off"
            )
        upd: dict[str, Any] = {"base_url": shared.base_url, "base_url_file": shared.base_url_file}
        if served_model is not None:
            upd["model"] = served_model
        jc = jc.model_copy(update=upd)
    return build_judge(jc)


def _constrained(spec: Any, device: str, dtype: str) -> Any:
    path = spec.model if Path(spec.model).expanduser().is_dir() or "/" in spec.model else str(resolve_model(spec.model))
    return load_frozen_grader(path, spec, f"monitor:{spec.model}", device, dtype)


def gold_scores(judge: Any, rollouts: Sequence[Rollout]) -> list[Scored]:
    """The gold judge's :class:`Scored` of each rollout, in order (the rollouts' rubrics and defense veto)."""
    out: list[Scored | None] = [None] * len(rollouts)
    groups: dict[str | None, list[int]] = {}
    for i, r in enumerate(rollouts):
        groups.setdefault(r.defense.content_hash() if r.defense is not None else None, []).append(i)
    for idx in groups.values():
        defense = rollouts[idx[0]].defense
        # Positional keys: two rollouts may carry different rubrics under the same id (instance rubrics).
        scorer = RubricScorer({str(i): rollouts[i].rubric for i in idx}, judge, defense)
        scored = scorer.score(
            [rollouts[i].conversation for i in idx], [rollouts[i].response for i in idx], [str(i) for i in idx]
        )
        for i, s in zip(idx, scored):
            out[i] = s
    return [s for s in out if s is not None]


class GoldMonitor:
    """The drift monitor of one stage: which steps, which rollouts, the gold judge, ``monitor.jsonl``.

    Args:
        thresholds: the rules (:class:`~rubricrl.reward.drift.DriftThresholds`).
        every_steps, sample, seed: when to check and how many prompts (``monitor.*``; the seed is ``run.seed``).
        path: ``monitor.jsonl`` of the stage (None: not written).
        judge: the gold judge, or None with ``factory`` (built at the first check: an endpoint may not exist yet).
        factory: builds the gold judge.
        label: the gold judge, for messages; train_label: the training judge; stage: the stage name.
        last_step: the stage's last step (always checked); None when unknown (the caller checks it at the end).
        rubrics: rubric id -> the rubric the gold judge grades instead of the training one (Rubicon stage 1: the
            full bank rubric, whose LLM criteria the programmatic-only training rubric dropped).
    """

    def __init__(
        self,
        thresholds: DriftThresholds,
        *,
        every_steps: int,
        sample: int,
        seed: int,
        path: Path | None,
        judge: Any = None,
        factory: Callable[[], Any] | None = None,
        label: str = "",
        train_label: str = "",
        stage: str = "",
        last_step: int | None = None,
        rubrics: Mapping[str, Rubric] | None = None,
    ):
        if judge is None and factory is None:
            raise ValueError("GoldMonitor needs a judge or a factory")
        self.state = DriftMonitor(
            thresholds, judge=label or "the gold judge", train_judge=train_label or "the training judge", stage=stage
        )
        self.every_steps = every_steps
        self.sample = sample
        self.seed = seed
        self.path = Path(path) if path is not None else None
        self._judge = judge
        self._factory = factory
        self.last_step = last_step
        self.rubrics = dict(rubrics or {})

    def rubric_for(self, rubric: Rubric) -> Rubric:
        """What the gold judge grades for a rollout graded with ``rubric`` in training."""
        return self.rubrics.get(rubric.id, rubric)

    @property
    def judge(self) -> Any:
        if self._judge is None:
            assert self._factory is not None
            self._judge = self._factory()
        return self._judge

    def due(self, step: int, last: bool = False) -> bool:
        """``step`` is a check step not checked yet (``last``: it is the stage's last step)."""
        if step in self.state.checks:
            return False
        return is_check_step(step, self.every_steps, step if last else self.last_step)

    def check(self, step: int, rollouts: Sequence[Rollout]) -> DriftCheck:
        """Grade the sampled rollouts of ``step`` with the gold judge, record and write the check.

        Returns:
            The check (its ``monitor/*`` metrics: :meth:`metrics`).

        Raises:
            DriftMonitorError: ``monitor.on_gap=stop`` and the gap widened past ``monitor.max_gap`` (written first).
        """
        keys = set(sample_keys([r.key for r in rollouts], self.sample, self.seed))
        chosen = [r for r in rollouts if r.key in keys]
        gold: list[float] | None = None
        n_v = n_u = 0
        if chosen:
            try:
                scored = gold_scores(self.judge, chosen)
                gold = [s.reward for s in scored]
                n_v, n_u = verdict_counts(
                    (
                        tuple(r.rubric.criteria) + (tuple(r.defense.criteria) if r.defense is not None else ()),
                        s.verdicts or (),
                    )
                    for r, s in zip(chosen, scored)
                )
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - a failing gold judge skips the check, never the training step
                log.warning(
                    "drift monitor, step %d: the gold judge failed (%s: %s); check skipped", step, type(e).__name__, e
                )
        try:
            check = self.state.observe(step, [r.train_reward for r in chosen], gold, n_v, n_u, prompts=len(keys))
        finally:
            if self.path is not None and step in self.state.checks:
                append_check(self.path, self.state.checks[step])
        self._print(check)
        return check

    def _print(self, c: DriftCheck) -> None:
        stage = f"[{self.state.stage}] " if self.state.stage else ""
        if c.skipped:
            text = f"train {c.train_judge_reward:.3f}, gold skipped ({c.skipped})"
        else:
            text = f"train {c.train_judge_reward:.3f}, gold {c.gold_judge_reward:.3f}, gap {c.gap:+.3f}" + (
                f", widening {c.widening:+.3f}" if c.widening is not None else ""
            )
        print(
            f"{stage}drift monitor, step {c.step}: {text} (n {c.n} rollouts of {c.prompts} prompts, gold ungraded "
            f"{c.gold_ungraded}/{c.gold_verdicts})",
            flush=True,
        )
        if c.warning:
            log.warning("%sdrift monitor: %s (monitor.on_gap=%s)", stage, c.warning, c.action)

    @staticmethod
    def metrics(check: DriftCheck) -> dict[str, float]:
        """The check's ``monitor/*`` metrics."""
        return monitor_metrics(check)

    def resume(self, done_steps: int | None) -> tuple[int, int]:
        """Cut ``monitor.jsonl`` back to ``done_steps`` and restore the kept checks; ``(kept, cut)``."""
        if self.path is None:
            return 0, 0
        return restore_monitor(self.path, self.state, done_steps)

    def summary(self) -> dict[str, Any]:
        return self.state.summary()

    def close(self) -> None:
        """Close the gold judge's clients (a frozen model is left to the garbage collector)."""
        if self._judge is not None and hasattr(self._judge, "aclose"):
            close_judge(self._judge)
        self._judge = None


def thresholds_of(mcfg: Any) -> DriftThresholds:
    """:class:`DriftThresholds` of a ``monitor`` config (experiment or NeMo RL environment)."""
    return DriftThresholds(
        max_gap=mcfg.max_gap, on_gap=mcfg.on_gap, window=mcfg.window, max_ungraded_share=mcfg.max_ungraded_share
    )


def check_stages(mcfg: Any, training_stages: Sequence[str], paper: str) -> None:
    """``monitor.stages`` must name training stages of the pipeline (a misspelt one would silently monitor nothing).

    Raises:
        UserError: an unknown stage name.
    """
    unknown = [s for s in mcfg.stages if s not in training_stages]
    if unknown:
        raise UserError(
            f"monitor.stages: {', '.join(repr(s) for s in unknown)} "
            f"{'is not a training stage' if len(unknown) == 1 else 'are not training stages'} of {paper} "
            f"(its training stages: {', '.join(training_stages)}; empty = all of them)"
        )


def stage_monitor(
    cfg: Any,
    stage: str,
    stage_dir: Path,
    *,
    last_step: int | None,
    train_label: str,
    shared: JudgeConfig | None = None,
    served_model: str | None = None,
    rubrics: Mapping[str, Rubric] | None = None,
    training_stages: Sequence[str] = (),
) -> GoldMonitor | None:
    """The drift monitor of a TRL training stage from ``cfg.monitor`` (None when it is off for ``stage``).

    Args:
        cfg: the experiment config (``monitor``, ``run.seed``, the policy's device and dtype).
        stage: the stage name (``monitor.stages`` filters on it).
        stage_dir: the stage folder (``monitor.jsonl`` goes there).
        last_step: the stage's last step (always checked).
        train_label: the training judge, for messages.
        shared, served_model: the endpoint an ``openai`` gold judge without its own grades on, and the model a local
            server serves (see :func:`build_gold_judge`).
        rubrics: rubric id -> what the gold judge grades instead of the training rubric.
        training_stages: the pipeline's training stages, to check ``monitor.stages`` against (empty: unchecked).

    Raises:
        UserError: the gold judge cannot be built (no endpoint, missing API key variable, unknown template), or
            ``monitor.stages`` names a stage the pipeline does not train in.
    """
    m = cfg.monitor
    if training_stages:
        check_stages(m, training_stages, cfg.paper)
    if not m.applies_to(stage):
        return None
    judge = build_gold_judge(
        m, shared=shared, served_model=served_model, device=cfg.policy.device, dtype=cfg.policy.dtype
    )
    url = None
    if m.judge is not None and m.judge.base_url is None and m.judge.base_url_file is None and shared is not None:
        url = shared.base_url or (str(shared.base_url_file) if shared.base_url_file else None)
    label = gold_label(m, url)
    mon = GoldMonitor(
        thresholds_of(m),
        every_steps=m.every_steps,
        sample=m.sample,
        seed=cfg.run.seed,
        path=Path(stage_dir) / FILE,
        judge=judge,
        label=label,
        train_label=train_label,
        stage=stage,
        last_step=last_step,
        rubrics=rubrics,
    )
    print(
        f"[{stage}] drift monitor on: gold judge {label}; checks at step 1, every {m.every_steps} steps and the "
        f"last, {m.sample} prompt(s) each; widening above {m.max_gap:g} -> {m.on_gap}",
        flush=True,
    )
    return mon
