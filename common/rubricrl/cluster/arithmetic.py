"""Arithmetic checks of a NeMo RL GRPO config, run on CPU before anyone spends GPU hours.

Every rule below is one NeMo RL v0.7.0, Megatron-core or vLLM enforces at start-up (or one whose
violation silently wastes the run); the source is named beside each check.

=====================  =====================================================================================
training world         world % (TP*PP*CP) == 0, DP = world/(TP*PP*CP)  (nemo_rl/models/policy/lm_policy.py)
expert grid            world % (ETP*EP*PP) == 0 (megatron/core/parallel_state.py); experts % EP == 0
layers / heads         layers % PP == 0; attention heads and KV heads % TP == 0 (Megatron GQA split)
sequence padding       make_sequence_length_divisible_by % (TP if SP) * (2*CP if CP>1)  (megatron/data.py)
generation grid        world % (gTP*gPP) == 0; gEP>1 needs gEP % gTP == 0 and, when gEP != gTP, a sync
                       engine; gPP>1 needs the async engine  (nemo_rl/models/generation/vllm/vllm_generation.py)
batches                rollouts = prompts x generations; rollouts % GBS == 0 (the remainder is dropped);
                       GBS % DP == 0; (GBS/DP) % MBS == 0; force_on_policy_ratio needs GBS == rollouts
TP >= 4                train_micro_batch_size == logprob_batch_size unless force_on_policy_ratio
                       (lm_policy.py batch-variance check)
self-rewarding judge   the policy's HTTP server needs async_engine + expose_http_server, and it rejects
                       requests whose temperature/top_p differ from the rollout's or that set top_k
                       (vllm_worker_async.py create_chat_completion)
memory                 per-GPU estimate (rubricrl.cluster.memory) <= (1 - headroom) x GPU memory; the vLLM
                       KV cache holds at least one max-length sequence
=====================  =====================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rubricrl.cluster.memory import GIB, ModelSpec, estimate_memory, model_spec
from rubricrl.config_io import read_text
from rubricrl.errors import UserError

_MISSING = object()


def _get(cfg: dict[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if default is _MISSING:
                raise KeyError(dotted)
            return default
        cur = cur[part]
    return cur


@dataclass(frozen=True)
class Layout:
    """The numbers of a NeMo RL GRPO config that the checks and estimates need."""

    model: str
    world: int
    gpus_per_node: int
    tp: int
    pp: int
    cp: int
    ep: int
    etp: int
    sequence_parallel: bool
    seq_divisible_by: int
    gen_tp: int
    gen_pp: int
    gen_ep: int
    async_engine: bool
    expose_http_server: bool
    colocated: bool
    gpu_memory_utilization: float
    prompts: int
    generations: int
    global_batch: int
    micro_batch: int
    logprob_batch: int
    max_seq_len: int
    force_on_policy_ratio: bool
    temperature: float
    top_p: float
    judge_is_policy: bool = False
    judge_sampling: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_nemo_config(cls, cfg: dict[str, Any]) -> Layout:
        """Read a (generated) NeMo RL config. Every key used must be stated in the file.

        Raises:
            UserError: a key is missing.
        """
        m = "policy.megatron_cfg."
        v = "policy.generation.vllm_cfg."
        try:
            judge = _get(cfg, "env.rubric", {}) or {}
            return cls(
                model=str(_get(cfg, "rubricrl.base_model", None) or _get(cfg, "policy.model_name")),
                world=int(_get(cfg, "cluster.num_nodes")) * int(_get(cfg, "cluster.gpus_per_node")),
                gpus_per_node=int(_get(cfg, "cluster.gpus_per_node")),
                tp=int(_get(cfg, m + "tensor_model_parallel_size")),
                pp=int(_get(cfg, m + "pipeline_model_parallel_size")),
                cp=int(_get(cfg, m + "context_parallel_size")),
                ep=int(_get(cfg, m + "expert_model_parallel_size")),
                etp=int(_get(cfg, m + "expert_tensor_parallel_size")),
                sequence_parallel=bool(_get(cfg, m + "sequence_parallel")),
                seq_divisible_by=int(_get(cfg, "policy.make_sequence_length_divisible_by")),
                gen_tp=int(_get(cfg, v + "tensor_parallel_size")),
                gen_pp=int(_get(cfg, v + "pipeline_parallel_size")),
                gen_ep=int(_get(cfg, v + "expert_parallel_size")),
                async_engine=bool(_get(cfg, v + "async_engine")),
                expose_http_server=bool(_get(cfg, v + "expose_http_server", False)),
                colocated=bool(_get(cfg, "policy.generation.colocated.enabled")),
                gpu_memory_utilization=float(_get(cfg, v + "gpu_memory_utilization")),
                prompts=int(_get(cfg, "grpo.num_prompts_per_step")),
                generations=int(_get(cfg, "grpo.num_generations_per_prompt")),
                global_batch=int(_get(cfg, "policy.train_global_batch_size")),
                micro_batch=int(_get(cfg, "policy.train_micro_batch_size")),
                logprob_batch=int(_get(cfg, "policy.logprob_batch_size")),
                max_seq_len=int(_get(cfg, "policy.max_total_sequence_length")),
                force_on_policy_ratio=bool(_get(cfg, "loss_fn.force_on_policy_ratio")),
                temperature=float(_get(cfg, "policy.generation.temperature")),
                top_p=float(_get(cfg, "policy.generation.top_p")),
                judge_is_policy=bool(judge.get("judge_is_policy", False)),
                judge_sampling=dict((judge.get("judge") or {}).get("sampling") or {}),
            )
        except KeyError as e:
            raise UserError(
                f"NeMo RL config lacks {e.args[0]!r}; generated configs state every key the "
                "arithmetic check reads (regenerate with `rubricrl regenerate`)"
            ) from None

    @property
    def dp(self) -> int:
        return self.world // (self.tp * self.pp * self.cp)

    @property
    def rollouts(self) -> int:
        return self.prompts * self.generations

    @property
    def micro_batch_tokens(self) -> int:
        return self.max_seq_len * self.micro_batch

    @property
    def micro_batches_per_rank(self) -> int:
        return max(self.global_batch // max(self.dp, 1) // self.micro_batch, 1)


@dataclass(frozen=True)
class Check:
    """One rule and whether the config satisfies it."""

    name: str
    ok: bool
    detail: str


def _divides(name: str, num: int, den: int, what: str) -> Check:
    ok = den > 0 and num % den == 0
    return Check(name, ok, f"{what}: {num} % {den} = {num % den if den else 'n/a'}")


def check_layout(
    p: Layout, spec: ModelSpec | None = None, gpu_memory_gib: float = 80.0, headroom: float = 0.10
) -> list[Check]:
    """Every check of the module table, in order. ``spec`` defaults to the known model of ``p.model``."""
    spec = spec or model_spec(p.model)
    out: list[Check] = []
    mp = p.tp * p.pp * p.cp
    out.append(
        _divides(
            "world = TP*PP*CP*DP",
            p.world,
            mp,
            f"world {p.world} over TP{p.tp}*PP{p.pp}*CP{p.cp}={mp} -> DP {p.world / mp:g}",
        )
    )
    out.append(_divides("layers % PP", spec.num_hidden_layers, p.pp, "layers over PP"))
    out.append(_divides("heads % TP", spec.num_attention_heads, p.tp, "attention heads over TP"))
    out.append(_divides("KV heads % TP", spec.num_key_value_heads, p.tp, "KV heads (query groups) over TP"))
    if spec.is_moe:
        out.append(_divides("experts % EP", spec.num_experts, p.ep, "experts over EP"))
        egrid = p.etp * p.ep * p.pp
        out.append(_divides("world % (ETP*EP*PP)", p.world, egrid, f"expert grid ETP{p.etp}*EP{p.ep}*PP{p.pp}"))
        out.append(_divides("generation experts % gEP", spec.num_experts, max(p.gen_ep, 1), "experts over vLLM EP"))
    else:
        out.append(Check("EP = 1 for a dense model", p.ep == 1 and p.gen_ep == 1, f"EP {p.ep}, vLLM EP {p.gen_ep}"))
    pad = (p.tp if p.sequence_parallel and p.tp > 1 else 1) * (2 * p.cp if p.cp > 1 else 1)
    out.append(
        _divides("sequence padding", p.seq_divisible_by, pad, "make_sequence_length_divisible_by over TP(with SP)*2CP")
    )
    gmp = p.gen_tp * p.gen_pp
    out.append(_divides("generation world % (gTP*gPP)", p.world, gmp, f"vLLM TP{p.gen_tp}*PP{p.gen_pp}"))
    out.append(_divides("heads % gTP", spec.num_attention_heads, p.gen_tp, "attention heads over vLLM TP"))
    if p.gen_ep > 1:
        out.append(_divides("gEP multiple of gTP", p.gen_ep, p.gen_tp, "vLLM EP = DP*TP"))
        if p.gen_ep != p.gen_tp:
            out.append(
                Check(
                    "gEP != gTP needs the sync engine",
                    not p.async_engine,
                    f"async_engine={p.async_engine} with vLLM EP {p.gen_ep} != TP {p.gen_tp}",
                )
            )
    if p.gen_pp > 1:
        out.append(Check("gPP > 1 needs the async engine", p.async_engine, f"async_engine={p.async_engine}"))
    out.append(
        Check(
            "rollouts >= GBS",
            p.rollouts >= p.global_batch,
            f"{p.prompts} prompts x {p.generations} = {p.rollouts} rollouts, GBS {p.global_batch}",
        )
    )
    out.append(
        _divides(
            "rollouts % GBS",
            p.rollouts,
            p.global_batch,
            f"rollouts per step over GBS ({p.rollouts // max(p.global_batch, 1)} optimizer steps per GRPO step)",
        )
    )
    out.append(_divides("rollouts % DP", p.rollouts, max(p.dp, 1), "rollouts over DP"))
    out.append(_divides("GBS % DP", p.global_batch, max(p.dp, 1), "GBS over DP"))
    local = p.global_batch // max(p.dp, 1)
    out.append(_divides("(GBS/DP) % MBS", local, p.micro_batch, "per-rank batch over micro batch"))
    if p.force_on_policy_ratio:
        out.append(
            Check(
                "force_on_policy_ratio: GBS == rollouts",
                p.global_batch == p.rollouts,
                f"GBS {p.global_batch}, rollouts {p.rollouts}",
            )
        )
    if p.tp >= 4 and not p.force_on_policy_ratio:
        out.append(
            Check(
                "TP>=4: MBS == logprob batch",
                p.micro_batch == p.logprob_batch,
                f"train_micro_batch_size {p.micro_batch}, logprob_batch_size {p.logprob_batch}",
            )
        )
    out.append(
        Check(
            "sequence length <= model context",
            p.max_seq_len <= spec.max_position_embeddings,
            f"{p.max_seq_len} <= {spec.max_position_embeddings}",
        )
    )
    if p.judge_is_policy:
        out.append(
            Check(
                "policy judge: HTTP server on",
                p.async_engine and p.expose_http_server,
                f"async_engine={p.async_engine}, expose_http_server={p.expose_http_server}",
            )
        )
        s = p.judge_sampling
        same = (
            float(s.get("temperature", -1)) == p.temperature
            and float(s.get("top_p", -1)) == p.top_p
            and s.get("top_k") in (None, -1)
        )
        out.append(
            Check(
                "policy judge: sampling = rollout sampling",
                same,
                f"judge {s} vs rollout temperature {p.temperature}, top_p {p.top_p}, top_k unset",
            )
        )
    mem = estimate_memory(spec, p, gpu_memory_gib)
    limit = (1 - headroom) * gpu_memory_gib * GIB
    g = mem.as_gib()
    out.append(
        Check(
            f"train memory <= {1 - headroom:.0%} of {gpu_memory_gib:g} GiB",
            mem.train_total <= limit,
            f"{g['train_total']} GiB (weights {g['weights']}, grads {g['gradients']}, optimizer "
            f"{g['optimizer']}, activations {g['activations']}, logits {g['logits']}, runtime "
            f"{g['runtime']})",
        )
    )
    out.append(
        Check(
            "vLLM KV cache holds a max-length sequence",
            mem.kv_sequences >= 1,
            f"budget {g['gen_budget']} GiB - weights {g['gen_weights']} - runtime = KV {g['kv_cache']} "
            f"GiB = {g['kv_sequences']} sequences of {p.max_seq_len} tokens per engine rank",
        )
    )
    return out


def check_nemo_config(cfg: dict[str, Any], gpu_memory_gib: float = 80.0, headroom: float = 0.10) -> list[Check]:
    """Checks of a NeMo RL config dict (see :meth:`Layout.from_nemo_config`)."""
    return check_layout(Layout.from_nemo_config(cfg), gpu_memory_gib=gpu_memory_gib, headroom=headroom)


def check_file(path: str | Path, gpu_memory_gib: float = 80.0, headroom: float = 0.10) -> list[Check]:
    """Checks of a NeMo RL YAML file.

    Raises:
        UserError: unreadable or not a mapping, or a key the checks need is missing.
    """
    try:
        cfg = yaml.safe_load(read_text(path))
    except yaml.YAMLError as e:
        raise UserError(f"invalid YAML: {e}", path=str(path)) from None
    if not isinstance(cfg, dict):
        raise UserError("expected a mapping at the top level", path=str(path))
    try:
        return check_nemo_config(cfg, gpu_memory_gib, headroom)
    except UserError as e:
        raise UserError(e.message, path=str(path)) from None


def failures(checks: list[Check]) -> list[Check]:
    """The checks that failed."""
    return [c for c in checks if not c.ok]
