"""``rubricrl nemo-config``: NeMo RL configs (generate, check, estimate) and the in-container driver.

    rubricrl nemo-config generate                 # write replications/*/nemo_rl/*.yaml from scale=paper
    rubricrl nemo-config check                    # drift + arithmetic + memory of every committed config
    rubricrl nemo-config check FILE.yaml          # arithmetic + memory of one NeMo RL config
    rubricrl nemo-config estimate FILE.yaml       # GPU-hours from NeMo RL's published throughput
    rubricrl nemo-config train FILE.yaml [k=v..]  # inside the NeMo RL container: register the rubric
                                                  # environment, then run NeMo RL's examples/run_grpo.py
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("nemo-config", help="NeMo RL configs: generate, check, estimate GPU-hours, train",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="write replications/*/nemo_rl/*.yaml from the experiment configs")
    g.add_argument("--paper", action="append", help="only this replication (repeatable)")
    g.add_argument("--root", type=Path, default=None, help="repository root (default: the current checkout)")
    c = sub.add_parser("check", help="drift, arithmetic and memory checks")
    c.add_argument("files", nargs="*", type=Path, help="NeMo RL YAMLs (default: every generated one, plus drift)")
    c.add_argument("--root", type=Path, default=None)
    c.add_argument("--gpu-memory-gib", type=float, default=80.0, help="memory of one GPU (default 80, H100)")
    c.add_argument("--headroom", type=float, default=0.10, help="fraction of GPU memory kept free (default 0.1)")
    c.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    e = sub.add_parser("estimate", help="GPU-hours of a config from NeMo RL's published throughput")
    e.add_argument("file", type=Path)
    e.add_argument("--steps", type=int, default=None, help="GRPO steps (default: grpo.max_num_steps)")
    e.add_argument("--judge-gpus", type=int, default=0, help="GPUs of a separate judge server job")
    t = sub.add_parser("train", help="run NeMo RL GRPO with the rubric environment (inside the container)")
    t.add_argument("file", type=Path)
    t.add_argument("overrides", nargs=argparse.REMAINDER, help="NeMo RL (Hydra) overrides, key=value")
    t.add_argument("--nemo-rl-root", type=Path, default=Path(os.environ.get("NEMO_RL_ROOT", "/opt/nemo-rl")),
                   help="NeMo RL checkout in the container (default $NEMO_RL_ROOT or /opt/nemo-rl)")
    return p


def _root(arg: Path | None) -> Path:
    from rubricrl.config import repo_root

    return arg or repo_root()


def run(args: argparse.Namespace) -> int:
    return {"generate": _generate, "check": _check, "estimate": _estimate, "train": _train}[args.action](args)


def _generate(args: argparse.Namespace) -> int:
    from rubricrl.cluster.nemo_rl import generate

    out = generate(_root(args.root), args.paper)
    if not out:
        raise UserError("no replication config found to generate from (replications/<paper>/configs/<paper>.yaml)")
    for path, text in out.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {path}")
    return 0


def drift(root: Path) -> list[str]:
    """Problems: committed configs that differ from regeneration, are missing, or have no recipe."""
    from rubricrl.cluster.nemo_rl import generate

    want = generate(root)
    problems = []
    for path, text in want.items():
        if not path.exists():
            problems.append(f"{path}: missing; run `rubricrl nemo-config generate`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what the experiment config generates now (drift); "
                            "run `rubricrl nemo-config generate` and review the diff")
    for path in sorted(Path(root).glob("replications/*/nemo_rl/*.yaml")):
        if path not in want:
            problems.append(f"{path}: no recipe generates this file (stale); delete it or add a recipe")
    return problems


def _check(args: argparse.Namespace) -> int:
    from rubricrl.cluster.arithmetic import check_file

    root = _root(args.root)
    problems: list[str] = []
    files = list(args.files)
    if not files:
        problems += drift(root)
        files = sorted(root.glob("replications/*/nemo_rl/*.yaml"))
        if not files:
            raise UserError("no generated configs under replications/*/nemo_rl/; run `rubricrl nemo-config generate`")
    for f in files:
        checks = check_file(f, args.gpu_memory_gib, args.headroom)
        bad = [c for c in checks if not c.ok]
        if not args.quiet:
            print(f"{f}: {len(checks) - len(bad)}/{len(checks)} checks pass")
            for c in checks:
                print(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        problems += [f"{f}: {c.name}: {c.detail}" for c in bad]
    if problems:
        raise Problems(problems)
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from rubricrl.cluster.throughput import estimate_gpu_hours

    hours, basis = estimate_gpu_hours(args.file, steps=args.steps, judge_gpus=args.judge_gpus)
    print(f"{args.file}: {hours:.0f} GPU-hours\n{basis}")
    return 0


# --------------------------------------------------------------------------- driver (in the container)


def _absolute_overrides(cfg: dict[str, Any]) -> list[str]:
    """Overrides making the rubric env's file paths absolute (Ray actors may start in another cwd)."""
    out = []
    rubric = (cfg.get("env") or {}).get("rubric") or {}
    for key, value in (("env.rubric.metrics_path", rubric.get("metrics_path")),
                       ("env.rubric.judge.base_url_file", (rubric.get("judge") or {}).get("base_url_file")),
                       ("data.train.data_path", ((cfg.get("data") or {}).get("train") or {}).get("data_path"))):
        if value and not Path(value).is_absolute():
            out.append(f"{key}={Path(value).resolve()}")
    return out


def _publish_policy_endpoints(path: Path, policy_generation: Any) -> None:
    from rubricrl.train.nemo_rl_env import write_endpoints

    urls = [u for u in getattr(policy_generation, "dp_openai_server_base_urls", None) or [] if u]
    if not urls:
        raise UserError("env.rubric.judge_is_policy needs the policy's HTTP server: set "
                        "policy.generation.vllm_cfg.async_engine=true and expose_http_server=true")
    write_endpoints(path, urls)
    print(f"rubricrl: policy grader endpoints ({len(urls)}) -> {path}", flush=True)


def run_grpo(config: Path, overrides: list[str] | None = None, nemo_rl_root: Path = Path("/opt/nemo-rl")) -> None:
    """Run NeMo RL's ``examples/run_grpo.py`` on a generated config with the rubric environment.

    Registers the ``rubric`` environment and ``rubricrl_rubric`` processor, makes the env's file paths
    absolute, and, for a self-rewarding config (``env.rubric.judge_is_policy``), writes the policy
    engine's OpenAI-compatible URLs to ``env.rubric.judge.base_url_file`` before the first step.

    Raises:
        UserError: NeMo RL is not at ``nemo_rl_root``; the policy exposes no HTTP server.
    """
    import yaml

    from rubricrl.config_io import read_text

    config = Path(config)
    cfg = yaml.safe_load(read_text(config))
    if not (Path(nemo_rl_root) / "examples" / "run_grpo.py").is_file():
        raise UserError(f"NeMo RL not found at {nemo_rl_root} (examples/run_grpo.py); run inside the "
                        "nvcr.io/nvidia/nemo-rl:v0.7.0 container or pass --nemo-rl-root")
    sys.path.insert(0, str(nemo_rl_root))
    from rubricrl.train.nemo_rl_env import register

    register()
    run_grpo_mod = importlib.import_module("examples.run_grpo")
    rubric = (cfg.get("env") or {}).get("rubric") or {}
    if rubric.get("judge_is_policy"):
        endpoint = Path((rubric.get("judge") or {}).get("base_url_file") or "").resolve()
        select = run_grpo_mod._select_trainer

        def _select(master_config: Any) -> Any:
            trainer = select(master_config)

            def _wrapped(policy: Any, policy_generation: Any, *a: Any, **k: Any) -> Any:
                _publish_policy_endpoints(endpoint, policy_generation)
                return trainer(policy, policy_generation, *a, **k)
            return _wrapped

        run_grpo_mod._select_trainer = _select
        grpo = importlib.import_module("nemo_rl.algorithms.grpo")
        async_train = grpo.async_grpo_train

        def _async(*a: Any, **k: Any) -> Any:
            _publish_policy_endpoints(endpoint, k.get("policy_generation", a[1] if len(a) > 1 else None))
            return async_train(*a, **k)

        grpo.async_grpo_train = _async
    extra = [o for o in (overrides or []) if o != "--"]
    sys.argv = ["run_grpo.py", "--config", str(config.resolve()), *_absolute_overrides(cfg), *extra]
    run_grpo_mod.main()


def _train(args: argparse.Namespace) -> int:
    run_grpo(args.file, args.overrides, args.nemo_rl_root)
    return 0
