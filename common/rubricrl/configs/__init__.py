"""Shipped configuration files (judges, policies). ``config_path(kind, name)`` resolves them."""

from __future__ import annotations

from pathlib import Path

from rubricrl.errors import UserError

ROOT = Path(__file__).resolve().parent


def config_path(kind: str, name_or_path: str) -> Path:
    """A YAML path: an existing file as given, else ``configs/<kind>/<name>.yaml`` shipped with rubricrl."""
    p = Path(name_or_path)
    if p.exists():
        return p
    shipped = ROOT / kind / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(f.stem for f in (ROOT / kind).glob("*.yaml")))
    raise UserError(f"no such {kind} config {name_or_path!r}: not a file, and not a shipped one ({known})")
