"""Tests for the OpenAI-compatible stub server, driven by the real openai / zhipuai SDKs."""

from __future__ import annotations

import ast
import asyncio
import json
import time
import urllib.request

import openai
import pytest
import zhipuai
from zhipuai.core import _errors as zerr

try:
    from stub_server import ALIGNBENCH_DIMENSIONS, StubServer, alignbench_responder, spawn_stub
except ImportError:  # tests/ imported as a package
    from tests.stub_server import ALIGNBENCH_DIMENSIONS, StubServer, alignbench_responder, spawn_stub

MSG = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "请用中文介绍一下长城。"}]


@pytest.fixture
def server():
    with StubServer(responder=lambda body: "长城是中国古代的军事防御工程。") as srv:
        yield srv


def _oa(srv: StubServer, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.url, api_key="sk-test", max_retries=kw.pop("max_retries", 0), **kw)


def _zp(srv: StubServer, **kw) -> zhipuai.ZhipuAI:
    return zhipuai.ZhipuAI(
        api_key="abc.def", base_url=srv.root + "/api/paas/v4", max_retries=kw.pop("max_retries", 0), **kw
    )


def _chat(client: openai.AsyncOpenAI, **kw):
    return client.chat.completions.create(
        model=kw.pop("model", "judge-x"), messages=kw.pop("messages", MSG), **kw
    )


async def _raises(coro, exc_type):
    with pytest.raises(exc_type) as info:
        await coro
    return info.value


# --------------------------------------------------------------------------- openai


def test_openai_chinese_round_trip_and_usage(server):
    async def go():
        async with _oa(server) as client:
            return await _chat(client)

    resp = asyncio.run(go())
    text = "长城是中国古代的军事防御工程。"
    assert resp.choices[0].message.content == text
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "judge-x"
    assert resp.object == "chat.completion"
    prompt_chars = len("你是助手") + len("请用中文介绍一下长城。")
    assert resp.usage.prompt_tokens == prompt_chars
    assert resp.usage.completion_tokens == len(text)
    assert resp.usage.total_tokens == prompt_chars + len(text)
    assert server.calls == 1
    assert server.requests[0]["messages"] == MSG
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_raw_http_utf8_and_models(server):
    req = urllib.request.Request(
        server.url + "/chat/completions",
        data=json.dumps({"model": "m", "messages": MSG}, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert int(resp.headers["Content-Length"]) == len(raw)
    assert "长城".encode() in raw  # not \u-escaped
    with urllib.request.urlopen(server.url + "/models", timeout=5) as resp:
        models = json.loads(resp.read())
    assert models["object"] == "list" and models["data"][0]["object"] == "model"


def test_openai_streaming(server):
    async def go():
        async with _oa(server) as client:
            stream = await _chat(client, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(go()) == "长城是中国古代的军事防御工程。"


def test_openai_faults_in_fifo_order(server):
    server.fail_next(1, status=429, retry_after=7)
    server.fail_next(1, status=500)
    server.malformed_next(1)
    server.fail_next(1, status=400, body='{"error": {"message": "坏请求", "type": "invalid_request_error"}}')

    async def go():
        async with _oa(server) as client:
            rate = await _raises(_chat(client), openai.RateLimitError)
            internal = await _raises(_chat(client), openai.InternalServerError)
            # openai does NOT wrap an unparsable 200 body: the json error escapes as-is
            bad_json = await _raises(_chat(client), json.JSONDecodeError)
            bad_req = await _raises(_chat(client), openai.BadRequestError)
            ok = await _chat(client)
            return rate, internal, bad_json, bad_req, ok

    rate, internal, bad_json, bad_req, ok = asyncio.run(go())
    assert rate.status_code == 429 and rate.response.headers["retry-after"] == "7"
    assert rate.body["code"] == "rate_limit_exceeded"
    assert internal.status_code == 500
    assert isinstance(bad_json, ValueError)
    assert "坏请求" in bad_req.message
    assert ok.choices[0].message.content.startswith("长城")
    assert server.calls == 5


def test_openai_retry_honours_retry_after(server):
    server.fail_next(2, status=429, retry_after=0.1)

    async def go():
        async with _oa(server, max_retries=2) as client:
            t0 = time.perf_counter()
            resp = await _chat(client)
            return resp, time.perf_counter() - t0

    resp, elapsed = asyncio.run(go())
    assert resp.choices[0].message.content.startswith("长城")
    assert server.calls == 3
    assert elapsed >= 0.2  # waited as told; a loaded machine may wait longer
    assert [h["x-stainless-retry-count"] for h in server.headers] == ["0", "1", "2"]


def test_fail_always_heal_and_responder_error(server):
    async def go():
        async with _oa(server) as client:
            server.fail_always(503)
            for _ in range(3):
                err = await _raises(_chat(client), openai.InternalServerError)
                assert err.status_code == 503
            server.heal()
            await _chat(client)

            def boom(body):
                raise RuntimeError("评分器坏了")

            server.responder = boom
            return await _raises(_chat(client), openai.InternalServerError)

    err = asyncio.run(go())
    assert "评分器坏了" in err.message
    assert server.calls == 5


def test_openai_hang_times_out(server):
    server.hang_next(1, 2.0)

    async def go():
        async with _oa(server, timeout=0.2) as client:
            # the hang lasts 2 s: a timeout error can only come from the 0.2 s timeout (counted, not timed)
            await _raises(_chat(client), openai.APITimeoutError)
            return await _chat(client)  # the following request is answered normally

    ok = asyncio.run(go())
    assert ok.choices[0].message.content.startswith("长城")


def test_concurrency_max_in_flight(server):
    server.latency = 0.2

    async def go():
        async with _oa(server) as client:
            return await asyncio.gather(
                *[_chat(client, messages=[{"role": "user", "content": f"问题{i}"}]) for i in range(20)]
            )

    results = asyncio.run(go())
    assert len(results) == 20
    assert server.max_in_flight >= 10  # 20 x 0.2 s run in parallel, not serially (counted, not timed)
    assert server.in_flight == 0
    assert sorted(r["messages"][0]["content"] for r in server.requests) == sorted(
        f"问题{i}" for i in range(20)
    )


def test_64_concurrent_connections(server):
    server.latency = 0.3

    async def go():
        async with _oa(server) as client:
            return await asyncio.gather(*[_chat(client) for _ in range(64)])

    assert len(asyncio.run(go())) == 64
    assert server.calls == 64 and server.max_in_flight >= 32  # served at once, not one by one (counted, not timed)


# --------------------------------------------------------------------------- zhipuai


def test_zhipuai_round_trip_and_auth(server):
    client = _zp(server)
    resp = client.chat.completions.create(model="glm-4", messages=MSG)
    assert resp.choices[0].message.content == "长城是中国古代的军事防御工程。"
    assert resp.model == "glm-4"
    assert resp.usage.prompt_tokens == len("你是助手") + len("请用中文介绍一下长城。")
    assert resp.usage.completion_tokens == len("长城是中国古代的军事防御工程。")
    # zhipuai 2.1.5 sends the raw api key by default (disable_token_cache=True), no JWT
    assert server.headers[0]["authorization"] == "Bearer abc.def"
    assert server.requests[0]["messages"] == MSG

    jwt_client = _zp(server, disable_token_cache=False)  # signs a JWT from "id.secret"
    jwt_client.chat.completions.create(model="glm-4", messages=MSG)
    assert server.headers[1]["authorization"].startswith("Bearer eyJ")


def test_zhipuai_error_mapping(server):
    client = _zp(server, timeout=0.2)
    cases = [
        (429, zerr.APIReachLimitError),
        (500, zerr.APIInternalError),
        (503, zerr.APIServerFlowExceedError),
        (400, zerr.APIRequestFailedError),
        (502, zerr.APIStatusError),
    ]
    for status, exc_type in cases:
        server.fail_next(1, status=status)
        with pytest.raises(exc_type) as info:
            client.chat.completions.create(model="glm-4", messages=MSG)
        assert info.value.status_code == status
    server.malformed_next(1)
    with pytest.raises(json.JSONDecodeError):  # not wrapped by zhipuai either
        client.chat.completions.create(model="glm-4", messages=MSG)
    server.hang_next(1, 2.0)
    with pytest.raises(zerr.APITimeoutError):
        client.chat.completions.create(model="glm-4", messages=MSG)
    assert server.calls == len(cases) + 2  # max_retries=0 is honoured: exactly one request each


# --------------------------------------------------------------------------- alignbench responder / CLI


def test_alignbench_responder_is_deterministic():
    prompt = "请根据以下维度评分：清晰度、事实正确性，以及满足用户需求。公平与可负责程度也要考虑。"
    body = {"messages": [{"role": "system", "content": "评委"}, {"role": "user", "content": prompt}]}
    text = alignbench_responder(body)
    assert text == alignbench_responder(body)
    scores = ast.literal_eval(text.strip().splitlines()[-1])
    assert list(scores) == ["清晰度", "事实正确性", "满足用户需求", "公平与可负责程度", "综合得分"]
    assert all(3 <= v <= 9 for v in scores.values())
    other = alignbench_responder(
        {"messages": [{"role": "user", "content": "其他问题：" + "、".join(ALIGNBENCH_DIMENSIONS)}]}
    )
    assert list(ast.literal_eval(other.splitlines()[-1]))[:-1] == list(ALIGNBENCH_DIMENSIONS)


def test_spawn_stub_subprocess():
    proc, url = spawn_stub(latency=0.0, reply="alignbench")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")

        async def go():
            async with openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
                models = await client.models.list()
                resp = await client.chat.completions.create(
                    model="judge", messages=[{"role": "user", "content": "维度：事实正确性、创造性"}]
                )
                return models, resp

        models, resp = asyncio.run(go())
        assert len(models.data) >= 1
        scores = ast.literal_eval(resp.choices[0].message.content.splitlines()[-1])
        assert list(scores) == ["事实正确性", "创造性", "综合得分"]
    finally:
        proc.kill()
        proc.wait(timeout=5)
