"""NeMo RL adapter: the rows of the rubric environment's data and NeMo RL's data processor for them.

Wiring (what the generated configs under ``replications/*/nemo_rl/`` contain)::

    data:
      train: {dataset_name: ResponseDataset, data_path: <jsonl of nemo_rl_row()>,
              processor: rubricrl_rubric, env_name: rubric}

The processor templates the prompt and hands the untemplated conversation, the rubric (and the defense and
monitor rubrics, the prompt id, a forced grader) to the environment as ``extra_env_info``
(:mod:`rubricrl.train.nemo_rl_env`). :func:`step_metrics` gives the rubric figures of a step's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rubricrl.reward.scorer import Scored, agreement, count_verdicts
from rubricrl.rubrics.schema import Rubric

ENV_NAME = "rubric"
PROCESSOR_NAME = "rubricrl_rubric"


def nemo_rl_row(
    conversation: list[dict[str, str]],
    rubric: Rubric,
    prompt_id: str,
    judge: str | None = None,
    defense: Rubric | None = None,
    monitor_rubric: Rubric | None = None,
) -> dict[str, Any]:
    """One JSONL row for NeMo RL's ``ResponseDataset`` + the ``rubricrl_rubric`` processor.

    The rubric travels as a JSON string (Arrow cannot hold heterogeneous nested rubrics as columns).
    ``judge="teacher"`` (or ``"judge"``) forces this prompt's samples to that grader instead of the seeded
    routing. ``defense`` is a defense rubric graded beside the task rubric; when it vetoes, the reward is its
    veto floor (:mod:`rubricrl.reward.scorer`, as on the TRL path). ``monitor_rubric`` is what the drift
    monitor's gold judge grades instead of ``rubric`` (e.g. the full bank rubric of a verifier-only stage).
    """
    row: dict[str, Any] = {"messages": conversation, "rubric_json": rubric.model_dump_json(), "prompt_id": prompt_id}
    if judge is not None:
        row["judge"] = judge
    if defense is not None:
        row["defense_json"] = defense.model_dump_json()
    if monitor_rubric is not None:
        row["monitor_rubric_json"] = monitor_rubric.model_dump_json()
    return row


def rubric_data_processor(
    datum: dict[str, Any], task_data_spec: Any, tokenizer: Any, max_seq_length: int, idx: int
) -> dict[str, Any]:
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
    if datum.get("monitor_rubric_json"):
        info["monitor_rubric"] = datum["monitor_rubric_json"]
    return {
        "message_log": [{"role": "user", "content": text, "token_ids": ids}],
        "length": length,
        "extra_env_info": info,
        "loss_multiplier": loss_multiplier,
        "idx": idx,
        "task_name": datum.get("task_name", ENV_NAME),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    m = _mean(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5 if len(values) > 1 else 0.0


def step_metrics(scored: Sequence[Scored], teacher: bool = False) -> dict[str, float]:
    """The rubric figures of one GRPO step's record (the environment adds the judge counters).

    ``reward/{mean,std,min,max}``, ``vetoed_frac``, ``defense_vetoed_frac`` (with a defense rubric),
    ``ungraded_frac`` (task criteria), ``verdicts`` / ``ungraded`` (what the rewards rest on:
    :func:`rubricrl.reward.scorer.count_verdicts`), ``teacher_frac``, with ``teacher`` the TRL stages'
    ``self_vs_teacher/{n,agreement,kappa}``, then ``tag/<tag>`` and (bank rubrics) ``criterion/<rubric>/<id>``
    means of the per-criterion values.
    """
    rewards = [s.reward for s in scored]
    rubrics = [s.sample.rubric for s in scored if s.sample is not None]
    n_criteria = sum(len(r.criteria) for r in rubrics)
    per_key: dict[str, list[float]] = {}
    for s, rubric in zip(scored, rubrics):
        for c in rubric.criteria:
            value = s.task.per_criterion.get(c.id)
            if value is None:
                continue
            keys = [f"tag/{t}" for t in c.tags]
            if rubric.scope != "instance":
                keys.append(f"criterion/{rubric.id}/{c.id}")
            for k in keys:
                per_key.setdefault(k, []).append(float(value))
    n_verdicts, n_ungraded = count_verdicts(scored)
    m: dict[str, float] = {
        "reward/mean": _mean(rewards),
        "reward/std": _std(rewards),
        "reward/min": min(rewards, default=0.0),
        "reward/max": max(rewards, default=0.0),
        "vetoed_frac": _mean([float(s.vetoed) for s in scored]),
        "ungraded_frac": sum(s.task.n_ungraded for s in scored) / n_criteria if n_criteria else 0.0,
        "verdicts": float(n_verdicts),
        "ungraded": float(n_ungraded),
        "teacher_frac": _mean([float(s.teacher) for s in scored]),
    }
    if any(s.defense is not None for s in scored):
        m["defense_vetoed_frac"] = _mean([float(s.defense_vetoed) for s in scored])
    if teacher:
        a = agreement([p for s in scored for p in s.pairs])
        m["self_vs_teacher/n"] = float(a["n"] or 0)
        m.update({f"self_vs_teacher/{k}": float(a[k]) for k in ("agreement", "kappa") if a[k] is not None})
    m.update({k: _mean(v) for k, v in sorted(per_key.items())})
    return m
