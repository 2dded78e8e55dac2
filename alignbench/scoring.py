"""The ``score`` pipeline: load -> prompt -> judge -> parse -> aggregate -> run folder.

Only ``judge_items`` talks to a model (through the Runner, which reads the cache first). Everything
else is a pure function of its inputs, so ``show`` and ``report`` can rebuild any view from the run
folder and a re-run of the same command reproduces the same judgments without new calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignbench import __version__
from alignbench.aggregate import summarize
from alignbench.cache import ReplyStore
from alignbench.judges import JudgeConfig
from alignbench.judges.base import Judge
from alignbench.parse import parse_scores, parse_sections
from alignbench.prompts import build_request, retry_request
from alignbench.rubrics import Rubric
from alignbench.runner import RetryPolicy, Runner, gather_all
from alignbench.types import Answer, JudgeReply, JudgeRequest, Judgment, Question, Status

RETRYABLE_PARSE = (Status.PARSE_FAILED, Status.OUT_OF_RANGE, Status.REFUSED)


@dataclass(frozen=True)
class Item:
    """One answer to judge, with its rendered request."""

    question: Question
    answer: Answer
    request: JudgeRequest
    truncated: bool


def plan(pairs: list[tuple[Question, Answer]], rubric: Rubric, config: JudgeConfig,
         max_answer_chars: int | None = None) -> list[Item]:
    """Render every request, ordered by question so answers to one question go out together
    (a judge server with prefix caching then reuses the shared question+reference prefix)."""
    items = []
    for question, answer in sorted(pairs, key=lambda p: (p[0].id, p[1].model)):
        request, truncated = build_request(rubric, question, answer, config.decoding, max_answer_chars,
                                           system_role=config.system_role)
        items.append(Item(question, answer, request, truncated))
    return items


def make_judgment(item: Item, reply: JudgeReply, rubric: Rubric, judge_name: str, attempts: int = 1,
                  earlier: str | None = None) -> Judgment:
    """Parse one reply into a Judgment (pure)."""
    q = item.question
    atype = rubric.answer_type(q.category, q.subcategory)
    dims = rubric.answer_types[atype].dimensions
    base = {"question_id": q.id, "model": item.answer.model, "category": q.category, "subcategory": q.subcategory,
            "answer_type": atype, "judge": judge_name, "rubric": rubric.id, "prompt_hash": item.request.prompt_hash,
            "usage": reply.usage, "attempts": attempts, "truncated_answer": item.truncated,
            "answer_chars": len(item.answer.text), "cached": reply.cached}
    if reply.text is None:
        return Judgment(**base, status=reply.error_status or Status.JUDGE_ERROR, detail=reply.error)
    parsed = parse_scores(reply.text, dims, rubric.overall_key, (rubric.scale.min, rubric.scale.max))
    detail = parsed.detail if not earlier else f"{parsed.detail}; first reply: {earlier}"
    sections = parse_sections(reply.text, {s.id: s.title for s in rubric.sections})
    if absent := [f"【{s.title}】" for s in rubric.sections if s.id not in sections]:
        detail = f"{detail}; no {' '.join(absent)} section"
    scores, overall = (parsed.scores, parsed.overall) if parsed.ok else ({}, None)
    return Judgment(**base, status=parsed.status, scores=scores, overall=overall, raw=reply.text, detail=detail,
                    sections=sections)


@dataclass
class Progress:
    """Counters the CLI shows while a run goes on."""

    total: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    on_update: Callable[[Progress], None] | None = None

    def advance(self, judgment: Judgment) -> None:
        self.done += 1
        self.failed += judgment.status is not Status.OK
        self.cached += judgment.cached
        if self.on_update:
            self.on_update(self)


async def judge_items(items: list[Item], rubric: Rubric, judge: Judge, store: ReplyStore, judge_name: str,
                      concurrency: int = 16, retry: RetryPolicy | None = None, parse_retries: int = 1,
                      progress: Progress | None = None) -> tuple[list[Judgment], Runner]:
    """Judge every item (cache first). An unparseable reply is asked again ``parse_retries`` times
    with a fresh sample; what still fails is kept as a failed judgment with the judge's text."""
    runner = Runner(judge, store, concurrency=concurrency, retry=retry)
    runner.prefetch([it.request for it in items])
    progress = progress or Progress()
    progress.total = len(items)

    async def one(item: Item) -> Judgment:
        reply = await runner.get(item.request)
        judgment = make_judgment(item, reply, rubric, judge_name, attempts=reply.attempts)
        attempt = 0
        while judgment.status in RETRYABLE_PARSE and attempt < parse_retries:
            attempt += 1
            earlier = f"{judgment.status.value} ({judgment.detail})"
            retry_item = Item(item.question, item.answer, retry_request(item.request, attempt), item.truncated)
            reply = await runner.get(retry_item.request)
            judgment = make_judgment(retry_item, reply, rubric, judge_name,
                                     attempts=judgment.attempts + reply.attempts, earlier=earlier)
        progress.advance(judgment)
        return judgment

    return await gather_all(one(it) for it in items), runner


# -- run folder ---------------------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "-", text, flags=re.UNICODE).strip("-") or "run"


def default_run_dir(model: str, judge_name: str, rubric: Rubric, root: Path = Path("reports")) -> Path:
    return root / f"{slug(model)}__{slug(judge_name)}__{slug(rubric.id)}"


@dataclass
class RunInfo:
    """What is needed to reproduce the numbers; stored in ``summary.json`` under ``run``."""

    model: str
    judge: dict[str, Any]
    rubric: str
    questions_path: str
    questions_sha256: str
    answers_path: str
    missing_answers: list[int] = field(default_factory=list)
    max_answer_chars: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "judge": self.judge, "rubric": self.rubric,
                "questions": {"path": self.questions_path, "sha256": self.questions_sha256},
                "answers": self.answers_path, "missing_answers": self.missing_answers,
                "n_missing_answers": len(self.missing_answers), "max_answer_chars": self.max_answer_chars,
                "alignbench_version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **self.extra}


def write_run(run_dir: Path, judgments: list[Judgment], rubric: Rubric, info: RunInfo,
              usage: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Write ``judgments.jsonl`` (sorted by question) and ``summary.json``; return the summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(judgments, key=lambda j: j.question_id)
    tmp = run_dir / "judgments.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for j in ordered:
            fh.write(j.model_dump_json() + "\n")
    tmp.replace(run_dir / "judgments.jsonl")
    summary = {"model": info.model, **summarize(ordered, rubric, seed=seed), "usage": usage,
               "run": info.as_dict(), "finished": True}
    (run_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[Judgment]]:
    """Read a finished run folder (summary and judgments)."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json; is this a finished run folder?")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    judgments = []
    jpath = run_dir / "judgments.jsonl"
    if jpath.is_file():
        with jpath.open(encoding="utf-8") as fh:
            judgments = [Judgment.model_validate_json(line) for line in fh if line.strip()]
    return summary, judgments


def usage_totals(judgments: list[Judgment], runner: Runner | None) -> dict[str, Any]:
    fresh = [j for j in judgments if not j.cached]
    out: dict[str, Any] = {
        "prompt_tokens": sum(j.usage.prompt_tokens for j in judgments),
        "completion_tokens": sum(j.usage.completion_tokens for j in judgments),
        "fresh_prompt_tokens": sum(j.usage.prompt_tokens for j in fresh),
        "fresh_completion_tokens": sum(j.usage.completion_tokens for j in fresh),
    }
    if runner is not None:
        out.update({"calls": runner.stats.calls, "retries": runner.stats.retries,
                    "cached_replies": runner.stats.cached, "call_errors": runner.stats.errors})
    return out
