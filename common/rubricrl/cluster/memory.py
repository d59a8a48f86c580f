"""Model dimensions (as data, with their source) and a per-GPU memory estimate for NeMo RL configs.

The estimate is a documented formula, not a measurement. It exists so that a config which cannot fit
on an 80 GB H100 fails on a laptop, before anyone spends GPU hours.

Training phase (Megatron, bf16 mixed precision, distributed optimizer)::

    dense params per GPU  Pd = (L/PP * dense_per_layer) / TP  + V*h/TP on an end stage (both if PP=1)
    expert params per GPU Pe = L/PP * (E/EP) * 3*h*f_moe / ETP
    DP  = world / (TP*PP*CP)            (data parallel size of the dense part)
    EDP = world / (ETP*EP*PP)           (data parallel size of the experts, Megatron's MoE folding)
    weights      = 2 B * (Pd + Pe)                          bf16 parameters
    gradients    = 2 B * (Pd + Pe)                          bf16 grads (grad_reduce_in_fp32: false)
    optimizer    = 12 B * (Pd/DP + Pe/EDP)                  fp32 master + Adam m + v, sharded over DP
    activations  = tokens/CP * h * (15 + 19*r)/TP * L/PP * inflight   bytes, Korthikanti et al. 2022
                   (34*s*b*h with 16-bit activations; flash attention removes the 5*a*s/h term; r = MLP
                   width relative to 4h, top-k experts for MoE). Without sequence parallelism the
                   norm/dropout part stays whole: h * (10 + (5 + 19*r)/TP) per token.
    logits       = tokens/CP * V * 4 B / TP                  fp32 logits of one micro batch
    runtime      = 3 GiB                                     CUDA context, NCCL and allocator slack
    inflight     = min(PP, micro batches per DP rank)        1F1B pipeline schedule

Generation phase (vLLM, colocated: Megatron state is offloaded while vLLM is awake)::

    vLLM budget  = gpu_memory_utilization * GPU memory
    weights      = 2 B * (dense/genTP + experts/genEP)      (experts/genTP without expert parallelism)
    KV per token = 2 (K,V) * L * max(kv_heads/genTP, 1) * head_dim * 2 B
    KV cache     = budget - weights - runtime; must hold one max-length sequence (vLLM refuses to start
                   otherwise); how many fit is reported.

Not counted: the reference model (NeMo RL only builds it when the KL penalty is > 0, and keeps it on
the CPU between uses), optimizer CPU offload, activation recomputation (all of these only lower the
estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class ModelSpec:
    """Architecture numbers of a Hugging Face checkpoint (its ``config.json``).

    Attributes:
        name: hub id.
        hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
        intermediate_size, vocab_size, tie_word_embeddings: as in ``config.json``.
        num_experts, num_experts_per_tok, moe_intermediate_size: MoE fields (0 for dense models).
        source: where the numbers come from.
    """

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def attention_params_per_layer(self) -> int:
        """q, k, v, o projections + q/k RMSNorm + the two layer norms (no biases in Qwen3)."""
        h, d = self.hidden_size, self.head_dim
        qo = 2 * h * self.num_attention_heads * d
        kv = 2 * h * self.num_key_value_heads * d
        return qo + kv + 2 * d + 2 * h

    @property
    def dense_params_per_layer(self) -> int:
        """Parameters of a layer that are not sharded by expert parallelism."""
        if self.is_moe:
            return self.attention_params_per_layer + self.hidden_size * self.num_experts  # + router
        return self.attention_params_per_layer + 3 * self.hidden_size * self.intermediate_size

    @property
    def expert_params_per_layer(self) -> int:
        """All routed experts of one layer (SwiGLU: gate, up, down)."""
        return self.num_experts * 3 * self.hidden_size * self.moe_intermediate_size if self.is_moe else 0

    @property
    def embedding_params(self) -> int:
        """Input embedding plus output head (one matrix when tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def total_params(self) -> int:
        L = self.num_hidden_layers
        return (
            L * (self.dense_params_per_layer + self.expert_params_per_layer) + self.embedding_params + self.hidden_size
        )

    @property
    def active_params(self) -> int:
        """Parameters used per token (top-k experts for MoE)."""
        if not self.is_moe:
            return self.total_params
        per_expert = 3 * self.hidden_size * self.moe_intermediate_size
        L = self.num_hidden_layers
        return L * (self.dense_params_per_layer + self.num_experts_per_tok * per_expert) + self.embedding_params

    @property
    def mlp_width_ratio(self) -> float:
        """MLP width per token relative to a 4h dense MLP (activation formula's ``r``)."""
        width = self.num_experts_per_tok * self.moe_intermediate_size if self.is_moe else self.intermediate_size
        return width / (4 * self.hidden_size)


_HF = (
    "https://huggingface.co/{}/blob/main/config.json; the hub is not reachable from this "
    "workspace, so the values were cross-checked against copies of that file quoted in several public "
    "repositories, and the derived totals match the model cards ({})"
)

MODEL_SPECS: dict[str, ModelSpec] = {
    "Qwen/Qwen3-30B-A3B": ModelSpec(
        name="Qwen/Qwen3-30B-A3B",
        hidden_size=2048,
        num_hidden_layers=48,
        num_attention_heads=32,
        num_key_value_heads=4,
        head_dim=128,
        intermediate_size=6144,
        vocab_size=151936,
        tie_word_embeddings=False,
        max_position_embeddings=40960,
        num_experts=128,
        num_experts_per_tok=8,
        moe_intermediate_size=768,
        source=_HF.format("Qwen/Qwen3-30B-A3B", "30.5B total, 3.3B activated"),
    ),
    "Qwen/Qwen3-32B": ModelSpec(
        name="Qwen/Qwen3-32B",
        hidden_size=5120,
        num_hidden_layers=64,
        num_attention_heads=64,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=25600,
        vocab_size=151936,
        tie_word_embeddings=False,
        max_position_embeddings=40960,
        source=_HF.format("Qwen/Qwen3-32B", "32.8B parameters"),
    ),
}


def model_spec(name: str) -> ModelSpec:
    """The spec of a known model (hub id, or a path whose last two parts are a known hub id).

    Raises:
        KeyError: unknown model (the message lists the known ones).
    """
    if name in MODEL_SPECS:
        return MODEL_SPECS[name]
    tail = "/".join(str(name).rstrip("/").split("/")[-2:])
    if tail in MODEL_SPECS:
        return MODEL_SPECS[tail]
    raise KeyError(
        f"no model dimensions for {name!r}; known: {', '.join(MODEL_SPECS)} "
        "(add its config.json numbers to rubricrl.cluster.memory.MODEL_SPECS)"
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes by component (training phase) and the generation-phase KV budget."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    runtime: float
    gen_weights: float
    gen_budget: float
    kv_bytes_per_token: float
    max_seq_len: int

    @property
    def train_total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits + self.runtime

    @property
    def kv_cache(self) -> float:
        return self.gen_budget - self.gen_weights - self.runtime

    @property
    def kv_sequences(self) -> float:
        """How many max-length sequences the KV cache of one vLLM engine rank holds."""
        return self.kv_cache / (self.kv_bytes_per_token * self.max_seq_len) if self.max_seq_len else 0.0

    def as_gib(self) -> dict[str, float]:
        keys = ("weights", "gradients", "optimizer", "activations", "logits", "runtime", "gen_weights", "gen_budget")
        out = {k: round(getattr(self, k) / GIB, 2) for k in keys}
        out.update(
            train_total=round(self.train_total / GIB, 2),
            kv_cache=round(self.kv_cache / GIB, 2),
            kv_sequences=round(self.kv_sequences, 1),
        )
        return out


def estimate_memory(spec: ModelSpec, p: Any, gpu_memory_gib: float = 80.0) -> MemoryEstimate:
    """Per-GPU memory of a parallel layout (the module docstring has the formula).

    Args:
        spec: model dimensions.
        p: a :class:`rubricrl.cluster.arithmetic.Layout` (world, tp, pp, cp, ep, etp, sequence_parallel,
            micro_batch_tokens, micro_batches_per_rank, gen_tp, gen_ep, gpu_memory_utilization,
            max_seq_len).
        gpu_memory_gib: memory of one GPU.
    """
    L, h, V = spec.num_hidden_layers, spec.hidden_size, spec.vocab_size
    layers = L / p.pp
    end_stage_embed = spec.embedding_params if p.pp == 1 else V * h
    dense = (layers * spec.dense_params_per_layer + end_stage_embed) / p.tp
    experts = layers * spec.expert_params_per_layer / (p.ep * p.etp)
    dp = p.world // (p.tp * p.pp * p.cp)
    edp = max(p.world // (p.etp * p.ep * p.pp), 1) if spec.is_moe else dp
    tokens = p.micro_batch_tokens / p.cp
    r = spec.mlp_width_ratio
    if p.sequence_parallel or p.tp == 1:
        per_layer = tokens * h * (15 + 19 * r) / p.tp
    else:  # layer norms and dropouts stay replicated across TP ranks
        per_layer = tokens * h * (10 + (5 + 19 * r) / p.tp)
    inflight = max(1, min(p.pp, p.micro_batches_per_rank))
    activations = per_layer * layers * inflight
    logits = tokens * V * 4 / p.tp
    runtime = 3 * GIB
    if spec.is_moe:
        gen_experts = L * spec.expert_params_per_layer / (p.gen_ep if p.gen_ep > 1 else p.gen_tp)
    else:
        gen_experts = 0.0
    gen_dense = (L * spec.dense_params_per_layer + spec.embedding_params) / p.gen_tp
    kv_heads = max(spec.num_key_value_heads / p.gen_tp, 1)
    return MemoryEstimate(
        weights=2 * (dense + experts),
        gradients=2 * (dense + experts),
        optimizer=12 * (dense / dp + experts / edp),
        activations=activations,
        logits=logits,
        runtime=runtime,
        gen_weights=2 * (gen_dense + gen_experts),
        gen_budget=p.gpu_memory_utilization * gpu_memory_gib * GIB,
        kv_bytes_per_token=2 * L * kv_heads * spec.head_dim * 2,
        max_seq_len=p.max_seq_len,
    )
