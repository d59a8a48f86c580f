"""Locating data files: files shipped inside installed wheels, and the download cache."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from rubricrl.errors import UserError

DATA_DIR_ENV = "RUBRICRL_DATA_DIR"


def installed_data_file(package: str, relpath: str) -> Path:
    """Path of a data file shipped inside an installed package, without importing the package.

    Args:
        package: top-level import name of the installed distribution (e.g. ``eval_framework``).
        relpath: path of the file relative to the package directory.

    Returns:
        The absolute path of the file.

    Raises:
        UserError: the package is not installed or the file is not in it ("run make setup").
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"package {package!r} is not installed, so its data file {relpath} is missing; run `make setup`"
        )
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relpath
        if candidate.is_file():
            return candidate
    raise UserError(f"{relpath} not found in the installed package {package!r} (wrong version?); run `make setup`")


def _repo_root() -> Path | None:
    """The source checkout this package is installed from (editable install), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and 'name = "rubricrl"' in pyproject.read_text(encoding="utf-8", errors="replace"):
            return parent
    return None


def data_dir() -> Path:
    """Download cache: ``$RUBRICRL_DATA_DIR``, else ``<repo>/.cache/data``, else ``~/.cache/rubricrl/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    root = _repo_root()
    if root is not None:
        return root / ".cache" / "data"
    return Path.home() / ".cache" / "rubricrl" / "data"
