"""Targeted reward shaping: monotone maps of [0, 1] onto [0, 1] that stretch the high-score region.

Rubicon's fourth strategy ("a non-linear map that amplifies differences in the high-score region") has
no published formula; these are our documented choices. Each map ``f`` is continuous, strictly
increasing, ``f(0) = 0``, ``f(1) = 1``, and convex, so ``f(0.9) - f(0.8) > f(0.2) - f(0.1)``.

A reward outside [0, 1] (``points_ratio`` can be negative, an unclipped ``weighted_mean`` too) is
clamped to [0, 1] before shaping: shaping is for rewards on the unit scale.

Used through the aggregation params: ``shape: {name: power, p: 2}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Shaper = Callable[[float, Mapping[str, Any]], float]

# name -> (function, {param: default})
SHAPERS: dict[str, tuple[Shaper, dict[str, float]]] = {}


def _num(spec: Mapping[str, Any], key: str, default: float) -> float:
    x = spec.get(key, default)
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"shape {spec.get('name')!r}: {key!r} must be a finite number, got {x!r}")
    return float(x)


def power(x: float, spec: Mapping[str, Any]) -> float:
    """``f(x) = x ** p`` with ``p >= 1`` (default 2); ``p = 1`` is the identity."""
    p = _num(spec, "p", 2.0)
    if p < 1:
        raise ValueError(f"shape 'power': p must be >= 1, got {p}")
    return x**p


def exp(x: float, spec: Mapping[str, Any]) -> float:
    """``f(x) = (e^(alpha x) - 1) / (e^alpha - 1)`` with ``alpha > 0`` (default 3)."""
    alpha = _num(spec, "alpha", 3.0)
    if not alpha > 0:
        raise ValueError(f"shape 'exp': alpha must be > 0, got {alpha}")
    return math.expm1(alpha * x) / math.expm1(alpha)


def high_region(x: float, spec: Mapping[str, Any]) -> float:
    """Piecewise linear: slope ``g`` times steeper above a threshold ``t``, renormalised so ``f(1) = 1``.

    ``f(x) = a x`` for ``x < t``;  ``f(x) = a (t + g (x - t))`` for ``x >= t``;
    ``a = 1 / (t + g (1 - t))``.

    Params: ``threshold`` t in (0, 1) (default 0.7), ``gain`` g > 1 (default 3). Continuous at ``t``,
    strictly increasing; a gap above ``t`` is worth ``g`` times the same gap below it.
    """
    t = _num(spec, "threshold", 0.7)
    g = _num(spec, "gain", 3.0)
    if not 0 < t < 1:
        raise ValueError(f"shape 'high_region': threshold must be in (0, 1), got {t}")
    if not g > 1:
        raise ValueError(f"shape 'high_region': gain must be > 1, got {g}")
    a = 1.0 / (t + g * (1.0 - t))
    return a * x if x < t else a * (t + g * (x - t))


SHAPERS.update(
    {
        "power": (power, {"p": 2.0}),
        "exp": (exp, {"alpha": 3.0}),
        "high_region": (high_region, {"threshold": 0.7, "gain": 3.0}),
    }
)


def check_shape(spec: Any) -> None:
    """Validate a shaping spec ``{name: ..., <params>}``.

    Raises:
        ValueError: not a mapping, unknown name, unknown parameter or invalid value.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"'shape' must be a mapping like {{name: power, p: 2}}, got {spec!r}")
    name = spec.get("name")
    if name not in SHAPERS:
        raise ValueError(f"unknown shape {name!r}; known shapes: {', '.join(sorted(SHAPERS))}")
    fn, defaults = SHAPERS[name]
    unknown = sorted(set(spec) - {"name"} - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for shape {name!r}; "
            f"accepted: {', '.join(sorted(defaults))}"
        )
    fn(0.5, spec)  # value checks live in the shaper


def shape_value(x: float, spec: Mapping[str, Any]) -> float:
    """Clamp ``x`` to [0, 1], then apply the shaping named by ``spec["name"]``.

    Raises:
        ValueError: invalid spec (see :func:`check_shape`).
    """
    check_shape(spec)
    fn, _ = SHAPERS[spec["name"]]
    return fn(min(1.0, max(0.0, float(x))), spec)
