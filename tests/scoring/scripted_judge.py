"""A deterministic scripted judge, only for unit tests of the grade command's bookkeeping.

Rules: a criterion is met when its text's last word appears in the response; criteria whose text
contains "flaky" are ungraded while ``flaky`` is True.
"""

from __future__ import annotations

import asyncio
import os
import signal

from rubricrl.judge.interfaces import GradingRequest, Verdict


class ScriptedJudge:
    name = "scripted"

    def __init__(
        self, flaky: bool = False, signal_after: int | None = None, sig: int = signal.SIGINT, delay: float = 0.0
    ):
        self.flaky = flaky
        self.signal_after = signal_after
        self.sig = sig
        self.delay = delay
        self.requests: list[GradingRequest] = []
        self.closed = False

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        self.requests.append(request)
        if self.signal_after is not None and len(self.requests) > self.signal_after:
            os.kill(os.getpid(), self.sig)
            await asyncio.sleep(10)  # cancelled by the signal handler
        if self.delay:
            await asyncio.sleep(self.delay)
        out = []
        for c in request.criteria:
            if self.flaky and "flaky" in c.text:
                out.append(Verdict(c.id, met=None, error="unparsable", attempts=4, latency_s=0.01))
            else:
                word = c.text.split()[-1]
                out.append(
                    Verdict(
                        c.id,
                        met=word in request.response,
                        explanation=f"looked for {word}",
                        judge=self.name,
                        attempts=1,
                        latency_s=0.01,
                    )
                )
        return out

    async def aclose(self) -> None:
        self.closed = True
