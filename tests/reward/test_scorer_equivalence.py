"""Both engine adapters are one scorer: the same batch through TRL's reward function and NeMo RL's environment.

The same prompts, responses and real bank rubrics (with the defense rubric as a veto) and the same scripted
graders (:mod:`tests.reward.scorer_cases`: deterministic HTTP graders, a judge and a teacher) go through
``RubricRewardFunc`` (called as ``GRPOTrainer`` calls a reward function) and ``RubricEnvironment.step`` (called
as NeMo RL calls it, on metadata made by the ``rubricrl_rubric`` data processor). Rewards, per-criterion values,
teacher routing and the rollout records must be identical. Here NeMo RL's interfaces are the stand-ins of
``tests/train/test_nemo_rl_env.py`` (no Ray); ``tests/nemo_rl/test_scorer_equivalence_nemo_rl.py`` runs the
environment through NeMo RL v0.7.0's own code.
"""

from __future__ import annotations

import json
import types

import pytest

from tests.reward.scorer_cases import (
    STEP,
    ScriptedGrader,
    cases,
    defense_rubric,
    env_config,
    flat,
    nemo_rows,
    trl_judge,
    trl_run,
)
from tests.train.test_nemo_rl_env import nemo_stub  # noqa: F401  (the NeMo RL stand-ins, a fixture)

SETTINGS = {
    "judge only": (False, True, {}),
    "teacher replaces": (True, True, {"fraction": 0.5, "replace": True, "seed": 0}),
    "teacher measures": (True, True, {"fraction": 0.5, "replace": False, "seed": 7}),
    "teacher, no defense": (True, False, {"fraction": 0.5, "replace": True, "seed": 3}),
}


@pytest.fixture
def graders():
    judge, teacher = ScriptedGrader("judge"), ScriptedGrader("teacher")
    yield judge, teacher
    judge.close()
    teacher.close()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from rubricrl.models.tiny_qwen import tokenizer_dir

    return AutoTokenizer.from_pretrained(str(tokenizer_dir()))


def _nemo_inputs(batch, defense, tokenizer):
    """Message logs and metadata as NeMo RL hands them to ``step`` (through our data processor)."""
    from rubricrl.train.nemo_rl_env import rubric_data_processor

    spec = types.SimpleNamespace(system_prompt=None)
    data = [rubric_data_processor(row, spec, tokenizer, 2048, i) for i, row in enumerate(nemo_rows(batch, defense))]
    by_id = {d["extra_env_info"]["prompt_id"]: d for d in data}
    logs, metas = [], []
    for case, response in flat(batch):
        d = by_id[case.prompt_id]
        logs.append([*d["message_log"], {"role": "assistant", "content": response}])
        metas.append(dict(d["extra_env_info"]))
    return logs, metas


@pytest.mark.usefixtures("nemo_stub")
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("calls", ["one batch", "one call per sample"])
def test_trl_reward_function_and_nemo_rl_environment_score_identically(graders, tokenizer, tmp_path, setting, calls):
    import torch

    from rubricrl.train.nemo_rl_env import RubricEnvironment

    with_teacher, with_defense, teach = SETTINGS[setting]
    judge, teacher = graders
    batch = cases()
    defense = defense_rubric() if with_defense else None
    trl_rewards, trl_rows = trl_run(
        batch, trl_judge(judge, teacher if with_teacher else None, **teach), defense, tmp_path / "trl.jsonl"
    )

    env = RubricEnvironment(
        env_config(judge, teacher if with_teacher else None, tmp_path / "nemo.jsonl", **teach),
    )
    logs, metas = _nemo_inputs(batch, defense, tokenizer)
    if calls == "one batch":  # synchronous rollouts
        outs = [env.step(logs, metas)]
    else:  # async_engine: one step call per sample
        outs = [env.step([log], [meta]) for log, meta in zip(logs, metas)]
    nemo_rewards = torch.cat([o.rewards for o in outs])
    out_meta = [m for o in outs for m in o.metadata]
    env.close_step(STEP)
    env.finish()
    nemo_rows_ = [json.loads(x) for x in (tmp_path / "nemo.jsonl").read_text(encoding="utf-8").splitlines()]
    env.shutdown()

    # rewards: the scorer's floats, and NeMo RL's float32 tensor of them
    assert [m["reward"] for m in out_meta] == trl_rewards
    assert torch.equal(nemo_rewards, torch.tensor(trl_rewards, dtype=torch.float32))
    # per-criterion values
    assert [m["per_criterion"] for m in out_meta] == [r["per_criterion"] for r in trl_rows]
    assert [r["defense_per_criterion"] for r in nemo_rows_] == [r["defense_per_criterion"] for r in trl_rows]
    # teacher routing: the same samples went to the teacher, and their reward rests on the same verdicts
    assert [m["teacher"] for m in out_meta] == [r["teacher"] for r in trl_rows]
    assert [m["graded_by"] for m in out_meta] == [r["graded_by"] for r in trl_rows]
    # the rollout records, field for field
    assert nemo_rows_ == trl_rows

    # the batch exercises what it should: ungraded verdicts, vetoes, and a real split between the graders
    assert sum(m["n_ungraded"] for m in out_meta) > 0
    if with_defense:
        assert 0 < sum(r["defense_vetoed"] for r in trl_rows) < len(trl_rows)
    routed = [r["teacher"] for r in trl_rows]
    assert (0 < sum(routed) < len(routed)) if with_teacher else not any(routed)
    assert all(r["graded_by"] == ("teacher" if r["teacher"] and teach.get("replace") else "judge") for r in trl_rows)
    assert {r["step"] for r in trl_rows} == {STEP} and [r["prompt_id"] for r in trl_rows][:3] == ["case-0"] * 3
