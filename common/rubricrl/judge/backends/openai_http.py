"""OpenAI-compatible chat completions over HTTP (``vllm serve``, SGLang, hosted APIs).

``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``temperature``, ``top_p``,
``max_tokens``, ``seed`` and, when set, ``top_k`` (vLLM and SGLang accept it in the body), plus the
configured ``extra_body``. Connection errors, timeouts, non-2xx statuses and malformed bodies raise
:class:`~rubricrl.judge.backends.TransportError`, which the judge retries.

Several servers (judge replicas, the data-parallel engines of a policy): ``base_url_file`` names the
endpoint file of replica 0, whose siblings ``<stem>.<i><suffix>`` (what ``slurm/judge.sbatch`` writes
for replica ``i``) are read too; or a folder (its ``endpoint*.json``); or a glob pattern; or a file
listing several URLs (``{"base_urls": [...]}`` or one per line). Each call goes to the server with
the fewest calls in flight, ties taken in turn. The set is re-read every ``refresh_s`` seconds and
after a connection error, so replicas that start late, or come back on another port after a requeue,
are picked up.

Structured output on OpenAI's own API (``api.openai.com``, Azure ``*.openai.azure.com``): its strict
``json_schema`` mode accepts a subset of JSON Schema, so the schema is sent without string length bounds
(``minLength`` / ``maxLength``: the answer's length is bounded by ``max_tokens`` instead); a schema whose
root is not an object (batch mode's list) cannot be sent there at all and is left out, with a warning
once. vLLM and SGLang get the schema as written.

Control tokens (:meth:`OpenAIChatBackend.control_tokens`): when ``model`` is a local checkpoint
directory, or a model alias prepared in this checkout's ``models/`` (what ``rubricrl serve`` serves),
its tokenizer's special and added tokens are read from the tokenizer files, so the judge defuses them
in graded content. A remote model leaves the built-in list (:mod:`rubricrl.judge.sanitize`).
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rubricrl.errors import UserError
from rubricrl.judge.backends import TransportError
from rubricrl.judge.interfaces import Message
from rubricrl.judge.sanitize import tokenizer_control_tokens
from rubricrl.models.registry import models_dir

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


def _urls_in(path: Path) -> list[str]:
    """The URLs of one endpoint file (``base_urls`` list, ``base_url``, or one URL per line)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise TransportError(f"base_url_file {path} is not valid JSON (being written?)") from None
        urls = data.get("base_urls") if isinstance(data, dict) else None
        if not urls:
            return [read_base_url_file(path)]
        if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise TransportError(f"base_url_file {path}: 'base_urls' must be a list of URLs")
    else:
        urls = [u.strip() for u in text.split("\n") if u.strip()]
    if not urls:
        raise TransportError(f"base_url_file {path} is empty")
    return [(u if "://" in u else "http://" + u).rstrip("/") for u in urls]


def endpoint_files(spec: str | Path) -> list[Path]:
    """The endpoint files ``base_url_file`` stands for, replica 0 first (existing files only).

    * a glob pattern (``*``, ``?`` or ``[``): the matching files, sorted;
    * a folder: its ``endpoint*.json`` files (``endpoint.json``, ``endpoint.1.json``, ...);
    * a file: itself and its replica siblings ``<stem>.<i><suffix>`` (``i`` a number), by ``i``.
    """
    text = str(spec)
    if any(c in text for c in "*?["):
        return [Path(p) for p in sorted(glob.glob(text)) if Path(p).is_file()]
    path = Path(spec)
    if path.is_dir():
        return sorted((p for p in path.glob("endpoint*.json") if p.is_file()), key=_replica_key)
    stem, suffix = path.stem, path.suffix
    siblings = (
        [
            p
            for p in path.parent.glob(f"{glob.escape(stem)}.*{suffix}")
            if p.name[len(stem) + 1 : len(p.name) - len(suffix)].isdigit()
        ]
        if path.parent.is_dir()
        else []
    )
    return ([path] if path.is_file() else []) + sorted(siblings, key=_replica_key)


def _replica_key(p: Path) -> tuple[int, str]:
    middle = p.name.removesuffix(p.suffix).rsplit(".", 1)
    return (int(middle[1]) + 1 if len(middle) == 2 and middle[1].isdigit() else 0, p.name)


def read_endpoints(spec: str | Path) -> list[str]:
    """Every URL the endpoint file(s) of ``spec`` list (see :func:`endpoint_files`), without duplicates.

    Raises:
        TransportError: no endpoint file exists yet, or none lists a URL (the judge retries).
    """
    files = endpoint_files(spec)
    if not files:
        raise TransportError(f"judge base_url_file {spec}: no endpoint file yet (is the judge server running?)")
    urls: list[str] = []
    problems: list[str] = []
    for f in files:
        try:
            found = _urls_in(f)
        except OSError:  # removed between listing and reading: its server is stopping
            continue
        except TransportError as e:  # being written, or broken: the other replicas still serve
            problems.append(str(e))
            continue
        urls += [u for u in found if u not in urls]
    if not urls:
        raise TransportError(
            f"judge base_url_file {spec} lists no URL" + (f" ({'; '.join(problems)})" if problems else "")
        )
    return urls


_OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")
_UNSUPPORTED_BY_OPENAI = frozenset({"minLength", "maxLength"})


def is_openai_api(url: str) -> bool:
    """Whether ``url`` is OpenAI's hosted API (or Azure OpenAI), whose strict schemas are a subset."""
    host = (urlsplit(url).hostname or "").lower()
    return host == _OPENAI_HOSTS[0] or host.endswith(_OPENAI_HOSTS[1])


def openai_strict_schema(schema: Any) -> Any:
    """``schema`` without the keywords OpenAI's strict mode rejects (string length bounds), recursively."""
    if isinstance(schema, dict):
        return {k: openai_strict_schema(v) for k, v in schema.items() if k not in _UNSUPPORTED_BY_OPENAI}
    if isinstance(schema, list):
        return [openai_strict_schema(v) for v in schema]
    return schema


def local_tokenizer_dir(model: str) -> Path | None:
    """A local directory holding ``model``'s tokenizer files, if there is one (nothing is prepared)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    if "/" in model or not model:
        return None
    d = models_dir() / model
    return d if (d / "tokenizer.json").is_file() or (d / "tokenizer_config.json").is_file() else None


class OpenAIChatBackend:
    """Async client of an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: model name sent in the body.
        base_url: server root including ``/v1``; or None with ``base_url_file``.
        base_url_file: endpoint file, folder or glob (see the module docstring); read on first use, re-read
            until it exists, every ``refresh_s`` and after connection errors. Several servers share the load.
        api_key: bearer token (None: no Authorization header).
        timeout_s: HTTP timeout per call.
        extra_body: merged into every request body (e.g. ``chat_template_kwargs``).
        max_connections: connection pool size (match the judge's concurrency).
        refresh_s: how often the set of servers named by ``base_url_file`` is read again.

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
        refresh_s: float = 30.0,
    ):
        if base_url is None and base_url_file is None:
            raise UserError("the openai judge backend needs base_url or base_url_file")
        self.model = model
        self._base_url = base_url.rstrip("/") if base_url else None
        self._base_url_file = Path(base_url_file) if base_url_file else None
        self._urls: list[str] = [self._base_url] if self._base_url else []
        self._read_at = 0.0
        self._refresh_s = refresh_s
        self._turn = 0
        self.in_flight: dict[str, int] = {}
        self._api_key = api_key
        self._timeout = timeout_s
        self._extra_body = dict(extra_body or {})
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._warned_schema = False
        # the servers' own ``usage`` summed over successful calls (the rubric-generation plan reads it)
        self.usage: dict[str, int] = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @classmethod
    def from_config(cls, cfg: Any) -> OpenAIChatBackend:
        """Build from a :class:`~rubricrl.judge.config.JudgeConfig`.

        Raises:
            UserError: ``api_key_env`` names an unset variable, or no endpoint is configured.
        """
        api_key = None
        if cfg.api_key_env:
            api_key = os.environ.get(cfg.api_key_env)
            if not api_key:
                raise UserError(f"judge api_key_env names {cfg.api_key_env!r}, which is not set")
        if cfg.base_url_file is not None and not endpoint_files(cfg.base_url_file):
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
        """The first endpoint root (replica 0); resolved from ``base_url_file`` on first use."""
        return self.endpoints()[0]

    def endpoints(self) -> list[str]:
        """Every server root in use, read (again) from ``base_url_file`` when due.

        Raises:
            TransportError: no endpoint could be read and none is known from before.
        """
        if self._base_url_file is None:
            return self._urls
        now = time.monotonic()
        if self._urls and now - self._read_at < self._refresh_s:
            return self._urls
        try:
            urls = read_endpoints(self._base_url_file)
        except TransportError:
            if not self._urls:
                raise
            return self._urls  # keep the known servers; a dead one fails its call and is retried
        except OSError as e:
            raise TransportError(f"cannot read judge base_url_file {self._base_url_file}: {e}") from e
        if urls != self._urls:
            log.info(
                "judge endpoint%s %s (from %s)", "s" if len(urls) > 1 else "", ", ".join(urls), self._base_url_file
            )
        self._urls, self._read_at = urls, now
        self._base_url = urls[0]
        return urls

    def pick(self) -> str:
        """The server for the next call: fewest calls in flight, ties taken in turn."""
        urls = self.endpoints()
        start, self._turn = self._turn, self._turn + 1
        order = [urls[(start + i) % len(urls)] for i in range(len(urls))]
        return min(order, key=lambda u: self.in_flight.get(u, 0))

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

    def control_tokens(self) -> list[str]:
        """Special and added tokens of the served model's tokenizer, when its files are local (see module doc)."""
        d = local_tokenizer_dir(self.model)
        return tokenizer_control_tokens(d) if d is not None else []

    def build_body(self, messages: list[Message], base_url: str | None = None, **sampling: Any) -> dict[str, Any]:
        """The JSON body of one request (``base_url``: the server it goes to, for OpenAI's schema subset)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        for key in ("temperature", "top_p", "max_tokens", "seed"):
            if sampling.get(key) is not None:
                body[key] = sampling[key]
        if sampling.get("top_k") is not None:
            body["top_k"] = sampling["top_k"]
        fmt = sampling.get("response_format")
        if fmt is not None and is_openai_api(base_url or self._base_url or ""):
            fmt = self._openai_format(fmt)
        if fmt is not None:
            body["response_format"] = fmt
        body.update(self._extra_body)
        return body

    def _openai_format(self, fmt: dict[str, Any]) -> dict[str, Any] | None:
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        if schema is None:
            return fmt
        if schema.get("type") != "object":
            if not self._warned_schema:
                self._warned_schema = True
                log.warning(
                    "judge %s: OpenAI's structured output needs an object at the root; this mode's "
                    "schema (%s) is not sent, the answer is parsed as free text",
                    self.model,
                    schema.get("type"),
                )
            return None
        return {**fmt, "json_schema": {**fmt["json_schema"], "schema": openai_strict_schema(schema)}}

    async def complete(self, messages: list[Message], **sampling: Any) -> str:
        """Send one chat completion and return the first choice's text.

        Raises:
            TransportError: connection error, timeout, non-2xx status, or a malformed body.
        """
        base = self.pick()
        url = f"{base}/chat/completions"
        body = self.build_body(messages, base, **sampling)
        self.in_flight[base] = self.in_flight.get(base, 0) + 1
        try:
            resp = await self._get_client().post(url, json=body)
        except httpx.TimeoutException as e:
            raise TransportError(
                f"timeout after {self._timeout}s calling {url}: {type(e).__name__}", timeout=True
            ) from e
        except httpx.HTTPError as e:
            self._read_at = 0.0  # the server may have moved (requeued judge): read the endpoint files again
            raise TransportError(f"cannot reach {url}: {type(e).__name__}: {e}") from e
        finally:
            self.in_flight[base] -= 1
        if not 200 <= resp.status_code < 300:
            raise TransportError(f"HTTP {resp.status_code} from {url}: {resp.text[:300]}", status=resp.status_code)
        try:
            data = resp.json()
            message = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise TransportError(f"malformed chat completion from {url}: {resp.text[:300]}") from e
        self._count_usage(data.get("usage") if isinstance(data, dict) else None)
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""

    def _count_usage(self, usage: Any) -> None:
        """Add one response's ``usage`` block (absent or malformed: the call is counted, the tokens are not)."""
        self.usage["calls"] += 1
        if isinstance(usage, dict):
            for k in ("prompt_tokens", "completion_tokens"):
                v = usage.get(k)
                if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                    self.usage[k] += v

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

    async def __aenter__(self) -> OpenAIChatBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
