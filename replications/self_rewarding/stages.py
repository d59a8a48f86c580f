"""Self-rewarding rubric RL (Paper B, arXiv 2509.25534): config section and pipeline stages.

``rubricrl replicate self_rewarding`` runs::

    data -> train -> eval -> report

* ``data``: HealthBench Easy (full minus Hard by ``prompt_id``) on clusters, the 500-example offline copy
  locally; a fixed-seed train / held-out split (:mod:`replications.self_rewarding.datasets`).
* ``train``: GRPO (TRL adapter, :func:`rubricrl.train.trl_adapter.train_grpo`) whose reward grades every
  rollout with the policy itself, current weights at every step: in process by constrained verdict
  decoding on the trainer's model object (:class:`rubricrl.judge.live_policy.LivePolicyGrader`,
  ``grader.engine: live``), or through the policy engine's OpenAI-compatible endpoint (``engine: http``,
  the top-level ``judge`` config). A fixed teacher can grade a fraction of the samples
  (:class:`~rubricrl.reward.scorer.TeacherRoutingJudge`); self-versus-teacher agreement is logged.
  The reward is ``rubricrl.reward``'s ``points_ratio`` (sum of met points over positive points, not
  clipped per sample). With ``monitor.judge`` (or ``monitor.constrained``) set, a gold judge grades a sample of
  the rollouts every few steps (:mod:`rubricrl.train.drift_monitor`; ``train/monitor.jsonl``): a policy that
  grades itself is the case where its own reward can rise while a fixed judge's does not.
* ``eval``: responses of the policy before and after training on the held-out part, graded by a FIXED
  judge, scored by :func:`rubricrl.scoring.healthbench.score_records`
  (:mod:`replications.self_rewarding.evaluation`).
* ``report``: markdown and PNG plots.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replications.self_rewarding import datasets as srd
from replications.self_rewarding.common import build_fixed_grader, read_agreement, with_ungraded_policy
from replications.self_rewarding.config import SECTION, SelfGrader
from replications.self_rewarding.evaluation import eval_stage
from replications.self_rewarding.report import write_report
from rubricrl.data.healthbench import load_subset
from rubricrl.judge import build_judge, close_judge
from rubricrl.judge.live_policy import LivePolicyGrader
from rubricrl.reward.scorer import TeacherRoutingJudge as SelfTeacherJudge
from rubricrl.reward.scorer import agreement
from rubricrl.train.drift_monitor import stage_monitor
from rubricrl.train.nemo_rl_stage import train_nemo_rl
from rubricrl.train.rewards import RubricScorer
from rubricrl.train.stages import Stage, StageContext, file_hash

log = logging.getLogger(__name__)

TRAINING_STAGES = ("train",)  # what monitor.stages may name


# --------------------------------------------------------------------------- data stage


def data_stage(ctx: StageContext) -> dict[str, Any]:
    """Load the subset, split it with the fixed seed, cap, and write ``train.jsonl`` / ``heldout.jsonl``."""

    d = ctx.cfg.section(SECTION).data
    pool = srd.load_training_pool(d.subset)
    train_caps = srd.SizeCaps(d.train_max_criteria, d.train_max_prompt_chars, d.max_train)
    held_caps = srd.SizeCaps(d.heldout_max_criteria, d.heldout_max_prompt_chars, d.max_heldout)
    train, held = srd.build_split(pool, d.heldout_frac, d.split_seed, train_caps, held_caps)
    if d.eval_subset == "hard":
        held = srd.apply_caps(load_subset("hard"), held_caps)
    srd.write_examples(ctx.dir / "train.jsonl", train)
    srd.write_examples(ctx.dir / "heldout.jsonl", held)
    for name in ("train", "heldout"):
        ctx.record_hash(f"{name}.jsonl", file_hash(ctx.dir / f"{name}.jsonl"))
    ctx.record_hash("train_ids", srd.ids_digest(train))
    ctx.record_hash("heldout_ids", srd.ids_digest(held))
    print(
        f"[data] {d.subset}: {len(pool)} examples -> train {len(train)}, held-out {len(held)} "
        f"({d.eval_subset}, split seed {d.split_seed})",
        flush=True,
    )
    return {"subset": d.subset, "pool": len(pool), "train": srd.summary(train), "heldout": srd.summary(held)}


# --------------------------------------------------------------------------- graders


def _unwrap(trainer: Any) -> Any:
    acc = getattr(trainer, "accelerator", None)
    return acc.unwrap_model(trainer.model) if acc is not None else trainer.model


class SelfRewardFunc:
    """TRL reward function: the policy grades its own rollouts (plus the teacher's share).

    Wraps :class:`rubricrl.train.trl_adapter.RubricRewardFunc` (which logs the reward components,
    per-criterion pass rates, judge latency and ungraded counts). Before each batch it binds the live
    grader to the trainer's model object (found through the bound ``log_metric`` TRL passes), so the
    grader has the weights of that step; after it, it logs self-versus-teacher agreement on the overlap
    (``self_vs_teacher/{agreement,kappa,n}``) and appends it to ``agreement_path``.
    """

    def __init__(
        self,
        inner: Any,
        judge: SelfTeacherJudge,
        grader: SelfGrader,
        agreement_path: Path | None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ):
        self.inner = inner
        self.judge = judge
        self.grader = grader
        self.agreement_path = agreement_path
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.__name__ = "self_reward"

    def bind(self, model: Any, tokenizer: Any) -> None:
        """Grade with ``model`` from now on (built once; later calls only swap the model object)."""
        live = self.judge.self_judge
        if isinstance(live, LivePolicyGrader):
            live.model = model
            return
        g = self.grader
        self.judge.self_judge = LivePolicyGrader(
            model,
            tokenizer,
            template=g.template,
            temperature=g.temperature,
            top_p=g.top_p,
            top_k=g.top_k,
            seed=g.seed,
            max_prompt_tokens=g.max_prompt_tokens,
            batch_size=g.batch_size,
            chat_template_kwargs=self.chat_template_kwargs,
        )
        self.judge.name = self.judge.self_judge.name

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        if self.grader.engine == "live":
            trainer = getattr(kwargs.get("log_metric"), "__self__", None)
            if trainer is not None:
                self.bind(_unwrap(trainer), trainer.processing_class)
            elif self.judge.self_judge is None:
                raise RuntimeError("live grader has no model: call bind(model, tokenizer) before grading")
        rewards = self.inner(prompts, completions, **kwargs)
        pairs = self.judge.take_pairs()
        if self.judge.teacher is not None:
            a = agreement(pairs)
            log_metric = kwargs.get("log_metric")
            if log_metric is not None:
                log_metric("self_vs_teacher/n", float(a["n"]))
                for k in ("agreement", "kappa"):
                    if a[k] is not None:
                        log_metric(f"self_vs_teacher/{k}", float(a[k]))
            if self.agreement_path is not None:
                step = int(getattr(kwargs.get("trainer_state"), "global_step", 0) or 0)
                with open(self.agreement_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, "pairs": [[int(s), int(t)] for s, t in pairs], **a}) + "\n")
        return rewards


# --------------------------------------------------------------------------- train stage


def train_stage(ctx: StageContext) -> dict[str, Any]:
    """GRPO with self-grading; checkpoints and resume come from the TRL adapter."""
    from rubricrl.train.trl_adapter import RubricRewardFunc, judge_label, reward_health, train_grpo

    cfg = ctx.cfg
    sr = cfg.section(SECTION)
    train = srd.read_examples(ctx.input("data") / "train.jsonl")
    rows = srd.trl_rows(train, cfg.policy.system_prompt)
    lookup = {pid: with_ungraded_policy(r, sr.grader.ungraded) for pid, r in srd.rubric_lookup(train).items()}
    if cfg.run.engine == "nemo_rl":  # paper scale: the policy's own vLLM engine grades (rubricrl.train.nemo_rl_stage)
        return train_nemo_rl(ctx, [(r["prompt"], lookup[r[srd.PROMPT_ID]], r[srd.PROMPT_ID]) for r in rows])
    self_judge = build_judge(cfg.judge) if sr.grader.engine == "http" else None
    teacher = (
        build_fixed_grader(sr.teacher.grader, "teacher", cfg.policy.device, cfg.policy.dtype)
        if sr.teacher.fraction > 0
        else None
    )
    judge = SelfTeacherJudge(self_judge, teacher, sr.teacher.fraction, sr.teacher.replace, sr.teacher.seed)
    scorer = RubricScorer(lookup, judge)
    train_label = (
        judge_label(judge)
        if self_judge is not None
        else f"the policy itself (live grader, current weights, T={sr.grader.temperature:g})"
    )
    health = reward_health(cfg, cfg.grpo, ctx.stage.name, train_label)
    try:
        monitor = stage_monitor(
            cfg,
            ctx.stage.name,
            ctx.dir,
            last_step=cfg.grpo.max_steps,
            train_label=train_label,
            shared=cfg.judge,
            training_stages=TRAINING_STAGES,
        )
    except BaseException:
        close_judge(judge)
        raise
    inner = RubricRewardFunc(
        scorer,
        rubric_column=srd.PROMPT_ID,
        rollouts_path=ctx.dir / "rollouts.jsonl",
        name="self_reward",
        health=health,
        health_path=ctx.dir / "reward_health.json",
        monitor=monitor,
        prompt_id_columns=(srd.PROMPT_ID,),
    )
    func = SelfRewardFunc(inner, judge, sr.grader, ctx.dir / "agreement.jsonl", cfg.policy.chat_template_kwargs)
    print(
        f"[train] {len(rows)} prompts, {cfg.grpo.max_steps} steps x {cfg.grpo.prompts_per_step} prompts x "
        f"{cfg.grpo.num_generations} samples; grader: {sr.grader.engine} policy at T={sr.grader.temperature:g}"
        + (
            f", teacher {sr.teacher.grader.kind}:{sr.teacher.grader.model} on {sr.teacher.fraction:.0%}"
            if teacher is not None
            else ""
        ),
        flush=True,
    )
    try:
        result = train_grpo(
            cfg, cfg.grpo, rows, [func], ctx.dir, run_name=f"{cfg.run.name}-train", health=health, monitor=monitor
        )
    finally:
        close_judge(judge)
        if monitor is not None:
            monitor.close()
    _, overall = read_agreement(ctx.dir / "agreement.jsonl")
    stats = judge.stats.as_dict() if judge.self_judge is not None else {}
    ctx.record_hash("final_model", _dir_digest(Path(result["final_model"])))
    return {
        **result,
        "self_grader": stats,
        "teacher_samples": judge.teacher_samples,
        "teacher_fallbacks": judge.teacher_fallbacks,
        "self_vs_teacher": overall,
    }


def _dir_digest(d: Path) -> str:
    """sha256 over the weight files of a saved model (provenance)."""

    h = hashlib.sha256()
    for p in sorted(d.glob("*.safetensors")):
        h.update(p.name.encode())
        h.update(file_hash(p).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- pipeline


def report_stage(ctx: StageContext) -> dict[str, Any]:
    """Write ``report.md`` and the plots (see :mod:`replications.self_rewarding.report`)."""
    return write_report(ctx)


def stages(cfg: Any) -> list[Stage]:
    """The self-rewarding stages in order."""
    return [
        Stage("data", data_stage, (), "HealthBench subset, fixed-seed train / held-out split"),
        Stage("train", train_stage, ("data",), "GRPO, the policy grades its own rollouts (current weights)"),
        Stage("eval", eval_stage, ("data", "train"), "held-out responses before / after, graded by a fixed judge"),
        Stage("report", report_stage, ("data", "train", "eval"), "markdown + PNG report"),
    ]
