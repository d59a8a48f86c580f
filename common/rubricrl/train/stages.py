"""Stage runner: a pipeline is a list of stages, each writing to ``runs/<run>/<stage>/``.

A stage is a function ``fn(ctx: StageContext) -> dict`` (its metrics) plus the names of the stages
whose outputs it reads. For every stage the runner writes, in ``runs/<run>/<stage>/``:

* ``config.yaml``: the fully resolved experiment config;
* ``provenance.json``: config hash, input stages and the hashes the stage recorded with
  :meth:`StageContext.record_hash` (datasets, rubric banks, checkpoints);
* ``metrics.json``: what ``fn`` returned;
* ``DONE``: the completion marker (JSON), written last.

Re-running skips stages with a ``DONE`` marker whose config hash matches; a marker with another hash is
an error (use a new ``run.name``, or ``--force`` to redo the stage), so finished work is never silently
reused under different settings. A stage interrupted half-way has no marker and is re-entered; stages
that can resume (training) pick up their own checkpoints from their folder.

Library use (the self-rewarding pipeline defines its own list)::

    from rubricrl.train.stages import Stage, run_pipeline
    stages = [Stage("data", make_data), Stage("train", train, inputs=("data",))]
    run_pipeline(stages, cfg)                  # all, skipping finished ones
    run_pipeline(stages, cfg, only="train")    # one stage; its inputs must be done

In ``fn``: ``ctx.dir`` (own folder), ``ctx.input("data")`` (a finished predecessor's folder),
``ctx.cfg`` (ExperimentConfig), ``ctx.progress(...)`` (a rich/tqdm-like progress bar on stderr),
``ctx.record_hash(name, value)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.config import ExperimentConfig, config_hash, to_yaml
from rubricrl.errors import UserError
from rubricrl.progress import progress_bar

log = logging.getLogger(__name__)

DONE = "DONE"


class StageInterrupted(Exception):
    """A stage stopped early on SIGTERM/SIGINT after saving its state; re-run to resume."""

    exit_code = 143


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        name: folder name under the run and ``--stage`` value.
        fn: ``fn(ctx) -> metrics dict``.
        inputs: stages whose outputs ``fn`` reads (must be done first).
        description: one line for ``--list-stages`` and progress output.
    """

    name: str
    fn: Callable[[StageContext], dict[str, Any]]
    inputs: tuple[str, ...] = ()
    description: str = ""


@dataclass
class StageContext:
    """What a stage function gets."""

    cfg: ExperimentConfig
    run_dir: Path
    dir: Path
    stage: Stage
    hashes: dict[str, str] = field(default_factory=dict)

    def input(self, name: str) -> Path:
        """Folder of a finished predecessor stage."""
        if name not in self.stage.inputs:
            raise RuntimeError(f"stage {self.stage.name!r} did not declare {name!r} as an input")
        return self.run_dir / name

    def record_hash(self, name: str, value: str) -> None:
        """Record a provenance hash (dataset, rubric bank, checkpoint) in ``provenance.json``."""
        self.hashes[name] = value
        _write_json(self.dir / "provenance.json", self._provenance())

    def _provenance(self) -> dict[str, Any]:
        return {
            "stage": self.stage.name,
            "config_hash": config_hash(self.cfg),
            "inputs": list(self.stage.inputs),
            "input_markers": {n: _read_json(self.run_dir / n / DONE) for n in self.stage.inputs},
            "hashes": self.hashes,
        }

    @contextmanager
    def progress(self, total: int, desc: str) -> Iterator[Callable[[int], None]]:
        """Progress on stderr (a bar on a terminal, lines in logs); yields ``advance(n=1)``."""

        bar = progress_bar(total, f"[{self.stage.name}] {desc}", leave=True, dynamic_ncols=True, mininterval=1.0)
        try:
            yield lambda n=1: bar.update(n)
        finally:
            bar.close()


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def stage_status(run_dir: Path, name: str) -> str:
    """``done``, ``partial`` (folder without marker) or ``pending``."""
    d = run_dir / name
    if (d / DONE).is_file():
        return "done"
    return "partial" if d.is_dir() else "pending"


def _check_names(stages: Sequence[Stage]) -> dict[str, Stage]:
    by_name: dict[str, Stage] = {}
    for s in stages:
        if s.name in by_name:
            raise ValueError(f"duplicate stage {s.name!r}")
        for i in s.inputs:
            if i not in by_name:
                raise ValueError(f"stage {s.name!r} reads {i!r}, which is not an earlier stage")
        by_name[s.name] = s
    return by_name


def _is_current(run_dir: Path, s: Stage, chash: str) -> bool:
    marker = _read_json(run_dir / s.name / DONE)
    if marker is None:
        return False
    if marker.get("config_hash") != chash:
        raise UserError(
            f"stage {s.name!r} in {run_dir} was finished with a different configuration "
            f"(config hash {str(marker.get('config_hash'))[:12]} != {chash[:12]}); use a new run.name=..., "
            f"or --force to redo it (its folder is moved aside, not deleted)"
        )
    return True


def _move_aside(d: Path) -> None:
    if d.exists():
        dest = d.with_name(f"{d.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        d.rename(dest)
        log.warning("moved %s aside to %s", d, dest)


def run_stage(s: Stage, cfg: ExperimentConfig, run_dir: Path) -> dict[str, Any]:
    """Run one stage into its folder and write its marker (no skip logic)."""
    d = run_dir / s.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    ctx = StageContext(cfg=cfg, run_dir=run_dir, dir=d, stage=s)
    _write_json(d / "provenance.json", ctx._provenance())
    t0 = time.monotonic()
    metrics = dict(s.fn(ctx) or {})
    elapsed = time.monotonic() - t0
    metrics.setdefault("stage_seconds", round(elapsed, 2))
    _write_json(d / "metrics.json", metrics)
    _write_json(d / "provenance.json", ctx._provenance())
    _write_json(
        d / DONE,
        {
            "stage": s.name,
            "config_hash": config_hash(cfg),
            "seconds": round(elapsed, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    if not cfg.run.keep_checkpoints and (d / "checkpoints").is_dir():
        # Only once the stage is marked done: until then a rerun resumes from these instead of starting over.
        from rubricrl.train.checkpoint import drop_checkpoints

        freed = drop_checkpoints(d / "checkpoints")
        if freed:
            print(
                f"[{s.name}] run.keep_checkpoints=false: deleted {d / 'checkpoints'}/checkpoint-* "
                f"({freed / 1e9:.2f} GB) once the stage was done",
                file=sys.stderr,
                flush=True,
            )
    return metrics


def run_pipeline(
    stages: Sequence[Stage],
    cfg: ExperimentConfig,
    only: str | None = None,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order for ``cfg``; returns ``{stage: metrics}`` of the stages run or found done.

    Args:
        stages: the pipeline.
        cfg: the composed config (``cfg.run.dir`` is the run folder).
        only: run just this stage (its inputs must be done; it is re-run even if done when ``force``).
        force: redo the selected stage(s) (``only``) or every not-current stage; old folders are moved aside.
        echo: where progress lines go (default: stderr).

    Raises:
        UserError: unknown stage, missing predecessor, marker from another config.
        StageInterrupted: a stage stopped on a signal after saving its state.
    """
    say = echo or (lambda m: print(m, file=sys.stderr, flush=True))
    by_name = _check_names(stages)
    run_dir = cfg.run.dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    chash = config_hash(cfg)
    if only is not None:
        if only not in by_name:
            raise UserError(f"no stage {only!r}; stages: {', '.join(by_name)}")
        s = by_name[only]
        missing = [i for i in _all_inputs(s, by_name) if not _is_current(run_dir, by_name[i], chash)]
        if missing:
            raise UserError(
                f"stage {only!r} needs {', '.join(missing)} done first in {run_dir} "
                f"(run them with --stage NAME, or run the whole pipeline without --stage)"
            )
        selected = [s]
    else:
        selected = list(stages)
    results: dict[str, dict[str, Any]] = {}
    total = len(selected)
    for i, s in enumerate(selected, 1):
        d = run_dir / s.name
        if force and only is not None:
            _move_aside(d)
        elif (d / DONE).is_file():
            try:
                current = _is_current(run_dir, s, chash)
            except UserError:
                if not force:
                    raise
                _move_aside(d)
                current = False
            if current:
                say(f"[{i}/{total}] {s.name}: done already, skipped ({d})")
                results[s.name] = _read_json(d / "metrics.json") or {}
                continue
        say(f"[{i}/{total}] {s.name}: {s.description or 'running'} -> {d}")
        t0 = time.monotonic()
        results[s.name] = run_stage(s, cfg, run_dir)
        say(f"[{i}/{total}] {s.name}: finished in {time.monotonic() - t0:.1f} s")
    return results


def _all_inputs(s: Stage, by_name: dict[str, Stage]) -> list[str]:
    seen: list[str] = []

    def walk(x: Stage) -> None:
        for i in x.inputs:
            if i not in seen:
                walk(by_name[i])
                seen.append(i)

    walk(s)
    return seen
