"""Core records passed between pipeline stages.

Data flows one way: load (Question, Answer) -> prompt (ModelRequest) -> judge (ModelReply)
-> parse (Judgment) -> aggregate (Summary dict). Every record is an immutable pydantic model so a
stage cannot quietly change what an earlier stage produced, and so each record round-trips through
JSON (the run folder is nothing but these records serialised).
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

__version__ = "0.1.0"  # alignbench's, recorded in every manifest (alignbench.__version__)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Sparse(Frozen):
    """A record whose protocol fields (multi-turn, structured output, log-probabilities, reasoning) are left
    out of its JSON when unset, so records without them serialise exactly as before those fields existed
    (single-turn files, run folders and the content hashes taken of them stay byte-identical)."""

    sparse_fields: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.sparse_fields:
                if key in data and data[key] in (None, [], {}, (), False):
                    del data[key]
        return data


class Status(str, Enum):
    """Outcome of one judgment. Only ``ok`` judgments carry scores that are ever averaged."""

    OK = "ok"
    PARSE_FAILED = "parse_failed"  # no overall score could be read from the judge's text
    OUT_OF_RANGE = "out_of_range"  # a score was read but lies outside the rubric scale
    REFUSED = "refused"  # the judge declined to judge
    JUDGE_ERROR = "judge_error"  # the judge could not be reached / kept failing after retries
    TOO_LONG = "too_long"  # the prompt does not fit the judge's context
    TRUNCATED = "truncated"  # the judge hit its output token limit before finishing: never scored


class Turn(Frozen):
    """One message of a multi-turn question: a user turn, or a fixed assistant turn given as context."""

    role: str  # "user" or "assistant"
    content: str


class Question(_Sparse):
    id: int
    category: str
    subcategory: str
    question: str  # a multi-turn question: its first user turn
    reference: str = ""  # a multi-turn question: the reference of its first model turn
    evidences: list[dict[str, Any]] = Field(default_factory=list)
    # Multi-turn dialogues (data/zh/README.md): the messages in order. The model answers every user turn
    # that no fixed assistant turn follows; ``references`` has one entry per such model turn ("" for none).
    turns: tuple[Turn, ...] = ()
    references: tuple[str, ...] = ()

    sparse_fields: ClassVar[tuple[str, ...]] = ("turns", "references")

    @property
    def multi_turn(self) -> bool:
        return bool(self.turns)

    @property
    def model_turns(self) -> int:
        """How many replies the model writes: 1 for a single-turn question."""
        if not self.turns:
            return 1
        return sum(1 for i, t in enumerate(self.turns) if t.role == "user"
                   and (i + 1 == len(self.turns) or self.turns[i + 1].role != "assistant"))

    def dialogue(self, replies: tuple[str, ...] | list[str] = (), upto: int | None = None) -> list[tuple[str, str, int | None]]:
        """The dialogue as (role, content, model turn) up to model turn ``upto`` (all when None): user turns,
        fixed assistant turns (model turn None) and the model's own replies, ``replies[k - 1]`` for model
        turn k ("" where there is none yet). A single-turn question is one user turn and model turn 1."""
        turns = self.turns or (Turn(role="user", content=self.question),)
        out: list[tuple[str, str, int | None]] = []
        k = 0
        for i, t in enumerate(turns):
            out.append((t.role, t.content, None))
            if t.role == "user" and (i + 1 == len(turns) or turns[i + 1].role != "assistant"):
                k += 1
                out.append(("assistant", replies[k - 1] if k - 1 < len(replies) else "", k))
                if upto is not None and k >= upto:
                    break
        return out

    def reference_for(self, turn: int) -> str:
        """The reference answer of model turn ``turn`` (1-based)."""
        if not self.turns:
            return self.reference
        return self.references[turn - 1] if turn - 1 < len(self.references) else ""


class Answer(_Sparse):
    question_id: int
    model: str
    text: str  # a multi-turn answer: its last reply
    meta: dict[str, Any] = Field(default_factory=dict)
    turns: tuple[str, ...] = ()  # a multi-turn answer: one reply per model turn, in order

    sparse_fields: ClassVar[tuple[str, ...]] = ("turns",)


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, those the provider read from its prompt cache (cheaper)
    batch: bool = False  # answered through a provider's batch API (billed at the batch price)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Decoding(Frozen):
    """Sampling settings that change what a judge writes (and therefore belong in the cache key)."""

    temperature: float = 0.0
    max_tokens: int = 2048
    top_p: float | None = None
    seed: int | None = None


class ModelRequest(Frozen):
    """One prompt for a judge. ``key`` addresses the reply in the cache and is computed from content."""

    messages: tuple[dict[str, str], ...]
    decoding: Decoding = Decoding()
    rubric: str = ""  # name@version of the rubric that rendered the prompt
    question_id: int | None = None  # for scheduling and progress only; not part of the key
    # Structured output: the JSON schema the verdict must follow (``alignbench.structured``); each backend
    # asks for it its own way (docs/protocols.md). Part of the cache key: a constrained reply is another reply.
    response_schema: dict[str, Any] | None = None
    # Token log-probabilities: how many alternatives per output token to ask for (OpenAI allows 20). Part of
    # the cache key, so a reply cached without them is not mistaken for one that has them.
    logprobs: int | None = None
    # A text completion: the messages' text is sent as one bare prompt (``judges.base.completion_prompt``), with
    # no chat template (``/v1/completions``; in-process, the tokenizer on the bare string), as a judge fine-tuned
    # on a raw input format (CritiqueLLM) was run by its authors. Part of the cache key: another input, another reply.
    completion: bool = False

    def cache_key(self, fingerprint: str) -> str:
        payload = {
            "judge": fingerprint,
            "rubric": self.rubric,
            "messages": list(self.messages),
            "decoding": self.decoding.model_dump(),
        }
        # Only when set, so every request without them keeps the key it always had (and its cached reply).
        if self.response_schema is not None:
            payload["response_schema"] = self.response_schema
        if self.logprobs is not None:
            payload["logprobs"] = self.logprobs
        if self.completion:
            payload["completion"] = True
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @property
    def prompt_hash(self) -> str:
        blob = json.dumps(list(self.messages), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class TokenProbs(Frozen):
    """One output token: where it starts in the reply text, itself, and its most likely alternatives."""

    offset: int  # character offset of the token's first character in ``ModelReply.text``
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # (token, logprob), most likely first


class ModelReply(Frozen):
    """What a judge said (or why it said nothing). Never holds parsed scores: parsing comes later."""

    text: str | None = None
    usage: Usage = Usage()
    model: str = ""
    endpoint: str | None = None
    cached: bool = False
    error: str | None = None
    error_status: Status | None = None  # JUDGE_ERROR or TOO_LONG when ``error`` is set
    attempts: int = 1
    finish_reason: str | None = None  # "length": cut by the output token limit (the text is then not a verdict)
    reasoning: str | None = None  # a server's separate ``reasoning_content`` (never parsed, never shown to a judge)
    # Token log-probabilities, kept only where a score can be: positions whose token holds a digit and the
    # one after each (``alignbench.logprobs``); the full list would make every cached reply 100 times larger.
    logprobs: tuple[TokenProbs, ...] | None = None
    structured: str | None = None  # how structured output was obtained (json_schema, guided_json, json_object, constrained)
    structured_fallback: str | None = None  # why a request for structured output was answered as text

    @field_validator("text", "reasoning", "error", "model")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        """A lone surrogate (a server's ``"\\ud800"``) becomes U+FFFD here, where every reply is made: such a
        string cannot be encoded as UTF-8, so the paid reply could be neither cached nor written."""
        from alignbench.safejson import scrub

        return scrub(value)


class Judgment(_Sparse):
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
    earlier_replies: list[str] = Field(default_factory=list)  # texts of replies asked again (parse retries)
    detail: str | None = None  # why a judgment failed, in words
    sections: dict[str, str] = Field(default_factory=dict)  # e.g. plan/execution of plan-execute rubrics
    usage: Usage = Usage()
    attempts: int = 1
    truncated_answer: bool = False
    answer_chars: int = 0
    cached: bool = False
    # -- protocol fields (docs/protocols.md); left out of the JSON when unset ---------------------------
    reasoning: str | None = None  # the judge's own reasoning (think block or reasoning_content): never parsed
    answer_reasoning: str | None = None  # "removed": the answer's think block was hidden from the judge;
    #                                      "leaked": think tags remain in the answer's final text
    overall_expected: float | None = None  # expected overall score over the score token's probabilities
    scores_expected: dict[str, float] = Field(default_factory=dict)  # the same per dimension
    structured: str | None = None  # how the verdict was asked for as JSON (None: as text)
    turn: int | None = None  # multi-turn: which model turn this judges (1-based)
    turns: list[Judgment] = Field(default_factory=list)  # multi-turn: the judgments of the dialogue's turns
    # the verdict-shaped text the judged answer carries (an attempt to grade itself; parse.py rule 8)
    injection: str | None = None

    sparse_fields: ClassVar[tuple[str, ...]] = ("reasoning", "answer_reasoning", "overall_expected", "scores_expected",
                                                 "structured", "turn", "turns", "injection")


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
    # Spend, from the provider-reported usage of the same replies at ``judges/prices.yaml``'s prices. Why
    # one figure per currency (and not "cost" + "currency"): totals of several judges (ensembles, meta-eval)
    # are added field by field, and USD and CNY must never be added together.
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    batch_prompt_tokens: int = 0  # of prompt_tokens, in replies answered through a batch API
    batch_completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_cny: float = 0.0
    unpriced_tokens: int = 0  # tokens of a model the price table does not know ("price unknown")


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


class Result(BaseModel):
    """The base of the typed results written as JSON (the pairwise summary, ``meta_eval.json``, the trust
    results): frozen, read back by ``model_validate`` from the JSON ``as_dict()`` gives."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


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
