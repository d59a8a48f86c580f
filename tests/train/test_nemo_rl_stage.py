"""Engine dispatch: with ``run.engine=nemo_rl`` the training stages go through the NeMo RL driver.

Only the boundaries to NeMo RL are replaced: its GRPO driver (``rubricrl.train.nemo_rl_driver.run_grpo``, which
runs NeMo RL's ``examples/run_grpo.py`` in the container) by a recorder, and its checkpoint converter
(``examples/converters/convert_megatron_to_hf.py``, called by the real ``slurm/convert_checkpoint.sh``)
by a small script. Config composition, the real pipeline stage functions, row writing, config
generation and the conversion script run as they do on the cluster. Without NeMo RL the real command
stops with one clear line and exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rubricrl.config import compose_experiment, config_hash
from rubricrl.errors import UserError
from rubricrl.rubrics.schema import Rubric

REPO = Path(__file__).resolve().parents[2]

CONVERTER = """
import argparse, json, pathlib
p = argparse.ArgumentParser()
p.add_argument("--config"); p.add_argument("--megatron-ckpt-path"); p.add_argument("--hf-ckpt-path")
a = p.parse_args()
out = pathlib.Path(a.hf_ckpt_path); out.mkdir(parents=True)
(out / "config.json").write_text(json.dumps({"from": a.megatron_ckpt_path}))
"""


def _nemo_root(tmp_path: Path) -> Path:
    root = tmp_path / "nemo-rl"
    (root / "examples" / "converters").mkdir(parents=True)
    (root / "examples" / "run_grpo.py").write_text("# NeMo RL's entry point (never run here)\n")
    (root / "examples" / "converters" / "convert_megatron_to_hf.py").write_text(CONVERTER)
    return root


def _megatron_step(ckpts: Path, step: int) -> None:
    (ckpts / f"step_{step}" / "policy" / "weights" / "iter_0000000").mkdir(parents=True)
    (ckpts / f"step_{step}" / "config.yaml").write_text("policy: {}\n")


def _mark_done(run_dir: Path, stage: str, cfg) -> None:
    (run_dir / stage).mkdir(parents=True, exist_ok=True)
    (run_dir / stage / "DONE").write_text(json.dumps({"stage": stage, "config_hash": config_hash(cfg)}))


@pytest.fixture
def paper_run(tmp_path, monkeypatch):
    """A paper-scale Rubicon run whose data stage really ran and whose filter kept three prompts."""
    endpoint = tmp_path / "runs" / "p" / "judge" / "endpoint.json"
    ovr = [
        "scale=paper",
        f"run.root={tmp_path / 'runs'}",
        "run.name=p",
        "wandb.mode=offline",
        f"++judge.base_url_file={endpoint}",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "--stage", "data", *ovr],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    cfg = compose_experiment("rubicon", ovr)
    run_dir = tmp_path / "runs" / "p"
    rows = [json.loads(x) for x in (run_dir / "data" / "stage1_train.jsonl").read_text().splitlines()[:3]]
    (run_dir / "filter").mkdir()
    (run_dir / "filter" / "kept.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    _mark_done(run_dir, "filter", cfg)
    root = _nemo_root(tmp_path)
    monkeypatch.setenv("NEMO_RL_ROOT", str(root))
    monkeypatch.setenv("RR_CONVERT_PYTHON", sys.executable)
    for k in ("RR_NEMO_RECIPE", "SLURM_JOB_NUM_NODES", "RR_SITE_ENV"):
        monkeypatch.delenv(k, raising=False)
    calls: list[tuple] = []

    def driver(config, overrides, nemo_rl_root):
        calls.append(("driver", Path(config), list(overrides), Path(nemo_rl_root)))
        ckpt = next(o.split("=", 1)[1] for o in overrides if o.startswith("checkpointing.checkpoint_dir="))
        _megatron_step(Path(ckpt), 4)  # what NeMo RL leaves behind after training

    import rubricrl.train.nemo_rl_driver as nemo_cmd

    monkeypatch.setattr(nemo_cmd, "run_grpo", driver)
    return {
        "cfg": cfg,
        "run_dir": run_dir,
        "rows": rows,
        "calls": calls,
        "root": root,
        "endpoint": endpoint,
        "overrides": ovr,
    }


def _ctx(cfg, run_dir: Path, name: str):
    from replications.rubicon import stages as rubicon
    from rubricrl.train.stages import StageContext

    stage = next(s for s in rubicon.stages(cfg) if s.name == name)
    d = run_dir / name
    d.mkdir(parents=True, exist_ok=True)
    return StageContext(cfg=cfg, run_dir=run_dir, dir=d, stage=stage)


def _overrides(call) -> dict[str, str]:
    return dict(o.lstrip("+").split("=", 1) for o in call[2])


def test_stage1_writes_rows_generates_the_config_calls_the_driver_and_converts(paper_run):
    from replications.rubicon import stages as rubicon

    cfg, run_dir = paper_run["cfg"], paper_run["run_dir"]
    metrics = rubicon.stage_stage1(_ctx(cfg, run_dir, "stage1_rl"))
    [(kind, config, overrides, root)] = paper_run["calls"]
    d = run_dir / "stage1_rl"
    assert kind == "driver" and config == d / "nemo_rl" / "config.yaml" and root == paper_run["root"]
    # Rows: one per kept prompt, the conversation as is, the rubric as JSON, the prompt id.
    rows = [json.loads(x) for x in (d / "nemo_rl" / "train.jsonl").read_text().splitlines()]
    rubrics = json.loads((run_dir / "data" / "rubrics.json").read_text())
    by_id = {r["id"]: r for r in rubrics}
    assert [r["prompt_id"] for r in rows] == [k["id"] for k in paper_run["rows"]]
    for row, kept in zip(rows, paper_run["rows"]):
        assert row["messages"] == kept["prompt"] and "defense_json" not in row
        assert Rubric.model_validate_json(row["rubric_json"]) == Rubric.model_validate(by_id[kept["rubric_id"]])
    # The config is the generator's for the 8-node stage-1 recipe, with NeMo RL's defaults from its checkout.
    conf = yaml.safe_load(config.read_text())
    assert conf["rubricrl"]["recipe"] == "grpo-qwen3-30ba3b-8n8g-megatron-stage1"
    assert conf["defaults"] == str(root / "examples/configs/grpo_math_1B.yaml")
    assert conf["env"]["rubric"]["judge"]["backend"] == "programmatic"
    o = _overrides(paper_run["calls"][0])
    assert o["data.train.data_path"] == str(d / "nemo_rl" / "train.jsonl")
    assert o["checkpointing.checkpoint_dir"] == str(d / "nemo_rl" / "checkpoints")
    assert o["env.rubric.rollouts_path"] == str(d / "rollouts.jsonl")
    assert o["logger.wandb.name"] == "p-stage1_rl" and o["logger.wandb.group"] == "p"
    assert "policy.model_name" not in o and "env.rubric.judge.base_url_file" not in o  # base model, verifiers only
    # The newest Megatron step became the HF model the next stage and the evaluation load.
    assert json.loads((d / "final" / "config.json").read_text())["from"].endswith("step_4/policy/weights/iter_0000000")
    assert metrics["final_model"] == str(d / "final") and metrics["last_checkpoint_step"] == 4


def test_stage2_starts_from_converted_stage1_with_the_judge_endpoint_and_the_defense(paper_run, monkeypatch):
    from replications.rubicon import stages as rubicon

    cfg, run_dir = paper_run["cfg"], paper_run["run_dir"]
    # Stage 1 finished on NeMo RL but its conversion had not run (e.g. the job was cut short after training).
    _megatron_step(run_dir / "stage1_rl" / "nemo_rl" / "checkpoints", 7)
    _mark_done(run_dir, "stage1_rl", cfg)
    hacking = _ctx(cfg, run_dir, "hacking")
    (run_dir / "stage1_rl" / "rollouts.jsonl").write_text(
        json.dumps({"step": 1, "prompt": "p", "completion": "Sure! Great question!", "reward": 0.9}) + "\n"
    )
    rubicon.stage_hacking(hacking)
    _mark_done(run_dir, "hacking", cfg)
    # Paper scale filters the stage-2 prompts with the stage-1 policy first (rubicon.filter.stage2): stage 2
    # trains on what that filter kept, here the first two.
    s2_train = (run_dir / "data" / "stage2_train.jsonl").read_text().splitlines()
    (run_dir / "filter_stage2").mkdir()
    (run_dir / "filter_stage2" / "kept.jsonl").write_text("\n".join(s2_train[:2]) + "\n")
    _mark_done(run_dir, "filter_stage2", cfg)
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "4")  # a 4-node allocation picks the 4-node recipe
    metrics = rubicon.stage_stage2(_ctx(cfg, run_dir, "stage2_rl"))
    [call] = paper_run["calls"]
    o = _overrides(call)
    s1_final = run_dir / "stage1_rl" / "final"
    assert json.loads((s1_final / "config.json").read_text())["from"].endswith("step_7/policy/weights/iter_0000000")
    assert o["policy.model_name"] == str(s1_final)
    assert o["env.rubric.judge.base_url_file"] == str(paper_run["endpoint"])
    assert yaml.safe_load(call[1].read_text())["rubricrl"]["recipe"] == "grpo-qwen3-30ba3b-4n8g-megatron-stage2"
    rows = [json.loads(x) for x in (run_dir / "stage2_rl" / "nemo_rl" / "train.jsonl").read_text().splitlines()]
    defense = json.loads((run_dir / "hacking" / "defense_rubric.json").read_text())[0]
    assert rows and all(Rubric.model_validate_json(r["defense_json"]).id == defense["id"] for r in rows)
    assert [r["prompt_id"] for r in rows] == [json.loads(x)["id"] for x in s2_train[:2]]
    assert metrics["final_model"] == str(run_dir / "stage2_rl" / "final")


def test_recipe_choice(monkeypatch):
    from rubricrl.train.nemo_rl_stage import pick_recipe

    for k in ("RR_NEMO_RECIPE", "SLURM_JOB_NUM_NODES"):
        monkeypatch.delenv(k, raising=False)
    assert pick_recipe("rubicon", "stage1_rl").name == "grpo-qwen3-30ba3b-8n8g-megatron-stage1"
    assert pick_recipe("self_rewarding", "train").name == "grpo-qwen3-32b-4n8g-self-reward"
    monkeypatch.setenv("RR_NEMO_RECIPE", "grpo-qwen3-30ba3b-4n8g-megatron-stage2")
    assert pick_recipe("rubicon", "stage2_rl").nodes == 4
    with pytest.raises(UserError, match="not a recipe of rubicon stage 'stage1_rl'"):
        pick_recipe("rubicon", "stage1_rl")
    monkeypatch.delenv("RR_NEMO_RECIPE")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "3")
    with pytest.raises(UserError, match="on 3 nodes"):
        pick_recipe("rubicon", "stage1_rl")


def test_without_nemo_rl_the_stage_stops_with_one_clear_line_and_exit_2(paper_run, tmp_path):
    ovr = paper_run["overrides"]
    env = {**os.environ, "NEMO_RL_ROOT": str(tmp_path / "no-nemo-rl")}
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "--stage", "stage1_rl", *ovr],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    [line] = [x for x in r.stderr.splitlines() if "NeMo RL" in x]
    assert "run_grpo.py" in line and "nvcr.io/nvidia/nemo-rl:v0.7.0" in line and "run.engine=trl" in line
    assert not (paper_run["run_dir"] / "stage1_rl" / "nemo_rl").exists()  # nothing half-written
    assert not (paper_run["run_dir"] / "stage1_rl" / "DONE").exists()


def test_reward_health_failure_in_the_driver_leaves_no_done_marker(paper_run, monkeypatch):
    # What the NeMo RL environment does when a step is mostly ungraded: it writes reward_health.json and the
    # driver raises a UserError. The stage must stop with it, and the pipeline must not mark the stage done.
    import rubricrl.train.nemo_rl_driver as nemo_driver
    from replications.rubicon import stages as rubicon
    from rubricrl.errors import UserError
    from rubricrl.train.stages import run_stage

    cfg, run_dir = paper_run["cfg"], paper_run["run_dir"]

    def failing(config, overrides, nemo_rl_root):
        o = dict(x.lstrip("+").split("=", 1) for x in overrides)
        Path(o["env.rubric.health_path"]).write_text(json.dumps({"ok": False, "error": "step 1: 8 of 8 ungraded"}))
        raise UserError("stage1_rl: the rewards carry no learning signal: step 1: 8 of 8 verdicts ungraded")

    monkeypatch.setattr(nemo_driver, "run_grpo", failing)
    stage = next(s for s in rubicon.stages(cfg) if s.name == "stage1_rl")
    with pytest.raises(UserError, match="no learning signal") as e:
        run_stage(stage, cfg, run_dir)
    assert e.value.exit_code == 2
    d = run_dir / "stage1_rl"
    assert not (d / "DONE").exists() and not (d / "metrics.json").exists()
    assert json.loads((d / "reward_health.json").read_text())["ok"] is False  # kept for the report
