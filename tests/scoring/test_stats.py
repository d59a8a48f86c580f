"""The one statistics module: Wilson intervals and the paired bootstrap, checked on known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rubricrl.scoring.stats import paired_bootstrap, wilson


def test_wilson_matches_the_closed_form_and_its_edges():
    lo, hi = wilson(8, 10)
    # Wilson (1927) for p = 0.8, n = 10, z = 1.96: (0.4902, 0.9433) to 4 places.
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 0.0)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        wilson(6, 5)


def test_paired_bootstrap_keeps_pairs_and_is_seeded():
    rng = np.random.default_rng(0)
    before = rng.uniform(0, 1, 50)
    after = before + 0.1  # every unit gains exactly 0.1: any resampling of pairs gives 0.1
    d, lo, hi = paired_bootstrap(before.tolist(), after.tolist(), 200, seed=1)
    assert math.isclose(d, 0.1) and math.isclose(lo, 0.1) and math.isclose(hi, 0.1)
    noisy = (before + rng.normal(0.05, 0.2, 50)).tolist()
    first = paired_bootstrap(before.tolist(), noisy, 500, seed=3)
    assert first == paired_bootstrap(before.tolist(), noisy, 500, seed=3)
    assert first[1] < first[0] < first[2]
    assert first != paired_bootstrap(before.tolist(), noisy, 500, seed=4)


def test_paired_bootstrap_clip_clips_the_means_not_the_values():
    before, after = [-0.5, -0.5], [0.5, 0.5]
    assert paired_bootstrap(before, after, 10, 0)[0] == pytest.approx(1.0)
    assert paired_bootstrap(before, after, 10, 0, clip=True)[0] == pytest.approx(0.5)
    assert paired_bootstrap([], [], 10, 0) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0], 10, 0)
