"""Reward health: stop a training stage whose rewards carry no signal, with a message that says why.

A GRPO step learns nothing when every group's rewards are equal (zero advantage, zero gradient) and
learns noise when most of its verdicts are ungraded (a judge that timed out is scored as "not met"
by nothing, so every reward falls to the same floor). Both happen silently: the trainer logs
``reward 0``, ``reward_std 0``, ``grad_norm 0`` and finishes. :class:`RewardHealth` watches the steps
and raises :class:`RewardHealthError` (a :class:`~rubricrl.errors.UserError`: exit code 2, no
traceback) instead.

Engine-independent and pure (no I/O, nothing paper-specific); an engine adapter calls::

    health = RewardHealth(HealthThresholds(cfg.run.max_ungraded_share, cfg.run.min_steps_with_reward_variance),
                          judge="smollm2-135m-instruct at http://127.0.0.1:8000/v1", stage="stage2_rl",
                          group_size=cfg.grpo.num_generations)
    for each GRPO step:
        health.observe_step(step, n_verdicts, n_ungraded, rewards, judge_stats)   # raises on a bad step
    health.finish()                                                              # raises at stage end
    metrics["reward_health"] = health.summary()

Two checks:

* per step (:meth:`RewardHealth.observe_step`): the share of ungraded verdicts of that step must not
  exceed ``max_ungraded_share`` (the stage-wide share, in :meth:`RewardHealth.summary`, is a weighted mean
  of the step shares, so it cannot cross the limit unless a step did first; several reward batches of one
  step are merged before the check);
* at stage end (:meth:`RewardHealth.finish`): at least ``min_steps_with_reward_variance`` steps must
  have had rewards that differ (within a group when ``group_size`` is given, else across the step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rubricrl.errors import UserError

# Judge counters summed over steps (JudgeStats names); others passed in are kept too.
COUNTERS = (
    "calls",
    "retries",
    "transport_errors",
    "timeouts",
    "parse_failures",
    "graded",
    "ungraded",
    "cache_hits",
    "latency_sum_s",
)
_EPS = 1e-12


class RewardHealthError(UserError):
    """A training stage's rewards carry no learning signal (mostly ungraded, or never varying).

    Attributes:
        summary: :meth:`RewardHealth.summary` at the time of the error.
    """

    def __init__(self, message: str, summary: dict[str, Any]):
        self.summary = summary
        super().__init__(message, exit_code=2)


@dataclass(frozen=True)
class HealthThresholds:
    """When a stage counts as learning nothing.

    Attributes:
        max_ungraded_share: largest tolerated share of ungraded verdicts, per step and over the stage
            (``run.max_ungraded_share``; 1.0 disables the check).
        min_steps_with_reward_variance: fewest steps whose rewards must differ for the stage to pass
            (``run.min_steps_with_reward_variance``; 0 disables the check).
    """

    max_ungraded_share: float = 0.5
    min_steps_with_reward_variance: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_ungraded_share <= 1.0:
            raise ValueError(f"max_ungraded_share must be in [0, 1], got {self.max_ungraded_share}")
        if self.min_steps_with_reward_variance < 0:
            raise ValueError(f"min_steps_with_reward_variance must be >= 0, got {self.min_steps_with_reward_variance}")


@dataclass
class StepHealth:
    """What was seen of one step (several observations of the same step are merged).

    Attributes:
        step: the step number the caller gave.
        n_verdicts, n_ungraded: verdicts the step's rewards rest on, and how many of them are ungraded.
        n_rewards: rewards seen.
        reward_mean: mean reward.
        reward_std: population std of the rewards across the step.
        group_std: mean within-group std (None without ``group_size``).
        varied: the rewards differ (within some group when grouped, else across the step).
        judge: the judge counters of this step.
    """

    step: int
    n_verdicts: int = 0
    n_ungraded: int = 0
    n_rewards: int = 0
    reward_mean: float = 0.0
    reward_std: float = 0.0
    group_std: float | None = None
    varied: bool = False
    judge: dict[str, float] = field(default_factory=dict)

    @property
    def ungraded_share(self) -> float:
        return self.n_ungraded / self.n_verdicts if self.n_verdicts else 0.0


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


class RewardHealth:
    """Accumulates per-step reward health and raises :class:`RewardHealthError` when a threshold is crossed.

    Args:
        thresholds: the limits (defaults: at most half ungraded, at least one step with varying rewards).
        judge: the judge, for messages: its model and base URL (``"m at http://host:port/v1"``), or
            ``"programmatic verifiers"``.
        stage: the stage name, for messages.
        group_size: rewards per prompt group (GRPO ``num_generations``), consecutive in ``rewards``;
            variance then means variance within a group (what gives GRPO a non-zero advantage).
            None (or a size that does not divide a step's rewards): variance across the step.
    """

    def __init__(
        self,
        thresholds: HealthThresholds | None = None,
        *,
        judge: str = "the judge",
        stage: str = "",
        group_size: int | None = None,
    ):
        self.thresholds = thresholds or HealthThresholds()
        self.judge = judge
        self.stage = stage
        self.group_size = group_size if group_size and group_size > 1 else None
        self.steps: dict[int, StepHealth] = {}
        self.error: str | None = None

    # ------------------------------------------------------------------ observations

    def observe_step(
        self,
        step: int,
        n_verdicts: int,
        n_ungraded: int,
        rewards: Sequence[float],
        judge_stats: Mapping[str, float] | None = None,
    ) -> StepHealth:
        """Record one GRPO step (or one reward batch of it) and check it.

        Args:
            step: the step number (calls with the same number are merged: several reward batches per step).
            n_verdicts: verdicts the step's rewards rest on (a caller may count only model-judged ones).
            n_ungraded: how many of those are ungraded.
            rewards: the step's rewards, in group order when ``group_size`` is set.
            judge_stats: the judge's counters for THIS step only (``JudgeStats.as_dict()`` after a
                per-step ``reset()``, or the difference of two snapshots); None when there is no judge.

        Returns:
            The step's record so far.

        Raises:
            RewardHealthError: the step's ungraded share is above ``max_ungraded_share``.
        """
        if n_ungraded < 0 or n_verdicts < 0 or n_ungraded > n_verdicts:
            raise ValueError(f"step {step}: n_ungraded={n_ungraded} must be within 0..n_verdicts={n_verdicts}")
        rs = [float(r) for r in rewards]
        s = self.steps.get(step)
        if s is None:
            s = self.steps[step] = StepHealth(step)
        n_before = s.n_rewards
        s.n_verdicts += n_verdicts
        s.n_ungraded += n_ungraded
        if rs:
            s.reward_mean = (s.reward_mean * n_before + sum(rs)) / (n_before + len(rs))
            s.n_rewards = n_before + len(rs)
            s.reward_std = max(s.reward_std, _std(rs))
            g = self.group_size
            if g and len(rs) % g == 0:
                stds = [_std(rs[i : i + g]) for i in range(0, len(rs), g)]
                s.group_std = sum(stds) / len(stds)
                s.varied = s.varied or any(x > _EPS for x in stds)
            else:
                s.varied = s.varied or s.reward_std > _EPS
        for k, v in (judge_stats or {}).items():
            if isinstance(v, (int, float)) and k != "mean_latency_s":
                s.judge[k] = s.judge.get(k, 0) + v
        self._check_ungraded(s)
        return s

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take back the records of earlier steps (``summary()["steps"]`` rows) after a resume."""
        for r in rows:
            s = StepHealth(**{k: r[k] for k in StepHealth.__dataclass_fields__ if k in r})
            s.judge = dict(s.judge)
            self.steps[s.step] = s

    # ------------------------------------------------------------------ checks

    def _check_ungraded(self, s: StepHealth) -> None:
        limit = self.thresholds.max_ungraded_share
        if limit >= 1.0:
            return
        if s.ungraded_share > limit:
            self._fail(
                f"step {s.step}: {s.n_ungraded} of {s.n_verdicts} verdicts ungraded "
                f"({s.ungraded_share:.0%}), above run.max_ungraded_share={limit:g}",
                "ungraded",
            )

    def finish(self) -> dict[str, Any]:
        """Check the stage as a whole; returns :meth:`summary` when it passes.

        Raises:
            RewardHealthError: fewer than ``min_steps_with_reward_variance`` steps had varying rewards.
        """
        need = self.thresholds.min_steps_with_reward_variance
        have = self.steps_with_reward_variance
        if need and have < need:
            self._fail(
                f"{have} of {len(self.steps)} steps had rewards that differ "
                f"({'within a group' if self.group_size else 'across the step'}); "
                f"run.min_steps_with_reward_variance={need} needed. Every advantage was 0, so the "
                f"policy was not updated by the rewards",
                "variance",
            )
        return self.summary()

    def _fail(self, what: str, kind: str) -> None:
        j = self.judge_totals()
        counters = ", ".join(
            f"{k} {_num(j[k])}"
            for k in ("calls", "transport_errors", "timeouts", "retries", "parse_failures")
            if k in j
        )
        lat = j.get("latency_sum_s", 0.0) / j["calls"] if j.get("calls") else None
        last = [self.steps[k] for k in sorted(self.steps)][-5:]
        lines = [
            f"{self.stage or 'training stage'}: the rewards carry no learning signal: {what}.",
            f"  judge: {self.judge}",
            f"  judge counters: {counters or 'none'}" + (f", mean latency {lat:.2f} s/call" if lat else ""),
            "  recent steps: "
            + "; ".join(
                f"step {s.step}: reward {s.reward_mean:.3f} std {s.reward_std:.3f}, ungraded {s.n_ungraded}/"
                f"{s.n_verdicts}"
                for s in last
            ),
        ]
        if kind == "ungraded" or j.get("transport_errors") or j.get("ungraded"):
            lines += [
                "  what to do: the judge is too slow or unreachable for this load. Raise judge.timeout_s, "
                "lower judge.concurrency, use a faster judge (or more replicas), or, knowingly, relax "
                "run.max_ungraded_share."
            ]
        if kind == "variance":
            lines += [
                "  what to do: check that the judge grades (counters above) and that the prompts are neither "
                "always solved nor never solved (offline filter band); raise the rollout temperature or "
                "num_generations; or, knowingly, lower run.min_steps_with_reward_variance (0 = off)."
            ]
        where = f"--stage {self.stage} " if self.stage else ""
        lines += [
            "  the stage wrote no done marker; its folder (checkpoints, logs, rollouts, reward_health.json) is "
            "kept. After the fix, the same command resumes it from its last checkpoint; add "
            f"{where}--force to start the stage over (its folder is moved aside)."
        ]
        self.error = what
        raise RewardHealthError("\n".join(lines), self.summary())

    # ------------------------------------------------------------------ reporting

    @property
    def n_verdicts(self) -> int:
        return sum(s.n_verdicts for s in self.steps.values())

    @property
    def n_ungraded(self) -> int:
        return sum(s.n_ungraded for s in self.steps.values())

    @property
    def steps_with_reward_variance(self) -> int:
        return sum(s.varied for s in self.steps.values())

    def judge_totals(self) -> dict[str, float]:
        """The judge counters summed over the steps, plus ``mean_latency_s``."""
        out: dict[str, float] = {}
        for s in self.steps.values():
            for k, v in s.judge.items():
                out[k] = out.get(k, 0) + v
        if out.get("calls"):
            out["mean_latency_s"] = out.get("latency_sum_s", 0.0) / out["calls"]
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary for metrics and reports.

        Keys: ``ok``, ``error``, ``judge``, ``thresholds``, ``steps_observed``, ``steps_with_reward_variance``,
        ``verdicts``, ``ungraded``, ``ungraded_share``, ``max_step_ungraded_share``, ``judge_stats`` (totals)
        and ``steps`` (one row per step, what :meth:`restore` takes back).
        """
        n, u = self.n_verdicts, self.n_ungraded
        rows = [asdict(self.steps[k]) for k in sorted(self.steps)]
        return {
            "ok": self.error is None,
            "error": self.error,
            "judge": self.judge,
            "thresholds": asdict(self.thresholds),
            "steps_observed": len(rows),
            "steps_with_reward_variance": self.steps_with_reward_variance,
            "verdicts": n,
            "ungraded": u,
            "ungraded_share": u / n if n else 0.0,
            "max_step_ungraded_share": max((s.ungraded_share for s in self.steps.values()), default=0.0),
            "judge_stats": self.judge_totals(),
            "steps": rows,
        }


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}"
