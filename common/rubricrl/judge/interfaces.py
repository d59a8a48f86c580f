"""The Judge boundary: what every grading backend takes and returns.

The data a judge takes and returns (:class:`~rubricrl.types.GradingRequest`, :class:`~rubricrl.types.Verdict`)
lives in :mod:`rubricrl.types`; this module holds the protocols and re-exports those names.

A judge is always passed in as an object (built from a config by ``rubricrl.judge.build_judge``),
never reached through module constants. Backends:

* ``LLMJudge`` over a ``ChatBackend`` (OpenAI-compatible HTTP, in-process transformers model);
* ``ProgrammaticJudge`` (named verifiers);
* ``ReplayJudge`` (verdicts from a cache; misses are ungraded);
* ``RoutingJudge`` (programmatic criteria to verifiers, the rest to a model) with an optional cache.

A verdict that could not be obtained is ungraded (``met is None and score is None``) and counted,
never silently ``False``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from rubricrl.types import GradingMode, GradingRequest, Message, Verdict

__all__ = ["ChatBackend", "GradingMode", "GradingRequest", "Judge", "Message", "Verdict"]


@runtime_checkable
class Judge(Protocol):
    """Grades responses against criteria."""

    name: str

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """Return one verdict per criterion of ``request``, in order."""
        ...


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model: messages in, text out. Raises on transport errors (the judge retries)."""

    model: str

    async def complete(self, messages: list[Message], **sampling: Any) -> str: ...
