"""Core records passed between pipeline stages.

Data flows one way: load (Question, Answer) -> prompt (JudgeRequest) -> judge (JudgeReply)
-> parse (Judgment) -> aggregate (Summary dict). Every record is an immutable pydantic model so a
stage cannot quietly change what an earlier stage produced, and so each record round-trips through
JSON (the run folder is nothing but these records serialised).
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(str, Enum):
    """Outcome of one judgment. Only ``ok`` judgments carry scores that are ever averaged."""

    OK = "ok"
    PARSE_FAILED = "parse_failed"  # no overall score could be read from the judge's text
    OUT_OF_RANGE = "out_of_range"  # a score was read but lies outside the rubric scale
    REFUSED = "refused"  # the judge declined to judge
    JUDGE_ERROR = "judge_error"  # the judge could not be reached / kept failing after retries
    TOO_LONG = "too_long"  # the prompt does not fit the judge's context


class Question(Frozen):
    id: int
    category: str
    subcategory: str
    question: str
    reference: str = ""
    evidences: list[dict[str, Any]] = Field(default_factory=list)


class Answer(Frozen):
    question_id: int
    model: str
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Decoding(Frozen):
    """Sampling settings that change what a judge writes (and therefore belong in the cache key)."""

    temperature: float = 0.0
    max_tokens: int = 2048
    top_p: float | None = None
    seed: int | None = None


class JudgeRequest(Frozen):
    """One prompt for a judge. ``key`` addresses the reply in the cache and is computed from content."""

    messages: tuple[dict[str, str], ...]
    decoding: Decoding = Decoding()
    rubric: str = ""  # name@version of the rubric that rendered the prompt
    question_id: int | None = None  # for scheduling and progress only; not part of the key

    def cache_key(self, fingerprint: str) -> str:
        payload = {
            "judge": fingerprint,
            "rubric": self.rubric,
            "messages": list(self.messages),
            "decoding": self.decoding.model_dump(),
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @property
    def prompt_hash(self) -> str:
        blob = json.dumps(list(self.messages), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class JudgeReply(Frozen):
    """What a judge said (or why it said nothing). Never holds parsed scores: parsing comes later."""

    text: str | None = None
    usage: Usage = Usage()
    model: str = ""
    endpoint: str | None = None
    cached: bool = False
    error: str | None = None
    error_status: Status | None = None  # JUDGE_ERROR or TOO_LONG when ``error`` is set
    attempts: int = 1


class Judgment(Frozen):
    """One judged answer: a line of ``judgments.jsonl``."""

    question_id: int
    model: str
    category: str
    subcategory: str
    answer_type: str
    status: Status
    scores: dict[str, float] = Field(default_factory=dict)
    overall: float | None = None
    judge: str
    rubric: str  # name@version
    prompt_hash: str
    raw: str | None = None  # the judge's full text, kept whatever the status
    detail: str | None = None  # why a judgment failed, in words
    sections: dict[str, str] = Field(default_factory=dict)  # e.g. plan/execution of plan-execute rubrics
    usage: Usage = Usage()
    attempts: int = 1
    truncated_answer: bool = False
    answer_chars: int = 0
    cached: bool = False


# -- summaries --------------------------------------------------------------------------------------


class Loose(BaseModel):
    """Frozen, but keeps keys it does not name: run folders from other versions load and round-trip."""

    model_config = ConfigDict(frozen=True, extra="allow")


class DimensionScore(Loose):
    mean: float | None = None
    n: int = 0


class CategoryScore(Loose):
    score: float | None = None
    ci: list[float] | None = None
    n: int = 0  # judgments that count (status ok)
    n_failed: int = 0
    group: str = ""
    en: str = ""
    dimensions: dict[str, DimensionScore] = Field(default_factory=dict)


class GroupScore(Loose):
    name: str = ""
    en: str = ""
    score: float | None = None
    ci: list[float] | None = None
    categories: list[str] = Field(default_factory=list)
    complete: bool | None = None


class SubcategoryScore(Loose):
    category: str
    subcategory: str
    n: int = 0
    score: float | None = None


class UsageTotals(Loose):
    """Tokens of every reply the judgments used (parse retries included) and the calls made for them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    fresh_prompt_tokens: int = 0  # of replies received in this run (not read from the cache)
    fresh_completion_tokens: int = 0
    calls: int = 0
    retries: int = 0
    cached_replies: int = 0
    call_errors: int = 0


class Manifest(Loose):
    """What is needed to reproduce the numbers: judge, rubric, inputs and their hashes, versions."""

    model: str = ""
    judge: dict[str, Any] = Field(default_factory=dict)
    rubric: str = ""
    questions: dict[str, Any] = Field(default_factory=dict)  # path, sha256
    answers: Any = None
    missing_answers: list[int] = Field(default_factory=list)
    n_missing_answers: int = 0
    max_answer_chars: int | None = None
    alignbench_version: str = ""
    created: str = ""
    dir: str | None = None


class Summary(Loose):
    """One model's scores: the content of ``summary.json`` (and of ``score --format json``)."""

    model: str = ""
    scale: list[float] = Field(default_factory=lambda: [1, 10])
    overall: float | None = None
    overall_ci: list[float] | None = None
    reasoning: float | None = None
    reasoning_ci: list[float] | None = None
    language: float | None = None
    language_ci: list[float] | None = None
    n: int = 0
    n_ok: int = 0
    n_failed: int = 0
    failed_by_status: dict[str, int] = Field(default_factory=dict)
    groups: dict[str, GroupScore] = Field(default_factory=dict)
    categories: dict[str, CategoryScore] = Field(default_factory=dict)
    dimensions: dict[str, DimensionScore] = Field(default_factory=dict)
    subcategories: dict[str, SubcategoryScore] = Field(default_factory=dict)
    ci_level: float = 0.95
    bootstrap: dict[str, Any] = Field(default_factory=dict)
    usage: UsageTotals = UsageTotals()
    run: Manifest = Manifest()
    finished: bool = False
    ensemble: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON form (what ``summary.json`` holds); ``ensemble`` only when there is one."""
        return self.model_dump(mode="json", exclude_none=False, exclude={"ensemble"} if self.ensemble is None else None)
