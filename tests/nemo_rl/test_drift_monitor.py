"""The gold-judge drift monitor inside NeMo RL v0.7.0's own machinery (local Ray, ``ray.init(num_cpus=2)``).

Real: NeMo RL's ``setup_response_data`` (the environment as a Ray actor from ``create_env``), our processor,
``rl_collate_fn``, ``run_multi_turn_rollout``, ``Logger``; the driver's :class:`StepReporter`; the verifiers; a real
HTTP judge client for the gold judge, talking to a local OpenAI-compatible grader whose verdict the test sets.
Stand-in: the policy's generation (a :class:`StubGeneration` that always answers in lowercase, so the training
reward is a known 1.0 and only the gold judge moves).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.nemo_rl.test_env_ray import StubGeneration, _batch, _jsonl, _nemo_logger, _rubrics


class Lowercase(StubGeneration):
    def _answer(self, prompt_text: str) -> str:
        return "all lowercase answer here."


class VerdictServer:
    """OpenAI-compatible grader: ``criteria_met`` is ``self.met``; counts requests."""

    def __init__(self):
        self.met = True
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                content = json.dumps({"explanation": "checked", "criteria_met": outer.met})
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def grader():
    g = VerdictServer()
    yield g
    g.close()


def _setup(tmp_path: Path, tokenizer: Any, env_cfg: dict[str, Any], n_prompts: int = 4):
    """Rows whose training rubric is the lowercase check alone and whose gold rubric adds an LLM criterion."""
    from nemo_rl.data.utils import setup_response_data

    from rubricrl.rubrics.schema import Criterion
    from rubricrl.train.nemo_rl_env import nemo_rl_row

    task, _ = _rubrics()
    gold = task.model_copy(update={"criteria": (*task.criteria, Criterion(id="quality", text="The answer is useful."))})
    data_path = tmp_path / "stage" / "nemo_rl" / "train.jsonl"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    with data_path.open("w", encoding="utf-8") as f:
        for i in range(n_prompts):
            conv = [{"role": "user", "content": f"Describe the weather on day {i}, in lowercase only."}]
            f.write(json.dumps(nemo_rl_row(conv, task, f"p{i}", monitor_rubric=gold)) + "\n")
    data_cfg = {
        "max_input_seq_length": 512,
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
    dataset, _val, task_to_env, val_task_to_env = setup_response_data(tokenizer, data_cfg, {"rubric": env_cfg})
    return dataset, task_to_env, val_task_to_env


def _env_cfg(tmp_path: Path, url: str, **monitor: Any) -> dict[str, Any]:
    judge = {
        "backend": "openai",
        "model": "gold",
        "base_url": url,
        "mode": "binary",
        "template": "healthbench",
        "retries": 0,
        "timeout_s": 30,
    }
    return {
        "judge": {"backend": "programmatic"},
        "stage": "stage1_rl",
        "group_size": 2,
        "metrics_path": str(tmp_path / "stage/nemo_rl/env_metrics.jsonl"),
        "rollouts_path": str(tmp_path / "stage/rollouts.jsonl"),
        "health_path": str(tmp_path / "stage/reward_health.json"),
        "min_steps_with_reward_variance": 0,  # every answer is lowercase: constant training rewards
        "monitor": {
            "judge": judge,
            "every_steps": 2,
            "sample": 1,
            "max_gap": 0.2,
            "window": 1,
            "seed": 0,
            "path": str(tmp_path / "stage/monitor.jsonl"),
            **monitor,
        },
    }


def test_monitor_metrics_reach_nemo_rl_logger_as_train_monitor_keys(ray_local, qwen_tokenizer, grader, tmp_path):
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    from rubricrl.train.nemo_rl_driver import StepReporter, rubric_envs

    dataset, task_to_env, val_task_to_env = _setup(tmp_path, qwen_tokenizer, _env_cfg(tmp_path, grader.url))
    logger, rec = _nemo_logger(tmp_path)
    reporter = StepReporter(rubric_envs(task_to_env, val_task_to_env), logger)
    gen = Lowercase(qwen_tokenizer)
    for step in (1, 2, 3):  # grpo_train: rollouts, then log_metrics(..., total_steps + 1, "train")
        run_multi_turn_rollout(
            gen, _batch(dataset, 2), qwen_tokenizer, task_to_env, max_seq_len=1024, max_rollout_turns=1
        )
        logger.log_metrics({"mean_gen_tokens_per_sample": 5.0}, step, prefix="train")
    reporter.finish()
    monitor_logs = [(s, m) for prefix, s, m in rec.logged if prefix == "train" and "monitor/gap" in m]
    assert [s for s, _ in monitor_logs] == [1, 2, 3]  # step 1, every 2nd, and the last (checked at finish)
    for _, m in monitor_logs:
        assert m["monitor/train_judge_reward"] == 1.0 and m["monitor/gold_judge_reward"] == pytest.approx(1.0)
        assert m["monitor/gap"] == pytest.approx(0.0) and m["monitor/n"] == 2.0 and m["monitor/skipped"] == 0.0
    rubric_logs = [m for prefix, _, m in rec.logged if prefix == "train/rubric"]
    assert len(rubric_logs) == 3 and not any(k.startswith("monitor/") for m in rubric_logs for k in m)
    checks = _jsonl(tmp_path / "stage/monitor.jsonl")
    assert [c["step"] for c in checks] == [1, 2, 3] and all(c["prompts"] == 1 and c["n"] == 2 for c in checks)
    records = _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3] and all("monitor/gap" in r for r in records)
    # 3 checks x 1 LLM criterion of the sampled prompt (its 2 rollouts are the same text, graded once): nothing else
    assert grader.requests == 3


def test_a_widening_gap_with_on_gap_stop_stops_training_and_a_restart_cuts_its_check(
    ray_local, qwen_tokenizer, grader, tmp_path
):
    from nemo_rl.environments.utils import create_env
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    from rubricrl.errors import UserError
    from rubricrl.train.nemo_rl_driver import StepReporter, rubric_envs

    cfg = _env_cfg(tmp_path, grader.url, on_gap="stop")
    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, cfg)
    logger, _rec = _nemo_logger(tmp_path)
    StepReporter(rubric_envs(task_to_env), logger)
    gen = Lowercase(qwen_tokenizer)

    def step(n: int, env_map: dict) -> None:
        run_multi_turn_rollout(gen, _batch(dataset, 2), qwen_tokenizer, env_map, max_seq_len=1024, max_rollout_turns=1)
        logger.log_metrics({"mean_gen_tokens_per_sample": 5.0}, n, prefix="train")

    step(1, task_to_env)
    step(2, task_to_env)  # closes step 1: its check, gold agrees (gap 0)
    grader.met = False  # from now on the gold judge's LLM criterion is not met: gold 2/3, training reward still 1
    with pytest.raises(UserError) as e:
        step(3, task_to_env)  # closes step 2: the gap widens to 1/3, past max_gap 0.2
    msg = str(e.value)
    assert "stopped by the gold-judge drift monitor (monitor.on_gap=stop)" in msg and "gold at " + grader.url in msg
    checks = _jsonl(tmp_path / "stage/monitor.jsonl")
    assert [c["step"] for c in checks] == [1, 2] and checks[1]["action"] == "stop"
    assert checks[1]["widening"] == pytest.approx(1 / 3)
    assert [r["step"] for r in _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")] == [1, 2]  # written first

    # The requeued job resumes after NeMo RL's checkpoint of step 1: step 2's check is cut, step 1's restored.
    second = create_env("rubric", {**cfg, "monitor": {**cfg["monitor"], "on_gap": "warn"}})
    cut = ray_local.get(second.resume.remote(1))
    assert cut["monitor_path_kept"] == 1 and cut["monitor_path_cut"] == 1
    grader.met = True
    for n in (2, 3):
        run_multi_turn_rollout(
            gen,
            _batch(dataset, 2),
            qwen_tokenizer,
            {k: second for k in task_to_env},
            max_seq_len=1024,
            max_rollout_turns=1,
        )
        ray_local.get(second.close_step.remote(n))
    ray_local.get(second.finish.remote())
    assert [c["step"] for c in _jsonl(tmp_path / "stage/monitor.jsonl")] == [1, 2, 3]
    summary = ray_local.get(second.drift_summary.remote())
    assert summary["checks"] == 3 and summary["valid_checks"] == 3 and summary["warnings"] == []
