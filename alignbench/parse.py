"""Judge text -> scores and a status. Never invents a score.

Judges write the AlignBench convention (a last-line dict of scores) with many variations: single
or double quotes, full-width punctuation, a fenced JSON block, a dict split over lines, decimals,
``7/10`` or ``7分``. We take the **last** score block that names the overall key or a dimension;
without one we fall back to ``综合得分：7`` style lines. What cannot be read becomes a status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from alignbench.types import Status

_FULLWIDTH = str.maketrans({
    "｛": "{", "｝": "}", "：": ":", "，": ",", "＂": '"', "＇": "'", "“": '"', "”": '"',
    "‘": "'", "’": "'", "（": "(", "）": ")", "．": ".", "／": "/", "\u3000": " ",
    **{chr(0xFF10 + i): str(i) for i in range(10)},
})

_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)
_BLOCK = re.compile(r"\{[^{}]*\}", re.DOTALL)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_PAIR = re.compile(r"""['"]?\s*([^'",:{}\s][^'",:{}]*?)\s*['"]?\s*:\s*['"]?\s*""" + _NUMBER + r"""\s*(?:/\s*10)?\s*分?\s*['"]?""")

_REFUSAL = re.compile(
    r"(无法(对此|对该回答)?(进行|给出|完成)?(评价|评分|打分|评估)|不能(对此)?(进行)?(评价|评分|打分)|拒绝(评价|评分)|"
    r"I (can(no|')t|am unable to|won't) (evaluate|rate|score|judge|assist))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedScores:
    status: Status
    scores: dict[str, float] = field(default_factory=dict)
    overall: float | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def normalize(text: str) -> str:
    """Full-width punctuation and digits to ASCII; drop a leading <think>…</think> block."""
    text = _THINK.sub("", text)
    return text.translate(_FULLWIDTH)


def _pairs(block: str, known: set[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, value in _PAIR.findall(block):
        key = key.strip().strip("'\"*")
        if key in known:
            found[key] = float(value)
    return found


def _last_block(text: str, known: set[str]) -> dict[str, float] | None:
    for match in reversed(list(_BLOCK.finditer(text))):
        found = _pairs(match.group(0), known)
        if found:
            return found
    return None


def _line_value(text: str, key: str) -> float | None:
    """The last ``key: 7`` / ``key为7分`` / ``key：7/10`` occurrence outside a dict."""
    pattern = re.compile(re.escape(key) + r"""['"*\]】]*\s*(?::|为|是|=)?\s*['"*]*\s*""" + _NUMBER + r"\s*(?:/\s*10|分)?")
    values = pattern.findall(text)
    return float(values[-1]) if values else None


def parse_scores(text: str | None, dimensions: tuple[str, ...] | list[str], overall_key: str = "综合得分",
                 scale: tuple[float, float] = (1, 10)) -> ParsedScores:
    """Read per-dimension and overall scores from a pointwise judgment."""
    if text is None or not text.strip():
        return ParsedScores(Status.PARSE_FAILED, detail="empty judge reply")
    norm = normalize(text)
    known = set(dimensions) | {overall_key}
    block = _last_block(norm, known)
    source = "dict"
    if block is None or overall_key not in block:
        fallback = {k: v for k in known if (v := _line_value(norm, k)) is not None}
        if block is None:
            block, source = fallback, "lines"
        elif overall_key in fallback:
            block = {**fallback, **block}
    if overall_key not in block:
        if not block and _REFUSAL.search(norm):
            return ParsedScores(Status.REFUSED, detail="the judge declined to score")
        missing = "no score block and no overall-score line" if not block else f"no {overall_key} in the score block"
        return ParsedScores(Status.PARSE_FAILED, scores=block, detail=missing)
    lo, hi = scale
    bad = {k: v for k, v in block.items() if not lo <= v <= hi}
    scores = {k: block[k] for k in dimensions if k in block}
    if bad:
        return ParsedScores(Status.OUT_OF_RANGE, scores=scores, overall=block[overall_key],
                            detail=f"outside {lo:g}–{hi:g}: " + ", ".join(f"{k}={v:g}" for k, v in bad.items()))
    missing_dims = [d for d in dimensions if d not in scores]
    detail = f"read from {source}" + (f"; no score for {', '.join(missing_dims)}" if missing_dims else "")
    return ParsedScores(Status.OK, scores=scores, overall=block[overall_key], detail=detail)
