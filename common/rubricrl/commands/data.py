"""``rubricrl data``: fetch benchmark files, print where they are, write subsets, split train / held-out.

Examples::

    rubricrl data fetch healthbench --subset hard
    rubricrl data path healthbench-500              # the offline 500-example copy
    rubricrl data path healthbench --subset full    # a downloaded file (verified against the lock)
    rubricrl data write healthbench --subset easy --out runs/data/easy.jsonl
    rubricrl data split IN.jsonl --heldout-frac 0.2 --seed 0 --train train.jsonl --heldout heldout.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rubricrl.data import healthbench as hb
from rubricrl.data import writingbench as wb
from rubricrl.errors import UserError
from rubricrl.jsonl import read_jsonl_objects, write_jsonl_atomic

DATASETS = ("healthbench", "healthbench-500", "writingbench")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "data",
        help="fetch, locate, subset and split benchmark data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    f = sub.add_parser("fetch", help="download an official HealthBench file into the data cache")
    f.add_argument("dataset", choices=["healthbench"], help="the dataset to download (healthbench)")
    f.add_argument(
        "--subset",
        choices=[*hb.OFFICIAL, "all"],
        default="full",
        help="which official file (default full; all = every one)",
    )
    f.add_argument("--base-url", help=f"folder URL (default ${hb.BASE_URL_ENV} or the simple-evals blob)")
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="cache folder (default $RUBRICRL_DATA_DIR or <repo>/.cache/data)"
    )

    q = sub.add_parser("path", help="print the path of a data file")
    q.add_argument(
        "dataset",
        choices=DATASETS,
        help="healthbench (downloaded), healthbench-500 (offline copy), writingbench (offline copy)",
    )
    q.add_argument("--subset", choices=list(hb.OFFICIAL), default="full", help="for healthbench (default full)")
    q.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="cache folder (default $RUBRICRL_DATA_DIR or <repo>/.cache/data)"
    )

    w = sub.add_parser("write", help="write a HealthBench subset (e.g. easy = full minus hard) as JSONL")
    w.add_argument("dataset", choices=["healthbench"], help="the dataset (healthbench)")
    w.add_argument(
        "--subset", choices=hb.EXAMPLE_SUBSETS, required=True, help="the subset to write (e.g. easy = full minus hard)"
    )
    w.add_argument("--out", type=Path, required=True, metavar="PATH", help="JSONL file to write")
    w.add_argument("--force", action="store_true", help="replace --out if it exists")
    w.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="cache folder (default $RUBRICRL_DATA_DIR or <repo>/.cache/data)"
    )

    s = sub.add_parser("split", help="deterministic train / held-out split of a JSONL file by id hash")
    s.add_argument("input", type=Path, help="JSONL file to split")
    s.add_argument("--heldout-frac", type=float, required=True, metavar="F", help="share of lines held out (0-1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the id hash (default 0)")
    s.add_argument("--train", type=Path, required=True, metavar="PATH", help="JSONL file for the training lines")
    s.add_argument("--heldout", type=Path, required=True, metavar="PATH", help="JSONL file for the held-out lines")
    s.add_argument("--key", default="prompt_id", help="id field of each line (default prompt_id)")
    s.add_argument("--force", action="store_true", help="replace outputs that exist")
    return p


def run(args: argparse.Namespace) -> int:
    return {"fetch": _fetch, "path": _path, "write": _write, "split": _split}[args.data_command](args)


def _fetch(args: argparse.Namespace) -> int:
    subsets = list(hb.OFFICIAL) if args.subset == "all" else [args.subset]
    for subset in subsets:
        path = hb.fetch(subset, root=args.data_dir, base_url=args.base_url, force=args.force)
        print(f"{subset}: {path}")
    return 0


def _path(args: argparse.Namespace) -> int:
    if args.dataset == "healthbench-500":
        print(hb.offline_path())
    elif args.dataset == "writingbench":
        print(wb.offline_path())
    else:
        print(hb.verified_path(args.subset, root=args.data_dir))
    return 0


def _write(args: argparse.Namespace) -> int:
    examples = hb.load_subset(args.subset, root=args.data_dir)
    n = write_jsonl_atomic(args.out, (ex.raw for ex in examples), overwrite=args.force)
    print(f"{args.subset}: {n} examples -> {args.out}")
    return 0


def _split(args: argparse.Namespace) -> int:
    rows = read_jsonl_objects(args.input)
    missing = [line for line, obj in rows if not isinstance(obj.get(args.key), (str, int))]
    if missing:
        raise UserError(
            f"no {args.key!r} (string or integer) on this line; choose the id field with --key",
            path=str(args.input),
            line=missing[0],
        )
    for out in (args.train, args.heldout):
        if out.exists() and not args.force:
            raise UserError("already exists; not overwritten (pass --force to replace it)", path=str(out))
    if args.train.resolve() == args.heldout.resolve() or args.input.resolve() in (
        args.train.resolve(),
        args.heldout.resolve(),
    ):
        raise UserError("--train, --heldout and the input must be three different files")
    train, heldout = hb.split_heldout([obj for _, obj in rows], args.heldout_frac, args.seed, key=lambda o: o[args.key])
    write_jsonl_atomic(args.train, train, overwrite=args.force)
    write_jsonl_atomic(args.heldout, heldout, overwrite=args.force)
    print(f"train: {len(train)} -> {args.train}")
    print(f"heldout: {len(heldout)} -> {args.heldout} (frac {args.heldout_frac}, seed {args.seed})")
    return 0
