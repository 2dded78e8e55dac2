"""``--batch``: the real openai and zhipuai SDKs against a loopback server with the files and batches
endpoints (tests/batch_server.py), the real CLI in subprocesses, kills at the worst moments.

What must hold: a batch run gives the judgments an online run gives; a re-run after a kill re-attaches and
submits nothing twice (asserted on what the server received); failed items and parse retries go to a
follow-up batch or online; large runs are split; an expired batch says what to run next.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_server import BatchServer
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ROOT, read_jsonl, run_cli
from stub_server import alignbench_responder

import alignbench
from alignbench.batch import BatchOptions

FAST = {"ALIGNBENCH_BATCH_POLL": "0.02,0.1"}
OPTIONS = {"poll": (0.02, 0.1)}


@pytest.fixture
def server():
    with BatchServer(timing=(0.02, 0.1, 0.02)) as s:
        yield s


def _cli_args(server: BatchServer, out: Path, *extra: str, judge: str = "openai:gpt-4o",
              answers: Path = ANSWERS_A) -> list[str]:
    return ["score", "-q", str(QUESTIONS), "-a", str(answers), "--judge", judge, "--judge-base-url", server.url,
            "--out", str(out), "--batch", *extra]


def _score(server: BatchServer, out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return run_cli(*_cli_args(server, out, *extra, **kw), env=FAST)


def _spawn(server: BatchServer, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **FAST, "PYTHONIOENCODING": "utf-8"}
    return subprocess.Popen([sys.executable, "-m", "alignbench", *_cli_args(server, out, *extra)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _wait_for(condition, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _judged(path: Path) -> list[tuple]:
    return [(j["question_id"], j["model"], j["status"], j["overall"], j["scores"], j["raw"])
            for j in read_jsonl(path / "judgments.jsonl")]


def test_batch_round_trip_equals_online_with_spend(server: BatchServer, tmp_path: Path) -> None:
    online = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "online",
                              cache=tmp_path / "online.sqlite")["model-a"]
    assert server.calls == 32 and not server.uploads
    batch = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "batch",
                             cache=tmp_path / "batch.sqlite", batch=BatchOptions(**OPTIONS))["model-a"]
    assert server.calls == 32, "the batch run sent nothing online"
    assert len(server.uploads) == 1 and server.uploads[0]["n"] == 32 and server.uploads[0]["purpose"] == "batch"
    line = server.uploads[0]["lines"][0]
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions" and len(line["custom_id"]) == 64
    assert line["body"]["model"] == "gpt-4o" and line["body"]["temperature"] == 0.0
    assert _judged(tmp_path / "online") == _judged(tmp_path / "batch")
    assert batch.summary.overall == online.summary.overall and batch.summary.n_ok == 32
    u, o = batch.summary.usage, online.summary.usage
    assert u.prompt_tokens == o.prompt_tokens and u.batch_prompt_tokens == u.prompt_tokens
    assert o.batch_prompt_tokens == 0 and u.calls == 32
    full = (u.prompt_tokens * 2.50 + u.completion_tokens * 10.00) / 1e6  # gpt-4o in judges/prices.yaml
    assert o.cost_usd == pytest.approx(full, abs=1e-6) and u.cost_usd == pytest.approx(full / 2, abs=1e-6)
    # the same call again reads everything from the cache: no upload, no call
    again = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "batch",
                             cache=tmp_path / "batch.sqlite", batch=BatchOptions(**OPTIONS))["model-a"]
    assert len(server.uploads) == 1 and again.summary.usage.cached_replies == 32
    assert again.summary.usage.cost_usd == pytest.approx(full / 2, abs=1e-6)  # what these judgments cost


def test_zhipuai_sdk_batch(server: BatchServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "some.test")
    url = server.root + "/api/paas/v4"
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "glm-4-flash", base_url=url, out=tmp_path / "glm",
                            batch=BatchOptions(**OPTIONS))
    summary = runs["model-a"].summary
    assert summary.n_ok == 32 and server.calls == 0 and len(server.created) == 1
    line = server.uploads[0]["lines"][0]
    assert line["url"] == "/v4/chat/completions" and line["body"]["model"] == "glm-4-flash"
    assert line["body"]["do_sample"] is False  # temperature 0 as the zhipuai SDK sends it online
    assert server.headers == []  # nothing went online (headers are recorded for chat calls)
    # the batch endpoints are the calls that reached this server: a provider's key goes only to the provider's
    # own https host (as online), so this loopback server never saw it
    assert [server.batches[b]["key"] for b in server.created] == ["EMPTY"]
    assert summary.usage.cost_cny == 0.0 and summary.usage.unpriced_tokens == 0  # glm-4-flash is free
    alignbench.score(QUESTIONS, ANSWERS_A, "glm-4-flash", base_url=url, out=tmp_path / "glm-online",
                     cache=tmp_path / "other.sqlite")
    assert _judged(tmp_path / "glm") == _judged(tmp_path / "glm-online")


def test_kill_between_submit_and_download_reattaches(server: BatchServer, tmp_path: Path,
                                                     _isolated_cache: Path) -> None:
    server.hold()  # the batch stays in progress until released
    proc = _spawn(server, tmp_path / "run")
    _wait_for(lambda: server.retrieves >= 2)  # submitted, recorded, polling
    _kill(proc)
    db = sqlite3.connect(_isolated_cache)
    (state, n, batch_id), = db.execute("SELECT state, n, batch_id FROM batches").fetchall()
    assert state in ("validating", "in_progress") and n == 32 and batch_id == server.created[0]
    assert db.execute("SELECT COUNT(*) FROM batch_requests").fetchone()[0] == 32
    db.close()
    server.release()
    done = _score(server, tmp_path / "run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "re-attached" in done.stderr
    assert len(server.uploads) == 1 and len(server.created) == 1, "nothing was submitted twice"
    assert server.calls == 0 and json.loads(done.stdout)["n_ok"] == 32
    listing = run_cli("batches", "--format", "json")
    rows = json.loads(listing.stdout)
    assert [(r["batch_id"], r["state"], r["n"], r["completed"], r["collected"]) for r in rows] == [
        (server.created[0], "completed", 32, 32, 1)]


def test_kill_while_creating_finds_the_batch_by_its_file(server: BatchServer, tmp_path: Path) -> None:
    server.create_delay = 30.0  # the server records the batch, then does not answer
    proc = _spawn(server, tmp_path / "run")
    assert server.created_event.wait(20)
    time.sleep(0.1)
    _kill(proc)
    server.create_delay = 0.0
    done = _score(server, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert len(server.uploads) == 1 and len(server.created) == 1, "the batch created before the kill was found"


def test_kill_during_download_downloads_again(server: BatchServer, tmp_path: Path) -> None:
    server.download_delay = 30.0
    proc = _spawn(server, tmp_path / "run")
    assert server.download_event.wait(20)
    _kill(proc)
    server.download_delay = 0.0
    done = _score(server, tmp_path / "run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert len(server.uploads) == 1 and len(server.created) == 1 and len(server.downloads) == 2
    assert json.loads(done.stdout)["n_ok"] == 32


def _custom_ids(server: BatchServer, n: int) -> list[str]:
    return [line["custom_id"] for line in server.lines_of(server.created[0])[:n]]


def test_failed_items_go_to_a_follow_up_batch_or_online(server: BatchServer, tmp_path: Path) -> None:
    keys = [alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:gpt-4o").items[i].request.cache_key("openai:gpt-4o")
            for i in range(3)]
    server.fail_items(keys, status=500)
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "a",
                            batch=BatchOptions(**OPTIONS))
    assert runs["model-a"].summary.n_ok == 32 and server.calls == 0
    assert [u["n"] for u in server.uploads] == [32, 3]
    assert {line["custom_id"] for line in server.uploads[1]["lines"]} == set(keys)
    # online fallback: the failed items are asked online, nothing more is submitted
    server.fail_items(keys, status=503)
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "b",
                            cache=tmp_path / "b.sqlite", batch=BatchOptions(fallback="online", **OPTIONS))
    assert runs["model-a"].summary.n_ok == 32 and server.calls == 3 and [u["n"] for u in server.uploads] == [32, 3, 32]
    # a request the provider rejects for good (400) is a failed judgment, not resubmitted
    server.fail_items(keys[:1], status=400)
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "c",
                            cache=tmp_path / "c.sqlite", batch=BatchOptions(**OPTIONS))
    summary = runs["model-a"].summary
    assert summary.n_failed == 1 and summary.failed_by_status == {"judge_error": 1}
    assert [u["n"] for u in server.uploads][-1] == 32


def test_parse_retries_become_a_follow_up_batch(tmp_path: Path) -> None:
    def flaky(body: dict) -> str:  # the first sample of every third prompt is no verdict; its retry is
        text = alignbench_responder(body)
        return "我无法给出评分。" if body.get("seed") is None and len(text) % 3 == 0 else text

    with BatchServer(flaky, timing=(0.02, 0.05, 0.02)) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "a",
                                batch=BatchOptions(**OPTIONS))
        retried = server.uploads[1]["n"]
        assert len(server.uploads) == 2 and retried > 0 and server.calls == 0
        assert all(line["body"]["seed"] is not None for line in server.uploads[1]["lines"])
        assert runs["model-a"].summary.n_ok == 32
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "b",
                                cache=tmp_path / "b.sqlite", batch=BatchOptions(fallback="online", **OPTIONS))
        assert len(server.uploads) == 3 and server.calls == retried and runs["model-a"].summary.n_ok == 32


def test_large_runs_are_split_by_request_count(tmp_path: Path) -> None:
    with BatchServer(timing=(0.01, 0.03, 0.01), max_requests=10) as server:
        runs = alignbench.score(QUESTIONS, [ANSWERS_A, ANSWERS_B], "openai:gpt-4o", base_url=server.url,
                                out=tmp_path / "runs", batch=BatchOptions(max_requests=10, **OPTIONS))
        assert sorted(u["n"] for u in server.uploads) == [4, 10, 10, 10, 10, 10, 10]
        assert all(server.batches[b]["status"] == "completed" for b in server.created)
        assert all(r.summary.n_ok == 32 for r in runs.values())


def test_expired_batch_says_what_to_run_next(server: BatchServer, tmp_path: Path) -> None:
    server.expire_next(1)
    first = _score(server, tmp_path / "run")
    assert first.returncode == 2
    assert "expired" in first.stderr and "16 of 32" in first.stderr and "run the same command again" in first.stderr
    assert not (tmp_path / "run" / "summary.json").exists()
    done = _score(server, tmp_path / "run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [u["n"] for u in server.uploads] == [32, 16], "only the requests without a reply are submitted again"
    assert json.loads(done.stdout)["n_ok"] == 32
    # with --batch-fallback online the same run sends what the expired batch left online
    server.expire_next(1)
    runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "b",
                            cache=tmp_path / "b.sqlite", batch=BatchOptions(fallback="online", **OPTIONS))
    assert runs["model-a"].summary.n_ok == 32 and server.calls == 16 and len(server.uploads) == 3


def test_no_wait_listing_cancel_and_online_fallback(server: BatchServer, tmp_path: Path) -> None:
    server.hold()
    first = _score(server, tmp_path / "run", "--no-wait")
    assert first.returncode == 75, first.stderr
    assert "run the same command again" in first.stderr and "32 request(s)" in first.stderr
    listing = run_cli("batches")
    assert listing.returncode == 0 and server.created[0] in listing.stdout and "in_progress" in listing.stdout
    again = _score(server, tmp_path / "run", "--no-wait")
    assert again.returncode == 75 and len(server.uploads) == 1  # still running: nothing new
    cancel = run_cli("batches", "cancel", server.created[0][:10])
    assert cancel.returncode == 0 and "cancelling" in cancel.stdout
    stopped = _score(server, tmp_path / "run")
    assert stopped.returncode == 2 and "was cancelled" in stopped.stderr and "16 of 32" in stopped.stderr
    assert "without --batch" in stopped.stderr
    server.release()
    done = _score(server, tmp_path / "run", "--no-wait", "--format", "json")
    assert done.returncode == 75  # the other 16 are in a new batch, which has not finished yet
    time.sleep(0.3)  # past the new batch's validating, running and finalizing
    done = _score(server, tmp_path / "run", "--no-wait", "--format", "json")
    assert done.returncode == 0, done.stderr  # finished: --no-wait collects it and writes the run
    assert [u["n"] for u in server.uploads] == [32, 16] and server.calls == 0
    assert json.loads(done.stdout)["n_ok"] == 32


def test_batch_needs_a_batch_api(tmp_path: Path) -> None:
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:gpt-4o", "--batch",
                   "--no-cache", "--judge-base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "needs the reply cache" in proc.stderr
