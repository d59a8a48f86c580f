"""Judges: grade responses against rubric criteria.

Build one from a config and use it::

    from rubricrl.judge import build_judge, grade_many, load_judge_config
    judge = build_judge(load_judge_config("JUDGE.yaml"))
    verdicts = grade_many(judge, requests)          # list[list[Verdict]], request order
    judge.stats.as_dict()                           # calls, retries, ungraded, mean latency, ...

or ``await judge.grade(request)`` inside your own event loop (then ``await judge.aclose()``).
"""

from rubricrl.judge.backends import BackendError, TransportError
from rubricrl.judge.build import build_judge, close_judge, grade_many, run_sync
from rubricrl.judge.cache import VerdictCache, verdict_key
from rubricrl.judge.config import JudgeConfig, load_judge_config
from rubricrl.judge.interfaces import ChatBackend, GradingMode, GradingRequest, Judge, Verdict
from rubricrl.judge.llm import JudgeStats, LLMJudge
from rubricrl.judge.parsing import Parsed, ParseError, parse_batch, parse_binary, parse_score
from rubricrl.judge.programmatic import ProgrammaticJudge
from rubricrl.judge.prompts import Template, TemplateSet, load_template
from rubricrl.judge.replay import ReplayJudge
from rubricrl.judge.routing import RoutingJudge

__all__ = [
    "BackendError",
    "ChatBackend",
    "GradingMode",
    "GradingRequest",
    "Judge",
    "JudgeConfig",
    "JudgeStats",
    "LLMJudge",
    "ParseError",
    "Parsed",
    "ProgrammaticJudge",
    "ReplayJudge",
    "RoutingJudge",
    "Template",
    "TemplateSet",
    "TransportError",
    "Verdict",
    "VerdictCache",
    "build_judge",
    "close_judge",
    "grade_many",
    "load_judge_config",
    "load_template",
    "parse_batch",
    "parse_binary",
    "parse_score",
    "run_sync",
    "verdict_key",
]
