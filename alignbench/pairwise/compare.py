"""The ``compare`` pipeline: (model, baseline) answer pairs -> prompts in both orders -> verdicts ->
one preference per pair -> win rates and LC win rates -> run folder.

Why both orders: judges favour a position (often the first). Every pair is judged once with the
model as 助手1 and once with the baseline as 助手1; each order gives the model a score of 1 (its answer
won), 0.5 (tie) or 0 (the baseline won), and the pair's **preference** is the mean of the two
(AlpacaEval-style averaging):

    =========================  ==========  ==========================================
    model-first / base-first   preference  consistent?
    =========================  ==========  ==========================================
    win / win                  1           yes
    win / tie, tie / win       0.75        no  (half disagreement)
    tie / tie                  0.5         yes
    win / loss, loss / win     0.5         no  (a flip: the verdict follows the position)
    tie / loss, loss / tie     0.25        no
    loss / loss                0           yes
    =========================  ==========  ==========================================

A pair is *inconsistent* when the two verdicts differ once the swap is undone (CritiqueLLM's swap
consistency, tie/tie counting as consistent); a *flip* is the strong case, a win in one order and
a loss in the other, which averages to exactly 0.5. If either order has no usable verdict (judge
error, unparseable text after the parse retries, refusal) the whole pair is failed: counted, kept
with both raw texts, never scored.

Dialogues (multi-turn questions, data/zh/README.md) are compared the way MT-Bench's pairwise judge does it:
the judge sees each assistant's side of the dialogue (the same user turns and fixed assistant turns, each
assistant's own replies) and compares the replies of one model turn, both orders as above. The rubric's
``pairwise_turns`` says which turns: ``last`` (the default) gives one verdict pair per dialogue, on its last
model turn; ``each`` gives one per model turn, and the dialogue's preference is the mean of its turns'
(consistent when every turn is, a flip when any turn flips, failed when any turn fails). Either way the
dialogue is the unit of the win rates, and its length for the LC fit is the total length of the model's
replies in the dialogue.

Only ``judge_pairs`` talks to a model (through ``Runner``: cache first, bounded concurrency, retries);
everything else is a pure function of its inputs, and ``summarize_preferences`` also serves
``alignbench winrate`` on AlpacaEval files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationError

from alignbench import safejson, structured
from alignbench.cache import ReplyStore
from alignbench.cost import spend
from alignbench.data import InputError, read_jsonl
from alignbench.engine import RETRYABLE_PARSE, Engine, EventHandler, Exchange, ReplySource, RetryPolicy
from alignbench.judges import ModelConfig
from alignbench.judges.base import ModelClient, merge_system
from alignbench.pairwise.winrate import (
    bootstrap_lc,
    fit_joint_glm,
    lc_disagreement_warning,
    plain_winrates,
    text_length,
)
from alignbench.parse import Material, material_verdicts, parse_structured_verdict, parse_verdict
from alignbench.prompts import answer_view, cap_answer, render_pairwise, retry_request
from alignbench.rubrics import Rubric
from alignbench.rundir import RunFolder
from alignbench.stats.fmt import finite
from alignbench.types import (
    Answer,
    Decoding,
    Frozen,
    ModelReply,
    ModelRequest,
    Question,
    Result,
    Status,
    Usage,
    UsageTotals,
    __version__,
    _Sparse,
)

Order = Literal["model_first", "baseline_first"]
Winner = Literal["model", "baseline", "tie"]
ORDERS: tuple[Order, Order] = ("model_first", "baseline_first")
MODEL_SCORE: dict[str, float] = {"model": 1.0, "tie": 0.5, "baseline": 0.0}
JUDGMENTS_FILE = "pairwise_judgments.jsonl"
SUMMARY_FILE = "pairwise_summary.json"


# ================================================================================================
# Records
# ================================================================================================


class OrderVerdict(Frozen):
    """The judge's verdict on one presentation order of a pair."""

    order: Order
    status: Status
    position: Literal["1", "2", "tie"] | None = None  # as written: which block (助手1/助手2) won
    winner: Winner | None = None  # un-swapped: which answer won
    raw: str | None = None  # the judge's full text, kept whatever the status
    earlier_replies: list[str] = Field(default_factory=list)  # texts of replies asked again (parse retries)
    detail: str | None = None
    prompt_hash: str
    usage: Usage = Usage()
    attempts: int = 1
    cached: bool = False


class PairTurn(Frozen):
    """One model turn of a dialogue compared in both orders (a rubric with ``pairwise_turns: each``): the
    same fields as a pair, lengths of that turn's replies."""

    turn: int
    status: Status
    preference: float | None = None
    consistent: bool | None = None
    flip: bool | None = None
    detail: str | None = None
    orders: tuple[OrderVerdict, OrderVerdict]  # model_first, baseline_first
    model_chars: int
    baseline_chars: int
    model_words: int
    baseline_words: int
    truncated: bool = False


class PairJudgment(_Sparse):
    """One (model, baseline) pair on one question, judged in both orders: a line of
    ``pairwise_judgments.jsonl``. ``preference`` is None exactly when ``status`` is not ok.

    A dialogue also has ``turn``, the model turn ``orders`` compared (its last), and under ``pairwise_turns:
    each`` every turn in ``turns`` (``orders`` then repeats the last turn's, so readers of one verdict pair
    per line see the final turn). Lengths are totals over the model's replies. Both fields are left out of
    a single question's line, which stays as it was."""

    question_id: int
    model: str
    baseline: str
    category: str
    subcategory: str
    answer_type: str
    status: Status
    preference: float | None = None
    consistent: bool | None = None
    flip: bool | None = None
    detail: str | None = None
    orders: tuple[OrderVerdict, OrderVerdict]  # model_first, baseline_first
    judge: str
    rubric: str
    model_chars: int
    baseline_chars: int
    model_words: int
    baseline_words: int
    truncated: bool = False
    turn: int | None = None
    turns: list[PairTurn] = Field(default_factory=list)
    injection: str | None = None  # the verdict-shaped text the model's answer carries (parse.py rule 8)

    sparse_fields: ClassVar[tuple[str, ...]] = ("turn", "turns", "injection")

    @property
    def verdicts(self) -> list[OrderVerdict]:
        """Every order verdict of the pair, each once (all turns of a dialogue judged turn by turn)."""
        return [v for t in self.turns for v in t.orders] if self.turns else list(self.orders)

    def length(self, unit: Literal["chars", "words"]) -> tuple[int, int]:
        """(model, baseline) answer lengths in ``unit``."""
        if unit == "chars":
            return self.model_chars, self.baseline_chars
        return self.model_words, self.baseline_words


@dataclass(frozen=True)
class PairItem:
    """One order of one pair, with its rendered request."""

    question: Question
    model_answer: Answer
    baseline_answer: Answer
    order: Order
    request: ModelRequest
    truncated: bool
    turn: int | None = None  # a dialogue: the model turn compared (1-based)

    @property
    def key(self) -> tuple[str, int]:
        return self.model_answer.model, self.question.id


# ================================================================================================
# Matching and prompts
# ================================================================================================


@dataclass
class Matched:
    """Which pairs can be judged, and which questions cannot (always reported, never silent)."""

    pairs: list[tuple[Question, Answer, Answer]]  # (question, model answer, baseline answer)
    missing: dict[str, list[int]] = field(default_factory=dict)  # model -> questions not judged
    baseline_missing: list[int] = field(default_factory=list)  # questions the baseline did not answer


def match_pairs(questions: Sequence[Question], answers: Mapping[str, Sequence[Answer]],
                baseline: Sequence[Answer]) -> Matched:
    """Pair every model answer with the baseline's answer to the same question.

    A question is judged for a model only when both the model and the baseline answered it; the
    others are listed per model (a warning, not an error: a partial answer file is common).
    """
    base = {a.question_id: a for a in baseline}
    by_id = {q.id: q for q in questions}
    pairs: list[tuple[Question, Answer, Answer]] = []
    missing: dict[str, list[int]] = {}
    for model, model_answers in answers.items():
        mine = {a.question_id: a for a in model_answers}
        for qid, question in by_id.items():
            if qid in mine and qid in base:
                pairs.append((question, mine[qid], base[qid]))
        lacking = sorted(q for q in by_id if q not in mine or q not in base)
        if lacking:
            missing[model] = lacking
    return Matched(pairs=pairs, missing=missing, baseline_missing=sorted(set(by_id) - set(base)))


def build_pair_request(rubric: Rubric, question: Question, first: str, second: str, decoding: Decoding,
                       system_role: bool = True, structured_output: bool = False, *, turn: int | None = None,
                       replies_1: Sequence[str] = (), replies_2: Sequence[str] = (),
                       completion: bool = False) -> ModelRequest:
    """The judge request showing ``first`` as 助手1 and ``second`` as 助手2; ``structured_output`` asks for the
    verdict as JSON in the rubric's verdict words (``alignbench.structured``). A dialogue is compared at model
    turn ``turn`` with each side's earlier replies (``render_pairwise``). ``completion``: send the prompt as one
    bare text completion, no chat template (``ModelRequest.completion``)."""
    messages = render_pairwise(rubric, question, first, second, turn=turn, replies_1=replies_1, replies_2=replies_2)
    schema = None
    if structured_output:
        schema = structured.pair_schema(rubric)
        messages = structured.with_note(messages, structured.pair_note(rubric))
    if not system_role:
        messages = merge_system(messages)
    return ModelRequest(messages=tuple(messages), decoding=decoding, rubric=rubric.id, question_id=question.id,
                        response_schema=schema, completion=completion)


def compared_turns(rubric: Rubric, question: Question) -> list[int | None]:
    """The model turns compared on a question: [None] for a single question (one comparison of the answers),
    else the last model turn or each one (the rubric's ``pairwise_turns``)."""
    if not question.multi_turn:
        return [None]
    n = question.model_turns
    return list(range(1, n + 1)) if rubric.pairwise_turns == "each" else [n]


def replies(answer: Answer) -> tuple[str, ...]:
    """An answer's replies in order: one per model turn of a dialogue, else the one answer."""
    return answer.turns or (answer.text,)


def plan_pairs(pairs: Sequence[tuple[Question, Answer, Answer]], rubric: Rubric, config: ModelConfig,
               max_answer_chars: int | None = None) -> list[PairItem]:
    """Both orders of every pair (of every compared turn of a dialogue), ordered by question and turn,
    baseline-first prompts first: for one question those share everything up to the model's answer (its
    side of the dialogue), which a prefix-caching judge server reuses.

    Every reply is shown as ``score`` shows it (reasoning removed, clipped at ``max_answer_chars``); the reply
    counts of dialogue answers were checked when the answers were joined to the questions (``data.join``)."""
    items = []
    for question, model_answer, base_answer in pairs:
        shown_m = [cap_answer(answer_view(r)[0], max_answer_chars) for r in replies(model_answer)]
        shown_b = [cap_answer(answer_view(r)[0], max_answer_chars) for r in replies(base_answer)]
        for turn in compared_turns(rubric, question):
            k = turn or 1
            model_side, base_side = [t for t, _ in shown_m[:k]], [t for t, _ in shown_b[:k]]
            cut = any(c for _, c in shown_m[:k] + shown_b[:k])
            for order in ORDERS:
                first, second = (model_side, base_side) if order == "model_first" else (base_side, model_side)
                request = build_pair_request(rubric, question, first[-1], second[-1], config.decoding,
                                             config.system_role, structured_output=config.structured, turn=turn,
                                             replies_1=first, replies_2=second, completion=config.completion)
                items.append(PairItem(question, model_answer, base_answer, order, request, cut, turn))
    items.sort(key=lambda it: (it.question.id, it.turn or 0, it.order != "baseline_first", it.model_answer.model))
    return items


# ================================================================================================
# Verdicts
# ================================================================================================


def _unswap(order: Order, position: str) -> Winner:
    if position == "tie":
        return "tie"
    model_pos = "1" if order == "model_first" else "2"
    return "model" if position == model_pos else "baseline"


def pair_material(item: PairItem) -> Material:
    """The pairwise verdict-shaped text of everything the judge was shown (both answers as shown, the question,
    the reference; ``parse.material_verdicts``, cached per text): a copy of it is not the judge's verdict."""
    q = item.question
    shown = tuple(answer_view(r)[0] for a in (item.model_answer, item.baseline_answer) for r in replies(a))
    return material_verdicts((*shown, q.question, q.reference, *(t.content for t in q.turns), *q.references))


def answer_injection(answer: Answer) -> str | None:
    """The pairwise verdict an answer carries (``最终判决：[[助手1]]``): an attempt to win its comparison."""
    return material_verdicts(tuple(answer_view(r)[0] for r in replies(answer))).first


def make_verdict(item: PairItem, exchange: Exchange | ModelReply, earlier: str | None = None) -> OrderVerdict:
    """Parse the last reply of an exchange (or one reply) into an OrderVerdict (pure)."""
    ex = exchange if isinstance(exchange, Exchange) else Exchange((exchange,))
    reply = ex.last
    base = {"order": item.order, "prompt_hash": item.request.prompt_hash, "usage": ex.usage,
            "attempts": ex.attempts, "cached": ex.cached,
            "earlier_replies": [r.text for r in ex.replies[:-1] if r.text is not None]}
    if reply.text is None:
        return OrderVerdict(**base, status=reply.error_status or Status.JUDGE_ERROR, detail=reply.error)
    if reply.finish_reason == "length":  # cut by the token limit: whatever verdict it shows is not the judge's last
        return OrderVerdict(**base, status=Status.TRUNCATED, raw=reply.text,
                            detail="the judge's reply was cut by its output token limit: raise --max-tokens")
    material = pair_material(item)
    parsed = (parse_structured_verdict(reply.text, material) if item.request.response_schema is not None else None) \
        or parse_verdict(reply.text, material)
    detail = parsed.detail
    if item.request.response_schema is not None and reply.structured is None:
        why = reply.structured_fallback or "the backend did not apply the schema"
        detail = f"{detail}; structured output not used ({why}): read as text"
    detail = detail if not earlier else f"{detail}; first reply: {earlier}"
    if not parsed.ok or parsed.winner is None:
        return OrderVerdict(**base, status=parsed.status, raw=reply.text, detail=detail)
    return OrderVerdict(**base, status=Status.OK, position=parsed.winner,  # type: ignore[arg-type]
                        winner=_unswap(item.order, parsed.winner), raw=reply.text, detail=detail)


def combine(model_first: OrderVerdict, baseline_first: OrderVerdict) -> dict[str, Any]:
    """The pair's status, preference, consistency and flip from its two order verdicts (see the module
    docstring for the table). A failed order fails the pair."""
    for v in (model_first, baseline_first):
        if v.status is not Status.OK or v.winner is None:
            return {"status": v.status, "preference": None, "consistent": None, "flip": None,
                    "detail": f"{v.order.replace('_', '-')} order: {v.status.value}" + (f" ({v.detail})" if v.detail else "")}
    a, b = model_first.winner, baseline_first.winner
    preference = (MODEL_SCORE[a] + MODEL_SCORE[b]) / 2.0
    return {"status": Status.OK, "preference": preference, "consistent": a == b,
            "flip": {a, b} == {"model", "baseline"}, "detail": f"model-first: {a}; baseline-first: {b}"}


async def judge_pairs(items: Sequence[PairItem], client: ModelClient, store: ReplyStore,
                      concurrency: int | None = None, retry: RetryPolicy | None = None, parse_retries: int = 1,
                      on_event: EventHandler | None = None, serve_hint: str | None = None,
                      refresh_failed: bool = False,
                      source: ReplySource | None = None) -> tuple[list[OrderVerdict], Engine]:
    """Judge every order of every pair through one engine (cache first), in the order of ``items``; an
    unparseable reply is asked again ``parse_retries`` times with a fresh sample, as in ``score``."""
    engine = Engine(client, store, concurrency=concurrency, retry=retry, on_event=on_event, serve_hint=serve_hint,
                    refresh_failed=refresh_failed, source=source)

    def request_of(item: PairItem, attempt: int) -> ModelRequest:
        return item.request if attempt == 0 else retry_request(item.request, attempt)

    def read(item: PairItem, exchange: Exchange, previous: OrderVerdict | None) -> OrderVerdict:
        earlier = f"{previous.status.value} ({previous.detail})" if previous is not None else None
        return make_verdict(item, exchange, earlier=earlier)

    verdicts = await engine.map(items, request_of, read, failed=lambda v: v.status is not Status.OK,
                                again=lambda v: v.status in RETRYABLE_PARSE, retries=parse_retries,
                                tag=lambda it: it.model_answer.model, label="comparing")
    return verdicts, engine


def combine_turns(turns: Sequence[PairTurn]) -> dict[str, Any]:
    """A dialogue's status, preference, consistency and flip from its turns compared one by one (``pairwise_turns:
    each``): the mean preference, as ``score`` averages a dialogue's turns; consistent only when every turn is,
    a flip when any turn flips; a failed turn fails the dialogue (never a mean over the turns that happened to
    parse)."""
    for t in turns:
        if t.status is not Status.OK:
            return {"status": t.status, "preference": None, "consistent": None, "flip": None,
                    "detail": f"turn {t.turn}: {t.detail}"}
    return {"status": Status.OK, "preference": sum(t.preference or 0.0 for t in turns) / len(turns),
            "consistent": all(t.consistent for t in turns), "flip": any(t.flip for t in turns),
            "detail": "; ".join(f"turn {t.turn}: {t.detail}" for t in turns)}


def _lengths(model_text: Sequence[str], base_text: Sequence[str]) -> dict[str, int]:
    """Characters and jieba words of the texts as the models wrote them, summed."""
    return {"model_chars": sum(len(t) for t in model_text), "baseline_chars": sum(len(t) for t in base_text),
            "model_words": sum(text_length(t, "words") for t in model_text),
            "baseline_words": sum(text_length(t, "words") for t in base_text)}


def assemble(items: Sequence[PairItem], verdicts: Sequence[OrderVerdict], rubric: Rubric,
             judge_name: str) -> list[PairJudgment]:
    """Join the two order verdicts of every pair into PairJudgments, sorted by (model, question).

    Lengths are those of the full answers (in characters and in jieba words), i.e. what the model
    wrote, not the clipped text a judge saw when ``--max-answer-chars`` cut an answer (flagged in
    ``truncated``). A dialogue's lengths are the totals over all its replies, whichever turns were compared:
    the LC fit corrects for how much each model wrote in the whole dialogue.
    """
    grouped: dict[tuple[str, int], dict[int | None, dict[str, tuple[PairItem, OrderVerdict]]]] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        grouped.setdefault(item.key, {}).setdefault(item.turn, {})[item.order] = (item, verdict)
    out = []
    for key in sorted(grouped):
        by_turn = grouped[key]
        turns = sorted(by_turn, key=lambda t: t or 0)
        item = by_turn[turns[-1]]["model_first"][0]
        q = item.question
        m_replies, b_replies = replies(item.model_answer), replies(item.baseline_answer)
        compared = []
        for t in turns:
            both = by_turn[t]
            vm, vb = both["model_first"][1], both["baseline_first"][1]
            compared.append((t, (vm, vb), both["model_first"][0].truncated or both["baseline_first"][0].truncated))
        last_turn, last_orders, _ = compared[-1]
        each = q.multi_turn and rubric.pairwise_turns == "each"
        per_turn = [PairTurn(turn=t, orders=orders, truncated=cut, **combine(*orders),
                             **_lengths([m_replies[t - 1]], [b_replies[t - 1]]))
                    for t, orders, cut in compared] if each else []
        out.append(PairJudgment(
            question_id=q.id, model=item.model_answer.model, baseline=item.baseline_answer.model,
            category=q.category, subcategory=q.subcategory,
            answer_type=rubric.answer_type(q.category, q.subcategory), orders=last_orders, judge=judge_name,
            rubric=rubric.id, **_lengths(m_replies, b_replies), truncated=any(cut for *_, cut in compared),
            turn=last_turn, turns=per_turn, injection=answer_injection(item.model_answer),
            **(combine_turns(per_turn) if each else combine(*last_orders))))
    return out


# ================================================================================================
# Win rates (shared with `alignbench winrate`)
# ================================================================================================


def preference_frame(judgments: Sequence[PairJudgment], length_unit: Literal["chars", "words"]) -> pd.DataFrame:
    """The preference table of ``alignbench.pairwise.winrate`` (plus status/consistency columns)."""
    rows = []
    for j in judgments:
        len_m, len_b = j.length(length_unit)
        rows.append({"model": j.model, "baseline": j.baseline, "question_id": j.question_id,
                     "preference": math.nan if j.preference is None else j.preference,
                     "len_model": len_m, "len_baseline": len_b, "category": j.category,
                     "status": j.status.value, "consistent": j.consistent, "flip": j.flip})
    return pd.DataFrame(rows, columns=["model", "baseline", "question_id", "preference", "len_model",
                                       "len_baseline", "category", "status", "consistent", "flip"])


def _consistency(g: pd.DataFrame) -> dict[str, Any]:
    if "consistent" not in g.columns:
        return {}
    ok = g[g["preference"].notna()]
    n = len(ok)
    n_incons = int((ok["consistent"] == False).sum())  # noqa: E712  (object column of bools)
    n_flips = int((ok["flip"] == True).sum()) if "flip" in ok.columns else None  # noqa: E712
    return {"inconsistency": n_incons / n if n else None, "n_inconsistent": n_incons, "n_flips": n_flips}


def summarize_preferences(df: pd.DataFrame, n_boot: int = 200, seed: int = 0,
                          categories: Sequence[str] | None = None) -> dict[str, Any]:
    """Win rates, LC win rates and (when the table has them) position-consistency figures for every
    model against **one** baseline. All rates in percent (0–100) except ``inconsistency``, a share
    (0–1) of the judged pairs.

    The LC win rate comes from the joint GLM over every model in ``df`` (shared question difficulty,
    shared-and-shrunk length slope; see ``fit_joint_glm``) and its SE from ``n_boot`` seeded
    bootstrap resamples of questions (``n_boot`` < 2: no SE). ``categories`` orders the per-category
    figures (default: sorted).
    """
    plain = plain_winrates(df)
    joint = boot = None
    glm_note = None
    try:
        joint = fit_joint_glm(df)
        if n_boot >= 2:
            boot = bootstrap_lc(df, n_boot=n_boot, seed=seed, point=joint)
    except ValueError as exc:  # e.g. every judgment failed
        glm_note = str(exc)
    baseline = str(df["baseline"].iloc[0])
    models: dict[str, Any] = {}
    for name, wr in plain.items():
        g = df[df["model"] == name]
        lc = joint.lc_win_rate.get(name) if joint else None
        lc_se = boot.lc_standard_error.get(name) if boot else None
        entry: dict[str, Any] = {
            "baseline": wr.baseline,
            "win_rate": finite(wr.win_rate), "win_rate_se": finite(wr.standard_error),
            "lc_win_rate": finite(lc), "lc_win_rate_se": finite(lc_se),
            "discrete_win_rate": finite(wr.discrete_win_rate),
            "n": wr.n, "n_wins": wr.n_wins, "n_ties": wr.n_ties, "n_losses": wr.n_losses, "n_failed": wr.n_failed,
            "avg_length": finite(wr.avg_length),
            "length_slope": finite(joint.theta_by_model.get(name)) if joint else None,
            "strength": finite(joint.beta.get(name)) if joint else None,
            **_consistency(g),
        }
        if "status" in g.columns:
            failed = g.loc[g["preference"].isna(), "status"].value_counts()
            entry["failed_by_status"] = {str(k): int(v) for k, v in failed.items()}
        entry["lc_warning"] = (lc_disagreement_warning(wr.win_rate, lc)
                               if lc is not None and math.isfinite(wr.win_rate) else None)
        cats: dict[str, Any] = {}
        present = list(wr.by_category)
        order = [c for c in (categories or sorted(present)) if c in wr.by_category]
        for cat in order:
            cw = wr.by_category[cat]
            lc_cat = joint.lc_by_category.get(name, {}).get(cat) if joint else None
            cats[cat] = {"win_rate": finite(cw.win_rate), "win_rate_se": finite(cw.standard_error),
                         "lc_win_rate": finite(lc_cat), "discrete_win_rate": finite(cw.discrete_win_rate),
                         "n": cw.n, "n_wins": cw.n_wins, "n_ties": cw.n_ties, "n_losses": cw.n_losses,
                         "n_failed": cw.n_failed, **_consistency(g[g["category"] == cat])}
        if cats:
            entry["categories"] = cats
        models[name] = entry
    glm: dict[str, Any] = {"fitted": joint is not None}
    if joint is not None:
        glm.update({"theta": finite(joint.theta), "sigma": finite(joint.sigma), "penalties": joint.penalties,
                    "converged": joint.converged, "n_iter": joint.n_iter,
                    "difficulty_sd": finite(np.std(list(joint.difficulty.values()))),
                    "n_boot": n_boot if boot else 0, "seed": seed})
    if glm_note:
        glm["note"] = glm_note
    return {"baseline": baseline, "models": models, "glm": glm}


def position_bias(df: pd.DataFrame, categories: Sequence[str] | None = None) -> dict[str, Any]:
    """Inconsistency pooled over every model: position bias is mostly a property of the judge."""
    overall = _consistency(df)
    present = [c for c in pd.unique(df["category"]) if isinstance(c, str)]
    order = [c for c in (categories or sorted(present)) if c in present]
    return {**overall, "n_pairs": int(df["preference"].notna().sum()),
            "categories": {c: _consistency(df[df["category"] == c]) for c in order}}


# ================================================================================================
# Run folder
# ================================================================================================


class PairwiseSummary(Result):
    """``pairwise_summary.json`` or ``winrate``'s summary. Only the fields set are written, in this order; a
    section not named here (a protocol's) is kept as an extra field, written last."""

    model_config = ConfigDict(extra="allow")

    baseline: str | None = None
    baselines: list[str] | None = None  # winrate: every baseline compared with
    models: dict[str, dict[str, Any]] = {}
    glm: dict[str, Any] = {}  # winrate: one fit per baseline
    files: list[str] | None = None  # winrate: the files read
    length_unit: Any = None
    position_bias: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    rubric: str | None = None
    usage: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    imported: dict[str, Any] | None = None
    differences: dict[str, Any] | None = None
    finished: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def usage_totals(judgments: Sequence[PairJudgment], engine: Engine | None) -> UsageTotals:
    """Tokens of both orders of every pair (every compared turn of a dialogue, every attempt) and the engine's
    calls for these models."""
    verdicts = [v for j in judgments for v in j.verdicts]
    fresh = [v for v in verdicts if not v.cached]
    stats = engine.stats_for(*{j.model for j in judgments}) if engine is not None else None
    return UsageTotals(
        prompt_tokens=sum(v.usage.prompt_tokens for v in verdicts),
        completion_tokens=sum(v.usage.completion_tokens for v in verdicts),
        fresh_prompt_tokens=sum(v.usage.prompt_tokens for v in fresh),
        fresh_completion_tokens=sum(v.usage.completion_tokens for v in fresh),
        calls=stats.calls if stats else 0, retries=stats.retries if stats else 0,
        cached_replies=stats.cached if stats else 0, call_errors=stats.errors if stats else 0,
        **spend((x.usage for x in verdicts), engine.client.fingerprint if engine is not None else None))


def summarize_compare(judgments: Sequence[PairJudgment], rubric: Rubric, length_unit: Literal["chars", "words"],
                      n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Everything ``pairwise_summary.json`` holds except the run metadata."""
    df = preference_frame(judgments, length_unit)
    cats = rubric.category_names()
    summary = summarize_preferences(df, n_boot=n_boot, seed=seed, categories=cats)
    summary["length_unit"] = length_unit
    summary["position_bias"] = position_bias(df, cats)
    for model, entry in summary["models"].items():  # answers that carry a verdict of their own: counted when any
        if n := sum(1 for j in judgments if j.model == model and j.injection):
            entry["n_injection"] = n
    return summary


def write_compare_run(folder: RunFolder, judgments: Sequence[PairJudgment], summary: PairwiseSummary) -> None:
    """``pairwise_judgments.jsonl`` (by model, then question), then ``pairwise_summary.json`` last."""
    folder.unfinish(SUMMARY_FILE)
    folder.write_jsonl(JUDGMENTS_FILE, sorted(judgments, key=lambda j: (j.model, j.question_id)))
    folder.write_json(SUMMARY_FILE, summary)


def run_metadata(**fields: Any) -> dict[str, Any]:
    return {**fields, "alignbench_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def is_pairwise_judgments(path: Path) -> bool:
    """Whether a file looks like our ``pairwise_judgments.jsonl`` (first record has the pair fields)."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    first = safejson.loads(line)
                    return isinstance(first, dict) and {"preference", "orders", "baseline"} <= set(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def read_pairwise_judgments(path: Path | str) -> list[PairJudgment]:
    """Read a ``pairwise_judgments.jsonl``; a bad line is an InputError naming file and line."""
    out = []
    for lineno, obj in read_jsonl(path):
        try:
            out.append(PairJudgment.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InputError(path, lineno, f"not a pairwise judgment ({first.get('msg')} at {where})") from None
    if not out:
        raise InputError(path, None, "no pairwise judgments in file")
    return out
