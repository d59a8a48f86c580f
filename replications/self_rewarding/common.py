"""What the self-rewarding stages, evaluation and report share: fixed graders, agreement files, ungraded policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replications.self_rewarding.config import FixedGrader
from rubricrl.jsonl import read_jsonl
from rubricrl.judge import build_judge
from rubricrl.judge.live_policy import load_frozen_grader
from rubricrl.reward.scorer import agreement


def build_fixed_grader(spec: FixedGrader, name: str, device: str = "cpu", dtype: str = "float32") -> Any:
    """A fixed grader from its spec (the model of ``constrained`` is loaded frozen, in eval mode, on
    ``device`` in ``dtype``: the policy's, so a GPU run grades on the GPU)."""
    if spec.kind == "judge":
        assert spec.judge is not None
        return build_judge(spec.judge)
    from rubricrl.train.trl_adapter import policy_path

    return load_frozen_grader(policy_path(spec.model), spec, f"{name}:{spec.model}", device, dtype)


def read_agreement(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-step agreement rows (the last row of a step wins, after a resume) and the overall agreement."""
    if not path.is_file():
        return [], agreement([])
    by_step: dict[int, dict[str, Any]] = {}
    for row in read_jsonl(path):
        by_step[int(row["step"])] = row
    rows = [by_step[s] for s in sorted(by_step)]
    pairs = [(bool(s), bool(t)) for r in rows for s, t in r.get("pairs", [])]
    return rows, agreement(pairs)


def with_ungraded_policy(rubric: Any, policy: str) -> Any:
    """``rubric`` whose aggregation applies ``policy`` to ungraded verdicts (``self_rewarding.grader.ungraded``)."""
    params = dict(rubric.aggregation.params or {})
    if params.get("ungraded") == policy:
        return rubric
    params["ungraded"] = policy  # always set: a rubric without the key gets the scorer's own default
    return rubric.model_copy(update={"aggregation": rubric.aggregation.model_copy(update={"params": params})})
