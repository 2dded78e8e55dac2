"""A new user's surprises and a real server used well (issue 23, parts 5 and 6): each case against real
loopback servers, in process where the library is what is tested."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from conftest import ANSWERS_A, QUESTIONS, read_jsonl, run_cli, write_jsonl
from stub_server import EndlessServer, Refuse, StubServer, alignbench_responder

import alignbench
from alignbench.engine import ServerUnavailable
from alignbench.judges import ModelConfigError
from alignbench.rundir import RunError


def one_answer(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "one.jsonl", read_jsonl(ANSWERS_A)[:1])


def test_a_judge_server_that_dies_mid_run_stops_the_run_within_seconds(tmp_path: Path) -> None:
    stub = StubServer(responder=alignbench_responder, latency=0.05).start()

    def kill_after_some_replies() -> None:
        while stub.calls < 4:
            time.sleep(0.01)
        stub.stop()

    threading.Thread(target=kill_after_some_replies, daemon=True).start()
    start = time.monotonic()
    with pytest.raises(ServerUnavailable, match="judge server gone at .*re-run to resume"):
        alignbench.score(QUESTIONS, ANSWERS_A, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                         concurrency=2)
    assert time.monotonic() - start < 20  # not minutes of retries (260 s before; this machine is shared)


def test_zhipuai_startup_get_answered_one_byte_at_a_time_ends_within_the_timeout(tmp_path: Path) -> None:
    drip = EndlessServer(byte_every=0.2)
    try:
        start = time.monotonic()
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(one_answer(tmp_path)), "--judge", "zhipuai:glm-4",
                       "--judge-base-url", drip.root + "/api/paas/v4", "--timeout", "2", "--attempts", "1",
                       "--out", str(tmp_path / "r"), env={"ZHIPUAI_API_KEY": "abc.def"})
        elapsed = time.monotonic() - start
    finally:
        drip.close()
    assert proc.returncode == 3, proc.stderr  # the one judgment failed: the reply never ended
    judgment = read_jsonl(tmp_path / "r" / "judgments.jsonl")[0]
    assert judgment["status"] == "judge_error"
    assert elapsed < 15  # the process ends: no worker thread left reading (121 s under --timeout 5 before)


@pytest.mark.parametrize("judge", ["openai:judge", "zhipuai:glm-4"])
def test_a_reply_larger_than_the_cap_fails_that_request_and_stops_reading(judge: str, tmp_path: Path) -> None:
    flood = EndlessServer()
    url = flood.root + ("/api/paas/v4" if judge.startswith("zhipuai") else "/v1")
    try:
        runs = alignbench.score(QUESTIONS, one_answer(tmp_path), judge, base_url=url, out=tmp_path / "r",
                                max_reply_bytes=200_000, attempts=1, timeout=20, api_key_env="KEY_FOR_TEST",
                                api_key_explicit=True)
    finally:
        flood.close()
    judgment = next(iter(runs.values())).judgments[0]
    assert judgment.status.value == "judge_error" and "--max-reply-bytes 200000" in judgment.detail
    assert flood.sent < 50_000_000  # reading stopped near the cap, not at the 20 s timeout


def test_a_500_naming_response_format_is_a_refusal_remembered_for_the_run(tmp_path: Path) -> None:
    def llama_cpp_python(body: dict) -> str:  # llama-cpp-python 0.3: json_schema is a 500 naming the field
        if "response_format" in body:
            raise Refuse(500, "Internal error: response_format json_schema is not supported")
        return alignbench_responder(body)

    with StubServer(responder=llama_cpp_python) as stub:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                                structured=True, concurrency=1)
        asked = [("response_format" in body) for body in stub.requests]
    judgments = next(iter(runs.values())).judgments
    assert all(j.status.value == "ok" for j in judgments)
    assert asked.count(True) == 1 and len(asked) == len(judgments) + 1  # refused once, then never asked again


def test_structured_via_json_object_sends_the_schema(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder) as stub:
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(one_answer(tmp_path)), "--judge", "openai:judge",
                       "--judge-base-url", stub.url, "--out", str(tmp_path / "r"), "--structured",
                       "--structured-via", "json_object")
        sent = stub.requests[0].get("response_format")
    assert proc.returncode in (0, 3), proc.stderr
    assert sent["type"] == "json_object" and sent["schema"]["type"] == "object"


def test_cached_replies_from_another_server_with_the_same_model_name_are_reused_only_with_a_warning(
        tmp_path: Path) -> None:
    answers = write_jsonl(tmp_path / "three.jsonl", read_jsonl(ANSWERS_A)[:3])
    with StubServer(responder=alignbench_responder) as first:
        alignbench.score(QUESTIONS, answers, "openai:judge", base_url=first.url, out=tmp_path / "a")
        again = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=first.url, out=tmp_path / "a2")
        first_url = first.url
    with StubServer(responder=alignbench_responder) as second:
        runs = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=second.url, out=tmp_path / "b")
        asked = second.calls
    notes = " ".join(next(iter(runs.values())).summary.run.model_extra.get("notes", []))
    assert asked == 0 and f"3 cached replies of judge came from another server ({first_url})" in notes
    assert "--cache NEW_FILE" in notes
    assert not any("another server" in n for n in next(iter(again.values())).summary.run.model_extra.get("notes", []))  # same server: silent


def test_another_judge_into_the_same_run_folder_needs_force(stub: StubServer, tmp_path: Path) -> None:
    answers = one_answer(tmp_path)
    alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r")
    with pytest.raises(RunError, match="judged by openai:judge, not openai:other.*--force"):
        alignbench.score(QUESTIONS, answers, "openai:other", base_url=stub.url, out=tmp_path / "r")
    alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r")  # same judge: fine
    runs = alignbench.score(QUESTIONS, answers, "openai:other", base_url=stub.url, out=tmp_path / "r", force=True)
    assert next(iter(runs.values())).summary.run.judge["model"] == "other"


def test_a_repeated_baseline_and_an_empty_model_id_are_refused(tmp_path: Path) -> None:
    twice = run_cli("compare", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-b", str(ANSWERS_A), "-b",
                    str(one_answer(tmp_path)), "--judge", "openai:judge", "--judge-base-url", "http://127.0.0.1:9/v1",
                    "--dry-run")
    assert twice.returncode == 2 and "--baseline/-b is given 2 times" in twice.stderr
    with pytest.raises(ModelConfigError, match="names no model"):
        alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:")


def test_identical_answers_across_a_models_file_are_warned_about(tmp_path: Path) -> None:
    rows = read_jsonl(ANSWERS_A)[:8]
    same = write_jsonl(tmp_path / "same.jsonl", [{**r, "answer": "抱歉，生成失败。"} for r in rows])
    warnings = alignbench.plan_score(QUESTIONS, same, "openai:judge").warnings()
    assert any("8 of 8 answers of" in w and "抱歉，生成失败。" in w for w in warnings)
    assert not any("same text" in w for w in alignbench.plan_score(QUESTIONS, ANSWERS_A, "openai:judge").warnings())


def test_a_cache_deleted_mid_run_is_reported(tmp_path: Path, _isolated_cache: Path) -> None:
    def delete_the_cache(body: dict) -> str:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{_isolated_cache}{suffix}").unlink(missing_ok=True)
        return alignbench_responder(body)

    with StubServer(responder=delete_the_cache) as stub:
        runs = alignbench.score(QUESTIONS, one_answer(tmp_path), "openai:judge", base_url=stub.url,
                                out=tmp_path / "r")
    notes = " ".join(next(iter(runs.values())).summary.run.model_extra.get("notes", []))
    assert f"the reply cache {_isolated_cache} was deleted or replaced during the run" in notes


def test_a_pool_retry_waits_for_a_slot_on_a_live_server_rather_than_the_failed_one() -> None:
    from alignbench.judges.pool import Endpoint, EndpointPool

    async def scenario() -> tuple[bool, str]:
        live, dead = Endpoint("http://live", 1, None), Endpoint("http://dead", 1, None)
        pool = EndpointPool([live, dead], base_rest=0.0)
        first = await pool.acquire(key="other")  # the live server's only slot is taken
        assert first is live
        failed = await pool.acquire(key="k")
        assert failed is dead
        await pool.release(dead, ok=False, key="k")  # request k failed there; its rest is already over
        retry = asyncio.ensure_future(pool.acquire(key="k"))
        await asyncio.sleep(0.05)
        waited = not retry.done()
        await pool.release(live, ok=True)
        return waited, (await retry).url

    waited, url = asyncio.run(scenario())
    assert waited and url == "http://live"


def test_a_server_running_one_request_at_a_time_wastes_under_10_percent_at_defaults(tmp_path: Path) -> None:
    stub = StubServer(responder=alignbench_responder, latency=0.2)
    stub.slots, stub.advertise_slots = 1, False  # llama-cpp-python: one at a time, and it does not say so
    answers = write_jsonl(tmp_path / "ten.jsonl", read_jsonl(ANSWERS_A)[:10])
    with stub:
        runs = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                                timeout=1.2)  # default --concurrency 16: 10 queued at once would time out
        time.sleep(0.5)
        generations, abandoned = stub.generations, stub.abandoned
    assert next(iter(runs.values())).summary.n_ok == 10
    assert abandoned <= 0.1 * generations, (abandoned, generations)


def test_a_stated_concurrency_is_used_as_stated_and_the_default_is_learnt(tmp_path: Path) -> None:
    """The default (no --concurrency) starts at 2 in flight on a server that does not say its parallelism and
    grows only as far as its latency allows (here: 0.3 s replies under a 0.9 s timeout, so 2 stay); a number
    the user gives is their word: no slow start, every request in flight at once."""
    answers = write_jsonl(tmp_path / "four.jsonl", read_jsonl(ANSWERS_A)[:4])
    seen = {}
    for stated in (None, 4):
        stub = StubServer(responder=alignbench_responder, latency=0.3)
        stub.slots, stub.advertise_slots = 8, False
        with stub:
            runs = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / f"r{stated}",
                                    timeout=0.9, concurrency=stated, cache=False)
        assert next(iter(runs.values())).summary.n_ok == 4
        seen[stated] = stub.max_in_flight
    assert seen == {None: 2, 4: 4}


def test_a_request_queued_past_the_timeout_is_waited_for_not_asked_again(tmp_path: Path) -> None:
    """One request at a time, 0.5 s each, --timeout 0.7: the second request of the first wave waits 0.5 s in
    the server's queue and is being served when its attempt ends. It is not asked again (a copy would queue
    behind it while the server still generates the first): the next attempt waits for the same call. Every
    generation is used, none is abandoned, and the judgment is the reply of that one call."""
    stub = StubServer(responder=alignbench_responder, latency=0.5)
    stub.slots, stub.advertise_slots = 1, False
    answers = write_jsonl(tmp_path / "three.jsonl", read_jsonl(ANSWERS_A)[:3])
    with stub:
        runs = alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r",
                                timeout=0.7, cache=False)
        time.sleep(0.3)
        generations, abandoned, calls = stub.generations, stub.abandoned, stub.calls
    run = next(iter(runs.values()))
    assert run.summary.n_ok == 3
    assert (calls, generations, abandoned) == (3, 3, 0)
    assert max(j.attempts for j in run.judgments) == 2  # one attempt outlasted the timeout and was waited on


def test_the_hint_is_printed_whenever_retries_were_needed(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_next(1, status=503)
    runs = alignbench.score(QUESTIONS, one_answer(tmp_path), "openai:judge", base_url=stub.url, out=tmp_path / "r")
    notes = " ".join(next(iter(runs.values())).summary.run.model_extra.get("notes", []))
    assert "1 call had to be retried, 1 because the server could not keep up" in notes and "--concurrency" in notes


def test_answer_counts_and_flags_answers_cut_at_max_tokens(tmp_path: Path) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", read_jsonl(QUESTIONS)[:3])

    with StubServer(responder=lambda body: {"content": "被截断的回答", "finish_reason": "length"}) as stub:
        run = alignbench.answer(questions, "m", tmp_path / "a.jsonl", base_url=stub.url, model_id="stub-model")
    records = read_jsonl(tmp_path / "a.jsonl")
    assert run.truncated == 3 and all(r["truncated"] is True for r in records)


def test_an_all_failed_run_report_says_so_instead_of_empty_charts(tmp_path: Path) -> None:
    with StubServer(responder=lambda body: (_ for _ in ()).throw(Refuse(400, "bad request"))) as stub:
        alignbench.score(QUESTIONS, one_answer(tmp_path), "openai:judge", base_url=stub.url, out=tmp_path / "r")
    for lang, words in (("en", "so there is no score; see judgments.jsonl"),
                        ("zh", "所有 1 条评审均失败")):
        path = alignbench.report([tmp_path / "r"], tmp_path / f"report-{lang}.md", lang=lang).path
        text = path.read_text(encoding="utf-8")
        assert words in text and not list(tmp_path.glob(f"report-{lang}*.png")) and not list(tmp_path.glob("*.svg"))


def test_labels_that_do_not_look_1_to_10_need_label_scale(stub: StubServer, tmp_path: Path) -> None:
    from alignbench.data import InputError

    answers = write_jsonl(tmp_path / "ten.jsonl", read_jsonl(ANSWERS_A)[:10])
    alignbench.score(QUESTIONS, answers, "openai:judge", base_url=stub.url, out=tmp_path / "r")
    rows = read_jsonl(answers)
    labels = write_jsonl(tmp_path / "labels.jsonl", [{"question_id": r["question_id"], "model": "model-a",
                                                      "score": 1 + i % 5} for i, r in enumerate(rows)])
    with pytest.raises(InputError, match="do not look like the rubric's 1-10.*--label-scale"):
        alignbench.calibrate(tmp_path / "r", labels)
    calibrated = alignbench.calibrate(tmp_path / "r", labels, label_scale="1-5", min_labels=5, n_boot=50)
    assert calibrated.runs  # said explicitly: accepted
