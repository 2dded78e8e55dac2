"""`alignbench score` end to end: the real CLI, the real openai client, a real HTTP judge on 127.0.0.1."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ROOT, JudgedRuns, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, alignbench_responder

SECRET = "sk-test-SECRET-do-not-leak-4242"


def score(stub: StubServer, out: Path, *extra: str, answers: Path = ANSWERS_A, env: dict | None = None):
    return run_cli("score", "-q", str(QUESTIONS), "-a", str(answers), "--judge", "openai:gpt-4o",
                   "--judge-base-url", stub.url, "--out", str(out), *extra, env=env)


def test_score_json_run_folder_and_no_key_leak(stub: StubServer, tmp_path: Path, _isolated_cache: Path) -> None:
    out = tmp_path / "run"
    proc = score(stub, out, "--format", "json", env={"OPENAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    for key in ("overall", "reasoning", "language", "n_failed", "categories"):
        assert key in summary
    assert set(summary["categories"]) == {"数学计算", "逻辑推理", "基本任务", "中文理解", "综合问答", "文本写作",
                                         "角色扮演", "专业能力"}
    assert all(c["n"] == 4 and 1 <= c["score"] <= 10 for c in summary["categories"].values())
    assert summary["overall"] == pytest.approx((summary["reasoning"] + summary["language"]) / 2, abs=1e-3)
    assert stub.calls == 32
    judgments = read_jsonl(out / "judgments.jsonl")
    assert [j["question_id"] for j in judgments] == list(range(1, 33))
    first = judgments[0]
    assert first["status"] == "ok" and first["rubric"].startswith("alignbench@") and first["raw"].endswith("}")
    assert first["usage"]["prompt_tokens"] > 0 and len(first["prompt_hash"]) == 16
    assert set(first["scores"]) == {"事实正确性", "满足用户需求", "清晰度", "完备性"}  # 基本任务's dimensions
    verdict = ast.literal_eval(first["raw"].splitlines()[-1])  # the dict the judge wrote on its last line
    assert first["scores"] == {k: v for k, v in verdict.items() if k != "综合得分"}
    assert first["overall"] == verdict["综合得分"]
    # a provider's key goes only to the provider's own https host: this loopback server never sees it
    assert {h["authorization"] for h in stub.headers} == {"Bearer EMPTY"}
    # named with --api-key-env, the key goes to the named server, and still into nothing we write
    proc = score(stub, tmp_path / "keyed", "--api-key-env", "OPENAI_API_KEY", "--no-cache",
                 env={"OPENAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert stub.headers[-1]["authorization"] == f"Bearer {SECRET}"
    for path in [*(p for d in (out, tmp_path / "keyed") for p in d.rglob("*") if p.is_file()), _isolated_cache]:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in proc.stdout + proc.stderr


def test_rerun_reads_the_cache_and_reproduces(judged_copy: JudgedRuns, tmp_path: Path) -> None:
    stub = judged_copy.stub  # the session's judge; its 64 replies are in this test's cache
    assert judged_copy.procs["model-a"].returncode == 0
    calls = stub.calls
    proc = score(stub, tmp_path / "b", "--format", "json")
    assert proc.returncode == 0 and stub.calls == calls
    first = read_jsonl(judged_copy.a / "judgments.jsonl")
    second = read_jsonl(tmp_path / "b" / "judgments.jsonl")
    strip = lambda js: [{k: v for k, v in j.items() if k != "cached"} for j in js]  # noqa: E731
    assert strip(first) == strip(second) and all(j["cached"] for j in second)
    assert json.loads(proc.stdout)["usage"]["calls"] == 0


def test_table_output(judged: JudgedRuns) -> None:
    proc = judged.procs["model-a"]  # the session's `score` of model-a's answers (openai:gpt-4o, the stub judge)
    assert proc.returncode == 0, proc.stderr
    for text in ("中文推理", "中文语言", "数学计算", "总分 overall", "95% CI", "维度得分"):
        assert text in proc.stdout
    shown = run_cli("show", str(judged.a))
    assert shown.returncode == 0 and "总分 overall" in shown.stdout


def test_transient_errors_are_retried(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_next(2, status=429, retry_after=0.2)
    stub.fail_next(2, status=500)
    stub.fail_next(1, status=503)
    stub.malformed_next(1)
    stub.hang_next(1, 3.0)
    proc = score(stub, tmp_path / "run", "--timeout", "1", "--concurrency", "4", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_failed"] == 0 and summary["n_ok"] == 32
    assert stub.calls == 32 + 7
    assert summary["usage"]["retries"] == 7


def test_retry_after_is_honoured(stub: StubServer) -> None:
    from alignbench.cache import NullStore
    from alignbench.engine import Engine, RetryPolicy
    from alignbench.judges.openai_api import OpenAIChat
    from alignbench.types import ModelRequest

    async def go() -> float:
        judge = OpenAIChat("t", "m", [stub.url], "k", timeout=5)
        runner = Engine(judge, NullStore(), retry=RetryPolicy(initial=0.01, max_wait=5))
        stub.fail_next(1, status=429, retry_after=1.0)
        start = time.monotonic()
        reply = await runner.get(ModelRequest(messages=({"role": "user", "content": "你好"},)))
        await judge.aclose()
        assert reply.text and reply.attempts == 2
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.95


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder, latency=0.1) as stub:
        assert score(stub, tmp_path / "run", "--concurrency", "5").returncode == 0
        assert 2 <= stub.max_in_flight <= 5


def test_unparseable_judgment_is_retried_then_counted(tmp_path: Path) -> None:
    """Question 3's judge never writes a verdict: retried once, then counted as parse_failed with its text kept.
    Question 2's judge writes none at temperature 0 only: the retry (a fresh sample) parses and is scored."""
    questions = {r["question_id"]: r["question"] for r in read_jsonl(QUESTIONS)}
    never, once = questions[3][:40], questions[2][:40]  # each names its own question only

    def responder(body: dict) -> str:
        text = body["messages"][-1]["content"]
        if never in text or body.get("temperature", 0) == 0 and once in text:
            return "这个回答嘛……我觉得还行。"
        return alignbench_responder(body)

    with StubServer(responder=responder) as stub:
        proc = score(stub, tmp_path / "run", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        judgments = read_jsonl(tmp_path / "run" / "judgments.jsonl")
        failed = [j for j in judgments if j["status"] != "ok"]
        retried_ok = [j for j in judgments if j["status"] == "ok" and j["attempts"] == 2]
        assert [j["question_id"] for j in failed] == [3] and [j["question_id"] for j in retried_ok] == [2]
        for j in failed:
            assert j["status"] == "parse_failed" and j["overall"] is None and j["scores"] == {}
            assert j["attempts"] == 2 and "还行" in j["raw"] and "first reply" in j["detail"]
        for j in retried_ok:
            assert "first reply: parse_failed" in j["detail"]
        summary = json.loads(proc.stdout)
        assert summary["n_failed"] == len(failed) == 1
        temps = sorted({r.get("temperature") for r in stub.requests})
        assert temps == [0.0, 0.3]  # the retry is a fresh sample
        assert stub.calls == 32 + 2
        calls = stub.calls
        assert score(stub, tmp_path / "run2").returncode == 0 and stub.calls == calls


def test_failed_calls_become_statuses_not_scores(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_always(500)
    proc = score(stub, tmp_path / "run", "--attempts", "2", "--format", "json")
    assert proc.returncode == 3, proc.stderr  # every judgment failed: CI must notice (the summary is written)
    assert "32 of 32 judgments failed (judge_error 32)" in proc.stderr and "alignbench show" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_failed"] == 32 and summary["overall"] is None
    assert summary["failed_by_status"] == {"judge_error": 32}
    assert stub.calls == 64
    stub.heal()
    proc = score(stub, tmp_path / "run", "--format", "json")  # failures are not cached: a re-run finishes
    assert json.loads(proc.stdout)["n_failed"] == 0


def test_too_long_prompt(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_next(1, status=400, body=json.dumps({"error": {"message": "This model's maximum context length is 4096 tokens"}}))
    proc = score(stub, tmp_path / "run", "--concurrency", "1", "--format", "json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["failed_by_status"] == {"too_long": 1}


def test_bad_key_stops_the_run_with_one_line(stub: StubServer, tmp_path: Path) -> None:
    stub.fail_always(401)
    proc = score(stub, tmp_path / "run")
    assert proc.returncode == 2 and "401" in proc.stderr and "Traceback" not in proc.stderr
    assert stub.calls <= 16


def test_no_server_says_how_to_start_one(tmp_path: Path) -> None:
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "critiquellm",
                   "--judge-base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "no judge server answers at http://127.0.0.1:9/v1" in proc.stderr and "vllm serve" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_fails_before_any_call(stub: StubServer, tmp_path: Path) -> None:
    bad = tmp_path / "answers.jsonl"
    bad.write_text('{"question_id": 1, "model_id": "m", "answer": "好"}\n{"question_id": 2, "model_id": "m"\n',
                   encoding="utf-8")
    proc = score(stub, tmp_path / "run", answers=bad)
    assert proc.returncode == 2 and f"{bad}:2: not valid JSON" in proc.stderr
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"question_id": 1, "model_id": "m", "answer": ""}])
    proc = score(stub, tmp_path / "run", answers=empty)
    assert proc.returncode == 2 and "--allow-empty" in proc.stderr
    assert stub.calls == 0


def test_dry_run_and_prompt_call_nothing(stub: StubServer, tmp_path: Path) -> None:
    proc = score(stub, tmp_path / "run", "--dry-run")
    assert proc.returncode == 0 and "32 request(s)" in proc.stdout and "[助手的答案开始]" in proc.stdout
    proc = run_cli("prompt", "-q", str(QUESTIONS), "--question-id", "17", "--judge", "critiquellm", "--format", "json")
    assert proc.returncode == 0
    (message,) = json.loads(proc.stdout)["messages"]
    assert message["content"].startswith("[逻辑推理型回答]\n用户的提问：")
    assert stub.calls == 0


def test_several_models_in_one_run(stub: StubServer, tmp_path: Path) -> None:
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-a", str(ANSWERS_B), "--judge", "openai:m",
                   "--judge-base-url", stub.url, "--out", str(tmp_path), "--format", "json", "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["models"]) == {"model-a", "model-b"}
    assert (tmp_path / "model-a" / "summary.json").exists() and (tmp_path / "model-b" / "summary.json").exists()
    # answers to the same question go out together (prefix caching on the judge server)
    prefixes = [r["messages"][-1]["content"].split("[助手的答案开始]")[0] for r in stub.requests]
    assert len(prefixes) == 64
    assert all(prefixes[i] == prefixes[i + 1] for i in range(0, 64, 2))
    assert len(set(prefixes)) == 32


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_calls(tmp_path: Path, _isolated_cache: Path) -> None:
    with StubServer(responder=alignbench_responder, latency=0.25) as stub:
        cmd = [sys.executable, "-m", "alignbench", "score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A),
               "--judge", "openai:gpt-4o", "--judge-base-url", stub.url, "--out", str(tmp_path / "run"),
               "--concurrency", "4"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while stub.calls < 14 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # let requests already on the wire reach the server's counter
        stored = sqlite3.connect(_isolated_cache).execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        sent_before = stub.calls
        assert 0 < stored <= sent_before and sent_before - stored <= 4  # at most the in-flight calls lost
        assert not (tmp_path / "run" / "summary.json").exists()
        done = score(stub, tmp_path / "run", "--format", "json")
        assert done.returncode == 0, done.stderr
        assert stub.calls - sent_before == 32 - stored
        assert json.loads(done.stdout)["n_ok"] == 32


def test_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder, latency=0.3) as stub:
        cmd = [sys.executable, "-m", "alignbench", "score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A),
               "--judge", "openai:gpt-4o", "--judge-base-url", stub.url, "--out", str(tmp_path / "run"),
               "--concurrency", "2"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while stub.calls < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130
        assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
