"""The shared library names no paper: no identifier, import or string literal under ``common/rubricrl`` says
``rubicon`` or ``self_reward*`` (docstrings and comments may cite a paper). Papers are found by discovery
(``rubricrl.papers``), so adding one touches only ``replications/<paper>/`` and ``eval/paper_tables/``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "common" / "rubricrl"
PAPER_NAME = re.compile(r"rubicon|self_reward", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    out.add(id(body[0].value))
        # an attribute docstring: a bare string right after an assignment
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list):
                continue
            for prev, stmt in zip(stmts, stmts[1:]):
                if (
                    isinstance(prev, (ast.Assign, ast.AnnAssign))
                    and isinstance(stmt, ast.Expr)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                ):
                    out.add(id(stmt.value))
    return out


def _names(node: ast.AST) -> list[str]:
    """The identifiers a node introduces or uses."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names)
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    return []


def paper_mentions(path: Path) -> list[str]:
    """``file:line: what`` for every identifier or non-docstring string constant of ``path`` that names a paper."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        for name in _names(node):
            if PAPER_NAME.search(name):
                found.append(f"{path}:{line}: identifier {name!r}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if PAPER_NAME.search(node.value):
                found.append(f"{path}:{line}: string {node.value[:80]!r}")
    return found


def test_the_library_names_no_paper():
    files = sorted(LIBRARY.rglob("*.py"))
    assert files, f"no library modules under {LIBRARY}"
    found = [m for f in files for m in paper_mentions(f)]
    assert not found, "the shared library names a paper (ask rubricrl.papers instead):\n" + "\n".join(found)


def test_the_check_sees_identifiers_imports_and_literals_but_not_docstrings(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text(
        '"""Rubicon is cited here."""\n'
        "import replications.rubicon as r\n"
        "from x import self_reward_eval\n"
        "def f(rubicon_cfg):\n"
        '    """As in Self-rewarding RL."""\n'
        '    return {"self_rewarding": 1}  # Rubicon: a comment\n'
        "class RubiconThing: ...\n",
        encoding="utf-8",
    )
    found = "\n".join(paper_mentions(mod))
    assert "m.py:2: identifier 'replications.rubicon'" in found and "m.py:3: identifier 'self_reward_eval'" in found
    assert "identifier 'rubicon_cfg'" in found and "string 'self_rewarding'" in found
    assert "identifier 'RubiconThing'" in found
    assert "cited here" not in found and "As in" not in found and ":1:" not in found and ":5:" not in found
