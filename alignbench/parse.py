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


# -- pairwise verdicts ---------------------------------------------------------------------------

_VERDICT_WORDS = {
    "助手1": "1", "助手一": "1", "助手2": "2", "助手二": "2",
    "平局": "tie", "质量相当": "tie", "两者相当": "tie", "相当": "tie", "平手": "tie",
    "a": "1", "b": "2", "c": "tie", "tie": "tie",
    "a>>b": "1", "a>b": "1", "a=b": "tie", "b>a": "2", "b>>a": "2",
}
_ANSWER = r"(助手\s*[12一二]|平局|平手|质量相当|两者相当|相当|tie)"
_VERDICT_PATTERNS = (
    # CritiqueLLM: {'综合比较结果': '助手1'} (any quotes, full width normalised)
    re.compile(r"""综合比较结果['"]?\s*:\s*['"]?\s*""" + _ANSWER, re.IGNORECASE),
    # ours: 最终判决：[[助手1]]; also MT-Bench [[A]]/[[B]]/[[C]] and Arena-Hard [[A>B]] … [[B>>A]]
    re.compile(r"\[\[\s*(" + _ANSWER[1:-1] + r"|[ABC]|A>>B|A>B|A=B|B>A|B>>A)\s*\]\]", re.IGNORECASE),
    # ours without the brackets: 最终判决：助手1 / 最终结论为平局
    re.compile(r"最终(?:判决|结论|裁决|判断)\s*(?::|为|是)?\s*['\"*【\[]*\s*" + _ANSWER, re.IGNORECASE),
)
_PAIRWISE_REFUSAL = re.compile(r"无法(对此)?(进行)?(比较|判断|评判|裁决)|不能(进行)?(比较|评判)")
_BRACKETS = str.maketrans({"［": "[", "］": "]", "＝": "=", "＞": ">"})


@dataclass(frozen=True)
class ParsedVerdict:
    """A pairwise verdict by *position*: ``"1"`` = the first answer shown (助手1) is better, ``"2"`` =
    the second, ``"tie"``; ``None`` unless ``status`` is ok. Which model sat where is the caller's
    business (each pair is judged in both orders)."""

    status: Status
    winner: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def _verdict_key(raw: str) -> str:
    return re.sub(r"\s+", "", raw).lower()


def parse_verdict(text: str | None) -> ParsedVerdict:
    """Read the final verdict of a pairwise judgment.

    Accepts our format (``最终判决：[[助手1]]``), CritiqueLLM's ``{'综合比较结果': '助手2'}`` (any quotes,
    full-width punctuation), MT-Bench's ``[[A]]``/``[[B]]``/``[[C]]`` and Arena-Hard's ``[[A>B]]``
    family. The **last** verdict in the text wins (judges often restate a provisional one first).
    Two different verdicts on that last line (the judge echoing the format instructions) are a
    parse failure, not a guess; no verdict at all is a parse failure, or a refusal when the judge
    says it cannot compare.
    """
    if text is None or not text.strip():
        return ParsedVerdict(Status.PARSE_FAILED, detail="empty judge reply")
    norm = normalize(text).translate(_BRACKETS)
    found: list[tuple[int, int, str]] = []  # (end, start, winner)
    for pattern in _VERDICT_PATTERNS:
        for match in pattern.finditer(norm):
            winner = _VERDICT_WORDS.get(_verdict_key(match.group(1)))
            if winner is not None:
                found.append((match.end(), match.start(), winner))
    if not found:
        if _PAIRWISE_REFUSAL.search(norm) or _REFUSAL.search(norm):
            return ParsedVerdict(Status.REFUSED, detail="the judge declined to compare")
        return ParsedVerdict(Status.PARSE_FAILED, detail="no verdict ([[助手1]], [[A]], {'综合比较结果': …}) found")
    found.sort()
    end, start, winner = found[-1]
    line_start = norm.rfind("\n", 0, start) + 1
    line_end = norm.find("\n", end)
    line_end = len(norm) if line_end < 0 else line_end
    rivals = {w for e, s, w in found if s >= line_start and e <= line_end}
    if len(rivals) > 1:
        return ParsedVerdict(Status.PARSE_FAILED, detail="several different verdicts on the last verdict line")
    return ParsedVerdict(Status.OK, winner=winner, detail=f"verdict {winner}")


# -- marked sections (plan-execute protocol) -----------------------------------------------------

_TRAILER = re.compile(r"(?:\n[ \t]*(?:```(?:json|python)?[ \t]*\n)?[ \t]*[{｛][^{}｛｝]*[}｝][ \t]*(?:\n[ \t]*```)?"
                      r"|\n[^\n]*最终(?:判决|结论|裁决)[^\n]*)\s*$")


def _heading(title: str) -> re.Pattern[str]:
    """``【评估计划】`` anywhere, or ``[评估计划]`` / ``**评估计划**`` / ``## 评估计划`` / ``评估计划：`` opening a line."""
    t = re.escape(title)
    return re.compile(r"【\s*" + t + r"\s*】[:：]?"
                      r"|(?m:^[ \t>#*\d.、一二三四五六七八九十]*(?:\[\s*" + t + r"\s*\]|\*\*\s*" + t + r"\s*[:：]?\s*\*\*|"
                      + t + r"(?=[ \t]*(?:[:：]|$))(?:[ \t]*[:：])?))")


def parse_sections(text: str | None, titles: dict[str, str]) -> dict[str, str]:
    """The text under each heading named in ``titles`` (id -> heading), by id; absent ones are left out.

    Headings are expected in the order given. Going backwards, each heading's last occurrence before
    the next section counts (a judge may announce its sections before writing them, or cite
    【评估计划】 while executing it); a section runs to the next heading, and the closing score dict or
    verdict line is not part of the last section. Kept for audit only: scores never come from here.
    """
    if not text or not titles:
        return {}
    body = _THINK.sub("", text)
    marks: list[tuple[int, int, str]] = []
    limit = len(body)
    for sid, title in reversed(list(titles.items())):
        hits = [m for m in _heading(title).finditer(body) if m.end() <= limit]
        if hits:
            marks.append((hits[-1].start(), hits[-1].end(), sid))
            limit = hits[-1].start()
    marks.sort()
    out: dict[str, str] = {}
    for i, (_, end, sid) in enumerate(marks):
        chunk = body[end: marks[i + 1][0]] if i + 1 < len(marks) else _TRAILER.sub("", body[end:])
        out[sid] = chunk.strip().strip("*").strip()
    return out
