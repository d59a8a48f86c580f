"""OpenAI-compatible chat completions over HTTP (``vllm serve``, SGLang, hosted APIs).

``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``temperature``, ``top_p``,
``max_tokens``, ``seed`` and, when set, ``top_k`` (vLLM and SGLang accept it in the body), plus the
configured ``extra_body``. Connection errors, timeouts, non-2xx statuses and malformed bodies raise
:class:`~rubricrl.judge.backends.TransportError`, which the judge retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx

from rubricrl.errors import UserError
from rubricrl.judge.backends import TransportError
from rubricrl.judge.interfaces import Message

log = logging.getLogger(__name__)


def read_base_url_file(path: Path) -> str:
    """Read a server endpoint written by a job script.

    Accepts the JSON endpoint file ``rubricrl serve`` writes (``{"base_url": ...}``) or a plain file
    whose first non-empty line is the URL (``http://`` added if bare).
    """
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            url = json.loads(text).get("base_url")
        except (ValueError, AttributeError):
            raise TransportError(f"base_url_file {path} is not valid JSON (being written?)") from None
        if not isinstance(url, str) or not url:
            raise TransportError(f"base_url_file {path} has no 'base_url'")
        return url.rstrip("/")
    for line in text.split("\n"):
        url = line.strip()
        if url:
            if "://" not in url:
                url = "http://" + url
            return url.rstrip("/")
    raise TransportError(f"base_url_file {path} is empty")


class OpenAIChatBackend:
    """Async client of an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: model name sent in the body.
        base_url: server root including ``/v1``; or None with ``base_url_file``.
        base_url_file: file holding the endpoint; read on first use (and re-read until it exists).
        api_key: bearer token (None: no Authorization header).
        timeout_s: HTTP timeout per call.
        extra_body: merged into every request body (e.g. ``chat_template_kwargs``).
        max_connections: connection pool size (match the judge's concurrency).

    Use as ``async with OpenAIChatBackend(...) as b:`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        base_url_file: Path | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        extra_body: dict[str, Any] | None = None,
        max_connections: int = 64,
    ):
        if base_url is None and base_url_file is None:
            raise UserError("the openai judge backend needs base_url or base_url_file")
        self.model = model
        self._base_url = base_url.rstrip("/") if base_url else None
        self._base_url_file = Path(base_url_file) if base_url_file else None
        self._api_key = api_key
        self._timeout = timeout_s
        self._extra_body = dict(extra_body or {})
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> "OpenAIChatBackend":
        """Build from a :class:`~rubricrl.judge.config.JudgeConfig`.

        Raises:
            UserError: ``api_key_env`` names an unset variable, or no endpoint is configured.
        """
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if not api_key:
                raise UserError(f"judge api_key_env names {cfg.api_key_env!r}, which is not set")
        if cfg.base_url_file is not None and not Path(cfg.base_url_file).exists():
            log.warning("judge base_url_file %s does not exist yet; it is read at the first call", cfg.base_url_file)
        return cls(
            cfg.model,
            cfg.base_url if cfg.base_url_file is None else None,
            base_url_file=cfg.base_url_file,
            api_key=api_key,
            timeout_s=cfg.timeout_s,
            extra_body=cfg.extra_body,
            max_connections=max(cfg.concurrency, 1),
        )

    @property
    def base_url(self) -> str:
        """The endpoint root; resolved from ``base_url_file`` on first use."""
        if self._base_url is None:
            assert self._base_url_file is not None
            try:
                self._base_url = read_base_url_file(self._base_url_file)
            except OSError as e:
                raise TransportError(f"cannot read judge base_url_file {self._base_url_file}: {e}") from e
            log.info("judge endpoint %s (from %s)", self._base_url, self._base_url_file)
        return self._base_url

    def _get_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # httpx connection pools are bound to the loop that opened them.
            if self._client is not None:
                log.debug("judge HTTP client belonged to another event loop; opening a new one")
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._client = httpx.AsyncClient(timeout=self._timeout, headers=headers, limits=self._limits)
            self._client_loop = loop
        return self._client

    def build_body(self, messages: list[Message], **sampling: Any) -> dict[str, Any]:
        """The JSON body of one request."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        for key in ("temperature", "top_p", "max_tokens", "seed"):
            if sampling.get(key) is not None:
                body[key] = sampling[key]
        if sampling.get("top_k") is not None:
            body["top_k"] = sampling["top_k"]
        if sampling.get("response_format") is not None:
            body["response_format"] = sampling["response_format"]
        body.update(self._extra_body)
        return body

    async def complete(self, messages: list[Message], **sampling: Any) -> str:
        """Send one chat completion and return the first choice's text.

        Raises:
            TransportError: connection error, timeout, non-2xx status, or a malformed body.
        """
        url = f"{self.base_url}/chat/completions"
        body = self.build_body(messages, **sampling)
        try:
            resp = await self._get_client().post(url, json=body)
        except httpx.TimeoutException as e:
            raise TransportError(f"timeout after {self._timeout}s calling {url}: {type(e).__name__}") from e
        except httpx.HTTPError as e:
            raise TransportError(f"cannot reach {url}: {type(e).__name__}: {e}") from e
        if not 200 <= resp.status_code < 300:
            raise TransportError(f"HTTP {resp.status_code} from {url}: {resp.text[:300]}", status=resp.status_code)
        try:
            data = resp.json()
            message = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise TransportError(f"malformed chat completion from {url}: {resp.text[:300]}") from e
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""

    async def aclose(self) -> None:
        """Close the HTTP client (only if it belongs to the running loop; otherwise drop it)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is self._client_loop and loop is not None:
            await client.aclose()
        self._client_loop = None

    async def __aenter__(self) -> "OpenAIChatBackend":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
