"""Issue 13 items 4 and 7: duplicate YAML keys are errors with path:line; a command-line override's error
names the option; an unreadable folder is reported as unreadable; programmatic criteria with points."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rubricrl.cli import main
from rubricrl.config_io import load_yaml_with_lines
from rubricrl.errors import Problems, UserError
from rubricrl.judge.build import run_sync
from rubricrl.judge.config import load_judge_config
from rubricrl.judge.interfaces import GradingRequest
from rubricrl.judge.programmatic import ProgrammaticJudge
from rubricrl.reward import points_ratio
from rubricrl.rubrics.loader import find_rubric_files, load_rubrics

BANK = """rubrics:
  - id: r1
{extra}    criteria:
      - id: c1
        text: "Says hello."
        weight: 1.0
{crit_extra}"""


@pytest.mark.parametrize(
    "extra, crit_extra, line, key",
    [
        ("    id: r2\n", "", 3, "id"),
        ("", "        weight: 5.0\n", 7, "weight"),
    ],
)
def test_validate_rejects_duplicate_keys(tmp_path, capsys, extra, crit_extra, line, key):
    p = tmp_path / "bank.yaml"
    p.write_text(BANK.format(extra=extra, crit_extra=crit_extra))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:{line}: invalid YAML: duplicate key {key!r} (first on line" in err
    assert "ok" not in err.split("\n")[-2:]


def test_duplicate_keys_in_a_flow_mapping_and_in_a_judge_config(tmp_path):
    p = tmp_path / "flow.yaml"
    p.write_text("a: {x: 1, x: 2}\n")
    with pytest.raises(UserError, match="duplicate key 'x'") as e:
        load_yaml_with_lines(p)
    assert e.value.line == 1
    j = tmp_path / "judge.yaml"
    j.write_text("backend: replay\nmodel: a\nmodel: b\n")
    with pytest.raises(UserError, match=r"duplicate key 'model' \(first on line 2\)") as e:
        load_judge_config(j)
    assert e.value.render().startswith(f"{j}:3:")


def test_merge_keys_may_still_be_overridden(tmp_path):
    p = tmp_path / "merge.yaml"
    p.write_text("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  x: 3\n")
    tree = load_yaml_with_lines(p)
    assert tree["derived"]["x"] == 3 and tree["derived"]["y"] == 2


def test_override_error_names_the_option_not_a_line_of_the_file(tmp_path):
    j = tmp_path / "judge.yaml"
    j.write_text("backend: replay\nmodel: a\nsampling:\n  temperature: 0.5\n")
    with pytest.raises(Problems) as e:
        load_judge_config(j, {"sampling.temprature": 0}, overrides_flag="--judge-set")
    [msg] = e.value.problems
    assert msg.startswith("--judge-set sampling.temprature=0: unknown key; did you mean 'temperature'?")
    assert f"{j}:" not in msg


def test_unreadable_folder_is_reported_as_such(tmp_path, monkeypatch):
    d = tmp_path / "bank"
    d.mkdir()
    (d / "r.yaml").write_text(BANK.format(extra="", crit_extra=""))
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == d:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems = find_rubric_files([d])
    assert files == [] and problems == [f"{d}: cannot read this folder (Permission denied); check its permissions"]


def test_programmatic_criterion_with_points_scores_like_a_healthbench_item(tmp_path):
    p = tmp_path / "prog.yaml"
    p.write_text("""rubrics:
  - id: short
    criteria:
      - {id: brief, text: "At most 5 words.", kind: programmatic, verifier: word_count, args: {max_words: 5}, points: 4}
      - {id: says_x, text: "Says x.", points: 2}
      - {id: long, text: "Over 20 words (bad).", kind: programmatic, verifier: word_count,
         args: {min_words: 20}, points: -3}
""")
    [rubric] = load_rubrics(p)
    prog = [c for c in rubric.criteria if c.kind == "programmatic"]
    assert [c.points for c in prog] == [4, -3] and prog[1].negative
    verdicts = run_sync(
        ProgrammaticJudge().grade(
            GradingRequest(conversation=[], response="one two three", criteria=prog, rubric_id="short")
        )
    )
    assert [v.met for v in verdicts] == [True, False]
    score = points_ratio(prog, verdicts, {})
    assert score.reward == pytest.approx(4 / 4)
