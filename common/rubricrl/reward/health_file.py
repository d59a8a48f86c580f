"""``reward_health.json``: a stage's :class:`~rubricrl.reward.health.RewardHealth` summary on disk.

One writer and one reader for both engines (the TRL adapter and the NeMo RL environment), so a resumed
stage takes back exactly the steps it does not repeat.
"""

from __future__ import annotations

import json
from pathlib import Path

from rubricrl.jsonl import write_atomic
from rubricrl.reward.health import RewardHealth


def write_health(path: str | Path, health: RewardHealth) -> None:
    """``health.summary()`` to ``path``, atomically (fsync, mode kept)."""
    write_atomic(path, [json.dumps(health.summary(), indent=1, default=str) + "\n"])


def restore_health(path: str | Path, health: RewardHealth, done_steps: int | None) -> None:
    """After a resume past ``done_steps`` steps, take back their records from ``path`` (later steps are redone).

    Nothing happens without a resume (``None``), without the file, or when it cannot be read.
    """
    p = Path(path)
    if done_steps is None or not p.is_file():
        return
    try:
        rows = json.loads(p.read_text(encoding="utf-8")).get("steps", [])
    except (OSError, ValueError, AttributeError):
        return
    health.restore([r for r in rows if int(r.get("step", 0)) <= done_steps])
