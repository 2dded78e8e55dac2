"""`alignbench meta-eval` against the stub server with scripted judges whose agreement with the
labels is known, so every metric is checked against a value worked out by hand (below, in comments);
edge cases (constant scores, failed judgments, ties, bad input); and a smoke run on the real
CritiqueLLM and LLMBar samples in ../shared/meta_eval (skipped when absent)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, run_cli, write_jsonl
from scipy import stats
from scripted_judge import length_score, scripted_judge
from stub_server import StubServer

from alignbench.data import InputError
from alignbench.metaeval import (
    PairOutcome,
    corr_rows,
    correlate,
    load_meta_files,
    pairwise_metrics,
    sample_level,
    system_level,
)
from alignbench.rubrics import load_rubric, rubric_for_protocol

META = SHARED / "meta_eval"
CQ = META / "critiquellm_alignbench_zh"
AB = load_rubric("alignbench")

# -- the scripted data -----------------------------------------------------------------------------
# Pointwise: (question, category, model, response, human score, score the "good" judge gives).
POINTS = [
    ("1+1 等于几？", "数学计算", "m1", "Q1-m1", 1, 2),
    ("1+1 等于几？", "数学计算", "m2", "Q1-m2", 2, 4),
    ("1+1 等于几？", "数学计算", "m3", "Q1-m3", 3, 6),
    ("1+1 等于几？", "数学计算", "m5", "Q1-fail", 5, None),  # the judge never gives a readable score
    ("2+2 等于几？", "数学计算", "m1", "Q2-m1", 1, 8),
    ("2+2 等于几？", "数学计算", "m2", "Q2-m2", 2, 4),
    ("2+2 等于几？", "数学计算", "m3", "Q2-m3", 3, 6),
    ("写一首咏柳的诗", "文本写作", "m4", "Q3-a", 4, 5),  # human scores constant in this question
    ("写一首咏柳的诗", "文本写作", "m4", "Q3-b", 4, 7),
    ("扮演李白", "角色扮演", "m4", "Q4-a", 5, 9),  # a question with one answer
    ("光速是多少？", "专业能力", "m4", "Q5-a", 1, 3),  # judge scores constant in this question
    ("光速是多少？", "专业能力", "m4", "Q5-b", 5, 3),
]
GOOD = {resp: score for *_, resp, _, score in POINTS}
# Pairwise (CritiqueLLM layout): response_1, response_2, label (0: 1 better, 1: 2 better, 2: tie).
# The good judge prefers the higher quality; "偏" pairs: it always picks 助手1; "坏" shown as 助手1:
# unreadable.
QUALITY = {"P1-好": 9, "P1-差": 2, "P2-差": 3, "P2-好": 8, "P3-一": 5, "P3-二": 5, "P4-甲": 7, "P4-乙": 4,
           "P5-偏甲": 6, "P5-偏乙": 5, "P6-坏": 6, "P6-好": 4, "P7-一": 6, "P7-二": 6}
PAIRS = [("P1-好", "P1-差", 0), ("P2-差", "P2-好", 1), ("P3-一", "P3-二", 2), ("P4-甲", "P4-乙", 1),
         ("P5-偏甲", "P5-偏乙", 0), ("P6-坏", "P6-好", 0), ("P7-一", "P7-二", 0)]

_ONE = re.compile(r"\[助手的答案开始\]\n(.*?)\n\[助手的答案结束\]", re.DOTALL)
_TWO = re.compile(r"\[助手1的答案开始\]\n(.*?)\n\[助手1的答案结束\].*?\[助手2的答案开始\]\n(.*?)\n", re.DOTALL)


def table_judge(body: dict) -> str:
    """openai:good follows the tables above; openai:flat scores 5 and calls every pair a tie;
    openai:broken never writes a score or a verdict."""
    model, text = body["model"], body["messages"][-1]["content"]
    if model == "broken":
        return "我觉得这个回答还可以吧。"
    pair = _TWO.search(text)
    if pair:
        first, second = pair.group(1), pair.group(2)
        if "坏" in first:
            return "两个回答各有千秋。"
        if model == "flat":
            return "两者相当。\n最终判决：[[平局]]"
        a, b = QUALITY[first], QUALITY[second]
        winner = "助手1" if "偏" in first or a > b else "助手2" if b > a else "平局"
        return f"比较分析……\n最终判决：[[{winner}]]"
    answer = _ONE.search(text).group(1)
    if model == "flat":
        return "{'综合得分': 5}"
    score = GOOD[answer]
    if score is None:
        return "这个回答嘛……我说不好。"
    return f"分析……\n{{'事实正确性': {score}, '综合得分': {score}}}"


@pytest.fixture
def table_stub():
    with StubServer(responder=table_judge) as server:
        yield server


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    points = write_jsonl(tmp_path / "points.jsonl", [
        {"id": i, "category": cat, "question": q, "reference": "参考答案", "response": resp, "model": model,
         "human_score": float(h) if i % 2 else h}
        for i, (q, cat, model, resp, h, _) in enumerate(POINTS)])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": i, "category": "综合问答", "question": f"问题{i}", "response_1": r1, "response_2": r2, "label": label}
        for i, (r1, r2, label) in enumerate(PAIRS)])
    return points, pairs


def meta_eval(stub: StubServer, *args: str, max_failed: str = "100%"):
    """The command with the scripted judges; their planted failures are what these tests measure, so
    only the all-failed case below checks the exit code that --max-failed gives."""
    return run_cli("meta-eval", "--judge-base-url", stub.url, "--bootstrap", "200", "--max-failed", max_failed, *args)


# -- hand-computed values --------------------------------------------------------------------------
# 数学计算, pooled over its 6 judged rows: judge x = 2,4,6,8,4,6; human y = 1,2,3,1,2,3.
#   Pearson: x-5 = -3,-1,1,3,-1,1; y-2 = -1,0,1,-1,0,1; Σdxdy = 3+0+1-3+0+1 = 2; Σdx² = 22; Σdy² = 4.
MATH_PEARSON = 2 / math.sqrt(22 * 4)
#   Spearman: ranks x = 1,2.5,4.5,6,2.5,4.5; y = 1.5,3.5,5.5,1.5,3.5,5.5; centred products sum to 4,
#   Σ = 16.5 and 16.
MATH_SPEARMAN = 4 / math.sqrt(16.5 * 16)
#   Kendall τ-b: of 15 pairs 8 concordant, 4 discordant; 2 pairs tied in x, 3 tied in y.
MATH_KENDALL = (8 - 4) / math.sqrt((15 - 2) * (15 - 3))
# Sample level: question 1 (x 2,4,6 / y 1,2,3) r = ρ = τ = 1; question 2 (x 8,4,6 / y 1,2,3):
#   r = -2/√(8·2) = -0.5, ρ = 1 - 6·6/(3·8) = -0.5, τ = (1-2)/3; the other three questions are skipped
#   (constant human, one answer, constant judge). Mean of the two blocks:
SAMPLE = {"pearson": (1 - 0.5) / 2, "spearman": (1 - 0.5) / 2, "kendall": (1 - 1 / 3) / 2}
# System level (means over judged rows): m1 (5, 1), m2 (4, 2), m3 (6, 3), m4 (27/5, 19/5).
#   Pearson: x-5.1 = -.1,-1.1,.9,.3; y-2.45 = -1.45,-.45,.55,1.35; Σ = 1.54; Σdx² = 2.12; Σdy² = 4.43.
#   Spearman: ranks x 2,1,4,3 / y 1,2,3,4 -> Σd² = 4 -> 1 - 6·4/(4·15) = 0.6.
#   Kendall: 4 concordant, 2 discordant of 6 -> 1/3.
SYSTEM = {"pearson": 1.54 / math.sqrt(2.12 * 4.43), "spearman": 0.6, "kendall": 1 / 3}
# Pairwise, good judge (7 pairs; P6 fails in one order -> 6 scored):
#   P1 1/1 label 1 ✓; P2 2/2 label 2 ✓; P3 tie/tie label tie ✓; P4 1/1 label 2 ✗ (consistent, wrong);
#   P5 1/2 (position bias) ✗ inconsistent; P7 tie/tie label 1 ✗.
#   consistency 5/6; agreement 3/6; excl. ties: P1, P2, P4 -> 2/3; per order: 2+2+2+0+1+0 = 7 of 12;
#   助手1 rate: decisive verdicts P1 (助手1, 助手2), P2 (助手2, 助手1), P4 (助手1, 助手2), P5 (助手1, 助手1) -> 5/8.
PAIR_GOOD = {"n": 6, "n_failed": 1, "consistency": 5 / 6, "agreement": 3 / 6, "agreement_excl_ties": 2 / 3,
             "n_excl_ties": 3, "accuracy_per_order": 7 / 12, "first_position_rate": 5 / 8}
# Flat judge: every pair tie/tie: consistency 1, agreement only P3 (1/6), no decisive pair or verdict.
PAIR_FLAT = {"n": 6, "n_failed": 1, "consistency": 1.0, "agreement": 1 / 6, "agreement_excl_ties": None,
             "n_excl_ties": 0, "accuracy_per_order": 2 / 12, "first_position_rate": None}


def _close(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        if value is None or isinstance(value, int) and not isinstance(value, bool) and key.startswith("n"):
            assert actual[key] == value, key
        else:
            assert actual[key] == pytest.approx(value, abs=1e-4), key


# -- pure metrics ----------------------------------------------------------------------------------

def test_correlations_match_hand_values_and_scipy() -> None:
    x, y = [2, 4, 6, 8, 4, 6], [1, 2, 3, 1, 2, 3]
    c = correlate(x, y, n_boot=0)
    _close(c, {"pearson": MATH_PEARSON, "spearman": MATH_SPEARMAN, "kendall": MATH_KENDALL, "n": 6})
    rng = np.random.default_rng(3)
    for n in (7, 50, 700):  # the vectorised forms agree with scipy (700 uses scipy's own Kendall)
        a, b = rng.integers(1, 11, n).astype(float), rng.integers(1, 6, n).astype(float)
        assert corr_rows(a[None], b[None], "pearson")[0] == pytest.approx(stats.pearsonr(a, b).statistic)
        assert corr_rows(a[None], b[None], "spearman")[0] == pytest.approx(stats.spearmanr(a, b).statistic)
        assert corr_rows(a[None], b[None], "kendall")[0] == pytest.approx(stats.kendalltau(a, b).statistic)


def test_undefined_correlations_are_none_with_a_reason() -> None:
    for judge, human, reason in (([5, 5, 5], [1, 2, 3], "judge scores are constant"),
                                 ([1, 2, 3], [4, 4, 4], "human scores are constant"),
                                 ([7], [3], "fewer than 2 judged rows"), ([], [], "fewer than 2 judged rows")):
        c = correlate(judge, human)
        assert c["undefined"] == reason and all(c[m] is None for m in ("pearson", "spearman", "kendall"))
        assert c["ci"] == {"pearson": None, "spearman": None, "kendall": None}
    s = sample_level([5, 5, 1], [1, 2, 3], ["q1", "q1", "q2"])
    assert s["n_blocks"] == 0 and s["spearman"] is None and s["skipped"] == {
        "judge scores are constant": 1, "fewer than 2 judged rows": 1}
    assert system_level([1, 2], [1, 2], [None, None])["undefined"] == "rows name no model"
    assert system_level([1, 2, 3], [1, 2, 3], ["a", "a", "a"])["undefined"] == "fewer than 2 models"


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=80), rng.normal(size=80)
    y = x + y
    first = correlate(x, y, 500, np.random.default_rng(7))
    again = correlate(x, y, 500, np.random.default_rng(7))
    assert first == again
    for m in ("pearson", "spearman", "kendall"):
        lo, hi = first["ci"][m]
        assert lo < first[m] < hi


def test_pairwise_metrics_by_hand() -> None:
    outcomes = [PairOutcome("1", "1", "1"), PairOutcome("2", "2", "2"), PairOutcome("tie", "tie", "tie"),
                PairOutcome("2", "1", "1"), PairOutcome("1", "1", "2"), PairOutcome("1", None, "1", "parse_failed"),
                PairOutcome("1", "tie", "tie")]
    m = pairwise_metrics(outcomes, n_boot=0)
    _close(m, PAIR_GOOD)
    assert m["failed_by_status"] == {"parse_failed": 1}
    none = pairwise_metrics([PairOutcome("1", None, None, "judge_error")] * 3, n_boot=50)
    assert none["n"] == 0 and none["agreement"] is None and none["consistency"] is None
    assert none["undefined"] and none["n_failed"] == 3


# -- the command, end to end -----------------------------------------------------------------------

@pytest.mark.slow
def test_an_old_meta_eval_json_loads_and_writes_the_same() -> None:
    """meta_eval.json as run_meta_eval wrote it when the result was a dict: read back, counted, written the same."""
    from alignbench.metaeval import MetaEvalResult

    point = {"n": 11, "n_failed": 1, "failed_by_status": {"parse_failed": 1}, "pearson": 0.5}
    old = {"judges": ["openai:good"], "protocols": ["general"], "data": {"p.jsonl": {"kind": "pointwise", "rows": 12}},
           "scales": {"judge": [1, 10], "human_observed": [1, 5], "note": "n"},
           "bootstrap": {"resamples": 0, "seed": 0, "level": 0.95},
           "results": {"openai:good": {"general": {"judge": {"model": "good"}, "rubric": "alignbench@1",
                                                   "pointwise": point, "pairwise": None, "usage": {"calls": 12}}}}}
    result = MetaEvalResult.model_validate_json(json.dumps(old))
    assert json.dumps(result.as_dict(), ensure_ascii=False, indent=2) == json.dumps(old, ensure_ascii=False, indent=2)
    assert (result.failed, result.total, result.by_status) == (1, 12, {"parse_failed": 1})


def test_meta_eval_json_matches_hand_values(table_stub: StubServer, files: tuple[Path, Path]) -> None:
    points, pairs = files
    proc = meta_eval(table_stub, "--data", str(points), "--data", str(pairs), "--judge", "openai:good,openai:flat",
                     "--protocol", "multi-dimension,general", "--format", "json", "--concurrency", "4")
    assert proc.returncode == 0, proc.stderr
    assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout
    out = json.loads(proc.stdout)
    assert out["judges"] == ["openai:good", "openai:flat"] and out["protocols"] == ["multi-dimension", "general"]
    assert out["scales"]["judge"] == [1, 10] and out["scales"]["human_observed"] == [1, 5]
    assert "invariant" in out["scales"]["note"]
    for protocol in ("multi-dimension", "general"):
        good = out["results"]["openai:good"][protocol]
        pw = good["pointwise"]
        assert (pw["n"], pw["n_failed"], pw["failed_by_status"]) == (11, 1, {"parse_failed": 1})
        judged = [(s, h) for *_, h, s in POINTS if s is not None]
        x, y = [s for s, _ in judged], [h for _, h in judged]
        _close(pw, {"pearson": stats.pearsonr(x, y).statistic, "spearman": stats.spearmanr(x, y).statistic,
                    "kendall": stats.kendalltau(x, y).statistic})
        _close(pw["sample_level"], {**SAMPLE, "n_blocks": 2})
        assert pw["sample_level"]["skipped"] == {"fewer than 2 judged rows": 1, "judge scores are constant": 1,
                                                 "human scores are constant": 1}
        _close(pw["system_level"], {**SYSTEM, "n_systems": 4})
        math_cat = pw["categories"]["数学计算"]
        _close(math_cat, {"pearson": MATH_PEARSON, "spearman": MATH_SPEARMAN, "kendall": MATH_KENDALL,
                          "n": 6, "n_failed": 1})
        assert pw["categories"]["文本写作"]["undefined"] == "human scores are constant"
        assert pw["categories"]["专业能力"]["undefined"] == "judge scores are constant"
        assert pw["categories"]["角色扮演"]["spearman"] is None
        lo, hi = pw["ci"]["spearman"]
        assert lo <= pw["spearman"] <= hi
        _close(good["pairwise"], PAIR_GOOD)
        assert good["rubric"] == load_rubric(rubric_for_protocol(protocol)).id
        flat = out["results"]["openai:flat"][protocol]
        assert flat["pointwise"]["n"] == 12 and flat["pointwise"]["spearman"] is None
        assert flat["pointwise"]["undefined"] == "judge scores are constant"
        assert flat["pointwise"]["system_level"]["undefined"] == "judge model means are constant"
        _close(flat["pairwise"], PAIR_FLAT)
    # each (judge, protocol) is its own set of prompts: 12 rows + 7 pairs × 2, plus one parse retry
    # of the failing row and of the failing order each
    assert table_stub.calls == 2 * (12 + 1 + 14 + 1) + 2 * (12 + 14 + 1)
    general = [r for r in table_stub.requests if "只含综合得分的字典" in r["messages"][0]["content"]]
    assert len(general) == 13 + 12 and not any("本题的评价维度" in r["messages"][-1]["content"] for r in general)


@pytest.mark.slow
def test_meta_eval_table_resume_and_all_failed(table_stub: StubServer, files: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    points, pairs = files
    args = ("--data", str(points), "--data", str(pairs), "--judge", "openai:good,openai:flat")
    assert meta_eval(table_stub, *args, "--format", "json").returncode == 0
    calls = table_stub.calls
    proc = meta_eval(table_stub, *args, "--out", str(tmp_path / "me"))  # every reply comes from the cache
    assert proc.returncode == 0, proc.stderr
    assert table_stub.calls == calls
    text = proc.stdout
    assert "protocols × judges" in text and "undefined" in text and "nan" not in text.lower()
    assert "openai:flat · multi-dimension: pooled correlation undefined: judge scores are constant" in text
    assert "1 pointwise judgment(s) failed and are excluded (parse_failed 1)" in text
    saved = json.loads((tmp_path / "me" / "meta_eval.json").read_text(encoding="utf-8"))
    assert saved["results"]["openai:good"]["multi-dimension"]["usage"]["cached_replies"] == 28
    lines = (next((tmp_path / "me").glob("openai-good-*__multi-dimension")) / "pointwise.jsonl").read_text(
        encoding="utf-8")
    rows = [json.loads(line) for line in lines.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 13)) and rows[3]["judgment"]["status"] == "parse_failed"
    # a judge that never answers in format: every judgment failed, every figure undefined, exit 3 (CI notices)
    proc = meta_eval(table_stub, "--data", str(points), "--data", str(pairs), "--judge", "openai:broken",
                     "--format", "json", "--parse-retries", "0", max_failed="5%")
    assert proc.returncode == 3 and "judgments failed (parse_failed" in proc.stderr, proc.stderr
    broken = json.loads(proc.stdout)["results"]["openai:broken"]["multi-dimension"]
    assert broken["pointwise"]["n"] == 0 and broken["pointwise"]["n_failed"] == 12
    assert broken["pointwise"]["spearman"] is None and broken["pointwise"]["sample_level"]["spearman"] is None
    assert broken["pairwise"]["n"] == 0 and broken["pairwise"]["agreement"] is None


@pytest.mark.slow
def test_llmbar_layout_and_length_judge(tmp_path: Path) -> None:
    """LLMBar files: a JSON list, label 1/2 names the better output; no category (use --category)."""
    rows = [{"input": "Say hi.", "output_1": "hi", "output_2": "Hello there! " * 12, "label": 2},
            {"input": "Name a prime.", "output_1": "Seven is a prime number, divisible only by one and itself." * 3,
             "output_2": "7", "label": 2},
            {"input": "Echo x.", "output_1": "x", "output_2": "y", "label": 1}]
    path = tmp_path / "llmbar.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path}:1: no 'category'; pass --category")):
        load_meta_files([path], AB)
    with StubServer(responder=scripted_judge) as stub:
        proc = meta_eval(stub, "--data", str(path), "--judge", "openai:length", "--category", "基本任务",
                         "--format", "json")
        assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["results"]["openai:length"]["multi-dimension"]["pairwise"]
    # the longer output wins: pair 1 right (2), pair 2 wrong (the long one is 1), pair 3 same length: tie
    _close(m, {"n": 3, "consistency": 1.0, "agreement": 1 / 3, "agreement_excl_ties": 1 / 2, "n_excl_ties": 2,
               "accuracy_per_order": 2 / 6})
    assert m["human_labels"] == {"1": 1, "2": 2, "tie": 0}


def test_bad_input_fails_before_any_call(table_stub: StubServer, files: tuple[Path, Path], tmp_path: Path) -> None:
    points, pairs = files
    bad_label = write_jsonl(tmp_path / "bad.jsonl", [
        {"category": "综合问答", "question": "q", "response_1": "a", "response_2": "b", "label": 0},
        {"category": "综合问答", "question": "q", "response_1": "a", "response_2": "b", "label": 3}])
    proc = meta_eval(table_stub, "--data", str(points), "--data", str(bad_label), "--judge", "openai:good")
    assert proc.returncode == 2 and f"{bad_label}:2: label 3 is not 0 (response_1 better)" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = meta_eval(table_stub, "--data", str(points), "--judge", "openai:good", "--protocol", "general,cot")
    assert proc.returncode == 2 and "unknown protocol 'cot'" in proc.stderr
    assert table_stub.calls == 0
    for rows, message in (
            ([{"category": "数学计算", "question": "q", "response": "a", "human_score": "很好"}],
             ":1: field 'human_score' must be a number"),
            ([{"category": "闲聊", "question": "q", "response": "a", "human_score": 3}], ":1: unknown category '闲聊'"),
            ([{"category": "数学计算", "question": "q", "response": "a"}], ":1: neither a pointwise row"),
            ([{"category": "数学计算", "question": " ", "response": "a", "human_score": 1}], ":1: empty field 'question'"),
            ([{"input": "q", "output_1": "a", "output_2": "b", "label": 0, "category": "基本任务"}],
             ":1: label 0 is not 1 (output_1 better) or 2 (output_2 better)")):
        path = write_jsonl(tmp_path / "bad_rows.jsonl", rows)
        with pytest.raises(InputError, match=re.escape(f"{path}{message}")):
            load_meta_files([path], AB)
    with pytest.raises(InputError, match="nope.jsonl: file not found"):
        load_meta_files([tmp_path / "nope.jsonl"], AB)


def test_api_result_counts_the_failures_the_exit_code_is_based_on(table_stub: StubServer, files: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    """``alignbench.meta_eval`` returns meta_eval.json's content (a model) with ``failed``, ``total`` and ``by_status``;
    ``alignbench meta-eval --max-failed`` decides its exit code on exactly these numbers."""
    import alignbench
    from alignbench.api import plan_meta_eval
    from alignbench.metaeval import MetaEvalResult

    points, pairs = files
    plan = plan_meta_eval([points, pairs], "openai:good,openai:flat", base_url=table_stub.url)
    assert [len(requests) for _, requests in plan.requests()] == [12 + 2 * 7] * 2 and table_stub.calls == 0
    result = alignbench.meta_eval([points, pairs], "openai:good,openai:flat", base_url=table_stub.url, bootstrap=0,
                                  out=tmp_path / "me")
    assert isinstance(result, MetaEvalResult)
    # good: Q1-fail (pointwise) and P6 (pairwise) unreadable; flat: P6 unreadable. 12 rows + 7 pairs per judge.
    assert (result.failed, result.total, result.by_status) == (3, 2 * (12 + 7), {"parse_failed": 3})
    entries = [e[kind] for per in result.results.values() for e in per.values() for kind in ("pointwise", "pairwise")]
    assert result.failed == sum(m["n_failed"] for m in entries) and result.total == sum(m["n"] + m["n_failed"]
                                                                                        for m in entries)
    saved = json.loads((tmp_path / "me" / "meta_eval.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(result.as_dict())) and "failed" not in saved  # the file is unchanged
    assert MetaEvalResult.model_validate(saved).as_dict() == saved  # read back, written the same
    args = ("--data", str(points), "--data", str(pairs), "--judge", "openai:good,openai:flat", "--format", "json")
    over = meta_eval(table_stub, *args, max_failed="2")
    assert over.returncode == 3, over.stderr
    assert ("3 of 38 judgments failed (parse_failed 3), more than --max-failed 2 allows (2)") in over.stderr
    assert MetaEvalResult.model_validate_json(over.stdout).failed == result.failed  # the same count from the printed JSON
    assert meta_eval(table_stub, *args, max_failed="3").returncode == 0
    broken = alignbench.meta_eval([points, pairs], "openai:broken", base_url=table_stub.url, bootstrap=0,
                                  parse_retries=0)
    assert (broken.failed, broken.total, broken.by_status) == (19, 19, {"parse_failed": 19})


def test_loader_maps_critiquellm_fields_and_groups_questions(files: tuple[Path, Path]) -> None:
    points, pairs = files
    data = load_meta_files([points, pairs], AB)
    assert len(data.points) == 12 and len(data.pairs) == 7
    assert [p.label for p in data.pairs] == ["1", "2", "tie", "2", "1", "1", "1"]
    blocks = [p.question.id for p in data.points]
    assert blocks == [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5]  # rows of one question share a block
    assert data.points[0].question.subcategory == "" and data.points[0].model == "m1"
    assert data.files[str(points)]["human_range"] == [1.0, 5.0]


@pytest.mark.slow
def test_concurrency_is_bounded(files: tuple[Path, Path]) -> None:
    points, _ = files
    with StubServer(responder=table_judge, latency=0.1) as stub:
        proc = meta_eval(stub, "--data", str(points), "--judge", "openai:good", "--concurrency", "3",
                         "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert 2 <= stub.max_in_flight <= 3


# -- real data smoke test --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not (CQ / "pointwise_alignbench_reference_free_sample.jsonl").is_file()
                    or not (META / "llmbar" / "natural.json").is_file(), reason="../shared/meta_eval absent")
def test_real_samples_with_a_length_judge(tmp_path: Path) -> None:
    """The CritiqueLLM and LLMBar samples through the real command with a deterministic length
    judge: every figure must equal what the judge's rule gives when computed straight from the files."""
    pointwise = CQ / "pointwise_alignbench_reference_free_sample.jsonl"
    pairwise = CQ / "pairwise_alignbench_reference_free_sample.jsonl"
    llmbar = META / "llmbar" / "natural.json"
    with StubServer(responder=scripted_judge) as stub:
        proc = meta_eval(stub, "--data", str(pointwise), "--data", str(pairwise), "--data", str(llmbar),
                         "--category", "基本任务", "--judge", "openai:length", "--protocol", "reference-free",
                         "--format", "json", "--max-answer-chars", "0")
        assert proc.returncode == 0, proc.stderr
        assert stub.calls == 100 + 2 * 100 + 2 * 100
    result = json.loads(proc.stdout)["results"]["openai:length"]["reference-free"]
    rows = [json.loads(line) for line in pointwise.read_text(encoding="utf-8").splitlines()]
    x = [length_score(r["response"]) for r in rows]
    y = [float(r["human_score"]) for r in rows]
    pw = result["pointwise"]
    assert pw["n"] == 100 and pw["n_failed"] == 0
    _close(pw, {"pearson": stats.pearsonr(x, y).statistic, "spearman": stats.spearmanr(x, y).statistic,
                "kendall": stats.kendalltau(x, y).statistic})
    models = sorted({r["model"] for r in rows})
    mx = [np.mean([xi for xi, r in zip(x, rows, strict=True) if r["model"] == m]) for m in models]
    my = [np.mean([yi for yi, r in zip(y, rows, strict=True) if r["model"] == m]) for m in models]
    _close(pw["system_level"], {"n_systems": 8, "spearman": stats.spearmanr(mx, my).statistic})
    assert set(pw["categories"]) == set(AB.category_names())

    def expected(pairs: list[tuple[str, str, str]]) -> float:
        longer = ["1" if len(a) > len(b) else "2" if len(b) > len(a) else "tie" for a, b, _ in pairs]
        return float(np.mean([w == label for w, (_, _, label) in zip(longer, pairs, strict=True)]))

    cq = [json.loads(line) for line in pairwise.read_text(encoding="utf-8").splitlines()]
    cq_pairs = [(r["response_1"], r["response_2"], {0: "1", 1: "2", 2: "tie"}[r["label"]]) for r in cq]
    lb = json.loads(llmbar.read_text(encoding="utf-8"))
    lb_pairs = [(r["output_1"], r["output_2"], str(r["label"])) for r in lb]
    files = result["pairwise"]["files"]
    _close(files[str(pairwise)], {"n": 100, "consistency": 1.0, "agreement": expected(cq_pairs)})
    _close(files[str(llmbar)], {"n": 100, "consistency": 1.0, "agreement": expected(lb_pairs)})
    _close(result["pairwise"], {"n": 200, "agreement": expected(cq_pairs + lb_pairs)})
