"""``rubricrl serve``: run a local vLLM judge server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time

from rubricrl.errors import UserError
from rubricrl.judge.vllm_server import VLLMServer

log = logging.getLogger(__name__)


class _Terminated(Exception):
    """Raised from the SIGTERM handler so that the server is stopped on the way out."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="run a local vLLM OpenAI-compatible judge server (foreground)",
        description="Start `vllm` (from .venv-vllm) on 127.0.0.1, wait until it answers, write the endpoint "
        "file, and keep it running until Ctrl-C or SIGTERM, then stop it cleanly. Arguments after "
        "`--` go to vLLM unchanged.",
    )
    p.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="known model alias (see `rubricrl models list`) or checkpoint directory",
    )
    p.add_argument("--served-model-name", default=None, help="name clients send (default: alias or directory name)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback; no authentication!)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    p.add_argument(
        "--endpoint-file",
        default=None,
        help="write {base_url, model, pid, ...} here once ready (JudgeConfig.base_url_file reads it)",
    )
    p.add_argument("--log-file", default=None, help="server log (default: a temp file, printed at start)")
    p.add_argument("--vllm-python", default=None, help="the vLLM environment's python (default: .venv-vllm/bin/python)")
    p.add_argument(
        "--dtype", default="auto", help="auto (bf16 on CPUs with bf16 instructions, else float32), bfloat16, float32"
    )
    p.add_argument("--max-model-len", type=int, default=4096, help="context length (prompt + completion)")
    p.add_argument("--kv-cache-gib", type=float, default=1, help="KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all CPUs available)")
    p.add_argument("--max-num-seqs", type=int, default=None, help="most sequences decoded together")
    p.add_argument("--compile", action="store_true", help="allow torch.compile (slow start-up on CPU; default eager)")
    p.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for readiness")
    p.add_argument("vllm_args", nargs=argparse.REMAINDER, help="after `--`: extra vLLM arguments")
    return p


def run(args: argparse.Namespace) -> int:
    extra = list(args.vllm_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    if args.port is not None and not 0 < args.port < 65536:
        raise UserError(f"--port must be 1..65535, got {args.port}")
    logging.getLogger("rubricrl").setLevel(min(logging.INFO, logging.getLogger().level or logging.INFO))

    def on_term(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    server = VLLMServer(
        args.model,
        served_model_name=args.served_model_name,
        host=args.host,
        port=args.port,
        python=args.vllm_python,
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib,
        threads=args.threads,
        max_num_seqs=args.max_num_seqs,
        enforce_eager=not args.compile,
        extra_args=extra,
        log_file=args.log_file,
        endpoint_file=args.endpoint_file,
        startup_timeout_s=args.startup_timeout,
    )
    try:
        with server:
            print(json.dumps(server.endpoint()), flush=True)
            print(
                f"serving {server.served_model_name} at {server.base_url} (ready in {server.startup_s} s); "
                "Ctrl-C or SIGTERM stops it",
                file=sys.stderr,
                flush=True,
            )
            while server.running:
                time.sleep(0.5)
            code = server.proc.returncode if server.proc else None
            raise UserError(
                f"vLLM server exited unexpectedly (code {code}); see its log {server.log_file}", exit_code=1
            )
    except (KeyboardInterrupt, _Terminated):
        print("vLLM server stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
