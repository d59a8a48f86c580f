"""The output-file rule (issue 13): ``grade`` and ``generate`` append to or rewrite ``--out`` only when its
manifest proves it is their own output for the same inputs; anything else exits 2 with the file unchanged
byte for byte (compared by sha256 before and after)."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from rubricrl import cli
from rubricrl.commands import generate as generate_cmd
from rubricrl.outputs import manifest_path
from tests.scoring.scripted_judge import ScriptedJudge
from tests.test_cli_grade_score import _grade, _lines, files  # noqa: F401  (the fixture)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


NOT_OURS = {
    "truncated JSON of other data": b'{"id": 1, "text": "a line of other data"}\n{"id": 2, "text": "cut o',
    "small binary file": bytes(range(128, 256)) + b"\x00\x01\x02",
    "text after blank lines": b"\n\n\nsome notes a person wrote",
    "markdown without a final newline": b"# Notes\n\n- one\n- two",
    "one line of text": b"remember to call back",
}


@pytest.mark.parametrize("content", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_grade_refuses_a_file_that_is_not_its_own(files, content, capsys):  # noqa: F811
    files["out"].write_bytes(content)
    before = sha(files["out"])
    assert _grade(files, ScriptedJudge()) == 2
    err = capsys.readouterr().err
    assert "nothing was changed" in err and "Traceback" not in err
    assert sha(files["out"]) == before
    assert not manifest_path(files["out"]).exists()


def test_grade_keeps_a_graded_file_of_other_data(files, tmp_path, capsys):  # noqa: F811
    assert _grade(files, ScriptedJudge()) == 0
    other = tmp_path / "other-data.jsonl"
    other.write_text(files["data"].read_text().replace("mentions", "names"))
    before = sha(files["out"])
    args = [
        "grade",
        "--data",
        str(other),
        "--responses",
        str(files["responses"]),
        "--judge",
        str(files["judge"]),
        "--out",
        str(files["out"]),
        "--no-progress",
    ]
    assert cli.main(args) == 2
    assert "another data" in capsys.readouterr().err
    assert sha(files["out"]) == before


def test_grade_writes_a_manifest_and_resumes_through_it(files):  # noqa: F811
    assert _grade(files, ScriptedJudge(), "--limit", "1") == 0
    m = json.loads(manifest_path(files["out"]).read_text())
    assert m["command"] == "grade" and m["output"] == files["out"].name
    assert set(m["inputs"]) == {"data_sha256", "judge_sha256", "responses_sha256"}
    assert m["states"] == [{"bytes": files["out"].stat().st_size, "sha256": sha(files["out"])}]
    j = ScriptedJudge()
    assert _grade(files, j) == 0 and len(j.requests) == 2 and len(_lines(files["out"])) == 3


def test_grade_refuses_an_owned_file_changed_since(files, capsys):  # noqa: F811
    assert _grade(files, ScriptedJudge(), "--limit", "2") == 0
    files["out"].write_bytes(files["out"].read_bytes()[:-40] + b"edited by hand\n")
    before = sha(files["out"])
    assert _grade(files, ScriptedJudge()) == 2
    assert "changed since `rubricrl grade` wrote it" in capsys.readouterr().err
    assert sha(files["out"]) == before


def test_grade_file_from_an_earlier_version_is_adopted(files, capsys):  # noqa: F811
    assert _grade(files, ScriptedJudge(), "--limit", "2") == 0
    manifest_path(files["out"]).unlink()  # what rubricrl before the manifest left behind
    before = files["out"].read_bytes()
    j = ScriptedJudge()
    assert _grade(files, j) == 0
    assert "no manifest (written by an earlier rubricrl)" in capsys.readouterr().err
    assert len(j.requests) == 1 and files["out"].read_bytes().startswith(before)
    assert manifest_path(files["out"]).exists()


def test_grade_file_from_an_earlier_version_with_a_torn_line_is_refused(files, capsys):  # noqa: F811
    assert _grade(files, ScriptedJudge(), "--limit", "2") == 0
    manifest_path(files["out"]).unlink()
    good = files["out"].stat().st_size
    with open(files["out"], "a") as f:
        f.write('{"prompt": [{"role"')
    before = sha(files["out"])
    assert _grade(files, ScriptedJudge()) == 2
    err = capsys.readouterr().err
    assert f"truncate -s {good} {files['out']}" in err
    assert sha(files["out"]) == before
    os.truncate(files["out"], good)  # doing what the message says resumes
    assert _grade(files, ScriptedJudge()) == 0 and len(_lines(files["out"])) == 3


def test_retry_ungraded_keeps_the_mode_and_the_manifest(files):  # noqa: F811
    assert _grade(files, ScriptedJudge(flaky=True)) == 0
    os.chmod(files["out"], 0o644)
    assert _grade(files, ScriptedJudge(), "--retry-ungraded") == 0
    assert stat.S_IMODE(files["out"].stat().st_mode) == 0o644
    assert all(g["criteria_met"] is not None for r in _lines(files["out"]) for g in r["grades"])
    m = json.loads(manifest_path(files["out"]).read_text())
    assert m["states"] == [{"bytes": files["out"].stat().st_size, "sha256": sha(files["out"])}]
    assert "responses_sha256" in m["inputs"]  # kept although --retry-ungraded names no responses
    j = ScriptedJudge()
    assert _grade(files, j) == 0 and j.requests == []  # and a plain re-run still resumes


def test_grade_with_no_matching_response_exits_2_and_writes_nothing(files, capsys):  # noqa: F811
    other = files["dir"] / "unrelated.jsonl"
    other.write_text(json.dumps({"prompt_id": "zzz", "response": "x"}) + "\n")
    assert _grade(files, ScriptedJudge(), responses=other) == 2
    assert "none of the 1 responses has an example" in capsys.readouterr().err
    assert not files["out"].exists()


# ---------------------------------------------------------------------------------------- generate


class FakeSampler:
    n_calls = n_failed = 0
    latency_s = 0.0

    def __init__(self, cfg):
        self.cfg = cfg

    async def sample(self, messages, seed):
        FakeSampler.n_calls += 1
        return f"answer to {messages[-1]['content']}", None

    async def aclose(self):
        pass


@pytest.fixture
def gen(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_cmd, "Sampler", FakeSampler)
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n" for i in range(3)))
    policy = tmp_path / "policy.yaml"
    policy.write_text("backend: openai\nmodel: fake-policy\nbase_url: http://127.0.0.1:9/v1\n")
    out = tmp_path / "responses.jsonl"

    def run(*extra, out=out, policy=policy):
        return cli.main(
            ["generate", "--data", str(data), "--policy", str(policy), "--out", str(out), "--no-progress", *extra]
        )

    return {"run": run, "out": out, "dir": tmp_path, "policy": policy}


@pytest.mark.parametrize("content", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_generate_refuses_a_file_that_is_not_its_own(gen, content, capsys):
    gen["out"].write_bytes(content)
    before = sha(gen["out"])
    assert gen["run"]() == 2
    err = capsys.readouterr().err
    assert str(gen["out"]) in err and "Traceback" not in err and "UnicodeDecodeError" not in err
    assert sha(gen["out"]) == before
    assert not manifest_path(gen["out"]).exists()


def test_generate_refuses_a_graded_file(gen, capsys):
    from tests.scoring.helpers import three_examples

    gen["out"].write_text("".join(json.dumps(r) + "\n" for r in three_examples()))
    before = sha(gen["out"])
    assert gen["run"]() == 2
    assert "not a responses line" in capsys.readouterr().err
    assert sha(gen["out"]) == before


def test_generate_resumes_its_own_file_and_drops_only_a_torn_tail(gen):
    assert gen["run"]("--limit", "2") == 0
    assert [r["prompt_id"] for r in _lines(gen["out"])] == ["q0", "q1"]
    assert json.loads(manifest_path(gen["out"]).read_text())["command"] == "generate"
    with open(gen["out"], "a") as f:
        f.write('{"prompt_id": "q2", "sour')  # a crash mid-line
    assert gen["run"]() == 0
    assert [r["prompt_id"] for r in _lines(gen["out"])] == ["q0", "q1", "q2"]


def test_generate_refuses_another_policy(gen, capsys):
    assert gen["run"]("--limit", "1") == 0
    before = sha(gen["out"])
    assert gen["run"]("--set", "sampling.temperature=1.5") == 2
    assert "another policy" in capsys.readouterr().err
    assert sha(gen["out"]) == before


def test_generate_file_from_an_earlier_version_is_adopted(gen, capsys):
    assert gen["run"]("--limit", "1") == 0
    manifest_path(gen["out"]).unlink()
    before = gen["out"].read_bytes()
    assert gen["run"]() == 0
    assert "no manifest" in capsys.readouterr().err
    assert gen["out"].read_bytes().startswith(before) and len(_lines(gen["out"])) == 3
