"""WritingBench, creative-writing and IFScale metric functions against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from rubricrl.errors import UserError
from rubricrl.evaluation import ifscale, writing


def test_writingbench_mean_times_ten_with_ungraded_left_out():
    # example 1: mean(8, 6, 10, 4, 7) = 7; example 2: mean(5, None, 9) = 7; example 3: nothing graded
    examples = [[8, 6, 10, 4, 7], [5, None, 9], [None, None]]
    assert writing.writingbench_score(examples) == pytest.approx(70.0)
    assert writing.writingbench_score([[1, 1], [10, 10]]) == pytest.approx(55.0)
    assert math.isnan(writing.writingbench_score([[None]]))


def test_writingbench_language_aggregations():
    items = [{"lang": "en", "scores": [10, 10]}, {"lang": "zh", "scores": [2, 4]}]
    assert writing.writingbench_agg(items) == pytest.approx(65.0)
    assert writing.writingbench_agg_en(items) == pytest.approx(100.0)
    assert writing.writingbench_agg_zh(items) == pytest.approx(30.0)


def test_creative_writing_inverts_negative_criteria():
    # positives 16 and 12, negatives 4 -> 16 and 20 -> 0: mean (16+12+16+0)/4 = 11 -> x5 = 55
    assert writing.cw_piece_score([16, 12, 4, 20], [False, False, True, True]) == pytest.approx(55.0)
    assert writing.cw_piece_score([20, 0], [False, True]) == pytest.approx(100.0)
    assert writing.cw_piece_score([None, 10], [False, True]) == pytest.approx(50.0)
    assert writing.cw_piece_score([None], [False]) is None
    with pytest.raises(ValueError):
        writing.cw_piece_score([1, 2], [False])
    assert writing.cw_agg([{"piece_score": 40.0}, {"piece_score": None}, {"piece_score": 60.0}]) == 50.0


def test_creative_writing_bank_is_0_to_20(repo_root):
    rubric = writing.cw_rubric(repo_root / "eval/tasks/creative_writing/criteria.yaml")
    assert all(c.scale == (0, 20) for c in rubric.criteria)
    assert sum(c.negative for c in rubric.criteria) == 4


def test_ifscale_keyword_matching_is_whole_word_and_case_insensitive():
    kws = ["market", "growth", "risk", "plan"]
    text = "Our MARKET share and Growth-oriented strategy; risky bets; the planned plan."
    assert ifscale.keyword_hits(text, kws) == [True, True, False, True]
    assert ifscale.accuracy(text, kws) == 0.75
    assert ifscale.process_results({"keywords": kws}, [text]) == {"keyword_accuracy": 0.75, "all_included": 0.0}
    assert ifscale.process_results({"keywords": ["risk"]}, ["Risk."])["all_included"] == 1.0


def test_ifscale_instances_are_deterministic_and_distinct(repo_root):
    words = ifscale.load_words(repo_root / "eval/tasks/ifscale/words.txt")
    assert len(words) >= 500
    a = ifscale.make_instances(words, 50, 3, seed=0)
    assert a == ifscale.make_instances(words, 50, 3, seed=0)
    assert a != ifscale.make_instances(words, 50, 3, seed=1)
    assert all(len(set(x["keywords"])) == 50 for x in a)
    assert all(all(k in x["prompt"] for k in x["keywords"]) for x in a)
    assert len(ifscale.make_instances(words, 500, 1)[0]["keywords"]) == 500
    with pytest.raises(UserError, match="word list has"):
        ifscale.make_instances(words, len(words) + 1, 1)


def test_ifscale_word_list_errors_name_the_line(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("# c\nalpha\nBeta\n")
    with pytest.raises(UserError, match=r"w.txt:3: not a lower-case word"):
        ifscale.load_words(p)
    p.write_text("alpha\nalpha\n")
    with pytest.raises(UserError, match="duplicate"):
        ifscale.load_words(p)
