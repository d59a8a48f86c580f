"""Output files a command may resume: proof of ownership through a sidecar manifest.

The rule: a command only appends to, truncates or rewrites an existing ``--out`` when it can prove the
file is its own output for the same inputs. The proof is ``<out>.manifest.json``, written next to the
file by the command itself. It holds:

* ``command``: which command owns the file (``grade``, ``generate``);
* ``output``: the file's name;
* ``inputs``: sha256 digests of what the file was made from (data, responses, judge or policy);
* ``states``: the ``bytes`` and ``sha256`` of the file's first bytes as last written (two entries only
  while an atomic rewrite is in flight, so a crash between the rename and the manifest update is
  still recognised).

A file is owned when its first ``bytes`` bytes hash to a recorded state. Everything after that prefix
was appended by a run that stopped before updating the manifest: complete lines are kept (the command
validates them) and only a torn last line *after* the proven prefix is dropped, by truncation.

Anything else is refused with a :class:`~rubricrl.errors.UserError` (exit 2) before a single byte of
the file changes. A file without a manifest is never written to, with two exceptions: it is empty (no
data to lose), or the command recognises it as its own output from an earlier rubricrl version
(``adopt``), in which case the manifest is created and the file itself left as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.jsonl import write_atomic

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1


def manifest_path(out: str | Path) -> Path:
    """``<out>.manifest.json``."""
    p = Path(out)
    return p.with_name(p.name + MANIFEST_SUFFIX)


def digest_json(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()


def digest_file(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _prefix_hash(raw: bytes, n: int) -> hashlib._Hash:
    h = hashlib.sha256()
    h.update(raw[:n])
    return h


@dataclass
class Claim:
    """The result of :func:`claim`: what may be done with ``--out``.

    Attributes:
        path: the output file.
        command: the owning command.
        inputs: the input digests of this run.
        raw: the file's bytes as read (``b""`` for a new file).
        proven: length of the prefix proven by the manifest (0 for new, empty or adopted-later files).
        owned: a manifest proves the file is ours (False for new / empty files and legacy candidates).
        manifest: the manifest as read (None when there is none).
        notes: what changed in the inputs that the command accepted (e.g. a grown responses file).
    """

    path: Path
    command: str
    inputs: dict[str, str]
    raw: bytes = b""
    proven: int = 0
    owned: bool = False
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def legacy(self) -> bool:
        """A non-empty file without a manifest: the command must recognise it (``adopt``) or refuse it."""
        return not self.owned and bool(self.raw)


def _refuse(out: Path, why: str, what: str) -> UserError:
    return UserError(f"{why}; nothing was changed. {what}", path=str(out))


def claim(out: str | Path, command: str, inputs: dict[str, str], *, lenient: Iterable[str] = ()) -> Claim:
    """Check whether ``command`` may write ``out`` for ``inputs``; changes nothing.

    Args:
        out: the output file.
        command: the command's name, as recorded in the manifest.
        inputs: input name -> digest.
        lenient: input names whose digest may differ from the manifest's (the command checks the file's
            records against that input itself, e.g. a responses file that has grown).

    Raises:
        UserError: ``out`` is not a regular file, or its manifest names another command, other inputs,
            or a different file content.
    """
    p = Path(out)
    mpath = manifest_path(p)
    c = Claim(p, command, dict(inputs))
    if not p.exists() and not p.is_symlink():
        return c  # a stale manifest of a removed file is simply replaced
    if not p.is_file():
        raise UserError("exists and is not a regular file; choose another --out", path=str(p))
    try:
        c.raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror or e}; choose another --out", path=str(p)) from None
    if not mpath.exists():
        return c
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
        states = [(int(s["bytes"]), str(s["sha256"])) for s in m["states"]]
        if not (isinstance(m.get("inputs"), dict) and isinstance(m.get("command"), str)):
            raise ValueError("no command or inputs")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise _refuse(
            p,
            f"its manifest {mpath} cannot be read ({type(e).__name__}: {e})",
            "Delete both files to start over, or choose another --out.",
        ) from None
    if m["command"] != command or m.get("output") != p.name:
        raise _refuse(
            p,
            f"its manifest {mpath} belongs to `rubricrl {m['command']}` output "
            f"{m.get('output')!r}, not to `rubricrl {command}` output {p.name!r}",
            "Choose another --out.",
        )
    proven = next((n for n, sha in states if n <= len(c.raw) and _prefix_hash(c.raw, n).hexdigest() == sha), None)
    if proven is None:
        raise _refuse(
            p,
            f"the file was changed since `rubricrl {command}` wrote it (its content no longer matches {mpath})",
            "Choose another --out, or delete both files to start over.",
        )
    lenient = set(lenient)
    for key, value in inputs.items():
        old = m["inputs"].get(key)
        if old == value:
            continue
        if key in lenient:
            c.notes.append(key)
            continue
        raise _refuse(
            p,
            f"it was written from another {key.removesuffix('_sha256')} (sha256 {str(old)[:12]}..., "
            f"this run: {value[:12]}...)",
            "Choose another --out for other inputs.",
        )
    c.proven, c.owned, c.manifest = proven, True, m
    c.inputs = {**m["inputs"], **inputs}  # inputs this run does not name (e.g. --retry-ungraded) carry over
    return c


class OwnedOutput:
    """Appends lines to an owned output file and keeps its manifest in step; one durable line at a time.

    Use after :func:`claim` (and after the command validated the file's lines): ``keep`` is the length of
    the file's complete part; anything after it (a torn last line, only ever after the proven prefix) is
    truncated away. A missing final newline is added first.
    """

    def __init__(self, claim_: Claim, keep: int | None = None):
        self.claim = claim_
        self.path = claim_.path
        raw = claim_.raw
        keep = len(raw) if keep is None else keep
        if keep < claim_.proven:
            raise RuntimeError("would cut into the proven part of the file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if raw and keep < len(raw):
            os.truncate(self.path, keep)
        self._hash = _prefix_hash(raw, keep)
        self._bytes = keep
        self._f = open(self.path, "ab")
        if keep and not raw[:keep].endswith(b"\n"):
            self._write(b"\n")
        self._save_manifest()
        self.n_written = 0

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._hash.update(data)
        self._bytes += len(data)

    def _save_manifest(self, states: list[tuple[int, str]] | None = None) -> None:
        states = states or [(self._bytes, self._hash.hexdigest())]
        m = {
            "version": MANIFEST_VERSION,
            "command": self.claim.command,
            "output": self.path.name,
            "inputs": self.claim.inputs,
            "states": [{"bytes": n, "sha256": s} for n, s in states],
        }
        write_atomic(manifest_path(self.path), [json.dumps(m, indent=1) + "\n"])

    def append(self, line: str) -> None:
        """Write one line (newline-terminated), fsync, then record it in the manifest."""
        self._write(line.encode("utf-8"))
        self._save_manifest()
        self.n_written += 1

    def rewrite(self, lines: Iterable[str]) -> None:
        """Replace the file's content atomically; the manifest accepts old and new content meanwhile."""
        data = "".join(lines).encode("utf-8")
        new = (len(data), hashlib.sha256(data).hexdigest())
        self._save_manifest([(self._bytes, self._hash.hexdigest()), new])
        self._f.close()
        write_atomic(self.path, [data.decode("utf-8")])
        self._hash, self._bytes = _prefix_hash(data, len(data)), len(data)
        self._f = open(self.path, "ab")
        self._save_manifest()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> OwnedOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
