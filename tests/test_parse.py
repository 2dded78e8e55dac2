"""Golden judge outputs (tests/cases/parse.yaml) through the parser: what real judges write."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from alignbench.parse import TAIL_CHARS, parse_scores, parse_sections, parse_verdict
from alignbench.types import Status

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "parse.yaml").read_text(encoding="utf-8"))
FACTUAL = ["事实正确性", "满足用户需求", "清晰度", "完备性"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case: dict) -> None:
    scale = tuple(case.get("scale", (1, 10)))
    parsed = parse_scores(case["text"], case.get("dims", FACTUAL), case.get("overall_key", "综合得分"), scale)
    assert parsed.status is Status(case["status"]), parsed.detail
    if "detail_contains" in case:
        assert case["detail_contains"] in parsed.detail
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


# -- bounded, linear work ------------------------------------------------------------------------

def adversarial(size: int) -> dict[str, str]:
    """Replies built to make a backtracking parser quadratic: long runs without the separator a
    pattern waits for, and many anchors that each start a match."""
    return {
        "digits in one brace block": "{" + "0123456789" * (size // 10) + "}",
        "brace, digits and colons, never closed": "{" + "12:34" * (size // 5),
        "digits and colons without separators": ("9" * 50 + ":") * (size // 51),
        "open braces": "{" * size,
        "the key with a colon, repeated": "{" + "'综合得分':" * (size // 7),
        "the key, then spaces": "综合得分" + " " * size + "7",
        "a verdict label, then spaces": "最终判决" + " " * size + "x",
        "open brackets, then spaces": "[[" + " " * size + "x",
        "bold heading, then spaces": "**评估计划" + " " * size + "x",
        "key and brace mix": ("{综合得分:1" + "9" * 50 + ":") * (size // 60),
        "quotes never closed": "“" * size,
        "verdict-only lines": "[[A]]\n" * (size // 6),
    }


# 200 KB as in issue 11, and just under the search window so that the whole text is searched
SIZES = {"200KB": 200_000, "window": TAIL_CHARS - 1_000}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(adversarial(10)))
def test_adversarial_reply_parses_fast(name: str, size: str) -> None:
    """A correctness guard, not a benchmark: the old parser took minutes on 100 KB of these."""
    text = adversarial(SIZES[size])[name]
    assert len(text) >= SIZES[size] * 0.95
    for tail in ("", "\n{'事实正确性': 7, '满足用户需求': 7, '清晰度': 7, '完备性': 7, '综合得分': 7}"):
        start = time.perf_counter()
        parsed = parse_scores(text + tail, FACTUAL)
        parse_verdict(text + tail)
        parse_sections(text + tail, {"plan": "评估计划", "execution": "执行"})
        assert time.perf_counter() - start < 1.0, name
        assert parsed.ok == bool(tail) and (not tail or parsed.overall == 7)


def test_only_the_tail_of_a_runaway_reply_is_searched() -> None:
    """The verdict closes a reply; one further than TAIL_CHARS from the end is not looked for (a
    runaway reply is a failure, and the bound caps the work)."""
    verdict = "{'事实正确性': 7, '满足用户需求': 7, '清晰度': 7, '完备性': 7, '综合得分': 7}"
    filler = "\n" + "回答分析。" * 20
    near = verdict + filler * ((TAIL_CHARS - 500) // len(filler))
    far = verdict + filler * ((TAIL_CHARS + 500) // len(filler))
    assert parse_scores(near, FACTUAL).overall == 7
    assert parse_scores(far, FACTUAL).status is Status.PARSE_FAILED
    assert parse_verdict("最终判决：[[助手1]]" + filler * ((TAIL_CHARS + 500) // len(filler))).status is Status.PARSE_FAILED
