"""Prompts in, units of generation out: one unit per prompt (``instance``) or per task id (``task``).

A prompts JSONL line is one of our prompt records: HealthBench's (``prompt_id``, ``prompt`` as messages,
``ideal_completions_data.ideal_completion``), Rubicon's (``id``, ``prompt`` as text, ``category``,
``task_id``), or any object with an id (``prompt_id`` or ``id``) and ``prompt`` (a string or
``{role, content}`` messages). A reference answer is read from ``reference``, ``reference_answer``,
``ideal_completion`` or HealthBench's ``ideal_completions_data``.

Shards (:func:`shard_of`) are by a hash of the unit id, so a unit stays in its shard when the prompts
file grows, and a task's prompts are never split between shards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import iter_jsonl

Message = dict[str, str]
_REFERENCE_KEYS = ("reference", "reference_answer", "ideal_completion")


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of the input file."""

    id: str
    messages: list[Message]
    reference: str = ""
    task_id: str = ""
    category: str = ""
    line: int = 0


@dataclass
class Unit:
    """What one rubric is generated for: its id (prompt id or task id) and its prompts."""

    id: str
    prompts: list[PromptRecord] = field(default_factory=list)

    @property
    def category(self) -> str:
        return next((p.category for p in self.prompts if p.category), "")

    @property
    def reference(self) -> str:
        return "\n\n".join(p.reference for p in self.prompts if p.reference)


def _reference(obj: dict[str, Any]) -> str:
    for key in _REFERENCE_KEYS:
        v = obj.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
    ideal = obj.get("ideal_completions_data")
    if isinstance(ideal, dict) and isinstance(ideal.get("ideal_completion"), str):
        return ideal["ideal_completion"].strip()
    return ""


def _messages(prompt: Any) -> list[Message] | None:
    if isinstance(prompt, str) and prompt.strip():
        return [{"role": "user", "content": prompt.strip()}]
    if (
        isinstance(prompt, list)
        and prompt
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
        )
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    return None


def load_prompt_records(path: str | Path, task_key: str = "task_id", need_task: bool = False) -> list[PromptRecord]:
    """Read a prompts JSONL; every bad line is reported as ``path:line: what is wrong``.

    Raises:
        Problems: bad lines (not JSON, no id, no prompt, duplicate id, missing task id when ``need_task``).
        UserError: the file is missing, unreadable or holds no prompt.
    """
    p = Path(path)
    out: list[PromptRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, obj, bad in iter_jsonl(p):
        where = f"{p}:{lineno}"
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object with an id and a prompt")
            continue
        pid = obj.get("prompt_id", obj.get("id"))
        if isinstance(pid, bool) or not isinstance(pid, (str, int)) or str(pid).strip() == "":
            problems.append(f"{where}: needs 'prompt_id' (or 'id'), a string or integer")
            continue
        pid = str(pid)
        messages = _messages(obj.get("prompt"))
        if messages is None:
            problems.append(f"{where}: 'prompt' must be a non-empty string or a list of {{role, content}} messages")
            continue
        if pid in seen:
            problems.append(f"{where}: duplicate id {pid!r} (first on line {seen[pid]})")
            continue
        task = obj.get(task_key)
        if need_task and (isinstance(task, bool) or not isinstance(task, (str, int)) or str(task).strip() == ""):
            problems.append(
                f"{where}: granularity 'task' needs a task id in {task_key!r} (set task_key to the field that has it)"
            )
            continue
        seen[pid] = lineno
        category = obj.get("category") if isinstance(obj.get("category"), str) else ""
        out.append(
            PromptRecord(pid, messages, _reference(obj), str(task) if task is not None else "", category, lineno)
        )
    if problems:
        raise Problems(problems)
    if not out:
        raise UserError("no prompts", path=str(p))
    return out


def make_units(records: list[PromptRecord], granularity: str) -> list[Unit]:
    """Units in file order: one per prompt, or one per task id (first appearance) holding its prompts."""
    if granularity == "instance":
        return [Unit(r.id, [r]) for r in records]
    groups: dict[str, Unit] = {}
    for r in records:
        groups.setdefault(r.task_id, Unit(r.task_id)).prompts.append(r)
    return list(groups.values())


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``.

    Raises:
        UserError: not of that form.
    """
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard expects I/N (e.g. 0/8), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec}: need 0 <= I < N")
    return i, n


def shard_of(unit_id: str, shards: int) -> int:
    """The shard a unit belongs to (stable: a hash of its id)."""
    digest = hashlib.sha256(unit_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards
