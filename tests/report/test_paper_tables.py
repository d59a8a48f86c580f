"""The papers' tables as data match the published numbers, cell by cell.

The markdown tables are parsed here (not copied into the test), so a typo in a YAML file, a dropped row or
a renamed model fails. ``source_tables.md`` ships with the repo; REFERENCE.md is checked when present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rubricrl.errors import UserError
from rubricrl.report.paper_tables import PAPERS, load_paper_tables, load_table

REPO = Path(__file__).resolve().parents[2]
TABLES = REPO / "eval" / "paper_tables"
SOURCE = TABLES / "source_tables.md"
# The project's shared facts sit beside the checkout (CI clones main with shared/ next to it).
REFERENCE = Path(os.environ.get("RUBRICRL_REFERENCE_MD", REPO.parent / "shared" / "REFERENCE.md"))
# Markdown table order in both files -> YAML table id; header renames (the README's "Score" column).
ORDER = ["rubicon_writing_if", "rubicon_reasoning", "rubicon_general", "self_rewarding_healthbench_hard"]
RENAME = {"Score": "HealthBench Hard"}


def parse_markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every pipe table in ``text`` as (header cells, body rows); separator lines dropped."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            header, body = block[0], [r for r in block[1:] if not set("".join(r)) <= set("-: ")]
            tables.append((header, body))
            block = []
    return tables


def _published(path: Path) -> list[tuple[list[str], list[list[str]]]]:
    tables = parse_markdown_tables(path.read_text(encoding="utf-8"))
    assert len(tables) == len(ORDER), f"{path}: expected {len(ORDER)} result tables, found {len(tables)}"
    return tables


def test_every_yaml_table_loads_and_each_paper_has_tables():
    by_paper = {p: load_paper_tables(p, TABLES) for p in PAPERS}
    assert sorted(t.id for ts in by_paper.values() for t in ts) == sorted(ORDER)
    assert [t.id for t in by_paper["rubicon"]] == ORDER[:3]  # display order = file order


@pytest.mark.parametrize("index,table_id", list(enumerate(ORDER)))
def test_yaml_numbers_equal_the_published_table(index, table_id):
    header, body = _published(SOURCE)[index]
    table = next(t for t in load_paper_tables(None, TABLES) if t.id == table_id)
    columns = [RENAME.get(h, h) for h in header[1:]]
    assert table.column_keys == columns
    assert [r.model for r in table.rows] == [cells[0] for cells in body]
    for row, cells in zip(table.rows, body):
        assert set(row.values) == set(columns), f"{row.model}: every published cell is present"
        for key, cell in zip(columns, cells[1:]):
            assert row.values[key] == float(cell), f"{table_id} / {row.model} / {key}: {row.values[key]} != {cell}"
            # Displayed the way the source prints it, up to trailing zeros the source dropped (0.32 -> 0.320).
            assert float(table.fmt(row.values[key])) == float(cell) and table.fmt(row.values[key]).startswith(cell)


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} not on this machine (set RUBRICRL_REFERENCE_MD)")
def test_source_copy_is_verbatim_reference():
    assert _published(SOURCE) == _published(REFERENCE)


def test_averages_are_checked_where_the_paper_printed_a_mean():
    for table in load_paper_tables(None, TABLES):
        if table.average is None:
            continue
        for row in table.rows:
            mean = sum(row.values[k] for k in table.average.of) / len(table.average.of)
            assert abs(mean - row.values[table.average.column]) <= 0.005 + 1e-9, (table.id, row.model)


def test_general_table_avg_is_not_the_column_mean_so_no_average_rule():
    general = next(t for t in load_paper_tables("rubicon", TABLES) if t.id == "rubicon_general")
    assert general.average is None
    row = general.row("Qwen3-30B-A3B")
    mean = sum(v for k, v in row.values.items() if k != "Avg") / 6
    assert abs(mean - row.values["Avg"]) > 1  # 76.12 vs 78.16: why we never compute it


def test_every_column_explains_itself_and_maps_or_says_why_not():
    for table in load_paper_tables(None, TABLES):
        assert table.source.get("arxiv") and table.source.get("where") and table.grader and table.scale
        for col in table.columns:
            assert col.name and col.description
            if col.key != "Avg" and not col.ours:
                assert col.metric_note, f"{table.id}/{col.key}: unmapped columns say why"
            for ref in col.ours:
                assert "," in ref.metric, "metrics use lm-eval's 'metric,filter' keys"


def test_healthbench_hard_table_names_gpt41_as_grader():
    (table,) = load_paper_tables("self_rewarding", TABLES)
    assert "gpt-4.1" in table.grader.lower() and table.grader_match == "gpt-4.1"


def test_unknown_paper_and_bad_file_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown paper 'nope'"):
        load_paper_tables("nope", TABLES)
    bad = tmp_path / "t.yaml"
    bad.write_text("id: x\npaper: rubicon\ncolumns: [\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_table(bad)
    assert str(bad) in e.value.render() and e.value.line
    bad.write_text((TABLES / "rubicon_2_reasoning.yaml").read_text().replace("AIME24: 77.50", "AIME42: 77.50"))
    with pytest.raises(UserError, match="unknown columns"):
        load_table(bad)
