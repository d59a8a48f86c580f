"""NeMo RL adapter: a rubric environment, its data processor, registration by name, and the driver.

NeMo RL (v0.7.0) computes rewards in *environments*: Ray actors whose
``step(message_log_batch, metadata) -> EnvironmentReturn`` returns one reward per rollout
(``nemo_rl/environments/interfaces.py``). This module translates signatures only: the grading is
``rubricrl.judge`` (``build_judge`` / ``grade_many``) and the reward is ``rubricrl.reward.rubric_reward``,
the same code the TRL path and the evaluation use.

Wiring (what the generated configs under ``replications/*/nemo_rl/`` contain)::

    data:
      train: {dataset_name: ResponseDataset, data_path: <jsonl of nemo_rl_row()>,
              processor: rubricrl_rubric, env_name: rubric}
    env:
      rubric:                       # RubricEnvConfig
        judge: {backend: openai, base_url_file: <endpoint file>, ...}   # a JudgeConfig
        judge_is_policy: false      # true: the policy's own vLLM server grades (self-rewarding)
        teacher: null               # optional JudgeConfig of a stronger grader
        teacher_fraction: 0.0       # share of prompts (by prompt_id hash) graded by the teacher

Judges: Rubicon points ``judge.base_url_file`` at the endpoint file the judge server job writes.
Self-rewarding sets ``judge_is_policy``; the driver (``rubricrl nemo-config train``,
:func:`rubricrl.commands.nemo.run_grpo`) then writes the policy engine's OpenAI-compatible URLs
(``dp_openai_server_base_urls``) to that file before training starts. The HTTP judge client spreads
grader calls over every URL listed, and over judge replicas' ``endpoint.<i>.json`` siblings.

Per-criterion metrics (criterion and tag means, veto and ungraded rates, judge counters) are returned in
each sample's metadata, by :meth:`RubricEnvironment.global_post_process_and_metrics`, and appended per
``step`` to ``metrics_path`` (JSONL): NeMo RL v0.7.0's GRPO loop does not log environment metrics itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rubricrl.errors import UserError
from rubricrl.judge import GradingRequest, JudgeConfig, build_judge, close_judge, grade_many
from rubricrl.judge.parsing import strip_reasoning
from rubricrl.reward import RewardResult, rubric_reward
from rubricrl.rubrics.schema import Rubric

log = logging.getLogger(__name__)

ENV_NAME = "rubric"
PROCESSOR_NAME = "rubricrl_rubric"
ACTOR_FQN = "rubricrl.train.nemo_rl_env.RubricEnvironmentActor"


class RubricEnvConfig(BaseModel):
    """``env.rubric`` of a NeMo RL config. Unknown keys are errors.

    Attributes:
        judge: grader for ``llm`` criteria (programmatic criteria always go to the verifiers).
        judge_is_policy: the judge is the policy's own vLLM engine (self-rewarding); its sampling
            must then equal the rollout sampling (NeMo RL's HTTP server rejects anything else).
        teacher: optional stronger grader; ``teacher_fraction`` of prompts go to it.
        teacher_fraction: share of prompt ids graded by the teacher (stable across steps and restarts).
        strip_thinking: grade the answer without its ``<think>`` block.
        metrics_path: JSONL file receiving one metrics record per ``step`` call.
        rollouts_path: JSONL file receiving every graded rollout (prompt, completion, reward, per-criterion
            values; the records the TRL path writes), which the Rubicon hacking analysis mines.
        endpoint_wait_s: how long the first ``step`` waits for ``judge.base_url_file`` to appear.
        num_workers: accepted for NeMo RL's env-config convention; grading is async I/O in one actor.
        stop_strings: accepted for NeMo RL's convention (none are needed for single-turn grading).
    """

    model_config = ConfigDict(extra="forbid")

    judge: JudgeConfig
    judge_is_policy: bool = False
    teacher: JudgeConfig | None = None
    teacher_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    strip_thinking: bool = True
    metrics_path: Path | None = None
    rollouts_path: Path | None = None
    endpoint_wait_s: float = Field(default=900.0, ge=0)
    num_workers: int = Field(default=1, ge=1)
    stop_strings: list[str] | None = None


def load_env_config(cfg: dict[str, Any]) -> RubricEnvConfig:
    """Validate ``env.rubric``; errors name every bad key.

    Raises:
        UserError: unknown or ill-typed keys.
    """
    try:
        return RubricEnvConfig.model_validate(cfg)
    except ValidationError as e:
        lines = [f"env.rubric.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise UserError("invalid rubric environment config:\n" + "\n".join(lines)) from None


# --------------------------------------------------------------------------- data


def nemo_rl_row(conversation: list[dict[str, str]], rubric: Rubric, prompt_id: str,
                judge: str | None = None, defense: Rubric | None = None) -> dict[str, Any]:
    """One JSONL row for NeMo RL's ``ResponseDataset`` + the ``rubricrl_rubric`` processor.

    The rubric travels as a JSON string (Arrow cannot hold heterogeneous nested rubrics as columns).
    ``judge="teacher"`` forces this prompt to the teacher grader. ``defense`` is a defense rubric
    graded beside the task rubric; when it vetoes, the reward is its veto floor (Rubicon stage 2, as
    :class:`rubricrl.train.rewards.RubricScorer` does on the TRL path).
    """
    row: dict[str, Any] = {"messages": conversation, "rubric_json": rubric.model_dump_json(),
                           "prompt_id": prompt_id}
    if judge is not None:
        row["judge"] = judge
    if defense is not None:
        row["defense_json"] = defense.model_dump_json()
    return row


def rubric_data_processor(datum: dict[str, Any], task_data_spec: Any, tokenizer: Any, max_seq_length: int,
                          idx: int) -> dict[str, Any]:
    """NeMo RL data processor (``TaskDataProcessFnCallable``): a ``nemo_rl_row`` -> ``DatumSpec``.

    The prompt goes through the tokenizer's chat template; the untemplated conversation and the rubric
    go to ``extra_env_info`` so the judge sees the conversation as the grader prompt expects it.
    Prompts longer than ``max_seq_length`` are cut to a stub and masked (``loss_multiplier`` 0), as
    NeMo RL's own processors do.
    """
    import torch

    messages = [dict(m) for m in datum["messages"]]
    system = getattr(task_data_spec, "system_prompt", None)
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = torch.as_tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.int64)
    length = int(ids.shape[0])
    loss_multiplier = 1.0
    if length >= max_seq_length:
        ids, loss_multiplier = ids[: min(4, max_seq_length)], 0.0
    info = {"conversation": datum["messages"], "rubric": datum["rubric_json"], "prompt_id": datum["prompt_id"]}
    if datum.get("judge"):
        info["judge"] = datum["judge"]
    if datum.get("defense_json"):
        info["defense"] = datum["defense_json"]
    return {"message_log": [{"role": "user", "content": text, "token_ids": ids}], "length": length,
            "extra_env_info": info, "loss_multiplier": loss_multiplier, "idx": idx,
            "task_name": datum.get("task_name", ENV_NAME)}


# --------------------------------------------------------------------------- judges


def read_endpoints(path: Path) -> list[str]:
    """URLs in an endpoint file and its replica siblings (``<stem>.<i><suffix>``, ``slurm/judge.sbatch``).

    The reading is the HTTP judge client's own (:func:`rubricrl.judge.backends.openai_http.read_endpoints`);
    this raises a :class:`UserError` instead of a retryable transport error.
    """
    from rubricrl.judge.backends.openai_http import read_endpoints as read
    from rubricrl.judge.backends import TransportError

    try:
        return read(path)
    except TransportError as e:
        raise UserError(str(e)) from None


def write_endpoints(path: Path, urls: Sequence[str]) -> None:
    """Write the endpoint file ``read_endpoints`` reads (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"base_url": urls[0], "base_urls": list(urls)}) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_env_judge(cfg: JudgeConfig, wait_s: float = 0.0) -> Any:
    """``build_judge(cfg)`` once ``cfg.base_url_file`` names at least one endpoint file.

    The HTTP client spreads calls over every URL the file(s) list (judge replicas, the policy's
    data-parallel engines); see :mod:`rubricrl.judge.backends.openai_http`.

    Raises:
        UserError: no endpoint file appeared within ``wait_s`` seconds.
    """
    if cfg.backend != "openai" or cfg.base_url_file is None:
        return build_judge(cfg)
    from rubricrl.judge.backends.openai_http import endpoint_files

    deadline = time.monotonic() + wait_s
    while not endpoint_files(cfg.base_url_file):
        if time.monotonic() >= deadline:
            raise UserError(f"judge endpoint file {cfg.base_url_file} did not appear within {wait_s:g} s "
                            "(is the judge server job running, or the driver writing the policy's URLs?)")
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.01)))
    urls = read_endpoints(Path(cfg.base_url_file))
    log.info("judge %s over %d endpoint(s): %s", cfg.model, len(urls), ", ".join(urls))
    return build_judge(cfg)


# --------------------------------------------------------------------------- environment


def _prompt_fraction(prompt_id: str) -> float:
    return int(hashlib.sha256(prompt_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class RubricEnvironment:
    """Rubric rewards for NeMo RL rollouts (the logic; :data:`RubricEnvironmentActor` is the Ray actor).

    Args:
        cfg: the ``env.rubric`` mapping of the NeMo RL config (see :class:`RubricEnvConfig`).
    """

    def __init__(self, cfg: dict[str, Any] | RubricEnvConfig):
        self.cfg = cfg if isinstance(cfg, RubricEnvConfig) else load_env_config(cfg)
        self._judge: Any = None
        self._teacher: Any = None
        self._rubrics: dict[str, Rubric] = {}
        self.calls = 0
        self.last_metrics: dict[str, float] = {}

    # -- judges are built on first use: the policy's endpoints exist only once its engine is up
    def _judges(self) -> tuple[Any, Any]:
        if self._judge is None:
            self._judge = build_env_judge(self.cfg.judge, self.cfg.endpoint_wait_s)
        if self.cfg.teacher is not None and self._teacher is None:
            self._teacher = build_env_judge(self.cfg.teacher, self.cfg.endpoint_wait_s)
        return self._judge, self._teacher

    def _rubric(self, raw: Any) -> Rubric:
        key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
        if key not in self._rubrics:
            try:
                self._rubrics[key] = Rubric.model_validate_json(raw) if isinstance(raw, str) \
                    else Rubric.model_validate(raw)
            except ValidationError as e:
                raise UserError(f"rollout metadata carries an invalid rubric: {e.errors()[0]['msg']}") from None
        return self._rubrics[key]

    def _uses_teacher(self, meta: dict[str, Any]) -> bool:
        if self.cfg.teacher is None:
            return False
        if meta.get("judge") in ("teacher", "judge"):
            return meta["judge"] == "teacher"
        return _prompt_fraction(str(meta.get("prompt_id", ""))) < self.cfg.teacher_fraction

    def _response(self, log_: list[dict[str, Any]]) -> str:
        text = "".join(str(m["content"]) for m in log_ if m.get("role") == "assistant")
        return strip_reasoning(text).strip() if self.cfg.strip_thinking else text

    def score(self, message_log_batch: list[list[dict[str, Any]]], metadata: list[dict[str, Any]]
              ) -> tuple[list[RewardResult], list[dict[str, Any]], dict[str, float]]:
        """Grade a batch: reward results, per-sample metadata out, batch metrics."""
        if len(message_log_batch) != len(metadata):
            raise ValueError(f"{len(message_log_batch)} message logs but {len(metadata)} metadata entries")
        judge, teacher = self._judges()
        rubrics, requests, by_teacher, defenses = [], [], [], []
        for log_, meta in zip(message_log_batch, metadata):
            if not meta or "rubric" not in meta or "conversation" not in meta:
                raise UserError("rollout metadata lacks 'rubric'/'conversation': the data must go through "
                                f"the {PROCESSOR_NAME!r} processor (rows from nemo_rl_row())")
            rubric = self._rubric(meta["rubric"])
            rubrics.append(rubric)
            by_teacher.append(self._uses_teacher(meta))
            requests.append(GradingRequest(conversation=list(meta["conversation"]), response=self._response(log_),
                                           criteria=rubric.criteria, rubric_id=rubric.id,
                                           metadata={"prompt_id": meta.get("prompt_id", "")}))
            defenses.append(self._rubric(meta["defense"]) if meta.get("defense") else None)
        # Defense rubrics are graded by the same grader as their prompt's task rubric.
        jobs = [(i, requests[i], by_teacher[i]) for i in range(len(requests))]
        jobs += [(len(requests) + i, GradingRequest(conversation=requests[i].conversation, response=requests[i].response,
                                                    criteria=d.criteria, rubric_id=d.id, metadata=requests[i].metadata),
                  by_teacher[i]) for i, d in enumerate(defenses) if d is not None]
        verdicts: dict[int, Any] = {}
        for use_teacher, j in ((False, judge), (True, teacher)):
            mine = [(k, req) for k, req, t in jobs if t == use_teacher]
            if mine:
                for (k, _), v in zip(mine, grade_many(j, [req for _, req in mine])):
                    verdicts[k] = v
        results = [rubric_reward(r, verdicts[i]) for i, r in enumerate(rubrics)]
        guarded = [rubric_reward(d, verdicts[len(requests) + i]) if d is not None else None
                   for i, d in enumerate(defenses)]
        for i, (d, g) in enumerate(zip(defenses, guarded)):
            if d is not None and g is not None and g.vetoed:
                veto = d.aggregation.veto
                results[i] = replace(results[i], reward=float(veto.floor if veto is not None else 0.0), vetoed=True)
        metrics = self._metrics(rubrics, results, by_teacher)
        if any(d is not None for d in defenses):
            metrics["defense_vetoed_frac"] = _mean([float(g is not None and g.vetoed) for g in guarded])
        out_meta = [{**meta, "reward": res.reward, "per_criterion": res.per_criterion, "vetoed": res.vetoed,
                     "n_ungraded": res.n_ungraded, "graded_by": "teacher" if t else "judge",
                     "defense_vetoed": bool(g is not None and g.vetoed)}
                    for meta, res, t, g in zip(metadata, results, by_teacher, guarded)]
        self._write_rollouts(requests, rubrics, results, guarded)
        return results, out_meta, metrics

    def _write_rollouts(self, requests: list[GradingRequest], rubrics: list[Rubric], results: list[RewardResult],
                        guarded: list[RewardResult | None]) -> None:
        if self.cfg.rollouts_path is None:
            return
        path = Path(self.cfg.rollouts_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for req, rubric, res, g in zip(requests, rubrics, results, guarded):
                f.write(json.dumps({
                    "step": self.calls + 1, "prompt": req.conversation[-1]["content"] if req.conversation else "",
                    "rubric_id": rubric.id, "family": rubric.category or rubric.id.split("-")[0],
                    "completion": req.response, "reward": res.reward, "vetoed": res.vetoed,
                    "defense_vetoed": bool(g is not None and g.vetoed), "per_criterion": res.per_criterion,
                    "defense_per_criterion": g.per_criterion if g is not None else None,
                }, ensure_ascii=False) + "\n")

    def _metrics(self, rubrics: list[Rubric], results: list[RewardResult], by_teacher: list[bool]) -> dict[str, float]:
        rewards = [r.reward for r in results]
        n_criteria = sum(len(r.criteria) for r in rubrics)
        per_key: dict[str, list[float]] = {}
        for rubric, res in zip(rubrics, results):
            for c in rubric.criteria:
                value = res.per_criterion.get(c.id)
                if value is None:
                    continue
                keys = [f"tag/{t}" for t in c.tags]
                if rubric.scope != "instance":
                    keys.append(f"criterion/{rubric.id}/{c.id}")
                for k in keys:
                    per_key.setdefault(k, []).append(float(value))
        m: dict[str, float] = {
            "reward/mean": _mean(rewards), "reward/min": min(rewards, default=0.0),
            "reward/max": max(rewards, default=0.0),
            "vetoed_frac": _mean([float(r.vetoed) for r in results]),
            "ungraded_frac": sum(r.n_ungraded for r in results) / n_criteria if n_criteria else 0.0,
            "teacher_frac": _mean([float(t) for t in by_teacher]),
        }
        m.update({k: _mean(v) for k, v in sorted(per_key.items())})
        for name, j in (("judge", self._judge), ("teacher", self._teacher)):
            if j is not None and getattr(j, "stats", None) is not None:
                stats = j.stats
                m.update({f"{name}/{k}": float(v) for k, v in stats.as_dict().items()})
                stats.reset()
        return m

    def _record(self, metrics: dict[str, float], n: int) -> None:
        self.calls += 1
        self.last_metrics = metrics
        if self.cfg.metrics_path is not None:
            path = Path(self.cfg.metrics_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"call": self.calls, "time": time.time(), "samples": n, **metrics}) + "\n")

    def step(self, message_log_batch: list[list[dict[str, Any]]], metadata: list[dict[str, Any]]) -> Any:
        """NeMo RL ``EnvironmentInterface.step``: one terminal turn, one reward per rollout."""
        import torch
        from nemo_rl.environments.interfaces import EnvironmentReturn

        results, out_meta, metrics = self.score(message_log_batch, metadata)
        self._record(metrics, len(results))
        rewards = torch.tensor([r.reward for r in results], dtype=torch.float32)
        return EnvironmentReturn(
            observations=[{"role": "environment", "content": f"Environment: rubric reward {r.reward:.4f}"}
                          for r in results],
            metadata=out_meta, next_stop_strings=[None] * len(results), rewards=rewards,
            terminateds=torch.ones_like(rewards), answers=None)

    def global_post_process_and_metrics(self, batch: Any) -> tuple[Any, dict[str, float]]:
        """NeMo RL hook: the batch unchanged and the metrics of the last ``step``."""
        return batch, dict(self.last_metrics)

    def shutdown(self) -> None:
        """Close judge clients and caches."""
        for j in (self._judge, self._teacher):
            if j is not None:
                close_judge(j)
        self._judge = self._teacher = None


def _actor_class() -> Any:
    import ray
    from nemo_rl.environments.interfaces import EnvironmentInterface

    cls = type("RubricEnvironmentActor", (RubricEnvironment, EnvironmentInterface), {"__module__": __name__})
    return ray.remote(max_restarts=-1, max_task_retries=-1, max_concurrency=64)(cls)


def __getattr__(name: str) -> Any:
    """``RubricEnvironmentActor`` (the Ray actor NeMo RL instantiates) is built on first access."""
    if name == "RubricEnvironmentActor":
        actor = _actor_class()
        globals()[name] = actor
        return actor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Register the ``rubric`` environment and the ``rubricrl_rubric`` processor with NeMo RL (idempotent)."""
    from nemo_rl.data.processors import PROCESSOR_REGISTRY, register_processor
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.distributed.virtual_cluster import PY_EXECUTABLES
    from nemo_rl.environments.utils import ENV_REGISTRY, register_env

    ACTOR_ENVIRONMENT_REGISTRY.setdefault(ACTOR_FQN, PY_EXECUTABLES.SYSTEM)
    if ENV_NAME not in ENV_REGISTRY:
        register_env(ENV_NAME, ACTOR_FQN)
    if PROCESSOR_NAME not in PROCESSOR_REGISTRY:
        register_processor(PROCESSOR_NAME, rubric_data_processor)
