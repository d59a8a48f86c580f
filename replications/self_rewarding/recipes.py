"""The self-rewarding NeMo RL cluster recipe (``replications/self_rewarding/nemo_rl/<recipe>.yaml``).

The policy's own vLLM engine grades its rollouts (``judge="policy"``: its HTTP server is exposed), so no judge job
runs beside it. Hyperparameters come from the experiment config at ``scale=paper``.
"""

from __future__ import annotations

from rubricrl.cluster.nemo_rl import Recipe

_B32 = (
    "Paper B's public 32B script (4x8 colocated, TP4 PP2); NeMo RL's performance recipe "
    "grpo-qwen3-32b-4n8g.yaml uses TP4 PP4: we keep the paper's layout (DP 4 instead of 2), which the "
    "memory estimate fits"
)

RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "grpo-qwen3-32b-4n8g-self-reward",
        "self_rewarding",
        "rl",
        4,
        8,
        tp=4,
        pp=2,
        cp=1,
        ep=1,
        etp=1,
        sequence_parallel=True,
        gen_tp=4,
        gen_ep=1,
        async_engine=True,
        gpu_memory_utilization=0.6,
        sequence_packing=True,
        max_prompt_tokens=2048,
        judge="policy",
        basis=_B32,
    ),
)
