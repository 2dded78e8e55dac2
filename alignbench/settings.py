"""The judge settings that ``score``, ``compare`` and ``meta_eval`` share, declared once (``JudgeSettings``),
and ``takes_settings``, which lets a function take them by name as well.

Why one object: the three judging commands take the same sixteen-odd settings (which judge model, which
servers, rubric and protocol, how hard to retry, the cache, the batch API and budget …). Written out in
every function, CLI command and docstring they drift apart; here each is one field, validated once. The
CLI builds a ``JudgeSettings`` from its options (``cli/options.py``: ``JUDGE_OPTIONS``), an API caller
passes ``settings=JudgeSettings(...)`` or, as before, the settings by name (``score(..., timeout=30)``).
Adding a shared setting is a field here (and its option in ``cli/options.py``); every function decorated
with ``takes_settings`` then shows it in its signature and docstring and takes it by name, and a name that
is no setting is a ``TypeError`` naming it.

Which judge (``judge``/``judges``) stays each function's own argument: meta-eval runs several judges and
protocols, score and compare one each (a comma list is an ensemble). So does ``seed``: it seeds the
bootstrap, not the judge.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alignbench.batch import BatchOptions
from alignbench.cache import ReplyStore
from alignbench.data import InputError
from alignbench.engine import RetryPolicy
from alignbench.judges import STRUCTURED_VIA, ModelConfig, judge_config, known_via

T = TypeVar("T")


class JudgeSettings(BaseModel):
    """How score, compare and meta-eval call their judge. Frozen and validated: a bad value is an error
    before anything is read or sent. ``None`` means the preset's own value where one exists."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    # -- which model, where, with which prompts (read when a plan is made: ``JUDGE``) --
    judge_model: str | None = Field(None, description="the model id sent, instead of the preset's")
    base_url: str | Sequence[str] | None = Field(
        None, description="the judge's OpenAI-compatible server(s): a URL, a comma list or a list (load-balanced)")
    rubric: str | None = Field(None, description="rubric set (a folder under rubrics/); default: the preset's")
    protocol: str | None = Field(
        None, description="multi-dimension, general, reference-free or plan-execute: the rubric set's variant")
    concurrency: int | None = Field(
        None, ge=1, description="requests in flight per judge server (default 16, lowered to what a server that does "
                                "not say its parallelism runs at once, learnt from its latency)")
    timeout: float = Field(120.0, gt=0, description="seconds one judge request may take, queueing included")
    max_reply_bytes: int = Field(8_000_000, ge=1024, description="a judge reply is read up to this size, then fails")
    temperature: float | None = Field(None, ge=0, description="judge temperature (default: the preset's, usually 0)")
    max_tokens: int | None = Field(None, ge=1, description="judge output token limit (default: the preset's)")
    top_p: float | None = Field(None, gt=0, le=1, description="judge top_p (default: the preset's, or none sent)")
    max_answer_chars: int | None = Field(12000, description="answers longer than this are clipped in the prompt")
    api_key_env: str | None = Field(None, description="environment variable holding the judge server's key")
    api_key_explicit: bool = Field(
        False, description="send that key to whatever server is named (the CLI's --api-key-env); otherwise a "
                           "provider's key goes only to the provider's own host")
    structured: bool | None = Field(None, description="ask for the verdict as JSON (default: the preset's)")
    structured_via: str | None = Field(
        None, description=f"how JSON is asked for: {', '.join(STRUCTURED_VIA)} (default: the backend's)")
    score_from: Literal["verdict", "logprobs"] | None = Field(
        None, description="logprobs: also score summaries by the expected score over the score tokens")
    prompt_format: Literal["chat", "completion"] | None = Field(
        None, description="completion: send the bare prompt string to /v1/completions (no chat template), as "
                          "CritiqueLLM's authors run it; chat: messages (default: the preset's)")
    canary: bool | None = Field(
        None, description="score: judge the fixed canary items too and compare with this judge's last canary "
                          "(drift: exit 4); default on for API judges whose model id ends in 'latest'")
    options: Mapping[str, Any] | None = Field(None, description="backend options, e.g. hf judges' device, batch_size")
    upstream: str | Path | None = Field(
        None, description="a clone of THUDM/AlignBench or FastChat: judge exactly as its own script does, its prompts "
                          "read from it (docs/protocols.md); default questions and judge then come from it")
    # -- how a run calls it (read when a plan is judged: ``CALL``) --
    attempts: int = Field(6, ge=1, description="calls per request on 429/5xx/timeouts, the first included")
    parse_retries: int = Field(1, ge=0, description="fresh samples asked after an unparseable judgment")
    cache: str | Path | ReplyStore | bool | None = Field(
        None, description="reply cache: None the default file, a path, False none, or an open ReplyStore you keep")
    refresh_failed: bool = Field(False, description="ask again where the cached reply gave no usable judgment")
    batch: bool | BatchOptions = Field(
        False, description="send uncached requests through the provider's batch API (True or BatchOptions)")
    batch_file_out: Path | None = Field(
        None, description="write the requests left after the cache to this OpenAI Batch input file and stop "
                          "(run them with vllm run-batch, Ray Data LLM, a LiteLLM proxy: docs/batch.md)")
    batch_file_in: Path | None = Field(
        None, description="read replies from this OpenAI Batch output file (matched by custom_id, cached)")
    max_cost: float | None = Field(
        None, ge=0, description="budget: refuse a run whose upper-bound cost exceeds it, stop once it is spent")

    CALL: ClassVar[frozenset[str]] = frozenset(
        {"attempts", "parse_retries", "cache", "refresh_failed", "batch", "batch_file_out", "batch_file_in",
         "max_cost"})

    @model_validator(mode="before")
    @classmethod
    def _batch_files(cls, data: Any) -> Any:
        """The batch files are the batch mechanism fed by files (``BatchOptions.file_out``/``file_in``, read
        by ``alignbench.batch.FileSource``): folded into ``batch`` here, so every call path that opens a
        channel from ``batch`` handles them. With a provider's batch (``batch=True``) they make no sense."""
        if not isinstance(data, dict) or not (data.get("batch_file_out") or data.get("batch_file_in")):
            return data
        batch = data.get("batch")
        if batch is True:
            raise ValueError("batch=True (a provider's batch API) and batch files exclude each other")
        base = batch if isinstance(batch, BatchOptions) else BatchOptions()
        files = {k: Path(v) if v else None for k, v in (("file_out", data.get("batch_file_out")),
                                                         ("file_in", data.get("batch_file_in")))}
        return {**data, "batch": dataclasses.replace(base, **files)}

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | Sequence[str] | None) -> tuple[str, ...] | None:
        """One shape for every way of naming servers (a comma list, repeated options): the same servers are
        the same settings."""
        raw = [value] if isinstance(value, str) else list(value or [])
        urls = tuple(u.strip() for item in raw for u in item.split(",") if u.strip())
        return urls or None

    @field_validator("cache")
    @classmethod
    def _cache_path(cls, value: Any) -> Any:
        return Path(value) if isinstance(value, str) else value

    _known_via = field_validator("structured_via")(known_via)

    @field_validator("options")
    @classmethod
    def _set_options(cls, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Options left unset (None) are no options: ``{"device": None}`` is the preset's device."""
        kept = {k: v for k, v in (value or {}).items() if v is not None}
        return kept or None

    @classmethod
    def part(cls, which: Literal["all", "judge", "call"]) -> list[str]:
        """Field names, in declaration order: all, those a plan reads (``judge``) or those a run reads (``call``)."""
        names = list(cls.model_fields)
        if which == "all":
            return names
        return [n for n in names if (n in cls.CALL) == (which == "call")]

    @classmethod
    def build(cls, base: JudgeSettings | None = None, **changes: Any) -> JudgeSettings:
        """``base`` (or the defaults) with ``changes``; a bad value is an ``InputError`` naming the setting."""
        values = {**({n: getattr(base, n) for n in base.model_fields_set} if base is not None else {}), **changes}
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(part) for part in first["loc"]) or "settings"
            raise InputError(name, None, f"{first['msg']} (given {first.get('input')!r})") from None

    def replace(self, **changes: Any) -> JudgeSettings:
        """A copy with ``changes``, validated."""
        return type(self).build(self, **changes)

    def config(self, judge: str, protocol: str | None = None) -> ModelConfig:
        """``judge``'s ModelConfig (a preset or ``BACKEND:MODEL``) with these settings over the preset's.
        ``protocol`` (meta-eval runs several) replaces this object's."""
        return judge_config(judge, protocol=protocol or self.protocol, **self.config_overrides())

    def config_overrides(self) -> dict[str, Any]:
        """``judge_config``'s keywords but the protocol: ``judge_model``, and every setting named like a
        ``ModelConfig`` field (given, it replaces the preset's value)."""
        names = [n for n in type(self).model_fields if n in ModelConfig.model_fields]
        return {"judge_model": self.judge_model, **{n: getattr(self, n) for n in names},
                "options": dict(self.options or {})}

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts)


def bind(signature: inspect.Signature, name: str, args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> inspect.BoundArguments:
    """``signature.bind`` with Python's own message for a bad call, naming the function, and the closest
    parameter when a keyword is misspelt: ``score() got an unexpected keyword argument 'judge_base_urll'
    (did you mean 'base_url'?)``."""
    try:
        return signature.bind(*args, **kwargs)
    except TypeError as exc:
        unknown = [k for k in kwargs if k not in signature.parameters]
        close = difflib.get_close_matches(unknown[0], list(signature.parameters), n=1, cutoff=0.6) if unknown else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(f"{name}() {exc}{hint}") from None


SETTINGS_DOC = "Judge settings (``alignbench.JudgeSettings``: give ``settings=``, any of them by name, or both; a name wins)"


def takes_settings(which: Literal["all", "judge", "call"] = "all", *,
                   omit: Collection[str] = ()) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Let a function that takes ``settings: JudgeSettings`` (keyword-only) also take each setting by name.

    Its signature (``help()``, ``inspect.signature``, Jupyter) shows ``settings`` and then every setting of
    ``which`` part (but ``omit``) with its default; its docstring gains one line per setting. A call binds
    against that signature, so a name that is neither a parameter nor a setting is the ``TypeError`` Python
    raises for any function; the settings given by name go over ``settings=`` (or the defaults), and the
    function receives one validated ``JudgeSettings``. ``fn.settings_of(*args, **kwargs)`` is that object
    without the call."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        names = [n for n in JudgeSettings.part(which) if n not in omit]
        inner = inspect.signature(fn)
        own = inner.parameters.get("settings")
        if own is None or own.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{fn.__qualname__} must take a keyword-only `settings` to take the judge settings")
        clash = sorted(set(names) & set(inner.parameters))
        if clash:
            raise TypeError(f"{fn.__qualname__}: {', '.join(clash)} is both a parameter and a judge setting")
        fields, raw = JudgeSettings.model_fields, JudgeSettings.__annotations__
        params: list[inspect.Parameter] = []
        for p in inner.parameters.values():
            if p.name != "settings":
                params.append(p)
                continue
            params.append(p.replace(default=None, annotation="JudgeSettings | None"))
            params.extend(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=fields[n].default,
                                            annotation=raw[n]) for n in names)
        public = inner.replace(parameters=params)

        def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
            bound = bind(public, fn.__name__, args, kwargs)  # an unknown keyword: TypeError naming it
            given = {n: bound.arguments.pop(n) for n in names if n in bound.arguments}
            bound.arguments["settings"] = JudgeSettings.build(bound.arguments.pop("settings", None), **given)
            return bound

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                bound = resolve(args, kwargs)
                return await fn(*bound.args, **bound.kwargs)
        else:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                bound = resolve(args, kwargs)
                return fn(*bound.args, **bound.kwargs)

        lines = [f"    {n}: {fields[n].description}" for n in names]
        wrapper.__signature__ = public  # type: ignore[attr-defined]
        wrapper.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\n{SETTINGS_DOC}:\n" + "\n".join(lines)
        wrapper.settings_of = lambda *args, **kwargs: resolve(args, kwargs).arguments["settings"]  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


__all__ = ["JudgeSettings", "takes_settings"]
