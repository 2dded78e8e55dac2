"""Golden judge outputs (tests/cases/parse.yaml) through the parser: what real judges write."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alignbench.parse import parse_scores
from alignbench.types import Status

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "parse.yaml").read_text(encoding="utf-8"))
FACTUAL = ["事实正确性", "满足用户需求", "清晰度", "完备性"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case: dict) -> None:
    parsed = parse_scores(case["text"], case.get("dims", FACTUAL))
    assert parsed.status is Status(case["status"]), parsed.detail
    if parsed.status is Status.OK:
        assert parsed.overall == pytest.approx(case["overall"])
        for dim, value in case.get("scores", {}).items():
            assert parsed.scores[dim] == pytest.approx(value)
        if "scores" in case and not case["scores"]:
            assert parsed.scores == {}
    else:
        assert parsed.overall is None or parsed.status is Status.OUT_OF_RANGE
        assert parsed.detail


def test_failures_never_carry_a_usable_score() -> None:
    for text in ("", "无法评价", "random words", "{'综合得分': 11}"):
        parsed = parse_scores(text, FACTUAL)
        assert not parsed.ok


def test_overall_key_is_configurable() -> None:
    parsed = parse_scores("{'accuracy': 4, 'overall': 4}", ["accuracy"], overall_key="overall", scale=(1, 5))
    assert parsed.ok and parsed.overall == 4 and parsed.scores == {"accuracy": 4}
