"""The rubric environment inside NeMo RL v0.7.0's own machinery, on a local Ray (``ray.init(num_cpus=2)``).

Real: NeMo RL's registries, ``setup_response_data`` (which builds the environment with ``create_env`` as a
Ray actor), ``AllTaskProcessedDataset`` with our processor, ``rl_collate_fn``, ``run_multi_turn_rollout``,
``run_async_multi_turn_rollout`` and ``Logger``; the rubric banks' verifiers; the Qwen3 tokenizer. Stand-ins:
the policy's generation (:class:`StubGeneration` answers with canned texts: no model runs here) and, where
an LLM judge is needed, a small local OpenAI-compatible HTTP grader (the real vLLM judge has its own tests).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rubricrl.rubrics.loader import load_rubrics

REPO = Path(__file__).resolve().parents[2]
ANSWERS = ("all lowercase answer here.", "Not Lowercase At All.", "great question! all lowercase here.")


# --------------------------------------------------------------------------- stand-ins


class StubGeneration:
    """A GenerationInterface answering each prompt with ``ANSWERS[k % 3]`` (k counts answers given).

    Subclasses change what is answered by overriding :meth:`_answer`, which sees the decoded prompt.
    """

    def __init__(self, tokenizer: Any, async_engine: bool = False):
        self.tok = tokenizer
        self.cfg = {"backend": "vllm", "vllm_cfg": {"async_engine": async_engine}}
        self._k = 0
        self._lock = threading.Lock()

    def _answer(self, prompt_text: str) -> str:
        with self._lock:
            self._k += 1
            return ANSWERS[(self._k - 1) % len(ANSWERS)]

    def generate(self, data: Any, greedy: bool = False) -> Any:
        import torch
        from nemo_rl.distributed.batched_data_dict import BatchedDataDict

        rows, gen_lens, lens = [], [], []
        for ids, n in zip(data["input_ids"], data["input_lengths"].tolist()):
            answer = self._answer(self.tok.decode(ids[:n]))
            resp = torch.tensor(self.tok(answer + "<|im_end|>", add_special_tokens=False)["input_ids"])
            rows.append(torch.cat([ids[:n], resp]))
            gen_lens.append(len(resp))
            lens.append(n + len(resp))
        width = max(len(r) for r in rows)
        out = torch.full((len(rows), width), self.tok.pad_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return BatchedDataDict(
            {
                "output_ids": out,
                "logprobs": torch.zeros(out.shape, dtype=torch.float32),
                "generation_lengths": torch.tensor(gen_lens),
                "unpadded_sequence_lengths": torch.tensor(lens),
            }
        )

    async def generate_async(self, data: Any, greedy: bool = False):
        for i in range(len(data["input_ids"])):
            await asyncio.sleep(0.01)
            yield i, self.generate(data.select_indices([i]), greedy)

    def finish_generation(self) -> None:
        pass


class SlowGrader:
    """OpenAI-compatible grader: every criterion met, after ``delay_s``; counts requests."""

    def __init__(self, delay_s: float = 0.0):
        self.requests = 0
        grader = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                grader.requests += 1
                time.sleep(delay_s)
                content = json.dumps({"explanation": "ok", "criteria_met": True})
                out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- data


def _rubrics():
    from rubricrl.train.rewards import programmatic_only

    bank = load_rubrics([REPO / "rubric_banks" / "stage1_instruction_following"])
    task = next(r for r in bank if r.id == "if-all-lowercase")
    task = task.model_copy(update={"criteria": tuple(c for c in task.criteria if c.kind == "programmatic")})
    defense = programmatic_only(
        next(r for r in load_rubrics([REPO / "rubric_banks" / "defense"]) if r.id == "defense-reward-hacking")
    )
    return task, defense


def _write_rows(path: Path, n_prompts: int) -> None:
    from rubricrl.train.nemo_rl_env import nemo_rl_row

    task, defense = _rubrics()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n_prompts):
            conv = [{"role": "user", "content": f"Describe the weather on day {i}, in lowercase only."}]
            f.write(json.dumps(nemo_rl_row(conv, task, f"p{i}", defense=defense)) + "\n")


def _expected_reward(answer: str) -> float:
    if answer.startswith("great question"):
        return 0.0  # the defense rubric vetoes flattery: its floor
    return 1.0 if answer == answer.lower() else 0.0


def _setup(tmp_path: Path, tokenizer: Any, env_cfg: dict[str, Any], n_prompts: int = 4):
    """NeMo RL's own data + environment set-up on our rows: (dataset, task_to_env)."""
    from nemo_rl.data.utils import setup_response_data

    data_path = tmp_path / "stage" / "nemo_rl" / "train.jsonl"
    _write_rows(data_path, n_prompts)
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


def _batch(dataset: Any, generations: int) -> Any:
    from nemo_rl.data.collate_fn import rl_collate_fn

    return rl_collate_fn([dataset[i] for i in range(len(dataset))]).repeat_interleave(generations)


def _programmatic_env(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "judge": {"backend": "programmatic"},
        "metrics_path": str(tmp_path / "stage/nemo_rl/env_metrics.jsonl"),
        "rollouts_path": str(tmp_path / "stage/rollouts.jsonl"),
        "group_size": 2,
        "stage": "stage1_rl",
        **extra,
    }


def _answers(final_batch: Any) -> list[str]:
    return [
        "".join(m["content"] for m in log if m["role"] == "assistant").replace("<|im_end|>", "").strip()
        for log in final_batch["message_log"]
    ]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


# --------------------------------------------------------------------------- tests


def test_registration_and_create_env_make_a_real_ray_actor(ray_local, tmp_path):
    from nemo_rl.data.processors import PROCESSOR_REGISTRY
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.environments.interfaces import EnvironmentReturn
    from nemo_rl.environments.utils import ENV_REGISTRY, create_env

    from rubricrl.train import nemo_rl_env

    assert ENV_REGISTRY["rubric"]["actor_class_fqn"] == nemo_rl_env.ACTOR_FQN
    assert PROCESSOR_REGISTRY["rubricrl_rubric"] is nemo_rl_env.rubric_data_processor
    assert nemo_rl_env.ACTOR_FQN in ACTOR_ENVIRONMENT_REGISTRY
    env = create_env("rubric", _programmatic_env(tmp_path))
    task, _ = _rubrics()
    row = nemo_rl_env.nemo_rl_row([{"role": "user", "content": "hi"}], task, "p0")
    meta = {"conversation": row["messages"], "rubric": row["rubric_json"], "prompt_id": "p0"}
    out = ray_local.get(env.step.remote([[{"role": "assistant", "content": "fine, all lowercase."}]], [meta]))
    assert isinstance(out, EnvironmentReturn) and out.rewards.tolist() == [1.0]
    assert ray_local.get(env.counters.remote())["samples"] == 1


def test_sync_rollout_through_nemo_rl_data_pipeline(ray_local, qwen_tokenizer, tmp_path):
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, _programmatic_env(tmp_path))
    ((task_name, env),) = task_to_env.items()
    # NeMo RL names the task after the data file ("nemo_rl-train"), not the environment.
    assert task_name == "nemo_rl-train" and dataset[0]["task_name"] == task_name
    assert dataset[0]["extra_env_info"]["prompt_id"] == "p0" and "defense" in dataset[0]["extra_env_info"]
    final, metrics = run_multi_turn_rollout(
        StubGeneration(qwen_tokenizer),
        _batch(dataset, 2),
        qwen_tokenizer,
        task_to_env,
        max_seq_len=1024,
        max_rollout_turns=1,
    )
    answers = _answers(final)
    assert final["total_reward"].tolist() == [_expected_reward(a) for a in answers]
    assert len(answers) == 8 and set(answers) == set(ANSWERS)
    assert ray_local.get(env.counters.remote())["step_calls"] == 1  # one batched step call


def test_async_rollout_calls_step_per_sample_and_rows_carry_the_grpo_step(ray_local, qwen_tokenizer, tmp_path):
    from nemo_rl.experience.rollouts import run_async_multi_turn_rollout

    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, _programmatic_env(tmp_path), n_prompts=5)
    env = next(iter(task_to_env.values()))
    gen = StubGeneration(qwen_tokenizer, async_engine=True)
    totals = []
    for step in (1, 2):
        final, _ = run_async_multi_turn_rollout(
            gen, _batch(dataset, 2), qwen_tokenizer, task_to_env, max_seq_len=1024, max_rollout_turns=1
        )
        assert final["total_reward"].tolist() == [_expected_reward(a) for a in _answers(final)]
        totals.append(final["total_reward"].tolist())
        ray_local.get(env.close_step.remote(step))
    summary = ray_local.get(env.finish.remote())
    counters = ray_local.get(env.counters.remote())
    assert counters["step_calls"] == 20 and counters["samples"] == 20  # once per sample (async engine)
    assert counters["steps_closed"] == 2 and counters["pending"] == 0
    rows = _jsonl(tmp_path / "stage/rollouts.jsonl")
    assert [r["step"] for r in rows] == [1] * 10 + [2] * 10  # GRPO steps, not step calls
    records = _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")
    assert [(r["step"], r["samples"]) for r in records] == [(1, 10), (2, 10)]  # one record per GRPO step
    assert records[0]["reward/mean"] == pytest.approx(sum(totals[0]) / 10)
    assert summary["ok"] and summary["steps_observed"] == 2


def test_many_concurrent_first_steps_build_one_judge(ray_local, tmp_path):
    from nemo_rl.environments.utils import create_env

    from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric
    from rubricrl.train.nemo_rl_env import nemo_rl_row, write_endpoints

    grader = SlowGrader(delay_s=0.05)
    endpoint = tmp_path / "judge.endpoint.json"
    env = create_env(
        "rubric",
        {
            "judge": {
                "backend": "openai",
                "model": "m",
                "base_url_file": str(endpoint),
                "retries": 0,
                "concurrency": 8,
            },
            "endpoint_wait_s": 60,
            "metrics_path": str(tmp_path / "m.jsonl"),
            "rollouts_path": str(tmp_path / "r.jsonl"),
            "min_steps_with_reward_variance": 0,
        },
    )
    rubric = Rubric(
        id="r",
        scope="instance",
        criteria=(Criterion(id="c1", text="is kind", points=1), Criterion(id="c2", text="is brief", points=1)),
        aggregation=AggregationSpec(name="points_ratio"),
    )
    refs = []
    for i in range(64):
        row = nemo_rl_row([{"role": "user", "content": f"q{i}"}], rubric, f"p{i}")
        meta = {"conversation": row["messages"], "rubric": row["rubric_json"], "prompt_id": f"p{i}"}
        refs.append(env.step.remote([[{"role": "assistant", "content": f"answer {i}"}]], [meta]))
    time.sleep(1.5)  # every first call is now waiting for the endpoint file
    write_endpoints(endpoint, [grader.url])
    outs = ray_local.get(refs, timeout=120)
    assert [o.rewards.tolist() for o in outs] == [[1.0]] * 64
    ray_local.get(env.close_step.remote(7))
    ray_local.get(env.finish.remote())
    counters = ray_local.get(env.counters.remote())
    assert counters["judges_built"] == 1  # was: one judge per concurrent first call
    assert counters["step_calls"] == 64 and counters["samples"] == 64  # no lost counts
    (record,) = _jsonl(tmp_path / "m.jsonl")
    assert record["step"] == 7 and record["samples"] == 64 and record["verdicts"] == 128
    assert record["judge/calls"] == 128 == grader.requests and record["judge/graded"] == 128
    assert len(_jsonl(tmp_path / "r.jsonl")) == 64
    grader.close()


class _Recorder:
    """A NeMo RL logger backend that keeps what it is given."""

    def __init__(self):
        self.logged: list[tuple[str, int, dict]] = []

    def log_metrics(self, metrics, step, prefix="", step_metric=None, step_finished=False):
        self.logged.append((prefix, step, dict(metrics)))

    def log_hyperparams(self, params):
        pass


def _nemo_logger(tmp_path: Path) -> tuple[Any, _Recorder]:
    from nemo_rl.utils.logger import Logger

    logger = Logger(
        {
            "log_dir": str(tmp_path / "logs"),
            "wandb_enabled": False,
            "swanlab_enabled": False,
            "tensorboard_enabled": False,
            "mlflow_enabled": False,
            "wandb": {},
            "monitor_gpus": False,
            "gpu_monitoring": {"collection_interval": 10, "flush_interval": 10},
        }
    )
    rec = _Recorder()
    logger.loggers.append(rec)
    return logger, rec


def test_step_reporter_with_nemo_rl_logger_logs_rubric_metrics_per_step(ray_local, qwen_tokenizer, tmp_path):
    from nemo_rl.experience.rollouts import run_async_multi_turn_rollout

    from rubricrl.train.nemo_rl_driver import StepReporter, rubric_envs

    dataset, task_to_env, val_task_to_env = _setup(tmp_path, qwen_tokenizer, _programmatic_env(tmp_path))
    envs = rubric_envs(task_to_env, val_task_to_env)
    assert len(envs) == 1  # found by its methods, whatever NeMo RL named the task
    logger, rec = _nemo_logger(tmp_path)
    reporter = StepReporter(envs, logger)
    gen = StubGeneration(qwen_tokenizer, async_engine=True)
    for step in (1, 2, 3):  # what grpo_train does: rollouts, then log_metrics(..., total_steps + 1, "train")
        run_async_multi_turn_rollout(
            gen, _batch(dataset, 2), qwen_tokenizer, task_to_env, max_seq_len=1024, max_rollout_turns=1
        )
        logger.log_metrics({"mean_gen_tokens_per_sample": 5.0}, step, prefix="train")
        logger.log_metrics({"loss": 0.1}, step, prefix="train")  # the end-of-step log of the same step
    summaries = reporter.finish()
    rubric_logs = [(step, m) for prefix, step, m in rec.logged if prefix == "train/rubric"]
    assert [s for s, _ in rubric_logs] == [1, 2, 3]
    assert all(m["reward/mean"] >= 0 and "reward/std" in m for _, m in rubric_logs)
    assert summaries[0]["steps_observed"] == 3
    assert [r["step"] for r in _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")] == [1, 2, 3]


def test_a_judge_that_times_out_stops_training_with_a_clear_error(ray_local, qwen_tokenizer, tmp_path):
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    from rubricrl.errors import UserError
    from rubricrl.train.nemo_rl_driver import StepReporter, rubric_envs

    grader = SlowGrader(delay_s=3.0)
    task, _ = _rubrics()
    llm_task = task.model_copy(update={"id": "llm-task"})
    env_cfg = {
        "judge": {"backend": "openai", "model": "slow-judge", "base_url": grader.url, "timeout_s": 0.2, "retries": 0},
        "metrics_path": str(tmp_path / "stage/nemo_rl/env_metrics.jsonl"),
        "stage": "stage2_rl",
        "health_path": str(tmp_path / "stage/reward_health.json"),
    }
    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, env_cfg, n_prompts=2)
    # Make the rows' task rubric LLM-judged: every verdict then goes to the slow judge.
    from rubricrl.rubrics.schema import Criterion

    llm = llm_task.model_copy(update={"criteria": (Criterion(id="tone", text="is friendly", weight=1.0),)})
    batch = _batch(dataset, 2)
    for info in batch["extra_env_info"]:
        info["rubric"] = llm.model_dump_json()
        info.pop("defense", None)
    logger, _ = _nemo_logger(tmp_path)
    _reporter = StepReporter(rubric_envs(task_to_env), logger)
    run_multi_turn_rollout(
        StubGeneration(qwen_tokenizer), batch, qwen_tokenizer, task_to_env, max_seq_len=1024, max_rollout_turns=1
    )
    with pytest.raises(UserError) as e:
        logger.log_metrics({"mean_gen_tokens_per_sample": 5.0}, 1, prefix="train")
    msg = str(e.value)
    assert "no learning signal" in msg and "4 of 4 verdicts ungraded" in msg
    assert "slow-judge at " + grader.url in msg and "judge.timeout_s" in msg
    health = json.loads((tmp_path / "stage/reward_health.json").read_text())
    assert health["ok"] is False and health["ungraded"] == 4 and health["verdicts"] == 4
    grader.close()


def test_step_timer_gives_reward_time_and_share_per_step(ray_local, qwen_tokenizer, tmp_path):
    """NeMo RL's ``timing/train`` log of a step + the environment's grading time -> ``timing/*`` (logged
    through NeMo RL's Logger and written in the step's metrics record)."""
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    from rubricrl.rubrics.schema import Criterion
    from rubricrl.train.nemo_rl_driver import StepReporter, rubric_envs

    delay = 0.4
    grader = SlowGrader(delay_s=delay)
    task, _ = _rubrics()
    llm = task.model_copy(
        update={"id": "llm-task", "criteria": (Criterion(id="tone", text="is friendly", weight=1.0),)}
    )
    env_cfg = {
        "judge": {
            "backend": "openai",
            "model": "slow-judge",
            "base_url": grader.url,
            "timeout_s": 30,
            "retries": 0,
            "concurrency": 1,
        },
        "metrics_path": str(tmp_path / "stage/nemo_rl/env_metrics.jsonl"),
        "stage": "stage2_rl",
        "min_steps_with_reward_variance": 0,
    }  # the grader meets every criterion: constant rewards
    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, env_cfg, n_prompts=2)
    logger, rec = _nemo_logger(tmp_path)
    reporter = StepReporter(rubric_envs(task_to_env), logger)
    for step in (1, 2):
        batch = _batch(dataset, 2)
        for info in batch["extra_env_info"]:
            info["rubric"] = llm.model_dump_json()
            info.pop("defense", None)
        run_multi_turn_rollout(
            StubGeneration(qwen_tokenizer), batch, qwen_tokenizer, task_to_env, max_seq_len=1024, max_rollout_turns=1
        )
        logger.log_metrics({"mean_gen_tokens_per_sample": 5.0}, step, prefix="train")
        # NeMo RL's end-of-step timer log; the generation timer holds the environment's step calls
        logger.log_metrics(
            {"total_step_time": 60.0, "generation": 40.0, "policy_training": 15.0},
            step,
            prefix="timing/train",
            step_finished=True,
        )
    reporter.finish()
    timing = [(s, m) for prefix, s, m in rec.logged if prefix == "timing"]
    assert [s for s, _ in timing] == [1, 2]
    for _, m in timing:
        # 4 rollouts x 1 criterion, one request at a time at >= delay each; distinct texts may dedupe
        assert delay <= m["reward_s"] < 40.0
        assert m["generation_s"] == pytest.approx(40.0 - m["reward_s"])
        assert m["train_s"] == pytest.approx(20.0) and m["step_s"] == 60.0
        assert m["reward_share"] == pytest.approx(m["reward_s"] / 60.0)
        assert m["reward_overlapped"] == 0.0
        assert m["judge_compute_s"] >= delay and m["judge_queue_wait_s"] >= 0.0
    records = _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert [r["timing/reward_s"] for r in records] == [m["reward_s"] for _, m in timing]
    grader.close()


def test_a_restart_cuts_the_dead_attempts_rows_so_no_step_appears_twice(ray_local, qwen_tokenizer, tmp_path):
    import hashlib

    from nemo_rl.environments.utils import create_env
    from nemo_rl.experience.rollouts import run_multi_turn_rollout

    cfg = _programmatic_env(tmp_path, health_path=str(tmp_path / "stage/reward_health.json"))
    dataset, task_to_env, _ = _setup(tmp_path, qwen_tokenizer, cfg)
    gen = StubGeneration(qwen_tokenizer)

    def run_steps(env, steps):
        for step in steps:
            run_multi_turn_rollout(
                gen,
                _batch(dataset, 2),
                qwen_tokenizer,
                {k: env for k in task_to_env},
                max_seq_len=1024,
                max_rollout_turns=1,
            )
            ray_local.get(env.close_step.remote(step))

    first = next(iter(task_to_env.values()))
    ray_local.get(first.resume.remote(0))
    run_steps(first, (1, 2, 3))  # the attempt dies during step 3, after its checkpoint of step 2
    ray_local.kill(first)
    with (tmp_path / "stage/rollouts.jsonl").open("a") as f:
        f.write('{"step": 3, "prompt": "torn')  # killed mid-write
    second = create_env("rubric", cfg)  # the requeued job: NeMo RL resumes after step 2
    cut = ray_local.get(second.resume.remote(2))
    assert cut["rollouts_path_cut"] == 8 and cut["rollouts_path_kept"] == 16
    run_steps(second, (3, 4))
    summary = ray_local.get(second.finish.remote())
    steps = [r["step"] for r in _jsonl(tmp_path / "stage/rollouts.jsonl")]
    assert steps == [1] * 8 + [2] * 8 + [3] * 8 + [4] * 8
    assert [r["step"] for r in _jsonl(tmp_path / "stage/nemo_rl/env_metrics.jsonl")] == [1, 2, 3, 4]
    assert summary["steps_observed"] == 4  # steps 1-2 restored from reward_health.json
    # A file that is not this environment's output is refused and left as it was.
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"step": 9}\nsome notes\n')
    before = hashlib.sha256(foreign.read_bytes()).hexdigest()
    third = create_env("rubric", _programmatic_env(tmp_path, rollouts_path=str(foreign)))
    with pytest.raises(Exception) as e:
        ray_local.get(third.resume.remote(0))
    assert "not a per-step record" in str(e.value)
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == before
