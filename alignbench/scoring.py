"""Pointwise judging: (question, answer) -> prompt -> engine -> Judgment -> Summary.

Only the engine talks to a model; everything here is a pure function of its inputs, so ``show`` and
``report`` can rebuild any view from the run folder, and a re-run of the same command reproduces the
same judgments from the cache without new calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from alignbench import __version__
from alignbench.aggregate import summarize
from alignbench.cache import ReplyStore
from alignbench.engine import RETRYABLE_PARSE, Engine, EventHandler, Exchange, RetryPolicy
from alignbench.judges import JudgeConfig
from alignbench.judges.base import ModelClient
from alignbench.parse import parse_scores, parse_sections
from alignbench.prompts import build_request, retry_request
from alignbench.rubrics import Rubric
from alignbench.types import Answer, JudgeRequest, Judgment, Manifest, Question, Status, Summary, UsageTotals


@dataclass(frozen=True)
class Item:
    """One answer to judge, with its rendered request."""

    question: Question
    answer: Answer
    request: JudgeRequest
    truncated: bool


def plan(pairs: Sequence[tuple[Question, Answer]], rubric: Rubric, config: JudgeConfig,
         max_answer_chars: int | None = None) -> list[Item]:
    """Render every request, ordered by question so answers to one question go out together
    (a judge server with prefix caching then reuses the shared question+reference prefix)."""
    items = []
    for question, answer in sorted(pairs, key=lambda p: (p[0].id, p[1].model)):
        request, truncated = build_request(rubric, question, answer, config.decoding, max_answer_chars,
                                           system_role=config.system_role)
        items.append(Item(question, answer, request, truncated))
    return items


def make_judgment(item: Item, reply: Exchange | object, rubric: Rubric, judge_name: str,
                  earlier: str | None = None) -> Judgment:
    """Parse the last reply of an exchange (or one reply) into a Judgment (pure). Usage and attempts
    count every reply the judgment used."""
    exchange = reply if isinstance(reply, Exchange) else Exchange((reply,))  # type: ignore[arg-type]
    last = exchange.last
    q = item.question
    atype = rubric.answer_type(q.category, q.subcategory)
    dims = rubric.answer_types[atype].dimensions
    base = {"question_id": q.id, "model": item.answer.model, "category": q.category, "subcategory": q.subcategory,
            "answer_type": atype, "judge": judge_name, "rubric": rubric.id,
            "prompt_hash": item.request.prompt_hash,  # a retry changes only the decoding
            "usage": exchange.usage, "attempts": exchange.attempts, "truncated_answer": item.truncated,
            "answer_chars": len(item.answer.text), "cached": exchange.cached}
    if last.text is None:
        detail = last.error if not earlier else f"{last.error}; first reply: {earlier}"
        return Judgment(**base, status=last.error_status or Status.JUDGE_ERROR, detail=detail)
    parsed = parse_scores(last.text, dims, rubric.overall_key, (rubric.scale.min, rubric.scale.max))
    detail = parsed.detail if not earlier else f"{parsed.detail}; first reply: {earlier}"
    sections = parse_sections(last.text, {s.id: s.title for s in rubric.sections})
    if absent := [f"【{s.title}】" for s in rubric.sections if s.id not in sections]:
        detail = f"{detail}; no {' '.join(absent)} section"
    scores, overall = (parsed.scores, parsed.overall) if parsed.ok else ({}, None)
    return Judgment(**base, status=parsed.status, scores=scores, overall=overall, raw=last.text, detail=detail,
                    sections=sections)


async def judge_items(items: Sequence[Item], rubric: Rubric, client: ModelClient, store: ReplyStore,
                      judge_name: str, concurrency: int | None = None, retry: RetryPolicy | None = None,
                      parse_retries: int = 1, on_event: EventHandler | None = None,
                      serve_hint: str | None = None) -> tuple[list[Judgment], Engine]:
    """Judge every item through one engine (cache first). An unparseable reply is asked again
    ``parse_retries`` times with a fresh sample; what still fails is kept with the judge's text."""
    engine = Engine(client, store, concurrency=concurrency, retry=retry, on_event=on_event, serve_hint=serve_hint)

    def request_of(item: Item, attempt: int) -> JudgeRequest:
        return item.request if attempt == 0 else retry_request(item.request, attempt)

    def read(item: Item, exchange: Exchange, previous: Judgment | None) -> Judgment:
        earlier = f"{previous.status.value} ({previous.detail})" if previous is not None else None
        return make_judgment(item, exchange, rubric, judge_name, earlier=earlier)

    judgments = await engine.map(items, request_of, read, failed=lambda j: j.status is not Status.OK,
                                 again=lambda j: j.status in RETRYABLE_PARSE, retries=parse_retries,
                                 tag=lambda it: it.answer.model, label="judging")
    return judgments, engine


def usage_totals(judgments: Sequence[Judgment], engine: Engine | None, *tags: str) -> UsageTotals:
    """Tokens of the given judgments (every attempt) and the engine's calls for ``tags``; per-model
    totals of one run add up to the run's."""
    fresh = [j for j in judgments if not j.cached]
    stats = engine.stats_for(*tags) if engine is not None else None
    return UsageTotals(
        prompt_tokens=sum(j.usage.prompt_tokens for j in judgments),
        completion_tokens=sum(j.usage.completion_tokens for j in judgments),
        fresh_prompt_tokens=sum(j.usage.prompt_tokens for j in fresh),
        fresh_completion_tokens=sum(j.usage.completion_tokens for j in fresh),
        calls=stats.calls if stats else 0, retries=stats.retries if stats else 0,
        cached_replies=stats.cached if stats else 0, call_errors=stats.errors if stats else 0)


def manifest(model: str, judge: dict, rubric: Rubric, questions: dict, answers: object,
             missing: Sequence[int] = (), max_answer_chars: int | None = None, **extra: object) -> Manifest:
    """What reproduces a run: judge, rubric, inputs with their hashes, version, time."""
    return Manifest(model=model, judge=judge, rubric=rubric.id, questions=questions, answers=answers,
                    missing_answers=list(missing), n_missing_answers=len(missing), max_answer_chars=max_answer_chars,
                    alignbench_version=__version__,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra)


def build_summary(judgments: Sequence[Judgment], rubric: Rubric, run: Manifest, usage: UsageTotals,
                  seed: int = 0, ensemble: dict | None = None) -> Summary:
    """One model's Summary (not yet marked finished: the run folder does that when it is written)."""
    body = summarize(sorted(judgments, key=lambda j: j.question_id), rubric, seed=seed)
    return Summary.model_validate({"model": run.model, **body, "usage": usage, "run": run, "ensemble": ensemble})
