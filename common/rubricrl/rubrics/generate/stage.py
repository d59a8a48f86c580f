"""What a pipeline stage calls: generate instance rubrics for its rows and get them back as rubrics.

A training pipeline's prompt rows (``{"id", "prompt": messages or text, "category", ...}``, e.g. Rubicon's
stage-2 rows) are written once as the generation's prompts file; :func:`rubrics_for_rows` runs
:func:`~rubricrl.rubrics.generate.run.generate_rubrics` on it (resumable, like the CLI) and returns the kept
rubrics by row id (a generated instance rubric's id is its prompt's id), loaded through the same loader as
every rubric file. Rows whose rubric was dropped by a gate or failed keep whatever rubric the stage gave
them before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.jsonl import write_atomic
from rubricrl.rubrics.generate.config import GenerateConfig
from rubricrl.rubrics.generate.run import generate_rubrics
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import Rubric

PROMPT_KEYS = ("id", "prompt", "category", "task_id", "reference")


def write_prompts(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """The rows' prompt fields as a prompts JSONL; an existing file must hold exactly these prompts.

    Raises:
        UserError: ``path`` exists with other content (a resumed generation must see the same prompts).
    """
    text = "".join(
        json.dumps({k: r[k] for k in PROMPT_KEYS if k in r}, ensure_ascii=False, sort_keys=True) + "\n" for r in rows
    )
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            raise UserError(
                "exists with other prompts; not overwritten (a resumed generation needs the same)", path=str(path)
            )
        return path
    write_atomic(path, [text])
    return path


def rubrics_for_rows(
    rows: Sequence[dict[str, Any]], cfg: GenerateConfig, out: str | Path, **kwargs: Any
) -> tuple[dict[str, Rubric], dict[str, Any]]:
    """Generate (or resume) rubrics for ``rows`` into ``out``; returns ``(row id -> kept rubric, summary)``.

    Args:
        rows: prompt rows with ``id`` and ``prompt`` (and optionally ``category``, ``task_id``, ``reference``).
        cfg: the generation config.
        out: the rubric JSONL (``<stem>.prompts.jsonl`` is written beside it).
        kwargs: passed to :func:`~rubricrl.rubrics.generate.run.generate_rubrics` (``responses``, ``show_progress``...).
    """
    out = Path(out)
    prompts = write_prompts(rows, out.with_name(out.name.removesuffix(".jsonl") + ".prompts.jsonl"))
    summary = generate_rubrics(prompts, cfg, out, **kwargs)
    kept = load_rubrics(out) if out.exists() and out.stat().st_size else []
    return {r.id: r for r in kept}, summary
