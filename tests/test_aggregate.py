"""AlignBench's aggregation: category means, group means, overall = mean of the two groups."""

from __future__ import annotations

import pytest
from conftest import OFFICIAL

from alignbench.aggregate import summarize
from alignbench.data import load_questions
from alignbench.rubrics import load_rubric
from alignbench.types import Judgment, Status

AB = load_rubric("alignbench")


def _j(qid: int, category: str, overall: float | None, status: Status = Status.OK, **scores: float) -> Judgment:
    return Judgment(question_id=qid, model="m", category=category, subcategory="x", answer_type="t", status=status,
                    scores=scores if status is Status.OK else {}, overall=overall if status is Status.OK else None,
                    judge="j", rubric=AB.id, prompt_hash="h")


def test_hand_computed_summary() -> None:
    js = [
        _j(1, "数学计算", 6, 事实正确性=6), _j(2, "数学计算", 8, 事实正确性=7),  # 7.0
        _j(3, "逻辑推理", 5, 事实正确性=5),  # 5.0
        _j(4, "基本任务", 9), _j(5, "基本任务", 7),  # 8.0
        _j(6, "专业能力", 4),  # 4.0
        _j(7, "专业能力", None, Status.PARSE_FAILED),
        _j(8, "逻辑推理", None, Status.JUDGE_ERROR),
    ]
    s = summarize(js, AB, seed=1)
    assert s["categories"]["数学计算"]["score"] == 7.0
    assert s["categories"]["专业能力"] == {**s["categories"]["专业能力"], "score": 4.0, "n": 1, "n_failed": 1}
    assert s["reasoning"] == 6.0  # (7 + 5) / 2
    assert s["language"] == 6.0  # (8 + 4) / 2, only the categories present
    assert s["overall"] == 6.0
    assert s["n_failed"] == 2 and s["failed_by_status"] == {"judge_error": 1, "parse_failed": 1}
    assert s["n_ok"] == 6 and s["n"] == 8
    assert s["categories"]["数学计算"]["dimensions"]["事实正确性"] == {"mean": 6.5, "n": 2}
    assert s["dimensions"]["事实正确性"] == {"mean": 6.0, "n": 3}
    assert s["groups"]["language"]["complete"] is False
    lo, hi = s["overall_ci"]
    assert lo <= s["overall"] <= hi
    assert summarize(js, AB, seed=1)["overall_ci"] == s["overall_ci"]  # seeded


def test_failures_never_move_the_mean() -> None:
    base = [_j(i, "数学计算", 8) for i in range(5)]
    with_failures = base + [_j(10 + i, "数学计算", None, Status.PARSE_FAILED) for i in range(5)]
    assert summarize(base, AB)["categories"]["数学计算"]["score"] == summarize(with_failures, AB)["categories"]["数学计算"]["score"] == 8.0


def test_official_weights_are_one_quarter_and_one_twelfth() -> None:
    if not OFFICIAL.exists():
        pytest.skip("../shared/alignbench not present")
    qs = load_questions(OFFICIAL, AB)
    # 10 for 数学计算 only, 1 elsewhere: overall = 1 + 9/4
    js = [_j(q.id, q.category, 10 if q.category == "数学计算" else 1) for q in qs]
    assert summarize(js, AB, n_boot=200)["overall"] == pytest.approx(1 + 9 / 4)
    js = [_j(q.id, q.category, 10 if q.category == "角色扮演" else 1) for q in qs]
    assert summarize(js, AB, n_boot=200)["overall"] == pytest.approx(1 + 9 / 12)


def test_ci_narrows_with_more_answers() -> None:
    small = [_j(i, "数学计算", 3 + (i % 5)) for i in range(10)]
    large = [_j(i, "数学计算", 3 + (i % 5)) for i in range(400)]
    w_small = (lambda c: c[1] - c[0])(summarize(small, AB)["categories"]["数学计算"]["ci"])
    w_large = (lambda c: c[1] - c[0])(summarize(large, AB)["categories"]["数学计算"]["ci"])
    assert w_large < w_small / 3
