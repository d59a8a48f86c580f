"""A sqlite verdict cache: never pay twice for the same judgement.

Key: sha256 over the canonical JSON of (judge model, template hash, mode, conversation, response,
criterion content). The criterion content is what the judge sees and what changes the verdict's
meaning: text, points, tiers, scale, negative, kind, verifier, args (not its id, weight or tags). In
holistic mode the whole criteria list is part of every key, since the one score depends on all of it.

Only graded verdicts are stored. One connection guarded by a lock; every operation is short and
synchronous, so it is safe from many asyncio tasks (and threads) at once.

Note: the key does not include sampling settings or a policy checkpoint. When the judge is the policy
being trained (self-rewarding), its verdicts go stale every step: leave the cache off, or pass a
``namespace`` (e.g. the step) to :func:`verdict_key`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rubricrl.errors import UserError
from rubricrl.judge.interfaces import GradingRequest, Message, Verdict
from rubricrl.types import Criterion

if TYPE_CHECKING:
    from rubricrl.judge.prompts import TemplateSet

log = logging.getLogger(__name__)

_CRITERION_FIELDS = {"text", "points", "tiers", "scale", "negative", "kind", "verifier", "args"}


def criterion_content(criterion: Criterion) -> dict[str, Any]:
    """The parts of a criterion that determine its verdict, as plain JSON."""
    return criterion.model_dump(mode="json", include=_CRITERION_FIELDS)


def verdict_key(
    judge: str,
    template_hash: str,
    mode: str,
    conversation: Sequence[Message],
    response: str,
    criterion: Criterion,
    context: Sequence[Criterion] | None = None,
    namespace: str = "",
) -> str:
    """sha256 hex key of one judgement.

    Args:
        judge: judge model name.
        template_hash: hash of the template body used.
        mode: grading mode.
        conversation: prompt messages (role and content only are used).
        response: graded response.
        criterion: the criterion.
        context: all criteria of the request, when the verdict depends on them (holistic mode).
        namespace: optional extra key part (e.g. a policy checkpoint id).
    """
    payload = {
        "judge": judge,
        "template": template_hash,
        "mode": mode,
        "conversation": [{"role": m.get("role", ""), "content": m.get("content", "")} for m in conversation],
        "response": response,
        "criterion": criterion_content(criterion),
        "context": [criterion_content(c) for c in context] if context is not None else None,
        "namespace": namespace,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class VerdictCache:
    """Graded verdicts in a sqlite file.

    Args:
        path: sqlite file (created with its parent directory unless ``readonly``).
        readonly: open an existing file read-only (replay).

    Raises:
        UserError: ``readonly`` and the file does not exist, or the file is not a verdict cache.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            if not self.path.is_file():
                raise UserError(f"verdict cache {self.path} does not exist (replay needs an existing cache)")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL, "
                "judge TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._conn.commit()
        try:
            with self._lock:
                self._conn.execute("SELECT key FROM verdicts LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path} is not a verdict cache: {e}") from e

    def get(self, key: str, criterion_id: str) -> Verdict | None:
        """The cached verdict for ``key`` (marked ``cached=True``), or None."""
        with self._lock:
            row = self._conn.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        v = Verdict.from_json(criterion_id, json.loads(row[0]))
        v.cached = True
        return v

    def put(self, key: str, verdict: Verdict) -> bool:
        """Store a graded verdict; ungraded ones are refused. Returns whether it was stored."""
        if verdict.ungraded or self.readonly:
            return False
        blob = json.dumps(verdict.to_json(), ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO verdicts (key, verdict, judge, created) VALUES (?, ?, ?, ?)",
                (key, blob, verdict.judge, time.time()),
            )
            self._conn.commit()
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def request_key(
    judge: str,
    templates: TemplateSet,
    request: GradingRequest,
    criterion: Criterion,
    namespace: str = "",
) -> str:
    """Cache key of ``criterion`` within ``request`` for a judge using ``templates``.

    In holistic mode the key covers all criteria of ``request`` (the score depends on all of them).
    """
    mode = templates.mode
    context = list(request.criteria) if mode == "holistic" else None
    return verdict_key(
        judge,
        templates.for_criterion(criterion).hash,
        mode,
        request.conversation,
        request.response,
        criterion,
        context,
        namespace,
    )
