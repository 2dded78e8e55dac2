"""Rounding and number formats for every view (terminal, Markdown report, the viewer's Jinja filters),
so a score, a CI or a share reads the same everywhere, and ``FIGURES``, the run figures all three list.
A missing value (None, NaN, inf) prints as ``MISSING``, never "nan"; a value that rounds to zero prints
unsigned ("0.00", "+0.00": "-0.00" claims a direction the digits do not show); halves round as Python's
format does (the nearest binary value, ties to even), as ``rnd`` rounds the figures written to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MISSING = "—"


def finite(value: Any) -> float | None:
    """A plain finite float, or None (None, NaN, inf, text): a missing figure, never a fake number."""
    if isinstance(value, float):  # the common case first: the views call this for every number
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fixed(v: float, spec: str) -> str:
    """``format(v, spec)`` without the sign of a negative zero (Python 3.10 has no "z" option)."""
    text = format(v, spec)
    if text[0] == "-" and not text.strip("-+0.%"):
        return ("+" if spec.startswith("+") else "") + text[1:]
    return text


def rnd(value: Any, digits: int = 4) -> float | None:
    """A figure as written to JSON: rounded to ``digits``; None for a missing or undefined value."""
    v = finite(value)
    return None if v is None else round(v, digits)


def rnd_ci(ci: Sequence[float] | None, digits: int = 4) -> list[float | None] | None:
    """An interval as written to JSON: ``[lo, hi]`` rounded, or None."""
    return None if ci is None else [rnd(ci[0], digits), rnd(ci[1], digits)]


def num(value: Any, digits: int = 2, missing: str = MISSING) -> str:
    """Fixed decimals: 7.25."""
    v = finite(value)
    return missing if v is None else _fixed(v, f".{digits}f")


def signed(value: Any, digits: int = 2, missing: str = MISSING) -> str:
    """With its sign: +0.25, -1.50."""
    v = finite(value)
    return missing if v is None else _fixed(v, f"+.{digits}f")


def score(value: Any) -> str:
    """A score as the judge gave it: 7, 6.5 (no trailing zeros)."""
    v = finite(value)
    return MISSING if v is None else f"{v:g}"


def pct(value: Any, digits: int = 0) -> str:
    """A share (0–1) as a percentage: 0.125 → 12% (digits 0), 12.5% (digits 1)."""
    v = finite(value)
    return MISSING if v is None else _fixed(100 * v, f".{digits}f") + "%"


def pm(value: Any, se: Any = None, digits: int = 1) -> str:
    """A value ± its standard error (the error left out when there is none)."""
    v, e = finite(value), finite(se)
    return MISSING if v is None else num(v, digits) + ("" if e is None else f" ± {num(e, digits)}")


def ci(interval: Sequence[float] | None, digits: int = 2, sep: str = "–", sign: bool = False) -> str:
    """An interval "lo–hi" ("" without one); ``sign``: both ends signed (a difference's CI)."""
    f = signed if sign else num
    return f"{f(interval[0], digits)}{sep}{f(interval[1], digits)}" if interval else ""


def p_value(p: Any) -> str:
    """p-values as people read them: two significant digits, '<0.001' below that."""
    v = finite(p)
    return MISSING if v is None else "<0.001" if v < 0.001 else f"{v:.2g}" if v < 0.1 else f"{v:.2f}"


@dataclass(frozen=True)
class Figure:
    """One number the views list, registered once: where it is (a dotted path into ``summary.json``, or
    with ``of="audit"`` into a judge's bias audit, ``trust.runs.BiasAudit.as_dict()``), its labels and
    its format. A new statistic shown everywhere: compute it (``aggregate.py`` or ``trust/``) and add
    its line to ``FIGURES``; the terminal, the report and (run figures) the viewer's run page list it."""

    path: str
    zh: str
    en: str
    kind: Literal["count", "score", "share", "signed"] = "score"
    of: Literal["run", "audit"] = "run"

    def value(self, summary: Mapping[str, Any]) -> Any:
        node: Any = summary
        for part in self.path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    def text(self, value: Any) -> str:
        if self.kind == "count":
            return MISSING if finite(value) is None else str(int(value))
        return {"score": num, "share": pct, "signed": signed}[self.kind](value)


FIGURES: tuple[Figure, ...] = (
    Figure("score_from.n_expected", "概率期望得分", "scores from log-probabilities", "count"),
    Figure("score_from.n_verdict", "无概率、用评审分数", "scores from the verdict (no log-probabilities)", "count"),
    Figure("injection.n", "自带评分/判决文本的回答（疑似注入）", "answers carrying their own verdict (injection attempts)",
           "count"),
    Figure("mtbench.n", "MT-Bench 分数所平均的已评审轮次", "judged turns the MT-Bench score averages", "count"),
    Figure("mtbench.n_failed", "未读出评分的轮次（不计入）", "turns without a verdict (excluded)", "count"),
    Figure("position.n_failed", "位置审计略去的成对比较（某一顺序失败）", "pairs left out of the position audit (an order failed)",
           "count", "audit"),
)


def figures(data: Mapping[str, Any], zh: bool = False, of: str = "run") -> list[tuple[str, str]]:
    """(label, text) of each registered figure ``of`` this kind that ``data`` has, in ``FIGURES`` order."""
    return [(f.zh if zh else f.en, f.text(v)) for f in FIGURES if f.of == of and (v := f.value(data)) is not None]


# -- who answered: the requested model beside what its server says it serves --------------------------


def _served(served: Any) -> list[str]:
    return [str(s) for s in served if s] if isinstance(served, (list, tuple)) else []


def _served_part(ids: Sequence[str], zh: bool) -> str:
    return f"服务端模型：{'、'.join(ids)}" if zh else f"served as {', '.join(ids)}"


def served_label(name: str, served: Sequence[str] | None = None, zh: bool = False) -> str:
    """A model as asked, with the model ids its server reported in its replies beside it when they are not
    the one asked for: "critiquellm (served as qwen2.5-0.5b-instruct)", "critiquellm（服务端模型：…）".

    Why: a llama.cpp or vLLM server answers to any model id, so the name a run was started with may not be
    the model that wrote its verdicts or answers. Every view that names a judge (``judge_label``) or the model
    under test (``answer``) builds the text here, so the terminal, the report and the viewer say it alike.
    The text is plain: each view escapes it for its medium (rich markup, Markdown, HTML)."""
    ids = _served(list(served or ()))
    if not ids:
        return name
    return f"{name}（{_served_part(ids, True)}）" if zh else f"{name} ({_served_part(ids, False)})"


def _get(run: Any, key: str) -> Any:
    return run.get(key) if isinstance(run, Mapping) else getattr(run, key, None)


def judge_served(run: Any) -> list[str]:
    """The model ids a run's judge server reported other than the id asked for (``judge_served`` in its
    manifest, a ``Manifest`` or its dict); empty when it served what was asked, or for a run folder written
    before the field existed."""
    return _served(_get(run, "judge_served"))


def judge_label(run: Any, zh: bool = False, model: bool = False) -> str:
    """The judge of a run as every view names it: its name, with ``judge_served`` (the model ids its replies
    reported other than the one asked for, recorded by the engine: ``Engine.served_other``) beside it.
    ``run``: a ``Manifest`` or a dict holding ``judge`` (``summary.json``'s ``run``; for a pairwise summary,
    its ``run`` with its ``judge`` added). ``model``: the requested model id too, "name (model, served as …)".
    A run folder written before ``judge_served`` existed names its judge as it always did."""
    judge = _get(run, "judge") or {}
    name = str(judge.get("name") or judge.get("model") or "?")
    served = judge_served(run)
    if not (model and judge.get("model")):
        return served_label(name, served, zh)
    parts = [str(judge["model"])] + ([_served_part(served, zh)] if served else [])
    return f"{name}（{'，'.join(parts)}）" if zh else f"{name} ({', '.join(parts)})"
