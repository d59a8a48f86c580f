"""Discovery of the replications (rubricrl.papers): a paper is a folder under replications/ with a PAPER, found by
convention; adding one needs only its folder (here a temporary one) for the CLI, the config sections and the
recipes to know it."""

from __future__ import annotations

import textwrap

import pytest

import replications
from rubricrl import papers
from rubricrl.config import compose_experiment
from rubricrl.errors import UserError


@pytest.fixture
def fresh(monkeypatch):
    """Discovery forgets what it found, before and after the test."""
    monkeypatch.setattr(papers, "_CACHE", None)
    yield
    papers._CACHE = None


def test_every_replication_folder_is_found_with_its_stages_sections_and_recipes():
    found = {p.name: p for p in papers.all_papers()}
    assert {"rubicon", "self_rewarding"} <= set(found)
    for name, p in found.items():
        assert p.folder is not None and p.folder.name == name and (p.folder / "configs" / f"{name}.yaml").is_file()
        assert p.expected_path is not None and p.expected_path.is_file()
        cfg = compose_experiment(name, ["scale=tiny"])
        assert set(p.sections) <= set(cfg.sections)
        stages = papers.load_stages(name, cfg)
        assert [s.name for s in stages] and set(p.training_stages) <= {s.name for s in stages}
        assert all(r.paper == name for r in p.recipes) and p.eval_suite
    assert set(papers.all_recipes()) == {r.name for p in found.values() for r in p.recipes}


def test_an_unknown_replication_is_a_user_error_naming_the_known_ones():
    with pytest.raises(UserError, match="no replication 'nope'; known: .*rubicon"):
        papers.get_paper("nope")


def _add_paper(tmp_path, monkeypatch, folder: str, name: str) -> None:
    pkg = tmp_path / "extra" / folder
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(f"""
        from rubricrl.papers import Paper

        def stages(cfg):
            return []

        PAPER = Paper(name={name!r}, title="Demo", arxiv="0000.00000", stages=stages)
        """),
        encoding="utf-8",
    )
    monkeypatch.setattr(replications, "__path__", [*replications.__path__, str(tmp_path / "extra")])


def test_a_new_folder_with_a_paper_is_discovered_without_touching_the_library(tmp_path, monkeypatch, fresh):
    _add_paper(tmp_path, monkeypatch, "demo_paper", "demo_paper")
    p = papers.get_paper("demo_paper")
    assert p.label == "Demo (arXiv 0000.00000)" and p.folder == tmp_path / "extra" / "demo_paper"
    assert "demo_paper" in papers.help_list() and "demo_paper" in papers.paper_names()


def test_a_paper_named_unlike_its_folder_is_refused(tmp_path, monkeypatch, fresh):
    _add_paper(tmp_path, monkeypatch, "demo_folder", "other_name")
    with pytest.raises(UserError, match="PAPER.name is 'other_name' but the folder is 'demo_folder'"):
        papers.all_papers()
