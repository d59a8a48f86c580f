"""Discovery of the replications: every package under ``replications/`` whose ``__init__.py`` exposes ``PAPER``.

A paper folder ``replications/<name>/`` is found by convention, never by a list of names: the library imports
each subpackage of the ``replications`` package and keeps those that define ``PAPER``, a :class:`Paper`. Every
registry that used to name the papers (config sections, pipelines, NeMo RL recipes, cluster plans, lm-eval
suites, paper tables, report titles, CLI help) asks this module instead, so adding a paper touches only its
folder (and its published tables in ``eval/paper_tables/``).

Usage::

    from rubricrl.papers import all_papers, get_paper
    [p.name for p in all_papers()]              # every replication in the checkout
    stages = get_paper(name).stages(cfg)        # the pipeline of one

This module sits under ``rubricrl/`` itself, below the packages that ask it (``config``, ``cluster``, ``report``,
``pipeline``, ``commands``): it imports nothing else from the library, so asking it never closes an import cycle.

A paper package should import only what its ``PAPER`` needs at import time (its config section and stage list);
heavy dependencies (torch, TRL, NeMo RL, vLLM) stay inside the stage functions.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError

log = logging.getLogger(__name__)

PACKAGE = "replications"  # the package whose subpackages are the papers


@dataclass(frozen=True)
class Paper:
    """What the library needs to know about one replication.

    Attributes:
        name: the folder name ``replications/<name>/``, the ``rubricrl replicate <name>`` argument, the config's
            ``paper`` value and the ``paper`` of its tables in ``eval/paper_tables/``.
        title: the paper's short title, as report headings show it.
        arxiv: its arXiv id (``""`` when it has none).
        sections: config section name -> its pydantic model (the paper's ``config.py`` registers it with
            :func:`rubricrl.config.register_section`; composing the paper's config registers it again).
        stages: ``stages(cfg) -> list[Stage]``: the pipeline, in order (:mod:`rubricrl.train.stages`).
        training_stages: the names of its training stages (what ``monitor.stages`` may name).
        recipes: its NeMo RL cluster recipes (:class:`rubricrl.cluster.nemo_rl.Recipe`), each with ``paper`` = name.
        eval_suite: lm-eval task groups of its ``rubricrl eval --suite <name>`` (YAMLs in
            ``eval/tasks/paper_suites/``; where none exists, the tables' column mapping gives the tasks).
        expected: the expected-metrics file, relative to the paper folder.
        folder: the paper folder (filled in by discovery from the package's location).
    """

    name: str
    title: str
    stages: Callable[[Any], Sequence[Any]]
    arxiv: str = ""
    sections: Mapping[str, type] = field(default_factory=dict)
    training_stages: tuple[str, ...] = ()
    recipes: tuple[Any, ...] = ()
    eval_suite: tuple[str, ...] = ()
    expected: str = "expected.yaml"
    folder: Path | None = None

    @property
    def label(self) -> str:
        """``Title (arXiv id)``: how a report names the paper."""
        return f"{self.title} (arXiv {self.arxiv})" if self.arxiv else self.title

    @property
    def expected_path(self) -> Path | None:
        """The expected-metrics file, or None when the folder is unknown."""
        return self.folder / self.expected if self.folder is not None else None


_CACHE: dict[str, Paper] | None = None


def _package() -> Any:
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError as e:
        if e.name != PACKAGE:
            raise
        raise UserError(
            f"the {PACKAGE!r} package (the papers' pipelines) is not importable: install the checkout with "
            "`python -m pip install --no-deps -e .` from the repository root, or run from it"
        ) from None


def _discover() -> dict[str, Paper]:
    pkg = _package()
    found: dict[str, Paper] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{PACKAGE}.{info.name}")
        paper = getattr(mod, "PAPER", None)
        if paper is None:
            log.debug("%s.%s has no PAPER; not a replication", PACKAGE, info.name)
            continue
        if not isinstance(paper, Paper):
            raise UserError(
                f"{PACKAGE}.{info.name}.PAPER is a {type(paper).__name__}, not a rubricrl.papers.Paper",
                path=str(getattr(mod, "__file__", info.name)),
            )
        if paper.name != info.name:
            raise UserError(
                f"PAPER.name is {paper.name!r} but the folder is {info.name!r}: they must be the same "
                "(the folder name is the paper's name everywhere)",
                path=str(getattr(mod, "__file__", info.name)),
            )
        bad = [r.name for r in paper.recipes if getattr(r, "paper", paper.name) != paper.name]
        if bad:
            raise UserError(f"{info.name}: recipes {bad} name another paper; a paper's recipes carry its name")
        folder = Path(mod.__file__).resolve().parent if getattr(mod, "__file__", None) else None
        found[paper.name] = dataclasses.replace(paper, folder=folder)
    return found


def all_papers() -> list[Paper]:
    """Every replication, in name order (discovered once per process)."""
    global _CACHE
    if _CACHE is None:
        _CACHE = _discover()
    return list(_CACHE.values())


def paper_names() -> list[str]:
    """The replications' names, in order."""
    return [p.name for p in all_papers()]


def find_paper(name: str) -> Paper | None:
    """The replication called ``name``, or None."""
    return next((p for p in all_papers() if p.name == name), None)


def get_paper(name: str) -> Paper:
    """The replication called ``name``.

    Raises:
        UserError: no such replication (the message lists the known ones).
    """
    paper = find_paper(name)
    if paper is None:
        raise UserError(f"no replication {name!r}; known: {', '.join(paper_names()) or 'none'}")
    return paper


def load_stages(name: str, cfg: Any) -> list[Any]:
    """The stage list of replication ``name`` for the composed config ``cfg``."""
    return list(get_paper(name).stages(cfg))


def all_recipes() -> dict[str, Any]:
    """Every paper's NeMo RL recipes, by recipe name.

    Raises:
        UserError: two recipes share a name.
    """
    out: dict[str, Any] = {}
    for p in all_papers():
        for r in p.recipes:
            if r.name in out:
                raise UserError(f"NeMo RL recipe {r.name!r} is defined twice ({out[r.name].paper} and {p.name})")
            out[r.name] = r
    return out


def help_list() -> str:
    """``a, b`` of the replications' folder names, for CLI help lines.

    Cheap: it lists the subpackages of ``replications`` without importing them (building the CLI's parser should
    not import every pipeline); :func:`get_paper` is what checks a name.
    """
    try:
        pkg = _package()
    except UserError:
        return f"a folder under {PACKAGE}/"
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg and not m.name.startswith("_"))
    return ", ".join(names) or "none found"
