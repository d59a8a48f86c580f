"""Offline filter: the quantile band and the zero-variance rule, on hand-made reward groups."""

from __future__ import annotations

import pytest

from rubricrl.data.filtering import plot_histogram, quantile, select_prompts


def test_quantile_matches_linear_interpolation():
    assert quantile([0, 1, 2, 3, 4], 0.5) == 2
    assert quantile([0, 10], 0.25) == 2.5
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_band_drops_too_easy_and_too_hard_and_zero_variance():
    groups = {
        "hard": [0, 0, 0, 0],  # mean 0: below the band
        "a": [0, 1, 0, 0],  # 0.25
        "b": [0, 1, 1, 0],  # 0.5
        "flat": [0.5, 0.5, 0.5, 0.5],  # 0.5 but no variance: no GRPO signal
        "c": [1, 1, 1, 0],  # 0.75
        "easy": [1, 1, 1, 1],  # 1.0: above the band
    }
    res = select_prompts(groups, (0.2, 0.8))
    assert res.kept == ["a", "b", "c"]
    assert res.dropped["below_band"] == ["hard"]
    assert res.dropped["above_band"] == ["easy"]
    assert res.dropped["zero_variance"] == ["flat"]
    assert res.stats()["kept"] == 3 and res.stats()["candidates"] == 6


def test_full_band_keeps_everything_with_variance_and_min_std_raises_the_bar():
    groups = {"a": [0, 1], "b": [0, 0.2], "c": [1, 1]}
    assert select_prompts(groups, (0.0, 1.0)).kept == ["a", "b"]
    assert select_prompts(groups, (0.0, 1.0), min_std=0.2).kept == ["a"]


def test_cap_is_seeded_and_reported():
    groups = {f"p{i}": [0, 1] for i in range(10)}
    r1 = select_prompts(groups, (0.0, 1.0), max_kept=4, seed=3)
    r2 = select_prompts(groups, (0.0, 1.0), max_kept=4, seed=3)
    assert r1.kept == r2.kept and len(r1.kept) == 4 and len(r1.dropped["over_cap"]) == 6


def test_empty_and_histogram(tmp_path):
    assert select_prompts({}, (0.1, 0.9)).kept == []
    res = select_prompts({"a": [0, 1], "b": [1, 1], "c": [0, 0]}, (0.0, 1.0))
    out = plot_histogram(res, tmp_path / "h.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
