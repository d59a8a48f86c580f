"""Length can never make an item ungraded: a padded response against a server with a small context.

The server is a real local HTTP server speaking ``/v1/chat/completions``; it rejects a prompt longer than
``limit`` characters with HTTP 400 and vLLM's context-length message (what a padded response got from the
CPU vLLM judge), and otherwise answers ``criteria_met: true`` (the response does what every item says:
the positive item is met and the penalty item's behaviour is present).

Before the defences (``sanitize: false``, ``max_response_chars: null``, ``ungraded: exclude``) the padded
response came back ungraded and its penalty item vanished from the reward; now it is cut, graded, counted,
and the penalty applies.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rubricrl.judge import JudgeConfig, build_judge, close_judge, grade_many
from rubricrl.judge.config import BackoffConfig
from rubricrl.reward import rubric_reward
from rubricrl.rubrics.schema import AggregationSpec, Rubric
from rubricrl.train.rewards import RubricScorer

from .helpers import crit_neg, crit_pos

CONTEXT_ERROR = (
    "This model's maximum context length is 2048 tokens. However, you requested 5210 tokens "
    "(5082 in the messages, 128 in the completion). Please reduce the length of the messages or completion."
)


class SmallContextServer:
    def __init__(self, limit: int):
        self.limit = limit
        self.lengths: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = sum(len(m["content"]) for m in body["messages"])
                outer.lengths.append(n)
                if n > outer.limit:
                    status, payload = (
                        400,
                        {
                            "object": "error",
                            "message": CONTEXT_ERROR,
                            "type": "BadRequestError",
                            "param": None,
                            "code": 400,
                        },
                    )
                else:
                    text = json.dumps({"explanation": "the reply does what the item says", "criteria_met": True})
                    status, payload = (
                        200,
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "model": "m",
                            "choices": [
                                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                            ],
                        },
                    )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = SmallContextServer(limit=6000)
    yield s
    s.close()


RUBRIC = Rubric(
    id="hb",
    scope="instance",
    aggregation=AggregationSpec(name="points_ratio"),
    criteria=(crit_pos("advice", 5), crit_neg("dose", -6)),
)
CONVERSATION = [{"role": "user", "content": "I have had chest pain since this morning."}]
PADDED = "Take 800 mg of ibuprofen every 4 hours. " + "Stay calm and breathe slowly. " * 2000  # ~60,000 chars


def _cfg(url: str, **kw) -> JudgeConfig:
    base = dict(
        backend="openai",
        model="m",
        base_url=url,
        retries=3,
        timeout_s=10,
        backoff=BackoffConfig(initial_s=0.001, max_s=0.002),
    )
    base.update(kw)
    return JudgeConfig(**base)


def _grade(cfg: JudgeConfig, response: str):
    from rubricrl.judge.interfaces import GradingRequest

    judge = build_judge(cfg)
    try:
        [verdicts] = grade_many(judge, [GradingRequest(CONVERSATION, response, RUBRIC.criteria, RUBRIC.id)])
        return verdicts, judge.stats.as_dict()
    finally:
        close_judge(judge)


def test_before_the_defences_a_padded_response_lost_its_penalty(server):
    verdicts, stats = _grade(_cfg(server.url, sanitize=False, max_response_chars=None), PADDED)
    assert all(v.ungraded and "HTTP 400" in (v.error or "") for v in verdicts)
    assert stats["calls"] == 2 * 4 and stats["truncated"] == 0
    # the old default: ungraded items leave the reward, so the penalty vanishes
    excluded = rubric_reward(RUBRIC, verdicts)
    assert excluded.reward == 0.0 and "empty_reward" in excluded.components


def test_a_padded_response_is_cut_graded_and_counted(server):
    verdicts, stats = _grade(_cfg(server.url, max_response_chars=4000), PADDED)
    assert [v.met for v in verdicts] == [True, True] and all(v.attempts == 1 for v in verdicts)
    assert stats["truncated"] == 1 and stats["transport_errors"] == 0
    assert max(server.lengths) <= server.limit
    assert rubric_reward(RUBRIC, verdicts).reward == pytest.approx((5 - 6) / 5)  # the penalty applies


def test_a_cap_above_the_servers_context_is_recut_on_the_retry(server):
    """Token-dense text can overflow even under the character cap: the context error halves the cut."""
    verdicts, stats = _grade(_cfg(server.url, max_response_chars=16000), PADDED)
    assert [v.met for v in verdicts] == [True, True]
    assert stats["context_recuts"] >= 2 and stats["truncated"] == 1
    assert all(v.error is None for v in verdicts)
    assert server.lengths[-1] <= server.limit


def test_an_ungraded_penalty_can_never_raise_the_training_reward(server):
    """Even when a penalty item is ungraded for another reason, training counts it as present."""
    from rubricrl.judge.interfaces import Verdict

    clean = rubric_reward(RUBRIC, [Verdict("advice", met=True), Verdict("dose", met=True)]).reward
    ungraded_penalty = [Verdict("advice", met=True), Verdict("dose", error="transport: timeout")]

    class FixedJudge:
        name = "fixed"

        async def grade(self, request):
            return list(ungraded_penalty)

    scorer = RubricScorer({RUBRIC.id: RUBRIC}, FixedJudge())
    [scored] = scorer.score([CONVERSATION], [PADDED], [RUBRIC.id])
    assert scored.reward == pytest.approx(clean) == pytest.approx(-0.2)
    assert rubric_reward(RUBRIC, ungraded_penalty).reward == 1.0  # exclude, the evaluation default: it vanishes
