"""Where a GRPO step's time goes on TRL: generation, reward (judge), and the rest (training).

:class:`StepTimer` is a ``transformers.TrainerCallback`` that also wraps the trainer's generation and
reward methods (``GRPOTrainer._generate`` and ``_calculate_rewards``, TRL 1.x) to time them. At each
optimizer step's end it adds to the trainer's own metrics, so they reach ``log_history`` and W&B with
the step's other figures:

* ``timing/step_s``: wall time of the optimizer step (all its micro-batches);
* ``timing/generation_s``: rollout generation within it;
* ``timing/reward_s``: reward computation within it (every reward function, judge calls included);
* ``timing/train_s``: the rest (reference / old log-probabilities, loss, backward, optimizer);
* ``timing/reward_share``: ``reward_s / step_s``.

The reward functions add the judge's side (``timing/judge_queue_wait_s``, time calls waited for a
concurrency slot, and ``timing/judge_compute_s``, time in model calls, both summed over the step's calls,
so with concurrent calls they can exceed ``reward_s``). A step that reuses buffered generations
(``steps_per_generation`` above the accumulation steps) shows no generation or reward time.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

TIMING_KEYS = ("timing/step_s", "timing/generation_s", "timing/reward_s", "timing/train_s", "timing/reward_share")
JUDGE_TIMING_KEYS = ("timing/judge_queue_wait_s", "timing/judge_compute_s")


def _base_callback() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:  # pragma: no cover - transformers is in the main environment
        return object
    return TrainerCallback


class StepTimer(_base_callback()):  # type: ignore[misc]
    """Times generation and reward inside each optimizer step (see the module docstring).

    Use ``StepTimer().attach(trainer)``: it wraps the trainer's methods and registers itself as a callback.
    """

    def __init__(self) -> None:
        self.trainer: Any = None
        self._step_t0: float | None = None
        self._spent = {"generation": 0.0, "reward": 0.0}
        self.rows: list[dict[str, float]] = []

    def attach(self, trainer: Any) -> StepTimer:
        """Wrap ``trainer``'s generation and reward methods and add this callback to it."""
        self.trainer = trainer
        for method, bucket in (("_generate", "generation"), ("_calculate_rewards", "reward")):
            if hasattr(trainer, method):
                setattr(trainer, method, self._timed(getattr(trainer, method), bucket))
            else:
                log.warning("StepTimer: %s has no %s; timing/%s_s stays 0", type(trainer).__name__, method, bucket)
        trainer.add_callback(self)
        return self

    def _timed(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._spent[bucket] += time.perf_counter() - t0

        return timed

    def step_figures(self, step_s: float) -> dict[str, float]:
        """The timing keys of a step that took ``step_s`` (and resets the generation / reward buckets)."""
        gen, reward = self._spent["generation"], self._spent["reward"]
        self._spent = {"generation": 0.0, "reward": 0.0}
        return {
            "timing/step_s": step_s,
            "timing/generation_s": gen,
            "timing/reward_s": reward,
            "timing/train_s": max(0.0, step_s - gen - reward),
            "timing/reward_share": reward / step_s if step_s > 0 else 0.0,
        }

    # -- TrainerCallback -------------------------------------------------------------------------
    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._step_t0 is None:
            return
        figures = self.step_figures(time.perf_counter() - self._step_t0)
        self._step_t0 = None
        self.rows.append({"step": float(state.global_step), **figures})
        metrics = getattr(self.trainer, "_metrics", None)
        if isinstance(metrics, dict) and "train" in metrics:  # GRPOTrainer averages these into its next log
            for k, v in figures.items():
                metrics["train"][k].append(v)


def timing_summary(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each timing key over the logged steps of a run's ``log_history`` (empty when none)."""
    out: dict[str, float] = {}
    for key in TIMING_KEYS + JUDGE_TIMING_KEYS:
        vals = [float(r[key]) for r in history if isinstance(r.get(key), (int, float))]
        if vals:
            out[key] = round(sum(vals) / len(vals), 3)
    if out.get("timing/step_s"):  # the share of the mean step, not the mean of the shares
        out["timing/reward_share"] = round(out.get("timing/reward_s", 0.0) / out["timing/step_s"], 3)
    steps = [r for r in history if "timing/step_s" in r]
    if steps:
        out["timing/steps"] = float(len(steps))
    return out


def nemo_rl_step_timing(
    timer: dict[str, Any], reward_s: float, judge: dict[str, float] | None = None
) -> dict[str, float]:
    """The ``timing/*`` figures of one NeMo RL GRPO step (keys without the ``timing/`` prefix).

    Args:
        timer: what NeMo RL's GRPO loop logs under ``timing/train`` at the step's end (seconds per timer
            name: ``total_step_time``, ``generation`` in synchronous GRPO, ``exposed_generation`` in async).
        reward_s: wall time the rubric environment spent grading this step's rollouts (overlapping calls
            counted once).
        judge: the judge's ``queue_wait_s`` / ``latency_sum_s`` over the step (summed over calls).

    NeMo RL grades inside its rollout (the environment's ``step`` runs within the ``generation`` timer), so
    in synchronous GRPO ``generation_s`` is that timer less ``reward_s``. In async GRPO the trainer only
    waits ``exposed_generation`` for trajectories that were generated and graded in the background, so
    ``generation_s`` is that wait and grading overlapped the step: ``reward_share`` is then the grading time
    relative to the step, not a part of it. Empty when the timer has no ``total_step_time``.
    """
    step_s = timer.get("total_step_time")
    if not isinstance(step_s, (int, float)) or step_s <= 0:
        return {}
    overlapped = "exposed_generation" in timer
    gen_total = float(timer.get("exposed_generation" if overlapped else "generation", 0.0) or 0.0)
    generation_s = gen_total if overlapped else max(0.0, gen_total - reward_s)
    out = {
        "step_s": float(step_s),
        "generation_s": generation_s,
        "reward_s": float(reward_s),
        "train_s": max(0.0, float(step_s) - gen_total),
        "reward_share": float(reward_s) / float(step_s),
        "reward_overlapped": float(overlapped),
    }
    if judge:
        out["judge_queue_wait_s"] = float(judge.get("queue_wait_s", 0.0))
        out["judge_compute_s"] = float(judge.get("latency_sum_s", 0.0))
    return out
