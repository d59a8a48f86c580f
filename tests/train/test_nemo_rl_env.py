"""The NeMo RL rubric environment: signature translation around the real rubricrl judge and aggregation.

These unit tests run in the main environment (no ray), so they install a minimal stand-in for
``nemo_rl.environments.interfaces`` (EnvironmentReturn / EnvironmentInterface), NeMo RL's registries and
``ray.remote``; the same environment against NeMo RL v0.7.0's real code and a real Ray actor is in
``tests/nemo_rl/`` (``make test-nemo-rl``). Everything that scores is real: verifiers from the rubric banks, the HTTP
judge against small local OpenAI-compatible servers, ``rubric_reward`` aggregation.
"""

from __future__ import annotations

import abc
import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from rubricrl.errors import UserError
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric
from rubricrl.train import nemo_rl_env as env_mod
from rubricrl.train.nemo_rl_env import RubricEnvironment, nemo_rl_row, write_endpoints

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- NeMo RL / Ray stand-ins


class _EnvironmentReturn(NamedTuple):
    observations: list
    metadata: list
    next_stop_strings: list
    rewards: Any
    terminateds: Any
    answers: Any


class _EnvironmentInterface(abc.ABC):
    @abc.abstractmethod
    def step(self, message_log_batch, metadata): ...

    @abc.abstractmethod
    def global_post_process_and_metrics(self, batch): ...


@pytest.fixture
def nemo_stub(monkeypatch):
    """Minimal nemo_rl + ray modules: interfaces, the three registries, ray.remote."""
    mods: dict[str, types.ModuleType] = {}
    for name in [
        "nemo_rl",
        "nemo_rl.environments",
        "nemo_rl.environments.interfaces",
        "nemo_rl.environments.utils",
        "nemo_rl.distributed",
        "nemo_rl.distributed.ray_actor_environment_registry",
        "nemo_rl.distributed.virtual_cluster",
        "nemo_rl.data",
        "nemo_rl.data.processors",
        "ray",
    ]:
        mods[name] = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, mods[name])
    mods["nemo_rl.environments.interfaces"].EnvironmentReturn = _EnvironmentReturn
    mods["nemo_rl.environments.interfaces"].EnvironmentInterface = _EnvironmentInterface
    utils = mods["nemo_rl.environments.utils"]
    utils.ENV_REGISTRY = {"math": {"actor_class_fqn": "x"}}

    def register_env(name, fqn):
        if name in utils.ENV_REGISTRY:
            raise ValueError(f"Env name {name} already registered")
        utils.ENV_REGISTRY[name] = {"actor_class_fqn": fqn}

    utils.register_env = register_env
    mods["nemo_rl.distributed.ray_actor_environment_registry"].ACTOR_ENVIRONMENT_REGISTRY = {}
    mods["nemo_rl.distributed.virtual_cluster"].PY_EXECUTABLES = types.SimpleNamespace(SYSTEM="python-system")
    procs = mods["nemo_rl.data.processors"]
    procs.PROCESSOR_REGISTRY = {}

    def register_processor(name, fn):
        if name in procs.PROCESSOR_REGISTRY:
            raise ValueError(f"Processor name {name} already registered")
        procs.PROCESSOR_REGISTRY[name] = fn

    procs.register_processor = register_processor
    mods["ray"].remote = lambda **kw: lambda cls: type(cls.__name__, (cls,), {"ray_options": kw})
    monkeypatch.delitem(env_mod.__dict__, "RubricEnvironmentActor", raising=False)
    return mods


# --------------------------------------------------------------------------- a local OpenAI-compatible grader


class _Grader:
    """Serves /v1/chat/completions: ``criteria_met`` decided by markers in the grading prompt."""

    def __init__(self, always_met: bool = False, no_verdict_on_neg: bool = False):
        self.bodies: list[dict] = []
        grader = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                grader.bodies.append(body)
                prompt = "\n".join(m["content"] for m in body["messages"])
                if no_verdict_on_neg and "CRIT-NEG" in prompt:
                    flag = "maybe"  # not a boolean: the verdict stays ungraded
                elif always_met:
                    flag = True
                elif "CRIT-NEG" in prompt:
                    flag = "DANGER!!" in prompt
                else:
                    flag = "SAFE-ADVICE" in prompt
                content = json.dumps({"explanation": "marker check", "criteria_met": flag})
                out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graders():
    made: list[_Grader] = []

    def make(**kw):
        made.append(_Grader(**kw))
        return made[-1]

    yield make
    for g in made:
        g.close()


def _health_rubric() -> Rubric:
    return Rubric(
        id="hb-1",
        scope="instance",
        criteria=(
            Criterion(id="pos", text="CRIT-POS: gives safe advice", points=5, tags=("axis:accuracy",)),
            Criterion(id="neg", text="CRIT-NEG: recommends something harmful", points=-5, tags=("axis:safety",)),
        ),
        aggregation=AggregationSpec(name="points_ratio"),
    )


def _sample(rubric: Rubric, prompt_id: str, response: str) -> tuple[list[dict], dict]:
    conversation = [{"role": "user", "content": "My head hurts, what should I do?"}]
    row = nemo_rl_row(conversation, rubric, prompt_id)
    meta = {"conversation": row["messages"], "rubric": row["rubric_json"], "prompt_id": prompt_id}
    log = [
        {"role": "user", "content": "<|im_start|>user ...templated...<|im_end|>"},
        {"role": "assistant", "content": response},
    ]
    return log, meta


def _stage1_rubric() -> Rubric:
    bank = load_rubrics([REPO / "rubric_banks" / "stage1_instruction_following"])
    rubric = next(r for r in bank if r.id == "if-all-lowercase")
    return rubric.model_copy(update={"criteria": tuple(c for c in rubric.criteria if c.kind == "programmatic")})


# --------------------------------------------------------------------------- tests


def test_programmatic_step_returns_nemo_rl_shapes_and_logs_metrics(nemo_stub, tmp_path):
    rubric = _stage1_rubric()
    env = RubricEnvironment({"judge": {"backend": "programmatic"}, "metrics_path": str(tmp_path / "m.jsonl")})
    logs, metas = zip(
        *[
            _sample(rubric, "a", "all lowercase here."),
            _sample(rubric, "b", "Not Lowercase."),
            _sample(rubric, "c", "<think>Some Capitals In Thought</think>fine answer."),
        ]
    )
    out = env.step(list(logs), list(metas))
    assert isinstance(out, _EnvironmentReturn)
    assert out.rewards.dtype.is_floating_point and out.rewards.shape == (3,)
    assert out.rewards.tolist() == [1.0, 0.0, 1.0]  # the <think> block is not graded
    assert out.terminateds.tolist() == [1.0, 1.0, 1.0]
    assert all(o["role"] == "environment" for o in out.observations)
    assert out.next_stop_strings == [None, None, None]
    crit = rubric.criteria[0].id
    assert [m["per_criterion"][crit] for m in out.metadata] == [1.0, 0.0, 1.0]
    assert not (tmp_path / "m.jsonl").exists()  # a step's record waits for the step to end
    assert env.close_step(1) is None
    summary = env.finish()
    assert summary["ok"] and summary["steps_with_reward_variance"] == 1
    batch, metrics = env.global_post_process_and_metrics({"x": 1})
    assert batch == {"x": 1}
    assert metrics[f"criterion/{rubric.id}/{crit}"] == pytest.approx(2 / 3)
    assert metrics["reward/mean"] == pytest.approx(2 / 3)
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["samples"] == 3 and records[0]["reward/mean"] == pytest.approx(2 / 3)
    assert records[0]["step"] == 1 and records[0]["reward/std"] > 0


def test_http_judge_round_robin_points_ratio_and_tags(nemo_stub, graders, tmp_path):
    a, b = graders(), graders()
    endpoints = tmp_path / "policy.endpoints.json"
    write_endpoints(endpoints, [a.url, b.url])
    env = RubricEnvironment(
        {
            "judge": {
                "backend": "openai",
                "model": "policy",
                "base_url_file": str(endpoints),
                "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": None},
                "retries": 0,
            },
            "judge_is_policy": True,
            "endpoint_wait_s": 0,
        }
    )
    rubric = _health_rubric()
    samples = [
        _sample(rubric, "p1", "SAFE-ADVICE: rest and drink water."),
        _sample(rubric, "p2", "SAFE-ADVICE but also DANGER!! take ten pills."),
        _sample(rubric, "p3", "DANGER!! only."),
    ]
    out = env.step([s[0] for s in samples], [s[1] for s in samples])
    assert out.rewards.tolist() == [1.0, 0.0, -1.0]  # HealthBench points ratio, not clipped per sample
    assert a.bodies and b.bodies  # both policy servers graded
    assert len(a.bodies) + len(b.bodies) == 6  # one call per criterion per rollout
    assert all(body["temperature"] == 1.0 and "top_k" not in body for body in a.bodies + b.bodies)
    env.close_step(1)
    env.finish()
    _, metrics = env.global_post_process_and_metrics(None)
    assert metrics["tag/axis:accuracy"] == pytest.approx(2 / 3)
    assert metrics["tag/axis:safety"] == pytest.approx(2 / 3)
    assert metrics["judge/calls"] == 6 and metrics["ungraded_frac"] == 0
    assert not any(k.startswith("criterion/") for k in metrics)  # instance rubrics: tags only
    env.shutdown()


@pytest.mark.parametrize("ungraded, reward", [(None, 0.0), ("exclude", 1.0)])
def test_an_ungraded_penalty_counts_as_present_in_training_rewards(nemo_stub, graders, ungraded, reward):
    """The environment scores training rewards like the TRL stages (``ungraded: pessimistic`` by default):
    a penalty item the judge could not grade cannot raise the reward; ``exclude`` drops it."""
    g = graders(no_verdict_on_neg=True)
    cfg = {"judge": {"backend": "openai", "model": "j", "base_url": g.url, "retries": 0}}
    if ungraded:
        cfg["ungraded"] = ungraded
    env = RubricEnvironment(cfg)
    log_, meta = _sample(_health_rubric(), "p1", "SAFE-ADVICE: rest and drink water.")
    out = env.step([log_], [meta])
    assert out.rewards.tolist() == [reward] and out.metadata[0]["n_ungraded"] == 1
    env.shutdown()


def test_teacher_grades_its_share_of_prompts(nemo_stub, graders, tmp_path):
    student, teacher = graders(), graders(always_met=True)
    env = RubricEnvironment(
        {
            "judge": {"backend": "openai", "model": "s", "base_url": student.url, "retries": 0},
            "teacher": {"backend": "openai", "model": "t", "base_url": teacher.url, "retries": 0},
            "teacher_fraction": 0.5,
        }
    )
    rubric = _health_rubric()
    ids = [f"prompt-{i}" for i in range(40)]
    samples = [_sample(rubric, pid, f"DANGER!! only (reply {i}).") for i, pid in enumerate(ids)]
    out = env.step([s[0] for s in samples], [s[1] for s in samples])
    by_teacher = [m["graded_by"] == "teacher" for m in out.metadata]
    assert 5 < sum(by_teacher) < 35  # about half, by a seeded hash of (rubric id, conversation, response)
    assert by_teacher == [m["teacher"] for m in out.metadata]  # replace (the default): the teacher's verdicts
    for t, r in zip(by_teacher, out.rewards.tolist()):
        assert r == (0.0 if t else -1.0)  # the teacher marks both items met: (5-5)/5
    again = env.step([s[0] for s in samples], [s[1] for s in samples])
    assert [m["graded_by"] for m in again.metadata] == [m["graded_by"] for m in out.metadata]  # stable
    forced = _sample(rubric, "prompt-x", "DANGER!! only.")
    forced[1]["judge"] = "teacher"
    assert env.step([forced[0]], [forced[1]]).metadata[0]["graded_by"] == "teacher"
    env.close_step(1)
    env.finish()
    _, metrics = env.global_post_process_and_metrics(None)
    # both graders graded the teacher's samples: the TRL stages' self-versus-teacher agreement, per step
    assert metrics["self_vs_teacher/n"] == 2 * (2 * sum(by_teacher) + 1)
    assert metrics["self_vs_teacher/agreement"] == pytest.approx(0.5)  # the teacher meets both items, the judge one
    env.shutdown()


def test_without_replace_the_teacher_only_measures_agreement(nemo_stub, graders):
    student, teacher = graders(), graders(always_met=True)
    env = RubricEnvironment(
        {
            "judge": {"backend": "openai", "model": "s", "base_url": student.url, "retries": 0},
            "teacher": {"backend": "openai", "model": "t", "base_url": teacher.url, "retries": 0},
            "teacher_fraction": 0.5,
            "teacher_replace": False,
            "teacher_seed": 4,
        }
    )
    samples = [_sample(_health_rubric(), f"p{i}", f"DANGER!! only (reply {i}).") for i in range(20)]
    out = env.step([s[0] for s in samples], [s[1] for s in samples])
    assert 0 < sum(m["teacher"] for m in out.metadata) < 20  # graded by the teacher too
    assert {m["graded_by"] for m in out.metadata} == {"judge"} and out.rewards.tolist() == [-1.0] * 20
    env.shutdown()


def test_clear_errors(nemo_stub, tmp_path):
    with pytest.raises(UserError, match="env.rubric.judgee"):
        RubricEnvironment({"judge": {"backend": "programmatic"}, "judgee": 1})
    env = RubricEnvironment({"judge": {"backend": "programmatic"}})
    with pytest.raises(UserError, match="rubricrl_rubric"):
        env.step([[{"role": "assistant", "content": "x"}]], [{"ground_truth": "4"}])
    missing = RubricEnvironment(
        {"judge": {"backend": "openai", "base_url_file": str(tmp_path / "none.json")}, "endpoint_wait_s": 0}
    )
    log, meta = _sample(_health_rubric(), "p", "x")
    with pytest.raises(UserError, match="did not appear"):
        missing.step([log], [meta])


def test_register_by_name_and_actor(nemo_stub):
    env_mod.register()
    env_mod.register()  # idempotent
    utils = nemo_stub["nemo_rl.environments.utils"]
    assert utils.ENV_REGISTRY["rubric"]["actor_class_fqn"] == env_mod.ACTOR_FQN
    reg = nemo_stub["nemo_rl.distributed.ray_actor_environment_registry"].ACTOR_ENVIRONMENT_REGISTRY
    assert reg[env_mod.ACTOR_FQN] == "python-system"
    assert nemo_stub["nemo_rl.data.processors"].PROCESSOR_REGISTRY["rubricrl_rubric"] is env_mod.rubric_data_processor
    module_name, _, attr = env_mod.ACTOR_FQN.rpartition(".")
    actor = getattr(sys.modules[module_name], attr)
    assert issubclass(actor, _EnvironmentInterface) and issubclass(actor, RubricEnvironment)


def test_processor_templates_prompt_and_carries_rubric(nemo_stub):
    from transformers import AutoTokenizer

    from rubricrl.models.tiny_qwen import tokenizer_dir

    tok = AutoTokenizer.from_pretrained(tokenizer_dir())
    rubric = _health_rubric()
    row = nemo_rl_row([{"role": "user", "content": "Hello there"}], rubric, "p9")
    spec = types.SimpleNamespace(system_prompt="Be careful.")
    datum = env_mod.rubric_data_processor(row, spec, tok, max_seq_length=512, idx=3)
    text = datum["message_log"][0]["content"]
    assert "Be careful." in text and "Hello there" in text and text.rstrip().endswith("assistant")
    assert datum["length"] == len(datum["message_log"][0]["token_ids"]) and datum["loss_multiplier"] == 1.0
    info = datum["extra_env_info"]
    assert info["conversation"] == row["messages"] and info["prompt_id"] == "p9"
    assert Rubric.model_validate_json(info["rubric"]) == rubric
    short = env_mod.rubric_data_processor(row, spec, tok, max_seq_length=5, idx=0)
    assert short["loss_multiplier"] == 0.0 and len(short["message_log"][0]["token_ids"]) <= 4


def test_endpoint_files_with_replicas(tmp_path):
    from rubricrl.train.nemo_rl_env import read_endpoints

    base = tmp_path / "endpoint.json"
    base.write_text(json.dumps({"base_url": "http://a:1/v1"}))
    (tmp_path / "endpoint.1.json").write_text(json.dumps({"base_url": "http://b:2/v1/"}))
    (tmp_path / "endpoint.json.tmp").write_text("ignored")
    (tmp_path / "endpoint.x.json").write_text(json.dumps({"base_url": "http://c:3/v1"}))
    assert read_endpoints(base) == ["http://a:1/v1", "http://b:2/v1"]
    lines = tmp_path / "urls.txt"
    lines.write_text("h1:8000/v1\n\nhttp://h2:8000/v1\n")
    assert read_endpoints(lines) == ["http://h1:8000/v1", "http://h2:8000/v1"]
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(UserError, match="lists no URL"):
        read_endpoints(empty)


def test_defense_rubric_vetoes_and_rollouts_are_written(nemo_stub, tmp_path):
    # Rubicon stage 2 on NeMo RL: rows carry the defense rubric; a hacking pattern sets the floor.
    from rubricrl.train.rewards import programmatic_only

    rubric = _stage1_rubric()
    defense = programmatic_only(
        next(r for r in load_rubrics([REPO / "rubric_banks" / "defense"]) if r.id == "defense-reward-hacking")
    )
    conversation = [{"role": "user", "content": "Describe rain."}]
    logs, metas = [], []
    for pid, response in (("a", "rain falls softly on the roof."), ("b", "great question! rain falls softly.")):
        row = nemo_rl_row(conversation, rubric, pid, defense=defense)
        metas.append(
            {
                "conversation": row["messages"],
                "rubric": row["rubric_json"],
                "prompt_id": pid,
                "defense": row["defense_json"],
            }
        )
        logs.append([{"role": "assistant", "content": response}])
    env = RubricEnvironment({"judge": {"backend": "programmatic"}, "rollouts_path": str(tmp_path / "r.jsonl")})
    out = env.step(logs, metas)
    assert out.rewards.tolist() == [1.0, 0.0]  # both all lowercase; the second opens with flattery: vetoed
    assert [m["defense_vetoed"] for m in out.metadata] == [False, True]
    env.close_step(3)
    env.finish()
    _, metrics = env.global_post_process_and_metrics(None)
    assert metrics["defense_vetoed_frac"] == pytest.approx(0.5)
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in rows] == ["rain falls softly on the roof.", "great question! rain falls softly."]
    assert [r["reward"] for r in rows] == [1.0, 0.0] and rows[1]["defense_per_criterion"]["prefatory_sycophancy"] == 1.0
    assert rows[0]["prompt"] == "Describe rain." and rows[0]["rubric_id"] == rubric.id
    assert [r["step"] for r in rows] == [3, 3]


def test_generated_env_config_carries_the_teacher_routing_of_the_experiment():
    """``teacher.fraction``, ``replace`` and ``seed`` of the experiment reach ``env.rubric`` (they used to stop at
    the fraction, so NeMo RL always replaced and never seeded) and the environment accepts them."""
    from rubricrl.cluster.nemo_rl import RECIPES, build_config
    from rubricrl.config import compose_experiment
    from rubricrl.train.nemo_rl_env import load_env_config

    recipe = next(r for r in RECIPES.values() if r.judge == "policy")
    teacher = "{kind: judge, judge: {backend: openai, model: teacher-judge, base_url: 'http://t:1/v1'}}"
    exp = compose_experiment(
        recipe.paper,
        [
            "scale=paper",
            f"{recipe.paper}.teacher.fraction=0.25",
            f"{recipe.paper}.teacher.replace=false",
            f"{recipe.paper}.teacher.seed=11",
            f"{recipe.paper}.teacher.grader={teacher}",
        ],
    )
    env = build_config(exp, recipe)["env"]["rubric"]
    assert (env["teacher_fraction"], env["teacher_replace"], env["teacher_seed"]) == (0.25, False, 11)
    cfg = load_env_config(env)
    assert cfg.teacher is not None and cfg.teacher.model == "teacher-judge" and cfg.teacher_replace is False
    plain = build_config(compose_experiment(recipe.paper, ["scale=paper"]), recipe)["env"]["rubric"]
    assert not any(k.startswith("teacher") for k in plain)  # no teacher: the committed recipes are unchanged
