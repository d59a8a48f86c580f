"""Loading YAML into typed models with errors that name the file, line and key."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rubricrl.errors import Problems, UserError

M = TypeVar("M", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the 1-based line of every mapping key in ``__lines__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    lines = {}
    for key_node, _ in node.value:
        try:
            lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1
        except Exception:  # noqa: BLE001 - unhashable keys are reported by validation
            pass
    mapping["__lines__"] = lines
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file or raise a UserError saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise UserError("file not found", path=str(p))
    if p.is_dir():
        raise UserError("is a directory, expected a file", path=str(p))
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"not valid UTF-8 (byte {e.start}); re-save the file as UTF-8", path=str(p), line=line) from None
    if not text.strip():
        raise UserError("file is empty", path=str(p))
    return text


def load_yaml_with_lines(path: str | Path) -> Any:
    """Parse YAML; every mapping carries ``__line__`` and ``__lines__`` (key -> line)."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(e, "problem", None) or str(e)
        raise UserError(f"invalid YAML: {problem}", path=str(path), line=line) from None


def strip_lines(obj: Any) -> Any:
    """Remove the line bookkeeping added by ``load_yaml_with_lines``."""
    if isinstance(obj, dict):
        return {k: strip_lines(v) for k, v in obj.items() if k not in ("__line__", "__lines__")}
    if isinstance(obj, list):
        return [strip_lines(v) for v in obj]
    return obj


def line_of(obj: Any, loc: tuple[Any, ...]) -> int | None:
    """Best line number for a pydantic error location inside a line-annotated tree."""
    line = obj.get("__line__") if isinstance(obj, dict) else None
    cur = obj
    for part in loc:
        if isinstance(cur, dict):
            line = cur.get("__lines__", {}).get(part, line)
            if part not in cur:
                break
            cur = cur[part]
            if isinstance(cur, dict):
                line = cur.get("__line__", line)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            if isinstance(cur, dict):
                line = cur.get("__line__", line)
        else:
            break
    return line


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that holds the key at ``loc``."""
    cur: Any = model
    for part in loc[:-1]:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            return []
        ann = cur.model_fields[part].annotation
        cur = next((a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
    return list(cur.model_fields) if isinstance(cur, type) and issubclass(cur, BaseModel) else []


def format_validation_error(err: ValidationError, path: str | Path, tree: Any, prefix: tuple = (),
                            model: type[BaseModel] | None = None) -> list[str]:
    """One ``path:line: field: message`` string per pydantic error (unknown keys get a suggestion)."""
    out = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        line = line_of(tree, loc) if tree is not None else None
        where = ".".join(str(p) for p in loc if p != "__root__")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            known = _fields_at(model, tuple(e["loc"]))
            close = difflib.get_close_matches(str(e["loc"][-1]), known, n=2)
            msg = "unknown key" + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "")
            if known:
                msg += f" (allowed: {', '.join(known)})"
        text = f"{where}: {msg}" if where else msg
        out.append(f"{path}:{line}: {text}" if line else f"{path}: {text}")
    return out


def _apply_overrides(data: dict, overrides: dict[str, Any]) -> None:
    for dotted, value in overrides.items():
        cur = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value


def load_yaml_model(path: str | Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Load ``path`` as ``model``; raise ``Problems`` listing every invalid key with its line."""
    tree = load_yaml_with_lines(path)
    if not isinstance(tree, dict):
        raise UserError(f"expected a mapping at the top level, got {type(tree).__name__}", path=str(path), line=1)
    data = strip_lines(tree)
    if overrides:
        _apply_overrides(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problems(format_validation_error(e, path, tree, model=model)) from None
