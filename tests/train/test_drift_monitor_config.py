"""The drift monitor's configuration: the ``monitor`` section, the config hash, and the generated NeMo RL configs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rubricrl.cluster.nemo_rl import RECIPES, build_config
from rubricrl.config import compose_experiment, config_hash
from rubricrl.errors import UserError

GOLD = (
    "monitor.judge={backend: openai, model: gold-judge, base_url_file: runs/gold.endpoint.json, mode: tiered, "
    "template: tiered}"
)


def _recipe(paper: str, stage: str):
    return next(r for r in RECIPES.values() if r.paper == paper and r.stage == stage)


def test_monitor_is_off_by_default_on_at_tiny_scale_and_not_in_the_config_hash():
    paper = compose_experiment("rubicon", ["scale=paper"])
    assert not paper.monitor.enabled
    tiny = compose_experiment("rubicon", [])
    assert tiny.monitor.applies_to("stage1_rl") and tiny.monitor.judge.sampling.temperature == 0.0
    assert tiny.monitor.judge.sampling.temperature != tiny.judge.sampling.temperature  # a different judge config
    sr = compose_experiment("self_rewarding", [])
    assert sr.monitor.constrained is not None and sr.monitor.judge is None and sr.monitor.applies_to("train")
    base = config_hash(tiny)
    for same in (["monitor.judge=null"], ["monitor.on_gap=stop", "monitor.max_gap=0.3", "monitor.every_steps=1"]):
        assert config_hash(compose_experiment("rubicon", same)) == base, same
    only2 = compose_experiment("rubicon", ["monitor.stages=[stage2_rl]"])
    assert not only2.monitor.applies_to("stage1_rl") and only2.monitor.applies_to("stage2_rl")


def test_bad_monitor_config_is_a_clear_error():
    with pytest.raises(UserError, match="monitor.every_steps"):
        compose_experiment("rubicon", ["monitor.every_steps=0"])
    with pytest.raises(UserError, match="monitor: set monitor.judge or monitor.constrained, not both"):
        compose_experiment("self_rewarding", ["monitor.judge={backend: programmatic}"])
    with pytest.raises(UserError, match="monitor.smaple: unknown key .did you mean monitor.sample"):
        compose_experiment("rubicon", ["monitor.smaple=3"])


def test_generated_nemo_rl_config_carries_the_monitor_only_when_it_is_on():
    exp = compose_experiment("rubicon", ["scale=paper"])
    for stage in ("stage1_rl", "stage2_rl"):
        assert "monitor" not in build_config(exp, _recipe("rubicon", stage))["env"]["rubric"]
    on = compose_experiment("rubicon", ["scale=paper", GOLD, "monitor.every_steps=20", "monitor.on_gap=stop"])
    assert config_hash(on) == config_hash(exp)
    env = build_config(on, _recipe("rubicon", "stage2_rl"))["env"]["rubric"]
    m = env["monitor"]
    assert m["judge"]["model"] == "gold-judge" and m["judge"]["base_url_file"] == "runs/gold.endpoint.json"
    assert (m["every_steps"], m["on_gap"], m["sample"], m["seed"]) == (20, "stop", 4, on.run.seed)
    assert m["path"].endswith("/stage2_rl/monitor.jsonl")
    from rubricrl.train.nemo_rl_env import load_env_config

    assert load_env_config(env).monitor.every_steps == 20  # the environment accepts what is generated
    shared = compose_experiment("rubicon", ["scale=paper", "monitor.judge={backend: openai, model: gold-judge}"])
    m = build_config(shared, _recipe("rubicon", "stage2_rl"))["env"]["rubric"]["monitor"]
    assert m["judge"]["base_url_file"] == str(shared.judge.base_url_file)  # no endpoint: the training judge's server
    sr = compose_experiment("self_rewarding", ["scale=paper", "monitor.constrained={model: smollm2-135m-instruct}"])
    with pytest.raises(UserError, match="monitor.constrained .* set monitor.judge"):
        build_config(sr, _recipe("self_rewarding", "rl"))


def test_stage_overrides_point_the_monitor_file_at_the_stage_folder(tmp_path):
    from rubricrl.train.nemo_rl_stage import stage_overrides

    on = compose_experiment("rubicon", ["scale=paper", GOLD])
    out = stage_overrides(on, "stage2_rl", tmp_path / "stage2_rl", None, True)
    assert f"env.rubric.monitor.path={tmp_path / 'stage2_rl' / 'monitor.jsonl'}" in out
    off = compose_experiment("rubicon", ["scale=paper"])
    assert not any("monitor" in o for o in stage_overrides(off, "stage2_rl", tmp_path / "s", None, True))


def test_nemo_rl_rows_carry_the_gold_rubric(tmp_path):
    from rubricrl.rubrics.loader import load_rubrics
    from rubricrl.train.nemo_rl_env import rubric_data_processor
    from rubricrl.train.nemo_rl_stage import write_rows
    from rubricrl.train.rewards import programmatic_only

    repo = Path(__file__).resolve().parents[2]
    full = next(
        r for r in load_rubrics([repo / "rubric_banks/stage1_instruction_following"]) if r.id == "if-all-lowercase"
    )
    train = programmatic_only(full)
    path = tmp_path / "train.jsonl"
    write_rows(path, [([{"role": "user", "content": "hi"}], train, "p0")], monitor_rubrics={full.id: full})
    row = json.loads(path.read_text())

    class Tok:
        def apply_chat_template(self, m, tokenize, add_generation_prompt):
            return m[-1]["content"]

        def __call__(self, text, add_special_tokens):
            return {"input_ids": [1, 2]}

    info = rubric_data_processor(row, SimpleNamespace(system_prompt=None), Tok(), 64, 0)["extra_env_info"]
    assert json.loads(info["monitor_rubric"])["criteria"][-1]["id"] == "task_quality"
    assert len(json.loads(info["rubric"])["criteria"]) == 1


def test_a_misspelt_monitor_stage_is_an_error_not_a_silently_unmonitored_run(tmp_path):
    from rubricrl.train.drift_monitor import stage_monitor

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "monitor.stages=[stage2]"])
    with pytest.raises(
        UserError,
        match="monitor.stages: 'stage2' is not a training stage of rubicon .its training stages: stage1_rl, stage2_rl",
    ):
        stage_monitor(
            cfg, "stage2_rl", tmp_path, last_step=2, train_label="t", training_stages=("stage1_rl", "stage2_rl")
        )
