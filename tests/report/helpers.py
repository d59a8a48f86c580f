"""Hand-written result files in the formats ``rubricrl report`` reads (lm-eval's and ``rubricrl score --json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def lm_eval_results(folder: Path, results: dict[str, dict[str, float]], *, pretrained: str, limit: float | None,
                    judge: str | None = None, device: str = "cpu", stamp: str = "2025-01-01T00-00-00.000000",
                    model: str = "hf") -> Path:
    """Write ``<folder>/<sanitized>/results_<stamp>.json`` the way lm-eval's EvaluationTracker lays it out."""
    configs = {t: {"task": t, "metadata": {"version": 1.0, **({"judge": judge} if judge else {})}} for t in results}
    data: dict[str, Any] = {
        "results": {t: {"alias": t, **m, **{k.replace(",", "_stderr,"): 0.01 for k in m}} for t, m in results.items()},
        "configs": configs,
        "config": {"model": model, "model_args": f"pretrained={pretrained},dtype=float32", "device": device,
                   "limit": limit, "batch_size": "1"},
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
    data = {"overall_score": overall, "overall_score:bootstrap_std": 0.02, "overall_score:n_samples": n,
            "axis:accuracy": 0.4, "score": overall, "n_examples": n, "n_scored": n, "n_ungraded": 0,
            "n_unscorable": 0, "ungraded_policy": "exclude", "n_bootstrap": 1000, "seed": 0}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
