"""GLM judges through the real ``zhipuai`` SDK, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli
from stub_server import StubServer, alignbench_responder

from alignbench.judges import ModelConfigError, make_judge, resolve_model
from alignbench.judges.base import ModelCallError
from alignbench.judges.zhipuai_api import ZhipuAIChat
from alignbench.types import Decoding, ModelRequest

KEY = "some.test"
MESSAGES = ({"role": "system", "content": "你是公正的评委。"}, {"role": "user", "content": "请评价这个回答：长城很长。"})


def _judge(server: StubServer, concurrency: int = 4, timeout: float = 5.0, urls: list[str] | None = None) -> ZhipuAIChat:
    # named explicitly (as --api-key-env does): ZhipuAI's key otherwise goes only to open.bigmodel.cn
    config = resolve_model("glm-4-flash", base_url=urls or [server.root + "/api/paas/v4"],
                           concurrency=concurrency, timeout=timeout, api_key_env="ZHIPUAI_API_KEY",
                           api_key_explicit=True)
    judge = make_judge(config)
    assert isinstance(judge, ZhipuAIChat)
    return judge


def _request(i: int = 1, **decoding) -> ModelRequest:
    return ModelRequest(messages=MESSAGES, decoding=Decoding(max_tokens=256, **decoding), question_id=i)


async def _one(judge: ZhipuAIChat, request: ModelRequest):
    try:
        return await judge.complete(request)
    finally:
        await judge.aclose()


def test_round_trip_and_request_shape(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    judge = _judge(stub)
    request = _request()
    reply = asyncio.run(_one(judge, request))
    assert reply.text and reply.text.splitlines()[-1].startswith("{") and "综合得分" in reply.text
    assert reply.model == "glm-4-flash" and reply.endpoint == stub.root + "/api/paas/v4"
    assert reply.usage.prompt_tokens == sum(len(m["content"]) for m in MESSAGES) and reply.usage.completion_tokens > 0
    body, headers = stub.requests[0], stub.headers[0]
    assert body["model"] == "glm-4-flash" and body["messages"] == list(MESSAGES)
    assert body["do_sample"] is False  # temperature 0 becomes greedy decoding for GLM
    assert body["max_tokens"] == 256
    assert headers["authorization"] == f"Bearer {KEY}"
    assert request.messages == MESSAGES  # the SDK edits messages in place: ours were copies
    assert judge.fingerprint == "zhipuai:glm-4-flash"


def test_sdk_errors_map_to_judge_call_errors(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)

    def error(setup) -> ModelCallError:
        setup()
        with pytest.raises(ModelCallError) as info:
            asyncio.run(_one(_judge(stub, timeout=0.5), _request()))
        return info.value

    e = error(lambda: stub.fail_next(1, status=429, retry_after=0.5))
    assert e.retryable and not e.fatal and e.retry_after == pytest.approx(0.5) and str(e).startswith("429")
    for status in (500, 502, 503):
        e = error(lambda s=status: stub.fail_next(1, status=s))
        assert e.retryable and not e.fatal and str(e).startswith(str(status))
    e = error(lambda: stub.fail_next(1, status=401))
    assert e.fatal and not e.retryable and "ZHIPUAI_API_KEY" in str(e) and KEY not in str(e)
    e = error(lambda: stub.fail_next(1, status=400))
    assert not e.retryable and not e.fatal and not e.too_long
    too_long = json.dumps({"error": {"code": "1261", "message": "Prompt 超长"}}, ensure_ascii=False)
    e = error(lambda: stub.fail_next(1, status=400, body=too_long))
    assert e.too_long and not e.retryable
    unknown_model = json.dumps({"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}}, ensure_ascii=False)
    e = error(lambda: stub.fail_next(1, status=400, body=unknown_model))
    assert e.fatal and "模型不存在" in str(e)
    e = error(lambda: stub.malformed_next(1))
    assert e.retryable and str(e).startswith("malformed")
    e = error(lambda: stub.hang_next(1, 2.0))
    assert e.retryable and str(e).startswith("timed out")
    assert stub.calls == 10  # max_retries=0: one HTTP request per call, the runner owns retries


def test_connection_refused_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    with StubServer() as server:
        url = server.root + "/api/paas/v4"
    judge = make_judge(resolve_model("glm-4", base_url=[url]))
    with pytest.raises(ModelCallError) as info:
        asyncio.run(_one(judge, _request()))
    assert info.value.retryable and str(info.value).startswith("cannot connect")
    assert asyncio.run(make_judge(resolve_model("glm-4", base_url=[url])).check()) == [url]


def test_concurrency_calls_are_really_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK is blocking: 12 slots must mean 12 HTTP requests at once (more than asyncio's default
    thread pool gives on a 2-core machine), and never more."""
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    with StubServer(responder=alignbench_responder, latency=0.4) as server:
        judge = _judge(server, concurrency=12)

        async def go():
            try:
                return await asyncio.gather(*(judge.complete(_request(i)) for i in range(24)))
            finally:
                await judge.aclose()

        replies = asyncio.run(go())
    assert len(replies) == 24 and all(r.text for r in replies)
    assert server.max_in_flight == 12  # 12 at once (not waves of 6), never more; counted, not timed


def test_missing_key_fails_early_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match=r"ZHIPUAI_API_KEY is not set"):
        make_judge(resolve_model("glm-4"))
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "glm-4-plus",
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "ZHIPUAI_API_KEY is not set" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_score_end_to_end_with_faults(stub: StubServer, tmp_path: Path, _isolated_cache: Path) -> None:
    stub.fail_next(1, status=429, retry_after=0.2)
    stub.fail_next(1, status=500)
    stub.fail_next(1, status=503)
    stub.malformed_next(1)
    stub.hang_next(1, 3.0)
    out = tmp_path / "run"
    args = ("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "glm-4-flash",
            "--judge-base-url", stub.root + "/api/paas/v4", "--timeout", "1", "--concurrency", "4",
            "--out", str(out), "--format", "json")
    proc = run_cli(*args, env={"ZHIPUAI_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_failed"] == 0 and summary["overall"] is not None
    assert summary["usage"]["calls"] == 32 + 5 and summary["usage"]["retries"] == 5
    assert summary["run"]["judge"]["backend"] == "zhipuai" and summary["run"]["judge"]["model"] == "glm-4-flash"
    judgments = read_jsonl(out / "judgments.jsonl")
    assert len(judgments) == 32 and all(j["status"] == "ok" and j["judge"] == "glm-4-flash" for j in judgments)
    assert stub.calls == 37 and {r["model"] for r in stub.requests} == {"glm-4-flash"}
    for path in [*(p for p in out.rglob("*") if p.is_file()), _isolated_cache]:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in proc.stdout + proc.stderr
    again = run_cli(*args, env={"ZHIPUAI_API_KEY": KEY})  # the cache answers: no new calls
    assert again.returncode == 0 and stub.calls == 37 and json.loads(again.stdout)["usage"]["calls"] == 0


def test_bad_key_stops_the_run(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_always(401)
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "glm-4",
                   "--judge-base-url", stub.root + "/api/paas/v4", "--concurrency", "2",
                   "--out", str(tmp_path / "run"), env={"ZHIPUAI_API_KEY": "wrong.key"})
    assert proc.returncode == 2 and "401" in proc.stderr and "wrong.key" not in proc.stderr
    assert stub.calls <= 3  # stopped at once (the calls already under way), not 32 failing judgments


def test_zhipuai_base_url_env_is_honoured(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_BASE_URL", stub.root + "/api/paas/v4")  # a gateway; no key needed then
    judge = make_judge(resolve_model("glm-4-plus"))
    reply = asyncio.run(_one(judge, _request()))
    assert reply.text and reply.endpoint == stub.root + "/api/paas/v4"
    assert stub.requests[0]["model"] == "glm-4-plus"
