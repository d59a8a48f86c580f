"""Merge the shards of a Slurm array run (``--shard i/n``) into one rubric file with its side files.

Each shard wrote ``rubrics.shard<i>.jsonl`` and its ``.gates`` / ``.failures`` / ``.summary`` files
(:func:`rubricrl.rubrics.generate.run.side_paths`). :func:`merge_shards` concatenates the three JSONL files of
every shard in shard order into new files (refusing to overwrite any), checks that no rubric id appears
twice, validates the merged rubrics like ``rubricrl validate``, and writes a merged summary whose token
counts are the shards' sums.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import write_atomic
from rubricrl.rubrics.generate.summary import TOKEN_PARTS, histogram, markdown, side_paths
from rubricrl.rubrics.loader import validate_paths


def merge_shards(shard_outs: list[Path], out: Path) -> dict[str, Any]:
    """Merge shard outputs into ``out`` (see the module docstring); returns the merged summary.

    Raises:
        UserError: a shard file or summary is missing, an output exists, or ids repeat / rubrics are invalid.
    """
    if not shard_outs:
        raise UserError("no shard outputs to merge")
    targets = {"rubrics": out, **side_paths(out)}
    for p in targets.values():
        if p.exists():
            raise UserError("already exists; not overwritten (choose another --out)", path=str(p))
    summaries = []
    for s in shard_outs:
        sp = side_paths(s)["summary_json"]
        if not s.exists() or not sp.exists():
            raise UserError(f"shard output or its summary {sp.name} is missing (did the shard finish?)", path=str(s))
        summaries.append(json.loads(sp.read_text(encoding="utf-8")))
    merged: dict[str, list[str]] = {"rubrics": [], "gates": [], "failures": []}
    seen: dict[str, Path] = {}
    problems = []
    for s in shard_outs:
        sides = side_paths(s)
        for key, path in (("rubrics", s), ("gates", sides["gates"]), ("failures", sides["failures"])):
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").split("\n"):
                if not line.strip():
                    continue
                merged[key].append(line + "\n")
                if key == "rubrics":
                    rid = json.loads(line)["id"]
                    if rid in seen:
                        problems.append(f"{s}: rubric id {rid!r} also in {seen[rid]} (were the shards of one run?)")
                    seen[rid] = s
    if problems:
        raise Problems(problems)
    write_atomic(out, merged["rubrics"])
    _, bad = validate_paths([out]) if merged["rubrics"] else (None, [])
    if bad:
        out.unlink()
        raise Problems(bad)
    write_atomic(targets["gates"], merged["gates"])
    write_atomic(targets["failures"], merged["failures"])
    total: dict[str, Any] = dict(summaries[0])
    total["output"] = str(out)
    for key in ("units", "kept", "failed", "pending"):
        total[key] = sum(int(s.get(key, 0)) for s in summaries)
    for key in ("dropped", "failed_by_last_reason", "criteria"):
        acc: dict[str, int] = {}
        for s in summaries:
            for k, v in (s.get(key) or {}).items():
                acc[k] = acc.get(k, 0) + int(v)
        total[key] = acc
    total["discrimination_std"] = {k: v for s in summaries for k, v in (s.get("discrimination_std") or {}).items()}
    tokens: dict[str, Any] = {"units": sum(int((s.get("tokens") or {}).get("units", 0)) for s in summaries)}
    per: dict[str, float] = {}
    for part in TOKEN_PARTS:
        parts = [(s.get("tokens") or {}).get(part) for s in summaries]
        parts = [p for p in parts if p]
        tokens[part] = (
            {k: sum(int(p.get(k, 0)) for p in parts) for k in ("calls", "prompt_tokens", "completion_tokens")}
            if parts
            else None
        )
        if tokens[part] and tokens["units"]:
            per[f"{part}_prompt_tokens"] = round(tokens[part]["prompt_tokens"] / tokens["units"], 1)
            per[f"{part}_completion_tokens"] = round(tokens[part]["completion_tokens"] / tokens["units"], 1)
    tokens["per_rubric"] = per
    total["tokens"] = tokens
    total["shards"] = [str(s) for s in shard_outs]
    write_atomic(targets["summary_json"], [json.dumps(total, indent=1, ensure_ascii=False) + "\n"])
    write_atomic(targets["summary_md"], [markdown(total)])
    histogram(total, targets["histogram"], set(seen))
    return total
