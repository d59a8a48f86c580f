"""Rubric generation at scale: prompt records, shards and their merge, the update loop, the plan, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.cli import main
from rubricrl.errors import Problems, UserError
from rubricrl.rubrics.generate import side_paths
from rubricrl.rubrics.generate.plan import build_rubric_plan
from rubricrl.rubrics.generate.shards import merge_shards
from rubricrl.rubrics.generate.units import load_prompt_records, make_units, parse_shard, shard_of
from rubricrl.rubrics.generate.update import find_changes, pass_rates, update_bank
from rubricrl.rubrics.loader import load_rubrics, validate_paths
from tests.rubrics.test_generate import GOOD, config, lines, prompts_file, run


def test_prompt_formats_and_bad_lines(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "prompt_id": "hb1",
                        "prompt": [{"role": "user", "content": "Hi"}],
                        "ideal_completions_data": {"ideal_completion": "Hello there."},
                    }
                ),
                json.dumps({"id": 7, "prompt": "Write a poem.", "category": "creative", "reference": "A poem."}),
            ]
        )
        + "\n"
    )
    recs = load_prompt_records(p)
    assert (
        [r.id for r in recs] == ["hb1", "7"] and recs[0].reference == "Hello there." and recs[1].category == "creative"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n{"prompt": "z"}\nnot json\n')
    with pytest.raises(Problems) as e:
        load_prompt_records(bad)
    text = "\n".join(e.value.problems)
    assert (
        f"{bad}:2: duplicate id 'a'" in text
        and f"{bad}:3: needs 'prompt_id'" in text
        and f"{bad}:4: invalid JSON" in text
    )


def test_shards_partition_units_stably(tmp_path):
    recs = load_prompt_records(prompts_file(tmp_path, 40))
    units = make_units(recs, "instance")
    parts = [[u.id for u in units if shard_of(u.id, 4) == i] for i in range(4)]
    assert sorted(sum(parts, [])) == sorted(u.id for u in units) and all(parts)
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(UserError):
            parse_shard(bad)


def test_shard_runs_merge_into_one_valid_file(tmp_path):
    prompts = prompts_file(tmp_path, 6)
    outs = []
    for i in range(2):
        d = tmp_path / f"s{i}"
        d.mkdir()
        out, s, _ = run(d, config(), [GOOD], prompts=prompts, shard=(i, 2))
        outs.append(out)
    merged = tmp_path / "merged" / "rubrics.jsonl"
    total = merge_shards(outs, merged)
    assert total["kept"] == 6 and validate_paths([merged])[1] == []
    assert sorted(r["id"] for r in lines(merged)) == [f"p{i}" for i in range(6)]
    assert total["tokens"]["units"] == 6
    assert side_paths(merged)["histogram"].exists()
    with pytest.raises(UserError, match="already exists"):
        merge_shards(outs, merged)


def test_merge_refuses_repeated_ids(tmp_path):
    prompts = prompts_file(tmp_path, 2)
    outs = []
    for i in range(2):
        d = tmp_path / f"s{i}"
        d.mkdir()
        outs.append(run(d, config(), [GOOD], prompts=prompts)[0])
    with pytest.raises(Problems, match="also in"):
        merge_shards(outs, tmp_path / "m.jsonl")


def rollouts(path: Path, rows: list[tuple[int, str, dict]]) -> Path:
    path.write_text("".join(json.dumps({"step": s, "rubric_id": r, "per_criterion": pc}) + "\n" for s, r, pc in rows))
    return path


def test_update_loop_retires_saturated_and_flags_never_passing(tmp_path):
    bank = tmp_path / "bank.yaml"
    bank.write_text(
        "rubrics:\n"
        "  - id: r1\n    criteria:\n"
        "      - {id: easy, text: Says hello politely., points: 2}\n"
        "      - {id: hard, text: Cites a primary source., points: 3}\n"
        "      - {id: mid, text: Stays under a hundred words., points: 1}\n"
        "  - id: r2\n    criteria:\n"
        "      - {id: only, text: Answers the question asked., weight: 1}\n"
    )
    rows = []
    for step in range(1, 7):
        for i in range(4):
            rows.append((step, "r1", {"easy": 1.0, "hard": 0.0, "mid": float(i % 2), "ghost": None}))
            rows.append((step, "r2", {"only": 1.0}))
    ro = rollouts(tmp_path / "rollouts.jsonl", rows)
    changes = find_changes(pass_rates(ro), saturated=0.95, last_steps=5, min_samples=8)
    got = {(c.rubric_id, c.criterion_id): (c.action, c.reason) for c in changes}
    assert got == {
        ("r1", "easy"): ("retired", "saturated"),
        ("r1", "hard"): ("flagged", "never_passes"),
        ("r2", "only"): ("retired", "saturated"),
    }
    out = tmp_path / "next" / "bank.jsonl"
    applied = update_bank([bank], ro, out, saturated=0.95, last_steps=5, min_samples=8)
    revised = {r.id: r for r in load_rubrics(out)}
    assert [c.id for c in revised["r1"].criteria] == ["hard", "mid"]
    assert "flag:never_passes" in revised["r1"].criterion("hard").tags
    # retiring r2's only criterion would leave an empty rubric: flagged instead
    assert [c.id for c in revised["r2"].criteria] == ["only"] and "flag:saturated" in revised["r2"].criteria[0].tags
    changes_file = out.with_name("bank.changes.jsonl")
    recs = lines(changes_file)
    assert {(r["rubric_id"], r["criterion_id"], r["action"]) for r in recs} == {
        ("r1", "easy", "retired"),
        ("r1", "hard", "flagged"),
        ("r2", "only", "flagged"),
    }
    assert len(applied) == 3
    with pytest.raises(UserError, match="already exists"):
        update_bank([bank], ro, out)


def test_update_needs_enough_steps(tmp_path):
    ro = rollouts(tmp_path / "r.jsonl", [(s, "r1", {"easy": 1.0}) for s in (1, 2) for _ in range(10)])
    assert find_changes(pass_rates(ro), last_steps=5) == []


def test_update_reports_bad_rollout_lines(tmp_path):
    ro = tmp_path / "r.jsonl"
    ro.write_text('{"step": 1, "rubric_id": "r", "per_criterion": {}}\n{"step": "x"}\n')
    with pytest.raises(Problems, match=":2: not a rollout record"):
        pass_rates(ro)


def test_plan_from_a_measured_summary(tmp_path):
    out, summary, _ = run(tmp_path, config(), [GOOD], n=2)
    sp = side_paths(out)["summary_json"]
    data = json.loads(sp.read_text())
    data["tokens"]["per_rubric"] = {"generation_prompt_tokens": 600.0, "generation_completion_tokens": 400.0}
    sp.write_text(json.dumps(data))
    plan = build_rubric_plan(10000, summary=sp, replicas=2, gpus_per_replica=1, tokens_per_s_per_gpu=1000)
    assert plan.tokens == 10_000_000 and abs(plan.gpu_hours - 10_000_000 / 3_600_000) < 1e-9
    assert abs(plan.wall_hours - plan.gpu_hours / 2) < 1e-9
    text = plan.text()
    assert "slurm/rubrics_generate.sbatch" in text and "GPU-hours: 2.8" in text and str(sp) in text


def test_plan_without_token_usage_says_so(tmp_path):
    out, _, _ = run(tmp_path, config(), [GOOD], n=1)  # the scripted backend reports no usage
    with pytest.raises(UserError, match="no token usage"):
        build_rubric_plan(10, summary=side_paths(out)["summary_json"])


def test_cli_plan_and_errors(tmp_path, capsys):
    assert main(["rubrics", "plan", "--n", "10000"]) == 0
    printed = capsys.readouterr().out
    assert "GPU-hours" in printed and "measured by make rubrics-demo" in printed and "sbatch --parsable" in printed
    assert (
        main(["rubrics", "generate", "--prompts", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["rubrics"]) == 2


def test_cli_plan_writes_the_site_env_for_the_sbatch_lines(tmp_path, capsys):
    repo = Path(__file__).resolve().parents[2]
    out_dir = tmp_path / "run"
    args = [
        "rubrics",
        "plan",
        "--n",
        "100",
        "--site",
        str(repo / "slurm" / "site.example.yaml"),
        "--out-dir",
        str(out_dir),
    ]
    assert main(args) == 0
    env = out_dir / "slurm" / "site.env"
    assert "export RR_RUNTIME=" in env.read_text() and f"SITE_ENV={env}" in capsys.readouterr().out
    assert main(args) == 0  # same settings: fine
    env.write_text("export RR_RUNTIME=none\n")
    assert main(args) == 2 and env.read_text() == "export RR_RUNTIME=none\n"


def test_every_shipped_generation_config_validates_and_resolves():
    from rubricrl.configs import ROOT
    from rubricrl.rubrics.generate import load_generate_config
    from rubricrl.rubrics.generate.config import resolve_judge, resolve_policy

    shipped = sorted((ROOT / "rubrics").glob("*.yaml"))
    assert shipped
    for p in shipped:
        cfg = load_generate_config(p)
        resolve_policy(cfg.generator)
        resolve_judge(cfg.gates.discrimination.judge)
        if cfg.gates.discrimination.policy is not None:
            resolve_policy(cfg.gates.discrimination.policy)


def test_a_stage_gets_rubrics_for_its_rows(tmp_path):
    from rubricrl.generation import PolicyConfig, Sampler
    from rubricrl.rubrics.generate.stage import rubrics_for_rows
    from tests.rubrics.test_generate import ScriptedChat

    rows = [
        {
            "id": f"s2-{i}",
            "split": "train",
            "category": "creative",
            "rubric_id": "cw",
            "prompt": [{"role": "user", "content": f"Story {i}"}],
        }
        for i in range(2)
    ]
    cfg = config()
    sampler = Sampler(PolicyConfig.model_validate(cfg.generator.model_dump()), backend=ScriptedChat([GOOD]))
    out = tmp_path / "gen" / "rubrics.jsonl"
    got, summary = rubrics_for_rows(rows, cfg, out, show_progress=False, components={"generator_sampler": sampler})
    assert set(got) == {"s2-0", "s2-1"} and got["s2-0"].scope == "instance" and got["s2-0"].category == "creative"
    again, _ = rubrics_for_rows(rows, cfg, out, show_progress=False, components={"generator_sampler": sampler})
    assert set(again) == set(got)
    with pytest.raises(UserError, match="other prompts"):
        rubrics_for_rows(rows[:1], cfg, out, show_progress=False)
