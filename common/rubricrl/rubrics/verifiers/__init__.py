"""Programmatic verifiers: named, deterministic checks of a response.

A verifier is a function ``(response: str, **args) -> VerifierResult`` registered by name with
``@verifier("name")``. Criteria with ``kind: programmatic`` name one in ``verifier`` and pass its
keyword arguments in ``args``. ``check_args(name, args)`` validates arguments at rubric load time.
"""

from rubricrl.rubrics.verifiers import builtin  # noqa: F401  (registers the built-in verifiers)
from rubricrl.rubrics.verifiers.registry import (
    VERIFIERS,
    VerifierFn,
    VerifierResult,
    check_args,
    get_verifier,
    run_verifier,
    verifier,
)

__all__ = ["VERIFIERS", "VerifierFn", "VerifierResult", "check_args", "get_verifier", "run_verifier", "verifier"]
