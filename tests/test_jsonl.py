"""The one JSONL module: records holding U+2028 survive a write and a read (HealthBench-500 has them), a torn
last line from a killed writer is skipped, any other bad line is an error, and no other module in the library or
the replications reads JSONL by ``splitlines()`` (which breaks records at U+2028)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rubricrl.errors import Problems
from rubricrl.jsonl import append_jsonl, read_jsonl, write_jsonl_atomic

REPO = Path(__file__).resolve().parents[1]
TRICKY = {"text": "line one\u2028line two\u2029para\x85next", "n": 1}


def test_u2028_round_trips_through_atomic_write_and_append(tmp_path):
    p = tmp_path / "rows.jsonl"
    write_jsonl_atomic(p, [TRICKY])
    append_jsonl(p, [{"n": 2}])
    assert read_jsonl(p) == [TRICKY, {"n": 2}]
    assert "\u2028" in p.read_text(encoding="utf-8")  # written unescaped, as the HealthBench copy is


def test_a_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path):
    p = tmp_path / "log.jsonl"
    append_jsonl(p, [{"step": 1}])
    with p.open("a", encoding="utf-8") as f:
        f.write('{"step": 2, "rew')  # the writer was killed here
    assert read_jsonl(p) == [{"step": 1}]
    p.write_text('{"step": 1}\n{"step": \n{"step": 3}\n', encoding="utf-8")
    with pytest.raises(Problems, match=r"log.jsonl:2: invalid JSON"):
        read_jsonl(p)
    assert read_jsonl(tmp_path / "absent.jsonl") == []


def _splitlines_json_reads(tree: ast.AST) -> list[int]:
    """Lines where json.loads runs over the pieces of a ``.splitlines()`` (a loop or comprehension)."""

    def is_splitlines(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "splitlines"

    def loads_in(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "loads"
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "json"
            for n in ast.walk(node)
        )

    bad = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension)) and is_splitlines(node.iter):
            body = node if isinstance(node, ast.For) else None
            if body is not None and loads_in(ast.Module(body=node.body, type_ignores=[])):
                bad.append(node.lineno)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)):
            if any(is_splitlines(g.iter) for g in node.generators) and loads_in(node):
                bad.append(node.lineno)
    return sorted(bad)


def test_no_module_reads_jsonl_by_splitlines():
    offenders = []
    for root in ("common/rubricrl", "replications", "eval/tasks"):
        for f in sorted((REPO / root).rglob("*.py")):
            if f.name == "jsonl.py":
                continue
            lines = _splitlines_json_reads(ast.parse(f.read_text(encoding="utf-8")))
            offenders += [f"{f.relative_to(REPO)}:{n}" for n in lines]
    assert not offenders, "read JSONL with rubricrl.jsonl (read_jsonl / iter_jsonl), not splitlines():\n" + "\n".join(
        offenders
    )


def test_the_check_finds_the_pattern_it_forbids():
    src = (
        "import json\nrows = [json.loads(x) for x in text.splitlines()]\nfor l in t.splitlines():\n    json.loads(l)\n"
    )
    assert _splitlines_json_reads(ast.parse(src)) == [2, 3]
