"""Pieces shared by the CLI commands: ``KEY=VALUE`` overrides and interruptible async runs."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from typing import Any

import yaml

from rubricrl.errors import UserError


def parse_overrides(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "model=x"]`` -> ``{"a.b": 1, "model": "x"}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def run_interruptible(coro_fn: Callable[[], Any]) -> str | None:
    """Run ``coro_fn()``; SIGINT/SIGTERM cancel it. Returns the signal name when interrupted."""
    caught: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, lambda s=sig: (caught.append(s.name), task.cancel()))
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass
        try:
            await coro_fn()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        if not caught:
            raise
    except KeyboardInterrupt:
        caught.append("SIGINT")
    return caught[0] if caught else None


def accept_trailing_overrides(p: argparse.ArgumentParser) -> None:
    """Let ``KEY=VALUE`` overrides come after options too (``--stage x run.name=y``); they land in ``overrides``."""
    parse = p.parse_known_args

    def parse_known_args(args=None, namespace=None):  # type: ignore[no-untyped-def]
        ns, extra = parse(args, namespace)
        more = [a for a in extra if "=" in a and not a.startswith("-")]
        ns.overrides = [*(getattr(ns, "overrides", None) or []), *more]
        return ns, [a for a in extra if a not in more]

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]
