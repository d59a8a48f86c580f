"""The verifier registry: :class:`VerifierResult`, ``@verifier("name")`` and the lookups.

The built-in verifier modules import this module to register themselves; the package
(:mod:`rubricrl.rubrics.verifiers`) imports them all, so by the time any caller can reach the registry
every built-in is in it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VerifierResult:
    """Outcome of a programmatic check.

    Attributes:
        passed: whether the response satisfies the constraint (for detectors of undesirable
            behaviour, whether the behaviour is present: pair them with ``negative: true`` criteria).
        score: optional graded value in [0, 1] (e.g. fraction of required keywords present).
        detail: short human-readable reason.
    """

    passed: bool
    score: float | None = None
    detail: str = ""


VerifierFn = Callable[..., VerifierResult]
VERIFIERS: dict[str, VerifierFn] = {}


def verifier(name: str) -> Callable[[VerifierFn], VerifierFn]:
    """Register ``fn`` under ``name``."""

    def deco(fn: VerifierFn) -> VerifierFn:
        if name in VERIFIERS:
            raise ValueError(f"verifier {name!r} registered twice")
        VERIFIERS[name] = fn
        return fn

    return deco


def get_verifier(name: str) -> VerifierFn:
    try:
        return VERIFIERS[name]
    except KeyError:
        raise KeyError(f"unknown verifier {name!r}; known: {', '.join(sorted(VERIFIERS))}") from None


def check_args(name: str, args: dict[str, Any]) -> str | None:
    """Return a problem description if ``args`` do not fit verifier ``name``'s signature, else None."""
    if name not in VERIFIERS:
        return f"unknown verifier {name!r} (known: {', '.join(sorted(VERIFIERS))})"
    sig = inspect.signature(VERIFIERS[name])
    try:
        sig.bind("", **args)
    except TypeError as e:
        return f"verifier {name!r}: bad args {sorted(args)}: {e}"
    return None


def run_verifier(name: str, response: str, args: dict[str, Any]) -> VerifierResult:
    return get_verifier(name)(response, **args)
