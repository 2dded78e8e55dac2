"""Never invent, never leak, never hang: hostile servers and replies, secrets, deadlines, odd names,
broken caches and exit codes, each against real loopback servers and the real CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import EndlessServer, StubServer, alignbench_responder

from alignbench.engine import AdaptiveLimit

SECRET = "sk-hostile-SECRET-0123456789"


def score(url: str, out: Path, *extra: str, answers: Path = ANSWERS_A, env: dict | None = None):
    return run_cli("score", "-q", str(QUESTIONS), "-a", str(answers), "--judge", "openai:judge",
                   "--judge-base-url", url, "--out", str(out), *extra, env=env)


def completion(content: object, finish: str = "stop") -> str:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "judge",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": finish}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def one_answer(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "one.jsonl", read_jsonl(ANSWERS_A)[:1])


# -- secrets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"MY_KEY": SECRET, "OPENAI_API_KEY": SECRET},
                                 {"MY_KEY": SECRET}],  # a key named by --api-key-env only, not a key-like name
                         ids=["key-like-name", "any-name"])
def test_keys_and_url_credentials_never_reach_output(tmp_path: Path, env: dict) -> None:
    def echo_secret(body: dict) -> str:  # a server that quotes the key back inside its verdict
        return f"你的密钥是 {SECRET}，分析……\n{{'综合得分': 6}}"

    with StubServer(responder=echo_secret) as stub:
        url = stub.url.replace("http://", f"http://user:{SECRET}@")
        out = tmp_path / "run"
        proc = score(url, out, "--api-key-env", "MY_KEY", env=env)
        assert proc.returncode == 0, proc.stderr
        report = run_cli("report", str(out), "--no-charts")
        assert report.returncode == 0, report.stderr
        shown = run_cli("show", str(out), "--question-id", "1")
        plain_url = stub.url
    texts = [proc.stdout, proc.stderr, report.stdout, report.stderr, shown.stdout, shown.stderr]
    for path in [*out.rglob("*"), tmp_path / "cache.sqlite"]:
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    assert all(SECRET not in t for t in texts)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["judge"]["base_url"] == [plain_url]  # credentials stripped from the manifest
    assert "***" in read_jsonl(out / "judgments.jsonl")[0]["raw"]


def test_a_dead_server_url_with_credentials_is_not_printed(tmp_path: Path) -> None:
    proc = score(f"http://admin:{SECRET}@127.0.0.1:9/v1", tmp_path / "r")
    assert proc.returncode == 2 and "no judge server answers" in proc.stderr and SECRET not in proc.stderr


# -- deadlines -------------------------------------------------------------------------------------------


def test_timeout_bounds_the_whole_request(tmp_path: Path) -> None:
    """The reply would take 14 hours at this pace: a judge_error naming --timeout can only come from the bound
    on the whole attempt (no wall-clock bound here: a loaded machine is slow, never 14 hours slow)."""
    drip = EndlessServer(byte_every=0.5, length=100_000)
    try:
        proc = score(drip.url, tmp_path / "r", "--timeout", "1.5", "--attempts", "1", "--format", "json",
                     answers=one_answer(tmp_path))
    finally:
        drip.close()
    assert proc.returncode == 3
    judgment = read_jsonl(tmp_path / "r" / "judgments.jsonl")[0]
    assert judgment["status"] == "judge_error" and "--timeout 1.5" in judgment["detail"]
    assert "--concurrency" in judgment["detail"] and judgment["attempts"] == 1


def test_retry_after_beyond_the_cap_ends_the_request(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder) as stub:
        stub.fail_next(3, status=429, retry_after=100000)
        proc = score(stub.url, tmp_path / "r", "--max-failed", "3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    failed = [j for j in read_jsonl(tmp_path / "r" / "judgments.jsonl") if j["status"] != "ok"]
    assert len(failed) == 3 and all("asked to wait 100000 s" in j["detail"] for j in failed)
    assert all(j["attempts"] == 1 for j in failed) and stub.calls == 32  # no request waited and asked again


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_timeout_that_is_not_positive_is_refused(value: str, tmp_path: Path) -> None:
    proc = score("http://127.0.0.1:9/v1", tmp_path / "r", "--timeout", value)
    assert proc.returncode == 2 and "--timeout" in proc.stderr


def test_adaptive_limit_halves_on_overload_and_grows_back() -> None:
    async def go() -> list[int]:
        limit = AdaptiveLimit(16, cooldown=0.0)
        seen = [limit.limit]
        limit.overloaded()
        seen.append(limit.limit)
        limit.overloaded()
        seen.append(limit.limit)
        for _ in range(4):
            await limit.succeeded()
        seen.append(limit.limit)
        limit.cap(3)
        seen.append(limit.limit)
        return seen

    assert asyncio.run(go()) == [16, 8, 4, 5, 3]


def test_a_server_failing_at_once_is_not_asked_two_at_a_time_for_good() -> None:
    """While learning a server's parallelism, an error the server answered with (a 500) shows it was not left
    waiting, as a quick reply does: the limit doubles after as many as it allows. A timeout still halves it."""
    from alignbench.engine import AdaptiveLimit

    async def go() -> list[int]:
        limit = AdaptiveLimit(16)
        limit.learn_from_latency(None)
        seen = [limit.limit]
        for _ in range(3):
            for _ in range(limit.limit):
                limit.answered_at_once()
            seen.append(limit.limit)
        limit.overloaded()
        return [*seen, limit.limit]

    assert asyncio.run(go()) == [2, 4, 8, 16, 8]


@pytest.mark.parametrize("advertised", [True, False])
def test_a_busy_one_slot_server_is_not_flooded(advertised: bool, tmp_path: Path) -> None:
    """A server that runs one request at a time (llama.cpp with one slot): requests sent beyond that queue
    there, time out, are retried, and the server still works on the abandoned ones. A server that says
    how many slots it has gets no more; one that does not is backed off from after the first timeouts."""
    answers = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:12])
    with StubServer(responder=alignbench_responder, latency=0.3) as stub:
        stub.slots, stub.advertise_slots = 1, advertised
        stub.stop()
        stub.start()
        proc = score(stub.url, tmp_path / "r", "--timeout", "2", "--concurrency", "8", "--format", "json",
                     answers=answers)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_ok"] == 12  # every answer judged in the end
    if advertised:
        assert stub.calls == 12 and stub.max_in_flight == 1  # nothing wasted
    else:
        assert stub.calls <= 24  # some waste before backing off, bounded


# -- reply shapes ---------------------------------------------------------------------------------------


def test_odd_reply_shapes_are_statuses_never_crashes(tmp_path: Path) -> None:
    answers = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:4])
    with StubServer(responder=alignbench_responder) as stub:
        stub.fail_next(1, status=200, body=completion([{"type": "text", "text": "分析。\n{'综合得分': 7}"}]))
        stub.fail_next(1, status=200, body=completion(42))
        stub.fail_next(1, status=200, body=completion("示例格式：{'综合得分': 10}\n分析：回答……\n{'综合得分': 3", "length"))
        proc = score(stub.url, tmp_path / "r", "--concurrency", "1", "--parse-retries", "0", "--max-failed", "2",
                     "--format", "json", answers=answers)
    assert proc.returncode == 0, proc.stderr
    by_q = {j["question_id"]: j for j in read_jsonl(tmp_path / "r" / "judgments.jsonl")}
    assert by_q[1]["status"] == "ok" and by_q[1]["overall"] == 7  # text parts are joined
    assert by_q[2]["status"] == "judge_error" and "type int" in by_q[2]["detail"]
    assert by_q[3]["status"] == "truncated" and by_q[3]["overall"] is None and "--max-tokens" in by_q[3]["detail"]
    assert by_q[3]["raw"].startswith("示例格式")  # kept, never scored


def test_a_reply_over_32_kb_is_parsed_off_the_event_loop() -> None:
    """A 40 KB reply is read in a worker thread while the event loop goes on (the other requests in flight
    are not stalled); a short reply is read on the loop itself. Both verdicts are read from the real replies
    of a loopback server through the real openai client."""
    from alignbench.cache import NullStore
    from alignbench.engine import Engine, Exchange
    from alignbench.judges.openai_api import OpenAIChat
    from alignbench.parse import parse_scores
    from alignbench.types import ModelRequest

    padding = "评价：回答的每一步都要核对。" * 3_000  # 42,000 characters of analysis before the verdict
    assert len(padding) > 32_000

    def responder(body: dict) -> str:
        asked = body["messages"][-1]["content"]
        return (padding if asked == "long" else "简短的评价。") + f"\n{{'综合得分': {7 if asked == 'long' else 4}}}"

    seen: dict[str, tuple[bool, bool]] = {}  # item -> (read on the loop's thread, the loop ran meanwhile)

    async def go() -> list:
        loop_thread = threading.get_ident()
        ticked = threading.Event()
        stop = asyncio.Event()

        async def ticker() -> None:  # the event loop's heartbeat while the replies are read
            while not stop.is_set():
                ticked.set()
                await asyncio.sleep(0.005)

        def read(item: str, exchange: Exchange, previous: object) -> float | None:
            ticked.clear()
            on_loop = threading.get_ident() == loop_thread
            # off the loop, the heartbeat goes on while this read runs; on the loop it cannot (no hang: bounded)
            seen[item] = (on_loop, False if on_loop else ticked.wait(20))
            return parse_scores(exchange.last.text, ()).overall

        beat = asyncio.create_task(ticker())
        with StubServer(responder=responder) as stub:
            judge = OpenAIChat("t", "m", [stub.url], "k", timeout=30)
            try:
                return await Engine(judge, NullStore()).map(
                    ["short", "long"], lambda item, _: ModelRequest(messages=({"role": "user", "content": item},)),
                    read, failed=lambda overall: overall is None)
            finally:
                stop.set()
                await beat
                await judge.aclose()

    assert asyncio.run(go()) == [4, 7]
    assert seen == {"short": (True, False), "long": (False, True)}


def test_odd_model_names_print_literally(tmp_path: Path) -> None:
    rows = [{**r, "model_id": "[bold red]forged[/] [/]"} for r in read_jsonl(ANSWERS_A)]
    with StubServer(responder=alignbench_responder) as stub:
        proc = score(stub.url, tmp_path / "r", answers=write_jsonl(tmp_path / "a.jsonl", rows))
    assert proc.returncode == 0, proc.stderr
    assert "[bold red]forged[/] [/]" in proc.stdout and "Traceback" not in proc.stderr


# -- exit codes ------------------------------------------------------------------------------------------


def test_exit_code_3_only_beyond_max_failed(tmp_path: Path) -> None:
    def flaky(body: dict) -> str:
        text = alignbench_responder(body)
        return "我拒绝评分。" if "1+1" in json.dumps(body, ensure_ascii=False) else text

    with StubServer(responder=alignbench_responder) as stub:
        stub.fail_next(2, status=400, body='{"error": {"message": "bad request"}}')
        proc = score(stub.url, tmp_path / "a", "--concurrency", "1", "--format", "json")
        assert proc.returncode == 3 and "2 of 32 judgments failed" in proc.stderr  # 5% of 32 allows 1
        assert json.loads(proc.stdout)["n_failed"] == 2  # the summary is still written and printed
        assert (tmp_path / "a" / "summary.json").is_file()
        stub.fail_next(2, status=400, body='{"error": {"message": "bad request"}}')
        assert score(stub.url, tmp_path / "b", "--concurrency", "1", "--max-failed", "2", "--no-cache").returncode == 0
        stub.fail_next(2, status=400, body='{"error": {"message": "bad request"}}')
        assert score(stub.url, tmp_path / "c", "--concurrency", "1", "--max-failed", "10%",
                     "--no-cache").returncode == 0
    assert score("http://127.0.0.1:9/v1", tmp_path / "d", "--max-failed", "lots").returncode == 2
    del flaky


# -- caches ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "directory", "truncated"])
def test_a_broken_cache_is_one_line(kind: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    if kind == "directory":
        cache.mkdir()
    elif kind == "garbage":
        cache.write_bytes(b"not a database at all" * 100)
    else:
        with StubServer(responder=alignbench_responder) as stub:
            assert score(stub.url, tmp_path / "r", "--cache", str(cache)).returncode == 0
        cache.write_bytes(cache.read_bytes()[:3000])
    with StubServer(responder=alignbench_responder) as stub:
        proc = score(stub.url, tmp_path / "r2", "--cache", str(cache))
        info = run_cli("cache", "info", "--cache", str(cache))
        calls = stub.calls
    for p in (proc, info):
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert p.returncode == 2 and len(lines) == 1 and str(cache) in lines[0] and "--no-cache" in lines[0], p.stderr
    assert calls == 0  # refused before any judge call


def test_refresh_failed_asks_again_only_where_the_reply_was_unusable(tmp_path: Path) -> None:
    bad = {"on": True}

    def sometimes_unreadable(body: dict) -> str:
        text = alignbench_responder(body)
        first_question = "1 + 1" in json.dumps(body, ensure_ascii=False) or body["messages"][-1]["content"].find(
            "题目") < 0
        return "我觉得还行。" if bad["on"] and first_question else text

    answers = write_jsonl(tmp_path / "a.jsonl", read_jsonl(ANSWERS_A)[:6])
    with StubServer(responder=lambda b: "我觉得还行。" if bad["on"] else alignbench_responder(b)) as stub:
        proc = score(stub.url, tmp_path / "r", "--max-failed", "100%", "--format", "json", answers=answers)
        assert json.loads(proc.stdout)["n_failed"] == 6 and stub.calls == 12  # first try + one parse retry
        bad["on"] = False
        again = score(stub.url, tmp_path / "r", "--max-failed", "100%", "--format", "json", answers=answers)
        assert json.loads(again.stdout)["n_failed"] == 6 and stub.calls == 12  # replayed from the cache
        fixed = score(stub.url, tmp_path / "r", "--refresh", "failed", "--format", "json", answers=answers)
        assert fixed.returncode == 0, fixed.stderr
        assert json.loads(fixed.stdout)["n_failed"] == 0 and stub.calls == 18
        usage = json.loads(fixed.stdout)["usage"]
        assert usage["calls"] == 6
    del sometimes_unreadable


# -- identity -------------------------------------------------------------------------------------------


def test_a_pool_serving_different_models_is_refused_and_a_foreign_model_warned(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder) as a, StubServer(responder=alignbench_responder) as b:
        b.models = ["other-model"]
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:stub-model",
                       "--judge-base-url", a.url, "--judge-base-url", b.url, "--out", str(tmp_path / "r"))
        assert proc.returncode == 2 and "serve different models" in proc.stderr and a.calls + b.calls == 0
        proc = score(a.url, tmp_path / "w")
        assert proc.returncode == 0 and "does not list model 'judge'" in proc.stderr
    summary = json.loads((tmp_path / "w" / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["served_models"] == {"judge": 32}


def test_an_edited_template_changes_the_rubric_stamp(tmp_path: Path) -> None:
    from alignbench.rubrics import load_rubric

    copy = tmp_path / "mine"
    shutil.copytree(load_rubric("alignbench").folder, copy)
    before = load_rubric(str(copy)).id
    template = copy / "judge.user.zh.j2"
    template.write_text(template.read_text(encoding="utf-8") + "\n请认真评分。", encoding="utf-8")
    load_rubric.cache_clear()
    after = load_rubric(str(copy)).id
    assert before.split("+")[0] == after.split("+")[0] and before != after


# -- printing ---------------------------------------------------------------------------------------------


def test_prompt_is_printed_exactly(tmp_path: Path) -> None:
    text = run_cli("prompt", "-q", str(QUESTIONS), "-i", "3", "--judge", "gpt-4o")
    as_json = run_cli("prompt", "-q", str(QUESTIONS), "-i", "3", "--judge", "gpt-4o", "--format", "json")
    messages = json.loads(as_json.stdout)["messages"]
    expected = "".join(f"----- {m['role']} -----\n{m['content']}\n" for m in messages) + "-----\n"
    assert text.stdout == expected


def test_progress_lines_on_a_pipe() -> None:
    import importlib
    import io

    from rich.console import Console

    from alignbench.engine import Event

    app = importlib.import_module("alignbench.cli.app")

    saved = app.err_console
    app.err_console = Console(file=(buffer := io.StringIO()), width=200)
    try:
        with app._progress_lines(every=0.2) as update:
            update(Event(label="judging", total=10, done=3, failed=1, cached=2))
            time.sleep(0.5)
    finally:
        app.err_console = saved
    assert "judging: 3/10 done, 1 failed, 2 from the cache" in buffer.getvalue()


def test_a_full_disk_keeps_every_reply_and_says_so(tmp_path: Path) -> None:
    import alignbench
    from alignbench.cache import ReplyStore

    store = ReplyStore(tmp_path / "small.sqlite")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "database or disk is full"
    with StubServer(responder=alignbench_responder) as stub:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                                cache=store)
    store.close()
    summary = runs["model-a"].summary
    assert summary.n_ok == 32  # every reply received was used
    notes = " ".join(summary.run.notes)
    assert "could not be stored in the cache" in notes and "full" in notes


def test_chart_labels_are_literal(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from alignbench.reporting.charts import Series, render_charts
    from alignbench.rubrics import load_rubric

    rubric = load_rubric("alignbench")
    cats = {c: 5.0 for c in rubric.category_names()}
    drawn = render_charts([Series("$\\frac{1}$ [/]", cats, {}), Series("b", cats, {})], rubric, tmp_path, "c")
    assert all(p.is_file() for p in drawn.files)
