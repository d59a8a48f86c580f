"""One scorer on both engines, with NeMo RL v0.7.0's own code: the rubric environment as a Ray actor, fed by
NeMo RL's data pipeline and rollout loops, scores a batch exactly as TRL's reward function does.

Real: NeMo RL's ``setup_response_data`` (our processor, ``create_env`` building the environment actor on a local
Ray), ``rl_collate_fn``, ``run_multi_turn_rollout`` / ``run_async_multi_turn_rollout``; the Qwen3 tokenizer; the
bank rubrics and the HTTP judge client. Stand-ins: the policy's generation (answers each prompt with the batch's
responses for it: no model runs) and the graders, scripted over HTTP (:mod:`tests.reward.scorer_cases`). The
same batch then goes through ``RubricRewardFunc`` in this process, and rewards, per-criterion values, teacher
routing and the rollout records must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.nemo_rl.test_env_ray import StubGeneration
from tests.reward.scorer_cases import (
    STEP,
    ScriptedGrader,
    cases,
    defense_rubric,
    env_config,
    nemo_rows,
    trl_judge,
    trl_run,
)


class CaseGeneration(StubGeneration):
    """:class:`StubGeneration` answering a prompt with the batch's responses for it, in turn."""

    def __init__(self, tokenizer: Any, batch: list[Any], async_engine: bool):
        super().__init__(tokenizer, async_engine=async_engine)
        self.batch = batch
        self._given: dict[str, int] = {}

    def _answer(self, prompt_text: str) -> str:
        case = next(c for c in self.batch if c.conversation[-1]["content"] in prompt_text)
        with self._lock:
            k = self._given.get(case.prompt_id, 0)
            self._given[case.prompt_id] = k + 1
        return case.responses[k % len(case.responses)]


@pytest.fixture
def graders():
    judge, teacher = ScriptedGrader("judge"), ScriptedGrader("teacher")
    yield judge, teacher
    judge.close()
    teacher.close()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_nemo_rl_rollouts_score_like_the_trl_reward_function(ray_local, qwen_tokenizer, graders, tmp_path, engine):
    from nemo_rl.data.collate_fn import rl_collate_fn
    from nemo_rl.data.utils import setup_response_data
    from nemo_rl.experience.rollouts import run_async_multi_turn_rollout, run_multi_turn_rollout

    judge, teacher = graders
    teach = {"fraction": 0.5, "replace": True, "seed": 5}
    batch, defense = cases(), defense_rubric()
    trl_rewards, trl_rows = trl_run(batch, trl_judge(judge, teacher, **teach), defense, tmp_path / "trl.jsonl")

    data_path = tmp_path / "stage" / "nemo_rl" / "train.jsonl"
    data_path.parent.mkdir(parents=True)
    data_path.write_text("".join(json.dumps(r) + "\n" for r in nemo_rows(batch, defense)), encoding="utf-8")
    data_cfg = {
        "max_input_seq_length": 1024,
        "shuffle": False,
        "num_workers": 1,
        "use_multiple_dataloader": False,
        "validation": None,
        "train": {
            "dataset_name": "ResponseDataset",
            "data_path": str(data_path),
            "processor": "rubricrl_rubric",
            "env_name": "rubric",
        },
    }
    env_cfg = env_config(judge, teacher, tmp_path / "stage" / "rollouts.jsonl", **teach)
    dataset, _, task_to_env, _ = setup_response_data(qwen_tokenizer, data_cfg, {"rubric": env_cfg})
    env = next(iter(task_to_env.values()))
    rows = rl_collate_fn([dataset[i] for i in range(len(dataset))]).repeat_interleave(len(batch[0].responses))
    gen = CaseGeneration(qwen_tokenizer, batch, async_engine=engine == "async")
    rollout = run_async_multi_turn_rollout if engine == "async" else run_multi_turn_rollout
    final, _ = rollout(gen, rows, qwen_tokenizer, task_to_env, max_seq_len=2048, max_rollout_turns=1)
    ray_local.get(env.close_step.remote(STEP))
    ray_local.get(env.finish.remote())
    nemo_rows_ = _jsonl(tmp_path / "stage" / "rollouts.jsonl")

    def key(prompt_id: str, completion: str) -> tuple[str, str]:
        return prompt_id, completion

    trl_by = {key(r["prompt_id"], r["completion"]): r for r in trl_rows}
    assert len(trl_by) == len(trl_rows) == len(nemo_rows_)
    # the rewards NeMo RL trains on, rollout by rollout
    for log, total in zip(final["message_log"], final["total_reward"].tolist()):
        user = "".join(m["content"] for m in log if m["role"] == "user")
        answer = "".join(m["content"] for m in log if m["role"] == "assistant").strip()
        case = next(c for c in batch if c.conversation[-1]["content"] in user)
        assert total == pytest.approx(trl_by[key(case.prompt_id, answer)]["reward"], abs=1e-6)
    # the rollout records (rewards, per-criterion values, teacher routing), field for field
    assert sorted(nemo_rows_, key=lambda r: key(r["prompt_id"], r["completion"])) == sorted(
        trl_rows, key=lambda r: key(r["prompt_id"], r["completion"])
    )
    assert sorted(r["reward"] for r in trl_rows) == sorted(trl_rewards)
    routed = [r["teacher"] for r in trl_rows]
    assert 0 < sum(routed) < len(routed) and 0 < sum(r["defense_vetoed"] for r in trl_rows) < len(trl_rows)
