"""What Rubicon's stages, evaluation and report share: the config section, stage files, rubric banks, judges."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replications.rubicon.config import SECTION, RubiconConfig
from rubricrl.config import ExperimentConfig, resolve_path
from rubricrl.jsonl import read_jsonl, write_jsonl_atomic
from rubricrl.judge import JudgeConfig, build_judge, close_judge
from rubricrl.judge.server_start import judge_server as start_judge_server
from rubricrl.judge.server_start import served_judge
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import Rubric
from rubricrl.train.stages import file_hash

log = logging.getLogger(__name__)


def rub(cfg: ExperimentConfig) -> RubiconConfig:
    """The ``rubicon:`` section of ``cfg``."""
    return cfg.section(SECTION)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    """Write JSONL atomically; returns its sha256."""

    write_jsonl_atomic(path, rows, overwrite=True)
    return file_hash(path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL file the stages wrote."""
    return read_jsonl(path, missing_ok=False)


def save_rubrics(path: Path, rubrics: list[Rubric]) -> None:
    """Write ``rubrics`` as one JSON list (``rubrics.json``, ``defense_rubric.json``)."""
    path.write_text(json.dumps([r.model_dump(mode="json") for r in rubrics], ensure_ascii=False), encoding="utf-8")


def load_rubric_file(path: Path) -> dict[str, Rubric]:
    """Rubric id -> rubric of a file :func:`save_rubrics` wrote."""
    return {r.id: r for r in (Rubric.model_validate(d) for d in json.loads(path.read_text(encoding="utf-8")))}


def load_bank(paths: list[str]) -> list[Rubric]:
    """The rubrics of bank files / folders (config paths, resolved against the checkout)."""

    return load_rubrics([resolve_path(p) for p in paths])


def judge_server(cfg: ExperimentConfig, log_dir: Path) -> Any:
    """The local vLLM judge server of ``cfg.server``, started here or reused from earlier in this process
    (stage 2 and the evaluation share one when the pipeline runs in one process)."""
    return start_judge_server(cfg.server, log_dir / "judge_server.log")


@contextmanager
def judge_for(cfg: ExperimentConfig, llm: bool, log_dir: Path) -> Iterator[Any]:
    """A judge for a stage: verifiers only, or ``cfg.judge`` (with a local vLLM server if enabled)."""
    if not llm:
        judge = build_judge(JudgeConfig(backend="programmatic"))
        yield judge
        return
    jc = cfg.judge
    if cfg.server.enabled:
        server = judge_server(cfg, log_dir)
        jc = served_judge(jc, server)
    judge = build_judge(jc)
    try:
        yield judge
    finally:
        close_judge(judge)
