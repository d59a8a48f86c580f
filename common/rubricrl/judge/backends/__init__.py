"""Chat backends for :class:`rubricrl.judge.llm.LLMJudge`.

* :class:`~rubricrl.judge.backends.openai_http.OpenAIChatBackend`: any OpenAI-compatible server
  (``vllm serve``, SGLang, a hosted API).
* :class:`~rubricrl.judge.backends.transformers_local.TransformersChatBackend`: an in-process
  transformers model (CPU or one GPU).

A backend raises :class:`BackendError` (or its subclass :class:`TransportError`) for failures that a
retry may fix; :class:`~rubricrl.judge.llm.LLMJudge` retries those with backoff and, after its budget,
records the verdict as ungraded.
"""

from __future__ import annotations


class BackendError(RuntimeError):
    """A judge call failed in a way a retry may fix (the judge counts and retries it)."""


class TransportError(BackendError):
    """Connection error, timeout, or non-2xx HTTP status from a judge server.

    Attributes:
        status: the HTTP status code, when there was a response.
        timeout: the call timed out (counted as ``timeouts`` in the judge's stats).
    """

    def __init__(self, message: str, status: int | None = None, timeout: bool = False):
        super().__init__(message)
        self.status = status
        self.timeout = timeout


__all__ = ["BackendError", "TransportError"]
