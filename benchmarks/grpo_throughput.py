"""GRPO training throughput of the TRL path: seconds per step, generated tokens/s, samples/s, peak memory.

Runs the Rubicon pipeline's ``data``, ``filter`` and ``stage1_rl`` stages in this process with the
given overrides (by default the ``single_gpu`` scale with ``random-qwen3-0.6b``, Qwen3-0.6B's
architecture with random weights, so it runs where no model hub is reachable; HF generation, since
``use_vllm`` needs the vllm package), then reads TRL's per-step log and prints the figures with the
command, the machine and the settings they came from. The first step (compilation, allocator warm-up)
is reported separately and left out of the steady-state figures.

    python benchmarks/grpo_throughput.py --steps 3                     # on a GPU
    python benchmarks/grpo_throughput.py --steps 2 scale=tiny policy.name=tiny-qwen3   # CPU smoke

Random weights rarely emit end-of-turn, so completions run to ``max_completion_length``: the token
figures are for full-length generations (a trained model stops earlier and steps are shorter).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

DEFAULTS = [
    "scale=single_gpu",
    "policy.name=random-qwen3-0.6b",
    "grpo.use_vllm=false",
    "rubicon.filter.enabled=false",
    "wandb.mode=disabled",
]


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} x{torch.get_num_threads()} threads, torch {torch.__version__}"


def summarize(log_history: Path, cfg: dict) -> dict:
    """Per-step figures from TRL's log (``step_time``, ``num_tokens``, ``completions/mean_length``)."""
    rows = [json.loads(x) for x in log_history.read_text().splitlines() if x.strip()]
    steps = [r for r in rows if "step_time" in r]
    if not steps:
        raise SystemExit(f"{log_history}: no step with step_time; did training run?")
    g = cfg["grpo"]
    per_step = g["per_device_train_batch_size"] * g["gradient_accumulation_steps"]
    out = {"steps": len(steps), "completions_per_step": per_step, "first_step_s": round(steps[0]["step_time"], 2)}
    steady = steps[1:] or steps
    times = [s["step_time"] for s in steady]
    gen = [s["completions/mean_length"] * per_step for s in steady]
    prev = [s["num_tokens"] for s in steps]
    processed = [b - a for a, b in zip(prev, prev[1:])] or [prev[0]]
    out.update(
        steady_steps=len(steady),
        step_s_median=round(statistics.median(times), 2),
        completion_len_mean=round(statistics.mean(s["completions/mean_length"] for s in steady), 1),
        generated_tokens_per_s=round(sum(gen) / sum(times), 1),
        processed_tokens_per_s=round(sum(processed) / sum(times), 1),
        completions_per_s=round(per_step * len(steady) / sum(times), 3),
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="GRPO steps (the first is reported apart)")
    ap.add_argument("--run-root", default="runs/bench", help="where the benchmark run is written")
    ap.add_argument("--name", default=f"grpo-throughput-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides after the defaults: " + " ".join(DEFAULTS))
    args = ap.parse_args()

    import torch

    from rubricrl.cli import main as cli

    overrides = DEFAULTS + [
        f"grpo.max_steps={args.steps}",
        f"run.root={args.run_root}",
        f"run.name={args.name}",
        *args.overrides,
    ]
    t0 = time.perf_counter()
    for stage in ("data", "filter", "stage1_rl"):
        rc = cli(["replicate", "rubicon", *overrides, "--stage", stage])
        if rc:
            print(f"stage {stage} failed with exit code {rc}", file=sys.stderr)
            return rc
    wall = time.perf_counter() - t0
    run = Path(args.run_root) / args.name
    import yaml

    cfg = yaml.safe_load((run / "stage1_rl" / "config.yaml").read_text())
    res = summarize(run / "stage1_rl" / "log_history.jsonl", cfg)
    if torch.cuda.is_available():
        res["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    g = cfg["grpo"]
    print("\n== GRPO throughput (TRL, rubric reward) ==")
    print(f"command : python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine : {machine()}")
    print(
        f"policy  : {cfg['policy']['name']} ({cfg['policy']['dtype']}), use_vllm={g['use_vllm']}, "
        f"gradient_checkpointing={g['gradient_checkpointing']}"
    )
    print(
        f"batch   : {g['per_device_train_batch_size']} x {g['gradient_accumulation_steps']} accumulation = "
        f"{res['completions_per_step']} completions/step ({g['num_generations']} per prompt), "
        f"max_completion_length {g['max_completion_length']}"
    )
    for k, v in res.items():
        print(f"{k:24s}: {v}")
    print(f"{'wall_s (3 stages)':24s}: {wall:.1f}")
    print(json.dumps({"config": {"policy": cfg["policy"]["name"], "grpo": g}, "results": res}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
