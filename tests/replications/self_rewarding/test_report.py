"""The self-rewarding report: its text names the fixed judge in words, and its eval and report reach W&B."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from replications.self_rewarding.report import write_report
from tests.report.helpers import wandb_run_record


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def test_self_rewarding_report_logs_eval_and_report_and_names_its_judge_in_words(offline, tmp_path):
    from rubricrl.config import compose_experiment

    cfg = compose_experiment("self_rewarding", [f"run.root={tmp_path}", "run.name=s"])
    run_dir = cfg.run.dir
    judge = {"kind": "constrained", "model": "smollm2-135m-instruct", "template": "t", "template_sha256": "ab"}
    scores = {
        k: {"overall_score": v, "overall_score:bootstrap_std": 0.02, "overall_score:n_samples": 7, "n_ungraded": 0}
        for k, v in (("before", 0.133), ("after", 0.0))
    }
    _write(run_dir / "eval" / "metrics.json", {"judge": judge, **scores})
    (run_dir / "report").mkdir()
    out = write_report(SimpleNamespace(cfg=cfg, run_dir=run_dir, dir=run_dir / "report"))
    md = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "evaluation judge (fixed): `smollm2-135m-instruct` (kind constrained, template t)" in md and "{" not in md
    for job in ("eval", "report"):
        rec = wandb_run_record(Path(out["wandb"][job]))
        assert (rec.job_type, rec.run_group, rec.display_name) == (job, "s", f"s-{job}")
