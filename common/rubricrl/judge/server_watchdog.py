"""Tie a judge server's lifetime to the process that started it; detect stale endpoint files.

vLLM runs in a session of its own (so that one signal reaches its API server, engine core and workers),
which also means nothing stops it when its parent dies without running ``atexit`` (SIGKILL, OOM kill).
:func:`start_watchdog` starts this file as a tiny stdlib-only process, in a session of its own too, that
waits for the parent to go away and then stops the server's process group (SIGTERM, SIGKILL after a
grace period) and removes the endpoint file if it still names that server. It learns of the parent's
death at once through Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) and, on any system, by
polling its parent pid; it exits by itself when the server is gone. The parent-death signal is only a
wake-up: the watchdog acts when its parent pid has actually changed, so a starting thread that exits
while the process lives on stops nothing.

Run as a script (``python server_watchdog.py --parent P --group G [--endpoint-file F]``); it imports
nothing outside the standard library so it starts in milliseconds from any interpreter.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.25
PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a live (not zombie) member."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def endpoint_pid(path: Path) -> int | None:
    """The ``pid`` an endpoint file names, or None when it is unreadable or names none."""
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def remove_endpoint_if(path: Path | None, pid: int) -> bool:
    """Remove the endpoint file at ``path`` if it names server ``pid``; True when removed."""
    if path is None or endpoint_pid(path) != pid:
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def remove_stale_endpoint(path: Path) -> str | None:
    """Remove ``path`` if it is an endpoint file of a server that no longer runs.

    Returns:
        None when there is no such file or it was stale (and is now gone); otherwise the pid and base URL
        of the live server it names, for the caller's error message.
    """
    if not path.exists():
        return None
    pid = endpoint_pid(path)
    try:
        data = json.loads(path.read_text())
        host, port, url = data.get("host"), data.get("port"), data.get("base_url")
    except (OSError, ValueError, AttributeError):
        host = port = url = None
    if pid is not None and pid_alive(pid) and _listening(host, port):
        return f"pid {pid}, {url or 'unknown URL'}"
    path.unlink(missing_ok=True)
    return None


def _listening(host: object, port: object) -> bool:
    """Whether something accepts connections at ``host:port`` (True when the file does not say where)."""
    if not isinstance(host, str) or not isinstance(port, int):
        return True

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        return s.connect_ex((host, port)) == 0


def start_watchdog(
    group: int, endpoint_file: Path | None, log_file: Path | None, grace_s: float = 10.0
) -> subprocess.Popen:
    """Start the watchdog for server process group ``group`` (led by the server's pid), for this process."""
    cmd = [
        sys.executable,
        "-I",
        str(Path(__file__).resolve()),
        "--parent",
        str(os.getpid()),
        "--group",
        str(group),
        "--grace",
        str(grace_s),
    ]
    if endpoint_file is not None:
        cmd += ["--endpoint-file", str(Path(endpoint_file).resolve())]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True
        )
    finally:
        if out is not subprocess.DEVNULL:
            out.close()


def _set_parent_death_signal(sig: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: polling alone still catches it
        pass


def _stop_group(group: int, grace_s: float) -> None:
    try:
        os.killpg(group, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_alive(group):
        time.sleep(POLL_S)
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="stop a judge server's process group when its parent dies")
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--group", type=int, required=True)
    p.add_argument("--endpoint-file", type=Path, default=None)
    p.add_argument("--grace", type=float, default=10.0)
    args = p.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the parent-death wake-up; the loop decides
    _set_parent_death_signal(signal.SIGTERM)
    while True:
        if not group_alive(args.group):
            remove_endpoint_if(args.endpoint_file, args.group)
            return 0
        if os.getppid() != args.parent:
            print(
                f"[rubricrl watchdog] parent {args.parent} is gone: stopping judge server group {args.group}",
                flush=True,
            )
            _stop_group(args.group, args.grace)
            remove_endpoint_if(args.endpoint_file, args.group)
            return 0
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
