"""A real one-node Slurm on localhost (Debian ``slurm-wlm`` 22.05 + munge), for testing the job scripts.

Everything lives in one folder: a private munge key and socket, ``slurm.conf`` (node ``localhost`` with
this machine's CPUs, ``proctrack/linuxproc``, ``task/none``, ``cons_tres``, ``JobRequeue=1``), state,
spool and logs, on free ports. Nothing under /etc is touched and the system munged is not used. Needs
root (slurmd runs jobs as their submitter). Clients find it through ``SLURM_CONF`` (:attr:`env`).

    with LocalSlurm(tmpdir) as slurm:
        subprocess.run(["sbatch", ...], env=slurm.env)
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_binaries() -> list[str]:
    """Slurm/munge programs not installed (``make setup-slurm`` installs them)."""
    need = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
    out = [n for n, p in need.items() if not (Path(p).exists() or shutil.which(n))]
    out += [n for n in ("sbatch", "squeue", "scontrol", "scancel") if shutil.which(n) is None]
    return out


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _exe(name: str) -> str:
    return f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else (shutil.which(name) or name)


class LocalSlurm:
    """Start munged, slurmctld and slurmd in ``root``; stop them (and only them) on exit.

    Args:
        root: an empty folder (private: mode 0700) for keys, config, state and logs.
        cpus: CPUs the node offers (default: this machine's).
        real_memory_mb: memory the node offers (default: a quarter of this machine's, at least 1 GiB).
        cred_expire_s: how long a requeued job waits before it may start again (Slurm default 120 s).
    """

    def __init__(
        self, root: str | Path, cpus: int | None = None, real_memory_mb: int | None = None, cred_expire_s: int = 10
    ):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        if real_memory_mb is None:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
            real_memory_mb = max(1024, total // 4)
        self.real_memory_mb = real_memory_mb
        self.cred_expire_s = cred_expire_s
        self.conf = self.root / "slurm.conf"
        self.sock = self.root / "munge.sock"
        self.pids: dict[str, int] = {}

    @property
    def env(self) -> dict[str, str]:
        """The environment for clients (sbatch, squeue, ...): this one with ``SLURM_CONF`` set."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        ctld, slurmd = _free_ports(2)
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=rubricrl-local",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    f"SlurmctldPort={ctld}",
                    f"SlurmdPort={slurmd}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.sock},cred_expire={self.cred_expire_s}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "JobRequeue=1",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=bf_interval=1,sched_interval=2",
                    "MessageTimeout=10",
                    "KillWait=30",
                    "InactiveLimit=0",
                    "MinJobAge=600",
                    "JobCompType=jobcomp/none",
                    "AccountingStorageType=accounting_storage/none",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.real_memory_mb} State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                ]
            )
            + "\n"
        )

    def start(self, timeout_s: float = 60.0) -> LocalSlurm:
        """Start the daemons and wait until the node is idle.

        Raises:
            RuntimeError: a daemon did not start (its log is quoted).
        """
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)} (run `make setup-slurm`)")
        if os.geteuid() != 0:
            raise RuntimeError("a local Slurm needs root (slurmd starts jobs as their user)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        for d in ("state", "spool", "log"):
            (self.root / d).mkdir(exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._write_conf()
        r = self.root
        self._run(
            [
                _exe("munged"),
                "--force",
                f"--socket={self.sock}",
                f"--key-file={key}",
                f"--pid-file={r / 'munged.pid'}",
                f"--log-file={r / 'log' / 'munged.log'}",
                f"--seed-file={r / 'munged.seed'}",
            ],
            "munged",
            r / "munged.pid",
            r / "log" / "munged.log",
        )
        self._run(
            [_exe("slurmctld"), "-f", str(self.conf)], "slurmctld", r / "slurmctld.pid", r / "log" / "slurmctld.log"
        )
        self._run(
            [_exe("slurmd"), "-f", str(self.conf), "-N", "localhost"],
            "slurmd",
            r / "slurmd.pid",
            r / "log" / "slurmd.log",
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc"):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the local Slurm node did not become idle in {timeout_s} s; logs in {r / 'log'}")

    def _run(self, cmd: list[str], name: str, pid_file: Path, log_file: Path) -> None:
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
        deadline = time.monotonic() + 20

        def pid_written() -> bool:  # the daemon creates the file before it writes its pid into it
            try:
                return pid_file.read_text().strip() != ""
            except OSError:
                return False

        while not pid_written() and time.monotonic() < deadline:
            time.sleep(0.1)
        if r.returncode != 0 or not pid_written():
            tail = log_file.read_text()[-2000:] if log_file.exists() else ""
            self.stop()
            raise RuntimeError(f"{name} did not start (exit {r.returncode}): {r.stderr.strip()}\n{tail}")
        self.pids[name] = int(pid_file.read_text().split()[0])

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (those started here, by pid)."""
        if "slurmctld" in self.pids:
            subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, env=self.env)
            subprocess.run(
                ["scancel", "--full", "-u", os.environ.get("USER", "root")], capture_output=True, env=self.env
            )
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                q = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=self.env)
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                log.warning("%s (pid %d) ignored SIGTERM; killing it", name, pid)
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
