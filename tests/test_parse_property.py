"""Properties of the verdict parser on generated text (hypothesis).

The golden cases pin what real and hostile judges write; these check the binding rule itself on text
nobody thought of: whatever a judge writes *before* its verdict, or after it without naming a score,
cannot move the score, and text that never gives the overall key a number never yields a score.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alignbench.parse import parse_scores, parse_sections, parse_verdict
from alignbench.types import Status

FACTUAL = ["事实正确性", "满足用户需求", "清晰度", "完备性"]
KEY = "综合得分"
KNOWN = [*FACTUAL, KEY]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Chinese (including the keys' own characters), braces, brackets, digits (ASCII and full width),
# colons, commas, quotes of every kind, newlines, range and fraction signs. Left out on purpose:
# "始" (so no "[助手的答案开始]" marker, which quotes everything after it by design) and "<" (so no
# leading "<think>", which hides everything until "</think>" by design).
NOISE = ("的是了回答助手参考答案结束事实正确性满足用户需求清晰度完备性综合得分评价最终判决平局分制到至或满")
NOISE += "{}[]()（）｛｝:：,，;'\"“”‘’「」\n \t./-~%*#>" + "0123456789０１７" + "abeXE"
noise = st.text(alphabet=NOISE, max_size=300)


@st.composite
def verdict_dicts(draw: st.DrawFn) -> str:
    """A valid verdict dict in one of the accepted spellings, alone on its line(s)."""
    values = {k: draw(st.sampled_from(["1", "2", "5", "6.5", "7", "8", "9.5", "10"])) for k in KNOWN}
    style = draw(st.sampled_from(["legacy", "json", "fullwidth", "fenced", "split"]))
    if style == "json":
        return "{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"
    if style == "fullwidth":
        return "｛" + "，".join(f"'{k}'：{v}" for k, v in values.items()) + "｝"
    if style == "fenced":
        return "```json\n{\n" + ",\n".join(f'  "{k}": {v}' for k, v in values.items()) + "\n}\n```"
    if style == "split":
        return "{" + ",\n ".join(f"'{k}': {v}" for k, v in values.items()) + "}"
    return "{" + ", ".join(f"'{k}': {v}" for k, v in values.items()) + "}"


def _same(a, b) -> bool:
    return (a.status, a.overall, a.scores) == (b.status, b.overall, b.scores)


@SETTINGS
@given(prefix=noise, verdict=verdict_dicts())
def test_text_before_the_verdict_never_changes_it(prefix: str, verdict: str) -> None:
    alone = parse_scores(verdict, FACTUAL)
    assert alone.status is Status.OK and set(alone.scores) == set(FACTUAL)
    assert _same(parse_scores(prefix + "\n" + verdict, FACTUAL), alone)


@SETTINGS
@given(verdict=verdict_dicts(), joint=st.sampled_from(["\n", "", " ", "\n\n"]), suffix=noise)
def test_text_after_the_verdict_without_a_score_key_never_changes_it(verdict: str, joint: str, suffix: str) -> None:
    suffix = suffix.replace(KEY, "综合")  # no score-like key after the verdict
    for dim in FACTUAL:
        suffix = suffix.replace(dim, dim[:-1])
    assert _same(parse_scores(verdict + joint + suffix, FACTUAL), parse_scores(verdict, FACTUAL))


# Text in which the overall key is never followed by a number: the noise has no "综", and every key
# that is put in is followed by "较" (as in "综合得分较低"), which no score syntax accepts.
no_key_noise = st.text(alphabet=NOISE.replace("综", ""), max_size=200)


@SETTINGS
@given(parts=st.lists(st.one_of(no_key_noise, st.just(KEY + "较")), max_size=6))
def test_text_without_an_overall_number_never_yields_a_score(parts: list[str]) -> None:
    parsed = parse_scores("".join(parts), FACTUAL)
    assert not parsed.ok and parsed.overall is None
    assert parsed.status in (Status.PARSE_FAILED, Status.REFUSED)


# Pairwise: noise that cannot hold a verdict of its own (no brackets, braces, "最", "综", "<").
verdict_free = st.text(alphabet="".join(c for c in NOISE if c not in "[]{}｛｝最综"), max_size=300)


@SETTINGS
@given(prefix=verdict_free, line=st.sampled_from(["最终判决：[[助手1]]", "最终判决：[[助手2]]", "最终判决：[[平局]]",
                                                   "{'综合比较结果': '助手2'}", "[[A]]", "[[B>>A]]"]))
def test_text_before_the_pairwise_verdict_never_changes_it(prefix: str, line: str) -> None:
    alone = parse_verdict(line)
    assert alone.ok
    parsed = parse_verdict(prefix + "\n" + line)
    assert (parsed.status, parsed.winner) == (alone.status, alone.winner), parsed.detail


@SETTINGS
@given(text=st.one_of(st.text(max_size=400), st.text(alphabet=NOISE + "<think>/始开", max_size=400)))
def test_any_text_gets_a_status_and_never_an_exception(text: str) -> None:
    parsed = parse_scores(text, FACTUAL)
    assert parsed.ok == (parsed.overall is not None and parsed.status is Status.OK)
    assert parsed.ok or parsed.detail
    verdict = parse_verdict(text)
    assert (verdict.winner is not None) == verdict.ok
    assert isinstance(parse_sections(text, {"plan": "评估计划", "execution": "执行"}), dict)
