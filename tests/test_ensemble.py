"""Judge ensembles: averaging several judges' judgments and measuring their disagreement (values
worked out by hand), and `score --judge a,b` end to end against the stub server."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from conftest import ANSWERS_A, ANSWERS_B, QUESTIONS, read_jsonl, run_cli
from scipy import stats
from scripted_judge import scripted_judge
from stub_server import StubServer

from alignbench.ensemble import combine, disagreement
from alignbench.rubrics import load_rubric
from alignbench.rundir import folder_name
from alignbench.types import Judgment, Status

AB = load_rubric("alignbench")
CATS = AB.category_names()


def j(qid: int, category: str, overall: float | None, judge: str, status: Status = Status.OK,
      **scores: float) -> Judgment:
    return Judgment(question_id=qid, model="m", category=category, subcategory="", answer_type="t",
                    status=status, scores=scores if status is Status.OK else {},
                    overall=overall if status is Status.OK else None, judge=judge, rubric="alignbench@1",
                    prompt_hash=f"{judge}{qid}", detail=None if status is Status.OK else "no dict")


# overall scores: 数学计算 A 2,4,6 / B 3,4,9; 文本写作 A 5,7 / B 7,5; 专业能力 A 3,3 / B 4,6
ROWS = [(1, "数学计算", 2, 3), (2, "数学计算", 4, 4), (3, "数学计算", 6, 9), (4, "文本写作", 5, 7),
        (5, "文本写作", 7, 5), (6, "专业能力", 3, 4), (7, "专业能力", 3, 6)]
A = [j(q, c, a, "A", 事实正确性=a) for q, c, a, _ in ROWS]
B = [j(q, c, b, "B", 事实正确性=b + 1) for q, c, _, b in ROWS]


def test_combine_averages_each_dimension_and_the_overall_score() -> None:
    a = [j(1, "数学计算", 6, "A", 事实正确性=7, 完备性=5), j(2, "数学计算", 8, "A", 事实正确性=8)]
    b = [j(1, "数学计算", 7, "B", 事实正确性=9, 完备性=6), j(2, "数学计算", 4, "B", 事实正确性=3, 完备性=4)]
    first, second = combine({"A": a, "B": b})
    assert first.status is Status.OK and first.overall == 6.5 and first.scores == {"事实正确性": 8, "完备性": 5.5}
    assert first.judge == "A+B" and first.prompt_hash == "A1+B1" and first.detail == "mean of 2 judges"
    # a dimension only one judge scored is that judge's value, and the judgment says so
    assert second.overall == 6 and second.scores == {"事实正确性": 5.5, "完备性": 4}
    assert "完备性 scored by only some" in second.detail


def test_a_failed_judge_fails_the_ensemble_judgment() -> None:
    a = [j(1, "数学计算", 6, "A"), j(2, "数学计算", None, "A", Status.PARSE_FAILED)]
    b = [j(1, "数学计算", 7, "B"), j(2, "数学计算", 4, "B")]
    ok, failed = combine({"A": a, "B": b})
    assert ok.status is Status.OK
    assert failed.status is Status.PARSE_FAILED and failed.overall is None and failed.scores == {}
    assert failed.detail == "A: parse_failed (no dict)"
    with pytest.raises(ValueError, match="question 2 of m was not judged by B"):
        combine({"A": a, "B": b[:1]})
    with pytest.raises(ValueError, match="at least two judges"):
        combine({"A": a})


def test_disagreement_by_hand() -> None:
    d = disagreement({"A": A, "B": B}, CATS)
    cats = d["categories"]
    assert list(cats) == ["数学计算", "文本写作", "专业能力"]  # rubric order, only categories present
    # 数学计算: |2-3|, |4-4|, |6-9| -> 4/3; same order -> ρ = 1
    assert cats["数学计算"]["mad"] == pytest.approx(4 / 3, abs=1e-4) and cats["数学计算"]["spearman"] == 1.0
    # 文本写作: opposite order -> ρ = -1, MAD 2
    assert cats["文本写作"]["mad"] == 2 and cats["文本写作"]["spearman"] == -1.0
    # 专业能力: judge A gave 3 and 3 -> no rank correlation, said so
    assert cats["专业能力"]["mad"] == 2 and cats["专业能力"]["spearman"] is None
    assert cats["专业能力"]["undefined"] == "first judge's scores are constant"
    # all 7: MAD (1+0+3+2+2+1+3)/7; ranks A 1,4,6,5,7,2.5,2.5 / B 1,2.5,7,6,4,2.5,5 -> Σd·d = 17.75,
    # Σd² = 27.5 on both sides -> ρ = 17.75/27.5
    assert d["overall"]["mad"] == pytest.approx(12 / 7, abs=1e-4)
    assert d["overall"]["spearman"] == pytest.approx(17.75 / 27.5, abs=1e-4)
    # per dimension: B's 事实正确性 is its overall + 1
    diffs = [abs(a - (b + 1)) for _, _, a, b in ROWS]
    assert d["dimensions"]["事实正确性"] == {"n": 7, "mad": pytest.approx(np.mean(diffs), abs=1e-4)}
    assert d["n_answers"] == d["n_compared"] == 7
    # α per category too: 文本写作's two judges rank its answers in opposite orders
    assert d["categories"]["文本写作"]["alpha"]["interval"]["alpha"] < 0 < d["categories"]["数学计算"]["alpha"]["interval"]["alpha"]


def test_disagreement_skips_failed_answers_and_averages_judge_pairs() -> None:
    b = list(B)
    b[0] = j(1, "数学计算", None, "B", Status.JUDGE_ERROR)
    d = disagreement({"A": A, "B": b}, CATS)
    assert d["n_compared"] == 6 and d["categories"]["数学计算"]["n"] == 2
    assert d["categories"]["数学计算"]["mad"] == pytest.approx(1.5)  # |4-4|, |6-9|
    c = [j(q, cat, 10 - a, "C") for q, cat, a, _ in ROWS]
    three = disagreement({"A": A, "B": B, "C": c}, CATS)
    pairs = three["overall"]["pairs"]
    assert set(pairs) == {"A vs B", "A vs C", "B vs C"}
    assert pairs["A vs C"]["spearman"] == -1.0
    assert three["overall"]["mad"] == pytest.approx(np.mean([p["mad"] for p in pairs.values()]), abs=1e-4)
    assert three["overall"]["spearman"] == pytest.approx(np.mean([p["spearman"] for p in pairs.values()]), abs=1e-4)


@pytest.mark.slow
def test_score_with_two_judges(tmp_path: Path) -> None:
    out = tmp_path / "ens"
    args = ("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "-a", str(ANSWERS_B), "--judge",
            "openai:length,openai:noise", "--out", str(out), "--format", "json")
    with StubServer(responder=scripted_judge) as stub:
        proc = run_cli(*args, "--judge-base-url", stub.url)
        assert proc.returncode == 0, proc.stderr
        assert stub.calls == 2 * 64  # each judge judges every answer of both models
        assert {r["model"] for r in stub.requests} == {"length", "noise"}
        payload = json.loads(proc.stdout)
        again = run_cli(*args, "--judge-base-url", stub.url)
        assert again.returncode == 0 and stub.calls == 2 * 64  # every judge's replies are cached
    assert json.loads(again.stdout)["models"]["model-a"]["ensemble"] == payload["models"]["model-a"]["ensemble"]
    for model in ("model-a", "model-b"):
        summary = payload["models"][model]
        ens = summary["ensemble"]
        assert summary["run"]["judge"]["name"] == "openai:length+openai:noise"
        assert ens["judges"] == ["openai:length", "openai:noise"]
        per = {name: read_jsonl(out / "judges" / folder_name(name) / model / "judgments.jsonl")
               for name in ens["judges"]}
        assert ens["runs"] == {name: str(out / "judges" / folder_name(name) / model) for name in per}
        mine = read_jsonl(out / model / "judgments.jsonl")
        assert [x["question_id"] for x in mine] == list(range(1, 33))
        for e, a, b in zip(mine, per["openai:length"], per["openai:noise"], strict=True):
            assert e["status"] == "ok" and e["overall"] == pytest.approx((a["overall"] + b["overall"]) / 2)
            for dim in e["scores"]:
                assert e["scores"][dim] == pytest.approx((a["scores"][dim] + b["scores"][dim]) / 2)
        x = np.array([a["overall"] for a in per["openai:length"]])
        y = np.array([b["overall"] for b in per["openai:noise"]])
        assert ens["overall"]["mad"] == pytest.approx(np.abs(x - y).mean(), abs=1e-4)
        for level in ("interval", "ordinal"):  # Krippendorff's α beside the disagreement, by the package
            a = ens["overall"]["alpha"][level]
            expected = krippendorff.alpha(reliability_data=np.vstack([x, y]), level_of_measurement=level)
            assert a["alpha"] == pytest.approx(expected, abs=1e-4) and a["ci"][0] <= a["alpha"] <= a["ci"][1]
        for cat, fig in ens["categories"].items():
            idx = [i for i, a in enumerate(per["openai:length"]) if a["category"] == cat]
            assert fig["n"] == 4 and fig["mad"] == pytest.approx(np.abs(x[idx] - y[idx]).mean(), abs=1e-4)
            if np.ptp(x[idx]) and np.ptp(y[idx]):
                assert fig["spearman"] == pytest.approx(stats.spearmanr(x[idx], y[idx]).statistic, abs=1e-4)
            else:
                assert fig["spearman"] is None and fig["undefined"]
        assert ens["scores"]["openai:length"]["overall"] == json.loads(
            (out / "judges" / folder_name("openai:length") / model / "summary.json").read_text(encoding="utf-8"))["overall"]
        # the ensemble's category scores are the means of its averaged judgments
        assert summary["overall"] is not None and summary["n_ok"] == 32
    shown = run_cli("show", str(out / "model-a"))
    assert shown.returncode == 0, shown.stderr
    assert "judge disagreement" in shown.stdout and "MAD" in shown.stdout and "α interval" in shown.stdout and "总分 overall" in shown.stdout


def test_ensemble_bad_judge_fails_before_any_call(stub: StubServer, tmp_path: Path) -> None:
    proc = run_cli("score", "-q", str(QUESTIONS), "-a", str(ANSWERS_A), "--judge", "openai:x,nonesuch",
                   "--judge-base-url", stub.url, "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown judge 'nonesuch'" in proc.stderr and "Traceback" not in proc.stderr
    assert stub.calls == 0 and not (tmp_path / "r").exists()


def test_an_ensemble_of_dialogues_keeps_per_turn_scores(tmp_path: Path) -> None:
    zh = QUESTIONS.parent
    out = tmp_path / "ens"
    with StubServer(responder=scripted_judge) as stub:
        proc = run_cli("score", "-q", str(zh / "multiturn_questions.jsonl"), "-a",
                       str(zh / "answers" / "multiturn-model-a.jsonl"), "--rubric", "alignbench-multiturn",
                       "--judge", "openai:length,openai:noise", "--judge-base-url", stub.url, "--out", str(out),
                       "--format", "json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # one model: its summary
    mine = read_jsonl(out / "judgments.jsonl")  # one model: the folder is the run
    per = [read_jsonl(out / "judges" / folder_name(name) / "judgments.jsonl") for name in ("openai:length", "openai:noise")]
    assert sum(len(e["turns"]) for e in mine) == summary["dialogues"]["judged_turns"] == 13
    for e, a, b in zip(mine, *per, strict=True):
        assert [t["turn"] for t in e["turns"]] == [t["turn"] for t in a["turns"]]
        for te, ta, tb in zip(e["turns"], a["turns"], b["turns"], strict=True):
            assert te["overall"] == pytest.approx((ta["overall"] + tb["overall"]) / 2, abs=1e-4)
        assert e["overall"] == pytest.approx((a["overall"] + b["overall"]) / 2, abs=1e-4)
    turn1 = [t["overall"] for e in mine for t in e["turns"] if t["turn"] == 1]
    assert summary["dialogues"]["turns"]["1"]["score"] == pytest.approx(np.mean(turn1), abs=1e-2)
