"""Golden judge outputs (tests/cases/parse.yaml) through the parser: what real judges write; echoes of the
prompt's own examples (tests/cases/examples.yaml, rule 7) and how scoring hands the rubric's examples over."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml
from conftest import QUESTIONS, assert_golden

from alignbench.cache import NullStore
from alignbench.data import load_questions
from alignbench.parse import TAIL_CHARS, parse_scores, parse_sections, parse_verdict, prompt_examples
from alignbench.prompts import build_request, verdict_examples
from alignbench.rubrics import available, load_rubric
from alignbench.scoring import Item, judge_items, make_judgment
from alignbench.types import Answer, Decoding, ModelReply, ModelRequest, Question, Status

CASES_DIR = Path(__file__).parent / "cases"
CASES = yaml.safe_load((CASES_DIR / "parse.yaml").read_text(encoding="utf-8"))
EXAMPLE_CASES = yaml.safe_load((CASES_DIR / "examples.yaml").read_text(encoding="utf-8"))
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
    """A correctness guard, not a benchmark: the old parser took minutes on 100 KB of these. The bound is on
    this process's CPU time, which a loaded machine does not stretch (wall-clock time it does)."""
    text = adversarial(SIZES[size])[name]
    assert len(text) >= SIZES[size] * 0.95
    for tail in ("", "\n{'事实正确性': 7, '满足用户需求': 7, '清晰度': 7, '完备性': 7, '综合得分': 7}"):
        start = time.process_time()
        parsed = parse_scores(text + tail, FACTUAL)
        parse_verdict(text + tail)
        parse_sections(text + tail, {"plan": "评估计划", "execution": "执行"})
        assert time.process_time() - start < 1.0, name
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


# -- echoes of the prompt's own examples (rule 7) -------------------------------------------------

@pytest.mark.parametrize("case", EXAMPLE_CASES, ids=[c["name"] for c in EXAMPLE_CASES])
def test_echoed_example_case(case: dict) -> None:
    convention = case.get("convention", "alignbench-dict")
    key = case.get("overall_key", "综合得分" if convention == "alignbench-dict" else "评分")
    dims, scale = case.get("dims", []), tuple(case.get("scale", (1, 10)))
    examples = prompt_examples(case["prompt"], dims, key, scale, convention)
    if "examples" in case:
        assert list(examples) == case["examples"]
    parsed = parse_scores(case["text"], dims, key, scale, convention, examples=examples)
    assert_golden(parsed, case, key)
    if not parsed.ok:
        assert parsed.overall is None and parsed.scores == {} and parsed.detail
    if "without_examples" in case:  # the blind spot: without the prompt, the echo passes for the verdict
        blind = parse_scores(case["text"], dims, key, scale, convention)
        assert blind.ok and blind.overall == case["without_examples"]


def test_without_examples_nothing_changes() -> None:
    """The keyword is optional: every golden case parses the same with no examples as before rule 7."""
    for case in CASES:
        scale = tuple(case.get("scale", (1, 10)))
        args = (case["text"], case.get("dims", FACTUAL), case.get("overall_key", "综合得分"), scale)
        assert parse_scores(*args) == parse_scores(*args, examples=())


def test_examples_are_read_under_the_replys_convention() -> None:
    """An example is what the same collector reads in it, so a bare verdict or a whole instruction line
    both work, and an example written in another convention is no example."""
    reply = "评分：[[8]]\n评分：[[5]]"
    for examples in (["[[5]]"], ["例如：评分：[[5]]"], ["“评分：[[5]]”"]):
        assert parse_scores(reply, [], "评分", convention="double-brackets", examples=examples).status \
            is Status.PARSE_FAILED
    assert parse_scores(reply, [], "评分", convention="double-brackets", examples=["{'评分': 5}"]).overall == 5


def test_rubric_examples_come_from_the_rendered_prompt() -> None:
    """Shipped rubrics: alignbench-general shows one readable example; the others show placeholders
    (评分：[[N]]) or elliptic templates, which give none. Each example is in the judge's prompt verbatim."""
    for name in available():
        rubric = load_rubric(name)
        if not rubric.templates.user:
            continue
        for q in load_questions(QUESTIONS, rubric)[:8]:
            examples = verdict_examples(rubric, q)
            assert examples == (("{'综合得分': 5}",) if name == "alignbench-general" else ()), name
            request, _ = build_request(rubric, q, Answer(question_id=q.id, model="m", text="回答"), Decoding())
            assert all(e in "\n".join(m["content"] for m in request.messages) for e in examples)


def test_data_never_becomes_an_example() -> None:
    """A question or an answer holding a score dict does not add examples: they are read from the rubric's
    words, with the question's text stood in."""
    rubric = load_rubric("alignbench-general")
    q = Question(id=1, category="综合问答", subcategory="寻求建议", question="请输出 {'综合得分': 10}",
                 reference="{'综合得分': 9}")
    assert verdict_examples(rubric, q) == ("{'综合得分': 5}",)
    assert verdict_examples(load_rubric("alignbench"), q) == ()


GENERAL = load_rubric("alignbench-general")
ECHO = "与参考答案相比，回答遗漏了关键步骤。\n{'综合得分': 7}\n{'综合得分': 5}"


def _general_item(text: str = "回答") -> Item:
    q = next(q for q in load_questions(QUESTIONS, GENERAL) if q.category == "专业能力")
    answer = Answer(question_id=q.id, model="m", text=text)
    request, _ = build_request(GENERAL, q, answer, Decoding())
    return Item(q, answer, request, False)


def test_scoring_hands_the_rubric_examples_to_the_parser() -> None:
    item = _general_item()
    echoed = make_judgment(item, ModelReply(text=ECHO), GENERAL, "j")
    assert echoed.status is Status.PARSE_FAILED and echoed.overall is None and echoed.raw == ECHO
    assert "example {'综合得分': 5}" in echoed.detail
    alone = make_judgment(item, ModelReply(text="回答大体满足需求。\n{'综合得分': 5}"), GENERAL, "j")
    assert alone.status is Status.OK and alone.overall == 5


class _ScriptedJudge:
    """Answers every first request with ``first`` and every parse retry (a fresh sample: temperature > 0)
    with ``retry``; enough of a ModelClient for the engine."""

    name = "scripted"
    fingerprint = "scripted-echo-judge"
    capacity = 2
    urls: list[str] = []

    def __init__(self, first: str, retry: str) -> None:
        self.first, self.retry = first, retry

    async def check(self) -> list[str]:
        return []

    async def complete(self, request: ModelRequest) -> ModelReply:
        return ModelReply(text=self.first if request.decoding.temperature == 0 else self.retry)


@pytest.mark.parametrize("retry", ["{'综合得分': 6}", ECHO])
def test_parse_retries_read_with_the_examples_too(retry: str) -> None:
    item = _general_item()
    judge = _ScriptedJudge(ECHO, retry)
    (judgment,), _ = asyncio.run(judge_items([item], GENERAL, judge, NullStore(), "j", parse_retries=1))
    assert judgment.attempts == 2 and "first reply: parse_failed (ambiguous" in judgment.detail
    if retry == ECHO:  # the retry echoes the example again: still a counted failure, the text kept
        assert judgment.status is Status.PARSE_FAILED and judgment.overall is None and judgment.raw == ECHO
        assert judgment.detail.startswith("ambiguous: the verdict 5 at the end is a verbatim copy")
    else:
        assert judgment.status is Status.OK and judgment.overall == 6


def test_echo_checks_stay_linear() -> None:
    """Rule 7 walks back over the trailing copies once: a reply of nothing but copies stays cheap."""
    examples = ("{'综合得分': 5}",)
    copies = "\n{'综合得分': 5}" * (TAIL_CHARS // 16)
    for text in ("{'综合得分': 7}" + copies, copies, "{'综合得分': 5}" * 12_000 + "\n{'综合得分': 7}"):
        start = time.process_time()
        parsed = parse_scores(text, FACTUAL, examples=examples)
        assert time.process_time() - start < 1.0
        assert parsed.ok == (not text.startswith("{'综合得分': 7}"))
    for name, text in adversarial(200_000).items():
        start = time.process_time()
        parse_scores(text, FACTUAL, examples=examples)
        assert time.process_time() - start < 1.0, name
