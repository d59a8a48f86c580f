"""Checkpoints: stop cleanly on SIGTERM / SIGINT with a checkpoint, and resume from the newest one.

``GracefulStop`` installs handlers that only set a flag; the ``StopOnSignal`` trainer callback turns
the flag into "save a checkpoint and stop" at the end of the current optimizer step, so the checkpoint
is a consistent one (weights, optimizer, scheduler, RNG, step). A second SIGINT (Ctrl-C again) while
stopping exits at once (the checkpoint from the first is written by then or not at all; earlier ones
stay). A second SIGTERM within ``RR_SIGTERM_DEDUP_S`` seconds (default 30) of the first is taken as the
same request delivered twice and ignored: on Slurm under Apptainer the job's SIGTERM reaches both
``apptainer exec`` (which forwards it) and the trainer inside, so the trainer sees two at once, and
exiting on the second would skip the checkpoint. Slurm's SIGKILL after ``KillWait`` is the backstop.

Typical use (``rubricrl.train.trl_adapter.train_grpo`` does this)::

    with GracefulStop() as stop:
        trainer.add_callback(StopOnSignal(stop))
        trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    if stop.requested:
        raise StageInterrupted(...)
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """Newest complete ``checkpoint-<step>`` folder in ``output_dir`` (one with ``trainer_state.json``)."""
    d = Path(output_dir)
    if not d.is_dir():
        return None
    found = []
    for p in d.iterdir():
        m = _CKPT.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def drop_checkpoints(output_dir: str | Path) -> int:
    """Delete every ``checkpoint-<step>`` folder in ``output_dir``; returns the bytes freed.

    Each folder is first renamed out of :func:`last_checkpoint`'s pattern, so a deletion cut short (a signal,
    a crash) never leaves a half-deleted checkpoint that a later run would resume from; such leftovers are
    removed by the next call.
    """
    d = Path(output_dir)
    if not d.is_dir():
        return 0
    for p in list(d.iterdir()):  # listed before renaming inside it
        if _CKPT.match(p.name) and p.is_dir():
            p.rename(p.with_name(f".deleting-{p.name}"))
    freed = 0
    for p in d.glob(".deleting-checkpoint-*"):
        if p.is_dir():
            freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            shutil.rmtree(p)
    return freed


class GracefulStop:
    """Context manager: SIGTERM/SIGINT set ``requested`` instead of killing the process."""

    def __init__(
        self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT), sigterm_dedup_s: float | None = None
    ):
        self.signals = signals
        self.requested: int | None = None
        self.sigterm_dedup_s = (
            float(os.environ.get("RR_SIGTERM_DEDUP_S", "30")) if sigterm_dedup_s is None else sigterm_dedup_s
        )
        self._first_at = 0.0
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            if signum == signal.SIGTERM and time.monotonic() - self._first_at < self.sigterm_dedup_s:
                log.warning(
                    "SIGTERM again within %.0f s (the same stop request delivered twice, e.g. by apptainer "
                    "and Slurm): still saving the checkpoint",
                    self.sigterm_dedup_s,
                )
                return
            log.warning("second signal %d: exiting now", signum)
            sys.exit(128 + signum)
        self.requested = signum
        self._first_at = time.monotonic()
        print(
            f"\nreceived {signal.Signals(signum).name}: saving a checkpoint at the end of this step, then stopping "
            "(signal again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> GracefulStop:
        for s in self.signals:
            self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


class StopOnSignal(TrainerCallback):
    """Save and stop at the end of the step during which a signal arrived."""

    def __init__(self, stop: GracefulStop):
        self.stop = stop

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.stop.requested is not None:
            control.should_save = True
            control.should_training_stop = True
        return control
