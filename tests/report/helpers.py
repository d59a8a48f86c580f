"""Hand-written result files in the formats ``rubricrl report`` reads (lm-eval's and ``rubricrl score --json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def lm_eval_results(
    folder: Path,
    results: dict[str, dict[str, float]],
    *,
    pretrained: str,
    limit: float | None,
    judge: str | None = None,
    device: str = "cpu",
    stamp: str = "2025-01-01T00-00-00.000000",
    model: str = "hf",
) -> Path:
    """Write ``<folder>/<sanitized>/results_<stamp>.json`` the way lm-eval's EvaluationTracker lays it out."""
    configs = {t: {"task": t, "metadata": {"version": 1.0, **({"judge": judge} if judge else {})}} for t in results}
    data: dict[str, Any] = {
        "results": {t: {"alias": t, **m, **{k.replace(",", "_stderr,"): 0.01 for k in m}} for t, m in results.items()},
        "configs": configs,
        "config": {
            "model": model,
            "model_args": f"pretrained={pretrained},dtype=float32",
            "device": device,
            "limit": limit,
            "batch_size": "1",
        },
        "n-samples": {t: {"original": 100, "effective": int(limit) if limit else 100} for t in results},
        "model_name": pretrained,
        "model_name_sanitized": pretrained.replace("/", "__"),
    }
    out = folder / pretrained.replace("/", "__") / f"results_{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return out


def score_json(path: Path, overall: float, n: int = 10) -> Path:
    """What ``rubricrl score --json`` prints for a HealthBench run (reference metric names)."""
    data = {
        "overall_score": overall,
        "overall_score:bootstrap_std": 0.02,
        "overall_score:n_samples": n,
        "axis:accuracy": 0.4,
        "score": overall,
        "n_examples": n,
        "n_scored": n,
        "n_ungraded": 0,
        "n_unscorable": 0,
        "ungraded_policy": "exclude",
        "n_bootstrap": 1000,
        "seed": 0,
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline ``run-<id>.wandb`` file (W&B's LevelDB-style log: a 7-byte file header,
    32 KiB blocks, each chunk a 7-byte header of CRC, little-endian length and type FULL/FIRST/MIDDLE/LAST)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"not a W&B datastore file: {path}"
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
            pending = b""
    return out


def wandb_run_record(folder: Path, wait_s: float = 60.0) -> Any:
    """The run record (id, name, group, job_type) of an offline W&B run folder.

    ``wandb.finish()`` can return before W&B's service has written the file out (seen with wandb 0.31: a
    7-byte file just after finish, the full log a moment later), so this waits for the run's exit record.
    """
    import time

    (log,) = folder.glob("run-*.wandb")
    deadline = time.monotonic() + wait_s
    while True:
        records = wandb_records(log)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return next(r.run for r in records if r.WhichOneof("record_type") == "run")
        time.sleep(0.2)
