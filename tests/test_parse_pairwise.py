"""Golden pairwise judge outputs (tests/cases/parse_pairwise.yaml) through the verdict parser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alignbench.parse import parse_verdict
from alignbench.types import Status

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "parse_pairwise.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case: dict) -> None:
    parsed = parse_verdict(case["text"])
    assert parsed.status is Status(case["status"]), parsed.detail
    if "detail_contains" in case:
        assert case["detail_contains"] in parsed.detail
    if parsed.ok:
        assert parsed.winner == case["winner"]
    else:
        assert parsed.winner is None and parsed.detail


def test_none_and_whitespace_are_parse_failures() -> None:
    for text in (None, "   \n"):
        parsed = parse_verdict(text)
        assert parsed.status is Status.PARSE_FAILED and parsed.winner is None


def test_every_verdict_word_maps_to_a_position() -> None:
    for word, winner in (("助手1", "1"), ("助手 2", "2"), ("助手一", "1"), ("助手二", "2"), ("质量相当", "tie"),
                         ("平局", "tie")):
        assert parse_verdict(f"{{'综合比较结果': '{word}'}}").winner == winner, word
        assert parse_verdict(f"最终判决：[[{word}]]").winner == winner, word
