"""Gold-judge drift: does the training judge's reward keep rising while a second judge's does not?

"Rubric Dropout" (arXiv 2608.11669) shows it happening: during rubric RL the training judge's reward rises
while a gold judge's falls. A training loop cannot see that from its own reward. :class:`DriftMonitor`
watches it: every few steps the engine adapter has the same rollouts graded by a second judge (the "gold"
judge, ``monitor.judge``) and reports both means here. Engine-independent and pure (no I/O, no judge, nothing
paper-specific); an adapter calls::

    monitor = DriftMonitor(DriftThresholds(max_gap=0.15, on_gap="warn", window=3, max_ungraded_share=0.5),
                           judge="gpt-4.1 at https://...", train_judge="smollm2 at http://...", stage="stage2_rl")
    if is_check_step(step, every_steps, last_step):
        keys = sample_keys(prompt_ids_of_the_step, k, seed)          # which prompts' rollouts to grade
        check = monitor.observe(step, train_rewards, gold_rewards, gold_verdicts, gold_ungraded, prompts=len(keys))
        log(monitor_metrics(check))                                   # monitor/* on both engines
    metrics["drift_monitor"] = monitor.summary()

Definitions (one check = one step's sampled rollouts, graded by both judges):

* ``gap`` = mean training-judge reward - mean gold-judge reward, over the same rollouts;
* ``widening`` = mean gap of the last ``window`` checks after the first, minus the first check's gap (the
  baseline: two judges may disagree by a constant, which is not drift);
* ``trend`` = least-squares slope of the gap per step over the last ``max(window, 2)`` checks;
* a check whose gold verdicts are ungraded above ``max_ungraded_share`` gives no gold reward: it is kept,
  counted and shown as skipped, and never enters the gap, widening or trend.

When ``widening > max_gap`` the check carries a warning (``on_gap: warn``, logged and kept in the summary) or
:meth:`DriftMonitor.observe` raises :class:`DriftMonitorError` (``on_gap: stop``: a
:class:`~rubricrl.errors.UserError`, exit code 2, no traceback), after recording the check.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rubricrl.errors import UserError

OnGap = Literal["warn", "stop"]
PREFIX = "monitor/"


class DriftMonitorError(UserError):
    """The gap between the training judge's and the gold judge's rewards widened past ``monitor.max_gap``.

    Attributes:
        summary: :meth:`DriftMonitor.summary` at the time of the error.
    """

    def __init__(self, message: str, summary: dict[str, Any]):
        self.summary = summary
        super().__init__(message, exit_code=2)


@dataclass(frozen=True)
class DriftThresholds:
    """When the gap counts as widening, and what happens then.

    Attributes:
        max_gap: largest tolerated widening of the gap over the first check's (``monitor.max_gap``).
        on_gap: ``warn`` (log, keep training) or ``stop`` (raise :class:`DriftMonitorError`).
        window: checks averaged for the widening, and fitted for the trend (``monitor.window``).
        max_ungraded_share: a check whose gold verdicts are ungraded above this share is skipped.
    """

    max_gap: float = 0.15
    on_gap: OnGap = "warn"
    window: int = 3
    max_ungraded_share: float = 0.5

    def __post_init__(self) -> None:
        if not self.max_gap > 0:
            raise ValueError(f"max_gap must be > 0, got {self.max_gap}")
        if self.on_gap not in ("warn", "stop"):
            raise ValueError(f"on_gap must be 'warn' or 'stop', got {self.on_gap!r}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0.0 <= self.max_ungraded_share <= 1.0:
            raise ValueError(f"max_ungraded_share must be in [0, 1], got {self.max_ungraded_share}")


@dataclass
class DriftCheck:
    """One check (what ``monitor.jsonl`` holds per line).

    Attributes:
        step: the GRPO step.
        train_judge_reward: mean training reward of the checked rollouts.
        gold_judge_reward: their mean gold-judge reward; None when the check was skipped.
        n: rollouts checked; prompts: prompts they come from.
        gold_verdicts, gold_ungraded: the gold judge's verdicts (model-judged ones where there are any) and how
            many of them are ungraded.
        skipped: why the check gave no gold reward (None when it did).
        gap: ``train_judge_reward - gold_judge_reward`` (None when skipped).
        widening, trend: after this check (None until two valid checks).
        warning: the threshold message when this check crossed ``max_gap``.
        action: what was done about the warning (``warn`` or ``stop``; None without one).
    """

    step: int
    train_judge_reward: float
    gold_judge_reward: float | None
    n: int
    prompts: int
    gold_verdicts: int
    gold_ungraded: int
    skipped: str | None = None
    gap: float | None = None
    widening: float | None = None
    trend: float | None = None
    warning: str | None = None
    action: OnGap | None = None

    @property
    def gold_ungraded_share(self) -> float:
        return self.gold_ungraded / self.gold_verdicts if self.gold_verdicts else 0.0


def is_check_step(step: int, every_steps: int, last_step: int | None = None) -> bool:
    """Steps that are checked: the first (the baseline), every ``every_steps``-th, and the last."""
    if every_steps < 1:
        raise ValueError(f"every_steps must be >= 1, got {every_steps}")
    return step == 1 or step % every_steps == 0 or (last_step is not None and step == last_step)


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def sample_keys(keys: Iterable[str], k: int, seed: int) -> list[str]:
    """The ``k`` prompts of a step to check: the first of its distinct prompt ids in one fixed seeded order.

    The order (sha256 of ``seed:prompt_id``) is the same at every step and on every engine, so a prompt that
    ranks high is checked whenever it is in a step's batch; nothing is random at check time.
    """
    distinct = sorted(set(str(x) for x in keys), key=lambda x: _rank(seed, x))
    return distinct[: max(0, k)]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None for fewer than two distinct x)."""
    if len(points) < 2:
        return None
    mx = _mean([x for x, _ in points])
    my = _mean([y for _, y in points])
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


class DriftMonitor:
    """Accumulates checks, computes the gap, its widening and trend, and applies ``on_gap``.

    Args:
        thresholds: the limits and the policy.
        judge: the gold judge, for messages (``"model at http://host/v1"``).
        train_judge: the training judge, for messages.
        stage: the stage name, for messages.
    """

    def __init__(
        self,
        thresholds: DriftThresholds | None = None,
        *,
        judge: str = "the gold judge",
        train_judge: str = "the training judge",
        stage: str = "",
    ):
        self.thresholds = thresholds or DriftThresholds()
        self.judge = judge
        self.train_judge = train_judge
        self.stage = stage
        self.checks: dict[int, DriftCheck] = {}
        self.stopped: str | None = None

    # ------------------------------------------------------------------ observations

    def observe(
        self,
        step: int,
        train_rewards: Sequence[float],
        gold_rewards: Sequence[float] | None,
        gold_verdicts: int,
        gold_ungraded: int,
        prompts: int = 0,
    ) -> DriftCheck:
        """Record one check.

        Args:
            step: the GRPO step (a second check of the same step replaces the first).
            train_rewards: the training rewards of the checked rollouts.
            gold_rewards: the gold judge's rewards of the same rollouts, in the same order (None: none obtained).
            gold_verdicts: the gold verdicts those rewards rest on (model-judged ones where there are any).
            gold_ungraded: how many of them are ungraded.
            prompts: how many prompts the rollouts come from.

        Returns:
            The check, with gap, widening, trend and warning filled in.

        Raises:
            ValueError: inconsistent counts or lengths.
            DriftMonitorError: ``on_gap: stop`` and the widening is above ``max_gap`` (the check is recorded first).
        """
        if gold_ungraded < 0 or gold_verdicts < 0 or gold_ungraded > gold_verdicts:
            raise ValueError(
                f"step {step}: gold_ungraded={gold_ungraded} must be within 0..gold_verdicts={gold_verdicts}"
            )
        if gold_rewards is not None and len(gold_rewards) != len(train_rewards):
            raise ValueError(f"step {step}: {len(train_rewards)} training rewards but {len(gold_rewards)} gold rewards")
        t = [float(x) for x in train_rewards]
        check = DriftCheck(
            step=int(step),
            train_judge_reward=_mean(t),
            gold_judge_reward=None,
            n=len(t),
            prompts=int(prompts),
            gold_verdicts=int(gold_verdicts),
            gold_ungraded=int(gold_ungraded),
        )
        limit = self.thresholds.max_ungraded_share
        if not t:
            check.skipped = "no rollouts to check"
        elif gold_rewards is None:
            check.skipped = "the gold judge returned no rewards"
        elif gold_verdicts and check.gold_ungraded_share > limit:
            check.skipped = (
                f"gold judge: {gold_ungraded} of {gold_verdicts} verdicts ungraded "
                f"({check.gold_ungraded_share:.0%}, above monitor.max_ungraded_share={limit:g})"
            )
        else:
            check.gold_judge_reward = _mean([float(x) for x in gold_rewards])
            check.gap = check.train_judge_reward - check.gold_judge_reward
        self.checks[check.step] = check
        self._update(check)
        if check.warning:
            check.action = self.thresholds.on_gap
        if check.action == "stop":
            self.stopped = check.warning
            raise DriftMonitorError(self._stop_message(check), self.summary())
        return check

    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take back earlier checks (``monitor.jsonl`` rows) after a resume, without re-applying ``on_gap``."""
        for r in rows:
            c = DriftCheck(**{k: r[k] for k in DriftCheck.__dataclass_fields__ if k in r})
            self.checks[c.step] = c
            if c.action == "stop":
                self.stopped = c.warning

    # ------------------------------------------------------------------ rules

    def valid(self) -> list[DriftCheck]:
        """Checks with a gold reward, in step order."""
        return [self.checks[s] for s in sorted(self.checks) if self.checks[s].gap is not None]

    def _update(self, check: DriftCheck) -> None:
        valid = [c for c in self.valid() if c.step <= check.step]
        if check.gap is None or len(valid) < 2:
            return
        w = self.thresholds.window
        recent = valid[1:][-w:]
        check.widening = _mean([c.gap for c in recent]) - valid[0].gap  # type: ignore[misc]
        check.trend = _slope([(float(c.step), float(c.gap)) for c in valid[-max(w, 2) :]])  # type: ignore[arg-type]
        if check.widening > self.thresholds.max_gap:
            check.warning = (
                f"step {check.step}: the gap between the training judge's and the gold judge's rewards "
                f"widened by {check.widening:+.3f} since step {valid[0].step} (gap {valid[0].gap:+.3f} -> "
                f"{check.gap:+.3f}), above monitor.max_gap={self.thresholds.max_gap:g}"
            )

    def _stop_message(self, check: DriftCheck) -> str:
        last = self.valid()[-5:]
        where = f"--stage {self.stage} " if self.stage else ""
        return "\n".join(
            [
                f"{self.stage or 'training stage'}: stopped by the gold-judge drift monitor (monitor.on_gap=stop): "
                f"{check.warning}.",
                f"  training judge: {self.train_judge}",
                f"  gold judge: {self.judge}",
                "  recent checks: "
                + "; ".join(
                    f"step {c.step}: train {c.train_judge_reward:.3f}, gold "
                    f"{c.gold_judge_reward:.3f}, gap {c.gap:+.3f} (n {c.n})"
                    for c in last
                ),
                "  what it means: the policy is learning what the training judge rewards and the gold judge does not "
                "(reward hacking, or a training judge too weak for these rubrics). Look at the stage's rollouts.jsonl "
                "and monitor.jsonl; strengthen the training judge or the defense rubric; or, knowingly, raise "
                "monitor.max_gap or set monitor.on_gap=warn.",
                "  the stage wrote no done marker; its folder (checkpoints, logs, rollouts, monitor.jsonl) is kept. "
                "The "
                f"same command resumes it from its last checkpoint; add {where}--force to start the stage over.",
            ]
        )

    # ------------------------------------------------------------------ reporting

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary for metrics, the hacking stage and the reports.

        Keys: ``judge``, ``train_judge``, ``stage``, ``thresholds``, ``checks``, ``valid_checks``,
        ``skipped_checks``, ``first_step``, ``first_gap``, ``last_step``, ``last_gap``, ``widening``, ``trend``,
        ``max_widening``, ``warnings`` (messages), ``stopped`` (the message, or None), ``verdict`` (one sentence).
        """
        valid = self.valid()
        last = valid[-1] if valid else None
        widenings = [c.widening for c in valid if c.widening is not None]
        out: dict[str, Any] = {
            "judge": self.judge,
            "train_judge": self.train_judge,
            "stage": self.stage,
            "thresholds": asdict(self.thresholds),
            "checks": len(self.checks),
            "valid_checks": len(valid),
            "skipped_checks": len(self.checks) - len(valid),
            "first_step": valid[0].step if valid else None,
            "first_gap": valid[0].gap if valid else None,
            "last_step": last.step if last else None,
            "last_gap": last.gap if last else None,
            "widening": last.widening if last else None,
            "trend": last.trend if last else None,
            "max_widening": max(widenings) if widenings else None,
            "warnings": [self.checks[s].warning for s in sorted(self.checks) if self.checks[s].warning],
            "stopped": self.stopped,
        }
        out["verdict"] = verdict(out)
        return out


def verdict(summary: Mapping[str, Any]) -> str:
    """One sentence on a :meth:`DriftMonitor.summary`: what the checks showed, and the threshold's state."""
    n, valid, skipped = summary.get("checks", 0), summary.get("valid_checks", 0), summary.get("skipped_checks", 0)
    th = summary.get("thresholds") or {}
    if not n:
        return "no check ran"
    skip = f"; {skipped} skipped (gold verdicts mostly ungraded)" if skipped else ""
    if not valid:
        return f"{n} checks, none with a gold reward (the gold judge's verdicts were mostly ungraded): no gap measured"
    if valid < 2:
        return f"1 valid check (step {summary['first_step']}, gap {summary['first_gap']:+.3f}){skip}: no trend yet"
    warned = summary.get("warnings") or []
    state = (
        f"stopped: {summary['stopped']}"
        if summary.get("stopped")
        else f"{len(warned)} warning(s), first: {warned[0]}"
        if warned
        else f"within monitor.max_gap={th.get('max_gap', float('nan')):g}"
    )
    trend = summary.get("trend")
    return (
        f"{valid} valid checks{skip}; gap (train - gold) {summary['first_gap']:+.3f} at step {summary['first_step']} "
        f"-> {summary['last_gap']:+.3f} at step {summary['last_step']}, widening {summary['widening']:+.3f}"
        + (f", trend {trend:+.4f} per step" if trend is not None else "")
        + f"; {state}"
    )


def monitor_metrics(check: DriftCheck) -> dict[str, float]:
    """The ``monitor/*`` metrics of one check (same keys on both engines; absent values are left out)."""
    m: dict[str, float] = {
        f"{PREFIX}train_judge_reward": check.train_judge_reward,
        f"{PREFIX}n": float(check.n),
        f"{PREFIX}gold_ungraded_share": check.gold_ungraded_share,
        f"{PREFIX}skipped": float(check.skipped is not None),
        f"{PREFIX}warning": float(check.warning is not None),
    }
    for key, value in (
        ("gold_judge_reward", check.gold_judge_reward),
        ("gap", check.gap),
        ("gap_widening", check.widening),
        ("gap_trend", check.trend),
    ):
        if value is not None and not math.isnan(value):
            m[f"{PREFIX}{key}"] = float(value)
    return m
