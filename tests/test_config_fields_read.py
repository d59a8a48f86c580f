"""Every field of the experiment config schema is read somewhere in the code.

A key that validates but that nothing reads is a silent no-op: a user sets it (or a paper-scale overlay does)
and nothing changes. The schema is :class:`rubricrl.config.schema.ExperimentConfig` with every model nested in
it, plus the section each replication registers (``replications/<paper>/`` ``PAPER.sections``).

A field counts as read when the code under ``common/`` or ``replications/`` has, outside the schema's own
validators, ``.<field>`` read from a value known as the key's container (``x.filter.stage2``; ``f = x.filter``
then ``f.stage2``; a parameter annotated ``FilterConfig``; ``r = rub(cfg)`` with ``def rub(...) -> RubiconConfig``)
or from a value not known as any config container (``cfg.timeout_s`` in ``from_config(cfg: Any)``), or the field's
name as a string in a read position (``getattr(x, "field")``, ``d["field"]``, ``d.get("field")``). A read from
another container does not count: ``r.stage2`` (the section's ``stage2``) is no read of ``rubicon.filter.stage2``.
Models whose fields are consumed as a whole (dumped and handed to another library) are listed in
``WHOLE_MODELS`` with their consumer.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
import typing
from pathlib import Path

from pydantic import BaseModel

from rubricrl.config.schema import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
CODE_ROOTS = [REPO / "common" / "rubricrl", REPO / "replications"]

# Dotted keys known to be unread, each with why and who decides. The list only shrinks: an entry whose key is
# read again fails test_known_unread_keys_are_still_unread (remove it then).
#
# rubicon.filter.stage2, the dead key issue 10 names, is read since 80752f2 (the filter_stage2 stage); run on the
# tree before it (0ed01af) this test reports exactly that key.
# The experiment config's copies of the cluster site file's container and paths (site.container,
# site.paths.models_dir, site.paths.scratch) were never read; they are gone from SiteConfig.
KNOWN_UNREAD: dict[str, str] = {}

# Models whose fields reach their consumer as a whole (model_dump / field-name mapping), so no attribute access
# names them one by one. Value: who consumes them.
WHOLE_MODELS: dict[str, str] = {
    "GRPOSettings": "train/trl_adapter.grpo_config: settings.model_dump() into trl.GRPOConfig, field by field name",
}


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``Model``, ``Model | None``, ``list[Model]``, ``dict[str, Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _keys(prefix: str, model: type[BaseModel], seen: frozenset[type] = frozenset()) -> dict[str, type[BaseModel]]:
    """Dotted key -> the model declaring it, for every field of ``model`` and the models nested in it."""
    out: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        if info.exclude is True:
            continue  # not a config key (ExperimentConfig.sections holds the registered sections)
        key = f"{prefix}.{name}" if prefix else name
        out[key] = model
        for sub in _models_in(info.annotation):
            if sub not in seen:
                out.update(_keys(key, sub, seen | {model}))
    return out


def _sections() -> dict[str, type[BaseModel]]:
    """Each replication's registered config sections (``PAPER.sections``)."""
    import replications

    out: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(replications.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        paper = getattr(importlib.import_module(f"replications.{info.name}"), "PAPER", None)
        out.update(getattr(paper, "sections", {}) or {})
    return out


def schema_keys() -> dict[str, type[BaseModel]]:
    keys = _keys("", ExperimentConfig)
    for name, model in _sections().items():
        keys[name] = model
        keys.update(_keys(name, model))
    return keys


_VALIDATORS = {"field_validator", "model_validator", "validator", "root_validator"}


def _is_validator(fn: ast.AST) -> bool:
    for dec in getattr(fn, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in _VALIDATORS:
            return True
    return False


def _last_name(node: ast.AST | None) -> str | None:
    """``a.b.c`` -> ``c``; ``x`` -> ``x``; ``cfg.section("s")`` / ``cfg.sections["s"]`` -> ``s``; else None."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "section":
        arg = node.args[0] if node.args else None
        return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "*section*"
    if isinstance(node, ast.Subscript):
        return _last_name(node.slice) if isinstance(node.slice, ast.Constant) else _last_name(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _annotation_names(node: ast.AST | None) -> set[str]:
    """Class names in an annotation (``FilterConfig``, ``FilterConfig | None``, ``"FilterConfig"``)."""
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _annotation_names(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


class _Reads(ast.NodeVisitor):
    """What the code reads: ``(owner, field)`` pairs and string keys.

    ``owner`` is what the value read from is known as: the attribute or variable it came from (``x.filter.stage2``
    and ``f = x.filter; f.stage2`` both give ``("filter", "stage2")``), a class named in a parameter's annotation
    (``def f(c: FilterConfig): c.stage2`` gives ``("FilterConfig", "stage2")``), or the class whose method
    reads ``self.<field>``.
    """

    def __init__(self, returns: dict[str, set[str]] | None = None) -> None:
        self.returns = returns or {}  # function name -> class names in its return annotation
        self.reads: dict[str, set[frozenset[str]]] = {}  # field -> the owner sets it is read from
        self.strings: set[str] = set()
        self._scopes: list[dict[str, set[str]]] = [{}]
        self._classes: list[str] = []

    def _bind(self, name: str, owners: set[str]) -> None:
        self._scopes[-1].setdefault(name, set()).update(o for o in owners if o)

    def _owners(self, node: ast.AST) -> set[str]:
        if isinstance(node, ast.Name):
            owners = {node.id}
            for scope in self._scopes:
                owners |= scope.get(node.id, set())
            if node.id == "self" and self._classes:
                owners.add(self._classes[-1])
            return owners
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in self.returns:
                return set(self.returns[fname])
        last = _last_name(node)
        return {last} if last else set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.append(node.name)
        self.generic_visit(node)
        self._classes.pop()

    def visit_FunctionDef(self, node: ast.AST) -> None:
        if _is_validator(node):
            return
        self._scopes.append({})
        args = node.args
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                self._bind(a.arg, _annotation_names(a.annotation))
        self.generic_visit(node)
        self._scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _assign(self, targets: list[ast.AST], value: ast.AST | None) -> None:
        owners = self._owners(value) if value is not None else set()
        for t in targets:
            if isinstance(t, ast.Name):
                self._bind(t.id, owners)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assign(node.targets, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._bind(node.target.id, _annotation_names(node.annotation))
        self._assign([node.target], node.value)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._assign([node.target], node.value)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._assign([node.target], node.iter)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._assign([node.target], node.iter)
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._assign([node.optional_vars], node.context_expr)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.setdefault(node.attr, set()).add(frozenset(self._owners(node.value)))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            self.strings.add(node.slice.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in {"getattr", "get", "pop", "hasattr"}:
            for arg in node.args[:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    self.strings.add(arg.value)
        self.generic_visit(node)


def code_reads() -> _Reads:
    """Everything the code under ``common/`` and ``replications/`` reads."""
    trees = [
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for root in CODE_ROOTS
        for path in sorted(root.rglob("*.py"))
    ]
    returns: dict[str, set[str]] = {}  # ``r = rub(cfg)`` with ``def rub(...) -> RubiconConfig`` knows what r is
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
                returns.setdefault(node.name, set()).update(_annotation_names(node.returns))
    reads = _Reads(returns)
    for tree in trees:
        reads._scopes = [{}]
        reads.visit(tree)
    return reads


def _is_read(key: str, model: type[BaseModel], reads: _Reads, specific: set[str], sections: set[str]) -> bool:
    """Whether ``key`` is read: by its string, or as ``.<field>`` on a value that is this key's container.

    A read of ``.<field>`` counts when what it is read from is known as this key's container (its parent key's
    name, its model's class, a registered section for a section's direct fields), or is not known as any
    config container at all (``cfg.timeout_s`` in a function taking ``cfg: Any``). It does not count when the
    value is known as another container: ``sec.stage2`` (a section's ``stage2``) is not a read of
    ``rubicon.filter.stage2``.
    """
    parent, _, field = key.rpartition(".")
    if field in reads.strings:
        return True
    mine = {model.__name__, parent.rpartition(".")[2]} if parent else {model.__name__}
    if parent in sections:
        mine |= {"*section*", parent}
    for owners in reads.reads.get(field, ()):
        if owners & mine or not owners & specific:
            return True
    return False


def unread_keys() -> list[str]:
    reads = code_reads()
    sections = set(_sections())
    keys = schema_keys()
    # names that identify a config container: every key holding a model, every model class, the sections
    specific = {m.__name__ for m in keys.values()} | sections | {"*section*"}
    specific |= {k.rpartition(".")[2] for k in keys if any(o.startswith(k + ".") for o in keys)}
    out = []
    for key, model in keys.items():
        if key in sections or model.__name__ in WHOLE_MODELS:
            continue  # a registered section is handed to its pipeline whole; its fields are checked one by one
        if not _is_read(key, model, reads, specific, sections):
            out.append(key)
    return sorted(out)


def test_schema_is_walked():
    keys = schema_keys()
    assert "run.seed" in keys and "judge.model" in keys
    assert any(k.startswith("rubicon.") for k in keys) and any(k.startswith("self_rewarding.") for k in keys)


def test_every_config_field_is_read():
    unread = [k for k in unread_keys() if k not in KNOWN_UNREAD]
    assert not unread, (
        "config keys that nothing reads (a user setting them changes nothing): read each where it should act, "
        "or remove it from the schema:\n  " + "\n  ".join(unread)
    )


def test_known_unread_keys_are_still_unread():
    now = set(unread_keys())
    stale = [k for k in KNOWN_UNREAD if k not in now]
    assert not stale, f"these keys are read now: remove them from KNOWN_UNREAD: {stale}"


def test_known_entries_name_the_schema():
    keys = schema_keys()
    assert not [k for k in KNOWN_UNREAD if k not in keys]
    models = {m.__name__ for m in keys.values()}
    assert not [m for m in WHOLE_MODELS if m not in models]


def test_an_unread_key_is_found(tmp_path, monkeypatch):
    """The check itself: a section field read only as another container's field of the same name is unread."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "stages.py").write_text(
        "def rub(cfg) -> RubiconConfig:\n"
        "    return cfg.section('rubicon')\n"
        "def train(cfg):\n"
        "    r = rub(cfg)\n"
        "    return r.stage2.judge_llm, r.filter.enabled\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "CODE_ROOTS", [code])
    unread = unread_keys()
    assert "rubicon.filter.stage2" in unread  # r.stage2 is the section's stage2, not the filter's
    assert "rubicon.filter.enabled" not in unread and "rubicon.stage2.judge_llm" not in unread
