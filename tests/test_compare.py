"""Pairwise mode end to end: `alignbench compare` and `alignbench winrate` as a user runs them, against a
real OpenAI-compatible judge on 127.0.0.1 whose verdicts are scripted, so every expected number can be
worked out from the answer files alone."""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, SHARED, read_jsonl, run_cli, write_jsonl
from stub_server import StubServer

from alignbench.judges import resolve_model
from alignbench.pairwise.compare import OrderVerdict, combine, match_pairs, plan_pairs
from alignbench.rubrics import load_rubric
from alignbench.types import Answer, Question, Status

QS = {q["question_id"]: q for q in read_jsonl(QUESTIONS)}
A = {r["question_id"]: r["answer"] for r in read_jsonl(ANSWERS_A)}
B = {r["question_id"]: r["answer"] for r in read_jsonl(ANSWERS_B)}
A_TEXTS = set(A.values())
WEAK = "不知道。"
MATH = "数学计算"
# the one pair whose model-first verdict is unreadable (even after the parse retry)
BROKEN_QID = next(q for q in sorted(QS) if q % 4 == 2 and QS[q]["category"] != MATH)
ALPACA = SHARED / "alpaca_eval"
LEADERBOARD = ALPACA / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
BLOCK = re.compile(r"\[助手([12])的答案开始\]\n(.*?)\n\[助手\1的答案结束\]", re.DOTALL)


def c_answer(qid: int) -> str:
    """model-c: model-a's answer on every 4th question, the baseline's own answer on the next, else a non-answer."""
    return {0: A[qid], 1: B[qid]}.get(qid % 4, WEAK)


def content_winner(first: str, second: str) -> str:
    """The scripted judge's taste: an answer of model-a beats anything else; otherwise the longer one wins."""
    if (first in A_TEXTS) != (second in A_TEXTS):
        return "1" if first in A_TEXTS else "2"
    if len(first) != len(second):
        return "1" if len(first) > len(second) else "2"
    return "tie"


def blocks(prompt: str) -> tuple[str, str]:
    found = dict((m.group(1), m.group(2)) for m in BLOCK.finditer(prompt))
    return found["1"], found["2"]


def verdict_text(position: str, prompt: str) -> str:
    """The same verdict in one of three formats (chosen by prompt hash): ours, CritiqueLLM's, MT-Bench's."""
    style = hashlib.sha256(prompt.encode()).digest()[0] % 3
    ours = {"1": "助手1", "2": "助手2", "tie": "平局"}[position]
    critiquellm = {"1": "助手1", "2": "助手2", "tie": "质量相当"}[position]
    mt_bench = {"1": "A", "2": "B", "tie": "C"}[position]
    if style == 0:
        return f"两个回答的比较分析……\n最终判决：[[{ours}]]"
    if style == 1:
        return "分析……\n{'综合比较结果': '" + critiquellm + "'}"
    return f"Analysis...\n[[{mt_bench}]]"


def scripted(body: dict) -> str:
    """Position-biased on mathematics (always 助手1), content-driven elsewhere; one unreadable verdict."""
    prompt = body["messages"][-1]["content"]
    first, second = blocks(prompt)
    if first == WEAK and QS[BROKEN_QID]["question"] in prompt:
        return "嗯……两个都还行吧。"
    if f"（{MATH} /" in prompt:
        return verdict_text("1", prompt)
    return verdict_text(content_winner(first, second), prompt)


def expected(model_text: dict[int, str], skip: set[int] = frozenset()) -> dict:
    """What the pipeline must report, from the rule above (not from the pipeline)."""
    prefs, by_cat = [], {}
    for qid, q in QS.items():
        if qid in skip:
            continue
        m, b = model_text[qid], B[qid]
        if q["category"] == MATH:
            first, second = "model", "baseline"  # 助手1 wins in both orders
        else:
            w1, w2 = content_winner(m, b), content_winner(b, m)
            first = {"1": "model", "2": "baseline", "tie": "tie"}[w1]
            second = {"1": "baseline", "2": "model", "tie": "tie"}[w2]
        score = {"model": 1.0, "tie": 0.5, "baseline": 0.0}
        pref = (score[first] + score[second]) / 2
        prefs.append(pref)
        by_cat.setdefault(q["category"], []).append((pref, first != second))
    n = len(prefs)
    return {
        "n": n, "win_rate": 100 * statistics.fmean(prefs),
        "win_rate_se": 100 * statistics.stdev(prefs) / math.sqrt(n),
        "n_wins": sum(p > 0.5 for p in prefs), "n_ties": sum(p == 0.5 for p in prefs),
        "n_losses": sum(p < 0.5 for p in prefs),
        "categories": {c: {"win_rate": 100 * statistics.fmean(p for p, _ in v),
                           "inconsistency": sum(i for _, i in v) / len(v)} for c, v in by_cat.items()},
        "inconsistency": sum(i for v in by_cat.values() for _, i in v) / n,
    }


# ------------------------------------------------------------------------------------------------
# pure pieces
# ------------------------------------------------------------------------------------------------


def _verdict(order: str, winner: str | None, status: Status = Status.OK) -> OrderVerdict:
    return OrderVerdict(order=order, status=status, winner=winner, prompt_hash="x")


@pytest.mark.parametrize(("first", "second", "pref", "consistent", "flip"), [
    ("model", "model", 1.0, True, False),
    ("model", "tie", 0.75, False, False),
    ("tie", "model", 0.75, False, False),
    ("tie", "tie", 0.5, True, False),
    ("model", "baseline", 0.5, False, True),
    ("baseline", "model", 0.5, False, True),
    ("tie", "baseline", 0.25, False, False),
    ("baseline", "baseline", 0.0, True, False),
])
def test_two_orders_combine_into_one_preference(first, second, pref, consistent, flip) -> None:
    out = combine(_verdict("model_first", first), _verdict("baseline_first", second))
    assert out["status"] is Status.OK
    assert (out["preference"], out["consistent"], out["flip"]) == (pref, consistent, flip)


def test_a_failed_order_fails_the_pair() -> None:
    out = combine(_verdict("model_first", "model"), _verdict("baseline_first", None, Status.PARSE_FAILED))
    assert out["status"] is Status.PARSE_FAILED and out["preference"] is None and out["consistent"] is None
    assert "baseline-first" in out["detail"]


def test_both_orders_are_planned_and_prefix_friendly() -> None:
    rub = load_rubric("alignbench")
    q = Question(**{**{k: v for k, v in QS[1].items() if k != "question_id"}, "id": 1})
    m, b = Answer(question_id=1, model="m", text="模型的回答"), Answer(question_id=1, model="base", text="基线的回答")
    m2 = Answer(question_id=1, model="m2", text="另一个模型")
    matched = match_pairs([q], {"m": [m], "m2": [m2]}, [b])
    items = plan_pairs(matched.pairs, rub, resolve_model("openai:x"))
    assert [(it.order, it.model_answer.model) for it in items] == [
        ("baseline_first", "m"), ("baseline_first", "m2"), ("model_first", "m"), ("model_first", "m2")]
    system, user = items[2].request.messages
    assert "最终判决：[[助手1]]" in system["content"] and items[0].request.messages[0] == system
    assert blocks(user["content"]) == ("模型的回答", "基线的回答")
    assert blocks(items[0].request.messages[1]["content"]) == ("基线的回答", "模型的回答")
    assert user["content"].rstrip().endswith("[助手2的答案结束]") and q.reference in user["content"]
    for dim in rub.dimensions_for(q.category, q.subcategory):
        assert dim in user["content"]
    # baseline-first prompts of two models share everything up to the model's answer
    shared = items[0].request.messages[1]["content"].split("[助手2的答案开始]")[0]
    assert items[1].request.messages[1]["content"].startswith(shared)
    assert items[0].request.rubric == rub.id and rub.version != "1.0.0"


# ------------------------------------------------------------------------------------------------
# compare, end to end
# ------------------------------------------------------------------------------------------------


# pairwise_summary.json as compare and `alignbench import` wrote it before the summary was typed (key order too)
OLD_SUMMARY = {
    "baseline": "model-b",
    "models": {"model-a": {"baseline": "model-b", "win_rate": 93.75, "win_rate_se": 4.1, "lc_win_rate": 90.2,
                           "lc_win_rate_se": None, "discrete_win_rate": 93.75, "n": 32, "n_wins": 28, "n_ties": 4,
                           "n_losses": 0, "n_failed": 0, "avg_length": 120.5, "length_slope": 0.1, "strength": 2.0,
                           "inconsistency": 0.125, "n_inconsistent": 4, "n_flips": 0, "failed_by_status": {},
                           "lc_warning": None, "categories": {"数学计算": {"win_rate": 50.0, "n": 4}}}},
    "glm": {"fitted": True, "theta": 0.1, "sigma": 1.0, "penalties": [1.0], "converged": True, "n_iter": 7,
            "difficulty_sd": 0.3, "n_boot": 0, "seed": 0},
    "length_unit": "chars",
    "position_bias": {"inconsistency": 0.125, "n_inconsistent": 4, "n_flips": 0, "n_pairs": 32, "categories": {}},
    "judge": {"name": "openai:gpt-4o", "backend": "openai", "model": "gpt-4o"},
    "rubric": "alignbench@1",
    "usage": {"calls": 64, "prompt_tokens": 1000},
    "run": {"dir": "out", "missing": {"model-a": []}, "alignbench_version": "0.1.0", "created": "2026-01-01T00:00:00"},
    "finished": True,
}


def test_old_pairwise_summaries_load_and_write_the_same_json(tmp_path: Path) -> None:
    from alignbench.pairwise.compare import PairwiseSummary
    from alignbench.reporting.terminal import pairwise_table

    imported = {**{k: v for k, v in OLD_SUMMARY.items() if k != "finished"}, "imported": {"format": "fastchat-pair"},
                "differences": {"file": "import_differences.jsonl", "n": 0, "by_kind": {}}, "finished": True,
                "fastchat": {"protocol": "pair"}}  # a section the model does not name is kept, last
    for old in (OLD_SUMMARY, imported):
        path = tmp_path / "pairwise_summary.json"
        path.write_text(json.dumps(old, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        summary = PairwiseSummary.model_validate_json(path.read_bytes())
        assert json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) + "\n" == path.read_text(encoding="utf-8")
        assert summary.models["model-a"]["n_wins"] == 28 and summary.finished is True
        assert pairwise_table(summary).row_count == 1
    with pytest.raises(ValueError, match="frozen"):
        summary.baseline = "x"  # type: ignore[misc]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory):
    """One `compare` of model-a and model-c against model-b, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("compare")
    c_file = write_jsonl(tmp / "model-c.jsonl", [{"question_id": q, "model_id": "model-c", "answer": c_answer(q)}
                                                 for q in sorted(QS)])
    env = {"ALIGNBENCH_CACHE": str(tmp / "cache.sqlite")}
    with StubServer(responder=scripted) as stub:
        args = ("compare", "-q", str(QUESTIONS), "--answers", str(ANSWERS_A), "--answers", str(c_file),
                "--baseline", str(ANSWERS_B), "--judge", "openai:gpt-4o", "--judge-base-url", stub.url,
                "--length-unit", "chars", "--seed", "3", "--bootstrap", "50", "--out", str(tmp / "run"))
        proc = run_cli(*args, "--format", "json", env=env)
        calls = stub.calls
        yield {"proc": proc, "out": tmp / "run", "stub": stub, "calls": calls, "args": args, "env": env}


@pytest.mark.slow
def test_win_rates_match_the_scripted_judge(two_models) -> None:
    proc = two_models["proc"]
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary == json.loads((two_models["out"] / "pairwise_summary.json").read_text(encoding="utf-8"))
    assert summary["baseline"] == "model-b" and set(summary["models"]) == {"model-a", "model-c"}
    exp = {"model-a": expected(A), "model-c": expected({q: c_answer(q) for q in QS}, skip={BROKEN_QID})}
    # by hand: model-a wins all 28 non-math pairs; on the 4 math pairs the judge flips with the order
    assert exp["model-a"]["win_rate"] == (28 + 4 * 0.5) / 32 * 100 == 93.75
    for name, e in exp.items():
        m = summary["models"][name]
        for key in ("n", "n_wins", "n_ties", "n_losses"):
            assert m[key] == e[key], (name, key)
        assert m["win_rate"] == pytest.approx(e["win_rate"], abs=1e-9)
        assert m["win_rate_se"] == pytest.approx(e["win_rate_se"], abs=1e-9)
        assert m["inconsistency"] == pytest.approx(e["inconsistency"])
        assert 0 <= m["lc_win_rate"] <= 100 and m["lc_win_rate_se"] > 0
        assert m["discrete_win_rate"] == pytest.approx(100 * (m["n_wins"] + m["n_ties"] / 2) / m["n"])
        assert list(m["categories"]) == load_rubric("alignbench").category_names()
        for cat, ce in e["categories"].items():
            assert m["categories"][cat]["win_rate"] == pytest.approx(ce["win_rate"]), (name, cat)
            assert m["categories"][cat]["inconsistency"] == pytest.approx(ce["inconsistency"]), (name, cat)
        assert m["categories"][MATH]["inconsistency"] == 1.0
    assert summary["models"]["model-a"]["n_flips"] == 4
    c = summary["models"]["model-c"]
    assert c["n_failed"] == 1 and c["failed_by_status"] == {"parse_failed": 1}
    bias = summary["position_bias"]
    assert bias["n_pairs"] == 63 and bias["categories"][MATH]["inconsistency"] == 1.0
    assert summary["glm"]["n_boot"] == 50 and summary["glm"]["seed"] == 3 and summary["length_unit"] == "chars"
    assert summary["rubric"] == load_rubric("alignbench").id and summary["judge"]["model"] == "gpt-4o"
    assert two_models["calls"] == 2 * 64 + 1  # both orders of 64 pairs, plus one parse retry


@pytest.mark.slow
def test_judgments_keep_both_raw_texts(two_models) -> None:
    rows = read_jsonl(two_models["out"] / "pairwise_judgments.jsonl")
    assert len(rows) == 64 and [(r["model"], r["question_id"]) for r in rows] == sorted(
        (m, q) for m in ("model-a", "model-c") for q in QS)
    for r in rows:
        mf, bf = r["orders"]
        assert (mf["order"], bf["order"]) == ("model_first", "baseline_first")
        assert mf["raw"] and bf["raw"]
        same_text = r["model"] == "model-c" and c_answer(r["question_id"]) == B[r["question_id"]]
        assert (mf["prompt_hash"] == bf["prompt_hash"]) == same_text  # identical answers: one prompt
        assert r["model_chars"] == len(A[r["question_id"]] if r["model"] == "model-a" else c_answer(r["question_id"]))
        assert r["baseline_words"] > 0
    broken = next(r for r in rows if r["model"] == "model-c" and r["question_id"] == BROKEN_QID)
    assert broken["status"] == "parse_failed" and broken["preference"] is None
    assert broken["orders"][0]["attempts"] == 2 and "还行" in broken["orders"][0]["raw"]
    assert broken["orders"][1]["status"] == "ok"  # the other order is kept, the pair still fails
    flipped = next(r for r in rows if r["category"] == MATH and r["model"] == "model-a")
    assert flipped["preference"] == 0.5 and flipped["flip"] and not flipped["consistent"]
    assert (flipped["orders"][0]["winner"], flipped["orders"][1]["winner"]) == ("model", "baseline")


@pytest.mark.slow
def test_rerun_makes_no_calls_and_prints_the_table(two_models) -> None:
    stub: StubServer = two_models["stub"]
    before = stub.calls
    proc = run_cli(*two_models["args"], env=two_models["env"])
    assert proc.returncode == 0, proc.stderr
    assert stub.calls == before
    for text in ("pairwise vs model-b", "model-a", "93.8 ±", "position inconsistency", "28/4/0", "数学计算",
                 "judge calls 0"):
        assert text in proc.stdout, text
    again = read_jsonl(two_models["out"] / "pairwise_judgments.jsonl")
    assert all(v["cached"] for r in again for v in r["orders"])


@pytest.mark.slow
def test_winrate_reads_our_own_judgments(two_models) -> None:
    summary = json.loads(two_models["proc"].stdout)
    proc = run_cli("winrate", str(two_models["out"]), "--length-unit", "chars", "--seed", "3", "--bootstrap", "50",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["baseline"] == "model-b"
    for name, m in summary["models"].items():
        w = again["models"][name]
        for key in ("win_rate", "win_rate_se", "n", "n_wins", "n_ties", "n_losses", "n_failed", "inconsistency"):
            assert w[key] == m[key], key
        assert w["lc_win_rate"] == pytest.approx(m["lc_win_rate"], abs=1e-6)


@pytest.mark.slow
def test_position_biased_judge_gives_half_and_full_inconsistency(stub: StubServer, tmp_path: Path) -> None:
    stub.responder = lambda body: "经过比较，我认为第一个回答更好。\n{'综合比较结果': '助手1'}"
    proc = run_cli("compare", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-b", str(ANSWERS_B),
                   "--judge", "openai:gpt-4o", "--judge-base-url", stub.url, "--out", str(tmp_path / "run"),
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["models"]["model-a"]
    assert (m["win_rate"], m["win_rate_se"], m["inconsistency"]) == (50.0, 0.0, 1.0)
    assert (m["n_wins"], m["n_ties"], m["n_losses"], m["n_flips"]) == (0, 32, 0, 32)
    assert all(c["inconsistency"] == 1.0 and c["win_rate"] == 50.0 for c in m["categories"].values())
    rows = read_jsonl(tmp_path / "run" / "pairwise_judgments.jsonl")
    assert {r["preference"] for r in rows} == {0.5} and stub.calls == 64


@pytest.mark.slow
def test_failed_calls_are_counted_then_resumed(stub: StubServer, tmp_path: Path) -> None:
    stub.responder = lambda body: verdict_text(content_winner(*blocks(body["messages"][-1]["content"])), "x")
    args = ("compare", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-b", str(ANSWERS_B), "--judge", "openai:gpt-4o",
            "--judge-base-url", stub.url, "--out", str(tmp_path / "run"), "--format", "json", "--bootstrap", "0")
    stub.fail_always(500)
    proc = run_cli(*args, "--attempts", "1")
    assert proc.returncode == 3 and "32 of 32 judgments failed (judge_error 32)" in proc.stderr, proc.stderr
    m = json.loads(proc.stdout)["models"]["model-a"]
    assert (m["n"], m["n_failed"], m["win_rate"], m["lc_win_rate"]) == (0, 32, None, None)
    assert m["failed_by_status"] == {"judge_error": 32} and stub.calls == 64
    stub.heal()
    proc = run_cli(*args)  # failures are not cached: the re-run judges them
    m = json.loads(proc.stdout)["models"]["model-a"]
    assert (m["n"], m["n_failed"], m["win_rate"]) == (32, 0, 100.0) and stub.calls == 128


@pytest.mark.slow
def test_critiquellm_pairwise_format(stub: StubServer, tmp_path: Path) -> None:
    def critiquellm(body: dict) -> str:
        position = content_winner(*blocks(body["prompt"]))  # the critiquellm preset sends a bare prompt
        word = {"1": "助手1", "2": "助手2", "tie": "质量相当"}[position]
        return "助手1的答案……\n{'综合比较结果': '" + word + "'}"

    stub.responder = critiquellm
    # model-b against model-a as the baseline: the judge prefers model-a every time
    proc = run_cli("compare", "-q", str(QUESTIONS), "-a", str(ANSWERS_B), "-b", str(ANSWERS_A), "--judge", "critiquellm",
                   "--judge-base-url", stub.url, "--out", str(tmp_path / "run"), "--format", "json", "--bootstrap", "0")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    m = summary["models"]["model-b"]
    assert (m["win_rate"], m["n_losses"], m["inconsistency"]) == (0.0, 32, 0.0)
    assert summary["rubric"] == load_rubric("critiquellm").id and summary["baseline"] == "model-a"
    rub = load_rubric("critiquellm")
    assert stub.paths == ["/completions"] * len(stub.requests)  # CritiqueLLM's input, no chat template
    for body in stub.requests:
        assert "messages" not in body
        lines = body["prompt"].split("\n")
        assert lines[0].strip("[]") in rub.answer_types and lines[1].startswith("用户的提问：")
        for marker in ("[参考答案开始]", "[参考答案结束]", "[助手1的答案开始]", "[助手1的答案结束]", "[助手2的答案开始]"):
            assert marker in lines
        assert lines[-1] == "[助手2的答案结束]"
        assert lines.index("[参考答案结束]") < lines.index("[助手1的答案开始]") < lines.index("[助手2的答案开始]")


def invoke(*args: str):
    """The CLI in-process (same code as `python -m alignbench`): for error paths that stop before any work."""
    from typer.testing import CliRunner

    from alignbench.cli import app

    return CliRunner().invoke(app, list(args))


def test_bad_input_fails_before_any_call(stub: StubServer, tmp_path: Path) -> None:
    def compare(*args: str):
        return invoke("compare", "-q", str(QUESTIONS), "--judge", "openai:gpt-4o", "--judge-base-url", stub.url,
                      "--out", str(tmp_path / "run"), *args)

    broken = tmp_path / "broken.jsonl"
    broken.write_text(ANSWERS_A.read_text(encoding="utf-8").split("\n", 1)[0] + "\n{not json\n", encoding="utf-8")
    res = compare("-a", str(broken), "-b", str(ANSWERS_B))
    assert res.exit_code == 2 and f"{broken}:2" in res.stderr and "not valid JSON" in res.stderr
    stray = write_jsonl(tmp_path / "stray.jsonl", [{"question_id": 999, "model_id": "x", "answer": "答"}])
    res = compare("-a", str(stray), "-b", str(ANSWERS_B))
    assert res.exit_code == 2 and f"{stray}:1" in res.stderr and "999" in res.stderr
    res = compare("-a", str(ANSWERS_B), "-b", str(ANSWERS_B))
    assert res.exit_code == 2 and "baseline's name" in res.stderr
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [{"question_id": 1, "model_id": "x", "answer": "甲"},
                                                   {"question_id": 2, "model_id": "y", "answer": "乙"}])
    res = compare("-a", str(ANSWERS_A), "-b", str(mixed))
    assert res.exit_code == 2 and "2 models" in res.stderr
    res = compare("-a", str(ANSWERS_A), "-a", str(ANSWERS_A), "-b", str(ANSWERS_B))
    assert res.exit_code == 2 and "one answer file" in res.stderr
    res = compare("-a", str(ANSWERS_A), "-b", str(ANSWERS_B), "--length-unit", "tokens")
    assert res.exit_code == 2 and "--length-unit" in res.stderr
    res = compare("-a", str(ANSWERS_A), "-b", str(ANSWERS_B), "--rubric", "critiquellm", "--dry-run")
    assert res.exit_code == 0 and "64 request(s)" in res.stdout and "[助手2的答案结束]" in res.stdout
    assert stub.calls == 0 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_questions_without_both_answers_are_a_counted_warning(stub: StubServer, tmp_path: Path) -> None:
    stub.responder = lambda body: verdict_text(content_winner(*blocks(body["messages"][-1]["content"])), "x")
    base = write_jsonl(tmp_path / "base.jsonl", [r for r in read_jsonl(ANSWERS_B) if r["question_id"] > 2])
    simple = write_jsonl(tmp_path / "new-model.jsonl", [{"question_id": q, "answer": a} for q, a in A.items() if q != 3])
    proc = run_cli("compare", "-q", str(QUESTIONS), "-a", str(simple), "-b", str(base), "--judge", "openai:gpt-4o",
                   "--judge-base-url", stub.url, "--out", str(tmp_path / "run"), "--format", "json", "--bootstrap", "0")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 32 questions" in proc.stderr and "1 of 32 questions have no answer from new-model" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["models"]["new-model"]["n"] == 29  # named after the file: its lines carry no model_id
    assert summary["run"]["missing"] == {"new-model": [1, 2, 3]} and summary["run"]["baseline_missing"] == [1, 2]
    assert stub.calls == 58


# ------------------------------------------------------------------------------------------------
# winrate on AlpacaEval files
# ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not LEADERBOARD.exists(), reason="../shared/alpaca_eval not available")
def test_winrate_matches_the_alpacaeval_leaderboard() -> None:
    files = sorted(str(p) for p in (ALPACA / "annotations").glob("*.json"))
    proc = run_cli("winrate", *files, "--name-by", "file", "--format", "json", "--bootstrap", "20")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    lb = pd.read_csv(LEADERBOARD, index_col=0)
    assert out["baseline"] == "gpt4_1106_preview" and len(out["models"]) == 10
    for name, m in out["models"].items():
        row = lb.loc[name]
        assert abs(m["win_rate"] - row["win_rate"]) < 0.01, name
        assert abs(m["win_rate_se"] - row["standard_error"]) < 0.01, name
        assert abs(m["discrete_win_rate"] - row["discrete_win_rate"]) < 0.01, name
        assert (m["n"], m["n_wins"], m["n_ties"], m["n_losses"]) == (805, row["n_wins"], row["n_draws"],
                                                                    row["n_wins_base"]), name
        assert 0 < m["lc_win_rate"] < 100 and "inconsistency" not in m
    assert out["models"]["gpt4_1106_preview"]["lc_win_rate"] == pytest.approx(50.0, abs=0.1)
    # short models are corrected upwards, as on the leaderboard
    assert out["models"]["gpt-3.5-turbo-1106"]["lc_win_rate"] > out["models"]["gpt-3.5-turbo-1106"]["win_rate"] + 5
    # categories are AlpacaEval's source subsets
    assert set(out["models"]["claude-2.1"]["categories"]) >= {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}


def test_winrate_rejects_unknown_files(tmp_path: Path) -> None:
    other = write_jsonl(tmp_path / "judgments.jsonl", [{"question_id": 1, "status": "ok"}])
    res = invoke("winrate", str(other))
    assert res.exit_code == 2 and "neither an AlpacaEval annotation file" in res.stderr
    bad = tmp_path / "alpaca.json"
    bad.write_text(json.dumps([{"instruction": "hi", "output_1": "a", "output_2": "b", "generator_1": "base",
                                "generator_2": "m", "preference": 7}]), encoding="utf-8")
    res = invoke("winrate", str(bad))
    assert res.exit_code == 2 and str(bad) in res.stderr and "outside" in res.stderr
    res = invoke("winrate", str(tmp_path / "nope.json"))
    assert res.exit_code == 2 and "not found" in res.stderr


def test_winrate_table_and_baseline_filter(tmp_path: Path) -> None:
    rows = [{"instruction": f"q{i}", "output_1": "base" * (i + 1), "output_2": "m" * (3 * i + 1), "generator_1": "base",
             "generator_2": "m", "preference": [1.0, 2.0, 1.5, 2.0][i % 4]} for i in range(40)]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    res = invoke("winrate", str(path), "--bootstrap", "0")
    assert res.exit_code == 0, res.stderr
    assert "pairwise vs base" in res.stdout and "62.5 ± 6.6" in res.stdout and "20/10/10" in res.stdout
    res = invoke("winrate", str(path), "--baseline-model", "other")
    assert res.exit_code == 2 and "hold base" in res.stderr


def test_compare_protocol_selects_the_rubric_variant() -> None:
    from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, run_cli

    proc = run_cli("compare", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-b", str(ANSWERS_B),
                   "--judge", "openai:x", "--judge-base-url", "http://127.0.0.1:9/v1",
                   "--protocol", "plan-execute", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "先计划、后执行" in proc.stdout and "[参考答案开始]" not in proc.stdout
