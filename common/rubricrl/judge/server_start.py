"""Start (or reuse) the local vLLM judge server a pipeline stage grades with.

Every pipeline that judges on a local server at tiny scale (``server.enabled``) goes through
:func:`judge_server`: one start-up path, so the settings a stage asks for (model, context, KV cache,
batch, dtype, start-up timeout) all reach the server, and stages that run in one process share one
server with the same settings (a CPU start costs about 30 s). A shared server stops when the process
exits (``vllm_server``'s exit hook); under Slurm each stage is its own process and nothing is shared.

:func:`served_judge` points a judge config without an endpoint at such a server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from rubricrl.judge.config import JudgeConfig
from rubricrl.judge.vllm_server import VLLMServer

log = logging.getLogger(__name__)


class ServerSettings(Protocol):
    """What a stage's server settings carry (``rubricrl.config.schema.ServerConfig``)."""

    model: str
    max_model_len: int
    kv_cache_gib: float
    max_num_seqs: int | None
    dtype: str
    startup_timeout_s: float


_SHARED: dict[tuple, VLLMServer] = {}


def _key(s: ServerSettings) -> tuple:
    return (s.model, s.max_model_len, s.kv_cache_gib, s.max_num_seqs, s.dtype)


def judge_server(settings: ServerSettings, log_file: Path, *, shared: bool = True) -> VLLMServer:
    """A running vLLM judge server with ``settings``.

    Args:
        settings: the stage's ``server`` section.
        log_file: where a newly started server writes its log.
        shared: reuse a running server started in this process with the same settings (and register a new
            one for reuse). With ``shared=False`` the caller owns the server and stops it (it is a context
            manager).

    Returns:
        The started server (``base_url``, ``served_model_name``).
    """
    key = _key(settings)
    if shared:
        server = _SHARED.get(key)
        if server is not None and server.running:
            msg = (
                f"reusing the vLLM judge server started earlier in this run ({settings.model}); log: {server.log_file}"
            )
            log.info(msg)
            print(msg, flush=True)
            return server
    server = VLLMServer(
        settings.model,
        max_model_len=settings.max_model_len,
        kv_cache_gib=settings.kv_cache_gib,
        max_num_seqs=settings.max_num_seqs,
        dtype=settings.dtype,
        startup_timeout_s=settings.startup_timeout_s,
        log_file=log_file,
    )
    msg = f"starting the vLLM judge server ({settings.model}); log: {log_file}"
    log.info(msg)
    print(msg, flush=True)
    server.start()
    if shared:
        _SHARED[key] = server
    return server


def needs_server(judge: JudgeConfig, settings: Any) -> bool:
    """True when ``judge`` is an HTTP judge with no endpoint of its own and a local server is enabled."""
    return judge.backend == "openai" and not judge.base_url and not judge.base_url_file and bool(settings.enabled)


def served_judge(judge: JudgeConfig, server: VLLMServer) -> JudgeConfig:
    """``judge`` pointed at ``server`` (its URL and served model name; any endpoint file dropped)."""
    return judge.model_copy(
        update={"base_url": server.base_url, "base_url_file": None, "model": server.served_model_name}
    )
