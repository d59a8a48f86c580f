"""The judge behind the judged lm-eval tasks: which config, built once per process, graded synchronously.

Which judge config a task uses, first match wins:

1. the task metadata key ``judge`` (``lm_eval --metadata '{"judge": "gpt41-healthbench"}'``, or
   ``TaskManager(metadata={"judge": ...})``): recorded in the results file under
   ``configs.<task>.metadata.judge``;
2. the environment variable :data:`JUDGE_ENV` (``RUBRICRL_EVAL_JUDGE``);
3. :data:`DEFAULT_JUDGE` (the shipped ``smollm2-vllm`` config: the CPU server that
   ``rubricrl serve --endpoint-file runs/judge.endpoint.json`` starts).

A value is a shipped config name (``rubricrl.configs.config_path("judge", ...)``) or a path to a
``JUDGE.yaml``. The task's dataset hook resolves it once, when the data is loaded, builds the judge
right away (:func:`prepare`: a missing endpoint file or API key fails before any generation) and
stores the resolved file path in every document (``doc["judge"]``), so ``--log_samples`` shows which
judge graded each example. The judge is kept for the process (its HTTP pool
and semaphores live on rubricrl's background judge loop); it is closed at interpreter exit.

Rubric-scored writing tasks (WritingBench, creative writing) need scores on tiers: for them a judge
config whose ``mode`` is not ``tiered`` is used with ``mode: tiered`` and ``template: tiered``
(:func:`judge_for`, ``tiered=True``); a config already in tiered mode is used as written.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rubricrl.configs import config_path
from rubricrl.errors import UserError
from rubricrl.judge import build_judge, close_judge, grade_many
from rubricrl.judge.config import JudgeConfig, judge_summary, load_judge_config
from rubricrl.judge.prompts import TAG_PREFIX
from rubricrl.types import GradingRequest, Verdict

log = logging.getLogger(__name__)

JUDGE_ENV = "RUBRICRL_EVAL_JUDGE"
DEFAULT_JUDGE = "smollm2-vllm"
METADATA_KEY = "judge"

_lock = threading.Lock()
_judges: dict[tuple[str, bool], tuple[Any, dict[str, Any]]] = {}


def resolve_judge(metadata: Mapping[str, Any] | None = None) -> str:
    """The judge config file a task uses (see the module docstring for the order).

    Args:
        metadata: the task metadata (what lm-eval passes to a ``custom_dataset`` hook).

    Returns:
        The absolute path of the judge YAML.

    Raises:
        UserError: the name is neither a file nor a shipped config.
    """
    spec = (metadata or {}).get(METADATA_KEY) or os.environ.get(JUDGE_ENV) or DEFAULT_JUDGE
    return str(config_path("judge", str(spec)).resolve())


def prepare(metadata: Mapping[str, Any] | None = None, tiered: bool = False) -> str:
    """Resolve the task's judge and build it now, so a missing server endpoint, API key or bad config
    fails when the data is loaded, before any generation is spent. Returns the config path."""
    path = resolve_judge(metadata)
    cfg = load_config(path, tiered)
    if cfg.backend == "openai" and not cfg.base_url and cfg.base_url_file and not Path(cfg.base_url_file).exists():
        raise UserError(
            f"judge endpoint file {cfg.base_url_file} does not exist (judge config {path}): start the judge "
            f"server first (`rubricrl serve --endpoint-file {cfg.base_url_file}`), or choose another judge "
            f"with --metadata '{{\"judge\": ...}}' or ${JUDGE_ENV}"
        )
    judge_for(path, tiered)
    return path


def load_config(path: str, tiered: bool = False) -> JudgeConfig:
    """Load a judge YAML; with ``tiered`` switch a non-tiered config to the tiered mode and template."""
    cfg = load_judge_config(path)
    if tiered and cfg.mode != "tiered":
        cfg = load_judge_config(path, {"mode": "tiered", "template": "tiered"})
    return cfg


def summary(cfg: JudgeConfig, path: str) -> dict[str, Any]:
    """What identifies a judge in results (config file first); see ``rubricrl.judge.config.judge_summary``."""
    return judge_summary(cfg, config=path)


def judge_for(path: str, tiered: bool = False) -> tuple[Any, dict[str, Any]]:
    """The judge of config ``path`` (built once per process) and its summary."""
    key = (path, tiered)
    with _lock:
        if key not in _judges:
            cfg = load_config(path, tiered)
            _judges[key] = (build_judge(cfg), summary(cfg, path))
            log.info("evaluation judge: %s", _judges[key][1])
        return _judges[key]


def grade(path: str, request: GradingRequest, tiered: bool = False) -> tuple[list[Verdict], dict[str, Any]]:
    """Grade one request with the judge of ``path``; its criteria are graded concurrently.

    Returns:
        ``(verdicts, judge summary)``; verdicts are aligned with ``request.criteria`` and ungraded
        ones have ``met is None and score is None``.
    """
    judge, info = judge_for(path, tiered)
    return grade_many(judge, [request])[0], info


def close_all() -> None:
    """Close every judge built in this process."""

    with _lock:
        items = list(_judges.values())
        _judges.clear()
    for judge, _ in items:
        try:
            close_judge(judge)
        except Exception as e:  # noqa: BLE001 - closing at exit must not raise
            log.debug("closing judge: %s", e)


atexit.register(close_all)


def stable_tag(*parts: str) -> str:
    """A delimiter tag derived from ``parts`` (deterministic prompts for the harness's request cache)."""

    return TAG_PREFIX + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]


def data_file_arg(value: Any) -> Path | None:
    """A ``data_file`` dataset argument as a path (``None`` when unset)."""
    return Path(str(value)).expanduser() if value else None
