"""Pointwise judging: (question, answer) -> prompt -> engine -> Judgment -> Summary.

Only the engine talks to a model; everything here is a pure function of its inputs, so ``show`` and
``report`` can rebuild any view from the run folder, and a re-run of the same command reproduces the
same judgments from the cache without new calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from alignbench.aggregate import summarize
from alignbench.cache import ReplyStore
from alignbench.cost import spend
from alignbench.data import InputError
from alignbench.engine import RETRYABLE_PARSE, Engine, EventHandler, Exchange, ReplySource, RetryPolicy
from alignbench.judges import ModelConfig
from alignbench.judges.base import ModelClient
from alignbench.logprobs import expected_scores
from alignbench.parse import (
    NO_MATERIAL,
    Material,
    ParsedScores,
    material_scores,
    parse_scores,
    parse_sections,
    parse_structured_scores,
)
from alignbench.prompts import answer_view, build_request, retry_request, verdict_examples
from alignbench.reasoning import split_reasoning
from alignbench.rubrics import Rubric, RubricError
from alignbench.structured import dimension_pairs
from alignbench.types import (
    Answer,
    Judgment,
    Manifest,
    ModelRequest,
    Question,
    Status,
    Summary,
    Usage,
    UsageTotals,
    __version__,
)


@dataclass(frozen=True)
class Item:
    """One answer to judge, with its rendered request."""

    question: Question
    answer: Answer
    request: ModelRequest
    truncated: bool
    turn: int | None = None  # multi-turn rubrics: the model turn judged (1-based)

    @property
    def judged_text(self) -> str:
        """The answer text this item judges: the reply of its turn, or the whole answer."""
        if self.turn is None:
            return self.answer.text
        replies = self.answer.turns or (self.answer.text,)
        return replies[self.turn - 1] if self.turn - 1 < len(replies) else ""


def judged_turns(rubric: Rubric, question: Question) -> list[int] | None:
    """The model turns a rubric judges on a question: None for a single-turn rubric (one judgment of the
    answer), else each turn or the last (``turns: each|last``). A dialogue under a single-turn rubric is
    an error: that rubric would show the judge the first user turn only."""
    if rubric.turns is None:
        if question.multi_turn:
            raise RubricError(f"question {question.id} is a dialogue ({question.model_turns} model turns) but rubric "
                              f"{rubric.id} judges single answers: pass --rubric alignbench-multiturn (or another "
                              "rubric with turns: each|last)")
        return None
    n = question.model_turns
    return list(range(1, n + 1)) if rubric.turns == "each" else [n]


def plan(pairs: Sequence[tuple[Question, Answer]], rubric: Rubric, config: ModelConfig,
         max_answer_chars: int | None = None) -> list[Item]:
    """Render every request, ordered by question so answers to one question go out together
    (a judge server with prefix caching then reuses the shared question+reference prefix). A dialogue
    under a multi-turn rubric gives one item per judged turn, consecutive (``judge_items`` joins them)."""
    items = []
    protocol = {"structured_output": config.structured, "logprobs": config.logprobs, "completion": config.completion}
    for question, answer in sorted(pairs, key=lambda p: (p[0].id, p[1].model)):
        turns = judged_turns(rubric, question)
        if turns is None:
            request, truncated = build_request(rubric, question, answer, config.decoding, max_answer_chars,
                                               system_role=config.system_role, **protocol)
            items.append(Item(question, answer, request, truncated))
            continue
        for turn in turns:
            request, truncated = build_request(rubric, question, answer, config.decoding, max_answer_chars,
                                               system_role=config.system_role, turn=turn, **protocol)
            items.append(Item(question, answer, request, truncated, turn=turn))
    return items


def read_verdict(text: str, request: ModelRequest, rubric: Rubric, dims: tuple[str, ...],
                 examples: tuple[str, ...] = (), material: Material = NO_MATERIAL) -> ParsedScores:
    """The verdict of one reply: the JSON one when structured output was asked for and the reply is JSON,
    else the rubric's text convention (a backend that fell back to text, or ignored the schema). ``examples``:
    the verdicts the prompt shows (``prompts.verdict_examples``), so a copied example is not read as the score;
    ``material``: the verdict-shaped text of what the judge was shown (``item_material``), so a copy of the
    answer's own verdict is not either."""
    scale = (rubric.scale.min, rubric.scale.max)
    if request.response_schema is not None:
        parsed = parse_structured_scores(text, dimension_pairs(rubric, dims), rubric.overall_key, scale,
                                         material=material)
        if parsed is not None:
            return parsed
    return parse_scores(text, dims, rubric.overall_key, scale, rubric.verdict, rubric.verdict_labels, examples=examples,
                        material=material)


def item_material(item: Item, rubric: Rubric, dims: tuple[str, ...]) -> tuple[Material, Material]:
    """(the answer's, everything the judge was shown's) verdict-shaped spans (``parse.material_scores``): the
    first flags an answer that tries to grade itself, the second keeps copies of any out of the verdict.
    Computed once per text (cached), so a parse retry or a cached re-run does not scan an answer again."""
    q = item.question
    args = (tuple(dims), rubric.overall_key, (rubric.scale.min, rubric.scale.max), rubric.verdict,
            tuple(rubric.verdict_labels))
    answer = material_scores(tuple(answer_view(r)[0] for r in (item.answer.turns or (item.answer.text,))), *args)
    shown = material_scores((q.question, q.reference, *(t.content for t in q.turns), *q.references), *args)
    return answer, answer + shown if shown else answer


def make_judgment(item: Item, reply: Exchange | object, rubric: Rubric, judge_name: str,
                  earlier: str | None = None) -> Judgment:
    """Parse the last reply of an exchange (or one reply) into a Judgment (pure). Usage and attempts
    count every reply the judgment used."""
    exchange = reply if isinstance(reply, Exchange) else Exchange((reply,))  # type: ignore[arg-type]
    last = exchange.last
    q = item.question
    atype = rubric.answer_type(q.category, q.subcategory)
    dims = rubric.answer_types[atype].dimensions
    answer_material, material = item_material(item, rubric, dims)
    base = {"question_id": q.id, "model": item.answer.model, "category": q.category, "subcategory": q.subcategory,
            "answer_type": atype, "judge": judge_name, "rubric": rubric.id,
            "prompt_hash": item.request.prompt_hash,  # a retry changes only the decoding
            "usage": exchange.usage, "attempts": exchange.attempts, "truncated_answer": item.truncated,
            "answer_chars": len(item.judged_text), "cached": exchange.cached,
            "earlier_replies": [r.text for r in exchange.replies[:-1] if r.text is not None],
            "answer_reasoning": answer_view(item.judged_text)[1], "turn": item.turn,
            "injection": answer_material.first}
    if last.text is None:
        detail = last.error if not earlier else f"{last.error}; first reply: {earlier}"
        return Judgment(**base, status=last.error_status or Status.JUDGE_ERROR, detail=detail)
    if last.finish_reason == "length":  # a verdict cut off by the token limit is no verdict, whatever it says
        detail = "the judge's reply was cut by its output token limit before the verdict was complete: raise " \
                 "--max-tokens"
        return Judgment(**base, status=Status.TRUNCATED, raw=last.text,
                        detail=detail if not earlier else f"{detail}; first reply: {earlier}")
    parsed = read_verdict(last.text, item.request, rubric, dims, verdict_examples(rubric, q), material)
    detail = parsed.detail
    if item.request.response_schema is not None and last.structured is None:
        why = last.structured_fallback or "the backend did not apply the schema"
        detail = f"{detail}; structured output not used ({why}): read as text"
    detail = detail if not earlier else f"{detail}; first reply: {earlier}"
    sections = parse_sections(last.text, {s.id: s.title for s in rubric.sections})
    if absent := [f"【{s.title}】" for s in rubric.sections if s.id not in sections]:
        detail = f"{detail}; no {' '.join(absent)} section"
    scores, overall = (parsed.scores, parsed.overall) if parsed.ok else ({}, None)
    expected, dims_expected = expected_scores(last.logprobs, parsed.spans, rubric.overall_key,
                                              (rubric.scale.min, rubric.scale.max)) if parsed.ok else (None, {})
    reasoning = split_reasoning(last.text, last.reasoning).reasoning
    return Judgment(**base, status=parsed.status, scores=scores, overall=overall, raw=last.text, detail=detail,
                    sections=sections, overall_expected=expected, scores_expected=dims_expected,
                    reasoning=reasoning or None, structured=last.structured)


async def judge_items(items: Sequence[Item], rubric: Rubric, client: ModelClient, store: ReplyStore,
                      judge_name: str, concurrency: int | None = None, retry: RetryPolicy | None = None,
                      parse_retries: int = 1, on_event: EventHandler | None = None,
                      serve_hint: str | None = None, refresh_failed: bool = False,
                      source: ReplySource | None = None) -> tuple[list[Judgment], Engine]:
    """Judge every item through one engine (cache first). An unparseable reply is asked again
    ``parse_retries`` times with a fresh sample; what still fails is kept with the judge's text."""
    engine = Engine(client, store, concurrency=concurrency, retry=retry, on_event=on_event, serve_hint=serve_hint,
                    refresh_failed=refresh_failed, source=source)

    def request_of(item: Item, attempt: int) -> ModelRequest:
        return item.request if attempt == 0 else retry_request(item.request, attempt)

    def read(item: Item, exchange: Exchange, previous: Judgment | None) -> Judgment:
        earlier = f"{previous.status.value} ({previous.detail})" if previous is not None else None
        return make_judgment(item, exchange, rubric, judge_name, earlier=earlier)

    judgments = await engine.map(items, request_of, read, failed=lambda j: j.status is not Status.OK,
                                 again=lambda j: j.status in RETRYABLE_PARSE, retries=parse_retries,
                                 tag=lambda it: it.answer.model, label="judging")
    engine.notes.extend(protocol_notes(judgments))
    if any(it.turn is not None for it in items):
        judgments = join_turns(items, judgments)
    return judgments, engine


def protocol_notes(judgments: Sequence[Judgment]) -> list[str]:
    """What the run's manifest (and the CLI) should say about protocols: structured output that fell back
    to text, and answers whose reasoning leaked into their final text."""
    notes = []
    fell_back = [j for j in judgments if j.detail and "structured output not used (" in j.detail]
    if fell_back:
        reason = fell_back[0].detail.split("structured output not used (", 1)[1].split("): read as text")[0]  # type: ignore[union-attr]
        notes.append(f"structured output: {len(fell_back)} repl{'ies' if len(fell_back) > 1 else 'y'} fell back to "
                     f"text ({reason})")
    leaked = {(j.question_id, j.model) for j in judgments if j.answer_reasoning == "leaked"}
    if leaked:
        notes.append(f"{len(leaked)} answer(s) have reasoning leaked into their final text (think tags left after the "
                     "answer began); counted in summary.json (answer_reasoning)")
    return notes


def join_turns(items: Sequence[Item], judgments: Sequence[Judgment]) -> list[Judgment]:
    """One judgment per dialogue from its judged turns (kept in ``turns``), in the order dialogues first
    appear. Grouped by question, model and decoding seed, so K samples of a dialogue stay K dialogues."""
    groups: dict[tuple[int, str, int | None], list[Judgment]] = {}
    for it, j in zip(items, judgments, strict=True):
        groups.setdefault((it.question.id, it.answer.model, it.request.decoding.seed), []).append(j)
    return [dialogue_judgment(turns) for turns in groups.values()]


def dialogue_judgment(turns: Sequence[Judgment]) -> Judgment:
    """A dialogue's judgment: ok only when every judged turn is (a failed turn is never averaged away);
    overall and each dimension the mean over the turns, expected scores likewise when every turn has one."""
    last = turns[-1]
    failed = next((t for t in turns if t.status is not Status.OK), None)
    flags = {t.answer_reasoning for t in turns}
    common = {"turns": list(turns), "turn": None, "usage": Usage(
        prompt_tokens=sum(t.usage.prompt_tokens for t in turns), completion_tokens=sum(t.usage.completion_tokens
                                                                                       for t in turns),
        cached_prompt_tokens=sum(t.usage.cached_prompt_tokens for t in turns)),
        "attempts": sum(t.attempts for t in turns), "cached": all(t.cached for t in turns),
        "answer_chars": sum(t.answer_chars for t in turns), "truncated_answer": any(t.truncated_answer for t in turns),
        "answer_reasoning": "leaked" if "leaked" in flags else "removed" if "removed" in flags else None,
        "earlier_replies": [], "reasoning": None, "overall_expected": None, "scores_expected": {},
        # the dialogue's prompts, all of them: a review of the dialogue goes stale when any judged turn's
        # prompt changes (an earlier turn's reference, say), not only the last one's
        "prompt_hash": last.prompt_hash if len(turns) == 1 else hashlib.sha256(
            "/".join(t.prompt_hash for t in turns).encode()).hexdigest()[:16]}
    if failed is not None:
        return last.model_copy(update={**common, "status": failed.status, "scores": {}, "overall": None,
                                       "detail": f"turn {failed.turn}: {failed.status.value} ({failed.detail})"})

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4)

    dims: dict[str, list[float]] = {}
    for t in turns:
        for d, v in t.scores.items():
            dims.setdefault(d, []).append(v)
    expected = [t.overall_expected for t in turns]
    dims_expected = {d: [t.scores_expected[d] for t in turns if d in t.scores_expected] for d in dims}
    return last.model_copy(update={
        **common, "overall": mean([t.overall for t in turns]),  # type: ignore[misc]
        "scores": {d: mean(v) for d, v in dims.items()},
        "overall_expected": mean(expected) if all(e is not None for e in expected) else None,  # type: ignore[arg-type]
        "scores_expected": {d: mean(v) for d, v in dims_expected.items() if len(v) == len(dims[d])},
        "detail": f"mean of {len(turns)} judged turn{'s' if len(turns) > 1 else ''} "
                  f"({', '.join(f'{t.turn}: {t.overall:g}' for t in turns)})"})


# -- judge variance: K samples per answer --------------------------------------------------------

# Sample s > 0 of an answer is asked with decoding seed base + s·STRIDE. Why a stride and not s: a parse
# retry of a request asks again with seed + attempt (``prompts.retry_request``); with seeds 1..K-1 the
# retry of sample 0 would be sample 1's request and read its reply from the cache. Parse retries stay
# far below the stride, so every (sample, attempt) has its own cache entry.
SAMPLE_SEED_STRIDE = 1000
SAMPLES_FILE = "samples.jsonl"


def sample_request(request: ModelRequest, sample: int) -> ModelRequest:
    """The request of sample ``sample`` of one answer: sample 0 is the request itself (so one sample
    per answer is exactly a plain run, cache keys included); the others differ only in their seed."""
    if sample == 0:
        return request
    dec = request.decoding
    new = dec.model_copy(update={"seed": (dec.seed or 0) + SAMPLE_SEED_STRIDE * sample})
    return request.model_copy(update={"decoding": new})


def sample_items(items: Sequence[Item], k: int) -> list[Item]:
    """Each item ``k`` times, sample s with ``sample_request(request, s)``: K consecutive items per
    answer, in the items' order (what ``mean_of_samples`` expects)."""
    if k < 1:
        raise ValueError(f"samples must be at least 1, not {k}")
    if k > 1 and any(it.turn is not None for it in items):
        raise InputError("--samples", None, "several samples per answer are not supported for multi-turn dialogues yet")
    return [Item(it.question, it.answer, sample_request(it.request, s), it.truncated) for it in items
            for s in range(k)]


def mean_of_samples(samples: Sequence[Judgment], k: int) -> list[Judgment]:
    """One judgment per answer from its K consecutive samples: overall and each dimension the mean of
    the samples judged ok. Why the ok ones (an ensemble fails if any judge fails): samples are
    exchangeable draws of one judge, so a failed draw only lowers K for that answer; an answer fails
    only when every sample failed. The judge's text is that of the first ok sample; tokens and
    attempts count every sample."""
    out = []
    for start in range(0, len(samples), k):
        group = list(samples[start:start + k])
        ok = [j for j in group if j.status is Status.OK and j.overall is not None]
        first = ok[0] if ok else group[0]
        usage = Usage(prompt_tokens=sum(j.usage.prompt_tokens for j in group),
                      completion_tokens=sum(j.usage.completion_tokens for j in group))
        common = {"usage": usage, "attempts": sum(j.attempts for j in group), "cached": all(j.cached for j in group)}
        if not ok:
            out.append(first.model_copy(update={**common, "detail": f"all {len(group)} samples failed; first: "
                                                                     f"{first.detail}"}))
            continue
        dims: dict[str, list[float]] = {}
        for j in ok:
            for dim, value in j.scores.items():
                dims.setdefault(dim, []).append(value)
        failed = len(group) - len(ok)
        detail = f"mean of {len(ok)} of {len(group)} samples" + (f" ({failed} failed)" if failed else "")
        out.append(first.model_copy(update={
            **common, "overall": round(sum(j.overall for j in ok) / len(ok), 4),  # type: ignore[misc]
            "scores": {d: round(sum(v) / len(v), 4) for d, v in dims.items()},
            "detail": detail if not first.detail else f"{detail}; {first.detail}"}))
    return out


def samples_section(samples: Sequence[Judgment], rubric: Rubric, k: int, temperature: float | None,
                    top: int = 10) -> dict:
    """What ``summary.json`` keeps about K samples per answer: K, where they are, and the judge's
    spread (``trust.judge_variance``) with the ``top`` most spread answers (the rest are in the file)."""
    from alignbench.trust import judge_variance

    jv = judge_variance(samples, rubric).as_dict()
    jv["answers"] = jv["answers"][:top]
    return {"k": k, "file": SAMPLES_FILE, "seed_stride": SAMPLE_SEED_STRIDE, "temperature": temperature,
            "variance": jv}


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
        cached_replies=stats.cached if stats else 0, call_errors=stats.errors if stats else 0,
        **spend((x.usage for x in judgments), engine.client.fingerprint if engine is not None else None))


def manifest(model: str, judge: dict, rubric: Rubric, questions: dict, answers: object,
             missing: Sequence[int] = (), max_answer_chars: int | None = None, **extra: object) -> Manifest:
    """What reproduces a run: judge, rubric, inputs with their hashes, version, time."""
    return Manifest(model=model, judge=judge, rubric=rubric.id, questions=questions, answers=answers,
                    missing_answers=list(missing), n_missing_answers=len(missing), max_answer_chars=max_answer_chars,
                    alignbench_version=__version__,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra)


def build_summary(judgments: Sequence[Judgment], rubric: Rubric, run: Manifest, usage: UsageTotals,
                  seed: int = 0, ensemble: dict | None = None, samples: dict | None = None,
                  score_from: str = "verdict") -> Summary:
    """One model's Summary (not yet marked finished: the run folder does that when it is written).
    ``samples`` (``samples_section``) only for a run judged K > 1 times per answer; ``score_from``
    logprobs scores by the expected scores where the judge gave them (docs/protocols.md)."""
    body = summarize(sorted(judgments, key=lambda j: j.question_id), rubric, seed=seed, score_from=score_from)
    extra = {"samples": samples} if samples is not None else {}
    return Summary.model_validate({"model": run.model, **body, "usage": usage, "run": run, "ensemble": ensemble,
                                   **extra})
