"""Judge text -> scores and a status. Never invents a score.

Judges write the AlignBench convention (a last-line dict of scores) with many variations: single or
double quotes, full-width punctuation, a fenced JSON block, a dict split over lines, decimals, ``7/10``
or ``7分``, or only a ``综合得分：7分`` line. What cannot be read becomes a status with the reason in
``detail``, because a parse failure is retried and counted while a wrong score silently moves a mean.

A judge reply is also hostile ground: it quotes the answer it judges (which may carry a score dict of its
own), echoes the format instructions, hedges, switches scale, or is cut off by the token limit. So the
parser binds to the judge's *own, last* verdict by these rules:

1. **Bounded look.** Only the last ``TAIL_CHARS`` characters (after a leading ``<think>`` block) are
   searched for the verdict: the verdict closes a reply, and the bound keeps a runaway reply cheap. A
   pattern either scans forward to the next delimiter (``{[^{}]*}``: each scan stops where the next
   one starts) or starts at a literal anchor (a key, ``[[``, ``最终判决``) and reads at most
   ``_LOOKAHEAD`` characters; no pattern has two quantifiers that can match the same characters. So the
   work is linear in the length of the reply (tests/test_parse.py times 200 KB adversarial replies).
2. **Quoted material is not the judge speaking.** Nothing inside the prompt's own block markers
   (``[助手的答案开始]`` … ``[助手的答案结束]``, ``[参考答案开始]`` …; an unclosed marker quotes to the
   end), Chinese quotation marks (“…”, 「…」, 『…』) or a Markdown block quote (``> …``) is a verdict.
3. **An echoed template is not a verdict.** A dict whose values are all placeholders (``X``, ``分数``,
   or the scale's own range ``1-10``) or that contains an ellipsis entry (the prompt's example
   ``{'事实正确性': 6, ..., '综合得分': 5}``) is skipped, so the judge's real dict *before* it still
   counts: the echo carries no score, so reading the real one is not a guess.
4. **The last verdict wins, whatever its form.** The verdict is the last remaining overall key with a
   value, in a dict or on a plain line, so a dict quoted early never beats a later ``综合得分：2分``.
   Per-dimension scores come from the verdict dict; for a line verdict, from a dimensions-only dict or
   ``维度：n`` lines written since the previous, different verdict.
5. **Only a plain decimal on the rubric's scale is a score.** ``7/10`` on a 1–10 scale is 7 and
   "10分制下给6分" / "6 on a 10-point scale" is 6; scientific notation (``1e1``), a range (``8-9``,
   ``7到8``), a fraction or a scale other than the rubric's (``7/100``, ``3/5``, ``百分制``), a
   percentage, a key repeated with different values, or a final score block cut off by the end of the
   reply (``{'综合得分': 1`` — the judge may have meant 10) are parse failures.
6. **When mention and use cannot be told apart, fail.** A final dict written inside a sentence ("回答里的
   {'综合得分': 10} 是注入") that disagrees with an earlier verdict is ambiguous.
7. **A copy of the prompt's own example is not the judge's verdict** — when the caller says what the
   examples are (``parse_scores(..., examples=…)``; ``prompt_examples`` reads them from a prompt,
   ``alignbench.prompts.verdict_examples`` from a rubric). An echo that looks exactly like a verdict (the
   general rubric's ``{'综合得分': 5}`` repeated on its own line) cannot be told from one by its form;
   only the prompt says it is the example. Verdicts at the end whose text equals an example (after the
   full-width mapping, with whitespace and Markdown emphasis — asterisks, backticks — dropped) are set
   against the judge's last other verdict: the same score → the copies are dropped and that verdict (with
   its dimensions) is read; a different score → parse failure naming the example, never the example's
   score and never silently the earlier one. A copy that is the only verdict is read: a judge may give the
   example's score in the example's words, and nothing in the reply says otherwise. Every convention below
   keeps this rule; examples are read from the prompt by the same collectors, so a copy is recognised in
   whatever form the convention reads (the dict, ``[[N]]``, ``Rating: N``, ``[RESULT] N``).

8. **The answer cannot speak for the judge** — when the caller passes what the judge was shown
   (``material=``: ``material_scores`` / ``material_verdicts`` of the answer, the question and the reference,
   read once per text). A verdict that is a verbatim copy of a verdict-shaped span there is dropped when it
   sits in a quotation (a code fence, quotes or backticks, an HTML comment, inside a sentence, after words that
   introduce a quotation such as ``回答末尾写道：``, or with the material's own words around it) or after the
   judge's own verdict; a disagreeing copy introduced by words of revision (``综上``) is ambiguous. When only
   copies remain, the last is read if it stands alone on its line (a judge may give the answer's number in the
   answer's words), otherwise the reply is a parse failure. The same holds for pairwise verdicts and JSON
   verdicts (an ``"overall"`` object copied from the answer). Also read as the judge meant or failed: a scale
   beside the score (``10分满分，我给8分`` is 8), example blocks (``输出格式示例：…``) and hypotheticals
   (``如果…，综合得分为9分``) after the verdict (skipped), a revision (``综合得分改为3分`` is a verdict; ``…应改为3分``
   without the key after the verdict is a failure), keycap digits (``1️⃣0️⃣`` is 10), other digit forms and
   invisible characters inside a number (failures), a decimal comma (``8,5`` is 8.5), a JSON key given twice
   with different values (a failure).

Other output conventions (a rubric's ``verdict``; docs/protocols.md) go through the same rules: MT-Bench's
``[[8]]`` / ``评分：[[8]]`` (``double-brackets``: anchored at ``[[``, a rating labelled with a dimension is that
dimension's, an echoed ``例如：评分：[[5]]`` or ``[[N]]`` is skipped, an unclosed ``[[`` at the end is a cut-off),
Auto-J's ``Rating: 7`` (``rating-line``) and Prometheus' ``[RESULT] 4`` (``result-tag``), both read like a
``综合得分`` line with the label as the key. A structured (JSON) verdict is read by
``parse_structured_scores``; reasoning (``<think>``, R1-style, unclosed) is removed first by
``alignbench.reasoning``, the handler answers go through too.

Remaining limits of rule 7, by design: a reply whose only verdict is a copy of the example is scored with
the example's score (right when the judge meant it, wrong when it only echoed the format and gave no
verdict of its own — the text alone cannot say which); a judge that revises an earlier score to exactly
the example's, written exactly as the example, is a parse failure (retried and counted, not a wrong
score); an echo that is not verbatim (``综合得分：5`` after a real dict when the example is
``{'综合得分': 5}``) is read as the last verdict, as before; and without ``examples`` (other callers of
``parse_scores``) nothing changes. The comparison costs one pass over the trailing verdicts, so rule 1's
bound holds.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

from alignbench import safejson
from alignbench.reasoning import ReasoningSplit, split_reasoning
from alignbench.types import Status

TAIL_CHARS = 32_000
"""The verdict is looked for in the last this-many characters of the reply (after a leading think block).

Judges write a few KB; a verdict further from the end than this sits in a runaway reply and is a parse
failure. The bound also caps the cost of an adversarial reply."""
_LOOKAHEAD = 120  # characters read after a key or marker; a value or verdict is always short

_FULLWIDTH = str.maketrans({
    "｛": "{", "｝": "}", "：": ":", "，": ",", "＂": '"', "＇": "'", "“": '"', "”": '"',
    "‘": "'", "’": "'", "（": "(", "）": ")", "．": ".", "／": "/", "\u3000": " ",
    "～": "~", "－": "-", "％": "%", "＝": "=", "＞": ">", "［": "[", "］": "]",
    **{chr(0xFF10 + i): str(i) for i in range(10)},
})  # one character to one character: offsets in the normalised text equal offsets in the original


_REFUSAL = re.compile(
    r"(无法(对此|对该回答)?(进行|给出|完成)?(评价|评分|打分|评估)|不能(对此)?(进行)?(评价|评分|打分)|拒绝(评价|评分)|"
    r"I (can(no|')t|am unable to|won't) (evaluate|rate|score|judge|assist))",
    re.IGNORECASE,
)


def _strip_think(text: str) -> tuple[str, bool]:
    """The reply without its reasoning (``alignbench.reasoning``, the handler answers go through too); the
    flag says the reply ended inside an unclosed ``<think>`` block. Reasoning is never read for a verdict."""
    split = split_reasoning(text)
    return split.text, split.unclosed


def normalize(text: str) -> str:
    """Full-width punctuation and digits to ASCII; drop a leading <think>…</think> block.

    The mapping is one character to one character, so a position found in the result is the same
    position in the (think-stripped) input — the quote detection relies on that."""
    return _strip_think(text)[0].translate(_FULLWIDTH)


# -- quoted material -------------------------------------------------------------------------------

_CN_QUOTES = re.compile(r"“[^“”]{0,4000}”|「[^「」]{0,4000}」|『[^『』]{0,4000}』")
_MARK_OPEN = re.compile(r"\[[^\[\]\n]{0,16}(?:答案|回答|提问|问题)开始\]")
_MARK_CLOSE = re.compile(r"\[[^\[\]\n]{0,16}(?:答案|回答|提问|问题)结束\]")
_BLOCKQUOTE = re.compile(r"(?m)^[ \t]*>[^\n]*")


class _Spans:
    """Spans merged so that containment is one binary search."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in spans:
            if self.ends and start <= self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], end)
            else:
                self.starts.append(start)
                self.ends.append(end)

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self.starts, start) - 1
        return i >= 0 and end <= self.ends[i]


class _Quoted(_Spans):
    """Spans of quoted material (rule 2), merged so that containment is one binary search."""

    def __init__(self, raw: str, norm: str, markers_only: bool = False) -> None:
        # Chinese quotation marks are read from the raw text: normalisation turns “” into plain ".
        # ``markers_only``: a prompt read for its examples (``prompt_examples``) quotes them in “…” to show
        # them; there only the blocks that hold the answer and the reference are somebody else's words.
        spans = [] if markers_only else [m.span() for m in _CN_QUOTES.finditer(raw)]
        spans += [] if markers_only else [m.span() for m in _BLOCKQUOTE.finditer(norm)]
        closes = [m.end() for m in _MARK_CLOSE.finditer(norm)]
        covered = 0
        for m in _MARK_OPEN.finditer(norm):
            if m.start() < covered:
                continue
            i = bisect_right(closes, m.end())
            covered = closes[i] if i < len(closes) else len(norm)
            spans.append((m.start(), covered))
        super().__init__(spans)


_NOWHERE = _Spans([])  # a text in which nothing is quoted (material read for its verdict-shaped spans)


@dataclass(frozen=True)
class Material:
    """The verdict-shaped spans of texts the judge was shown but did not write (the answer under test, the
    question, the reference): what a judge that copies one writes, so that the copy is not read as its own
    verdict (rule 8). Built once per text (``material_scores`` / ``material_verdicts``, cached), so the
    reply's parse only looks spans up.

    ``keys``: each span's comparable text (``_verbatim``); ``flat``: the texts themselves, compared the same
    way, to tell a copy that comes with the answer's own words around it; ``first``: the first span as the
    text writes it (what an injection flag shows)."""

    keys: frozenset[str] = frozenset()
    flat: str = ""
    first: str | None = None

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __add__(self, other: Material) -> Material:
        return Material(self.keys | other.keys, self.flat + "\x00" + other.flat, self.first or other.first)


NO_MATERIAL = Material()


def _window_start(norm: str) -> int:
    """Where the verdict search starts: ``TAIL_CHARS`` from the end, moved to the next line start."""
    if len(norm) <= TAIL_CHARS:
        return 0
    start = len(norm) - TAIL_CHARS
    newline = norm.find("\n", start, start + 1000)
    return newline + 1 if newline >= 0 else start


def _line_rest(norm: str, pos: int) -> str:
    """The rest of the line from ``pos`` (at most ``_LOOKAHEAD`` characters)."""
    stop = min(len(norm), pos + _LOOKAHEAD)
    newline = norm.find("\n", pos, stop)
    return norm[pos: newline if newline >= 0 else stop]


_WORD = re.compile(r"\w")


def _inside_sentence(norm: str, end: int) -> bool:
    """True when words follow ``end`` on its line: the text there is being talked about (rule 6)."""
    return bool(_WORD.search(_line_rest(norm, end)))


# -- one value -------------------------------------------------------------------------------------

_S = r"[ \t]*"  # whitespace runs are cut at 4 characters before these patterns run (see _read_value)
_DEC = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits only (full-width ones are normalised first; others fail, _read_value)
_SCALE_NUM = rf"{_DEC}|百|十|五"  # 10分制, 百分制
_SCALE_WORDS = {"百": "100", "十": "10", "五": "5"}
_GIVE = rf"(?:我|本回答|该回答|此回答|回答|这里|此处)?{_S}(?:给出|打出|给予|给|打|评为|评|得|判)了?{_S}"
_VALUE = re.compile(  # optional "10分制下给" / "10分满分，我给" / "满分10分，给" then the number
    rf"(?:(?:在|按|以|用)?{_S}(?P<pre>{_SCALE_NUM}){_S}分制(?:下|中|里)?[ \t,]*(?:给出|打出|给|打|评|得|为|是)?了?{_S}"
    rf"|(?P<pre2>{_DEC}){_S}分?{_S}(?:为|是)?满分(?:[ \t,;。]*{_GIVE}|[ \t,;。]+)"
    rf"|(?:满分|总分)(?:为|是)?{_S}(?P<pre3>{_DEC}){_S}分?(?:[ \t,;。]*{_GIVE}|[ \t,;。]+))?"
    rf"(?P<num>-?{_DEC})")
_KEYCAP = re.compile("(?:[0-9]\ufe0f?\u20e3)+|\U0001F51F")  # 1️⃣0️⃣ (digit, variation selector, keycap), 🔟
_BROKEN = re.compile("[\u00ad\u200b-\u200d\u2060\ufe0e\ufe0f\ufeff\u20e3]+[0-9]")  # a number split by invisibles
_DECIMAL_COMMA = re.compile(r",(?P<d>[0-9]{1,2})(?=$|分|[^\d\w])")  # 8,5 → 8.5 (never 8)
_SCI = re.compile(r"[eE][+-]?[0-9]+")
_FRACTION = re.compile(rf"{_S}分?{_S}/{_S}(?P<d>{_DEC})")
_RANGE = re.compile(rf"{_S}分?{_S}(?:-|~|〜|到|至|—|–|或|or\b|to\b){_S}(?P<hi>-?{_DEC})", re.IGNORECASE)
_PERCENT = re.compile(rf"{_S}%")
_SCALE_NOTE = re.compile(
    rf"{_S}(?:分|points?)?{_S}[(,]?{_S}(?:(?:满分|总分)为?{_S}(?P<a>{_DEC})|out of{_S}(?P<b>{_DEC})"
    rf"|(?:按|在|以)?(?P<c>{_SCALE_NUM}){_S}分制|on an?{_S}(?P<d>{_DEC})[- ]point scale"
    rf"|on a scale of(?:{_S}{_DEC}{_S}(?:-|to))?{_S}(?P<e>{_DEC}))", re.IGNORECASE)
_BARE_SCALE = re.compile(rf"{_S}分制")
_DANGLING = re.compile(rf"{_S}分?{_S}(?:-|~|/|到|至|或){_S}$")
_LONG_SPACE = re.compile(r"[ \t]{4}")
_VALUE_LEAD = " \t'\"*`[【"


@dataclass(frozen=True)
class _Value:
    """One read value: ``ok`` (a plain decimal), ``bad`` (a number that is not a score, with the
    reason) or ``blank`` (no number: a placeholder, a word, the scale's own range)."""

    kind: str
    number: float | None = None
    reason: str = ""
    end: int = 0  # offset just past the value in the text it was read from
    template: bool = False  # the scale's own range (``1-10``): an echoed format instruction
    start: int = -1  # offset of the number's first character (callers make it absolute in the reply)

    def same(self, other: _Value) -> bool:
        return (self.kind, self.number, self.reason) == (other.kind, other.number, other.reason)

    def show(self) -> str:
        return f"{self.number:g}" if self.kind == "ok" and self.number is not None else self.reason


def _scale_number(text: str) -> float:
    return float(_SCALE_WORDS.get(text, text))


def _read_value(text: str, scale: tuple[float, float], at_end: bool = False) -> _Value:
    """Read the score at the start of ``text`` (what follows ``key:``); rule 5 decides what counts.

    ``at_end`` says that ``text`` runs to the end of the reply, where a dangling ``8-`` means a cut-off."""
    lo, hi = scale
    long_space = _LONG_SPACE.search(text)
    if long_space:  # bounds the backtracking of the optional-whitespace patterns; no value spans that
        text, at_end = text[:long_space.start()], False
    lead = len(text) - len(text.lstrip(_VALUE_LEAD))
    if keycap := _KEYCAP.match(text, lead):  # emoji digits: read as the digits they show
        digits = "".join(c for c in keycap.group(0) if c.isdigit()) or "10"
        return _Value("ok", float(digits), end=keycap.end(), start=lead)
    m = _VALUE.match(text, lead)
    if not m:
        word = text[lead:].strip()[:20]
        first = word[:1]
        if first and unicodedata.digit(first, None) is not None:  # ٧, 𝟖, ⑧: never skipped as "no number"
            return _Value("bad", reason=f"a digit form that is not a plain number ({first!r})")
        return _Value("blank", reason=f"no number ({word!r})" if word else "no value")
    number, at = float(m["num"]), m.end()
    raw = m["num"]
    pre = m["pre"] or m["pre2"] or m["pre3"]
    if pre and _scale_number(pre) != hi:
        return _Value("bad", reason=f"a score on a {_scale_number(pre):g}-point scale, not {lo:g}–{hi:g}")
    if _BROKEN.match(text, at) or (text[at:at + 1] and unicodedata.digit(text[at], None) is not None):
        return _Value("bad", reason=f"a number written with invisible or unusual characters ({text[m.start('num'):at + 4]!r})")
    if "." not in raw and (comma := _DECIMAL_COMMA.match(text, at)):
        number, at, raw = float(f"{raw}.{comma['d']}"), comma.end(), f"{raw}.{comma['d']}"
    if sci := _SCI.match(text, at):
        return _Value("bad", reason=f"scientific notation ({raw}{sci.group(0)}) is not a score")
    if fraction := _FRACTION.match(text, at):
        if float(fraction["d"]) == hi:
            return _Value("ok", number, end=fraction.end(), start=m.start("num"))
        return _Value("bad", reason=f"a fraction {raw}/{fraction['d']}, not out of {hi:g}")
    if spread := _RANGE.match(text, at):
        if number == lo and float(spread["hi"]) == hi:
            return _Value("blank", reason=f"the scale's own range {raw}-{spread['hi']} (a placeholder)", template=True)
        return _Value("bad", reason=f"a range ({text[m.start('num'):spread.end()].strip()}), not one score")
    if _PERCENT.match(text, at):
        return _Value("bad", reason=f"a percentage ({raw}%), not a {lo:g}–{hi:g} score")
    if note := _SCALE_NOTE.match(text, at):
        out_of = _scale_number(next(g for g in note.groups() if g is not None))
        if out_of != hi:
            return _Value("bad", reason=f"a score on a {out_of:g}-point scale, not {lo:g}–{hi:g}")
    elif _BARE_SCALE.match(text, at):
        return _Value("bad", reason=f"a scale ({raw}分制) without a score")
    if at_end and _DANGLING.match(text, at):
        return _Value("bad", reason=f"cut off: the reply ends after {text[lead:].strip()!r}")
    return _Value("ok", number, end=at, start=m.start("num"))


def _shifted(value: _Value, by: int) -> _Value:
    """``value`` with its number's offset made absolute (``by``: where the text it was read from starts)."""
    if value.start < 0:
        return value
    # built directly: dataclasses.replace re-inspects the fields on every call, and this runs for every
    # value of every reply
    return _Value(value.kind, value.number, value.reason, value.end, value.template, value.start + by)


# -- score dicts and lines -------------------------------------------------------------------------

_BLOCK = re.compile(r"\{[^{}]*\}")  # a flat brace block; linear: each scan stops at the next brace
_ENTRY_SPLIT = re.compile(r"[,\n]")
# a quoted string (not crossing a line; JSON escapes inside double quotes) or an entry separator
_DICT_TOKEN = re.compile(r"""'[^'\n]*'|"(?:[^"\\\n]|\\.)*"|[,\n]""")
_COMMA_DIGITS = re.compile(r"[0-9]{1,2}[ \t]*$")  # what follows a decimal comma inside a dict (no space before it)
_PLAIN_INT = re.compile(r"[ \t'\"]*-?[0-9]+[ \t]*$")
_ELLIPSIS = {"...", "…", "……", "etc", "etc.", "等", "等等"}
_KEY_STRIP = " \t\r'\"*`"
_LINE_LEAD = re.compile(r"""(?:\((?P<paren>[^()\n]{1,24})\))?[ \t'"*\]】)]*(?:(?P<sep>:|=|为|是"""
                        r"""|(?:应|应该|应当)?(?:修改|修正|更正|调整|下调|上调|降低|提高|提升|改|降|提)(?:为|成|到|至)"""
                        r"""|应为|应该是|应当是)[ \t'"*]*)?""")  # ``综合得分改为3分``: a revision is a verdict
_PAREN_SCALE = re.compile(rf"(?:满分|总分|out of)?{_S}(?:{_DEC}{_S}(?:-|~|到|至|to){_S})?(?P<d>{_SCALE_NUM}){_S}(?:分制|分|points?)?$",
                          re.IGNORECASE)


_SEPARATORS = " \t\r\n:'\"*=为是【[("  # what may stand between a key and its value
_WRAP = re.compile(r"[ \t]*\n[ \t*]*")  # the key ends its line; the value may stand alone on the next
_ALONE = " \t\r*。.!！分"


@lru_cache(maxsize=64)
def _key_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    """An alternation of the literal keys, longest first (so a key inside a longer one loses)."""
    return re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


@dataclass
class _Dict:
    """A closed, flat brace block with at least one known key."""

    start: int
    end: int
    values: dict[str, _Value]
    problem: str | None  # a key repeated with different values
    template: bool  # rule 3: an echoed format template, not a verdict


def _dict_entries(inner: str, quoted_strings: bool) -> list[tuple[str, str, int] | str]:
    """Split a brace block's inside into ``(key, raw value, value offset)`` entries (or bare text, e.g. ``...``).

    With ``quoted_strings``, commas and colons inside a quoted string do not split, so a JSON reason
    such as ``"理由": "综合得分: 3, …"`` stays one value; without, the split is naive (for dicts whose
    apostrophes do not pair up). Both are single linear passes."""
    parts: list[tuple[int, str]] = []
    start = 0
    for m in (_DICT_TOKEN if quoted_strings else _ENTRY_SPLIT).finditer(inner):
        if m.group(0) in (",", "\n"):
            parts.append((start, inner[start:m.start()]))
            start = m.end()
    parts.append((start, inner[start:]))
    entries: list[tuple[str, str, int] | str] = []
    for at, part in parts:
        head = part.lstrip(" \t\r")
        close = head.find(head[:1], 1) if quoted_strings and head[:1] in ("'", '"') else -1
        colon = head.find(":", close + 1 if close > 0 else 0)
        value_at = at + len(part) - len(head) + colon + 1  # where the value starts in ``inner``
        entries.append((head[:colon].strip(_KEY_STRIP), head[colon + 1:], value_at) if colon >= 0 else part)
    return entries


def _read_dict(norm: str, start: int, end: int, known: set[str], scale: tuple[float, float]) -> _Dict | None:
    inner = norm[start + 1: end - 1]
    entries = _dict_entries(inner, quoted_strings=True)
    if not any(isinstance(e, tuple) and e[0] in known for e in entries):
        entries = _dict_entries(inner, quoted_strings=False)
    seen: dict[str, list[_Value]] = {}
    ellipsis = False
    previous: tuple[str, str, int] | None = None
    for entry in entries:
        if isinstance(entry, str):
            ellipsis = ellipsis or entry.strip(_KEY_STRIP) in _ELLIPSIS
            if previous is not None and _COMMA_DIGITS.match(entry.lstrip(" \t")) and _PLAIN_INT.match(previous[1]):
                # {'综合得分': 8,5}: a decimal comma split the value; read 8.5, never 8 ("8, 5": which one?)
                key, raw, at = previous
                seen[key][-1] = _shifted(_read_value(f"{raw.rstrip()},{entry.rstrip()}", scale), start + 1 + at) \
                    if entry[:1].isdigit() else _Value("bad", reason=f"a number after the value ({raw.strip()},{entry}): "
                                                                    "a decimal comma or a stray number")
        elif entry[0] in known:
            value = _shifted(_read_value(entry[1][:_LOOKAHEAD], scale), start + 1 + entry[2])
            seen.setdefault(entry[0], []).append(value)
        previous = entry if not isinstance(entry, str) and entry[0] in known else None
    if not seen:
        return None
    values = {k: v[0] for k, v in seen.items()}
    problem = next((f"{k} appears twice in the score block with different values "
                    f"({', '.join(x.show() for x in v)})" for k, v in seen.items()
                    if any(not x.same(v[0]) for x in v[1:])), None)
    template = ellipsis or all(v.kind == "blank" for vs in seen.values() for v in vs)
    return _Dict(start, end, values, problem, template)


def _read_line(norm: str, key_end: int, scale: tuple[float, float]) -> tuple[_Value, int]:
    """The value after a key outside any dict (``综合得分：7分``, ``**综合得分**为 6/10``,
    ``综合得分（10分制）：6``): the value and where it ends.

    When the key ends its line (a heading ``### 综合得分``, or ``综合得分：``) the value may stand on the
    next line, but only alone there (``7分``): ``1. 事实正确性…`` below a heading is a list, not a score."""
    lead = _LINE_LEAD.match(norm, key_end, min(len(norm), key_end + 40))
    pos = lead.end() if lead else key_end
    wrap = _WRAP.match(norm, pos, min(len(norm), pos + 40))
    if wrap:
        pos = wrap.end()
    rest = _line_rest(norm, pos)
    value = _read_value(rest, scale, at_end=pos + len(rest) == len(norm))
    alone = value.kind == "ok" and not rest[value.end:].strip(_ALONE) or value.kind == "bad" and len(rest.strip()) <= 12
    if wrap and value.kind != "blank" and not alone:
        return _Value("blank", reason="a number at the start of the next line"), pos
    paren = lead["paren"] if lead else None
    note = _PAREN_SCALE.match(paren.strip()) if paren else None
    if value.kind == "ok" and note and _scale_number(note["d"]) != scale[1]:
        value = _Value("bad", reason=f"a score on a {_scale_number(note['d']):g}-point scale ({paren.strip()}), "
                                     f"not {scale[0]:g}–{scale[1]:g}")
    return _shifted(value, pos), pos + value.end


@dataclass
class _Candidate:
    """One place where the judge gives the overall score."""

    start: int
    end: int
    source: str  # "dict" or "lines"
    overall: _Value
    block: _Dict | None = None
    inline: bool = False


@dataclass
class _Found:
    candidates: list[_Candidate] = field(default_factory=list)
    dim_dicts: list[_Dict] = field(default_factory=list)
    dim_lines: list[tuple[int, str, _Value]] = field(default_factory=list)
    quoted: int = 0
    templates: int = 0
    cut_off: str | None = None
    copies: int = 0  # rule 7: copies of a prompt example after the verdict, dropped (they gave the same score)
    copied: int = 0  # rule 8: copies of the material's verdict-shaped text, dropped

    def skipped(self) -> str:
        notes = []
        if self.templates:
            notes.append(f"{self.templates} echoed format template(s) or placeholder dict(s)")
        if self.quoted:
            notes.append(f"{self.quoted} score(s) inside quoted material")
        if self.copies:
            notes.append(f"{self.copies} cop{'ies' if self.copies > 1 else 'y'} of the prompt's example verdict")
        if self.copied:
            notes.append(f"{self.copied} cop{'ies' if self.copied > 1 else 'y'} of verdict-shaped text from the answer "
                         "or question")
        return f"ignored {' and '.join(notes)}" if notes else ""


def _looks_like_dict(norm: str, start: int, known: set[str]) -> bool:
    """Does the unclosed ``{`` at ``start`` open a score dict (a quote or a key follows it)?"""
    head = norm[start + 1: start + 1 + _LOOKAHEAD].lstrip(" \t\r\n")
    return head[:1] in ("'", '"') or any(head.startswith(k) for k in known)


_EXAMPLE_LEAD = re.compile(r"(?:示例|例如|比如|譬如|样例|范例|for example|e\.g\.|example|such as)[^。！？!?;.\n]{0,12}[:,]?[ \t*`]*$",
                           re.IGNORECASE)  # words that make what follows them on the line an example
_HYPOTHETICAL = re.compile(r"如果|假如|若是|要是|倘若|如若|假若")  # a condition before the key in its sentence
_SENTENCE_END = re.compile(r"[。！？!?；;]|\.[ \t]")
_FENCE_LINE = re.compile(r"[ \t]*(?:```|~~~)[\w-]*[ \t]*")


def _aside(norm: str, start: int) -> str | None:
    """Why the verdict at ``start`` is not the judge's verdict: it follows words that make it an example
    (``输出格式示例：``, on its line or on the line that introduces it) or a hypothetical (``如果…，综合得分为9分``,
    in its sentence). None: it is a verdict."""
    line = norm.rfind("\n", 0, start) + 1
    before = norm[max(line, start - 80):start]
    if _EXAMPLE_LEAD.search(before):
        return "example"
    ends = list(_SENTENCE_END.finditer(before))
    if _HYPOTHETICAL.search(before[ends[-1].end() if ends else 0:]):
        return "hypothetical"
    if before.strip(" \t*#>-`"):
        return None
    end = line - 1
    for _ in range(3):  # the line that introduces it, over blank and fence lines
        if end <= 0:
            return None
        prev = norm.rfind("\n", 0, end) + 1
        text = norm[max(prev, end - 80):end]
        if text.strip() and not _FENCE_LINE.fullmatch(text):
            return "example" if _EXAMPLE_LEAD.search(text.rstrip()) and text.rstrip().endswith(":") else None
        end = prev - 1
    return None


def _collect(norm: str, quoted: _Spans, known: set[str], overall_keys: set[str],
             scale: tuple[float, float], whole: bool = False, asides: bool = True) -> _Found:
    """Every score dict and score line in the verdict window, outside quoted material. A prompt read for its
    examples goes through here unchanged: an echo-marked dict (``例如：{…}``) is a candidate in a reply too."""
    found = _Found()
    w0 = 0 if whole else _window_start(norm)
    spans: list[tuple[int, int]] = []
    for m in _BLOCK.finditer(norm, w0):
        spans.append(m.span())
        if not any(k in m.group(0) for k in known):
            continue
        block = _read_dict(norm, m.start(), m.end(), known, scale)
        if block is None:
            continue
        if quoted.covers(m.start(), m.end()):
            found.quoted += 1
        elif block.template or (asides and _aside(norm, m.start())):
            found.templates += 1
        elif key := next((k for k in block.values if k in overall_keys), None):
            found.candidates.append(_Candidate(m.start(), m.end(), "dict", block.values[key], block,
                                               _inside_sentence(norm, m.end())))
        else:
            found.dim_dicts.append(block)
    tail = norm.rfind("{", w0)
    tail_open = (tail >= 0 and norm.find("}", tail) < 0 and not quoted.covers(tail, tail + 1)
                 and _looks_like_dict(norm, tail, known) and any(k in norm[tail:] for k in known))
    if tail_open:
        found.cut_off = norm[tail: tail + 60].strip()
    limit = tail if tail_open and not whole else len(norm)  # material: an open brace cuts nothing off
    starts = [s for s, _ in spans]
    for m in _key_pattern(tuple(known)).finditer(norm, w0, limit):
        i = bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < spans[i][1]:
            continue  # inside a brace block: read as a dict above
        value, end = _read_line(norm, m.end(), scale)
        rest = norm[m.end():] if len(norm) - m.end() <= 40 else "x"
        if value.kind == "blank" and not rest.strip(_SEPARATORS) and any(c in rest for c in ":=为是") \
                and not quoted.covers(m.start(), m.end()):
            found.cut_off = norm[m.start():].strip()  # the reply ends right after a key: its value is lost
            break
        if value.kind == "blank":
            found.templates += value.template
            continue
        if quoted.covers(m.start(), end):
            found.quoted += 1
        elif asides and m.group(0) in overall_keys and _aside(norm, m.start()):
            found.templates += 1
        elif m.group(0) in overall_keys:
            found.candidates.append(_Candidate(m.start(), end, "lines", value))
        else:
            found.dim_lines.append((m.start(), m.group(0), value))
    found.candidates.sort(key=lambda c: c.start)
    return found


def _dims_for_line_verdict(found: _Found, verdict: _Candidate) -> tuple[dict[str, _Value], str | None]:
    """Per-dimension scores that go with a verdict read from a ``综合得分：n`` line (rule 4)."""
    segment = 0  # dimension scores count from the end of the last verdict that disagrees with this one
    for c in found.candidates[:-1]:
        if not c.overall.same(verdict.overall):
            segment = c.end
    dicts = [d for d in found.dim_dicts if d.start >= segment]
    if dicts:
        return dicts[-1].values, dicts[-1].problem
    same = [c.block for c in found.candidates[:-1] if c.block is not None and c.start >= segment]
    if same:
        return same[-1].values, same[-1].problem
    return {key: value for pos, key, value in found.dim_lines if pos >= segment}, None


# -- other output conventions (rubric ``verdict``; docs/protocols.md) ---------------------------------
# Labels a rating follows, longest first where one holds another. The rubric's overall key is always one.
RATING_LABELS = ("Overall Rating", "Overall rating", "overall rating", "Rating", "rating", "RATING", "Score",
                 "score", "SCORE", "最终评分", "综合评分", "总评分", "评分")
RESULT_LABELS = ("[RESULT]", "[Result]", "[result]", "[结果]")
# Output conventions: the labels a rating follows (a rubric's own replace them), what a reply without one lacks,
# and what a text holding such a verdict contains besides the rubric's keys (the material scan's anchors).
CONVENTIONS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "alignbench-dict": ((), "no score block and no {key} line", ()),
    "double-brackets": ((), "no [[N]] rating", ("[[",)),
    "rating-line": (RATING_LABELS, "no rating line ('Rating: N', '{key}：N')", RATING_LABELS),
    "result-tag": (RESULT_LABELS, "no '[RESULT] N'", RESULT_LABELS),
}
_ECHO_LEAD = re.compile(r"例如|比如|譬如|示例|格式|for example|e\.g\.|such as|format", re.IGNORECASE)
_LABEL_TRIM = " \t:=*'\"【[(（-"
_BRACKET_CLOSE = re.compile(r"[ \t]*分?[ \t]*\]\]")
_LABEL_AT_END = re.compile(r"(?:rating|score|评分|得分|\[result\])[ \t*'\"]*(?:[:=][ \t*'\"]*\[{0,2}|\[{1,2})$",
                           re.IGNORECASE)


def _collect_brackets(norm: str, quoted: _Spans, dims: set[str], scale: tuple[float, float],
                      prompt: bool = False, whole: bool = False) -> _Found:
    """Every ``[[N]]`` rating in the verdict window (MT-Bench style), with the same rules as a score line:
    a rating labelled with a dimension (``事实正确性：[[7]]``) is that dimension's, any other
    (``[[8]]``, ``Rating: [[8]]``, ``评分：[[8]]``) is the overall one; quoted material, echoed examples
    (``例如：评分：[[5]]``, ``[[5]] 表示…``) and placeholders (``[[rating]]``, ``[[1-10]]``) are skipped;
    an opening ``[[`` the reply ends inside is a cut-off. Anchored at the literal ``[[`` and reading at most
    ``_LOOKAHEAD`` characters, so the work stays linear. With ``prompt`` (a prompt read for its examples) the
    echo-marked ratings are kept: there, being marked as an example is what makes one."""
    found = _Found()
    w0 = 0 if whole else _window_start(norm)
    by_length = sorted(dims, key=len, reverse=True)
    for m in re.finditer(r"\[\[", norm[w0:]):
        at = w0 + m.end()
        if at < len(norm) and norm[at] == "[":
            continue  # "[[[": the inner pair is the one that counts
        chunk = norm[at: at + _LOOKAHEAD]
        value = _read_value(chunk.split("]]", 1)[0], scale)
        closed = _BRACKET_CLOSE.match(norm, at + value.end) if value.kind == "ok" else None
        end = closed.end() if closed else at + len(chunk.split("]]", 1)[0]) + 2
        if value.kind == "blank":
            found.templates += "]]" in chunk
            continue
        if value.kind == "ok" and not closed:
            if "]]" not in chunk and "\n" not in chunk and at + len(chunk) >= len(norm.rstrip()):
                found.cut_off = norm[m.start() + w0:].strip()
                break
            value = _Value("bad", reason=f"[[…]] holds more than one score ({chunk.split(']]', 1)[0][:30]!r})")
        value = _shifted(value, at)
        line_start = norm.rfind("\n", 0, at) + 1
        head = norm[max(line_start, at - 2 - 40): at - 2]
        if quoted.covers(at - 2, end):
            found.quoted += 1
            continue
        if not prompt and (_ECHO_LEAD.search(head) or _EXPLAINED.match(norm, end, min(len(norm), end + 40))):
            found.templates += 1
            continue
        label = head.rstrip(_LABEL_TRIM)
        dim = next((d for d in by_length if label.endswith(d)), None)
        if dim is not None:
            found.dim_lines.append((at - 2, dim, value))
        else:
            found.candidates.append(_Candidate(at - 2, end, "rating", value, None, _inside_sentence(norm, end)))
    else:
        tail = norm.rstrip()
        label = _LABEL_AT_END.search(tail, max(w0, len(tail) - 30))
        if label and not quoted.covers(label.start(), label.end()):
            found.cut_off = tail[label.start():]
    return found


@dataclass(frozen=True)
class ParsedScores:
    status: Status
    scores: dict[str, float] = field(default_factory=dict)
    overall: float | None = None
    detail: str | None = None
    # where each read score starts in the reply text (overall under the overall key): the log-probability
    # reader looks at the token there
    spans: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def parse_scores(text: str | None, dimensions: tuple[str, ...] | list[str], overall_key: str = "综合得分",
                 scale: tuple[float, float] = (1, 10), convention: str = "alignbench-dict",
                 labels: tuple[str, ...] | list[str] = (), *, examples: Sequence[str] = (),
                 material: Material = NO_MATERIAL) -> ParsedScores:
    """Read per-dimension and overall scores from a pointwise judgment (rules in the module docstring).

    ``convention`` is how the rubric asks the judge to write its verdict: ``alignbench-dict`` (the closing
    score dict, or a ``综合得分：7`` line), ``double-brackets`` (``[[8]]``, ``Rating: [[8]]``, ``评分：[[8]]``),
    ``rating-line`` (``Rating: 7``, ``评分：7``) or ``result-tag`` (Prometheus' ``[RESULT] 4``); ``labels``
    replaces the convention's own labels. Every convention keeps every rule above.

    ``examples``: the example verdicts the judge's prompt shows (``prompt_examples`` reads them from a
    prompt, ``alignbench.prompts.verdict_examples`` from a rubric), read under the same convention. With them,
    a last verdict that is a verbatim copy of one is told apart from the judge's own (rule 7); without them
    (the default) an exact echo cannot be recognised and is read like any verdict.

    ``material``: the verdict-shaped spans of what the judge was shown (``material_scores`` of the answer, the
    question and the reference): a verdict that copies one is not the judge's (rule 8).

    Returns ``ok`` with the overall score and whichever dimensions were given; ``out_of_range`` with the
    values when one lies outside ``scale``; ``refused`` when no score was given and the judge says it
    cannot judge; otherwise ``parse_failed`` with the reason — never a guessed score."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown verdict convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    if text is None or not text.strip():
        return ParsedScores(Status.PARSE_FAILED, detail="empty judge reply")
    split = split_reasoning(text)
    if split.unclosed:
        return ParsedScores(Status.PARSE_FAILED, detail="cut off: the reply ends inside its <think> block")
    norm, found = _find(split.text, tuple(dimensions), overall_key, scale, convention, tuple(labels))
    missing = CONVENTIONS[convention][1].format(key=overall_key)
    echoes = _example_keys(tuple(examples), tuple(dimensions), overall_key, tuple(scale), convention,
                           tuple(labels)) if examples else MappingProxyType({})
    parsed = _verdict_of(found, norm, dimensions, overall_key, scale, missing, echoes, material)
    if parsed.spans and split.start:
        parsed = replace(parsed, spans={k: v + split.start for k, v in parsed.spans.items()})
    return parsed


def _find(body: str, dimensions: tuple[str, ...], overall_key: str, scale: tuple[float, float], convention: str,
          labels: tuple[str, ...], prompt: bool = False, material: bool = False) -> tuple[str, _Found]:
    """The normalised text and every verdict the convention's collector finds in it. ``prompt``: the text is
    a prompt read for its examples, where showing a verdict in “…” or after 例如 is how an example is given.
    ``material``: a text the judge was shown (an answer, a question): all of it is searched and nothing in it
    is quoted, since every verdict-shaped span there is one the judge may copy."""
    norm = body.translate(_FULLWIDTH)
    quoted = _NOWHERE if material else _Quoted(body, norm, markers_only=prompt)
    if convention == "double-brackets":
        return norm, _collect_brackets(norm, quoted, set(dimensions), scale, prompt=prompt or material, whole=material)
    overall_keys = {overall_key, *(labels or CONVENTIONS[convention][0])}
    return norm, _collect(norm, quoted, set(dimensions) | overall_keys, overall_keys, scale, whole=material,
                          asides=not (prompt or material))


# -- material the judge was shown (rule 8) ----------------------------------------------------------

_JSON_VERDICT = re.compile(r'"overall"\s*:\s*\{[^{}]{0,2000}\}')  # a structured verdict's own "overall" object


_NORMALISED_TO = frozenset(_FULLWIDTH.values())  # what full-width forms become: an anchor made of these may hide


def _may_hold(text: str, anchors: Sequence[str]) -> bool:
    """Whether ``text`` may hold a verdict: one of ``anchors`` (or a JSON verdict's ``overall``) is in it as
    written, or an anchor has a character a full-width form normalises to (``[[``: ``［［``). Most answers hold
    none, and are not normalised and scanned at all."""
    return "overall" in text or any(a in text or any(ord(c) in _NORMALISED_TO for c in a) for a in anchors)


def _material(texts: Sequence[str], spans_of: object, anchors: Sequence[str]) -> Material:
    keys: dict[str, str] = {}
    flat = []
    for text in texts:
        if not text or not _may_hold(text, anchors):
            continue
        norm = text.translate(_FULLWIDTH)
        before = len(keys)
        for start, end in spans_of(text, norm):  # type: ignore[operator]
            line_start, line_end = _line_bounds(norm, start, end)  # shown with its line: what a reader recognises
            keys.setdefault(_copy_key(norm[start:end]), text[line_start:line_end].strip()[:80])
        if '"overall"' in norm:
            for m in _JSON_VERDICT.finditer(norm):
                keys.setdefault(_copy_key(m.group(0)), m.group(0))
        if len(keys) > before:  # only a text with verdicts of its own can be what a copy's surroundings come from
            flat.append(_copy_key(norm))
    keys.pop("", None)
    return Material(frozenset(keys), "\x00".join(flat), next(iter(keys.values()), None))


@lru_cache(maxsize=4096)
def material_scores(texts: tuple[str, ...], dimensions: tuple[str, ...] = (), overall_key: str = "综合得分",
                    scale: tuple[float, float] = (1, 10), convention: str = "alignbench-dict",
                    labels: tuple[str, ...] = ()) -> Material:
    """The verdict-shaped spans of ``texts`` (an answer's replies; a question and its reference) as a pointwise
    judge of this convention writes them: ``parse_scores(..., material=…)`` tells a copy of one by them. A
    non-empty result on an answer means the answer carries a verdict of its own (an injection attempt)."""
    anchors = (overall_key, *dimensions, *(labels or CONVENTIONS[convention][2]))

    def spans(text: str, norm: str) -> list[tuple[int, int]]:
        if not any(a in norm for a in anchors):  # no key at all, nothing to collect
            return []
        found = _find(text, dimensions, overall_key, scale, convention, labels, material=True)[1]
        return [(c.start, c.end) for c in found.candidates] + [(d.start, d.end) for d in found.dim_dicts]
    return _material(texts, spans, anchors)


@lru_cache(maxsize=4096)
def material_verdicts(texts: tuple[str, ...]) -> Material:
    """The pairwise verdict-shaped spans of ``texts`` (``最终判决：[[助手1]]``, ``[[A]]``,
    ``{'综合比较结果': …}``), for ``parse_verdict(..., material=…)``."""
    def spans(text: str, norm: str) -> list[tuple[int, int]]:
        if not _VERDICT_ANCHOR.search(norm):
            return []
        own, echoes, _ = _saids(norm, _NOWHERE, 0)
        return [(s.start, s.end) for s in own + echoes]
    return _material(texts, spans, _PAIR_ANCHORS)


_FENCE = re.compile(r"(?m)^[ \t>]*(?:```|~~~)")
_QUOTE_OPEN = "\"'`「『‘“"
_QUOTE_LEAD = re.compile(
    r"写道|写着|写有|写了|声称|自称|自评|自我评|自己(?:打|评|给)|原文|引用|注入|末尾|结尾|最后一行|结尾处|标注|附上|附带|"
    r"\b(?:writes|wrote|written|claims?|says|said|states|ends with|injected|quotes?|quoted|includes?)\b", re.IGNORECASE)
_REVISION_LEAD = re.compile(r"改为|改成|修正|更正|调整|最终|复核|重新|综上|因此|所以|总之|\b(?:final|revised|therefore|overall)\b",
                            re.IGNORECASE)
_LINE_LABELS = re.compile(r"最终|综合|评分|得分|总分|结论|判决|结果|rating|score|final|overall|verdict|result", re.IGNORECASE)
_PAIR_LABEL = re.compile(r"最终(?:判决|结论|裁决|判断)")
_CONTEXT = 12  # characters of the answer's own words around a copy that mark it as a quotation


class _Copies:
    """Rule 8: where a verdict in the reply copies the material, and whether it sits in a quotation of it."""

    def __init__(self, norm: str, material: Material, w0: int) -> None:
        self.norm, self.material = norm, material
        spans = []
        fences = [m.start() for m in _FENCE.finditer(norm, w0)]
        for i in range(0, len(fences), 2):
            spans.append((fences[i], fences[i + 1] if i + 1 < len(fences) else len(norm)))
        pos = w0
        while (start := norm.find("<!--", pos)) >= 0:
            end = norm.find("-->", start + 4)
            spans.append((start, len(norm) if end < 0 else end + 3))
            if end < 0:
                break
            pos = end + 3
        self.blocks = _Spans(spans)

    def copied(self, start: int, end: int) -> bool:
        return _copy_key(self.norm[start:end]) in self.material.keys

    def lead(self, start: int) -> str:
        """The text before ``start`` on its line and the previous non-blank line (bounded)."""
        norm = self.norm
        line = norm.rfind("\n", 0, start)
        prev = norm.rfind("\n", 0, max(0, line)) if line > 0 else -1
        while prev > 0 and not norm[prev + 1:line].strip() and line > 0:
            line = prev
            prev = norm.rfind("\n", 0, line)
        return norm[max(prev + 1, start - 120):start]

    def quoted(self, start: int, end: int) -> bool:
        """A copy inside a code fence or an HTML comment, in quotes, inside a sentence, after words that
        introduce a quotation (``回答末尾写道：``), or with the material's own words around it."""
        norm = self.norm
        if self.blocks.covers(start, end):
            return True
        before = norm[max(0, start - 8):start].rstrip(" \t*")
        if before[-1:] and before[-1] in _QUOTE_OPEN:
            return True
        if _WORD.search(_line_rest(norm, end).lstrip(_ALONE)):  # words after it: talked about (``分`` is the unit)
            return True
        lead = self.lead(start)
        if _QUOTE_LEAD.search(lead):
            return True
        key = _copy_key(norm[start:end])
        pre, post = _copy_key(lead)[-_CONTEXT:], _copy_key(norm[end:end + 60])[:_CONTEXT]
        return (len(pre) >= 6 and pre + key in self.material.flat) or (len(post) >= 6 and key + post in self.material.flat)

    def alone(self, start: int) -> bool:
        """Nothing but labels and marks before ``start`` on its line."""
        line = self.norm.rfind("\n", 0, start) + 1
        return not _WORD.search(_LINE_LABELS.sub("", self.norm[line:start]))

    def revision(self, start: int, pairwise: bool = False) -> bool:
        """Words of revision (``综上``, ``改为``) before ``start``; a pairwise verdict's own label
        (``最终判决``) is not one."""
        lead = self.lead(start)
        return bool(_REVISION_LEAD.search(_PAIR_LABEL.sub("", lead) if pairwise else lead))


def _drop_copies(found: _Found, norm: str, material: Material) -> tuple[_Found, str | None]:
    """Rule 8: verdicts that copy the material (the answer's own ``{'综合得分': 10}``) are not the judge's.

    A copy in a quotation of the material is dropped wherever it stands. Copies after the judge's own last
    verdict are dropped, so that verdict stands; one that disagrees and follows words of revision
    (``综上``, ``改为``) could be the judge's own final word and makes the reply ambiguous. When only copies
    remain, the last is read only when it stands on a line of its own (a judge that gives the answer's
    number in the answer's words); otherwise the reply has no verdict of its own: parse failure."""
    if not material or not found.candidates:
        return found, None
    copies = _Copies(norm, material, _window_start(norm))
    kept = [c for c in found.candidates if not (copies.copied(c.start, c.end) and copies.quoted(c.start, c.end))]
    dims = [d for d in found.dim_dicts if not copies.copied(d.start, d.end)]
    dropped = len(found.candidates) - len(kept)
    k = len(kept)
    while k and copies.copied(kept[k - 1].start, kept[k - 1].end):
        k -= 1
    if k == 0:
        if kept and copies.alone(kept[-1].start):
            return replace(found, candidates=kept, dim_dicts=dims, copied=dropped), None
        what = found.candidates[-1]
        return found, (f"the only verdict ({norm[what.start:what.end].strip()[:60]!r}) copies verdict-shaped text "
                       "from the material the judge was shown (the answer, the question or the reference)")
    own = kept[k - 1]
    trailing = kept[k:]
    differ = [c for c in trailing if not c.overall.same(own.overall)]
    if any(copies.revision(c.start) and copies.alone(c.start) for c in differ):
        c = differ[-1]
        return found, (f"ambiguous: after the judge's verdict {own.overall.show()} it writes "
                       f"{norm[c.start:c.end].strip()[:60]!r}, a copy of the answer's own verdict-shaped text, "
                       "as if revising")
    return replace(found, candidates=kept[:k], dim_dicts=dims, copied=dropped + len(trailing)), None


_RETRACT = re.compile(rf"(?:改为|改成|修正为|更正为|调整为|下调为|上调为|降为|降到|降至|提高到|提高至|应为|应该是|应改为|应给|应该给)"
                      rf"[ \t]*(?P<n>{_DEC})[ \t]*分")  # a revision in prose after the verdict, without the key
_VERBATIM_DROP = re.compile(r"[\s*`]+")


def _copy_key(text: str) -> str:
    """A span as rule 8 compares it: as ``_verbatim``, and a copy that swaps the quote style is still a copy."""
    return _verbatim(text).replace('"', "'")


def _verbatim(text: str) -> str:
    """A verdict's text as the echo comparison sees it (rule 7): full-width forms already mapped by the
    caller, whitespace and Markdown emphasis dropped. A judge that re-spaces or bolds the prompt's example
    has still copied it; a different key, quote style or number is a different text."""
    return _VERBATIM_DROP.sub("", text)


def prompt_examples(prompt: str, dimensions: tuple[str, ...] | list[str], overall_key: str = "综合得分",
                    scale: tuple[float, float] = (1, 10), convention: str = "alignbench-dict",
                    labels: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """The example verdicts a prompt shows, each once, in the prompt's own words (``{'综合得分': 5}``,
    ``[[5]]``, ``Rating: 5``): what ``parse_scores(..., examples=…)`` tells echoes by.

    Read by the same collector as a reply, so an example is exactly what a copy of it in a reply would be
    read as. Unlike in a reply, a verdict shown in “…” or after ``例如`` counts (that is how prompts show
    examples); placeholders (``[[N]]``, ``1-10``) and elliptic templates are no verdict either way, so a
    prompt without a readable example gives none. Only the answer and reference blocks are skipped: pass the
    rubric's own text (``alignbench.prompts.verdict_examples`` stands in a placeholder for the question's),
    or a score the judged answer wrote would count as an example."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown verdict convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    norm, found = _find(prompt, tuple(dimensions), overall_key, scale, convention, tuple(labels), prompt=True)
    shown: dict[str, str] = {}
    for c in found.candidates:
        if c.overall.kind == "ok":
            shown.setdefault(_verbatim(norm[c.start:c.end]), prompt[c.start:c.end])
    return tuple(shown.values())


@lru_cache(maxsize=256)
def _example_keys(examples: tuple[str, ...], dimensions: tuple[str, ...], overall_key: str,
                  scale: tuple[float, float], convention: str,
                  labels: tuple[str, ...]) -> MappingProxyType[str, str]:
    """The comparable text of every verdict in ``examples`` -> that verdict as the example writes it (each
    example is read like a prompt, so a caller may pass a whole instruction line such as
    ``例如：评分：[[5]]`` as well as the bare verdict). Read-only: the cache hands the same mapping to
    every caller."""
    keys: dict[str, str] = {}
    for example in examples:
        norm, found = _find(example, dimensions, overall_key, scale, convention, labels, prompt=True)
        for c in found.candidates:
            if c.overall.kind == "ok":
                keys.setdefault(_verbatim(norm[c.start:c.end]), example[c.start:c.end])
    return MappingProxyType(keys)


def _drop_echoes(found: _Found, norm: str, echoes: Mapping[str, str]) -> tuple[_Found, str | None]:
    """Rule 7: the verdicts at the end that copy a prompt example, set against the judge's last other verdict.

    None of them: nothing changes. Nothing but copies: they are the verdict (a judge may give the
    example's score in the example's words). Copies that all agree with the judge's verdict before them:
    dropped, so that verdict (with its dimensions) is read — the same score either way. A copy that
    disagrees: the reason for a parse failure, as neither reading is safe."""
    candidates = found.candidates
    n = len(candidates)
    while n and _verbatim(norm[candidates[n - 1].start:candidates[n - 1].end]) in echoes:
        n -= 1
    if n in (0, len(candidates)):
        return found, None
    own = candidates[n - 1]
    differ = [c for c in candidates[n:] if not c.overall.same(own.overall)]
    if differ:
        copy = differ[-1]
        example = echoes[_verbatim(norm[copy.start:copy.end])]
        return found, (f"ambiguous: the verdict {copy.overall.show()} at the end is a verbatim copy of the prompt's "
                       f"example {example}, and the judge's verdict before it says {own.overall.show()}")
    return replace(found, candidates=candidates[:n], copies=len(candidates) - n), None


def _verdict_of(found: _Found, norm: str, dimensions: tuple[str, ...] | list[str], overall_key: str,
                scale: tuple[float, float], missing: str, echoes: Mapping[str, str] | None = None,
                material: Material = NO_MATERIAL) -> ParsedScores:
    """The verdict among what ``_collect`` found: the judge's own last one (rules 4–8)."""
    if found.cut_off is not None:
        return ParsedScores(Status.PARSE_FAILED, detail=f"cut off: the reply ends inside {found.cut_off!r}")
    if material:
        found, copied = _drop_copies(found, norm, material)
        if copied:
            return ParsedScores(Status.PARSE_FAILED, detail=copied)
    if echoes:
        found, echoed = _drop_echoes(found, norm, echoes)
        if echoed:
            return ParsedScores(Status.PARSE_FAILED, detail=echoed)
    skipped = found.skipped()
    if not found.candidates:
        dims = {}
        for block in found.dim_dicts[-1:]:
            dims = {k: v.number for k, v in block.values.items() if k in dimensions and v.kind == "ok"}
        if dims:
            return ParsedScores(Status.PARSE_FAILED, scores=dims, detail=f"no {overall_key} in the score block")
        if _REFUSAL.search(norm, _window_start(norm)):
            return ParsedScores(Status.REFUSED, detail="the judge declined to score")
        detail = missing + (f" ({skipped})" if skipped else "")
        return ParsedScores(Status.PARSE_FAILED, detail=detail)
    verdict = found.candidates[-1]
    if verdict.block is not None and verdict.block.problem:
        return ParsedScores(Status.PARSE_FAILED, detail=verdict.block.problem)
    if verdict.overall.kind != "ok":
        return ParsedScores(Status.PARSE_FAILED, detail=f"{overall_key}: {verdict.overall.reason}")
    retract = _RETRACT.search(norm, verdict.end, verdict.end + TAIL_CHARS)
    if retract and float(retract["n"]) != verdict.overall.number:
        return ParsedScores(Status.PARSE_FAILED, detail=(
            f"ambiguous: after the verdict {verdict.overall.show()} the judge writes {retract.group(0)!r}"))
    if verdict.inline:
        others = {c.overall.show() for c in found.candidates[:-1]} - {verdict.overall.show()}
        if others:
            what = "score dict" if verdict.source == "dict" else "rating"
            return ParsedScores(Status.PARSE_FAILED, detail=(
                f"ambiguous: the last {what} ({overall_key} {verdict.overall.show()}) sits inside a "
                f"sentence and an earlier verdict says {', '.join(sorted(others))}"))
    if verdict.block is not None:
        dim_values, problem = verdict.block.values, None
    else:
        dim_values, problem = _dims_for_line_verdict(found, verdict)
    if problem:
        return ParsedScores(Status.PARSE_FAILED, detail=problem)
    bad_dims = [f"{d}: {v.reason}" for d, v in dim_values.items() if d in dimensions and v.kind == "bad"]
    if bad_dims:
        return ParsedScores(Status.PARSE_FAILED, detail="; ".join(bad_dims))
    scores = {d: dim_values[d].number for d in dimensions if d in dim_values and dim_values[d].kind == "ok"}
    overall = verdict.overall.number
    assert overall is not None
    lo, hi = scale
    bad = {k: v for k, v in {**scores, overall_key: overall}.items() if not lo <= v <= hi}
    if bad:
        return ParsedScores(Status.OUT_OF_RANGE, scores=scores, overall=overall,
                            detail=f"outside {lo:g}–{hi:g}: " + ", ".join(f"{k}={v:g}" for k, v in bad.items()))
    missing_dims = [d for d in dimensions if d not in scores]
    detail = f"read from {verdict.source}" + (f"; no score for {', '.join(missing_dims)}" if missing_dims else "")
    spans = {d: dim_values[d].start for d in scores if dim_values[d].start >= 0}
    if verdict.overall.start >= 0:
        spans[overall_key] = verdict.overall.start
    return ParsedScores(Status.OK, scores=scores, overall=overall, detail=detail + (f"; {skipped}" if skipped else ""),
                        spans=spans)


# -- structured output (a JSON verdict; ``alignbench.structured`` builds the schemas) --------------

class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are unique (``json.loads`` keeps the last of a repeated key silently: a verdict
    with ``"overall"`` twice would be read as whichever came last). The same value twice is harmless."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out and out[key] != value:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_verdict(body: str) -> tuple[object, str | None] | None:
    """The JSON object a structured reply holds, or the reason it cannot be read; None when the reply is
    not a JSON attempt at all (prose from a backend that ignored the schema: read it as text). A reply
    that starts a JSON object is never read as text: its ``"score"`` keys would pass for rating labels."""
    stripped = body.strip()
    if stripped.startswith("```"):  # a fenced block (plain string operations: linear whatever the text)
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rstrip()
        stripped = stripped[:-3].rstrip() if stripped.endswith("```") else stripped
    if not stripped.startswith("{"):
        return None
    try:
        obj = safejson.loads(stripped)  # bounded first; within the bounds, a second read finds repeated keys
        return json.loads(stripped, object_pairs_hook=_unique_keys) if "\"" in stripped else obj, None
    except _DuplicateKey as exc:
        return None, f"ambiguous: the JSON verdict has {exc.key!r} twice with different values"
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped) - 1 or "Unterminated" in exc.msg:
            return None, "cut off: the JSON verdict ends before it is complete"
        return None, f"not valid JSON ({exc.msg} at character {exc.pos})"


def _json_score(value: object, scale: tuple[float, float]) -> _Value:
    """A score from a JSON verdict: a number (``true`` is not one); a numeric string is read by the text
    rules (``"7/10"`` is 7, ``"8-9"`` a range)."""
    if isinstance(value, dict):
        value = value.get("score")
    if isinstance(value, bool) or value is None:
        return _Value("blank", reason="no score")
    if isinstance(value, int | float):
        return _Value("ok", float(value))
    if isinstance(value, str):
        read = _read_value(value.strip(), scale)
        if read.kind == "ok" and value.strip()[read.end:].strip(_ALONE):
            return _Value("bad", reason=f"not a score ({value[:30]!r})")
        return read
    return _Value("bad", reason=f"a {type(value).__name__}, not a score")


def _json_offset(body: str, key: str) -> int:
    """Where the ``"score"`` of object ``key`` starts in ``body`` (-1: not found). JSON escapes quotes inside
    strings, so an unescaped ``"key"`` is a key, never analysis text."""
    keys = list(re.finditer(r'(?<!\\)"' + re.escape(key) + r'"\s*:\s*\{', body))
    if not keys:
        return -1
    at = keys[-1]
    score = re.compile(r'"score"\s*:\s*"?(?=-?[0-9])').search(body, at.end())
    return score.end() if score else -1


def _structured_reply(text: str | None) -> tuple[object, str | None, ReasoningSplit] | None:
    """The JSON object of a structured reply, why it cannot be read (an empty reply, a ``<think>`` block never
    closed, a cut-off object) and where the verdict text starts; None when the reply is not JSON at all.
    Both JSON readers start here."""
    split = split_reasoning(text or "")
    if text is None or not text.strip():
        return None, "empty judge reply", split
    if split.unclosed:
        return None, "cut off: the reply ends inside its <think> block", split
    got = _json_verdict(split.text)
    return None if got is None else (*got, split)


def _json_copy(body: str, material: Material) -> str | None:
    """Rule 8 for a JSON verdict: the reply's ``"overall"`` object (analysis and score), or the whole reply,
    is the material's own text (an answer that wrote the judge's JSON for it)."""
    if not material:
        return None
    norm = body.translate(_FULLWIDTH)
    whole = _copy_key(norm)
    if len(whole) >= 20 and whole in material.flat:
        return "the JSON verdict is a copy of text from the answer or question the judge was shown"
    for m in _JSON_VERDICT.finditer(norm):
        if _copy_key(m.group(0)) in material.keys:
            return f"the JSON verdict's {m.group(0)[:60]!r} copies the answer's own verdict-shaped text"
    return None


def parse_structured_scores(text: str | None, dimensions: tuple[tuple[str, str], ...] | list[tuple[str, str]],
                            overall_key: str = "综合得分", scale: tuple[float, float] = (1, 10),
                            material: Material = NO_MATERIAL) -> ParsedScores | None:
    """Read a JSON verdict (``{"dimensions": {id: {"analysis", "score"}}, "overall": {"analysis", "score"}}``,
    ``dimensions`` as (id, name) pairs; a dimension may also be keyed by its name). None when the reply is
    not JSON at all, so the caller reads it by the rubric's text convention. The same outcomes as
    ``parse_scores``: range checks, cut-offs and missing scores are statuses, never guesses."""
    got = _structured_reply(text)
    if got is None:
        return None
    obj, problem, split = got
    problem = problem or _json_copy(split.text, material)
    if problem:
        return ParsedScores(Status.PARSE_FAILED, detail=problem)
    if not isinstance(obj, dict):
        return ParsedScores(Status.PARSE_FAILED, detail="the JSON verdict is not an object")
    overall = _json_score(obj.get("overall"), scale)
    if overall.kind != "ok" or overall.number is None:
        return ParsedScores(Status.PARSE_FAILED, detail=f"{overall_key}: {overall.reason or 'no score'} in the JSON verdict")
    given = obj.get("dimensions") if isinstance(obj.get("dimensions"), dict) else {}
    scores: dict[str, float] = {}
    spans: dict[str, int] = {}
    for dim_id, name in dimensions:
        raw = given.get(dim_id, given.get(name))
        if raw is None:
            continue
        value = _json_score(raw, scale)
        if value.kind == "bad":
            return ParsedScores(Status.PARSE_FAILED, detail=f"{name}: {value.reason}")
        if value.kind == "ok" and value.number is not None:
            scores[name] = value.number
            at = _json_offset(split.text, dim_id if dim_id in given else name)
            if at >= 0:
                spans[name] = at + split.start
    at = _json_offset(split.text, "overall")
    if at >= 0:
        spans[overall_key] = at + split.start
    lo, hi = scale
    bad = {k: v for k, v in {**scores, overall_key: overall.number}.items() if not lo <= v <= hi}
    if bad:
        return ParsedScores(Status.OUT_OF_RANGE, scores=scores, overall=overall.number,
                            detail=f"outside {lo:g}–{hi:g}: " + ", ".join(f"{k}={v:g}" for k, v in bad.items()))
    missing = [name for _, name in dimensions if name not in scores]
    return ParsedScores(Status.OK, scores=scores, overall=overall.number, spans=spans,
                        detail="read from JSON" + (f"; no score for {', '.join(missing)}" if missing else ""))


# -- pairwise verdicts ---------------------------------------------------------------------------

# Pairwise conventions (rubric ``pairwise_verdict``) and their words for: the first answer is better, the
# second, a tie. ``parse_verdict`` reads every one of them; the words are what a JSON verdict may say.
PAIR_CONVENTIONS: dict[str, tuple[str, str, str]] = {
    "final-verdict": ("助手1", "助手2", "平局"),  # 最终判决：[[助手1]]
    "ab-brackets": ("A", "B", "C"),  # [[A]] / [[B]] / [[C]] (MT-Bench), also [[A>B]] … (Arena-Hard)
    "critiquellm-dict": ("助手1", "助手2", "质量相当"),  # {'综合比较结果': '助手1'}
}
_VERDICT_WORDS = {
    "助手1": "1", "助手一": "1", "助手2": "2", "助手二": "2",
    "平局": "tie", "质量相当": "tie", "两者相当": "tie", "相当": "tie", "平手": "tie",
    "a": "1", "b": "2", "c": "tie", "tie": "tie",
    "a>>b": "1", "a>b": "1", "a=b": "tie", "b>a": "2", "b>>a": "2",
}
_ANSWER = r"助手[ \t]*[12一二]|平局|平手|质量相当|两者相当|相当|tie"
_VERDICT_ANCHOR = re.compile(r"综合比较结果|\[\[|最终(?:判决|结论|裁决|判断)")
_PAIR_ANCHORS = ("综合比较结果", "[[", "最终判决", "最终结论", "最终裁决", "最终判断")  # the same, as plain strings
_VERDICT_AFTER_ANCHOR = {
    # CritiqueLLM: {'综合比较结果': '助手1'} (any quotes, full width normalised)
    "综": re.compile(r"""[ \t'"*]*:[ \t'"*]*(?P<w>""" + _ANSWER + ")", re.IGNORECASE),
    # ours: 最终判决：[[助手1]]; also MT-Bench [[A]]/[[B]]/[[C]] and Arena-Hard [[A>B]] … [[B>>A]]
    "[": re.compile(r"[ \t]*(?P<w>" + _ANSWER + r"|[ABC]|A>>B|A>B|A=B|B>A|B>>A)[ \t]*\]\]", re.IGNORECASE),
    # ours without the brackets: 最终判决：助手1 / 最终结论为平局 / a heading 最终判决 and the word below it
    "最": re.compile(r"""[ \t'"*【\[:]*(?:(?:为|是)[ \t'"*【\[:]*)?(?P<wrap>\n[ \t'"*【\[>#-]*)?(?P<w>""" + _ANSWER + ")",
                    re.IGNORECASE),
}
# The prompt explains each option right after it (“最终判决：[[助手1]]”表示…; MT-Bench: "[[A]]" if …).
_EXPLAINED = re.compile(r"""[ \t"'”’」』)\]*]{0,6}(?:表示|代表|意味着|意思是|means\b|indicates\b|stands for\b|if\b|when\b|for a tie\b)""",
                        re.IGNORECASE)
_VERDICT_LABELS = re.compile(r"最终|判决|结论|裁决|判断|综合比较结果|my|final|verdict|is|the", re.IGNORECASE)
_FINAL_LABEL_AT_END = re.compile(r"""最终(?:判决|结论|裁决|判断)[ \t'"*]*(?::|为|是|\[|【)[ \t:'"*【\[]*$""")
_PAIRWISE_REFUSAL = re.compile(r"无法(对此)?(进行)?(比较|判断|评判|裁决)|不能(进行)?(比较|评判)")


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


@dataclass(frozen=True)
class _Said:
    start: int
    end: int
    winner: str


def _verdict_key(raw: str) -> str:
    return re.sub(r"\s+", "", raw).lower()


def _line_bounds(norm: str, start: int, end: int) -> tuple[int, int]:
    line_start = norm.rfind("\n", 0, start) + 1
    line_end = norm.find("\n", end)
    return line_start, len(norm) if line_end < 0 else line_end


class _OnLine:
    """The judge's own verdicts by start offset, to find those on one line with a binary search."""

    def __init__(self, said: list[_Said]) -> None:
        self.said = sorted(said, key=lambda s: (s.start, s.end))
        self.starts = [s.start for s in self.said]

    def between(self, start: int, end: int) -> list[_Said]:
        i = bisect_right(self.starts, start - 1)
        out = []
        while i < len(self.said) and self.said[i].start < end:
            if self.said[i].end <= end:
                out.append(self.said[i])
            i += 1
        return out


def _verdict_only(norm: str, line_start: int, line_end: int, on_line: _OnLine) -> bool:
    """A line that is nothing but verdicts and labels (``最终判决：[[助手1]]``, ``[[B]]``)."""
    if line_end - line_start > 300:
        return False
    keep, pos = [], line_start
    for s in on_line.between(line_start, line_end):
        if s.start >= pos:
            keep.append(norm[pos:s.start])
            pos = s.end
    if pos == line_start:
        return False
    keep.append(norm[pos:line_end])
    return not _WORD.search(_VERDICT_LABELS.sub("", "".join(keep)))


_RUN_LINES = 12  # how many lines above the last verdict are checked for a run of disagreeing verdicts


def _saids(norm: str, quoted: _Spans, w0: int) -> tuple[list[_Said], list[_Said], int]:
    """Every pairwise verdict from ``w0`` on: the judge's own, the echoed options (followed by their
    explanation) and how many sit inside quoted material."""
    own: list[_Said] = []
    echoes: list[_Said] = []
    in_quotes = 0
    for anchor in _VERDICT_ANCHOR.finditer(norm, w0):
        at = anchor.start() + 2 if anchor.group(0) == "[[" else anchor.end()
        m = _VERDICT_AFTER_ANCHOR[anchor.group(0)[0]].match(norm, at, min(len(norm), at + _LOOKAHEAD))
        winner = _VERDICT_WORDS.get(_verdict_key(m["w"])) if m else None
        if m is None or winner is None:
            continue
        if "wrap" in m.groupdict() and m["wrap"] and _inside_sentence(norm, m.end()):
            continue  # "最终判决" as a heading, then a sentence that merely starts with "助手1…"
        said = _Said(anchor.start(), m.end(), winner)
        if quoted.covers(said.start, said.end):
            in_quotes += 1
        elif _EXPLAINED.match(norm, said.end, min(len(norm), said.end + 40)):
            echoes.append(said)
        else:
            own.append(said)
    return own, echoes, in_quotes


def _drop_pair_copies(own: list[_Said], norm: str, material: Material) -> tuple[list[_Said], str | None, int]:
    """Rule 8 for pairwise verdicts, as ``_drop_copies``: the judge's verdicts without the copies of the
    answers' own ``最终判决：[[助手1]]``, or why the reply has no verdict of its own."""
    copies = _Copies(norm, material, _window_start(norm))
    ordered = sorted(own, key=lambda s: (s.end, s.start))
    kept = [s for s in ordered if not (copies.copied(s.start, s.end) and copies.quoted(s.start, s.end))]
    dropped = len(ordered) - len(kept)
    # a line is the judge's own when any verdict on it is not a copy (``最终判决：[[助手1]]`` holds two)
    lines = {_line_bounds(norm, s.start, s.end) for s in kept if not copies.copied(s.start, s.end)}
    k = len(kept)
    while k and _line_bounds(norm, kept[k - 1].start, kept[k - 1].end) not in lines:
        k -= 1
    if k == 0:
        if kept and copies.alone(min(s.start for s in kept if _line_bounds(norm, s.start, s.end)
                                     == _line_bounds(norm, kept[-1].start, kept[-1].end))):
            return kept, None, dropped
        last = ordered[-1]
        return own, (f"the only verdict ({norm[last.start:last.end].strip()[:60]!r}) copies verdict-shaped text from "
                     "an answer or the question the judge was shown"), dropped
    mine = kept[k - 1]
    differ = [s for s in kept[k:] if s.winner != mine.winner]
    if any(copies.revision(s.start, pairwise=True) and copies.alone(s.start) for s in differ):
        s = differ[-1]
        return own, (f"ambiguous: after the judge's verdict {mine.winner} it writes {norm[s.start:s.end].strip()[:60]!r}, "
                     "a copy of an answer's own verdict, as if revising"), dropped
    return kept[:k], None, dropped + len(kept) - k


def parse_verdict(text: str | None, material: Material = NO_MATERIAL) -> ParsedVerdict:
    """Read the final verdict of a pairwise judgment.

    Accepts our format (``最终判决：[[助手1]]``), CritiqueLLM's ``{'综合比较结果': '助手2'}`` (any quotes,
    full-width punctuation), MT-Bench's ``[[A]]``/``[[B]]``/``[[C]]`` and Arena-Hard's ``[[A>B]]``
    family. The judge's **own last** verdict wins (judges often restate a provisional one first). Not
    the judge's own, so never read: a verdict inside quoted material (the answers' block markers,
    “…”, a ``>`` block quote) and an option followed by its explanation as the prompt lists them
    (``[[平局]]表示两者质量相当``, ``"[[A]]" if …``) — when only such echoes exist, that is a parse
    failure. Ambiguity is a parse failure too, never a guess: different verdicts on the last verdict
    line, a run of verdict-only lines that disagree (an echoed list of options), a last verdict inside
    a sentence that contradicts an earlier one, or an echo after a last verdict that is not on a line of
    its own. A reply that ends inside ``[[…`` or an unclosed verdict dict was cut off. The search is
    bounded like ``parse_scores``. ``material`` (``material_verdicts`` of the answers and the question): a
    verdict copied from an answer is not the judge's (rule 8, as in ``parse_scores``).
    """
    if text is None or not text.strip():
        return ParsedVerdict(Status.PARSE_FAILED, detail="empty judge reply")
    body, cut_in_think = _strip_think(text)
    if cut_in_think:
        return ParsedVerdict(Status.PARSE_FAILED, detail="cut off: the reply ends inside its <think> block")
    norm = body.translate(_FULLWIDTH)
    quoted = _Quoted(body, norm)
    w0 = _window_start(norm)
    own, echoes, in_quotes = _saids(norm, quoted, w0)
    copied = 0
    if material and own:
        own, problem, copied = _drop_pair_copies(own, norm, material)
        if problem:
            return ParsedVerdict(Status.PARSE_FAILED, detail=problem)
    tail = norm.rstrip()
    open_brackets = tail.rfind("[[", w0)
    if open_brackets >= 0 and "]]" not in tail[open_brackets:] and "\n" not in tail[open_brackets:] \
            and not quoted.covers(open_brackets, len(tail)):
        return ParsedVerdict(Status.PARSE_FAILED, detail=f"cut off: the reply ends inside {tail[open_brackets:][:30]!r}")
    label = _FINAL_LABEL_AT_END.search(tail, max(w0, len(tail) - 40))
    if label and not quoted.covers(label.start(), label.end()):
        return ParsedVerdict(Status.PARSE_FAILED, detail=f"cut off: the reply ends after {label.group(0).strip()!r}")
    open_brace = tail.rfind("{", w0)
    if open_brace >= 0 and "}" not in tail[open_brace:] and "综合比较结果" in tail[open_brace:] \
            and not quoted.covers(open_brace, len(tail)):
        return ParsedVerdict(Status.PARSE_FAILED, detail=f"cut off: the reply ends inside {tail[open_brace:][:40]!r}")
    if not own:
        if _PAIRWISE_REFUSAL.search(norm, w0) or _REFUSAL.search(norm, w0):
            return ParsedVerdict(Status.REFUSED, detail="the judge declined to compare")
        if echoes:
            return ParsedVerdict(Status.PARSE_FAILED, detail=(
                "only example verdicts followed by their explanation (an echo of the format instructions)"))
        if in_quotes or copied:
            return ParsedVerdict(Status.PARSE_FAILED, detail="the only verdicts are inside quoted material")
        return ParsedVerdict(Status.PARSE_FAILED, detail="no verdict ([[助手1]], [[A]], {'综合比较结果': …}) found")
    own.sort(key=lambda s: (s.end, s.start))
    last = own[-1]
    line_start, line_end = _line_bounds(norm, last.start, last.end)
    on_line = _OnLine(own)
    if len({s.winner for s in on_line.between(line_start, line_end)}) > 1:
        return ParsedVerdict(Status.PARSE_FAILED, detail="several different verdicts on the last verdict line")
    earlier = {s.winner for s in own[:-1]} - {last.winner}
    if earlier and _inside_sentence(norm, last.end):
        return ParsedVerdict(Status.PARSE_FAILED, detail=(
            f"ambiguous: the last verdict ({last.winner}) sits inside a sentence and an earlier one says "
            f"{', '.join(sorted(earlier))}"))
    run = {last.winner}
    pos = line_start - 1
    for _ in range(_RUN_LINES):  # the verdict-only lines just above the last verdict
        if pos <= 0:
            break
        start, end = _line_bounds(norm, pos, pos)
        if norm[start:end].strip():
            if not _verdict_only(norm, start, end, on_line):
                break
            run |= {s.winner for s in on_line.between(start, end)}
        pos = start - 1
    if len(run) > 1:
        return ParsedVerdict(Status.PARSE_FAILED, detail=(
            "several different verdicts in a row at the end (an echoed list of options?)"))
    late_echo = {s.winner for s in echoes if s.start > last.end} - {last.winner}
    if late_echo and not _verdict_only(norm, line_start, line_end, on_line):
        return ParsedVerdict(Status.PARSE_FAILED, detail=(
            f"ambiguous: the last verdict ({last.winner}) is inside prose and a later option "
            f"({', '.join(sorted(late_echo))}) is explained like the format instructions"))
    note = f"; ignored {copied} cop{'ies' if copied > 1 else 'y'} of an answer's own verdict" if copied else ""
    return ParsedVerdict(Status.OK, winner=last.winner, detail=f"verdict {last.winner}{note}")


def parse_structured_verdict(text: str | None, material: Material = NO_MATERIAL) -> ParsedVerdict | None:
    """Read a JSON pairwise verdict (``{"analysis": …, "verdict": "A" | "助手1" | "tie" …}``); None when the
    reply is not JSON at all (read it with ``parse_verdict``). A reply that copies an answer's own JSON
    verdict is a parse failure (rule 8)."""
    got = _structured_reply(text)
    if got is None:
        return None
    obj, problem, split = got
    problem = problem or _json_copy(split.text, material)
    if problem:
        return ParsedVerdict(Status.PARSE_FAILED, detail=problem)
    said = obj.get("verdict") if isinstance(obj, dict) else None
    winner = _VERDICT_WORDS.get(_verdict_key(said)) if isinstance(said, str) else None
    if winner is None:
        return ParsedVerdict(Status.PARSE_FAILED, detail=f"the JSON verdict names no known outcome ({str(said)[:30]!r})")
    return ParsedVerdict(Status.OK, winner=winner, detail=f"verdict {winner} (JSON)")


# -- marked sections (plan-execute protocol) -----------------------------------------------------

_FINAL_LINE = re.compile(r"最终(?:判决|结论|裁决)")
_OPEN_FENCE = re.compile(r"[ \t]*```(?:json|python)?[ \t]*")


def _trailer_start(chunk: str) -> int | None:
    """Where the closing score dict or verdict line of the last section starts (its preceding newline).

    The dict may be fenced (```json … ```) and span lines; the verdict line is a last line naming
    最终判决/结论/裁决. Plain string scans, so the cost is linear whatever the chunk holds."""
    text = chunk.rstrip()
    cuts = []
    last_newline = text.rfind("\n")
    if last_newline >= 0 and _FINAL_LINE.search(text, last_newline + 1):
        cuts.append(last_newline)
    body = text
    if last_newline >= 0 and text[last_newline + 1:].strip(" \t") == "```":
        body = text[:last_newline]
    body = body.rstrip(" \t")
    if body.endswith(("}", "｝")):
        opening = max(body.rfind("{"), body.rfind("｛"))
        inner = body[opening + 1:-1] if opening >= 0 else "{"
        if not any(c in inner for c in "{}｛｝"):
            line = body.rfind("\n", 0, opening)
            if line >= 0 and not body[line + 1:opening].strip(" \t"):
                fence = body.rfind("\n", 0, line)
                has_fence = fence >= 0 and _OPEN_FENCE.fullmatch(body, fence + 1, line)
                cuts.append(fence if has_fence else line)
    return min(cuts) if cuts else None


def _heading(title: str) -> re.Pattern[str]:
    """``【评估计划】`` anywhere, or ``[评估计划]`` / ``**评估计划**`` / ``## 评估计划`` / ``评估计划：`` opening a line.

    Written so that no two adjacent quantifiers can match the same characters (linear matching)."""
    t = re.escape(title)
    return re.compile(r"【\s*" + t + r"\s*】[:：]?"
                      r"|(?m:^[ \t>#*\d.、一二三四五六七八九十]*(?:\[\s*" + t + r"\s*\]|\*\*\s*" + t + r"\s*(?:[:：]\s*)?\*\*|"
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
    body = _strip_think(text)[0]
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
        if i + 1 < len(marks):
            chunk = body[end: marks[i + 1][0]]
        else:
            chunk = body[end:]
            cut = _trailer_start(chunk)
            chunk = chunk if cut is None else chunk[:cut]
        out[sid] = chunk.strip().strip("*").strip()
    return out
