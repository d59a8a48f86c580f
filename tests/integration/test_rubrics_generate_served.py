"""Rubric generation through a real vLLM server on CPU (SmolLM2-135M-Instruct): ``rubricrl rubrics generate``.

The server writes the rubrics (JSON-schema answers), the output passes ``rubricrl validate``, and the
discrimination gate, grading with the same server as judge, drops the rubric of a prompt whose responses
are all the same text (its scores cannot vary) while every rubric is accounted for in the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_generate_through_served_model_validates_and_gate_drops_constant_scores(vllm_endpoint, tmp_path: Path):
    base, model = vllm_endpoint["base_url"], vllm_endpoint["model"]
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "story", "prompt": "Write a four-sentence story about a lighthouse keeper who finds a letter."},
        {"id": "advice", "prompt": "Give two tips for keeping a small herb garden alive indoors."},
        {"id": "thanks", "prompt": "Write a short thank-you note to a neighbour who fed my cat."},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    responses = tmp_path / "responses.jsonl"
    given = {
        "story": [
            "The keeper found a letter from his lost brother and rowed out at dawn to find him.",
            "lighthouse",
            "I cannot write stories.",
        ],
        "advice": ["Water it.", "Water it.", "Water it."],  # identical: scores cannot vary
        "thanks": ["Thanks!", "Thanks!", "Thanks!"],
    }
    responses.write_text(
        "".join(
            json.dumps({"prompt_id": pid if i == 0 else f"{pid}#{i}", "source_id": pid, "response": r}) + "\n"
            for pid, rs in given.items()
            for i, r in enumerate(rs)
        ),
        encoding="utf-8",
    )
    server = {"backend": "openai", "model": model, "base_url": base, "timeout_s": 300}
    cfg = {
        "generator": {**server, "sampling": {"temperature": 0.7, "max_tokens": 512}, "concurrency": 2, "retries": 1},
        "scoring": "points",
        "min_criteria": 1,  # a 135M writer often copies the template's example: keep the budget generous
        "max_criteria": 3,
        "attempts": 8,
        "programmatic": False,
        "gates": {
            "discrimination": {
                "enabled": True,
                "k": 3,
                "policy": None,
                "judge": {
                    **server,
                    "mode": "binary",
                    "structured_output": True,
                    "sampling": {"temperature": 0.0, "max_tokens": 96},
                    "retries": 1,
                    "concurrency": 4,
                },
            }
        },
    }
    cfg_path = tmp_path / "gen.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "out" / "rubrics.jsonl"
    cmd = [sys.executable, "-m", "rubricrl.cli", "rubrics", "generate", "--prompts", str(prompts)]
    cmd += ["--config", str(cfg_path), "--out", str(out), "--responses", str(responses), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert r.returncode in (0, 3), r.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "rubrics.summary.json").read_text())
    gates = {g["id"]: g for g in map(json.loads, (tmp_path / "out" / "rubrics.gates.jsonl").read_text().splitlines())}
    failures = (tmp_path / "out" / "rubrics.failures.jsonl").read_text()
    constant = [pid for pid in ("advice", "thanks") if pid in gates]
    # the 135M writer may fail a prompt within its attempts (recorded with reasons); not both of them
    assert constant, f"no rubric for either constant-response prompt; failures:\n{failures[-3000:]}"
    for pid in constant:  # a constant-response prompt's rubric: written by the server, valid, dropped by the gate
        assert gates[pid]["status"] == "dropped" and gates[pid]["reason"] == "zero_variance", gates[pid]
        assert gates[pid]["discrimination"]["distinct"] == 1 and gates[pid]["discrimination"]["std"] == 0.0
        dropped_rubric = tmp_path / f"dropped-{pid}.jsonl"
        dropped_rubric.write_text(json.dumps(gates[pid]["rubric"]) + "\n")
        v = subprocess.run(
            [sys.executable, "-m", "rubricrl.cli", "validate", str(dropped_rubric)], capture_output=True, text=True
        )
        assert v.returncode == 0, v.stderr
        assert f"generator:{model}" in gates[pid]["rubric"]["tags"]
    # every unit is accounted for; whatever was kept validates like any rubric file
    assert summary["kept"] + sum(summary["dropped"].values()) + summary["failed"] == 3
    if out.exists() and out.read_text().strip():
        v = subprocess.run([sys.executable, "-m", "rubricrl.cli", "validate", str(out)], capture_output=True, text=True)
        assert v.returncode == 0, v.stderr
        kept = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
        assert all(f"generator:{model}" in k["tags"] for k in kept)
    assert summary["tokens"]["generation"]["completion_tokens"] > 0
    # a re-run skips every decided prompt (only failed ones are tried again)
    before = out.read_bytes() if out.exists() else b""
    r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert r2.returncode in (0, 3)
    assert (out.read_bytes() if out.exists() else b"").startswith(before)
    if summary["failed"] == 0:
        assert (out.read_bytes() if out.exists() else b"") == before
