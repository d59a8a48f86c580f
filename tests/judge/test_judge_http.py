"""The OpenAI-compatible HTTP backend against a real local HTTP server (stdlib ``http.server``).

The server speaks the ``/v1/chat/completions`` JSON shape and answers from a script; it tests the
client's logic (body fields, headers, status codes, retries, connection refused). The integration
test against a real vLLM server lives in tests/integration/.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rubricrl.judge import JudgeConfig, TransportError, build_judge, close_judge, grade_many, run_sync
from rubricrl.judge.backends.openai_http import OpenAIChatBackend
from rubricrl.judge.config import BackoffConfig, SamplingConfig

from .helpers import crit_neg, crit_pos, met, request


def completion(text: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


class ChatServer:
    """A chat/completions server answering from a script of (status, JSON body or raw text)."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, payload = outer.script[min(len(outer.requests) - 1, len(outer.script) - 1)]
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
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
def server_factory():
    servers = []

    def make(*script):
        s = ChatServer(*script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cfg(url: str | None, **kw) -> JudgeConfig:
    base = dict(
        backend="openai",
        model="judge-model",
        base_url=url,
        retries=2,
        backoff=BackoffConfig(initial_s=0.001, max_s=0.002),
        timeout_s=5,
    )
    base.update(kw)
    return JudgeConfig(**base)


def test_body_fields_headers_and_verdicts(server_factory, monkeypatch):
    srv = server_factory((200, completion(met(True, "sends to doctor"))))
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-123")
    judge = build_judge(
        cfg(
            srv.url,
            api_key_env="JUDGE_TEST_KEY",
            extra_body={"chat_template_kwargs": {"enable_thinking": False}},
            sampling=SamplingConfig(temperature=0.6, top_p=0.95, top_k=20, max_tokens=64, seed=7),
        )
    )
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.met is True and v.explanation == "sends to doctor" and v.attempts == 1
    [r] = srv.requests
    assert r["path"] == "/v1/chat/completions"
    assert r["headers"]["Authorization"] == "Bearer sk-test-123"
    b = r["body"]
    assert b["model"] == "judge-model" and b["messages"][0]["role"] == "user"
    assert "[5] Advises the user" in b["messages"][0]["content"]
    assert (b["temperature"], b["top_p"], b["top_k"], b["max_tokens"], b["seed"]) == (0.6, 0.95, 20, 64, 7)
    assert b["chat_template_kwargs"] == {"enable_thinking": False}
    close_judge(judge)


def test_top_k_none_is_left_out_and_no_auth_header(server_factory):
    srv = server_factory((200, completion(met(False))))
    judge = build_judge(cfg(srv.url, sampling=SamplingConfig(top_k=None, seed=None)))
    grade_many(judge, [request(crit_neg())])
    body, headers = srv.requests[0]["body"], srv.requests[0]["headers"]
    assert "top_k" not in body and "seed" not in body and "Authorization" not in headers
    close_judge(judge)


def test_500_is_retried_then_graded(server_factory):
    srv = server_factory((500, {"error": "overloaded"}), (503, "busy"), (200, completion(met(True))))
    judge = build_judge(cfg(srv.url))
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.met is True and v.attempts == 3 and len(srv.requests) == 3
    assert judge.stats.transport_errors == 2 and judge.stats.retries == 2
    close_judge(judge)


def test_persistent_500_is_ungraded_with_status(server_factory):
    srv = server_factory((500, {"error": "boom"}))
    judge = build_judge(cfg(srv.url, retries=1))
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.ungraded and v.attempts == 2 and "HTTP 500" in v.error
    assert judge.stats.ungraded == 1
    close_judge(judge)


def test_connection_refused_is_retried_then_ungraded():
    judge = build_judge(cfg(f"http://127.0.0.1:{free_port()}/v1", retries=2))
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.ungraded and v.attempts == 3 and "cannot reach" in v.error
    assert judge.stats.transport_errors == 3
    close_judge(judge)


def test_malformed_and_unparsable_bodies(server_factory):
    srv = server_factory(
        (200, "not json at all"),
        (200, {"choices": []}),
        (200, completion("I refuse to answer in JSON")),
        (200, completion(met(False))),
    )
    judge = build_judge(cfg(srv.url, retries=3))
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.met is False and v.attempts == 4
    assert judge.stats.transport_errors == 2 and judge.stats.parse_failures == 1
    close_judge(judge)


def test_direct_backend_errors_and_close(server_factory):
    srv = server_factory((404, {"error": "no such model"}))

    async def go():
        async with OpenAIChatBackend("m", srv.url) as b:
            with pytest.raises(TransportError) as ei:
                await b.complete([{"role": "user", "content": "hi"}])
            assert ei.value.status == 404
            assert b._client is not None
        assert b._client is None

    run_sync(go())


def test_usage_is_summed_over_successful_calls_only(server_factory):
    with_usage = {**completion("a"), "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}
    bad_usage = {**completion("b"), "usage": {"prompt_tokens": "many", "completion_tokens": -1}}
    srv = server_factory((200, with_usage), (200, completion("c")), (200, bad_usage), (500, "boom"))

    async def go():
        async with OpenAIChatBackend("m", srv.url) as b:
            for _ in range(3):
                await b.complete([{"role": "user", "content": "hi"}])
            with pytest.raises(TransportError):
                await b.complete([{"role": "user", "content": "hi"}])
            return dict(b.usage)

    # three answered calls; only the first reported usable token counts; the failed call adds nothing
    assert run_sync(go()) == {"calls": 3, "prompt_tokens": 11, "completion_tokens": 5}


def test_base_url_file_is_read_at_first_call(server_factory, tmp_path):
    srv = server_factory((200, completion(met(True))))
    endpoint = tmp_path / "endpoint.txt"
    judge = build_judge(cfg(None, base_url_file=endpoint, retries=0))
    [[v]] = grade_many(judge, [request(crit_pos())])  # the job has not written it yet
    assert v.ungraded and "base_url_file" in v.error
    endpoint.write_text(srv.url.removeprefix("http://") + "\n")
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.met is True and len(srv.requests) == 1
    close_judge(judge)


def test_many_requests_across_calls_reuse_one_client(server_factory):
    srv = server_factory((200, completion(met(True))))
    judge = build_judge(cfg(srv.url, concurrency=4))
    for _ in range(2):  # a training loop calls grade_many once per step
        out = grade_many(judge, [request(crit_pos(), crit_neg(), response=f"r{i}") for i in range(5)])
        assert all(v.met is True for vs in out for v in vs)
    assert len(srv.requests) == 20
    close_judge(judge)


def test_structured_output_sends_the_mode_schema(server_factory):
    srv = server_factory((200, completion('{"explanation": "ok", "criteria_met": true}')))
    judge = build_judge(cfg(srv.url, structured_output=True))
    [verdicts] = grade_many(judge, [request(crit_pos("a"))])
    close_judge(judge)
    assert verdicts[0].met is True
    fmt = srv.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"]["criteria_met"] == {"type": "boolean"}
    assert set(schema["required"]) == {"explanation", "criteria_met"}


def test_no_response_format_unless_asked(server_factory):
    srv = server_factory((200, completion('{"explanation": "ok", "criteria_met": false}')))
    judge = build_judge(cfg(srv.url))
    grade_many(judge, [request(crit_pos("a"))])
    close_judge(judge)
    assert "response_format" not in srv.requests[0]["body"]


def test_base_url_file_accepts_the_serve_json_endpoint(tmp_path):
    from rubricrl.judge.backends.openai_http import read_base_url_file

    p = tmp_path / "endpoint.json"
    p.write_text('{"base_url": "http://127.0.0.1:8123/v1/", "model": "m", "pid": 1}', encoding="utf-8")
    assert read_base_url_file(p) == "http://127.0.0.1:8123/v1"
    p.write_text("127.0.0.1:9000/v1\n", encoding="utf-8")
    assert read_base_url_file(p) == "http://127.0.0.1:9000/v1"
    p.write_text('{"model": "m"}', encoding="utf-8")
    with pytest.raises(TransportError, match="no 'base_url'"):
        read_base_url_file(p)


def test_batch_schema_pins_one_item_per_criterion_in_order():
    from rubricrl.judge.schemas import batch_schema

    schema = batch_schema([("a", True, (0, 1)), ("b", False, (1, 10))], chars=50)
    assert schema["items"] is False and schema["minItems"] == schema["maxItems"] == 2
    assert [v["properties"]["id"] for v in schema["prefixItems"]] == [{"const": "a"}, {"const": "b"}]
    assert schema["prefixItems"][1]["properties"]["score"] == {"type": "number", "minimum": 1, "maximum": 10}


class SlowServer:
    """A server that takes ``work_s`` per request and keeps working on a request whose client gave up
    (as a busy model server does until it notices); it records the most requests it held at once."""

    def __init__(self, work_s: float):
        import time

        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    outer.arrivals += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    time.sleep(work_s)
                    data = json.dumps(completion(met(True))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client timed out and closed the connection
                    pass
                finally:
                    with lock:
                        outer.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_retries_after_timeouts_wait_and_never_exceed_the_concurrency_on_the_server():
    # Every call times out (0.2 s) while the server works 0.6 s on it; the retry waits 1..2 s (backoff 2 s
    # with jitter), by when the server has finished the abandoned request. Retrying at once, or letting a
    # waiting call take the slot during the backoff, would put 4 requests on the server at once.
    srv = SlowServer(work_s=0.6)
    judge = build_judge(
        cfg(srv.url, retries=1, timeout_s=0.2, concurrency=2, backoff=BackoffConfig(initial_s=2.0, max_s=2.0))
    )
    try:
        [verdicts] = grade_many(judge, [request(*(crit_pos(f"c{i}") for i in range(4)))])
    finally:
        close_judge(judge)
        srv.close()
    assert all(v.ungraded and v.attempts == 2 and "timeout" in v.error for v in verdicts)
    s = judge.stats
    assert (s.calls, s.retries, s.transport_errors, s.timeouts, s.ungraded) == (8, 4, 8, 8, 4)
    assert srv.arrivals == 8 and srv.max_in_flight <= 2, srv.max_in_flight


def test_backoff_is_exponential_capped_and_jittered():
    from rubricrl.judge import LLMJudge

    from .helpers import ScriptedBackend

    j = LLMJudge(ScriptedBackend("x"), backoff=(0.5, 4.0, 2.0))
    for retry, cap in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 4.0)):
        waits = [j._delay(retry) for _ in range(50)]
        assert all(cap / 2 <= w <= cap for w in waits) and len(set(waits)) > 1, (retry, min(waits), max(waits))
