"""Shared pieces of the judge tests.

``ScriptedBackend`` is a deterministic stand-in for a chat model. It is only used to test the logic
around the model (retries, parsing, ungraded accounting, caching, routing); the HTTP and in-process
backends are tested against a real HTTP server and a real (tiny) transformers model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rubricrl.judge.backends import TransportError
from rubricrl.judge.interfaces import GradingRequest
from rubricrl.rubrics.schema import Criterion, Tier

Reply = str | Exception | Callable[[str], str]


class ScriptedBackend:
    """Answers from a script: each entry a reply, an exception to raise, or a function of the prompt.

    The last entry repeats once the script runs out. Every prompt it receives is recorded.
    """

    def __init__(self, *script: Reply, model: str = "scripted-judge", delay_s: float = 0.0):
        self.script = list(script)
        self.model = model
        self.delay_s = delay_s
        self.prompts: list[str] = []
        self.sampling: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, messages: list[dict[str, str]], **sampling: Any) -> str:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        self.sampling.append(sampling)
        entry = self.script[min(len(self.prompts) - 1, len(self.script) - 1)]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if isinstance(entry, Exception):
            raise entry
        if callable(entry):
            return entry(prompt)
        return entry

    @property
    def calls(self) -> int:
        return len(self.prompts)


def met(flag: bool, why: str = "because") -> str:
    return f'{{"explanation": "{why}", "criteria_met": {"true" if flag else "false"}}}'


def crit_pos(cid: str = "pos", points: float = 5) -> Criterion:
    return Criterion(id=cid, text="Advises the user to see a doctor within 24 hours", points=points)


def crit_neg(cid: str = "neg", points: float = -6) -> Criterion:
    return Criterion(id=cid, text="Recommends a specific prescription dose without caveats", points=points)


def crit_tiered(cid: str = "clarity") -> Criterion:
    return Criterion(
        id=cid,
        text="Clarity of the explanation",
        weight=2.0,
        tiers=(
            Tier(score=0, label="poor", description="hard to follow"),
            Tier(score=5, label="fair", description="mostly clear"),
            Tier(score=10, label="excellent", description="crisp and well ordered"),
        ),
    )


def request(*criteria: Criterion, response: str = "Please see a doctor today.") -> GradingRequest:
    return GradingRequest(
        conversation=[{"role": "user", "content": "I have had chest pain since this morning."}],
        response=response,
        criteria=list(criteria),
        rubric_id="r1",
    )


FAST = {"backoff": (0.001, 0.002, 2.0)}
TransportFail = TransportError
