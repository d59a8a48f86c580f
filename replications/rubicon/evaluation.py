"""Rubicon held-out evaluation: base policy vs after stage 1 vs after stage 2.

* Stage-1 held-out prompts (new tasks, never trained or tuned on), scored by the programmatic
  verifiers: prompt-level accuracy (every constraint met) with a Wilson 95% interval over the n
  samples, instruction-level accuracy (fraction of constraints met), mean rubric reward; and for each
  trained model the paired difference to the base with a 95% bootstrap interval over prompts.
* Stage-2 held-out prompts, graded by the judge (``cfg.judge``; a local vLLM server at tiny scale)
  with the stage-2 rubric and the defense rubric: mean reward and veto rate.
"""

from __future__ import annotations

import json
from statistics import median
from typing import Any

from replications.rubicon.common import judge_for, load_rubric_file, read_rows, rub, write_rows
from replications.rubicon.hacking import detect
from rubricrl.generation import sample_responses
from rubricrl.scoring.stats import paired_bootstrap, wilson
from rubricrl.train.rewards import RubricScorer
from rubricrl.train.stages import StageContext


def _stage1_scores(ctx: StageContext, model: str, rows: list[dict], rubrics: dict, advance) -> list[dict[str, Any]]:

    cfg, e = ctx.cfg, rub(ctx.cfg).eval
    samples = sample_responses(
        model,
        [r["prompt"] for r in rows],
        n=e.samples,
        max_new_tokens=e.max_new_tokens,
        temperature=e.temperature,
        top_p=e.top_p,
        batch_size=e.batch_size,
        seed=cfg.run.seed + 17,
        chat_template_kwargs=cfg.policy.chat_template_kwargs,
        dtype=cfg.policy.dtype,
        device=cfg.policy.device,
        advance=advance,
    )
    flat = [(r, s) for r, ss in zip(rows, samples) for s in ss]
    with judge_for(cfg, False, ctx.dir) as judge:
        scored = RubricScorer(rubrics, judge).score(
            [r["prompt"] for r, _ in flat], [s for _, s in flat], [r["rubric_id"] for r, _ in flat]
        )

    med = median(len(s.split()) for _, s in flat) if flat else 0
    out = []
    for (r, s), sc in zip(flat, scored):
        vals = [v for v in sc.task.per_criterion.values() if v is not None]
        out.append(
            {
                "id": r["id"],
                "rubric_id": r["rubric_id"],
                "response": s,
                "reward": sc.reward,
                "all_met": bool(vals) and all(v >= 1.0 for v in vals),
                "instr_met": sum(v >= 1.0 for v in vals),
                "instr_total": len(vals),
                "hacking_patterns": detect(s, med, rub(cfg).hacking.max_ratio),
            }
        )
    return out


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(samples)
    k = sum(s["all_met"] for s in samples)
    it = sum(s["instr_total"] for s in samples)
    im = sum(s["instr_met"] for s in samples)
    lo, hi = wilson(k, n)
    ilo, ihi = wilson(im, it)
    return {
        "n": n,
        "prompt_level": k / n if n else 0.0,
        "prompt_level_ci95": [lo, hi],
        "instruction_level": im / it if it else 0.0,
        "instruction_level_ci95": [ilo, ihi],
        "n_instructions": it,
        "mean_reward": sum(s["reward"] for s in samples) / n if n else 0.0,
        "hacking_rate": sum(bool(s.get("hacking_patterns")) for s in samples) / n if n else 0.0,
    }


def _per_prompt(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for s in samples:
        acc.setdefault(s["id"], []).append(float(s[key]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _stage2_scores(ctx: StageContext, models: dict[str, str], rows: list[dict], rubrics: dict) -> dict[str, Any]:

    cfg, e = ctx.cfg, rub(ctx.cfg).eval
    defense = next(iter(load_rubric_file(ctx.input("hacking") / "defense_rubric.json").values()))
    responses = {
        name: [
            ss[0]
            for ss in sample_responses(
                path,
                [r["prompt"] for r in rows],
                n=1,
                max_new_tokens=e.max_new_tokens,
                temperature=e.temperature,
                top_p=e.top_p,
                batch_size=e.batch_size,
                seed=cfg.run.seed + 29,
                chat_template_kwargs=cfg.policy.chat_template_kwargs,
                dtype=cfg.policy.dtype,
                device=cfg.policy.device,
            )
        ]
        for name, path in models.items()
    }
    out: dict[str, Any] = {}
    with judge_for(cfg, True, ctx.dir) as judge:
        scorer = RubricScorer(rubrics, judge, defense)
        for name, texts in responses.items():
            sc = scorer.score([r["prompt"] for r in rows], texts, [r["rubric_id"] for r in rows])
            out[name] = {
                "n": len(sc),
                "mean_reward": sum(s.reward for s in sc) / max(1, len(sc)),
                "mean_task_reward": sum(s.task.reward for s in sc) / max(1, len(sc)),
                "veto_rate": sum(s.vetoed for s in sc) / max(1, len(sc)),
                "ungraded": sum(s.n_ungraded for s in sc),
                "samples": [
                    {"id": r["id"], "response": t, "reward": s.reward, "vetoed": s.vetoed}
                    for r, t, s in zip(rows, texts, sc)
                ],
            }
        out["judge"] = judge.stats.as_dict()
    return out


def evaluate(ctx: StageContext) -> dict[str, Any]:
    """The eval stage: writes ``eval.json`` and ``samples_<model>.jsonl``; returns the summary."""
    from rubricrl.train.trl_adapter import policy_path

    cfg, e = ctx.cfg, rub(ctx.cfg).eval
    data = ctx.input("data")
    rubrics = load_rubric_file(data / "rubrics.json")
    models = {
        "base": policy_path(cfg.policy.name),
        "stage1": str(ctx.input("stage1_rl") / "final"),
        "stage2": str(ctx.input("stage2_rl") / "final"),
    }
    held = read_rows(data / "stage1_heldout.jsonl")
    result: dict[str, Any] = {
        "stage1_heldout": {},
        "decoding": {
            "temperature": e.temperature,
            "top_p": e.top_p,
            "max_new_tokens": e.max_new_tokens,
            "samples": e.samples,
        },
    }
    per: dict[str, list[dict]] = {}
    with ctx.progress(len(held) * e.samples * len(models), "held-out stage-1 prompts (programmatic checks)") as adv:
        for name, path in models.items():
            per[name] = _stage1_scores(ctx, path, held, rubrics, adv)
            write_rows(ctx.dir / f"samples_{name}.jsonl", per[name])
            result["stage1_heldout"][name] = _summary(per[name])
    base_pp = _per_prompt(per["base"], "all_met")
    base_r = _per_prompt(per["base"], "reward")
    for name in ("stage1", "stage2"):
        pp = _per_prompt(per[name], "all_met")
        rr = _per_prompt(per[name], "reward")
        ids = sorted(base_pp)
        m, lo, hi = paired_bootstrap([base_pp[i] for i in ids], [pp[i] for i in ids], e.bootstrap, cfg.run.seed)
        rm, rlo, rhi = paired_bootstrap([base_r[i] for i in ids], [rr[i] for i in ids], e.bootstrap, cfg.run.seed)
        result["stage1_heldout"][f"{name}_minus_base"] = {
            "prompt_level": m,
            "prompt_level_ci95": [lo, hi],
            "reward": rm,
            "reward_ci95": [rlo, rhi],
            "n_prompts": len(ids),
        }
    s2 = read_rows(data / "stage2_heldout.jsonl")
    if e.judged and s2:
        result["stage2_heldout"] = _stage2_scores(ctx, models, s2, rubrics)
    (ctx.dir / "eval.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    flat = {
        f"{m}/{k}": v for m, s in result["stage1_heldout"].items() for k, v in s.items() if isinstance(v, (int, float))
    }
    if "stage2_heldout" in result:
        flat.update(
            {
                f"stage2_heldout/{m}/{k}": v
                for m, s in result["stage2_heldout"].items()
                if m != "judge"
                for k, v in s.items()
                if isinstance(v, (int, float))
            }
        )
    return flat
