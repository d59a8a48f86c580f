"""``make eval``: run lm-evaluation-harness on a paper's suite of tasks for one model.

    python -m rubricrl.report.eval_runner --model smollm2-135m-instruct --suite rubicon --limit 5

* Model: a checkpoint folder, or a rubricrl alias (``rubricrl.models.resolve_model``; the tiny models are
  built on first use). In-process ``hf`` on CPU by default; with ``--base-url`` the harness's
  ``local-chat-completions`` talks to an OpenAI-compatible server (e.g. vLLM serving the checkpoint).
* Suite: the paper's task groups in ``eval/tasks/paper_suites/`` (``rubicon`` = writing + reasoning +
  general, ``self_rewarding`` = HealthBench Hard + meta-eval), or ``--tasks`` to pick. Each task is loaded
  first, one by one; a task whose data cannot be had here (the harness's own tasks download from the
  Hugging Face hub, which an offline machine cannot reach) is skipped with its reason, unless ``--strict``.
* Judge: ``--judge`` > ``$RUBRICRL_EVAL_JUDGE`` > the tasks' default; passed to the tasks as metadata, so
  it is recorded in the results file (``configs.<task>.metadata.judge``).
* Output: lm-eval's own layout under ``runs/eval/<model>/<suite>/`` (``<model>/results_<date>.json`` and
  ``samples_*``), plus ``rubricrl_eval_<date>.json`` beside it: model alias, scale, device, judge, limit,
  skipped tasks. ``rubricrl report`` reads both.
* Resume: model answers go to lm-eval's response cache (``--cache``, default ``<out>/lm_cache``) as they
  arrive; after Ctrl-C the same command generates only what is missing (judging runs again).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from rubricrl.configs import config_path
from rubricrl.errors import UserError, run_guarded
from rubricrl.evaluation.judging import DEFAULT_JUDGE
from rubricrl.judge.config import load_judge_config
from rubricrl.judge.vllm_server import VLLMServer
from rubricrl.models import resolve_model
from rubricrl.papers import all_papers, help_list
from rubricrl.report.paper_tables import load_paper_tables
from rubricrl.report.results import describe_judge, sidecar_name

log = logging.getLogger("rubricrl.eval")

TINY_MODELS = ("smollm2-135m-instruct", "tiny-qwen3", "tiny-qwen3-moe")
JUDGE_ENV = "RUBRICRL_EVAL_JUDGE"


def repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "eval" / "tasks").is_dir():
            return parent
    raise UserError("make eval runs from a rubricrl checkout (eval/tasks not found)")


def suite_groups() -> dict[str, list[str]]:
    """Suite -> its lm-eval task groups: one suite per replication (its ``PAPER.eval_suite``)."""
    return {p.name: list(p.eval_suite) for p in all_papers()}


def suite_tasks(suite: str, tasks_dir: Path) -> list[str]:
    """The leaf tasks (or task groups such as ``ifscale``) of a suite, in order.

    Read from the suite group YAMLs in ``eval/tasks/paper_suites``; where one is missing, from the paper
    tables' column mapping (first candidate task of every mapped column).
    """
    groups = suite_groups()
    if suite not in groups:
        raise UserError(f"unknown suite {suite!r}; choose one of: {', '.join(groups)}")
    out: list[str] = []
    for group in groups[suite]:
        path = tasks_dir / "paper_suites" / f"{group}.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            members = data.get("task") or []
            out += [m for m in (members if isinstance(members, list) else [members]) if isinstance(m, str)]
    if not out:
        for table in load_paper_tables(suite):
            out += [c.ours[0].task for c in table.columns if c.ours]
    return list(dict.fromkeys(out))


def model_args(
    model: str, base_url: str | None, served_name: str | None, concurrency: int, dtype: str
) -> tuple[str, dict[str, Any], str, str]:
    """(lm-eval model type, model_args, display name, device) for a local checkpoint or a server."""
    if base_url:
        url = base_url.rstrip("/")
        if not url.endswith("/chat/completions"):
            url = f"{url}/v1/chat/completions" if not url.endswith("/v1") else f"{url}/chat/completions"
        name = served_name or model
        args = {
            "model": name,
            "base_url": url,
            "num_concurrent": concurrency,
            "max_retries": 3,
            "tokenized_requests": False,
        }
        return "local-chat-completions", args, Path(name.rstrip("/")).name or name, f"server {url}"

    path = resolve_model(model)
    display = model if model in TINY_MODELS else path.name
    return "hf", {"pretrained": str(path), "dtype": dtype}, display, "cpu"


def default_judge(explicit: str | None) -> str | None:
    """``--judge`` > ``$RUBRICRL_EVAL_JUDGE`` > the judged tasks' own default (None if not importable)."""
    if explicit:
        return explicit
    if os.environ.get(JUDGE_ENV):
        return os.environ[JUDGE_ENV]
    return DEFAULT_JUDGE


@contextmanager
def judge_server(judge: str | None, enabled: bool) -> Iterator[None]:
    """With ``enabled``, serve the judge config's model on a local vLLM (CPU) and write its endpoint file."""
    if not enabled:
        yield
        return

    if not judge:
        raise UserError("--serve-judge needs a judge config (--judge NAME)")
    cfg = load_judge_config(config_path("judge", judge))
    endpoint = getattr(cfg, "base_url_file", None)
    if not endpoint:
        raise UserError(
            f"--serve-judge: judge config {judge!r} does not read an endpoint file (base_url_file), "
            "so a local server would not be used; drop --serve-judge"
        )
    print(f"[eval] starting a vLLM judge server for {cfg.model} (endpoint file {endpoint})", flush=True)
    with VLLMServer(cfg.model, endpoint_file=endpoint):
        yield


JUDGED_PREFIXES = ("healthbench", "writingbench", "creative_writing")


def check_judge_endpoint(judge: str | None, names: list[str], serving: bool) -> None:
    """Fail before generating when a judged task's judge reads a server address file that does not exist."""
    if serving or not judge or not any(n.startswith(JUDGED_PREFIXES) for n in names):
        return

    endpoint = getattr(load_judge_config(config_path("judge", judge)), "base_url_file", None)
    if endpoint and not Path(endpoint).exists():
        raise UserError(
            f"judge {judge!r} reads its server address from {endpoint}, which does not exist: start "
            f"`rubricrl serve --endpoint-file {endpoint}` first, or add SERVE_JUDGE=1 (--serve-judge), "
            "or use JUDGE=smollm2-local (in-process, slow) / JUDGE=gpt41-healthbench (the paper's grader)"
        )


def load_available(names: list[str], task_manager: Any, strict: bool) -> tuple[list[Any], dict[str, str]]:
    """Load each task (its data included); return the loaded objects and {skipped task: reason}."""
    loaded, skipped = [], {}
    for name in names:
        t0 = time.monotonic()
        try:
            got = task_manager.load([name])
        except UserError as e:
            reason = e.render()
        except Exception as e:  # noqa: BLE001 - any failure to build a task is reported per task
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        else:
            obj = got["groups"].get(name) or got["tasks"].get(name)
            if obj is None:
                reason = "not a task or group name the harness knows"
            else:
                loaded.append(obj)
                log.info("loaded %s (%.1fs)", name, time.monotonic() - t0)
                continue
        if strict:
            raise UserError(f"task {name}: {reason}")
        skipped[name] = reason
        log.warning("skipping %s: %s", name, reason)
    return loaded, skipped


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rubricrl.report.eval_runner", description=__doc__.split("\n\n")[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    return add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The runner's options on ``p`` (shared by ``python -m rubricrl.report.eval_runner`` and ``rubricrl eval``)."""
    p.add_argument("--model", required=True, help="checkpoint folder or alias (smollm2-135m-instruct, tiny-qwen3, ...)")
    p.add_argument("--suite", required=True, help=f"a replication's suite: {help_list()}")
    p.add_argument("--tasks", default="", help="comma-separated task names instead of the whole suite")
    p.add_argument(
        "--limit", type=float, default=None, metavar="N", help="examples per task (quick runs; never comparable)"
    )
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server (vLLM) serving the model")
    p.add_argument("--served-model", default=None, help="model name the server knows (default --model)")
    p.add_argument("--concurrency", type=int, default=4, help="parallel requests to the server")
    p.add_argument("--judge", default=None, help="judge config name or path for judged tasks")
    p.add_argument("--scale", default=None, help="tiny|single_gpu|paper (recorded for the report)")
    p.add_argument("--max-gen-toks", type=int, default=None, help="cap generation length (tiny runs)")
    p.add_argument("--batch-size", default="1", help="lm-eval batch size")
    p.add_argument("--dtype", default="float32", help="hf dtype (float32 on CPU)")
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="results root (default runs/eval)")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="lm-eval response cache (default <out>/<model>/<suite>/lm_cache): an interrupted run, "
        "re-run with the same arguments, reuses every model answer it already has",
    )
    p.add_argument("--no-cache", action="store_true", help="do not cache model answers (no resume)")
    p.add_argument("--strict", action="store_true", help="fail instead of skipping a task whose data is unavailable")
    p.add_argument("--no-chat-template", action="store_true", help="do not apply the model's chat template")
    p.add_argument(
        "--serve-judge",
        action="store_true",
        help="start a local vLLM judge server for the run (judge configs that read an endpoint file)",
    )
    return p


def run(args: argparse.Namespace) -> Path:
    """Run the suite; return the results file written."""
    if args.suite not in suite_groups():
        raise UserError(f"unknown suite {args.suite!r}; choose one of: {', '.join(suite_groups())}")
    if args.limit is not None and args.limit <= 0:
        raise UserError("--limit must be > 0")
    root = repo_root()
    tasks_dir = root / "eval" / "tasks"
    names = [t.strip() for t in args.tasks.split(",") if t.strip()] or suite_tasks(args.suite, tasks_dir)
    lm_type, margs, display, device = model_args(
        args.model, args.base_url, args.served_model, args.concurrency, args.dtype
    )
    judge = default_judge(args.judge)
    scale = args.scale or ("tiny" if display in TINY_MODELS else None)
    out = args.out / display / args.suite
    print(
        f"[eval] {display} ({lm_type}, {device}) on {args.suite}: {', '.join(names)}"
        f"{f'; limit {args.limit:g}' if args.limit else ''}; judge {judge or 'task default'} -> {out}",
        flush=True,
    )

    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    metadata = {"judge": judge} if judge else {}
    tm = TaskManager(include_path=str(tasks_dir), metadata=metadata)
    check_judge_endpoint(judge, names, args.serve_judge)
    loaded, skipped = load_available(names, tm, args.strict)
    if not loaded:
        raise UserError(
            "no task of the suite could be loaded here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    tracker = EvaluationTracker(output_path=str(out))
    gen_kwargs = {"max_gen_toks": args.max_gen_toks} if args.max_gen_toks else None
    # lm-eval's CachingLM commits each answer as it arrives (sqlite, autocommit), so Ctrl-C loses nothing
    # already generated; lm-eval adds "_rank<N>.db" to this prefix. Sampled generations are never cached.
    cache = None if args.no_cache else str((args.cache or out / "lm_cache") / "responses")
    if cache:
        print(
            f"[eval] model answers cached in {cache}_rank*.db (a re-run reuses them; --no-cache to turn off)",
            flush=True,
        )
    with judge_server(judge, args.serve_judge):
        results = simple_evaluate(
            model=lm_type,
            model_args=margs,
            tasks=loaded,
            task_manager=tm,
            limit=args.limit,
            batch_size=args.batch_size,
            device="cpu" if lm_type == "hf" else None,
            log_samples=True,
            evaluation_tracker=tracker,
            apply_chat_template=not args.no_chat_template,
            gen_kwargs=gen_kwargs,
            metadata=metadata,
            use_cache=cache,
        )
    if results is None:  # pragma: no cover - non-zero ranks only
        raise UserError("lm-eval returned no results")
    samples = results.pop("samples", {})
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results.get("configs", {}):
        if task_name in samples:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    results_file = newest_written(out, tracker.date_id)
    side = {
        "model": display,
        "model_path": margs.get("pretrained") or margs.get("model"),
        "backend": lm_type,
        "suite": args.suite,
        "tasks": names,
        "skipped": skipped,
        "scale": scale,
        "device": device,
        "judge": describe_judge(judge) if judge else None,
        "judge_config": judge,
        "limit": args.limit,
        "max_gen_toks": args.max_gen_toks,
        "command": " ".join(sys.argv),
    }
    (results_file.parent / sidecar_name(results_file)).write_text(json.dumps(side, indent=2) + "\n", encoding="utf-8")
    from lm_eval.utils import make_table

    print(make_table(results))
    if skipped:
        print("[eval] skipped (data not available here): " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    print(f"[eval] results: {results_file}")
    return results_file


def newest_written(out: Path, date_id: str) -> Path:
    found = sorted(out.rglob(f"results_{date_id}.json"))
    if not found:
        raise UserError(f"lm-eval wrote no results_{date_id}.json", path=str(out))
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    def body() -> int:
        run(args)  # returns the results file; success is exit 0
        return 0

    return run_guarded(body, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
