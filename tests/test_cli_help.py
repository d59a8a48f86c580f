"""One help style across the `rubricrl` command: every subcommand and option explains itself, in plain text."""

from __future__ import annotations

import argparse
import subprocess
import sys

from rubricrl import cli


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


def test_every_subcommand_has_a_description_and_every_argument_a_help_line():
    problems = []
    for path, parser in _walk(cli.build_parser()):
        if path and not parser.description:
            problems.append(f"{' '.join(path)}: no description")
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not a.help:
                problems.append(f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}: no help")
            for text in (a.help or "", parser.description or ""):
                if "``" in text or ":func:" in text or ":class:" in text:
                    problems.append(f"{' '.join(path)}: RST markup in help: {text[:60]!r}")
            if a.option_strings and a.type is int and a.metavar != "N":
                problems.append(f"{' '.join(path)} {a.option_strings[0]}: integer metavar {a.metavar!r}, not N")
    assert not problems, "\n".join(sorted(set(problems)))


def test_rubricrl_eval_is_the_make_eval_runner():
    r = subprocess.run([sys.executable, "-m", "rubricrl.cli", "eval", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--suite" in r.stdout and "--base-url" in r.stdout and "--cache" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "eval", "--model", "smollm2-135m-instruct", "--suite", "nope"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "unknown suite" in r.stderr and "Traceback" not in r.stderr


def test_one_override_style_key_value_anywhere():
    parser = cli.build_parser()
    a = parser.parse_args(
        [
            "generate",
            "--data",
            "d.jsonl",
            "sampling.temperature=1.0",
            "--policy",
            "p",
            "--out",
            "o",
            "seed_hint=1",
            "--set",
            "model=x",
        ]
    )
    assert a.overrides == ["sampling.temperature=1.0", "seed_hint=1"] and a.set_overrides == ["model=x"]
    a = parser.parse_args(["grade", "--data", "d", "--judge", "j", "--out", "o", "sampling.top_p=0.9"])
    assert a.overrides == ["sampling.top_p=0.9"] and a.judge_set == []
    a = parser.parse_args(["replicate", "rubicon", "--stage", "data", "grpo.max_steps=2"])
    assert a.overrides == ["grpo.max_steps=2"]
