"""The grade and score commands end to end, with a scripted judge as a unit test of the CLI's resume,
interruption and ungraded handling (the real-judge run is an integration test elsewhere)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from rubricrl import cli
from rubricrl.commands import grade as grade_cmd
from tests.scoring.helpers import three_examples
from tests.scoring.scripted_judge import ScriptedJudge


def _example(pid, words, flaky=False):
    rubrics = [{"criterion": f"mentions {w}", "points": 5, "tags": ["axis:accuracy"]} for w in words]
    rubrics.append(
        {"criterion": "says " + ("flaky" if flaky else "") + " bad", "points": -3, "tags": ["axis:accuracy"]}
    )
    return {
        "prompt": [{"role": "user", "content": f"q {pid}"}],
        "rubrics": rubrics,
        "example_tags": ["theme:t"],
        "prompt_id": pid,
        "ideal_completions_data": {
            "ideal_completion": "alpha beta",
            "ideal_completions_group": "Group 1",
            "ideal_completions_ref_completions": [],
        },
    }


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "data.jsonl"
    exs = [
        _example("p1", ["alpha", "beta"]),
        _example("p2", ["gamma"], flaky=True),
        _example("p3", ["delta"]),
        _example("p4", ["alpha"]),
    ]
    data.write_text("".join(json.dumps(e) + "\n" for e in exs))
    resp = tmp_path / "responses.jsonl"
    rs = [
        {"prompt_id": "p1", "response": "alpha"},
        {"prompt_id": "p2", "response": "gamma bad"},
        {"prompt_id": "p3", "response": "nothing"},
    ]
    resp.write_text("".join(json.dumps(r) + "\n" for r in rs))
    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: replay\nmodel: scripted-test\nconcurrency: 2\n")
    return {"data": data, "responses": resp, "judge": judge, "out": tmp_path / "graded.jsonl", "dir": tmp_path}


def _grade(files, judge, *extra, responses=None):
    grade_cmd_judge = judge
    orig = grade_cmd._build_judge
    grade_cmd._build_judge = lambda cfg: grade_cmd_judge
    try:
        return cli.main(
            [
                "grade",
                "--data",
                str(files["data"]),
                "--responses",
                str(responses or files["responses"]),
                "--judge",
                str(files["judge"]),
                "--out",
                str(files["out"]),
                "--no-progress",
                *extra,
            ]
        )
    finally:
        grade_cmd._build_judge = orig


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x]


def test_grade_writes_aligned_grades_and_reports_missing(files, capsys):
    j = ScriptedJudge()
    assert _grade(files, j) == 0
    out = capsys.readouterr()
    recs = _lines(files["out"])
    assert [r["prompt_id"] for r in sorted(recs, key=lambda r: r["prompt_id"])] == ["p1", "p2", "p3"]
    p1 = next(r for r in recs if r["prompt_id"] == "p1")
    assert [g["criteria_met"] for g in p1["grades"]] == [True, False, False]
    assert p1["response"] == "alpha" and p1["judge"]["model"] == "scripted-test"
    assert p1["ideal_completions_data"]["ideal_completion"] == "alpha beta"  # published fields kept
    assert "3 of 4 examples have a response and are graded; the other 1" in out.err
    assert "graded 3 examples" in out.out and "verdicts: 7 (ungraded: 0)" in out.out
    assert "judge calls: 7" in out.out
    assert j.closed


def test_progress_lines_when_stderr_is_not_a_terminal(files, capsys):
    # tqdm alone hides itself off a terminal: make healthbench-demo was silent for minutes.
    orig = grade_cmd._build_judge
    grade_cmd._build_judge = lambda cfg: ScriptedJudge()
    try:
        assert (
            cli.main(
                [
                    "grade",
                    "--data",
                    str(files["data"]),
                    "--responses",
                    str(files["responses"]),
                    "--judge",
                    str(files["judge"]),
                    "--out",
                    str(files["out"]),
                ]
            )
            == 0
        )
    finally:
        grade_cmd._build_judge = orig
    err = capsys.readouterr().err
    assert "grading: 0/3 ex to do" in err and "grading: 3/3 (100%)" in err and "ungraded=0" in err


def test_rerun_skips_done_and_grades_only_new(files, capsys):
    assert _grade(files, ScriptedJudge()) == 0
    before = files["out"].read_bytes()
    j = ScriptedJudge()
    assert _grade(files, j) == 0
    assert j.requests == [] and files["out"].read_bytes() == before
    assert "3 already in" in capsys.readouterr().out
    more = files["dir"] / "more.jsonl"
    more.write_text(files["responses"].read_text() + json.dumps({"prompt_id": "p4", "response": "alpha"}) + "\n")
    j = ScriptedJudge()
    assert _grade(files, j, responses=more) == 0
    assert [r.rubric_id for r in j.requests] == ["p4"]
    assert files["out"].read_bytes().startswith(before) and len(_lines(files["out"])) == 4


def test_truncated_tail_from_a_crash_is_regraded(files):
    assert _grade(files, ScriptedJudge(), "--limit", "2") == 0
    with open(files["out"], "a") as f:  # a crash while writing the third line: the manifest has two
        f.write('{"prompt": [{"role": "user", "con')
    j = ScriptedJudge()
    assert _grade(files, j) == 0
    assert len(j.requests) == 1
    recs = _lines(files["out"])
    assert len(recs) == 3 and len({r["prompt_id"] for r in recs}) == 3


def test_limit_takes_the_first_examples_in_data_order(files):
    j = ScriptedJudge()
    assert _grade(files, j, "--limit", "1") == 0
    assert [r["prompt_id"] for r in _lines(files["out"])] == ["p1"]


def test_ideal_responses(files):
    assert _grade(files, ScriptedJudge(), responses="ideal") == 0
    recs = _lines(files["out"])
    assert len(recs) == 4 and all(r["response"] == "alpha beta" for r in recs)


def test_fail_on_ungraded_then_retry_ungraded(files, capsys):
    assert _grade(files, ScriptedJudge(flaky=True), "--fail-on-ungraded") == 3
    p2 = next(r for r in _lines(files["out"]) if r["prompt_id"] == "p2")
    assert p2["grades"][-1]["criteria_met"] is None and p2["grades"][0]["criteria_met"] is True
    capsys.readouterr()
    j = ScriptedJudge(flaky=False)
    assert _grade(files, j, "--retry-ungraded", "--fail-on-ungraded") == 0
    assert len(j.requests) == 1 and [c.id for c in j.requests[0].criteria] == ["c01"]
    recs = {r["prompt_id"]: r for r in _lines(files["out"])}
    assert recs["p2"]["grades"][-1]["criteria_met"] is True  # "bad" is in "gamma bad"
    assert recs["p2"]["grades"][0]["explanation"] == "looked for gamma"  # untouched
    assert "0 ungraded verdicts in total" in capsys.readouterr().out


def test_sigint_keeps_everything_written_and_resumes(files, capsys):
    files["judge"].write_text("backend: replay\nmodel: scripted-test\nconcurrency: 1\n")
    assert _grade(files, ScriptedJudge(signal_after=1)) == 130
    assert len(_lines(files["out"])) == 1
    assert "interrupted by SIGINT" in capsys.readouterr().err
    j = ScriptedJudge()
    assert _grade(files, j) == 0
    assert len(j.requests) == 2 and len(_lines(files["out"])) == 3


def test_sigterm_from_outside_loses_nothing(files):
    files["judge"].write_text("backend: replay\nmodel: scripted-test\nconcurrency: 1\n")
    script = files["dir"] / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(files["dir"].parent)!r})
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from scoring.scripted_judge import ScriptedJudge
        from rubricrl import cli
        from rubricrl.commands import grade
        grade._build_judge = lambda cfg: ScriptedJudge(delay=0.4)
        sys.exit(cli.main(sys.argv[1:]))
    """)
    )
    args = [
        sys.executable,
        str(script),
        "grade",
        "--data",
        str(files["data"]),
        "--responses",
        str(files["responses"]),
        "--judge",
        str(files["judge"]),
        "--out",
        str(files["out"]),
        "--no-progress",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.time() + 30
    while time.time() < deadline and not (files["out"].exists() and files["out"].read_text().count("\n") >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err
    recs = _lines(files["out"])  # every line complete
    assert 1 <= len(recs) < 3


def test_refuses_to_overwrite_a_file_that_is_not_graded(files):
    files["out"].write_text("important notes\n")
    assert _grade(files, ScriptedJudge()) == 2
    assert files["out"].read_text() == "important notes\n"


def test_refuses_graded_file_of_other_data_or_responses_or_judge(files, capsys):
    other = files["dir"] / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in three_examples()))
    files["out"].write_bytes(other.read_bytes())
    assert _grade(files, ScriptedJudge()) == 2
    assert "not in --data" in capsys.readouterr().err
    assert files["out"].read_bytes() == other.read_bytes()
    files["out"].unlink()
    assert _grade(files, ScriptedJudge(), "--limit", "1") == 0
    changed = files["dir"] / "changed.jsonl"
    changed.write_text(json.dumps({"prompt_id": "p1", "response": "different"}) + "\n")
    before = files["out"].read_bytes()
    assert _grade(files, ScriptedJudge(), responses=changed) == 2
    assert "differs from --responses" in capsys.readouterr().err
    assert _grade(files, ScriptedJudge(), "--judge-set", "model=another-judge") == 2
    assert "graded by another judge" in capsys.readouterr().err
    assert files["out"].read_bytes() == before


def test_bad_responses_file_names_the_line(files, capsys):
    bad = files["dir"] / "bad.jsonl"
    bad.write_text(json.dumps({"prompt_id": "p1", "response": "x"}) + "\n" + json.dumps({"prompt_id": "p2"}) + "\n")
    assert _grade(files, ScriptedJudge(), responses=bad) == 2
    assert f"{bad}:2: 'response' missing" in capsys.readouterr().err
    assert not files["out"].exists()


def test_judge_set_overrides_reach_the_config(files):
    assert grade_cmd.parse_overrides(["sampling.temperature=1.0", "model=x"]) == {
        "sampling.temperature": 1.0,
        "model": "x",
    }
    assert _grade(files, ScriptedJudge(), "--judge-set", "sampling.temperature=1.0", "--limit", "1") == 0
    assert _lines(files["out"])[0]["judge"]["sampling"]["temperature"] == 1.0


def test_positional_key_value_overrides_as_in_replicate(files, capsys):
    # One override style across the CLI: KEY=VALUE anywhere on the line (the --judge-set spelling still works).
    assert _grade(files, ScriptedJudge(), "sampling.temperature=0.7", "--limit", "1") == 0
    assert _lines(files["out"])[0]["judge"]["sampling"]["temperature"] == 0.7
    files["out"].unlink()
    files["out"].with_name(files["out"].name + ".manifest.json").unlink(missing_ok=True)
    assert _grade(files, ScriptedJudge(), "sampling.temprature=0") == 2
    err = capsys.readouterr().err
    assert "override sampling.temprature=0: unknown key; did you mean 'temperature'?" in err


def test_score_json_names_and_values(tmp_path, capsys):
    g = tmp_path / "g.jsonl"
    g.write_text("".join(json.dumps(r) + "\n" for r in three_examples()))
    assert cli.main(["score", "--format", "healthbench", str(g), "--json", "--bootstrap", "200", "--seed", "5"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["overall_score"] == pytest.approx(0.55 / 3) and m["score"] == m["overall_score"]
    assert m["overall_score:n_samples"] == 3 and m["axis:completeness"] == pytest.approx(0.5)
    assert m["theme:t2"] == 0.0 and m["cluster:c1"] == 1.0 and m["level:example:n_samples"] == 2
    assert m["n_examples"] == 3 and m["n_ungraded"] == 0 and m["seed"] == 5 and m["n_bootstrap"] == 200
    assert m["overall_score:bootstrap_std"] > 0


def test_score_table_puts_overall_first_then_axis(tmp_path, capsys):
    g = tmp_path / "g.jsonl"
    g.write_text("".join(json.dumps(r) + "\n" for r in three_examples()))
    assert cli.main(["score", str(g), "--bootstrap", "10"]) == 0
    rows = [
        ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:] if ln.strip() and not ln.startswith("examples")
    ]
    assert rows[0] == "overall_score" and rows[1].startswith("axis:") and rows[3].startswith("theme:")


def test_score_ungraded_fail_exits_3(tmp_path, capsys):
    recs = three_examples()
    recs[0]["grades"][1]["criteria_met"] = None
    g = tmp_path / "g.jsonl"
    g.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert cli.main(["score", str(g), "--ungraded", "fail"]) == 3
    assert "1 ungraded verdicts" in capsys.readouterr().err
