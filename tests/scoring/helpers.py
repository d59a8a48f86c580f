"""Builders for small graded HealthBench records used by the scoring and CLI tests."""

from __future__ import annotations

from typing import Any

from rubricrl.scoring.graded import GradedRecord


def example(prompt_id: str, items: list[tuple[float, list[str]]], example_tags: list[str]) -> dict[str, Any]:
    """A published-format example with the given (points, tags) rubric items."""
    return {
        "prompt": [{"role": "user", "content": f"question {prompt_id}"}],
        "rubrics": [
            {"criterion": f"item {i} of {prompt_id}", "points": p, "tags": t} for i, (p, t) in enumerate(items)
        ],
        "example_tags": example_tags,
        "prompt_id": prompt_id,
        "ideal_completions_data": None,
    }


def graded(
    prompt_id: str, items: list[tuple[float, list[str], bool | None]], example_tags: list[str]
) -> dict[str, Any]:
    """A graded line: the example plus a response and one grade per item (None = ungraded)."""
    ex = example(prompt_id, [(p, t) for p, t, _ in items], example_tags)
    ex["response"] = f"answer to {prompt_id}"
    ex["grades"] = [{"criteria_met": m, "explanation": "x"} for _, _, m in items]
    return ex


def record(
    prompt_id: str, items: list[tuple[float, list[str], bool | None]], example_tags: list[str] = ()
) -> GradedRecord:
    return GradedRecord(graded(prompt_id, items, list(example_tags)))


def three_examples() -> list[dict[str, Any]]:
    """The hand-computed 3-example case (expected metrics in test_healthbench_score.py)."""
    acc, comp, ex, cl = "axis:accuracy", "axis:completeness", "level:example", "level:cluster"
    return [
        graded(
            "A",
            [(5, [acc, ex], True), (5, [comp, ex], False), (-2, [acc, ex], True)],
            ["theme:t1", "physician_agreed_category:x"],
        ),
        graded("B", [(10, [acc, cl, "cluster:c1"], True), (-5, [comp, ex], True)], ["theme:t1"]),
        graded("C", [(4, [acc, ex], True), (4, [comp, ex], True), (-10, [acc, ex], True)], ["theme:t2"]),
    ]
