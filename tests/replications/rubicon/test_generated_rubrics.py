"""rubicon.rubrics.generate: the rubrics_stage2 stage gives stage-2 prompts generated instance rubrics.

The data stage runs for real (the CLI, tiny scale); the generator is scripted (this tests the stage's wiring:
which rows get which rubric, what later stages read, resume). Generation through a real CPU vLLM server is
tests/integration/test_rubrics_generate_served.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from replications.rubicon import stages as rubicon
from replications.rubicon.generated_rubrics import stage2_inputs, stage_rubrics_stage2
from rubricrl.config import compose_experiment
from rubricrl.generation import PolicyConfig, Sampler
from rubricrl.rubrics.loader import validate_paths
from rubricrl.train.stages import StageContext
from tests.rubrics.test_generate import ScriptedChat

REPO = Path(__file__).resolve().parents[3]
WEIGHTED = {
    "criteria": [
        {"text": "The story keeps the lighthouse keeper at the centre of it.", "weight": 4, "negative": False},
        {"text": "The reply lectures the reader with a stated moral.", "weight": 2, "negative": True},
    ]
}


def _setup(tmp_path: Path, limit: int):
    gen_cfg = tmp_path / "gen.yaml"
    gen_cfg.write_text(
        "generator: {backend: openai, model: scripted, base_url: 'http://unused/v1', retries: 0}\n"
        "scoring: weight\nattempts: 1\nmin_criteria: 2\ngates: {discrimination: {enabled: false}}\n"
    )
    overrides = [
        "scale=tiny",
        f"run.root={tmp_path}",
        "run.name=g",
        "wandb.mode=disabled",
        "server.enabled=false",
        "rubicon.rubrics.generate=true",
        f"rubicon.rubrics.config={gen_cfg}",
        f"rubicon.rubrics.limit={limit}",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", *overrides, "--stage", "data"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = compose_experiment("rubicon", overrides)
    run_dir = tmp_path / "g"
    stage = next(s for s in rubicon.stages(cfg) if s.name == "rubrics_stage2")
    (run_dir / stage.name).mkdir(exist_ok=True)
    return cfg, run_dir, StageContext(cfg=cfg, run_dir=run_dir, dir=run_dir / stage.name, stage=stage)


def _components(ctx, answers):
    from replications.rubicon.generated_rubrics import _config

    gen = _config(ctx.cfg)
    chat = ScriptedChat(answers)
    return {"generator_sampler": Sampler(PolicyConfig.model_validate(gen.generator.model_dump()), backend=chat)}, chat


def test_the_stage_sits_before_the_stage_2_filter_and_training():
    cfg = compose_experiment("rubicon", ["scale=tiny", "rubicon.rubrics.generate=true", "rubicon.filter.stage2=true"])
    graph = {s.name: s.inputs for s in rubicon.stages(cfg)}
    names = list(graph)
    assert names.index("hacking") < names.index("rubrics_stage2") < names.index("filter_stage2")
    assert "rubrics_stage2" in graph["filter_stage2"] and "rubrics_stage2" in graph["stage2_rl"]
    assert "rubrics_stage2" not in {s.name for s in rubicon.stages(compose_experiment("rubicon", ["scale=tiny"]))}


def test_kept_rubrics_replace_the_bank_rubric_of_their_prompt_and_the_rest_keep_theirs(tmp_path):
    cfg, run_dir, ctx = _setup(tmp_path, limit=2)
    rows = [json.loads(x) for x in (run_dir / "data" / "stage2_train.jsonl").read_text().splitlines()]
    assert len(rows) > 2
    # the first prompt gets a good rubric; the second's answer is not JSON (recorded as a failure)
    components, chat = _components(ctx, [WEIGHTED, "not json at all"])
    metrics = stage_rubrics_stage2(ctx, components=components)
    assert metrics["attempted"] == 2 and metrics["generated_kept"] == 1 and metrics["bank_rubric_kept"] == len(rows) - 1
    out_rows, rubrics_file = stage2_inputs(
        StageContext(
            cfg=cfg, run_dir=run_dir, dir=ctx.dir, stage=next(s for s in rubicon.stages(cfg) if s.name == "stage2_rl")
        )
    )
    new = [json.loads(x) for x in out_rows.read_text().splitlines()]
    assert new[0]["rubric_id"] == rows[0]["id"]  # the generated instance rubric (its id is the prompt id)
    assert [r["rubric_id"] for r in new[1:]] == [r["rubric_id"] for r in rows[1:]]
    by_id = {r["id"]: r for r in json.loads(rubrics_file.read_text())}
    gen = by_id[rows[0]["id"]]
    assert [c.get("weight") for c in gen["criteria"]] == [4.0, 2.0] and gen["criteria"][1]["negative"] is True
    assert rows[1]["rubric_id"] in by_id  # the bank rubrics stay available
    stats, problems = validate_paths([ctx.dir / "rubrics.jsonl"])
    assert problems == [] and stats.rubrics == 1
    # re-running the stage resumes: the kept rubric is not generated again; only the failed prompt is retried
    components, chat2 = _components(ctx, [WEIGHTED])
    again = stage_rubrics_stage2(ctx, components=components)
    assert len(chat2.calls) == 1 and again["generated_kept"] == 2
    assert [json.loads(x)["rubric_id"] for x in out_rows.read_text().splitlines()][:2] == [r["id"] for r in rows[:2]]


def test_a_generator_that_does_not_answer_stops_the_stage_and_a_rerun_finishes_it(tmp_path):
    from rubricrl.errors import UserError
    from rubricrl.judge.backends import TransportError

    cfg, run_dir, ctx = _setup(tmp_path, limit=2)
    components, _ = _components(ctx, [WEIGHTED, TransportError("connection refused")])
    with pytest.raises(UserError, match="1 of 2 stage-2 prompts got no rubric because the generator"):
        stage_rubrics_stage2(ctx, components=components)
    assert not (ctx.dir / "stage2_train.jsonl").exists()  # nothing for later stages to train on
    components, chat = _components(ctx, [WEIGHTED])  # the server is back
    again = stage_rubrics_stage2(ctx, components=components)
    assert len(chat.calls) == 1 and again["generated_kept"] == 2 and again["summary"]["failed_calls"] == 0


def test_endpointless_generator_and_gate_policy_go_to_the_pipeline_judge_and_explicit_ones_stay(tmp_path):
    from replications.rubicon.generated_rubrics import _config, _on_pipeline_judge

    cluster = ["server.enabled=false", f"judge.base_url_file={tmp_path}/judge/endpoint.json"]
    cfg = compose_experiment("rubicon", ["scale=tiny", "rubicon.rubrics.generate=true", *cluster])
    shipped = _config(cfg)  # replications/rubicon/configs/rubric_generation.yaml: no endpoints of its own
    placed = _on_pipeline_judge(shipped, cfg, None)
    d = placed.gates.discrimination
    for spec in (placed.generator, d.policy):
        assert spec.base_url_file == cfg.judge.base_url_file and spec.model == cfg.judge.model
    assert d.judge == cfg.judge  # on a cluster the gate grades with the training judge
    strong = shipped.model_copy(
        update={
            "generator": shipped.generator.model_copy(update={"base_url": "https://api.example/v1", "model": "big"})
        }
    )
    kept = _on_pipeline_judge(strong, cfg, None).generator
    assert kept.base_url == "https://api.example/v1" and kept.model == "big" and kept.base_url_file is None
