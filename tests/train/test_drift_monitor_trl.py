"""The gold-judge drift monitor on the TRL path: the reward function grades a sample of a check step's rollouts with a
second judge and logs ``monitor/*``; real TRL GRPO (tiny random Qwen3) carries them to log_history and W&B, stops
on ``monitor.on_gap=stop`` without a final model, and a resumed stage cuts the dead attempt's checks.

The gold judge is a real HTTP judge client (``build_judge``, binary mode, HealthBench template) talking to a local
OpenAI-compatible server whose verdict the test sets; the training reward is the programmatic verifiers on the
programmatic-only rubric, and the gold judge grades the whole bank rubric (its LLM criterion too), as Rubicon's
stage 1 does.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from rubricrl.config import compose_experiment
from rubricrl.config.schema import MonitorConfig
from rubricrl.errors import UserError
from rubricrl.judge import JudgeConfig, build_judge
from rubricrl.reward.drift import DriftMonitorError
from rubricrl.reward.drift_file import read_checks
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.train.drift_monitor import GoldMonitor, build_gold_judge, stage_monitor, thresholds_of
from rubricrl.train.rewards import RubricScorer, programmatic_only
from rubricrl.train.trl_adapter import RubricRewardFunc

REPO = Path(__file__).resolve().parents[2]


class VerdictServer:
    """OpenAI-compatible grader answering ``criteria_met: <self.met>`` (and the top tier, 3, or 0 for a tiered
    criterion); counts requests."""

    def __init__(self, met: bool = True):
        self.met = met
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                content = json.dumps(
                    {"explanation": "checked", "criteria_met": outer.met, "score": 3 if outer.met else 0}
                )
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


def _rubrics():
    bank = {r.id: r for r in load_rubrics([REPO / "rubric_banks/stage1_instruction_following"])}
    ids = ["if-all-lowercase", "if-no-commas"]
    return {i: programmatic_only(bank[i]) for i in ids}, {i: bank[i] for i in ids}


def _gold_cfg(url: str, **kw) -> MonitorConfig:
    judge = {
        "backend": "openai",
        "model": "gold",
        "base_url": url,
        "mode": "binary",
        "template": "healthbench",
        "retries": 0,
        "timeout_s": 30,
    }
    return MonitorConfig.model_validate({"judge": judge, **kw})


def _monitor(mcfg: MonitorConfig, path: Path, gold_rubrics, last_step: int, stage: str = "stage1_rl") -> GoldMonitor:
    return GoldMonitor(
        thresholds_of(mcfg),
        every_steps=mcfg.every_steps,
        sample=mcfg.sample,
        seed=0,
        path=path,
        judge=build_gold_judge(mcfg),
        label="gold",
        train_label="verifiers",
        stage=stage,
        last_step=last_step,
        rubrics=gold_rubrics,
    )


def test_reward_function_checks_the_sampled_prompts_of_check_steps_only(grader, tmp_path):
    train, gold = _rubrics()
    mcfg = _gold_cfg(grader.url, every_steps=10, sample=1)
    mon = _monitor(mcfg, tmp_path / "monitor.jsonl", gold, last_step=3)
    fn = RubricRewardFunc(RubricScorer(train, build_judge(JudgeConfig(backend="programmatic"))), monitor=mon)
    prompts = [[{"role": "user", "content": f"Describe item {i}."}] for i in (0, 0, 1, 1)]
    completions = ["all lowercase here.", "Not Lowercase.", "lower case too.", "Upper Case."]
    kw = {"rubric_id": ["if-all-lowercase"] * 4, "id": ["a", "a", "b", "b"]}
    logged: list[tuple[int, dict[str, float]]] = []
    for step in (1, 2, 3):  # TRL's trainer_state.global_step is the step before the one being computed
        metrics: dict[str, float] = {}
        rewards = fn(
            prompts,
            completions,
            trainer_state=SimpleNamespace(global_step=step - 1),
            log_metric=lambda k, v, m=metrics: m.__setitem__(k, v),
            **kw,
        )
        assert rewards == [1.0, 0.0, 1.0, 0.0]  # the training reward is untouched by the monitor
        logged.append((step, {k: v for k, v in metrics.items() if k.startswith("monitor/")}))
    assert [s for s, m in logged if m] == [1, 3]  # step 1 (baseline) and the last; 10 is never reached
    m1 = logged[0][1]
    assert m1["monitor/n"] == 2.0 and m1["monitor/train_judge_reward"] == 0.5
    # gold = the whole rubric: lowercase check (weight 2) + task quality (LLM, top tier): (2*1+1)/3 and (2*0+1)/3
    assert m1["monitor/gold_judge_reward"] == pytest.approx(2 / 3)
    assert m1["monitor/gap"] == pytest.approx(0.5 - 2 / 3) and m1["monitor/skipped"] == 0.0
    assert grader.requests == 4  # 2 checks x 2 rollouts x 1 LLM criterion: only the sampled prompt's rollouts
    rows = read_checks(tmp_path / "monitor.jsonl")
    assert [r["step"] for r in rows] == [1, 3] and all(r["prompts"] == 1 and r["gold_verdicts"] == 2 for r in rows)
    assert mon.summary()["valid_checks"] == 2


def test_a_gold_judge_that_cannot_answer_skips_the_check_and_training_goes_on(tmp_path):
    train, gold = _rubrics()
    mcfg = _gold_cfg("http://127.0.0.1:9/v1", every_steps=1, sample=2)  # nothing listens there
    mon = _monitor(mcfg, tmp_path / "monitor.jsonl", gold, last_step=1)
    fn = RubricRewardFunc(RubricScorer(train, build_judge(JudgeConfig(backend="programmatic"))), monitor=mon)
    metrics: dict[str, float] = {}
    rewards = fn(
        [[{"role": "user", "content": "x"}]] * 2,
        ["lower.", "Upper."],
        rubric_id=["if-all-lowercase"] * 2,
        trainer_state=SimpleNamespace(global_step=0),
        log_metric=lambda k, v: metrics.__setitem__(k, v),
    )
    assert rewards == [1.0, 0.0]
    assert metrics["monitor/skipped"] == 1.0 and "monitor/gold_judge_reward" not in metrics
    (row,) = read_checks(tmp_path / "monitor.jsonl")
    assert row["gold_judge_reward"] is None and "2 of 2 verdicts ungraded" in row["skipped"]


def test_an_http_gold_judge_needs_an_endpoint_or_one_to_share(tmp_path):
    cfg = compose_experiment(
        "rubicon", [f"run.root={tmp_path}", "server.enabled=false", "judge.base_url=null", "monitor.judge.model=gold"]
    )
    with pytest.raises(UserError, match="monitor.judge .backend openai. has no base_url or base_url_file"):
        stage_monitor(cfg, "stage1_rl", tmp_path, last_step=2, train_label="t", shared=cfg.judge)
    shared = JudgeConfig(base_url="http://127.0.0.1:1/v1")
    mon = stage_monitor(cfg, "stage1_rl", tmp_path, last_step=2, train_label="t", shared=shared)
    assert mon is not None and mon.judge.model.backend.endpoints() == ["http://127.0.0.1:1/v1"]
    assert "gold at http://127.0.0.1:1/v1" in mon.state.judge
    off = compose_experiment("rubicon", [f"run.root={tmp_path}", "monitor.stages=[stage2_rl]"])
    assert stage_monitor(off, "stage1_rl", tmp_path, last_step=2, train_label="t", shared=shared) is None


# --------------------------------------------------------------------------- real TRL GRPO


def _wandb_history_keys(run_dir: Path) -> set[str]:
    from tests.report.helpers import wandb_records

    keys: set[str] = set()
    for log in run_dir.glob("wandb/offline-run-*/run-*.wandb"):
        for rec in wandb_records(log):
            if rec.WhichOneof("record_type") == "history":
                keys |= {item.key or "/".join(item.nested_key) for item in rec.history.item}
    return keys


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish()


def _constant_rubrics():
    """Training: one verifier every answer passes (reward 1, always). Gold: the same plus an LLM criterion, so the
    gold reward is 1.0 while the grader says met and 0.5 once it says not met: a known widening of 0.5."""
    from rubricrl.rubrics.schema import Criterion, Rubric

    any_length = Criterion(
        id="any_length", text="Any answer.", kind="programmatic", verifier="word_count", args={"max_words": 100000}
    )
    quality = Criterion(id="quality", text="The answer is useful.")
    return {"t1": Rubric(id="t1", criteria=(any_length,))}, {"t1": Rubric(id="t1", criteria=(any_length, quality))}


@pytest.mark.slow
def test_trl_grpo_logs_monitor_metrics_stops_on_a_widening_gap_and_resumes_cleanly(grader, offline, tmp_path):
    from rubricrl.train.trl_adapter import train_grpo

    cfg = compose_experiment(
        "rubicon",
        [
            f"run.root={tmp_path}",
            "run.name=t",
            "policy.name=tiny-qwen3",
            "grpo.max_steps=3",
            "grpo.max_completion_length=4",
            "grpo.save_steps=1",
            "grpo.warmup_steps=0",
            "wandb.mode=offline",
            "+policy.chat_template_kwargs.enable_thinking=false",
        ],
    )
    train, gold = _constant_rubrics()
    stage = tmp_path / "t" / "stage1_rl"
    stage.mkdir(parents=True)
    rows = [
        {"prompt": [{"role": "user", "content": f"Describe item {i}."}], "rubric_id": "t1", "id": f"p{i}"}
        for i in range(8)
    ]

    def run(on_gap: str, met_after_first: bool) -> dict:
        mcfg = _gold_cfg(grader.url, every_steps=2, sample=1, max_gap=0.2, window=1, on_gap=on_gap)
        mon = _monitor(mcfg, stage / "monitor.jsonl", gold, last_step=3)
        scorer = RubricScorer(train, build_judge(JudgeConfig(backend="programmatic")))

        class Flip(RubricRewardFunc):  # the gold judge stops agreeing after the first reward batch
            def __call__(self, *a, **k):
                out = super().__call__(*a, **k)
                grader.met = met_after_first
                return out

        try:
            return train_grpo(cfg, cfg.grpo, rows, [Flip(scorer, monitor=mon)], stage, "t-stage1_rl", monitor=mon)
        finally:
            grader.met = True

    # 1) on_gap=stop: the gold judge's "quality" verdict turns to not met after step 1; the verifiers' reward stays 1:
    #    the gap widens from 0 to 0.5, past max_gap 0.2, at step 2 and training stops there, with no final model.
    with pytest.raises(DriftMonitorError) as e:
        run("stop", met_after_first=False)
    assert e.value.exit_code == 2 and "monitor.on_gap=stop" in str(e.value)
    assert not (stage / "final").exists()
    seen = read_checks(stage / "monitor.jsonl")
    assert [r["step"] for r in seen] == [1, 2] and seen[1]["action"] == "stop"
    assert seen[0]["gap"] == pytest.approx(0.0) and seen[1]["widening"] == pytest.approx(0.5)
    assert (stage / "checkpoints" / "checkpoint-1").is_dir()

    # 2) the same stage again with on_gap=warn and an agreeing gold judge: it resumes from checkpoint-1, cuts the dead
    #    attempt's check of step 2 and ends with checks at steps 1 (restored), 2 and 3 (the last step), each once.
    out = run("warn", met_after_first=True)
    assert [json.loads(x)["step"] for x in (stage / "monitor.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert all(r["action"] is None for r in read_checks(stage / "monitor.jsonl"))
    assert out["drift_monitor"]["checks"] == 3 and out["drift_monitor"]["warnings"] == []
    assert (stage / "final").is_dir()
    history = [json.loads(x) for x in (stage / "log_history.jsonl").read_text().splitlines()]
    checked = [h for h in history if "monitor/gold_judge_reward" in h]
    assert sorted(h["step"] for h in checked) == [1, 2, 3]  # step 1 from the checkpoint's log history
    assert all(h["monitor/gap"] == pytest.approx(0.0) and h["monitor/train_judge_reward"] == 1.0 for h in checked)
    assert not any("monitor/gap" in h for h in history if h not in checked)
    keys = _wandb_history_keys(tmp_path / "t")
    assert {
        "train/monitor/gold_judge_reward",
        "train/monitor/train_judge_reward",
        "train/monitor/gap",
        "train/monitor/gap_widening",
    } <= keys
