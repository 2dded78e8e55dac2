"""`alignbench compare` on multi-turn dialogues, end to end against the loopback stub judge.

The data/zh multi-turn sample (model A) is compared with a baseline B derived from it here, with a scripted
judge that reads the compared turn's two replies out of the prompt: a reply marked （已核对） beats one that is
not, else a reply of model A beats any other, else the longer one wins, equal replies tie. It always picks
助手1 on dialogue 102 (a position-biased judge: a flip) and writes one unreadable verdict on dialogue 106
that its parse retry fixes (and that fails the dialogue when retries are off). Every expected number below
follows from those rules and B's construction, and is checked again against the verdicts stored in
pairwise_judgments.jsonl.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, ZH, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer

from alignbench.data import load_questions
from alignbench.judges import resolve_model
from alignbench.pairwise.compare import (
    MODEL_SCORE,
    build_pair_request,
    match_pairs,
    plan_pairs,
    read_pairwise_judgments,
)
from alignbench.prompts import answer_view
from alignbench.rubrics import load_rubric
from alignbench.types import Answer

MT_QUESTIONS = ZH / "multiturn_questions.jsonl"
MT_ANSWERS = ZH / "answers" / "multiturn-model-a.jsonl"
MODEL, BASE = "multiturn-model-a", "multiturn-model-b"
CHECKED = "（已核对）"
DIALOGUES = {q["question_id"]: q for q in read_jsonl(MT_QUESTIONS)}
A = {r["question_id"]: r["turns"] for r in read_jsonl(MT_ANSWERS)}
SHOWN_A = {answer_view(t)[0] for turns in A.values() for t in turns}  # as the judge sees them (no <think>)
FIRST_USER = {qid: q["turns"][0] for qid, q in DIALOGUES.items()}
SINGLE_IDS = (1, 9, 17, 21)  # 基本任务, 综合问答, 数学计算 (reference shown), 逻辑推理 (reference shown)
SINGLES = {q["question_id"]: q for q in read_jsonl(QUESTIONS) if q["question_id"] in SINGLE_IDS}
SINGLE_A = {r["question_id"]: r["answer"] for r in read_jsonl(ANSWERS_A) if r["question_id"] in SINGLE_IDS}
SINGLE_B = {r["question_id"]: r["answer"] for r in read_jsonl(ANSWERS_B) if r["question_id"] in SINGLE_IDS}


def baseline_turns() -> dict[int, list[str]]:
    """B, from A: every first reply differs (so no two prompts are the same), and per dialogue
    101 last reply wrong and short · 102 position-biased judge · 103 same last reply (tie) · 104 last reply
    checked (B wins) · 105 three turns, B wins only the middle one · 106 last reply shorter."""
    b = {qid: [t + "（草稿）" for t in turns[:1]] + list(turns[1:]) for qid, turns in A.items()}
    b[101][1] = "两种方式一样，都是 172 元。"
    b[104][1] = A[104][1] + CHECKED
    b[105] = ["列表可变，元组不可变。", A[105][1] + CHECKED, "不能，会报错。"]
    b[106][1] = "推荐《细说宋朝》。"
    return b


B = baseline_turns()
# A's preference against B per dialogue under the rules above: on the last turn (the default), and per turn
LAST = {101: 1.0, 102: 0.5, 103: 0.5, 104: 0.0, 105: 1.0, 106: 1.0}
EACH = {101: [1.0, 1.0], 102: [0.5, 0.5], 103: [1.0, 0.5], 104: [1.0, 0.0], 105: [1.0, 0.0, 1.0], 106: [1.0, 1.0]}

SIDE = re.compile(r"\[用户与助手([12])的对话开始\]\n(.*?)\n\[用户与助手\1的对话结束\]", re.DOTALL)
MESSAGE = re.compile(r"\[(用户的提问|给定的助手回复|助手[12]第(\d+)轮的回复)开始\](（待比较）)?\n(.*?)\n\[\1结束\]", re.DOTALL)
SINGLE_BLOCK = re.compile(r"\[助手([12AB])的(?:答案|回答)开始\]\n(.*?)\n\[助手\1的(?:答案|回答)结束\]", re.DOTALL)
MT_SIDE = re.compile(r"\[用户与助手([AB])的对话开始\]\n(.*?)\n\[用户与助手\1的对话结束\]", re.DOTALL)
MT_JUDGED = re.compile(r"\[助手[AB]，第\d+轮，待比较\]\n(.*)$", re.DOTALL)


def sides(prompt: str) -> list[list[tuple[str, int | None, bool, str]]]:
    """Both sides of an alignbench dialogue prompt, 助手1's first: (kind, model turn, compared?, text) per message."""
    found = SIDE.findall(prompt)
    assert [n for n, _ in found] == ["1", "2"]
    return [[(kind.split("第")[0], int(turn) if turn else None, bool(mark), text)
             for kind, turn, mark, text in MESSAGE.findall(body)] for _, body in found]


def compared(prompt: str) -> tuple[str, str]:
    """The two replies a prompt asks to compare (助手1's, 助手2's): a dialogue's marked turn, or the answers."""
    if "[用户与助手1的对话开始]" in prompt:
        judged = [[text for _, _, mark, text in side if mark] for side in sides(prompt)]
        assert [len(j) for j in judged] == [1, 1]
        return judged[0][0], judged[1][0]
    if "[用户与助手A的对话开始]" in prompt:
        return tuple(MT_JUDGED.search(body).group(1) for _, body in MT_SIDE.findall(prompt))  # type: ignore[return-value]
    found = dict(SINGLE_BLOCK.findall(prompt))
    return found.get("1", found.get("A")), found.get("2", found.get("B"))


def taste(first: str, second: str) -> str:
    for better in (lambda t: CHECKED in t, lambda t: t in SHOWN_A or t in SINGLE_A.values()):
        if better(first) != better(second):
            return "1" if better(first) else "2"
    return "tie" if len(first) == len(second) else ("1" if len(first) > len(second) else "2")


def judge(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    system = body["messages"][0]["content"]
    position = "1" if FIRST_USER[102] in prompt else taste(*compared(prompt))
    if FIRST_USER[106] in prompt and body.get("seed") is None and compared(prompt)[0] == answer_view(B[106][-1])[0]:
        return "两段对话都还可以吧。"  # unreadable; the parse retry (a seeded sample) gets a verdict
    if "[[A]]" in system:  # mtbench-pair
        return "比较如下……\n[[" + {"1": "A", "2": "B", "tie": "C"}[position] + "]]"
    return "比较分析……\n最终判决：[[" + {"1": "助手1", "2": "助手2", "tie": "平局"}[position] + "]]"


def pref_from_file(orders: list[dict]) -> float:
    """A pair's preference recomputed from its two stored order verdicts (un-swapped winners)."""
    mf, bf = orders
    assert (mf["order"], bf["order"]) == ("model_first", "baseline_first") and mf["status"] == bf["status"] == "ok"
    assert mf["winner"] == {"1": "model", "2": "baseline", "tie": "tie"}[mf["position"]]
    assert bf["winner"] == {"1": "baseline", "2": "model", "tie": "tie"}[bf["position"]]
    return (MODEL_SCORE[mf["winner"]] + MODEL_SCORE[bf["winner"]]) / 2


def answer_files(tmp: Path, single: bool = False) -> tuple[Path, Path]:
    rows_a = [{"question_id": q, "model_id": MODEL, "turns": t} for q, t in A.items()]
    rows_b = [{"question_id": q, "model_id": BASE, "turns": t} for q, t in B.items()]
    if single:
        rows_a = [{"question_id": q, "model_id": MODEL, "answer": t} for q, t in SINGLE_A.items()] + rows_a
        rows_b = [{"question_id": q, "model_id": BASE, "answer": t} for q, t in SINGLE_B.items()] + rows_b
    return write_jsonl(tmp / "a.jsonl", rows_a), write_jsonl(tmp / "b.jsonl", rows_b)


def compare(stub: StubServer, questions: Path, a: Path, b: Path, out: Path, *extra: str) -> dict:
    """One `alignbench compare` run (the real CLI, in-process) with its own reply cache beside ``out``."""
    proc = run_cli("compare", "-q", str(questions), "-a", str(a), "-b", str(b), "--judge", "openai:gpt-4o",
                   "--judge-base-url", stub.url, "--out", str(out), "--length-unit", "chars", "--bootstrap", "20",
                   "--format", "json", *extra, env={"ALIGNBENCH_CACHE": str(out.parent / "cache.sqlite")})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ------------------------------------------------------------------------------------------------
# the default: one verdict pair per dialogue, on its last model turn
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def last_turn(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("dialogues")
    a, b = answer_files(tmp)
    with StubServer(responder=judge) as stub:
        summary = compare(stub, MT_QUESTIONS, a, b, tmp / "run")
        requests, calls = list(stub.requests), stub.calls
        again = compare(stub, MT_QUESTIONS, a, b, tmp / "run")  # the same command again: every reply cached
        return {"summary": summary, "requests": requests, "calls": calls, "out": tmp / "run", "again": again,
                "calls_again": stub.calls - calls}


def test_last_turn_win_rate_is_the_hand_computed_one(last_turn: dict) -> None:
    summary, rows = last_turn["summary"], read_jsonl(last_turn["out"] / "pairwise_judgments.jsonl")
    m = summary["models"][MODEL]
    assert summary["baseline"] == BASE and summary["rubric"] == load_rubric("alignbench").id
    # by hand: wins 101, 105, 106; a flip on 102 and a tie on 103 (both 0.5); a loss on 104
    assert statistics.fmean(LAST.values()) * 100 == pytest.approx(200 / 3)
    assert m["win_rate"] == pytest.approx(200 / 3, abs=1e-9)
    assert (m["n"], m["n_wins"], m["n_ties"], m["n_losses"], m["n_failed"]) == (6, 3, 2, 1, 0)
    assert (m["n_flips"], m["n_inconsistent"]) == (1, 1) and m["inconsistency"] == pytest.approx(1 / 6)
    # the same from the verdicts stored in the judgments file
    from_file = {r["question_id"]: pref_from_file(r["orders"]) for r in rows}
    assert from_file == LAST and {r["question_id"]: r["preference"] for r in rows} == LAST
    assert m["win_rate"] == pytest.approx(100 * statistics.fmean(from_file.values()), abs=1e-9)
    assert m["win_rate_se"] == pytest.approx(100 * statistics.stdev(from_file.values()) / 6 ** 0.5, abs=1e-9)
    flipped = next(r for r in rows if r["question_id"] == 102)
    assert flipped["flip"] and [o["position"] for o in flipped["orders"]] == ["1", "1"]
    assert 0 <= m["lc_win_rate"] <= 100 and summary["length_unit"] == "chars"


def test_last_turn_prompts_show_both_sides_of_every_turn_in_order(last_turn: dict) -> None:
    requests = last_turn["requests"]
    # both orders of 6 dialogues, plus the one parse retry on 106
    assert last_turn["calls"] == 13 and len(requests) == 13
    questions = {q.id: q for q in load_questions(MT_QUESTIONS, load_rubric("alignbench"))}
    seen: dict[int, set[str]] = {}
    for body in requests:
        prompt = body["messages"][-1]["content"]
        assert "[[助手1]]" in body["messages"][0]["content"] and "<think>" not in prompt
        qid = next(q for q, text in FIRST_USER.items() if text in prompt)
        q, n = questions[qid], questions[qid].model_turns
        assert f"需要比较的是第 {n} 轮" in prompt
        first, second = sides(prompt)
        first_reply = next(text for _, turn, _, text in first if turn == 1)  # B's first replies all differ from A's
        order = "model_first" if first_reply == answer_view(A[qid][0])[0] else "baseline_first"
        seen.setdefault(qid, set()).add(order)
        for side, who in zip((first, second), (A, B) if order == "model_first" else (B, A), strict=True):
            want = [("user" if role == "user" else "given" if turn is None else "reply", turn,
                     answer_view(who[qid][turn - 1])[0] if turn else content)
                    for role, content, turn in q.dialogue(who[qid])]
            got = [("user" if kind == "用户的提问" else "given" if kind == "给定的助手回复" else "reply", turn, text)
                   for kind, turn, _, text in side]
            assert got == want, qid  # every user turn, fixed turn and own reply, in order
            assert [turn for _, turn, mark, _ in side if mark] == [n]  # the last model turn is the compared one
        reference = q.reference_for(n)
        assert (f"[第{n}轮的参考答案开始]\n{reference}\n" in prompt) is bool(reference)
        assert prompt.index("[用户与助手1的对话开始]") < prompt.index("[用户与助手2的对话开始]")
    assert seen == {qid: {"model_first", "baseline_first"} for qid in DIALOGUES}


def test_a_rerun_reads_every_dialogue_verdict_from_the_cache(last_turn: dict) -> None:
    assert last_turn["calls_again"] == 0 and last_turn["again"]["usage"]["cached_replies"] == 13
    assert last_turn["again"]["models"] == last_turn["summary"]["models"]


def test_last_turn_judgments_file(last_turn: dict) -> None:
    rows = read_jsonl(last_turn["out"] / "pairwise_judgments.jsonl")
    assert [r["question_id"] for r in rows] == sorted(DIALOGUES)
    for r in rows:
        qid = r["question_id"]
        assert r["turn"] == len(A[qid]) and "turns" not in r  # last turn only: no per-turn list
        # LC length: the total of the model's replies in the dialogue, as written (102's <think> included)
        assert r["model_chars"] == sum(len(t) for t in A[qid]) and r["baseline_chars"] == sum(len(t) for t in B[qid])
        assert r["model_words"] > 0 and r["baseline_words"] > 0 and r["status"] == "ok"
    retried = next(r for r in rows if r["question_id"] == 106)["orders"][1]
    assert retried["attempts"] == 2 and retried["earlier_replies"] == ["两段对话都还可以吧。"]
    # the file reads back (and `winrate` reads it) with its dialogue fields
    judgments = read_pairwise_judgments(last_turn["out"] / "pairwise_judgments.jsonl")
    assert [j.turn for j in judgments] == [2, 2, 2, 2, 3, 2] and all(not j.turns for j in judgments)


# ------------------------------------------------------------------------------------------------
# `pairwise_turns: each`, and a mixed question file under mtbench-pair
# ------------------------------------------------------------------------------------------------


def test_each_turn_rubric_averages_the_turns(tmp_path: Path) -> None:
    folder = tmp_path / "alignbench-each"
    shutil.copytree(load_rubric("alignbench").folder, folder)
    spec = (folder / "rubric.yaml").read_text(encoding="utf-8")
    assert "pairwise_turns: last\n" in spec
    spec = spec.replace("pairwise_turns: last\n", "pairwise_turns: each\n").replace("name: alignbench\n", "name: ab-each\n")
    (folder / "rubric.yaml").write_text(spec, encoding="utf-8")
    a, b = answer_files(tmp_path)
    with StubServer(responder=judge) as stub:
        # no parse retry: turn 2 of 106 stays unreadable in the baseline-first order, and fails its dialogue
        summary = compare(stub, MT_QUESTIONS, a, b, tmp_path / "run", "--rubric", str(folder), "--parse-retries", "0",
                          "--max-failed", "1")
        prompts = [body["messages"][-1]["content"] for body in stub.requests]
        assert stub.calls == 2 * 13  # both orders of every model turn
    # turn k's prompt shows the dialogue up to turn k and no further
    for p in prompts:
        marked = [turn for side in sides(p) for _, turn, mark, _ in side if mark]
        shown = max(turn or 0 for side in sides(p) for _, turn, _, _ in side)
        assert marked[0] == marked[1] == shown
    assert sorted(max(t or 0 for _, t, _, _ in sides(p)[0]) for p in prompts if FIRST_USER[105] in p) == [1, 1, 2, 2, 3, 3]
    rows = {r["question_id"]: r for r in read_jsonl(tmp_path / "run" / "pairwise_judgments.jsonl")}
    for qid, r in rows.items():
        assert [t["turn"] for t in r["turns"]] == list(range(1, len(A[qid]) + 1))
        assert r["orders"] == r["turns"][-1]["orders"] and r["turn"] == len(A[qid])
        assert [t["model_chars"] for t in r["turns"]] == [len(t) for t in A[qid]]
        assert r["model_chars"] == sum(len(t) for t in A[qid])
        if qid == 106:
            continue
        assert [pref_from_file(t["orders"]) for t in r["turns"]] == EACH[qid] == [t["preference"] for t in r["turns"]]
        assert r["preference"] == pytest.approx(statistics.fmean(EACH[qid])) and r["status"] == "ok"
    failed = rows[106]
    assert [t["status"] for t in failed["turns"]] == ["ok", "parse_failed"] and failed["turns"][0]["preference"] == 1.0
    assert (failed["status"], failed["preference"]) == ("parse_failed", None)
    assert failed["detail"].startswith("turn 2: baseline-first order: parse_failed")
    m = summary["models"][MODEL]
    # by hand: 1, 0.5, 0.75, 0.5, 2/3 (106 failed) -> wins 101, 103, 105; ties 102, 104; only 102 inconsistent
    assert m["win_rate"] == pytest.approx(100 * (1 + 0.5 + 0.75 + 0.5 + 2 / 3) / 5, abs=1e-9)
    assert (m["n"], m["n_wins"], m["n_ties"], m["n_losses"], m["n_flips"], m["n_inconsistent"]) == (5, 3, 2, 0, 1, 1)
    assert (m["n_failed"], m["failed_by_status"]) == (1, {"parse_failed": 1})
    assert summary["usage"]["calls"] == 26


def test_mixed_single_and_dialogue_file_under_mtbench_pair(tmp_path: Path) -> None:
    questions = write_jsonl(tmp_path / "mixed.jsonl", list(SINGLES.values()) + list(DIALOGUES.values()))
    a, b = answer_files(tmp_path, single=True)
    with StubServer(responder=judge) as stub:
        summary = compare(stub, questions, a, b, tmp_path / "run", "--rubric", "mtbench-pair")
        requests = list(stub.requests)
    assert len(requests) == 2 * 10 + 1
    rub = load_rubric("mtbench-pair")
    assert summary["rubric"] == rub.id and rub.version == "1.1.0"
    rows = {r["question_id"]: r for r in read_jsonl(tmp_path / "run" / "pairwise_judgments.jsonl")}
    m = summary["models"][MODEL]
    # by hand: model-a's answer wins all 4 single questions, the dialogues go as under alignbench
    want = {**dict.fromkeys(SINGLE_IDS, 1.0), **LAST}
    assert {q: pref_from_file(r["orders"]) for q, r in rows.items()} == want
    assert m["win_rate"] == pytest.approx(100 * (4 + sum(LAST.values())) / 10, abs=1e-9) == pytest.approx(80.0)
    assert (m["n"], m["n_wins"], m["n_ties"], m["n_losses"]) == (10, 7, 2, 1)
    for qid in SINGLE_IDS:  # single lines are as before: no dialogue fields, single lengths
        assert "turn" not in rows[qid] and "turns" not in rows[qid]
        assert rows[qid]["model_chars"] == len(SINGLE_A[qid])
    assert [rows[q]["turn"] for q in DIALOGUES] == [2, 2, 2, 2, 3, 2]
    # single questions get exactly the single-answer prompt; dialogues the dialogue one, 助手A's side first
    config = resolve_model("openai:gpt-4o")
    qs = {q.id: q for q in load_questions(questions, rub)}
    singles = [body for body in requests if "[用户与助手A的对话开始]" not in body["messages"][-1]["content"]]
    assert len(singles) == 8
    for body in singles:
        prompt = body["messages"][-1]["content"]
        qid = next(q for q in SINGLE_IDS if SINGLES[q]["question"] in prompt)
        first, second = compared(prompt)
        want = build_pair_request(rub, qs[qid], first, second, config.decoding)
        assert body["messages"] == [dict(msg) for msg in want.messages]
    dialogue_101 = next(body["messages"][-1]["content"] for body in requests if FIRST_USER[101] in body["messages"][-1]["content"])
    assert dialogue_101.startswith("第 2 轮有明确的正确答案") and DIALOGUES[101]["references"][1] in dialogue_101
    assert dialogue_101.index("[助手A，第1轮]") < dialogue_101.index("[助手A，第2轮，待比较]") \
        < dialogue_101.index("[用户与助手B的对话开始]") < dialogue_101.index("[助手B，第2轮，待比较]")
    dialogue_104 = next(body["messages"][-1]["content"] for body in requests if FIRST_USER[104] in body["messages"][-1]["content"])
    assert "参考答案" not in dialogue_104  # 综合问答: mtbench-pair shows references for math and logic only


# ------------------------------------------------------------------------------------------------
# planning and input errors (no call)
# ------------------------------------------------------------------------------------------------


def test_dialogue_prompts_keep_the_baseline_first_prefix_shared() -> None:
    rub = load_rubric("alignbench")
    q = next(q for q in load_questions(MT_QUESTIONS, rub) if q.id == 105)
    base = Answer(question_id=105, model="base", text=B[105][-1], turns=tuple(B[105]))
    m1 = Answer(question_id=105, model="m1", text=A[105][-1], turns=tuple(A[105]))
    m2 = Answer(question_id=105, model="m2", text="第三轮", turns=("第一轮", "第二轮", "第三轮"))
    items = plan_pairs(match_pairs([q], {"m1": [m1], "m2": [m2]}, [base]).pairs, rub, resolve_model("openai:x"),
                       max_answer_chars=8)
    assert [(it.order, it.model_answer.model, it.turn) for it in items] == [
        ("baseline_first", "m1", 3), ("baseline_first", "m2", 3), ("model_first", "m1", 3), ("model_first", "m2", 3)]
    one, two = (it.request.messages[-1]["content"] for it in items[:2])
    shared = one.split("[用户与助手2的对话开始]")[0]
    assert two.startswith(shared) and "第一轮" not in shared and "第一轮" in two
    # every reply is clipped as `score` clips it, and the pair is flagged
    assert all(it.truncated for it in items) and "以下内容已截断" in one


def invoke(*args: str):
    from typer.testing import CliRunner

    from alignbench.cli import app

    return CliRunner().invoke(app, list(args))


def test_wrong_reply_count_and_rubrics_without_dialogue_templates_fail_before_any_call(tmp_path: Path) -> None:
    a, b = answer_files(tmp_path)
    rows = read_jsonl(a)
    rows[2]["turns"] = rows[2]["turns"] + ["多出来的一轮"]
    extra = write_jsonl(tmp_path / "extra.jsonl", rows)
    short = write_jsonl(tmp_path / "short.jsonl", [{**r, "turns": r["turns"][:1]} if r["question_id"] == 105 else r
                                                   for r in read_jsonl(b)])
    with StubServer(responder=judge) as stub:
        def run(*args: str):
            return invoke("compare", "-q", str(MT_QUESTIONS), "--judge", "openai:gpt-4o", "--judge-base-url", stub.url,
                          "--out", str(tmp_path / "run"), *args)

        res = run("-a", str(extra), "-b", str(b))
        assert res.exit_code == 2 and f"{extra}:3: answer to question 103 has 3 replies but the dialogue has 2 " \
            "model turns" in res.stderr, res.stderr
        res = run("-a", str(a), "-b", str(short))
        assert res.exit_code == 2 and f"{short}:5: answer to question 105 has 1 reply but the dialogue has 3" in res.stderr
        res = run("-a", str(a), "-b", str(b), "--rubric", "critiquellm")
        assert res.exit_code == 2 and "question 101 is a dialogue but rubric critiquellm@" in res.stderr
        assert "--rubric alignbench or mtbench-pair" in res.stderr
        assert stub.calls == 0 and not (tmp_path / "run").exists()
