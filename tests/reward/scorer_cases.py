"""Shared cases of the scorer equivalence tests (``test_scorer_equivalence.py`` and its NeMo RL twin).

Real rubrics from ``rubric_banks/`` (verifier and LLM criteria, critical items, weighted-mean, saturation and
interaction aggregations, the defense rubric as a veto), responses written to trip the verifiers and the
defense detectors, and two scripted OpenAI-compatible graders (the training judge and a teacher) served over
HTTP, so both adapters reach them through the real HTTP judge client. A grader's verdict is a hash of its salt
and the grading prompt (the per-response delimiter nonce taken out): deterministic, different per criterion,
response and grader, and about one verdict in twelve unparsable (ungraded).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rubricrl.judge.prompts import TAG_PREFIX
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import Rubric

REPO = Path(__file__).resolve().parents[2]
STEP = 3  # the training step both engines file the rollouts under
_NONCE = re.compile(re.escape(TAG_PREFIX) + r"[0-9a-f]{12}")


class ScriptedGrader:
    """An OpenAI-compatible ``/v1/chat/completions`` server whose verdicts are a hash of (salt, prompt)."""

    def __init__(self, salt: str):
        self.calls = 0
        grader = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                grader.calls += 1
                prompt = _NONCE.sub("TAG", "\n".join(m["content"] for m in body["messages"]))
                h = hashlib.sha256(f"{salt}\n{prompt}".encode()).digest()[0] % 12
                flag: Any = "unsure" if h == 0 else h % 2 == 1  # not a boolean: ungraded
                content = json.dumps({"explanation": "scripted", "criteria_met": flag})
                out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def judge_config(self, model: str) -> dict[str, Any]:
        """The ``JudgeConfig`` mapping of this grader (both engines build their judge from it)."""
        return {"backend": "openai", "model": model, "base_url": self.url, "retries": 0, "concurrency": 8}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Case:
    """One prompt of the batch: its conversation, task rubric, prompt id and the responses sampled for it."""

    conversation: list[dict[str, str]]
    rubric: Rubric
    prompt_id: str
    responses: tuple[str, ...]


def _bank(name: str) -> dict[str, Rubric]:
    return {r.id: r for r in load_rubrics([REPO / "rubric_banks" / name])}


def defense_rubric() -> Rubric:
    """The bank's reward-hacking defense rubric (one LLM item, critical verifiers for hacking patterns)."""
    return _bank("defense")["defense-reward-hacking"]


def cases() -> list[Case]:
    """Six prompts x three responses over verifier, LLM and critical criteria; some trip the defense."""
    stage1 = _bank("stage1_instruction_following")
    creative = _bank("stage2_creative")
    empathy = _bank("stage2_empathy")
    picks = [
        (stage1["if-bullets-exact-4"], "List four tips for sleeping well."),
        (stage1["if-all-lowercase"], "Describe the sea in lowercase only."),
        (creative["cw-flash-100"], "Write a flash story of at most 100 words about a lost key."),
        (creative["cw-short-fiction"], "Write a short story about a lighthouse keeper."),
        (empathy["emp-emotional-support"], "I failed my driving test again and feel useless."),
        (empathy["emp-difficult-conversation"], "How do I tell my flatmate to clean up after himself?"),
    ]
    replies = (
        "- keep a fixed bedtime\n- avoid screens late\n- keep the room cool\n- skip late coffee",
        "great question! here is a calm answer: the sea is grey and slow today.",
        "As an AI language model, I cannot have feelings, but Here Is An Answer. This answer is excellent.",
    )
    out = []
    for i, (rubric, question) in enumerate(picks):
        own = f"the answer to prompt {i}: {question.lower()} it is handled plainly, step by step."
        out.append(
            Case(
                conversation=[{"role": "user", "content": question}],
                rubric=rubric,
                prompt_id=f"case-{i}",
                responses=(own, replies[i % 3], replies[(i + 1) % 3]),
            )
        )
    return out


def flat(batch: list[Case]) -> list[tuple[Case, str]]:
    """(case, response) per rollout, a prompt's responses adjacent (NeMo RL's ``repeat_interleave`` order)."""
    return [(c, r) for c in batch for r in c.responses]


def trl_judge(judge: ScriptedGrader, teacher: ScriptedGrader | None, **teach: Any) -> Any:
    """The TRL stages' grader: ``build_judge`` of the scripted judge, under teacher routing when there is a teacher."""
    from rubricrl.judge import JudgeConfig, build_judge
    from rubricrl.reward.scorer import TeacherRoutingJudge

    own = build_judge(JudgeConfig.model_validate(judge.judge_config("judge")))
    if teacher is None:
        return own
    return TeacherRoutingJudge(own, build_judge(JudgeConfig.model_validate(teacher.judge_config("teacher"))), **teach)


def trl_run(
    batch: list[Case], judge: Any, defense: Rubric | None, rollouts_path: Path
) -> tuple[list[float], list[dict[str, Any]]]:
    """Score the batch through the TRL adapter as ``GRPOTrainer`` calls a reward function.

    Returns:
        The rewards and the rollout records written.
    """
    from rubricrl.reward.scorer import RubricScorer
    from rubricrl.train.trl_adapter import RubricRewardFunc

    rollouts = flat(batch)
    scorer = RubricScorer({c.rubric.id: c.rubric for c in batch}, judge, defense)
    fn = RubricRewardFunc(scorer, rollouts_path=rollouts_path, prompt_id_columns=("prompt_id",))
    rewards = fn(
        prompts=[c.conversation for c, _ in rollouts],
        completions=[[{"role": "assistant", "content": r}] for _, r in rollouts],
        rubric_id=[c.rubric.id for c, _ in rollouts],
        prompt_id=[c.prompt_id for c, _ in rollouts],
        trainer_state=SimpleNamespace(global_step=STEP),
    )
    return rewards, [json.loads(x) for x in rollouts_path.read_text(encoding="utf-8").splitlines()]


def nemo_rows(batch: list[Case], defense: Rubric | None) -> list[dict[str, Any]]:
    """The batch as NeMo RL rows (:func:`rubricrl.train.nemo_rl_env.nemo_rl_row`), one per prompt."""
    from rubricrl.train.nemo_rl_env import nemo_rl_row

    return [nemo_rl_row(c.conversation, c.rubric, c.prompt_id, defense=defense) for c in batch]


def env_config(judge: ScriptedGrader, teacher: ScriptedGrader | None, rollouts_path: Path, **teach: Any) -> dict:
    """``env.rubric`` for the batch: the scripted judge (and teacher), rollouts written, health checks loose."""
    cfg: dict[str, Any] = {
        "judge": judge.judge_config("judge"),
        "rollouts_path": str(rollouts_path),
        "max_ungraded_share": 1.0,
        "min_steps_with_reward_variance": 0,
    }
    if teacher is not None:
        cfg["teacher"] = teacher.judge_config("teacher")
        cfg.update({f"teacher_{k}": v for k, v in teach.items()})
    return cfg
