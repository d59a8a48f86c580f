"""The HTTP judge over several servers: judge replicas' endpoint files, a folder, a glob, late replicas.

Real HTTP servers on localhost (the scripted ``ChatServer`` of test_judge_http) stand in for vLLM
replicas; the client under test is the real :class:`OpenAIChatBackend` through ``build_judge``.
"""

from __future__ import annotations

import json

import pytest

from rubricrl.judge import TransportError, build_judge, close_judge, grade_many
from rubricrl.judge.backends.openai_http import OpenAIChatBackend, endpoint_files, read_endpoints

from .helpers import crit_pos, met, request
from .test_judge_http import cfg, completion, server_factory  # noqa: F401  (fixture)


def _endpoint(path, url: str, replica: int = 0) -> None:
    # What `rubricrl serve --endpoint-file` / slurm/judge.sbatch write.
    path.write_text(json.dumps({"base_url": url, "model": "judge-model", "pid": 1, "replica": replica}))


def _grade(judge, n: int) -> list:
    return [v for vs in grade_many(judge, [request(crit_pos(), response=f"r{i}") for i in range(n)]) for v in vs]


@pytest.mark.parametrize("spec", ["file", "folder", "glob"])
def test_calls_are_spread_over_every_replica(server_factory, tmp_path, spec):
    a, b = server_factory((200, completion(met(True)))), server_factory((200, completion(met(True))))
    d = tmp_path / "judge"
    d.mkdir()
    _endpoint(d / "endpoint.json", a.url)
    _endpoint(d / "endpoint.1.json", b.url, 1)
    (d / ".endpoint.json.tmp").write_text("{")  # a half-written file is not an endpoint
    (d / "vllm-7-0.log").write_text("log")
    name = {"file": d / "endpoint.json", "folder": d, "glob": d / "endpoint*.json"}[spec]
    judge = build_judge(cfg(None, base_url_file=name, concurrency=4))
    verdicts = _grade(judge, 8)
    close_judge(judge)
    assert all(v.met is True for v in verdicts)
    assert len(a.requests) + len(b.requests) == 8 and len(a.requests) >= 2 and len(b.requests) >= 2


def test_one_endpoint_file_without_replicas_behaves_as_before(server_factory, tmp_path):
    a, other = server_factory((200, completion(met(True)))), server_factory((200, completion(met(True))))
    _endpoint(tmp_path / "endpoint.json", a.url)
    _endpoint(tmp_path / "other.json", other.url)  # not a replica sibling: never read
    (tmp_path / "endpoint.x.json").write_text(json.dumps({"base_url": other.url}))
    judge = build_judge(cfg(None, base_url_file=tmp_path / "endpoint.json", concurrency=4))
    assert all(v.met is True for v in _grade(judge, 5))
    close_judge(judge)
    assert len(a.requests) == 5 and not other.requests


def test_least_loaded_server_first_and_ties_in_turn():
    b = OpenAIChatBackend("m", "http://a/v1")
    b._urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    assert [b.pick() for _ in range(4)] == ["http://a/v1", "http://b/v1", "http://c/v1", "http://a/v1"]
    b.in_flight = {"http://a/v1": 2, "http://b/v1": 1, "http://c/v1": 2}
    assert b.pick() == "http://b/v1"


def test_a_late_replica_is_picked_up_and_a_gone_one_dropped(server_factory, tmp_path):
    a, b = server_factory((200, completion(met(True)))), server_factory((200, completion(met(True))))
    ep0, ep1 = tmp_path / "endpoint.json", tmp_path / "endpoint.1.json"
    _endpoint(ep0, a.url)
    backend = OpenAIChatBackend("judge-model", base_url_file=ep0, refresh_s=0.0)
    assert backend.endpoints() == [a.url]
    _endpoint(ep1, b.url, 1)  # replica 1 comes up later
    assert backend.endpoints() == [a.url, b.url]
    judge = build_judge(cfg(None, base_url_file=ep0, concurrency=2))
    assert all(v.met is True for v in _grade(judge, 2)) and a.requests and b.requests
    a.close()
    ep0.unlink()  # replica 0 stops; its file goes with it
    served_b = len(b.requests)
    # The connection error to replica 0 makes the client read the files again: replica 1 takes over.
    assert all(v.met is True for v in _grade(judge, 4))
    close_judge(judge)
    assert len(b.requests) - served_b == 4


def test_no_endpoint_yet_is_a_retryable_error_naming_the_file(tmp_path):
    with pytest.raises(TransportError, match="no endpoint file yet"):
        read_endpoints(tmp_path / "endpoint.json")
    (tmp_path / "endpoint.json").write_text("{}")
    with pytest.raises(TransportError, match="lists no URL"):
        read_endpoints(tmp_path / "endpoint.json")
    (tmp_path / "urls.txt").write_text(json.dumps({"base_urls": ["h1:8000/v1", "http://h2:8000/v1/"]}))
    assert read_endpoints(tmp_path / "urls.txt") == ["http://h1:8000/v1", "http://h2:8000/v1"]
    for i in (10, 2):
        _endpoint(tmp_path / f"endpoint.{i}.json", f"http://r{i}/v1", i)
    assert [p.name for p in endpoint_files(tmp_path / "endpoint.json")] == [
        "endpoint.json",
        "endpoint.2.json",
        "endpoint.10.json",
    ]
