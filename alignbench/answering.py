"""Answers from the model under test: question -> request -> model -> answer line.

An answerer is a model client like a judge (same backends, same ``Runner``: concurrency, retries
with backoff, Retry-After), so everything a judge backend can reach (OpenAI-compatible servers,
local transformers models) can also be evaluated. What differs from judging:

* Decoding follows AlignBench's answer protocol: a temperature per category (``generation.yaml``,
  overridable with a YAML file), the server's defaults for everything else.
* The output file is the resume record. Each answer is appended and flushed as soon as it arrives,
  so a killed run loses only the answers in flight; a re-run skips every question already in the
  file and drops a partial last line left by the kill.
* The SQLite reply cache is off by default: answers are samples (temperature > 0) from a model that
  is often re-served under the same name after a new checkpoint, and the cache key holds neither
  the server nor the weights. A cache hit would silently hand back an old sample.
* A leading ``<think>…</think>`` block (reasoning models), or a server's separate ``reasoning_content``, is
  kept in a ``reasoning`` field, out of the answer, so the judge grades the answer, not the scratchpad
  (``alignbench.reasoning``: the same handler reads judge replies). Think tags left in the final text are
  counted as leaked (``reasoning_leaked``).
* Multi-turn questions (``turns``) are answered turn by turn: every dialogue's first turn, then every
  second turn with the model's own first reply in the history, and so on. A dialogue is written to the
  file once all its turns are answered (a run killed mid-dialogue asks that dialogue again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from alignbench import safejson
from alignbench.cache import ReplyStore
from alignbench.data import InputError, _question_id
from alignbench.engine import Engine, EventHandler, Exchange, ReplySource, RetryPolicy
from alignbench.judges import ModelConfig, ModelConfigError, resolve_model
from alignbench.judges.base import ModelClient
from alignbench.reasoning import split_reasoning
from alignbench.rubrics import Rubric
from alignbench.types import Decoding, ModelReply, ModelRequest, Question, Usage

GENERATION_FILE = Path(__file__).with_name("generation.yaml")
REQUEST_TAG = "answer"  # ModelRequest.rubric for answer requests: keeps their cache keys apart from judging
EMPTY_RETRIES = 2  # fresh samples asked after an empty answer (upstream AlignBench re-asks 3 times)

# -- default decoding --------------------------------------------------------------------------


@dataclass(frozen=True)
class Temperatures:
    """Temperature per category, plus the one for categories named nowhere."""

    by_category: dict[str, float]
    default: float
    sources: tuple[str, ...] = ()  # files the table was read from, for the record

    def for_category(self, category: str) -> float:
        return self.by_category.get(category, self.default)


@cache
def generation_defaults(path: Path = GENERATION_FILE) -> dict[str, Any]:
    """The ``generation:`` section of ``generation.yaml`` (AlignBench's answer settings)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = data.get("generation")
    if not isinstance(section, dict) or not isinstance(section.get("temperatures"), dict):
        raise ValueError(f"{path}: expected a 'generation:' mapping with 'temperatures:'")
    return section


def default_temperatures() -> Temperatures:
    section = generation_defaults()
    return Temperatures(by_category={str(k): float(v) for k, v in section["temperatures"].items()},
                        default=float(section.get("default_temperature", 0.7)),
                        sources=(str(GENERATION_FILE.name),))


def default_max_tokens() -> int:
    return int(generation_defaults().get("max_tokens", 2048))


def _key_lines(text: str) -> dict[str, int]:
    """Line number of every top-level key of a YAML mapping (for error messages)."""
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def load_temperatures(path: Path | str | None, rubric: Rubric) -> Temperatures:
    """AlignBench's defaults, overridden by ``path`` if given.

    ``path`` is YAML or JSON (upstream ``config/temperature.json`` works as is): a mapping of
    category -> temperature, plus an optional ``default`` for categories named nowhere. Category
    aliases of the rubric (e.g. 基本能力) are accepted; an unknown name is an error, since a typo
    would otherwise silently leave that category at the default.
    """
    base = default_temperatures()
    if path is None:
        return base
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "temperature file not found")
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = yaml.safe_load(text)
        lines = _key_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, mark.line + 1 if mark else None, "not valid YAML or JSON") from None
    if not isinstance(data, dict) or not data:
        raise InputError(path, None, "expected a mapping of category to temperature, e.g. '数学计算: 0.1'")
    table = dict(base.by_category)
    default = base.default
    for key, value in data.items():
        line = lines.get(str(key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise InputError(path, line, f"temperature of {key!r} must be a number from 0 to 2, got {value!r}")
        if str(key) == "default":
            default = float(value)
            continue
        cat = rubric.category(str(key))
        if cat is None:
            raise InputError(path, line, f"unknown category {key!r}; expected one of "
                             f"{', '.join(rubric.category_names())} or 'default'")
        table[cat.name] = float(value)
    return Temperatures(by_category=table, default=default, sources=(*base.sources, str(path)))


# -- reasoning blocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThinkSplit:
    answer: str
    reasoning: str | None = None  # None: the text had no think block
    unclosed: bool = False  # the text opened <think> and never closed it (ran out of tokens)
    leaked: bool = False  # think tags left in the final text (or in the content beside reasoning_content)


def split_think(text: str, reasoning_content: str | None = None) -> ThinkSplit:
    """An answer's reasoning and final text, by ``alignbench.reasoning.split_reasoning`` (the one handler
    for answers and judge replies): a leading ``<think>…</think>`` block (nested tags included), a
    ``</think>`` whose opening tag the chat template put in the prompt (DeepSeek-R1 distills served without
    a reasoning parser), or a server's ``reasoning_content``. A ``<think>`` that is never closed means the
    model spent its whole budget thinking: the answer is empty and ``unclosed`` says so (the judge then
    grades an empty answer, honestly)."""
    split = split_reasoning(text, reasoning_content)
    return ThinkSplit(answer=split.answer if (split.start or split.unclosed) else text, reasoning=split.reasoning,
                      unclosed=split.unclosed, leaked=split.leaked)


# -- model client --------------------------------------------------------------------------------


def model_config(*, base_url: str | None = None, hf: str | None = None, model_id: str,
                 api_key_env: str | None = None, timeout: float = 300.0, concurrency: int | None = None,
                 options: dict[str, Any] | None = None) -> ModelConfig:
    """The client settings for the model under test, built through the backend registry.

    The key is read only from ``api_key_env`` when given: unlike a judge preset, the base URL here
    is any server the user names, and ``$OPENAI_API_KEY`` must not be sent to it by default.
    """
    if (base_url is None) == (hf is None):
        raise ModelConfigError("give exactly one of --base-url URL (an OpenAI-compatible server) "
                               "or --hf PATH (a local transformers model)")
    if api_key_env and not os.environ.get(api_key_env):
        raise ModelConfigError(f"environment variable {api_key_env} (from --api-key-env) is not set")
    if hf is not None:
        try:
            return resolve_model("hf:" + hf, timeout=timeout, concurrency=concurrency, options=options or {})
        except ModelConfigError:
            raise ModelConfigError("the local transformers backend ('hf') is not available: install "
                                   "alignbench[local] (torch, transformers)") from None
    config = resolve_model("openai:" + model_id, base_url=[base_url], timeout=timeout, concurrency=concurrency,
                           key_required=False)
    return config.model_copy(update={"api_key_env": api_key_env, "api_key_explicit": bool(api_key_env)})


# -- the answer file -----------------------------------------------------------------------------


@dataclass
class Existing:
    """What an earlier run left in the output file."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    dropped_partial: int = 0  # bytes of a partial last line (from a killed run) that were removed
    mismatched: int = 0  # kept answers generated with other settings than this run's


class AnswerLog:
    """The output JSONL, opened for appending under an exclusive lock.

    One ``write`` call per line followed by a flush: after a SIGKILL the file holds every answer
    received so far, at worst followed by one partial line, which the next ``open`` removes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh: Any = None
        self._created = False

    def open(self) -> bytes:
        """Open (creating folders), lock, and return the current content without a partial tail."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._created = not self.path.exists()
        self._fh = self.path.open("a+b")
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not on Windows: no lock, one run per file is then the user's job
            pass
        except OSError:
            self._fh.close()
            self._fh = None
            raise InputError(self.path, None, "another alignbench run is writing this file; "
                             "wait for it or choose another --out") from None
        self._fh.seek(0)
        return self._fh.read()

    def truncate(self, size: int) -> None:
        self._fh.truncate(size)

    def end_line(self) -> None:
        """Add the missing newline after a complete last line."""
        self._fh.write(b"\n")
        self._fh.flush()

    def append(self, record: dict[str, Any]) -> None:
        self._fh.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        self._fh.flush()

    def rewrite_sorted(self, order: list[int]) -> None:
        """Put a complete file in question order (atomic: a temp file replaces the original)."""
        self._fh.flush()
        self._fh.seek(0)
        rows = [json.loads(line) for line in self._fh.read().decode("utf-8").splitlines() if line.strip()]
        rank = {qid: i for i, qid in enumerate(order)}
        rows.sort(key=lambda r: rank.get(int(r["question_id"]), len(rank)))
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(self.path)

    def close(self) -> None:
        """Close; a file this run created but never wrote to (e.g. the server was down) is removed."""
        if self._fh is not None:
            empty = self._fh.tell() == 0 if self._created else False
            self._fh.close()
            self._fh = None
            if empty and self.path.is_file() and self.path.stat().st_size == 0:
                self.path.unlink()


def read_existing(log: AnswerLog, questions: list[Question], settings: AnswerSettings) -> Existing:
    """Parse what the output file already holds; every complete line must be a valid answer.

    A last line without its newline is the mark of a killed write: it is dropped (and its question
    asked again) unless it happens to be a complete answer, e.g. a hand-edited file with no final
    newline, which is kept. Any other bad line is an error with file and line: the file is the
    user's data and is never silently overwritten.
    """
    raw = log.open()
    existing = Existing()
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        try:
            tail = safejson.loads(raw[cut:].decode("utf-8"))
            complete = isinstance(tail, dict) and (isinstance(tail.get("answer"), str) or isinstance(tail.get("turns"), list))
        except (UnicodeDecodeError, json.JSONDecodeError):
            complete = False
        if complete:
            log.end_line()
            raw += b"\n"
        else:
            log.truncate(cut)
            existing.dropped_partial = len(raw) - cut
            raw = raw[:cut]
    by_id = {q.id: q for q in questions}
    path = log.path
    lines: dict[int, int] = {}
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = safejson.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(path, lineno, "not a valid answer line (this file is the resume record of "
                             "`alignbench answer`; fix or remove the line, or choose another --out)") from None
        if not isinstance(obj, dict) or "question_id" not in obj or not (
                isinstance(obj.get("answer"), str) or isinstance(obj.get("turns"), list)):
            raise InputError(path, lineno, "expected an answer object with 'question_id' and 'answer' (or 'turns')")
        qid = _question_id(obj["question_id"], path, lineno)
        model = obj.get("model_id")
        if model is not None and model != settings.model_name:
            raise InputError(path, lineno, f"holds answers from model {model!r}, not {settings.model_name!r}; "
                             "choose another --out or the matching --model-name")
        if qid not in by_id:
            raise InputError(path, lineno, f"answer to question_id {qid}, which is not in the question file; "
                             "choose another --out or the matching --questions")
        if qid in lines:
            raise InputError(path, lineno, f"second answer to question {qid} (first on line {lines[qid]})")
        lines[qid] = lineno
        existing.records[qid] = obj
        gen = obj.get("generation") or {}
        wanted = settings.generation(by_id[qid])
        if any(gen.get(k) != wanted[k] for k in ("model", "max_tokens", "temperature", "system_prompt")):
            existing.mismatched += 1
    return existing


# -- generation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerSettings:
    """Everything that decides what the model under test is asked, and how."""

    model_name: str  # the name answers are filed under (model_id, answer_id)
    model_id: str  # the id sent to the server / the local model path
    backend: str
    temperatures: Temperatures
    max_tokens: int
    system_prompt: str | None = None
    keep_think: bool = False

    def decoding(self, question: Question, seed: int | None = None) -> Decoding:
        return Decoding(temperature=self.temperatures.for_category(question.category), max_tokens=self.max_tokens,
                        seed=seed)

    def request(self, question: Question, seed: int | None = None) -> ModelRequest:
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": question.question})
        return ModelRequest(messages=tuple(messages), decoding=self.decoding(question, seed), rubric=REQUEST_TAG,
                            question_id=question.id)

    def turn_request(self, question: Question, earlier: list[str], turn: int, seed: int | None = None) -> ModelRequest:
        """The request for model turn ``turn`` of a dialogue: the messages so far, with the model's own
        ``earlier`` replies (their final text: a model's reasoning does not go back into its history)."""
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        dialogue = question.dialogue(earlier, upto=turn)[:-1]  # up to the user turn the model answers now
        messages += [{"role": role, "content": content} for role, content, _ in dialogue]
        return ModelRequest(messages=tuple(messages), decoding=self.decoding(question, seed), rubric=REQUEST_TAG,
                            question_id=question.id)

    def generation(self, question: Question) -> dict[str, Any]:
        """The settings recorded on each answer line (and compared on resume)."""
        return {"backend": self.backend, "model": self.model_id,
                "temperature": self.temperatures.for_category(question.category),
                "max_tokens": self.max_tokens, "system_prompt": self.system_prompt}

    def record(self) -> dict[str, Any]:
        """How the answers were produced, for the ``generation`` entry of a run's summary.json (``api.run``):
        only what shapes the answers, never the server's URL or a key, so a manifest can be shared."""
        return {"backend": self.backend, "model": self.model_id, "max_tokens": self.max_tokens,
                "temperatures": self.temperatures.by_category, "default_temperature": self.temperatures.default,
                "temperature_sources": list(self.temperatures.sources), "system_prompt": self.system_prompt,
                "keep_think": self.keep_think}


def make_record(question: Question, text: str, usage: Usage, settings: AnswerSettings, *, served_model: str = "",
                attempts: int = 1, cached: bool = False, seed: int | None = None,
                reasoning_content: str | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    """One answer line: the question record plus AlignBench's answer fields (upstream
    ``get_answers.py`` writes the same keys, so the file also feeds upstream ``judge.py``), plus the
    generation settings and token usage."""
    record: dict[str, Any] = {"question_id": question.id, "category": question.category,
                              "subcategory": question.subcategory, "question": question.question,
                              "reference": question.reference, "model_id": settings.model_name,
                              "answer_id": f"{question.id}_{settings.model_name}"}
    split = split_think(text, reasoning_content)
    if settings.keep_think:
        record["answer"] = text
        if reasoning_content:
            record["reasoning"] = reasoning_content
    else:
        record["answer"] = split.answer
        if split.reasoning is not None:
            record["reasoning"] = split.reasoning
        if split.unclosed:
            record["think_unclosed"] = True
    if split.leaked:
        record["reasoning_leaked"] = True
    if finish_reason == "length":  # cut at --max-tokens: judged as it is, but flagged and counted
        record["truncated"] = True
    generation = settings.generation(question)
    if served_model and served_model != settings.model_id:
        generation["served_model"] = served_model
    if seed is not None:
        generation["seed"] = seed
    record["generation"] = generation
    record["usage"] = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                       "total_tokens": usage.total_tokens}
    record["attempts"] = attempts
    if cached:
        record["cached"] = True
    return record


@dataclass
class AnswerRun:
    """What one invocation did."""

    total: int
    kept: int  # answers already in the file (not asked again)
    written: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # question id -> last error
    empty: int = 0  # answers still empty after EMPTY_RETRIES fresh samples (written as they are)
    reasoning: int = 0  # answers whose <think> block was moved to ``reasoning``
    unclosed: int = 0  # answers that never closed <think>
    leaked: int = 0  # answers with think tags left in their final text
    truncated: int = 0  # answers cut at --max-tokens (finish_reason "length"), flagged ``truncated``
    dropped_partial: int = 0
    mismatched: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    retries: int = 0
    settings: AnswerSettings | None = None  # what the answers were generated with

    @property
    def complete(self) -> bool:
        return not self.failed


class IncompleteAnswers(Exception):
    """``api.run`` stops before judging when some questions got no answer: scores over a subset would
    look like the model's scores. ``answers`` is what the answering did (``failed`` names each question's
    last error) and ``path`` the answer file, where the answers received are kept for the next call."""

    def __init__(self, answers: AnswerRun, path: Path) -> None:
        first = next(iter(answers.failed.values()), "")
        super().__init__(f"{len(answers.failed)} of {answers.total} questions got no answer (e.g. {first}); they are "
                         f"not in {path}: run the same call again to ask only those")
        self.answers, self.path = answers, path


@dataclass(frozen=True)
class _Outcome:
    """What one question's replies came to: the reply whose text is kept (None: every call failed)."""

    question: Question
    exchange: Exchange
    reply: ModelReply | None
    seed: int | None
    again: bool  # the kept reply is the last one and its answer is empty: ask a fresh sample


async def generate_answers(questions: list[Question], client: ModelClient, settings: AnswerSettings, out: Path,
                           store: ReplyStore, concurrency: int | None = None, retry: RetryPolicy | None = None,
                           on_event: EventHandler | None = None,
                           before_start: Callable[[AnswerRun], None] | None = None,
                           source: ReplySource | None = None) -> AnswerRun:
    """Answer every question not yet in ``out``, appending each answer as it arrives.

    A question whose calls keep failing is left out of the file (and listed in ``failed``), so the
    next run asks it again; a fatal error (bad key, unknown model) stops the run at once.
    ``before_start`` sees the resume counts before any call (the CLI prints them).
    """
    log = AnswerLog(out)
    try:
        existing = read_existing(log, questions, settings)
        todo = [q for q in questions if q.id not in existing.records]
        result = AnswerRun(total=len(questions), kept=len(existing.records), dropped_partial=existing.dropped_partial,
                           mismatched=existing.mismatched)
        if before_start:
            before_start(result)
        if todo:
            engine = Engine(client, store, concurrency=concurrency, retry=retry, on_event=on_event, role="model",
                            source=source)
            single = [q for q in todo if not q.multi_turn]
            try:
                if single:
                    await engine.map(single, lambda q, attempt: settings.request(q, seed=attempt or None),
                                     lambda q, ex, _prev: _outcome(q, ex, settings), failed=lambda o: o.reply is None,
                                     again=lambda o: o.again, retries=EMPTY_RETRIES, label="answering",
                                     done=lambda o: _record(o, settings, log, result))
                if len(single) < len(todo):
                    await _answer_dialogues([q for q in todo if q.multi_turn], engine, settings, log, result)
            finally:
                stats = engine.stats_for()
                result.calls, result.retries = stats.calls, stats.retries
        if result.complete and (todo or existing.dropped_partial):
            log.rewrite_sorted([q.id for q in questions])
        return result
    finally:
        log.close()


def _outcome(question: Question, exchange: Exchange, settings: AnswerSettings) -> _Outcome:
    """Keep the last reply that has text; an empty answer is asked again with a new seed (upstream
    AlignBench re-asks too), a failed re-ask keeps the earlier reply."""
    kept = [(i, r) for i, r in enumerate(exchange.replies) if r.text is not None]
    if not kept:
        return _Outcome(question, exchange, None, None, False)
    index, reply = kept[-1]
    empty = not _answer_text(reply.text or "", settings)
    return _Outcome(question, exchange, reply, index or None, empty and reply is exchange.last)


async def _answer_dialogues(dialogues: list[Question], engine: Engine, settings: AnswerSettings, log: AnswerLog,
                            result: AnswerRun) -> None:
    """Answer dialogues turn by turn (see the module docstring): round k asks model turn k of every
    dialogue that has one, with the replies of the earlier rounds in its history. Each turn gets the same
    empty-answer re-asks as a single answer; a dialogue whose turn fails is left out of the file."""
    shown: dict[int, list[str]] = {q.id: [] for q in dialogues}  # final texts, as the model sees them again
    turns: dict[int, list[dict[str, Any]]] = {q.id: [] for q in dialogues}
    active, k = list(dialogues), 1
    while active:
        outcomes = await engine.map(
            active, lambda q, attempt, k=k: settings.turn_request(q, shown[q.id], k, seed=attempt or None),
            lambda q, ex, _prev: _outcome(q, ex, settings), failed=lambda o: o.reply is None,
            again=lambda o: o.again, retries=EMPTY_RETRIES, label=f"answering turn {k}")
        still = []
        for q, o in zip(active, outcomes, strict=True):
            if o.reply is None or o.reply.text is None:
                result.failed[q.id] = f"turn {k}: {o.exchange.last.error or 'no reply'}"
                continue
            record = make_record(q, o.reply.text, o.exchange.usage, settings, served_model=o.reply.model,
                                 attempts=o.exchange.attempts, cached=o.reply.cached, seed=o.seed,
                                 reasoning_content=o.reply.reasoning, finish_reason=o.reply.finish_reason)
            turns[q.id].append(record)
            shown[q.id].append(split_think(o.reply.text, o.reply.reasoning).answer)
            if k < q.model_turns:
                still.append(q)
            else:
                _record_dialogue(q, turns[q.id], settings, log, result)
        active, k = still, k + 1


def _record_dialogue(question: Question, turns: list[dict[str, Any]], settings: AnswerSettings, log: AnswerLog,
                     result: AnswerRun) -> None:
    """One line for a whole dialogue: the question's fields, ``turns`` (one reply per model turn) and the
    per-turn reasoning, flags, usage and attempts summed."""
    record: dict[str, Any] = {k: v for k, v in turns[0].items()
                              if k in ("question_id", "category", "subcategory", "question", "reference", "model_id",
                                       "answer_id")}
    record["turns"] = [t["answer"] for t in turns]
    if any("reasoning" in t for t in turns):
        record["reasoning"] = [t.get("reasoning") for t in turns]
    for flag in ("think_unclosed", "reasoning_leaked", "truncated"):
        if any(t.get(flag) for t in turns):
            record[flag] = [bool(t.get(flag)) for t in turns]
    record["generation"] = turns[-1]["generation"]
    record["usage"] = {k: sum(t["usage"][k] for t in turns) for k in ("prompt_tokens", "completion_tokens",
                                                                       "total_tokens")}
    record["attempts"] = sum(t["attempts"] for t in turns)
    log.append(record)
    result.written += 1
    result.empty += any(not t["answer"].strip() for t in turns)
    result.reasoning += "reasoning" in record
    result.unclosed += "think_unclosed" in record
    result.leaked += "reasoning_leaked" in record
    result.truncated += "truncated" in record
    result.prompt_tokens += record["usage"]["prompt_tokens"]
    result.completion_tokens += record["usage"]["completion_tokens"]


def _record(outcome: _Outcome, settings: AnswerSettings, log: AnswerLog, result: AnswerRun) -> None:
    """Append one answer to the file (or count the question as failed) as soon as it is final."""
    ex, reply = outcome.exchange, outcome.reply
    if reply is None or reply.text is None:
        result.failed[outcome.question.id] = ex.last.error or "no reply"
        return
    record = make_record(outcome.question, reply.text, ex.usage, settings, served_model=reply.model,
                         attempts=ex.attempts, cached=reply.cached, seed=outcome.seed, reasoning_content=reply.reasoning,
                         finish_reason=reply.finish_reason)
    log.append(record)
    result.written += 1
    result.empty += not record["answer"].strip()
    result.reasoning += "reasoning" in record
    result.unclosed += bool(record.get("think_unclosed"))
    result.leaked += bool(record.get("reasoning_leaked"))
    result.truncated += bool(record.get("truncated"))
    result.prompt_tokens += ex.usage.prompt_tokens
    result.completion_tokens += ex.usage.completion_tokens


def _answer_text(text: str, settings: AnswerSettings) -> str:
    """The part of a reply that will be judged (empty means: ask again)."""
    if settings.keep_think:
        return text.strip()
    split = split_think(text)
    return "x" if split.unclosed else split.answer.strip()  # an unclosed think is not re-asked
