"""The Rubicon pipeline's stage list (``rubricrl replicate rubicon``).

Stages: data -> filter -> stage1_rl -> hacking -> stage2_rl -> eval -> report.
"""

from __future__ import annotations

from typing import Any

from rubricrl.errors import UserError
from rubricrl.train.stages import Stage, StageContext


def _todo(ctx: StageContext) -> dict[str, Any]:
    raise UserError(f"stage {ctx.stage.name} is not implemented yet")


def stages(cfg: Any) -> list[Stage]:
    """Rubicon stages in order."""
    return [
        Stage("data", _todo, (), "build stage-1/stage-2 prompt sets and the held-out split"),
        Stage("filter", _todo, ("data",), "sample k responses per prompt, keep the central quantile band"),
        Stage("stage1_rl", _todo, ("filter",), "GRPO on instruction-following constraints"),
        Stage("hacking", _todo, ("stage1_rl",), "mine high-reward rollouts for hacking patterns"),
        Stage("stage2_rl", _todo, ("data", "stage1_rl", "hacking"), "GRPO on stage-2 rubrics with the defense veto"),
        Stage("eval", _todo, ("data", "stage1_rl", "stage2_rl"), "held-out evaluation before / after each stage"),
        Stage("report", _todo, ("data", "filter", "stage1_rl", "hacking", "stage2_rl", "eval"), "markdown + PNG report"),
    ]
