"""Offline data filtering (Rubicon): keep prompts whose base-policy reward sits in a central quantile band.

The base policy answers each candidate prompt ``k`` times; a critic scores the answers; a prompt is
kept when (1) its mean reward lies within the ``[low, high]`` quantiles of all prompts' means (too easy
and too hard/noisy are dropped) and (2) its group has reward std above ``min_std`` (a group whose
answers all score the same gives GRPO a zero advantage). The paper gives no thresholds: both are keys.

:func:`select_prompts` is pure (tested offline); :func:`plot_histogram` writes the PNG.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FilterResult:
    """What the filter decided.

    Attributes:
        kept: prompt ids kept, in the input order (then capped by ``max_kept`` in a seeded order).
        means, stds: per-prompt mean and population std of the k rewards.
        thresholds: the mean-reward values at the band's low and high quantiles.
        dropped: reason -> prompt ids (``below_band``, ``above_band``, ``zero_variance``, ``over_cap``).
    """

    kept: list[str]
    means: dict[str, float]
    stds: dict[str, float]
    thresholds: tuple[float, float]
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def stats(self) -> dict[str, object]:
        n = len(self.means)
        return {
            "candidates": n,
            "kept": len(self.kept),
            "kept_frac": len(self.kept) / n if n else 0.0,
            "threshold_low": self.thresholds[0],
            "threshold_high": self.thresholds[1],
            "dropped": {k: len(v) for k, v in self.dropped.items()},
            "mean_reward_all": statistics.fmean(self.means.values()) if n else 0.0,
            "mean_reward_kept": statistics.fmean(self.means[i] for i in self.kept) if self.kept else 0.0,
        }


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default 'linear' method); ``values`` must be non-empty."""
    if not values:
        raise ValueError("quantile of an empty sequence")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def select_prompts(
    groups: Mapping[str, Sequence[float]],
    band: tuple[float, float],
    min_std: float = 0.0,
    max_kept: int = 0,
    seed: int = 0,
) -> FilterResult:
    """Apply the quantile band and the zero-variance rule to ``prompt id -> k rewards``.

    The band is inclusive at both ends (a prompt whose mean equals a threshold is kept), so a band over
    identical means keeps them (and the variance rule then decides).
    """
    if not groups:
        return FilterResult([], {}, {}, (0.0, 0.0), {})
    lo_q, hi_q = band
    means = {pid: statistics.fmean(r) for pid, r in groups.items()}
    stds = {pid: statistics.pstdev(r) if len(r) > 1 else 0.0 for pid, r in groups.items()}
    lo, hi = quantile(list(means.values()), lo_q), quantile(list(means.values()), hi_q)
    dropped: dict[str, list[str]] = {"below_band": [], "above_band": [], "zero_variance": [], "over_cap": []}
    kept = []
    eps = 1e-12
    for pid in groups:
        m = means[pid]
        if m < lo - eps:
            dropped["below_band"].append(pid)
        elif m > hi + eps:
            dropped["above_band"].append(pid)
        elif stds[pid] <= min_std:
            dropped["zero_variance"].append(pid)
        else:
            kept.append(pid)
    if max_kept and len(kept) > max_kept:
        order = list(kept)
        random.Random(seed).shuffle(order)
        keep = set(order[:max_kept])
        dropped["over_cap"] = [p for p in kept if p not in keep]
        kept = [p for p in kept if p in keep]
    return FilterResult(kept, means, stds, (lo, hi), dropped)


def plot_histogram(result: FilterResult, path: str | Path, title: str = "offline filter") -> Path:
    """Histogram of per-prompt mean rewards with the band thresholds and the kept set overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    all_means = list(result.means.values())
    kept = [result.means[p] for p in result.kept]
    bins = 20
    ax.hist(
        all_means,
        bins=bins,
        range=(min(all_means + [0.0]), max(all_means + [1.0])),
        color="#bbbbbb",
        label=f"all prompts (n={len(all_means)})",
    )
    ax.hist(
        kept,
        bins=bins,
        range=(min(all_means + [0.0]), max(all_means + [1.0])),
        color="#3b7dd8",
        label=f"kept (n={len(kept)})",
    )
    for t in result.thresholds:
        ax.axvline(t, color="#d83b3b", linestyle="--", linewidth=1)
    ax.set_xlabel("mean reward of k base-policy responses")
    ax.set_ylabel("prompts")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
