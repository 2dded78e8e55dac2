"""Probability-weighted scores: the expected score over the judge's distribution at the score token.

A judge that writes ``8`` may have put 55% on 8, 40% on 7 and 5% on 9; the verdict says 8, the expected
score 7.6. Expected scores are finer than integers, so two answers tie less often and means move in
smaller steps (AlpacaEval's weighted annotators use the same idea for preferences). The verdict is still
what the parser read: the expected score is only computed at the position where the parser found the
judge's own verdict (``ParsedScores.spans``), never searched for elsewhere.

Where the numbers come from: OpenAI-compatible servers return ``top_logprobs`` alternatives per output
token (``pool.keep_score_tokens`` keeps the positions that can hold a score); the transformers backend
records the softmax of the logits at each step. Each alternative whose text is an integer on the scale is a
candidate; their probabilities are renormalised. When the candidates hold less than half the probability
the position is not a score position for that judge (a misaligned offset, a tokenizer that spells numbers
oddly) and no expected score is given; likewise when the value the judge wrote holds less than
``MIN_WRITTEN`` of it (alternatives that contradict the written token: the verdict is used, never 8.95 for a
written 2).

Tokenizers that split ``10`` into ``1`` + ``0``: when the judge wrote ``10`` the probability of ``1`` is split
by the probability of ``0`` at the next position; when it wrote another digit the continuation of a leading
``1`` was never computed and its probability counts as 1 (a small, documented downward bias).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from alignbench.types import TokenProbs

MIN_MASS = 0.5  # below this share of probability on scale integers, the position is not a score position
# The value the judge wrote must hold at least this share of the candidates' probability. Less (it is not among
# the alternatives at all, or far below them: a written 2 whose alternatives say 9) means the log-probabilities
# contradict the verdict, whatever the cause (a server that reports another position's alternatives, a sampled
# outlier); the expected score would then be a number the judge never gave, so the verdict is used instead.
MIN_WRITTEN = 0.1
_INTEGER = re.compile(r"\s*([0-9]+)[\]}),，。分\s]*")
_DIGIT = re.compile(r"[0-9]")


def score_positions(texts: Sequence[str]) -> list[int]:
    """The positions that can matter for a score: each token holding a digit and the one after it (the
    ``0`` of a split ``10``). Keeping only these makes a cached reply's log-probabilities a few hundred bytes."""
    keep: set[int] = set()
    for i, t in enumerate(texts):
        if _DIGIT.search(t):
            keep.update((i, i + 1))
    return sorted(i for i in keep if i < len(texts))


def keep_score_tokens(tokens: Sequence[TokenProbs]) -> tuple[TokenProbs, ...]:
    """``tokens`` at ``score_positions``."""
    return tuple(tokens[i] for i in score_positions([t.token for t in tokens]))


def _value(token: str) -> int | None:
    m = _INTEGER.fullmatch(token)
    return int(m.group(1)) if m else None


def expected_at(tokens: Sequence[TokenProbs], offset: int, scale: tuple[float, float]) -> float | None:
    """The expected score at the token that starts the number at character ``offset`` of the reply (None
    when no kept token starts there or the candidates hold less than ``MIN_MASS``)."""
    here = next((i for i, t in enumerate(tokens) if t.offset <= offset < t.offset + max(1, len(t.token))
                 and t.token[offset - t.offset:].strip()[:1].isdigit()), None)
    if here is None:
        return None
    chosen = tokens[here]
    lo, hi = scale
    after = tokens[here + 1] if here + 1 < len(tokens) else None
    follows = after is not None and after.offset == chosen.offset + len(chosen.token)
    # P("0" next | "1" here): known only when the judge itself wrote "1" (and maybe "0" after it)
    zero_next = None
    if _value(chosen.token) == 1 and follows and after is not None:
        zero_next = sum(math.exp(lp) for tok, lp in (after.top or ((after.token, after.logprob),))
                        if tok.strip() == "0")
    written = _value(chosen.token)
    if written == 1 and follows and after is not None and after.token.strip() == "0":
        written = 10  # the judge wrote "10" as "1" + "0"
    mass, total, mine = 0.0, 0.0, 0.0
    for tok, lp in chosen.top or ((chosen.token, chosen.logprob),):
        value = _value(tok)
        if value is None or math.isinf(lp) or math.isnan(lp):
            continue
        p = math.exp(lp)
        if value == 1 and zero_next is not None and hi >= 10 > lo:
            for v, share in ((10, zero_next), (1, 1 - zero_next)):
                mass, total = mass + p * share, total + p * share * v
                mine += p * share if v == written else 0.0
            continue
        if lo <= value <= hi:
            mass, total = mass + p, total + p * value
            mine += p if value == written else 0.0
    if mass < MIN_MASS:
        return None
    if mine < MIN_WRITTEN * mass:  # the alternatives contradict what the judge wrote: the verdict stands
        return None
    return round(total / mass, 4)


def expected_scores(tokens: Sequence[TokenProbs] | None, spans: dict[str, int], overall_key: str,
                    scale: tuple[float, float]) -> tuple[float | None, dict[str, float]]:
    """(expected overall, expected per dimension) at the parser's spans; empty where there are none."""
    if not tokens or not spans:
        return None, {}
    overall = expected_at(tokens, spans[overall_key], scale) if overall_key in spans else None
    dims = {k: v for k, at in spans.items() if k != overall_key
            and (v := expected_at(tokens, at, scale)) is not None}
    return overall, dims


def from_openai(content: Any, text: str) -> tuple[TokenProbs, ...] | None:
    """Token log-probabilities from an OpenAI-shaped ``choices[0].logprobs.content`` list (objects or
    dicts), with character offsets into ``text``; tokens whose text is not found at their offset (a server
    that counts reasoning tokens too) are dropped rather than misplaced."""
    if not isinstance(content, list) or not content:
        return None

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    out: list[TokenProbs] = []
    buf = b""
    for entry in content:
        token, logprob = get(entry, "token"), get(entry, "logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            return None
        raw = get(entry, "bytes")
        offset = len(buf.decode("utf-8", errors="ignore"))
        buf += bytes(raw) if isinstance(raw, list) and raw else token.encode("utf-8")
        top = tuple((get(t, "token"), float(get(t, "logprob"))) for t in get(entry, "top_logprobs") or []
                    if isinstance(get(t, "token"), str) and isinstance(get(t, "logprob"), int | float))
        out.append(TokenProbs(offset=offset, token=token, logprob=float(logprob), top=top))
    kept = keep_score_tokens(out)
    return tuple(t for t in kept if text[t.offset:t.offset + len(t.token)] == t.token) or None


__all__ = ["MIN_MASS", "MIN_WRITTEN", "expected_at", "expected_scores", "from_openai", "keep_score_tokens", "score_positions"]
