"""``--batch`` carries the online request: structured output, log-probabilities, ZhipuAI's decoding rewrite,
and keeps secrets out of everything it writes. Real openai and zhipuai SDKs against the loopback servers
(tests/stub_server.py records what an online call posts; tests/batch_server.py keeps every uploaded line).

What must hold: a batch line's body is the body the online client posts for the same request; a batch reply
is read as an online one (the same judgment, expected scores included); a feature the provider refuses for
an item is asked again without it, with the reason on the judgment; a reply quoting the key puts it into no
file, database or printed line.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from batch_server import BatchServer
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli
from protocol_judge import ProtocolJudge
from stub_server import StubServer, alignbench_responder

import alignbench
from alignbench.batch import BatchOptions, BatchPending
from alignbench.judges import key_to_send, resolve_model
from alignbench.judges.openai_api import OpenAIChat
from alignbench.judges.zhipuai_api import ZhipuAIChat
from alignbench.types import Decoding, ModelRequest

OPTIONS = {"poll": (0.02, 0.1)}
FAST = {"ALIGNBENCH_BATCH_POLL": "0.02,0.1"}
SECRET = "sk-batch-ECHOED-0123456789abcdef"
SCHEMA = {"type": "object", "properties": {"overall": {"type": "object", "properties": {
    "analysis": {"type": "string"}, "score": {"enum": list(range(1, 11))}}}}}


def _judged(runs: dict) -> list[tuple]:
    """What a judgment says, usage and timing aside (the online stub reports no cached tokens)."""
    return [(j.question_id, j.model, j.status, j.overall, j.scores, j.raw, j.overall_expected, j.scores_expected,
             j.structured, j.detail) for j in runs["model-a"].judgments]


def _by_messages(bodies: list[dict]) -> dict[str, dict]:
    return {json.dumps(b["messages"], ensure_ascii=False): b for b in bodies}


def _no_nulls(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not None}  # the zhipuai SDK always posts a few nulls


# -- one body per backend ------------------------------------------------------------------------------------


def test_the_body_of_each_backend_is_what_its_sdk_posts_online() -> None:
    """``body_for`` (a batch line's body) against what the real SDK put on the wire for the same request."""
    messages = ({"role": "system", "content": "你是评审。"}, {"role": "user", "content": "请评分。"})
    grid = [Decoding(temperature=t, top_p=p, seed=s) for t in (0.0, 0.5, 1.0, 1.7)
            for p in (None, 0.0, 0.004, 0.5, 0.999, 1.0) for s in (None, 7)]

    async def send(server: StubServer) -> tuple[list[dict], list[dict]]:
        gpt = OpenAIChat("j", "stub-model", [server.url], "sk-test", extra_body={"repetition_penalty": 1.05})
        glm = ZhipuAIChat("g", "glm-4-flash", [server.root + "/api/paas/v4"], "id.secret", extra_body={"x": 1})
        try:
            for via in ("json_schema", "guided_json", "json_object"):
                gpt.structured_via = via
                for request in (ModelRequest(messages=messages, response_schema=SCHEMA, logprobs=20,
                                             decoding=Decoding(temperature=0.7, top_p=0.9, seed=3)),
                                ModelRequest(messages=messages)):
                    await gpt.complete(request)
                    assert server.requests[-1] == gpt.body_for(request, gpt.sendable(request))
            online = list(server.requests)
            server.reset()
            for dec in grid:
                request = ModelRequest(messages=messages, decoding=dec, response_schema=SCHEMA, logprobs=20)
                await glm.complete(request)
                assert _no_nulls(server.requests[-1]) == glm.body_for(request, glm.sendable(request)), dec
            return online, list(server.requests)
        finally:
            await gpt.aclose()
            await glm.aclose()

    with StubServer() as server:
        gpt_sent, glm_sent = asyncio.run(send(server))
    schema_body = gpt_sent[0]
    assert schema_body["response_format"]["json_schema"]["strict"] is True and schema_body["logprobs"] is True
    assert schema_body["top_logprobs"] == 20 and schema_body["repetition_penalty"] == 1.05
    assert gpt_sent[2]["guided_json"] == SCHEMA and "response_format" not in gpt_sent[2]
    assert gpt_sent[4]["response_format"] == {"type": "json_object", "schema": SCHEMA}  # llama.cpp constrains to it
    assert "response_format" not in gpt_sent[1] and "logprobs" not in gpt_sent[1]
    greedy, sampled = glm_sent[0], glm_sent[-1]
    assert greedy["do_sample"] is False and greedy["temperature"] == 0.01 and "logprobs" not in greedy
    assert greedy["response_format"] == {"type": "json_object"} and greedy["x"] == 1
    assert sampled["temperature"] == 0.99 and sampled["top_p"] == 0.99 and "do_sample" not in sampled
    assert any(r.get("top_p") == 0.999 for r in glm_sent)  # the SDK keeps 0.999: so does the batch line
    assert any(r.get("top_p") == 0.01 for r in glm_sent) and any(r.get("top_p") == 0.004 for r in glm_sent)


# -- structured output and log-probabilities through a batch ------------------------------------------------


@pytest.mark.parametrize(("judge", "settings", "via"), [
    ("openai:stub-model", {}, "json_schema"),
    ("critiquellm-chat", {}, "guided_json"),  # batch lines are chat completions: critiquellm itself is refused
    ("openai:stub-model", {"structured_via": "json_object"}, "json_object"),
])
def test_structured_logprob_batch_lines_and_judgments_equal_online(tmp_path: Path, judge: str, settings: dict,
                                                                   via: str) -> None:
    judge_server = ProtocolJudge(noise=0.3)
    common = dict(base_url=None, structured=True, score_from="logprobs", parse_retries=0, **settings)
    with BatchServer(judge_server, timing=(0.02, 0.1, 0.02)) as server:
        common["base_url"] = server.url
        online = alignbench.score(QUESTIONS, ANSWERS_A, judge, out=tmp_path / "online",
                                  cache=tmp_path / "online.sqlite", **common)
        assert server.calls == 32 and not server.uploads
        batch = alignbench.score(QUESTIONS, ANSWERS_A, judge, out=tmp_path / "batch", cache=tmp_path / "batch.sqlite",
                                 batch=BatchOptions(**OPTIONS), **common)
        assert server.calls == 32 and [u["n"] for u in server.uploads] == [32]
        sent_online = _by_messages(server.requests)
        lines = server.uploads[0]["lines"]
    for line in lines:
        assert line["body"] == sent_online[json.dumps(line["body"]["messages"], ensure_ascii=False)]
        assert line["body"]["logprobs"] is True and line["body"]["top_logprobs"] == 20
        if via == "guided_json":
            assert line["body"]["guided_json"]["properties"]["overall"] and "response_format" not in line["body"]
        else:
            assert line["body"]["response_format"]["type"] == via
    assert _judged(batch) == _judged(online)
    judgments = batch["model-a"].judgments
    assert all(j.structured == via and j.overall_expected is not None for j in judgments)
    assert batch["model-a"].summary.overall == online["model-a"].summary.overall
    assert batch["model-a"].summary.score_from == online["model-a"].summary.score_from
    assert batch["model-a"].summary.usage.batch_prompt_tokens == batch["model-a"].summary.usage.prompt_tokens


def test_zhipuai_batch_lines_are_the_sdk_body_and_read_cached_tokens(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "some.test")
    common = dict(structured=True, score_from="logprobs", top_p=0.999, parse_retries=0)
    with BatchServer(ProtocolJudge(), timing=(0.02, 0.1, 0.02), cached_counter=lambda body: 64) as server:
        url = server.root + "/api/paas/v4"
        online = alignbench.score(QUESTIONS, ANSWERS_A, "glm-4-flash", base_url=url, out=tmp_path / "online",
                                  cache=tmp_path / "online.sqlite", **common)
        batch = alignbench.score(QUESTIONS, ANSWERS_A, "glm-4-flash", base_url=url, out=tmp_path / "batch",
                                 cache=tmp_path / "batch.sqlite", batch=BatchOptions(**OPTIONS), **common)
        sent_online = _by_messages(server.requests)
        lines = server.uploads[0]["lines"]
    for line in lines:
        assert line["url"] == "/v4/chat/completions"
        assert line["body"] == _no_nulls(sent_online[json.dumps(line["body"]["messages"], ensure_ascii=False)])
        assert line["body"]["response_format"] == {"type": "json_object"} and "logprobs" not in line["body"]
        assert line["body"]["do_sample"] is False and line["body"]["top_p"] == 0.999
    assert _judged(batch) == _judged(online)
    assert all(j.structured == "json_object" for j in batch["model-a"].judgments)
    assert batch["model-a"].summary.score_from == {"source": "logprobs", "n_expected": 0, "n_verdict": 32}
    usage = batch["model-a"].summary.usage
    assert usage.cached_prompt_tokens == 32 * 64 and online["model-a"].summary.usage.cached_prompt_tokens == 0


# -- a feature the provider refuses ------------------------------------------------------------------------


def test_refused_features_are_asked_again_without_them_in_follow_up_batches(tmp_path: Path) -> None:
    judge = ProtocolJudge(refuse_structured=True, refuse_logprobs=True)
    with BatchServer(judge, timing=(0.02, 0.05, 0.02)) as server:
        # no resubmission allowed: asking again without a refused feature is not a resubmission
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=server.url, out=tmp_path / "r",
                                structured=True, score_from="logprobs", batch=BatchOptions(resubmits=0, **OPTIONS))
        first, second, third = (u["lines"] for u in server.uploads)
        assert server.calls == 0
    assert all("response_format" in x["body"] and x["body"]["logprobs"] for x in first)
    assert all("response_format" not in x["body"] and x["body"]["logprobs"] for x in second)
    assert all("response_format" not in x["body"] and "logprobs" not in x["body"] for x in third)
    run = runs["model-a"]
    assert run.summary.n_ok == 32 and all(j.structured is None for j in run.judgments)
    assert all("structured output not used (400 from " in j.detail and " batch batch-" in j.detail
               and "json_schema is not supported" in j.detail for j in run.judgments)
    assert any("structured output: 32 replies fell back to text (400 from" in n for n in run.summary.run.notes)
    assert run.summary.score_from == {"source": "logprobs", "n_expected": 0, "n_verdict": 32}
    # the reason is in the cache with the reply: a re-run reads the same judgments
    again = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url="http://127.0.0.1:9/v1",
                             out=tmp_path / "again", structured=True, score_from="logprobs",
                             batch=BatchOptions(**OPTIONS))
    assert [j.detail for j in again["model-a"].judgments] == [j.detail for j in run.judgments]


def test_a_refused_feature_goes_online_without_it_with_the_batch_reason(tmp_path: Path) -> None:
    notes: list[str] = []
    with BatchServer(ProtocolJudge(refuse_structured=True), timing=(0.02, 0.05, 0.02)) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=server.url, out=tmp_path / "r",
                                structured=True, batch=BatchOptions(fallback="online", on_note=notes.append, **OPTIONS))
        assert [u["n"] for u in server.uploads] == [32]
        assert server.calls == 32 and not any("response_format" in r for r in server.requests)
    run = runs["model-a"]
    assert run.summary.n_ok == 32 and all(" batch batch-" in j.detail for j in run.judgments)
    assert any("refused structured" in n and "them online without it" in n for n in notes)


def test_replies_of_a_collected_batch_are_marked_as_their_lines_were_sent(tmp_path: Path) -> None:
    """The refusal is learnt by one command, the follow-up collected by another: the reply still says why it
    is text (what each line carried is recorded with the batch, not guessed by whoever collects it)."""
    later = dict(structured=True, batch=BatchOptions(wait=False, **OPTIONS))
    with BatchServer(ProtocolJudge(refuse_structured=True), timing=(0.02, 0.1, 0.02)) as server:
        args = (QUESTIONS, ANSWERS_A, "openai:stub-model")
        with pytest.raises(BatchPending):
            alignbench.score(*args, base_url=server.url, out=tmp_path / "r", **later)
        time.sleep(0.3)
        with pytest.raises(BatchPending):  # collects the refusals, submits the follow-up without the schema
            alignbench.score(*args, base_url=server.url, out=tmp_path / "r", **later)
        time.sleep(0.3)
        runs = alignbench.score(*args, base_url=server.url, out=tmp_path / "r", **later)
        assert [u["n"] for u in server.uploads] == [32, 32] and server.calls == 0
    run = runs["model-a"]
    assert run.summary.n_ok == 32
    assert all("structured output not used (400 from " in j.detail and "not supported" in j.detail
               for j in run.judgments)


# -- replies the shared reader refuses --------------------------------------------------------------------


def test_empty_replies_are_submitted_again_and_non_text_parts_fail(tmp_path: Path) -> None:
    seen: set[str] = set()
    first_question = read_jsonl(ANSWERS_A)[0]["answer"][:30]

    def flaky(body: dict) -> dict | str:
        prompt = body["messages"][-1]["content"]
        if first_question in prompt:
            return {"content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
        if len(prompt) % 4 == 0 and prompt not in seen:
            seen.add(prompt)
            return {"content": None}  # a provider's empty reply: a transient fault, as online
        return alignbench_responder(body)

    with BatchServer(flaky, timing=(0.02, 0.05, 0.02)) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=server.url, out=tmp_path / "r",
                                batch=BatchOptions(**OPTIONS))
        sizes = [u["n"] for u in server.uploads]
    summary = runs["model-a"].summary
    assert sizes[0] == 32 and sizes[1] == len(seen) > 0 and len(sizes) == 2
    assert summary.n_ok == 31 and summary.failed_by_status == {"judge_error": 1}
    failed = next(j for j in runs["model-a"].judgments if j.status.value == "judge_error")
    assert "message content in parts that are not all text" in failed.detail


# -- secrets -----------------------------------------------------------------------------------------------


def test_a_batch_output_quoting_the_key_puts_it_nowhere(tmp_path: Path, _isolated_cache: Path) -> None:
    with BatchServer(timing=(0.02, 0.05, 0.02)) as server:
        server.echo_key = True
        keys = [alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:gpt-4o").items[i].request.cache_key(
            "openai:gpt-4o") for i in range(2)]
        server.fail_items(keys[:1], status=400)  # a request rejected for good: its error quotes the key
        server.fail_items(keys[1:], status=500)  # a transient one: the follow-up note quotes it
        out = tmp_path / "run"
        env = {**FAST, "ALIGNBENCH_TEST_API_KEY": SECRET}
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:gpt-4o",
                       "--judge-base-url", server.url, "--api-key-env", "ALIGNBENCH_TEST_API_KEY", "--batch",
                       "--out", str(out), env=env)
        listing = run_cli("batches", env=env)
        echoed = b"".join(f["bytes"] for f in server.files.values() if f["purpose"] == "batch_output")
        assert proc.returncode in (0, 3), proc.stderr
    assert SECRET.encode() in echoed and {b["key"] for b in server.batches.values()} == {SECRET}
    texts = [proc.stdout, proc.stderr, listing.stdout, listing.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert _isolated_cache in files and out / "judgments.jsonl" in files and out / "summary.json" in files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert all(SECRET not in t for t in texts)
    judgments = read_jsonl(out / "judgments.jsonl")
    assert sum("***" in (j.get("raw") or "") for j in judgments) == 31
    rejected = next(j for j in judgments if j["status"] == "judge_error")
    assert "batch request failed: 400" in rejected["detail"] and "***" in rejected["detail"]
    assert "failed in the batch" in proc.stderr and "***" in proc.stderr


def test_a_provider_key_is_not_sent_by_batch_where_online_would_not_send_it(tmp_path: Path,
                                                                             _isolated_cache: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with BatchServer(timing=(0.02, 0.05, 0.02)) as server:
        url = server.url.replace("http://", "http://user:pass-0123456789@")
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:gpt-4o", base_url=url, out=tmp_path / "r",
                                batch=BatchOptions(**OPTIONS))
        assert runs["model-a"].summary.n_ok == 32
        sent_keys = {b["key"] for b in server.batches.values()}
        assert sent_keys <= {None, "EMPTY"}  # no provider key (httpx may send the URL's user instead)
        plain = server.url
    db = sqlite3.connect(_isolated_cache)
    (base_url, key_env), = db.execute("SELECT base_url, key_env FROM batches").fetchall()
    db.close()
    assert base_url == plain and key_env is None
    assert all(b"pass-0123456789" not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    # the rule is the online client's: the provider's own host, or a key named for this server
    assert key_to_send(resolve_model("openai:gpt-4o", base_url="https://api.openai.com/v1")) == SECRET
    assert key_to_send(resolve_model("openai:gpt-4o", base_url="http://127.0.0.1:9/v1")) is None
    assert key_to_send(resolve_model("openai:gpt-4o", base_url="http://127.0.0.1:9/v1",
                                      api_key_explicit=True)) == SECRET
    monkeypatch.delenv("OPENAI_API_KEY")
    assert key_to_send(resolve_model("openai:gpt-4o")) is None
