"""Rubicon's NeMo RL cluster recipes (``nemo_rl/<recipe>.yaml`` here, written by ``rubricrl regenerate``).

A recipe is the cluster-specific part of a generated NeMo RL config (:class:`rubricrl.cluster.nemo_rl.Recipe`):
nodes, Megatron / vLLM layout, packing, prompt budget. Hyperparameters come from the experiment config at
``scale=paper``. Stage 1 grades with the programmatic verifiers; stage 2 with the judge server job.
"""

from __future__ import annotations

from rubricrl.cluster.nemo_rl import Recipe

_8N = "NeMo RL v0.7.0 examples/configs/grpo_math_qwen30ba3b_megatron.yaml (8x8, TP2 EP8, vLLM TP4)"
_4N = "NeMo RL v0.7.0 examples/configs/recipes/llm/performance/grpo-qwen3-30ba3b-4n8g.yaml (4x8, TP1 EP8, vLLM TP2)"


# What differs between the two published layouts; the rest (below) is shared.
_LAYOUTS: dict[int, dict] = {
    8: {
        "tp": 2,
        "sequence_parallel": True,
        "gen_tp": 4,
        "gpu_memory_utilization": 0.7,
        "sequence_packing": False,
        "basis": _8N,
    },
    4: {
        "tp": 1,
        "sequence_parallel": False,
        "gen_tp": 2,
        "gpu_memory_utilization": 0.6,
        "sequence_packing": True,
        "basis": _4N,
        "moe_grouped_gemm": True,
    },
}


def _recipe(n: int, stage: str) -> Recipe:
    """The ``n``-node recipe of RL stage ``stage`` (stage 1 grades with the verifiers, stage 2 with the judge job)."""
    suffix = "stage1" if stage == "stage1_rl" else "stage2"
    return Recipe(
        f"grpo-qwen3-30ba3b-{n}n8g-megatron-{suffix}",
        "rubicon",
        stage,
        n,
        8,
        pp=1,
        cp=1,
        ep=8,
        etp=1,
        gen_ep=1,
        async_engine=False,
        max_prompt_tokens=2048,
        judge="programmatic" if stage == "stage1_rl" else "server",
        **_LAYOUTS[n],
    )


RECIPES: tuple[Recipe, ...] = (
    _recipe(8, "stage1_rl"),
    _recipe(8, "stage2_rl"),
    _recipe(4, "stage1_rl"),
    _recipe(4, "stage2_rl"),
)
