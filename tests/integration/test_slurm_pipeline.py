"""The Slurm job scripts on a real one-node Slurm (Debian slurm-wlm: munge, slurmctld, slurmd on localhost).

The daemons are started by the fixture in a private folder and stopped at the end. Jobs are submitted
through the real command (``rubricrl cluster submit``) and the real scripts (slurm/*.sbatch) with the
container runtime switched off. Most tests use the small stand-in stage bodies of
tests/cluster/slurm_stage.py (real stage runner, markers and signal handling; training = a few
checkpointed steps), selected with the site's ``RR_STAGE_COMMAND``; the judge test serves a real CPU vLLM
through ``rubricrl serve``. The last test submits the real shortened Rubicon pipeline (``rubricrl
replicate`` in every job, TRL on SmolLM2, the judge job a real CPU vLLM) through ``slurm/replicate.sh``,
the script behind ``make replicate-rubicon``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rubricrl.cluster.localslurm import LocalSlurm, missing_binaries

from .test_rubicon_pipeline import SHORT, SHORT_STAGES

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)}); `make setup-slurm` installs slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root (slurmd runs jobs as their submitter)")
    root = Path(f"/tmp/rr-slurm-{os.getpid()}")  # short path: munge's socket path must stay short
    cluster = LocalSlurm(root, cpus=os.cpu_count() or 2).start()
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        assert not any(_alive(p) for p in cluster.pids.values())
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


STAND_IN = f"{sys.executable} tests/cluster/slurm_stage.py"
TIMES = {"train": "00:10:00", "gpu": "00:10:00", "cpu": "00:05:00", "judge": "00:15:00"}


def _site(
    tmp: Path,
    stage_command: str | None = STAND_IN,
    times: dict[str, str] = TIMES,
    wandb_mode: str = "disabled",
    **env: str,
) -> Path:
    """A site file for the local Slurm; ``stage_command=None`` runs the real ``rubricrl replicate``."""
    runs = tmp / "runs"
    site = tmp / "site.yaml"
    job_env = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": wandb_mode, **env}
    if stage_command is not None:
        job_env["RR_STAGE_COMMAND"] = stage_command
    site.write_text(
        json.dumps(
            {
                "name": "local-test",
                "slurm": {
                    "account": None,
                    "partition": "debug",
                    "gpus_per_node": 0,
                    "cpus_per_node": 1,
                    "mem": None,
                    "time": times,
                    "signal_seconds": 60,
                },
                "paths": {"repo": str(REPO), "runs": str(runs), "venv": str(REPO / ".venv")},
                "containers": {"runtime": "none"},
                "wandb": {"project": "rubricrl-slurm-test", "mode": wandb_mode},
                "judge": {"launcher": "rubricrl", "host": "127.0.0.1", "port": 0, "startup_timeout_s": 600},
                "env": job_env,
            }
        )
    )
    return site


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def _ids(out: str) -> dict[str, str]:
    ids = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("submitted") and "job" in parts:
            ids[parts[1]] = parts[parts.index("job") + 1]
    return ids


def _state(job: str) -> str:
    r = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True)
    for f in r.stdout.split():
        if f.startswith("JobState="):
            return f.split("=", 1)[1]
    return "GONE"


def _wait_all(ids: dict[str, str], timeout: float, log_dir: Path) -> dict[str, str]:
    active = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")
    deadline = time.monotonic() + timeout
    final: dict[str, str] = {}  # a job's end state as first seen: slurmctld forgets it MinJobAge after the end
    while time.monotonic() < deadline:
        for n, i in ids.items():
            if n not in final and (s := _state(i)) not in active:
                final[n] = s
        states = {n: final.get(n) or _state(i) for n, i in ids.items()}
        if all(s not in active for s in states.values()):
            return states
        time.sleep(2)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(log_dir.glob("*.out")))
    pytest.fail(f"jobs still active after {timeout} s: {states}\n{logs}")


def _wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


OVR = ["scale=tiny", "run.name=slurm-tiny", "server.enabled=false"]


def test_pipeline_runs_as_a_job_graph_and_a_requeued_training_job_resumes(slurm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    site = _site(tmp, RR_TEST_STEPS="10", RR_TEST_STEP_S="1")
    r = _cli("cluster", "submit", "rubicon", "--site", str(site), *OVR)
    assert r.returncode == 0, r.stderr + r.stdout
    ids = _ids(r.stdout)
    stages = ["data", "filter", "stage1_rl", "hacking", "stage2_rl", "eval", "report"]
    assert list(ids) == stages, r.stdout
    assert "W&B: project rubricrl-slurm-test" in r.stdout
    run_dir = tmp / "runs" / "slurm-tiny"
    log_dir = run_dir / "slurm"

    # Requeue stage1_rl once it has written two checkpoints.
    train_dir = run_dir / "stage1_rl"
    _wait_for(lambda: (train_dir / "checkpoint-2" / "state.json").is_file(), 180, "stage1_rl checkpoint-2")
    assert _state(ids["stage1_rl"]) == "RUNNING"
    subprocess.run(["scontrol", "requeue", ids["stage1_rl"]], check=True)

    states = _wait_all(ids, 300, log_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    for s in stages:
        assert (run_dir / s / "DONE").is_file(), s
    # Dependencies: no stage finished before one of its inputs.
    done_at = {s: (run_dir / s / "DONE").stat().st_mtime for s in stages}
    assert done_at["filter"] >= done_at["data"] and done_at["stage1_rl"] >= done_at["filter"]
    assert done_at["report"] == max(done_at.values())
    # The requeued job started twice and the second start resumed from a checkpoint, not from zero.
    starts = [json.loads(x) for x in (train_dir / "starts.jsonl").read_text().splitlines()]
    assert len(starts) == 2, starts
    assert starts[0]["resumed_from"] == 0 and starts[1]["resumed_from"] >= 2, starts
    assert starts[1]["restart"] == "1" and starts[0]["job"] == starts[1]["job"] == ids["stage1_rl"]
    assert json.loads((train_dir / "metrics.json").read_text())["steps"] == 10
    log = (log_dir / f"stage1_rl-{ids['stage1_rl']}.out").read_text()
    assert "SIGTERM" in log and "restart 1" in log, log[-3000:]

    # Everything is done: a second submission submits nothing; status shows the stages done.
    r2 = _cli("cluster", "submit", "rubicon", "--site", str(site), *OVR)
    assert r2.returncode == 0 and "nothing to submit" in r2.stdout, r2.stderr + r2.stdout
    st = _cli("cluster", "status", "rubicon", "--site", str(site), *OVR)
    assert st.returncode == 0 and st.stdout.count(" done") == len(stages), st.stdout


def test_failed_stage_cancels_dependants_and_resubmission_runs_only_what_is_left(slurm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fail")
    site = _site(tmp, RR_TEST_STEPS="1", RR_TEST_STEP_S="0")
    ovr = ["scale=tiny", "run.name=slurm-fail", "server.enabled=false"]
    plan_only = _cli("cluster", "submit", "rubicon", "--site", str(site), "--dry-run", *ovr)
    assert plan_only.returncode == 0 and "sbatch --parsable" in plan_only.stdout
    assert not (tmp / "runs" / "slurm-fail" / "slurm" / "submissions.jsonl").exists()

    # A stage command that does not exist: the first job fails and every dependant is cancelled.
    broken = tmp / "broken-site.yaml"
    broken.write_text(site.read_text().replace("tests/cluster/slurm_stage.py", "tests/cluster/no_such_stage.py"))
    r = _cli("cluster", "submit", "rubicon", "--site", str(broken), *ovr)
    assert r.returncode == 0, r.stderr
    ids = _ids(r.stdout)
    states = _wait_all(ids, 240, tmp / "runs" / "slurm-fail" / "slurm")
    assert states["data"] == "FAILED", states
    assert all(states[s] in ("CANCELLED", "GONE") for s in ("filter", "stage1_rl", "report")), states

    r = _cli("cluster", "submit", "rubicon", "--site", str(site), *ovr)
    assert r.returncode == 0, r.stderr
    ids = _ids(r.stdout)
    assert list(ids)[0] == "data"
    states = _wait_all(ids, 300, tmp / "runs" / "slurm-fail" / "slurm")
    assert set(states.values()) == {"COMPLETED"}, states


@pytest.mark.vllm
def test_judge_server_job_serves_dependants_and_is_cancelled_at_the_end(slurm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judge")
    site = _site(tmp, RR_TEST_STEPS="1", RR_TEST_STEP_S="0", VLLM_CPU_OMP_THREADS_BIND="all")
    # The tiny config's per-stage judge server (server.enabled) becomes a judge server job on Slurm.
    ovr = ["scale=tiny", "run.name=slurm-judge"]
    plan = _cli("cluster", "plan", "rubicon", "--site", str(site), *ovr)
    assert plan.returncode == 0, plan.stderr
    assert "judge " in plan.stdout and "start:judge" in plan.stdout and "cleanup" in plan.stdout
    r = _cli("cluster", "submit", "rubicon", "--site", str(site), *ovr)
    assert r.returncode == 0, r.stderr + r.stdout
    ids = _ids(r.stdout)
    assert list(ids)[0] == "judge" and list(ids)[-1] == "cleanup"
    run_dir = tmp / "runs" / "slurm-judge"
    states = _wait_all(ids, 600, run_dir / "slurm")
    assert states["cleanup"] == "COMPLETED" and states["judge"] in ("CANCELLED", "COMPLETED"), states
    assert all(states[s] == "COMPLETED" for s in ids if s not in ("judge",)), states
    filter_log = (run_dir / "slurm" / f"filter-{ids['filter']}.out").read_text()
    assert "judge ready:" in filter_log and '"base_url": "http://127.0.0.1:' in filter_log, filter_log[-2000:]
    assert not (run_dir / "judge" / "endpoint.json").exists(), "the endpoint file must go with the server"
    cfg = (run_dir / "filter" / "config.yaml").read_text()
    assert f"base_url_file: {run_dir / 'judge' / 'endpoint.json'}" in cfg and "enabled: false" in cfg


@pytest.mark.vllm
def test_real_shortened_rubicon_pipeline_through_replicate_sh(slurm, tmp_path_factory):
    """`make replicate-rubicon`'s dispatcher on a machine with Slurm: the real stages as a job graph."""
    tmp = tmp_path_factory.mktemp("real")
    # The tiny policy is prepared once (a no-op when an earlier test or `make` did it), not by every job.
    prep = _cli("models", "prepare", "smollm2-135m-instruct", timeout=600)
    assert prep.returncode == 0, prep.stderr
    site = _site(
        tmp,
        stage_command=None,
        wandb_mode="offline",
        times={"train": "00:30:00", "gpu": "00:30:00", "cpu": "00:10:00", "judge": "01:00:00"},
        OMP_WAIT_POLICY="PASSIVE",
        VLLM_CPU_OMP_THREADS_BIND="all",
    )
    run = "slurm-real"
    # No SLURM=...: the dispatcher submits because a controller answers (SLURM_CONF points at it).
    env = {k: v for k, v in os.environ.items() if k != "SLURM"}
    r = subprocess.run(
        ["slurm/replicate.sh", "rubicon", f"run.name={run}", *SHORT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "SITE": str(site)},
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "submitting rubicon to Slurm" in r.stderr, r.stderr
    ids = _ids(r.stdout)
    stages = list(SHORT_STAGES)  # rubrics_stage2 and filter_stage2 included: jobs too
    # The tiny config's judge (server.enabled: a vLLM CPU server per stage) becomes one judge server job.
    assert list(ids) == ["judge", *stages, "cleanup"], r.stdout
    run_dir = tmp / "runs" / run
    states = _wait_all(ids, 1500, run_dir / "slurm")
    ok = all(states[s] == "COMPLETED" for s in [*stages, "cleanup"]) and states["judge"] in ("CANCELLED", "COMPLETED")
    assert ok, f"{states}\n" + "\n".join(
        f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted((run_dir / "slurm").glob("*.out"))
    )
    for s in stages:
        marker = json.loads((run_dir / s / "DONE").read_text())
        assert marker["stage"] == s and marker["config_hash"], marker
        log = (run_dir / "slurm" / f"{s}-{ids[s]}.out").read_text()
        assert f"rubricrl replicate rubicon --stage {s} " in log, log[-2000:]  # the real command, no stand-in
    # Real training wrote a model; stage 2 and the evaluation graded through the judge job's server.
    assert (run_dir / "stage1_rl" / "final" / "model.safetensors").is_file()
    endpoint = run_dir / "judge" / "endpoint.json"
    assert f"base_url_file: {endpoint}" in (run_dir / "stage2_rl" / "config.yaml").read_text()
    # the stage-2 rubrics were written through the judge job's server (a server failure would stop the stage)
    gen = json.loads((run_dir / "rubrics_stage2" / "metrics.json").read_text())
    assert gen["attempted"] == 2 and gen["summary"]["failed_calls"] == 0, gen
    assert f"base_url_file: {endpoint}" in (run_dir / "rubrics_stage2" / "config.yaml").read_text()
    ev = json.loads((run_dir / "eval" / "eval.json").read_text())
    assert ev["stage2_heldout"]["judge"]["calls"] > 0
    report = (run_dir / "report.md").read_text()
    assert "Held-out evaluation" in report and "tiny scale" in report
    assert not endpoint.exists(), "the judge job's endpoint file must go with its server"
    again = subprocess.run(
        ["slurm/replicate.sh", "rubicon", f"run.name={run}", *SHORT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "SITE": str(site)},
    )
    assert again.returncode == 0 and "nothing to submit" in again.stdout, again.stderr + again.stdout
    for s in ("stage1_rl", "stage2_rl"):  # 0.5 GB each; the CI disk is shared (tmp_path_retention keeps failures)
        shutil.rmtree(run_dir / s / "final")
