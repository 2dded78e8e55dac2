"""Judge presets and the backend registry.

A preset (``judges/presets.yaml``) names a backend, a model id, where it is served, how it is
decoded and which rubric renders its prompts. ``resolve_model`` turns a ``--judge`` value plus
command-line overrides into a ``ModelConfig``; ``make_client`` builds the backend's client from it.
Backends are registered in the same file (module, packages, key variable, default server), and a
backend's module is imported only when a client is built, so an optional SDK matters only to the
people who use it: adding a backend is one module plus its entry there.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alignbench.judges.base import ModelCallError, ModelClient
from alignbench.types import Decoding

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster, same result

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


STRUCTURED_VIA = ("json_schema", "guided_json", "json_object", "constrained")


def known_via(value: str | None) -> str | None:
    """A ``structured_via`` checked (the judge's and the settings' field validator)."""
    if value is not None and value not in STRUCTURED_VIA:
        raise ValueError(f"structured_via must be one of {', '.join(STRUCTURED_VIA)}, not {value!r}")
    return value


DEFAULT_VIA = {"openai": "json_schema", "zhipuai": "json_object", "hf": "constrained"}
PROMPT_FORMATS = ("chat", "completion")
# Backends that can send a bare text completion (``prompt_format: completion``), and the structured-output
# ways that work without a chat message: vLLM's guided_json rides on /v1/completions too, the transformers
# constraint does not care; response_format (json_schema, json_object) is a chat-completions parameter.
COMPLETION_BACKENDS = {"openai": ("guided_json",), "hf": ("constrained",)}
TOP_LOGPROBS = 20


DEFAULT_CONCURRENCY = 16  # requests in flight per server when none is stated


class ModelConfigError(ValueError):
    """An unknown preset, a missing key or package: the message says what to do."""


class ModelConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    backend: str
    model: str
    base_url: list[str | None] = [None]
    api_key_env: str | None = None
    api_key_explicit: bool = False  # named on the command line: sent to whatever server is named too
    key_required: bool = True
    rubric: str = "alignbench"
    system_role: bool = True
    temperature: float = 0.0
    max_tokens: int = 2048
    top_p: float | None = None
    timeout: float = 120.0
    max_reply_bytes: int = 8_000_000  # a reply is read up to this size (judges.pool.DEFAULT_MAX_REPLY_BYTES)
    # requests in flight per server; None: DEFAULT_CONCURRENCY, and the engine may lower it to what a server
    # that does not say its parallelism can run (learnt from its latency); a number is the user's statement
    concurrency: int | None = Field(None, ge=1)
    extra_body: dict[str, Any] = {}
    serve_hint: str | None = None
    options: dict[str, Any] = {}  # backend-specific settings (device, batch size, …)
    # Judge protocols (docs/protocols.md). ``structured``: ask for the verdict as JSON; ``structured_via``:
    # how (json_schema, guided_json, json_object, constrained; None: the backend's default).
    # ``score_from``: logprobs asks for token log-probabilities and scores summaries by the expected score.
    structured: bool = False
    structured_via: str | None = None
    score_from: str = "verdict"
    # How the prompt is sent: ``chat`` (messages through the server's chat template) or ``completion`` (the
    # messages' text as one bare prompt: /v1/completions, or the tokenizer without a chat template), as a judge
    # fine-tuned on a raw input format was run by its authors (CritiqueLLM). docs/judges.md.
    prompt_format: str = "chat"

    _known_via = field_validator("structured_via")(known_via)

    @field_validator("prompt_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be chat or completion, not {value!r}")
        return value

    @field_validator("score_from")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in ("verdict", "logprobs"):
            raise ValueError(f"score_from must be verdict or logprobs, not {value!r}")
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> list[str | None]:
        if value is None:
            return [None]
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()] or [None]
        return list(value) or [None]

    @property
    def decoding(self) -> Decoding:
        return Decoding(temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p)

    @property
    def logprobs(self) -> int | None:
        """Alternatives per output token to ask for (OpenAI's maximum), when summaries score from them."""
        return TOP_LOGPROBS if self.score_from == "logprobs" else None

    @property
    def in_flight(self) -> int:
        """Requests in flight per server: the stated ``concurrency``, else the default."""
        return self.concurrency or DEFAULT_CONCURRENCY

    @property
    def completion(self) -> bool:
        """Whether requests go out as bare text completions (``prompt_format: completion``)."""
        return self.prompt_format == "completion"

    @property
    def via(self) -> str:
        """How this judge's backend asks for structured output (``structured_via`` or the backend's way)."""
        return self.structured_via or DEFAULT_VIA.get(self.backend, "json_schema")

    def api_key(self) -> str | None:
        """The key from ``api_key_env``; the one place a key is read, so it is also marked for redaction."""
        from alignbench.redact import remember

        return remember(os.environ.get(self.api_key_env)) if self.api_key_env else None

    def public(self) -> dict[str, Any]:
        """What goes into summaries and reports: everything but secrets (keys are never held here)."""
        from alignbench.redact import redact_url

        out = {"name": self.name, "backend": self.backend, "model": self.model,
               "base_url": [redact_url(u) for u in self.base_url if u], "rubric": self.rubric,
               "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.structured:  # only when on: manifests of plain runs stay as they were
            out["structured"] = self.via
        if self.score_from != "verdict":
            out["score_from"] = self.score_from
        if self.completion:  # only when on: manifests of chat runs stay as they were
            out["prompt_format"] = self.prompt_format
        return out


@dataclass(frozen=True)
class Backend:
    """A registered backend: how to build its client and what it needs from this machine."""

    name: str
    module: str  # defines ``build(config, api_key) -> ModelClient``; imported only when used
    packages: tuple[str, ...] = ()
    key_env: str | None = None
    base_url_env: str | None = None
    default_url: str | None = None
    install: str | None = None
    lazy: bool = False  # identity is backend:model: the client (and its SDK) is built only when a call is due
    # its client can ask a server of the user's own to count prompt tokens (``count_prompts``: vLLM's and
    # llama.cpp's tokenizer endpoints); estimates ask it only for a self-hosted judge (``self_hosted``)
    tokenizer_endpoint: bool = False

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]


@cache
def _registry(path: Path = PRESETS_FILE) -> tuple[dict[str, Backend], dict[str, dict[str, Any]]]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    backends = {name: Backend(name=name, **{**spec, "packages": tuple(spec.get("packages", ()))})
                for name, spec in (data.get("backends") or {}).items()}
    presets = {name: {"name": name, **spec} for name, spec in (data.get("presets") or {}).items()}
    return backends, presets


def load_presets() -> dict[str, dict[str, Any]]:
    return _registry()[1]


def backends() -> dict[str, Backend]:
    return _registry()[0]


def resolve_model(judge: str, **overrides: Any) -> ModelConfig:
    """A preset name, or ``BACKEND:MODEL`` (e.g. ``openai:qwen2.5-72b-instruct``), plus overrides."""
    presets, known = load_presets(), backends()
    if judge in presets:
        spec = dict(presets[judge])
    elif ":" in judge and judge.split(":", 1)[0] in known:
        backend, model = judge.split(":", 1)
        if not model.strip():
            raise ModelConfigError(f"--judge {judge!r} names no model: write {backend}:MODEL (e.g. {backend}:gpt-4o)")
        spec = {"name": judge, "backend": backend, "model": model, "api_key_env": known[backend].key_env}
    else:
        raise ModelConfigError(
            f"unknown judge {judge!r}. Presets: {', '.join(sorted(presets))}; "
            f"or BACKEND:MODEL with backend one of {', '.join(sorted(known))} (e.g. openai:gpt-4o)")
    options = overrides.pop("options", None) or {}  # merged key by key: a preset's options survive
    spec.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if options:
        spec["options"] = {**spec.get("options", {}), **{k: v for k, v in options.items() if v is not None}}
    config = ModelConfig(**spec)
    from alignbench.redact import url_problem

    for url in config.base_url:  # one line, before any call; never a traceback quoting the password
        problem = url_problem(url) if url else None
        if problem:
            raise ModelConfigError(f"{config.name}: the server URL {problem}")
    return check_prompt_format(config)


def check_prompt_format(config: ModelConfig) -> ModelConfig:
    """``config`` itself, or one clear error, before any call, when it asks for a text completion its backend
    cannot send (ZhipuAI has no completions API) or structured output by a way that needs chat messages."""
    if not config.completion:
        return config
    ways = COMPLETION_BACKENDS.get(config.backend)
    if ways is None:
        raise ModelConfigError(f"{config.name}: prompt_format completion (a bare text prompt) is not available on "
                               f"the {config.backend} backend; use prompt_format chat, or a backend among "
                               f"{', '.join(COMPLETION_BACKENDS)}")
    if config.structured and config.via not in ways:
        raise ModelConfigError(f"{config.name}: structured output by {config.via} is a chat-completions parameter; "
                               f"with prompt_format completion use structured_via {' or '.join(ways)}, or "
                               "--no-structured")
    return config


def judge_config(judge: str, *, judge_model: str | None = None, base_url: Any = None, rubric: str | None = None,
                 protocol: str | None = None, **overrides: Any) -> ModelConfig:
    """``resolve_model`` with the command-line shapes (URLs repeated or comma-separated) and the rubric
    switched to ``protocol``'s variant, so a protocol means the same prompts in every command."""
    from alignbench.rubrics import rubric_for_protocol

    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    urls = [u.strip() for raw in urls for u in raw.split(",") if u.strip()]
    config = resolve_model(judge, model=judge_model, base_url=urls or None, rubric=rubric, **overrides)
    if protocol:
        config = config.model_copy(update={"rubric": rubric_for_protocol(protocol, base=config.rubric)})
    return config


def key_to_send(config: ModelConfig) -> str | None:
    """The key requests to ``config``'s servers carry, online or through a batch API: a provider's key goes
    only to the provider's own host (a local or third-party server would receive it over plain HTTP);
    any other server gets the key named for it with ``--api-key-env``, or none."""
    key = config.api_key()
    if not key or config.api_key_explicit:
        return key
    return None if self_hosted(config) else key


def self_hosted(config: ModelConfig) -> bool:
    """Whether any of ``config``'s servers is not its backend's provider (``--judge-base-url`` or the backend's
    base-URL variable pointing elsewhere): a server of the user's own, which gets no provider key and whose
    tokenizer endpoint an estimate may ask (``cost.server_counter``)."""
    from alignbench.redact import same_host

    backend = backends().get(config.backend)
    default = backend.default_url if backend else None
    moved = os.environ.get(backend.base_url_env) if backend and backend.base_url_env else None
    servers = [u for u in config.base_url if u] or [moved or default]
    return not all(same_host(u, default) for u in servers)


def make_client(config: ModelConfig, lazy: bool = True) -> ModelClient:
    """Build the client of ``config``'s backend; a missing package or key is a ModelConfigError
    saying what to do."""
    backend = backends().get(config.backend)
    if backend is None:
        raise ModelConfigError(f"{config.name}: unknown backend {config.backend!r}")
    check_prompt_format(config)
    missing = backend.missing_packages()
    if missing:
        raise ModelConfigError(f"{config.name} needs {' and '.join(missing)}: "
                               f"{backend.install or 'pip install ' + ' '.join(missing)}")
    key = key_to_send(config)
    own_server = not any(config.base_url) and not (backend.base_url_env and os.environ.get(backend.base_url_env))
    if backend.key_env and config.key_required and own_server and not key:
        raise ModelConfigError(f"{config.name} calls {backend.default_url} but ${config.api_key_env} is not set; "
                               "export it, or point --judge-base-url at a compatible server")
    client = LazyClient(config, backend, key) if backend.lazy and lazy else \
        importlib.import_module(backend.module).build(config, key)
    # The engine learns a server's parallelism from its latency only when nobody stated it: an explicit
    # --concurrency is the user's word (no slow start), and a provider's own API runs requests in parallel.
    client.learns = config.concurrency is None and not own_server
    return client


class LazyClient:
    """A backend's client built on first use, so a fully cached run never imports the SDK (openai
    alone takes longer to import than the rest of a cached re-run). For API backends whose identity is
    ``backend:model``, everything the engine asks before sending (fingerprint, capacity) is known
    without the SDK; any other attribute builds the client and is read from it."""

    def __init__(self, config: ModelConfig, backend: Backend, api_key: str | None) -> None:
        self.name = config.name
        self.model = config.model
        self.fingerprint = f"{config.backend}:{config.model}"
        self.capacity = config.in_flight * len(config.base_url)
        self.deadline = config.timeout
        self._build = lambda: importlib.import_module(backend.module).build(config, api_key)
        self._client: ModelClient | None = None
        if config.base_url and all(config.base_url):  # named servers: their URLs as a client records them
            from alignbench.redact import (
                redact_url,  # (redacted), so a cached reply's server is checked, no SDK
            )

            self.urls = [str(redact_url(u) or u) for u in config.base_url]

    def client(self) -> ModelClient:
        if self._client is None:
            self._client = self._build()
        return self._client

    def __getattr__(self, name: str) -> Any:  # urls, check, complete, pool …: the real client's
        return getattr(self.client(), name)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def make_judge(config: ModelConfig) -> ModelClient:
    """The client of ``config`` built now (its SDK imported), not on first use."""
    return make_client(config, lazy=False)

__all__ = ["Backend", "ModelCallError", "ModelConfig", "ModelConfigError", "ModelClient", "backends",
           "check_prompt_format", "judge_config", "key_to_send", "load_presets", "make_client", "make_judge", "resolve_model",
           "self_hosted"]
