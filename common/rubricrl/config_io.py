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


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (YAML says keys are unique; PyYAML would keep the last)."""

    def __init__(self, key: Any, line: int, first_line: int):
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__(f"duplicate key {key!r} (first on line {first_line}); remove one of them")


def _check_unique_keys(loader: _LineLoader, node: yaml.MappingNode) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges; the keys it brings may be overridden
            continue
        try:
            key = loader.construct_object(key_node)
            hash(key)
        except Exception:  # noqa: BLE001 - unhashable keys are reported by validation
            continue
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKeyError(key, line, seen[key])
        seen[key] = line


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    _check_unique_keys(loader, node)
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
        raise UserError(
            f"not valid UTF-8 (byte {e.start}); re-save the file as UTF-8", path=str(p), line=line
        ) from None
    if not text.strip():
        raise UserError("file is empty", path=str(p))
    return text


def load_yaml_with_lines(path: str | Path) -> Any:
    """Parse YAML; every mapping carries ``__line__`` and ``__lines__`` (key -> line)."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except DuplicateKeyError as e:
        raise UserError(f"invalid YAML: {e}", path=str(path), line=e.line) from None
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


def _override_at(loc: tuple[Any, ...], overrides: dict[str, Any] | None) -> str | None:
    """The command-line override (dotted key) that set the value at ``loc``, if one did."""
    dotted = ".".join(str(p) for p in loc)
    for key in overrides or {}:
        if dotted == key or dotted.startswith(key + "."):
            return key
    return None


def format_validation_error(
    err: ValidationError,
    path: str | Path,
    tree: Any,
    prefix: tuple = (),
    model: type[BaseModel] | None = None,
    overrides: dict[str, Any] | None = None,
    overrides_flag: str = "override",
) -> list[str]:
    """One ``path:line: field: message`` string per pydantic error (unknown keys get a suggestion).

    An error in a value set by a command-line override names the option (``--set key=value: ...``), not a
    line of the file.
    """
    out = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        line = line_of(tree, loc) if tree is not None else None
        where = ".".join(str(p) for p in loc if p != "__root__")
        from_cli = _override_at(tuple(e["loc"]), overrides)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            known = _fields_at(model, tuple(e["loc"]))
            close = difflib.get_close_matches(str(e["loc"][-1]), known, n=2)
            msg = "unknown key" + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "")
            if known:
                msg += f" (allowed: {', '.join(known)})"
        text = f"{where}: {msg}" if where else msg
        if from_cli is not None:
            shown = yaml.safe_dump(overrides[from_cli], default_flow_style=True).strip().removesuffix("...").strip()
            out.append(f"{overrides_flag} {from_cli}={shown}: {msg} (in the config {path})")
        else:
            out.append(f"{path}:{line}: {text}" if line else f"{path}: {text}")
    return out


def _apply_overrides(data: dict, overrides: dict[str, Any]) -> None:
    for dotted, value in overrides.items():
        cur = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value


def load_yaml_model(
    path: str | Path, model: type[M], overrides: dict[str, Any] | None = None, overrides_flag: str = "override"
) -> M:
    """Load ``path`` as ``model``; raise ``Problems`` listing every invalid key with its line.

    ``overrides`` (dotted key -> value) are applied first; an error in one of them names
    ``overrides_flag`` (the command-line option) and the override instead of a line of the file.
    """
    tree = load_yaml_with_lines(path)
    if not isinstance(tree, dict):
        raise UserError(f"expected a mapping at the top level, got {type(tree).__name__}", path=str(path), line=1)
    data = strip_lines(tree)
    if overrides:
        _apply_overrides(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise Problems(
            format_validation_error(e, path, tree, model=model, overrides=overrides, overrides_flag=overrides_flag)
        ) from None
