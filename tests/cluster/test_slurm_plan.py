"""The job graph and sbatch lines built from a site file and the pipeline's stages (no Slurm needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.cluster.plan import build_plan, stage_kind
from rubricrl.cluster.site import load_site
from rubricrl.cluster.submit import sbatch_args, submit
from rubricrl.errors import UserError

REPO = Path(__file__).resolve().parents[2]
STAGES = ["data", "filter", "stage1_rl", "hacking", "stage2_rl", "eval", "report"]


def _site(tmp_path: Path, gpus: int = 8, account: str | None = "acct", **slurm) -> object:
    extra = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in slurm.items())
    p = tmp_path / "site.yaml"
    p.write_text(
        f"name: t\nslurm:\n  account: {json.dumps(account)}\n  partition: gpu\n  gpus_per_node: {gpus}\n"
        f"  cpus_per_node: 16\n{extra}paths:\n  repo: {REPO}\n  runs: {tmp_path / 'runs'}\n"
        "containers:\n  runtime: none\nwandb:\n  project: proj\n  entity: team\n  mode: offline\n"
    )
    return load_site(p)


def _mark_done(plan, stage: str) -> None:
    from rubricrl.config import compose_experiment, config_hash

    cfg = compose_experiment(plan.paper, plan.overrides)
    d = plan.run_dir / stage
    d.mkdir(parents=True, exist_ok=True)
    (d / "DONE").write_text(json.dumps({"stage": stage, "config_hash": config_hash(cfg)}))


def test_stage_kinds():
    assert [stage_kind(s) for s in STAGES] == ["cpu", "gpu", "train", "gpu", "train", "gpu", "cpu"]


def test_tiny_plan_mirrors_stage_inputs_and_uses_no_gpus(tmp_path):
    plan = build_plan("rubicon", ["scale=tiny", "run.name=t1", "server.enabled=false"], _site(tmp_path))
    assert [j.name for j in plan.jobs] == STAGES
    by = {j.name: j for j in plan.jobs}
    assert by["stage2_rl"].after_ok == ["data", "stage1_rl", "hacking"]
    assert all(j.gpus == 0 and j.nodes == 1 for j in plan.jobs)
    assert plan.run_dir == tmp_path / "runs" / "t1"
    # Every job runs the same command line with the site's run root and W&B settings.
    assert by["eval"].args[:2] == ["rubicon", "eval"] and f"++run.root={tmp_path / 'runs'}" in by["eval"].args
    assert "++wandb.project=proj" in plan.overrides and "++wandb.entity=team" in plan.overrides


def test_done_stages_are_skipped_and_their_dependencies_dropped(tmp_path):
    site = _site(tmp_path)
    ovr = ["scale=tiny", "run.name=t2", "server.enabled=false"]
    plan = build_plan("rubicon", ovr, site)
    for s in ("data", "filter", "stage1_rl"):
        _mark_done(plan, s)
    plan = build_plan("rubicon", ovr, site)
    assert [j.name for j in plan.jobs] == ["hacking", "stage2_rl", "eval", "report"]
    by = {j.name: j for j in plan.jobs}
    assert by["hacking"].after_ok == [] and by["stage2_rl"].after_ok == ["hacking"]
    assert [s["status"] for s in plan.stages][:3] == ["done"] * 3


def test_marker_from_another_config_is_an_error(tmp_path):
    site = _site(tmp_path)
    plan = build_plan("rubicon", ["scale=tiny", "run.name=t3", "server.enabled=false"], site)
    (plan.run_dir / "data").mkdir(parents=True)
    (plan.run_dir / "data" / "DONE").write_text(json.dumps({"config_hash": "something-else"}))
    with pytest.raises(UserError, match="different configuration"):
        build_plan("rubicon", ["scale=tiny", "run.name=t3", "server.enabled=false"], site)


def test_tiny_local_judge_server_becomes_a_judge_job_with_cleanup(tmp_path):
    plan = build_plan("rubicon", ["scale=tiny", "run.name=t4"], _site(tmp_path))
    names = [j.name for j in plan.jobs]
    assert names[0] == "judge" and names[-1] == "cleanup"
    by = {j.name: j for j in plan.jobs}
    assert by["filter"].after_start == ["judge"] and by["data"].after_start == []
    assert set(by["cleanup"].after_any) == set(STAGES)
    assert "server.enabled=false" in plan.overrides
    assert f"++judge.base_url_file={plan.run_dir / 'judge' / 'endpoint.json'}" in plan.overrides
    assert by["judge"].args == ["smollm2-135m-instruct", "smollm2-135m-instruct"]


def test_resubmission_with_a_judge_finds_the_stages_the_jobs_finished(tmp_path):
    # The jobs record the hash of the config with the judge job's endpoint; a resubmission compares with
    # that config, skips what is done, and still serves the judge while a judging stage is left.
    site = _site(tmp_path)
    ovr = ["scale=tiny", "run.name=t6"]
    plan = build_plan("rubicon", ovr, site)
    for s in ("data", "filter", "stage1_rl"):
        _mark_done(plan, s)
    again = build_plan("rubicon", ovr, site)
    assert [j.name for j in again.jobs] == ["judge", "hacking", "stage2_rl", "eval", "report", "cleanup"]
    assert again.overrides == plan.overrides
    for s in ("hacking", "stage2_rl", "eval"):
        _mark_done(plan, s)
    last = build_plan("rubicon", ovr, site)  # only the CPU report is left: no judge job for it
    assert [j.name for j in last.jobs] == ["report"] and last.judge_endpoint is None
    assert f"++judge.base_url_file={plan.run_dir / 'judge' / 'endpoint.json'}" in last.jobs[0].args


def test_paper_plan_uses_the_recipe_nodes_ray_and_a_throughput_estimate(tmp_path):
    plan = build_plan("rubicon", ["scale=paper"], _site(tmp_path))
    by = {j.name: j for j in plan.jobs}
    assert (by["stage1_rl"].nodes, by["stage1_rl"].gpus_per_node) == (8, 8)
    assert by["stage1_rl"].env.get("RR_RAY") == "1"
    assert by["stage1_rl"].env["RR_NEMO_RECIPE"] == "grpo-qwen3-30ba3b-8n8g-megatron-stage1"
    assert "tokens/s/GPU" in by["stage1_rl"].gpu_hours_basis and by["stage1_rl"].gpu_hours > 0
    assert by["judge"].gpus == 8 and by["judge"].gpu_hours > 0
    assert plan.gpu_hours == pytest.approx(sum(j.gpu_hours for j in plan.jobs))
    four = build_plan("rubicon", ["scale=paper"], _site(tmp_path), nodes=4)
    assert {j.nodes for j in four.jobs if j.kind == "train"} == {4}
    assert {j.env["RR_NEMO_RECIPE"] for j in four.jobs if j.kind == "train"} == {
        "grpo-qwen3-30ba3b-4n8g-megatron-stage1",
        "grpo-qwen3-30ba3b-4n8g-megatron-stage2",
    }
    with pytest.raises(UserError, match="8 GPUs per node"):
        build_plan("rubicon", ["scale=paper"], _site(tmp_path, gpus=4))
    with pytest.raises(UserError, match="recipes exist for"):
        build_plan("rubicon", ["scale=paper"], _site(tmp_path), nodes=3)


def test_sbatch_lines_requeue_signal_dependencies_and_site_options(tmp_path):
    site = _site(tmp_path, account=None, qos="high", gres="gres", cpu_partition="cpu")
    plan = build_plan("rubicon", ["scale=paper"], site)
    by = {j.name: j for j in plan.jobs}
    ids = {"judge": "10", "data": "11", "filter": "12", "stage1_rl": "13", "hacking": "14"}
    args = sbatch_args(plan, by["stage2_rl"], ids)
    assert "--requeue" in args and f"--signal=B:USR1@{site.slurm.signal_seconds}" in args
    assert "--dependency=afterok:11:13:14,after:10" in args and "--kill-on-invalid-dep=yes" in args
    assert "--nodes=8" in args and "--gres=gpu:8" in args and "--qos=high" in args
    assert not any(a.startswith("--account") for a in args) and "--partition=gpu" in args
    assert args[-len(by["stage2_rl"].args) - 1].endswith("slurm/stage.sbatch")
    data = sbatch_args(plan, by["data"], ids)
    assert "--partition=cpu" in data and not any(a.startswith("--gres") for a in data)
    cleanup = sbatch_args(plan, by["cleanup"], {**ids, "stage2_rl": "15", "eval": "16", "report": "17"})
    assert "--no-requeue" in cleanup and any(
        a.startswith("--dependency=afterany:11:12:13:14:15:16:17") for a in cleanup
    )


def test_dry_run_prints_every_sbatch_line_and_writes_nothing(tmp_path):
    plan = build_plan("rubicon", ["scale=tiny", "run.name=t5", "server.enabled=false"], _site(tmp_path))
    lines: list[str] = []
    assert submit(plan, dry_run=True, echo=lines.append) == {}
    assert len(lines) == len(STAGES) and all(line.startswith("sbatch --parsable") for line in lines)
    assert "--dependency=afterok:'<data>'" in lines[1] or "--dependency=afterok:<data>" in lines[1]
    assert not plan.slurm_dir.exists()


def test_self_rewarding_paper_plan_has_no_judge_job(tmp_path):
    # The grader is the policy's own engine (Paper B): no separate judge server, no cleanup job.
    plan = build_plan("self_rewarding", ["scale=paper"], _site(tmp_path))
    assert all(j.kind not in ("judge", "cleanup") for j in plan.jobs)
    assert all(not j.after_start for j in plan.jobs)
    train = [j for j in plan.jobs if j.kind == "train"]
    assert train and all((j.nodes, j.gpus_per_node) == (4, 8) for j in train)
