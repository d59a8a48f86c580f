"""The statistics every report uses: Wilson intervals for pass rates, paired bootstrap intervals for differences.

One implementation, so two evaluations of the same numbers cannot disagree on their intervals:

* :func:`wilson`: the Wilson score interval of a proportion ``k / n``.
* :func:`paired_bootstrap`: the difference of a statistic between two paired samples (after - before,
  resampling the same units for both), with its percentile interval. ``clip=True`` clips each mean to
  ``[0, 1]`` before differencing, as HealthBench clips its overall score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (``(0.0, 0.0)`` when ``n`` is 0).

    Args:
        k: successes, ``0 <= k <= n``.
        n: trials.
        z: the normal quantile (1.96 for 95%).

    Returns:
        ``(low, high)``, clipped to ``[0, 1]``.
    """
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    n_bootstrap: int,
    seed: int,
    *,
    clip: bool = False,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Difference of means (``after - before``) over paired units and its percentile bootstrap interval.

    Each bootstrap replicate resamples unit indices with replacement and takes both means over the same
    units, so the pairing is kept.

    Args:
        before: one value per unit (e.g. per prompt) for the baseline.
        after: the same units' values for the compared model, in the same order.
        n_bootstrap: replicates (at least 1).
        seed: the resampling seed (``numpy.random.default_rng``); the same seed gives the same interval.
        clip: clip each mean to ``[0, 1]`` before differencing (HealthBench's clipped overall score).
        level: the interval's coverage.

    Returns:
        ``(difference, low, high)``; ``(0.0, 0.0, 0.0)`` for no units.
    """
    if len(before) != len(after):
        raise ValueError(f"paired_bootstrap needs paired samples: {len(before)} before vs {len(after)} after")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not before:
        return (0.0, 0.0, 0.0)
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)

    def stat(x: np.ndarray) -> np.ndarray:
        m = x.mean(axis=-1)
        return np.clip(m, 0.0, 1.0) if clip else m

    diff = float(stat(a) - stat(b))
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_bootstrap, len(a)))
    boots = stat(a[idx]) - stat(b[idx])
    tail = (1 - level) / 2 * 100
    return diff, float(np.percentile(boots, tail)), float(np.percentile(boots, 100 - tail))
