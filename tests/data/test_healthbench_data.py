"""HealthBench data: offline copy, easy = full - hard, downloads with checksum lock (local HTTP server), splits."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from rubricrl import cli
from rubricrl.data import healthbench as hb
from rubricrl.data.paths import installed_data_file
from rubricrl.data.writingbench import load_writingbench
from rubricrl.errors import UserError


def _ex(pid: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"q {pid}\u2028second line"}],
        "rubrics": [{"criterion": "c", "points": 3, "tags": ["axis:accuracy"]}],
        "example_tags": ["theme:t"],
        "prompt_id": pid,
        "ideal_completions_data": None,
    }


def _jsonl(ids) -> bytes:
    return "".join(json.dumps(_ex(i), ensure_ascii=False) + "\n" for i in ids).encode("utf-8")


@pytest.fixture
def small_counts(monkeypatch):
    """Synthetic official files: full 6, hard 2, consensus 3 examples."""
    monkeypatch.setattr(
        hb,
        "OFFICIAL",
        {
            "full": hb.OfficialFile(hb.OFFICIAL["full"].filename, 6),
            "hard": hb.OfficialFile(hb.OFFICIAL["hard"].filename, 2),
            "consensus": hb.OfficialFile(hb.OFFICIAL["consensus"].filename, 3),
            "meta_eval": hb.OfficialFile(hb.OFFICIAL["meta_eval"].filename, None),
        },
    )


class _Server:
    """A stdlib HTTP server on 127.0.0.1 serving ``files`` (name -> bytes), honouring Range requests."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True):
        self.files, self.ranges, self.requests = files, ranges, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output quiet
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append((name, self.headers.get("Range")))
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                if rng and outer.ranges:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/healthbench/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(small_counts):
    s = _Server(
        {
            hb.OFFICIAL["full"].filename: _jsonl("abcdef"),
            hb.OFFICIAL["hard"].filename: _jsonl("be"),
            hb.OFFICIAL["consensus"].filename: _jsonl("xyz"),
        }
    )
    yield s
    s.close()


def test_offline_copy_has_500_examples():
    exs = hb.load_subset("offline")
    assert len(exs) == 500 and len({e.prompt_id for e in exs}) == 500
    assert hb.offline_path().name == "healthbench_eval.jsonl"


def test_writingbench_offline_copy_has_1000_queries():
    assert len(load_writingbench()) == 1000


def test_missing_wheel_says_run_make_setup():
    with pytest.raises(UserError, match="make setup"):
        installed_data_file("no_such_package_rubricrl", "x.jsonl")
    with pytest.raises(UserError, match="make setup"):
        installed_data_file("eval_framework", "tasks/nothing/here.jsonl")


def test_fetch_records_checksum_on_first_use_and_verifies_later(server, tmp_path):
    path = hb.fetch("hard", root=tmp_path, base_url=server.url)
    assert path.read_bytes() == _jsonl("be")
    lock = json.loads((tmp_path / hb.LOCK_NAME).read_text())
    assert lock[path.name]["sha256"] == hb.sha256_file(path) and lock[path.name]["url"].startswith(server.url)
    assert hb.fetch("hard", root=tmp_path, base_url=server.url) == path  # cached: no new request
    assert len(server.requests) == 1
    path.write_bytes(_jsonl("bq"))  # same count, different content
    with pytest.raises(UserError, match="sha256 mismatch"):
        hb.verified_path("hard", root=tmp_path)


def test_upstream_change_is_refused_and_keeps_the_cached_file(server, tmp_path):
    path = hb.fetch("hard", root=tmp_path, base_url=server.url)
    server.files[path.name] = _jsonl("bz")
    with pytest.raises(UserError, match="sha256 mismatch"):
        hb.fetch("hard", root=tmp_path, base_url=server.url, force=True)
    assert path.read_bytes() == _jsonl("be")
    assert not list(path.parent.glob("*.part"))


def test_wrong_example_count_saves_nothing(server, tmp_path):
    server.files[hb.OFFICIAL["hard"].filename] = _jsonl("bef")
    with pytest.raises(UserError, match="has 3 examples, expected 2"):
        hb.fetch("hard", root=tmp_path, base_url=server.url)
    assert not hb.cached_path("hard", tmp_path).exists()
    assert not (tmp_path / hb.LOCK_NAME).exists()


@pytest.mark.parametrize("ranges", [True, False])
def test_interrupted_download_resumes_or_restarts(small_counts, tmp_path, ranges):
    body = _jsonl("abcdef")
    s = _Server({hb.OFFICIAL["full"].filename: body}, ranges=ranges)
    try:
        part = hb.cached_path("full", tmp_path).with_name(hb.OFFICIAL["full"].filename + ".part")
        part.parent.mkdir(parents=True)
        part.write_bytes(body[:100])
        path = hb.fetch("full", root=tmp_path, base_url=s.url)
        assert path.read_bytes() == body
        assert s.requests == [(path.name, "bytes=100-")]
    finally:
        s.close()


def test_file_url_download(small_counts, tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / hb.OFFICIAL["consensus"].filename).write_bytes(_jsonl("xyz"))
    path = hb.fetch("consensus", root=tmp_path / "cache", base_url=src.as_uri())
    assert [e.prompt_id for e in hb.load_subset("consensus", root=tmp_path / "cache")] == ["x", "y", "z"]
    assert path.parent == tmp_path / "cache" / "healthbench"


def test_unreachable_server_is_a_user_error(small_counts, tmp_path):
    with pytest.raises(UserError, match="cannot download"):
        hb.fetch("hard", root=tmp_path, base_url="http://127.0.0.1:9/healthbench/", timeout=2)


def test_easy_is_full_minus_hard_by_prompt_id(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RUBRICRL_DATA_DIR", str(tmp_path))
    hb.fetch("full", base_url=server.url)
    hb.fetch("hard", base_url=server.url)
    easy = hb.load_subset("easy")
    assert [e.prompt_id for e in easy] == ["a", "c", "d", "f"]
    assert easy[0].prompt[0]["content"].endswith("\u2028second line")  # U+2028 is not a line break
    out = tmp_path / "easy.jsonl"
    assert cli.main(["data", "write", "healthbench", "--subset", "easy", "--out", str(out)]) == 0
    assert [json.loads(x)["prompt_id"] for x in out.read_text(encoding="utf-8").split("\n") if x] == [
        "a",
        "c",
        "d",
        "f",
    ]
    assert cli.main(["data", "write", "healthbench", "--subset", "easy", "--out", str(out)]) == 2  # not overwritten


def test_offline_easy_drops_hard_ids_and_needs_hard(small_counts, tmp_path):
    with pytest.raises(UserError, match="data fetch healthbench --subset hard"):
        hb.load_subset("offline_easy", root=tmp_path)
    offline = hb.load_subset("offline")
    hard_ids = [offline[3].prompt_id, offline[10].prompt_id]
    d = hb.cached_path("hard", tmp_path)
    d.parent.mkdir(parents=True)
    d.write_bytes(_jsonl(hard_ids))
    easy = hb.load_subset("offline_easy", root=tmp_path)
    assert len(easy) == 498 and not {e.prompt_id for e in easy} & set(hard_ids)


def test_split_is_deterministic_exact_and_order_independent():
    items = [{"prompt_id": f"id{i}"} for i in range(100)]
    train, held = hb.split_heldout(items, 0.2, seed=0, key=lambda o: o["prompt_id"])
    assert len(held) == 20 and len(train) == 80
    assert not {o["prompt_id"] for o in train} & {o["prompt_id"] for o in held}
    assert hb.split_heldout(items, 0.2, 0, key=lambda o: o["prompt_id"]) == (train, held)
    t2, h2 = hb.split_heldout(items[::-1], 0.2, 0, key=lambda o: o["prompt_id"])
    assert {o["prompt_id"] for o in h2} == {o["prompt_id"] for o in held}
    _, h3 = hb.split_heldout(items, 0.2, 1, key=lambda o: o["prompt_id"])
    assert h3 != held
    with pytest.raises(UserError, match="duplicate id"):
        hb.split_heldout(items + items[:1], 0.2, 0, key=lambda o: o["prompt_id"])


def test_split_command_writes_both_files_and_refuses_overwrite(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(_jsonl([f"p{i}" for i in range(10)]))
    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    args = [
        "data",
        "split",
        str(src),
        "--heldout-frac",
        "0.2",
        "--seed",
        "0",
        "--train",
        str(train),
        "--heldout",
        str(held),
    ]
    assert cli.main(args) == 0
    ids_t = [json.loads(x)["prompt_id"] for x in train.read_text().split("\n") if x]
    ids_h = [json.loads(x)["prompt_id"] for x in held.read_text().split("\n") if x]
    assert len(ids_t) == 8 and len(ids_h) == 2 and sorted(ids_t + ids_h) == sorted(f"p{i}" for i in range(10))
    before = train.read_bytes()
    assert cli.main(args) == 2 and train.read_bytes() == before
    assert "not overwritten" in capsys.readouterr().err


def test_split_names_the_line_without_an_id(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt_id": "a"}\n{"other": 1}\n')
    assert (
        cli.main(
            [
                "data",
                "split",
                str(src),
                "--heldout-frac",
                "0.5",
                "--train",
                str(tmp_path / "t"),
                "--heldout",
                str(tmp_path / "h"),
            ]
        )
        == 2
    )
    assert f"{src}:2:" in capsys.readouterr().err


def test_data_path_commands(capsys, tmp_path, monkeypatch):
    assert cli.main(["data", "path", "healthbench-500"]) == 0
    assert Path(capsys.readouterr().out.strip()) == hb.offline_path()
    monkeypatch.setenv("RUBRICRL_DATA_DIR", str(tmp_path))
    assert cli.main(["data", "path", "healthbench", "--subset", "hard"]) == 2
    assert "rubricrl data fetch healthbench --subset hard" in capsys.readouterr().err
