"""Several OpenAI-compatible servers serving one judge (``--judge-base-url`` repeated or a comma
list): spread, per-server concurrency, question affinity, a failing server rested while the other
carries on. Real servers on 127.0.0.1, the real openai client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, run_cli
from stub_server import StubServer, alignbench_responder

from alignbench.judges import make_judge, resolve_model
from alignbench.judges.openai_api import OpenAIChat
from alignbench.judges.pool import Endpoint, EndpointPool
from alignbench.types import Decoding, ModelRequest


@pytest.fixture
def pair():
    with StubServer(responder=alignbench_responder, latency=0.05) as a, \
            StubServer(responder=alignbench_responder, latency=0.05) as b:
        yield a, b


def _judge(urls: list[str], concurrency: int) -> OpenAIChat:
    judge = make_judge(resolve_model("openai:judge-x", base_url=urls, concurrency=concurrency))
    assert isinstance(judge, OpenAIChat)
    return judge


def _request(qid: int, i: int = 0) -> ModelRequest:
    return ModelRequest(messages=({"role": "user", "content": f"问题{qid} 回答{i} 事实正确性 满足用户需求"},),
                        decoding=Decoding(max_tokens=64), question_id=qid)


async def _all(judge: OpenAIChat, requests: list[ModelRequest]):
    try:
        return await asyncio.gather(*(judge.complete(r) for r in requests))
    finally:
        await judge.aclose()


def test_requests_spread_and_concurrency_is_per_server(pair) -> None:
    a, b = pair
    judge = _judge([a.url, b.url], concurrency=3)
    assert judge.capacity == 6
    replies = asyncio.run(_all(judge, [_request(q) for q in range(40)]))
    assert len(replies) == 40 and all(r.text for r in replies)
    assert a.calls + b.calls == 40 and a.calls >= 10 and b.calls >= 10
    assert a.max_in_flight <= 3 and b.max_in_flight <= 3  # never more than the per-server limit
    assert a.max_in_flight == 3 and b.max_in_flight == 3  # and each limit was used
    assert {r.endpoint for r in replies} == {a.url, b.url}


def test_a_question_sticks_to_its_server_when_there_is_room(pair) -> None:
    """Answers to one question share the prompt prefix: they go where that prefix is cached."""
    a, b = pair
    judge = _judge([a.url, b.url], concurrency=8)

    async def go():
        out = []
        try:
            for qid in (4, 7, 10, 13):  # several models' answers to each question, together
                out += await asyncio.gather(*(judge.complete(_request(qid, i)) for i in range(4)))
        finally:
            await judge.aclose()
        return out

    replies = asyncio.run(go())
    by_question: dict[int, set[str]] = {}
    for qid, reply in zip((q for q in (4, 7, 10, 13) for _ in range(4)), replies, strict=True):
        by_question.setdefault(qid, set()).add(reply.endpoint)
    assert by_question == {4: {a.url}, 7: {b.url}, 10: {a.url}, 13: {b.url}}


def test_failing_server_is_rested_and_probed_one_at_a_time(pair) -> None:
    a, b = pair
    a.latency = 0.1  # each phase outlasts the longest rest (0.4 s), so the rested server is probed in it
    b.fail_always(500)
    judge = _judge([a.url, b.url], concurrency=4)
    judge.pool.base_rest, judge.pool.max_rest = 0.2, 0.4

    async def with_retries(request: ModelRequest):
        for _ in range(8):
            try:
                return await judge.complete(request)
            except Exception:
                await asyncio.sleep(0.05)
        raise AssertionError("never answered")

    async def phase(n: int, offset: int):
        return await asyncio.gather(*(with_retries(_request(q)) for q in range(offset, offset + n)))

    async def go():
        first = await phase(24, 0)
        b.reset()  # keep failing, but measure the second phase alone
        b.fail_always(500)
        second = await phase(24, 100)
        probing = (b.max_in_flight, b.calls)
        b.heal()
        await asyncio.sleep(0.5)  # past the longest rest
        third = await phase(24, 200)
        await judge.aclose()
        return first, second, third, probing

    first, second, third, (max_in_flight, calls) = asyncio.run(go())
    assert all(r.endpoint == a.url for r in first + second)  # every answer scored by the healthy one
    assert max_in_flight == 1  # a rested server gets single probes, not a full wave of requests
    assert 1 <= calls <= 6
    assert any(r.endpoint == b.url for r in third)  # healed: back in rotation
    stats = {s["url"]: s for s in judge.pool.stats()}
    assert stats[b.url]["failed"] >= 1 and stats[a.url]["failed"] == 0


def test_pool_waits_for_a_rest_to_end_when_every_server_rests() -> None:
    async def go():
        pool = EndpointPool([Endpoint("x", 1, None), Endpoint("y", 1, None)], base_rest=0.2)
        for url in ("x", "y"):
            ep = await pool.acquire(0 if url == "x" else 1)
            await pool.release(ep, ok=False)
        loop = asyncio.get_running_loop()
        started = loop.time()
        ep = await pool.acquire(None)
        return loop.time() - started, ep

    waited, ep = asyncio.run(go())
    assert 0.1 < waited < 1.0 and ep.probing


def test_score_cli_over_two_servers_one_failing(pair, tmp_path: Path) -> None:
    a, b = pair
    b.fail_always(500)
    out = tmp_path / "runs"
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-a", str(ANSWERS_B),
                   "--judge", "openai:judge-x", "--judge-base-url", a.url, "--judge-base-url", b.url,
                   "--concurrency", "4", "--out", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)["models"]
    assert all(m["n_failed"] == 0 and m["overall"] is not None for m in models.values())
    judgments = [j for run in out.iterdir() for j in read_jsonl(run / "judgments.jsonl")]
    assert len(judgments) == 64 and all(j["status"] == "ok" for j in judgments)
    assert a.calls == 64 and 1 <= b.calls <= 16  # the broken server was rested, not hammered


def test_comma_list_of_servers(pair, tmp_path: Path) -> None:
    a, b = pair
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:judge-x",
                   "--judge-base-url", f"{a.url},{b.url}", "--concurrency", "2", "--out", str(tmp_path / "r"),
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["run"]["judge"]["base_url"] == [a.url, b.url]
    assert a.calls + b.calls == 32 and a.calls >= 8 and b.calls >= 8
    assert a.max_in_flight <= 2 and b.max_in_flight <= 2


def test_a_retry_avoids_the_server_that_just_failed_it() -> None:
    async def go():
        pool = EndpointPool([Endpoint("x", 2, None), Endpoint("y", 2, None)], base_rest=0.0)
        first = await pool.acquire(affinity=1, key="q1")  # question 1 prefers y
        await pool.release(first, ok=False, key="q1")
        await asyncio.sleep(0.01)  # y's (zero-length) rest is over: it could take the request again
        retry = await pool.acquire(affinity=1, key="q1")
        other = await pool.acquire(affinity=1, key="q2")  # another request still prefers y
        return first.url, retry.url, other.url

    assert asyncio.run(go()) == ("y", "x", "y")
