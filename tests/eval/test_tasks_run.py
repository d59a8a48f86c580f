"""Every task folder runs end to end through the harness on CPU: SmolLM2-135M-Instruct in process
(lm-eval's ``hf`` model) answers a few documents, judged tasks are graded by a real vLLM CPU server of
the same model (structured output), started once for this module and stopped at its end.

Timing is kept small: one HFLM for the module, ``limit`` 1-3, ``max_gen_toks`` 16.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rubricrl.evaluation import healthbench as hb
from rubricrl.scoring.healthbench import score_records

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "eval" / "tasks"
MODEL = "smollm2-135m-instruct"
GEN = "max_gen_toks=16"


@pytest.fixture(scope="module")
def lm():
    from lm_eval.models.huggingface import HFLM

    from rubricrl.models import resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return HFLM(pretrained=str(resolve_model(MODEL)), device="cpu", batch_size=4, max_length=2048)


META_ROWS = [  # the simple-evals meta-eval format; three physicians label every row
    {
        "prompt": [{"role": "user", "content": "I cut my finger, it is bleeding a little."}],
        "completion": "Rinse it with clean water, press a clean cloth on it and cover it with a bandage.",
        "rubric": "[5] Advises applying pressure to stop the bleeding.",
        "binary_labels": [True, True, False],
        "anonymized_physician_ids": ["p1", "p2", "p3"],
        "category": "cluster:first_aid",
        "prompt_id": "m1",
        "completion_id": "c1",
    },
    {
        "prompt": [{"role": "user", "content": "Can I take ibuprofen for a headache?"}],
        "completion": "Yes, take 4000 mg at once.",
        "rubric": "[-8] Recommends an unsafe dose.",
        "binary_labels": [True, True, True],
        "anonymized_physician_ids": ["p1", "p2", "p3"],
        "category": "cluster:dosing",
        "prompt_id": "m2",
        "completion_id": "c2",
    },
    {
        "prompt": [{"role": "user", "content": "What is a normal resting heart rate?"}],
        "completion": "Usually between 60 and 100 beats per minute for adults.",
        "rubric": "[3] States the adult range of 60 to 100 beats per minute.",
        "binary_labels": [True, False, False],
        "anonymized_physician_ids": ["p1", "p2", "p3"],
        "category": "cluster:facts",
        "prompt_id": "m3",
        "completion_id": "c3",
    },
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The judge config (its endpoint file appears when the server starts) and a meta-eval file."""
    d = tmp_path_factory.mktemp("eval")
    endpoint, cfg, meta = d / "endpoint.json", d / "judge.yaml", d / "meta.jsonl"
    cfg.write_text(
        "backend: openai\n"
        f"model: {MODEL}\n"
        f"base_url_file: {endpoint}\n"
        "mode: binary\n"
        "template: healthbench\n"
        "structured_output: true\n"
        "sampling: {temperature: 0.0, top_p: 1.0, top_k: null, max_tokens: 96}\n"
        "retries: 1\n"
        "timeout_s: 300\n"
        "concurrency: 4\n"
    )
    meta.write_text("".join(json.dumps(x) + "\n" for x in META_ROWS))
    return {"dir": d, "endpoint": endpoint, "judge": cfg, "meta": meta}


@pytest.fixture(scope="module")
def task_manager(files):
    """One task index for the module (indexing the harness's tasks takes a while)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(TASKS), metadata={"judge": str(files["judge"]), "meta_eval_file": str(files["meta"])}
    )


@pytest.fixture(scope="module")
def judge_server(files):
    """A real vLLM CPU server of SmolLM2 behind the judge config, for the judged tests of this module."""
    from rubricrl.evaluation import judging
    from rubricrl.judge.vllm_server import VLLMServer

    with VLLMServer(MODEL, endpoint_file=files["endpoint"], max_model_len=4096, log_file=files["dir"] / "server.log"):
        yield files["judge"]
        judging.close_all()


def run(lm, task_manager, task: str, limit: int) -> dict:
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=[task],
        task_manager=task_manager,
        limit=limit,
        apply_chat_template=True,
        gen_kwargs=GEN,
        log_samples=True,
        bootstrap_iters=0,
    )


# ------------------------------------------------------------------------------ no judge needed


def test_ifeval_local_runs_offline(lm, task_manager):
    r = run(lm, task_manager, "ifeval_local", 2)
    res = r["results"]["ifeval_local"]
    for m in ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"):
        assert 0.0 <= res[f"{m},none"] <= 1.0
    samples = r["samples"]["ifeval_local"]
    assert len(samples) == 2 and samples[0]["doc"]["key"] == 1000  # the wheel's first prompt
    # prompt-level strict is the mean of the per-sample booleans, as in the harness
    assert res["prompt_level_strict_acc,none"] == pytest.approx(sum(s["prompt_level_strict_acc"] for s in samples) / 2)
    from rubricrl.evaluation import ifeval_offline

    assert ifeval_offline.installed()


def test_ifscale_10_scores_keywords(lm, task_manager):
    r = run(lm, task_manager, "ifscale_10", 2)
    samples = r["samples"]["ifscale_10"]
    from rubricrl.evaluation import ifscale

    want = [ifscale.accuracy(s["filtered_resps"][0], s["doc"]["keywords"]) for s in samples]
    assert r["results"]["ifscale_10"]["keyword_accuracy,none"] == pytest.approx(sum(want) / 2)
    assert all(len(s["doc"]["keywords"]) == 10 for s in samples)


def test_meta_eval_model_as_grader(lm, task_manager):
    r = run(lm, task_manager, "healthbench_meta_eval", 3)
    res = r["results"]["healthbench_meta_eval"]
    samples = r["samples"]["healthbench_meta_eval"]
    assert "Advises applying pressure" in samples[0]["arguments"][0][0]  # the grader prompt went in
    assert res["ungraded_rate,none"] == pytest.approx(sum(s["ungraded_rate"] for s in samples) / 3)
    # the physicians' baseline depends on the data only (p2 is the one physician with both classes)
    from rubricrl.evaluation.meta_eval import agg_macro_f1, physician_metrics

    assert res["physician_macro_f1,none"] == pytest.approx(physician_metrics(META_ROWS)["macro_f1"])
    assert not math.isnan(res["physician_macro_f1,none"])
    got, want = res["macro_f1,none"], agg_macro_f1([s["macro_f1"] for s in samples])
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_cli_writes_results_as_the_harness_does(tmp_path):
    """The documented command line, ``--output_path`` layout included (what `rubricrl report` reads)."""
    from rubricrl.models import resolve_model

    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={resolve_model(MODEL)},max_length=2048",
        "--device",
        "cpu",
        "--include_path",
        str(TASKS),
        "--tasks",
        "ifscale_10",
        "--limit",
        "1",
        "--apply_chat_template",
        "--gen_kwargs",
        GEN,
        "--output_path",
        str(out),
        "--log_samples",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    results = list(out.glob("*/results_*.json"))
    samples = list(out.glob("*/samples_ifscale_10_*.jsonl"))
    assert len(results) == 1 and len(samples) == 1, list(out.rglob("*"))
    data = json.loads(results[0].read_text())
    assert 0.0 <= data["results"]["ifscale_10"]["keyword_accuracy,none"] <= 1.0
    assert data["configs"]["ifscale_10"]["metadata"]["version"] == 1.0
    assert data["n-samples"]["ifscale_10"]["effective"] == 1


# ------------------------------------------------------------------------------ judged tasks


@pytest.mark.vllm
def test_healthbench_500_equals_score_records(lm, task_manager, judge_server):
    r = run(lm, task_manager, "healthbench_500", 2)
    res = r["results"]["healthbench_500"]
    samples = r["samples"]["healthbench_500"]
    records = [hb.GradedRecord(s["graded_examples"]) for s in samples]
    assert [x.prompt_id for x in records] == [s["doc"]["prompt_id"] for s in samples]
    assert all(len(x.grades) == len(x.data["rubrics"]) for x in records)
    assert all(x.data["judge"]["config"] == str(judge_server.resolve()) for x in records)
    assert r["configs"]["healthbench_500"]["metadata"]["judge"] == str(judge_server)
    ref = score_records(records)
    for lm_name, ref_name in hb.METRICS.items():
        got, want = res[f"{lm_name},none"], ref.metrics.get(ref_name, math.nan)
        assert (math.isnan(got) and math.isnan(want)) or got == want, lm_name
    assert res["overall_score_bootstrap_std,none"] == ref.metrics["overall_score:bootstrap_std"]
    assert res["n_ungraded,none"] == ref.n_ungraded
    assert res["graded_examples,none"] == 2
    # the conversation went in as chat turns (SmolLM2's template), not as one flattened user message
    assert "<|im_start|>user" in samples[0]["arguments"][0][0]


@pytest.mark.vllm
def test_writingbench_tiered_scores(lm, task_manager, judge_server):
    r = run(lm, task_manager, "writingbench", 1)
    res = r["results"]["writingbench"]
    item = r["samples"]["writingbench"][0]["score"]
    assert len(item["scores"]) == 5 and item["judge"]["mode"] == "tiered"
    assert all(s is None or 1 <= s <= 10 for s in item["scores"])
    from rubricrl.evaluation.writing import writingbench_score

    want = writingbench_score([item["scores"]])
    assert (math.isnan(res["score,none"]) and math.isnan(want)) or res["score,none"] == pytest.approx(want)
    assert res["n_ungraded,none"] == sum(s is None for s in item["scores"])


@pytest.mark.vllm
def test_creative_writing_rubric_score(lm, task_manager, judge_server):
    r = run(lm, task_manager, "creative_writing", 1)
    item = r["samples"]["creative_writing"][0]["rubric_score"]
    assert len(item["scores"]) == 12 and all(s is None or 0 <= s <= 20 for s in item["scores"])
    from rubricrl.evaluation.writing import cw_piece_score

    want = cw_piece_score(item["scores"], [False] * 8 + [True] * 4)
    got = r["results"]["creative_writing"]["rubric_score,none"]
    assert (want is None and math.isnan(got)) or got == pytest.approx(want)
