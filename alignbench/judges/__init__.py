"""Judge presets and the backend registry.

A preset (``judges/presets.yaml``) names a backend, a model id, where it is served, how it is
decoded and which rubric renders its prompts. ``resolve_judge`` turns a ``--judge`` value plus
command-line overrides into a ``JudgeConfig``; ``make_judge`` builds the backend from it. Backends
register a factory by name and import their SDK lazily, so an optional dependency only matters to
the people who use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from alignbench.judges.base import Judge, JudgeCallError
from alignbench.types import Decoding

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


class JudgeConfigError(ValueError):
    """An unknown preset, a missing key or package: the message says what to do."""


class JudgeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    backend: str
    model: str
    base_url: list[str | None] = [None]
    api_key_env: str | None = None
    key_required: bool = True
    rubric: str = "alignbench"
    system_role: bool = True
    temperature: float = 0.0
    max_tokens: int = 2048
    top_p: float | None = None
    timeout: float = 120.0
    concurrency: int = 16
    extra_body: dict[str, Any] = {}
    serve_hint: str | None = None
    options: dict[str, Any] = {}  # backend-specific settings (device, batch size, …)

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

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def public(self) -> dict[str, Any]:
        """What goes into summaries and reports: everything but secrets (keys are never held here)."""
        return {"name": self.name, "backend": self.backend, "model": self.model,
                "base_url": [u for u in self.base_url if u], "rubric": self.rubric,
                "temperature": self.temperature, "max_tokens": self.max_tokens}


@cache
def load_presets(path: Path = PRESETS_FILE) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {name: {"name": name, **spec} for name, spec in data.items()}


def resolve_judge(judge: str, **overrides: Any) -> JudgeConfig:
    """A preset name, or ``BACKEND:MODEL`` (e.g. ``openai:qwen2.5-72b-instruct``), plus overrides."""
    presets = load_presets()
    if judge in presets:
        spec = dict(presets[judge])
    elif ":" in judge and judge.split(":", 1)[0] in BACKENDS:
        backend, model = judge.split(":", 1)
        spec = {"name": judge, "backend": backend, "model": model,
                "api_key_env": {"openai": "OPENAI_API_KEY", "zhipuai": "ZHIPUAI_API_KEY"}.get(backend)}
    else:
        raise JudgeConfigError(
            f"unknown judge {judge!r}. Presets: {', '.join(sorted(presets))}; "
            f"or BACKEND:MODEL with backend one of {', '.join(sorted(BACKENDS))} (e.g. openai:gpt-4o)")
    options = overrides.pop("options", None) or {}  # merged key by key: a preset's options survive
    spec.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if options:
        spec["options"] = {**spec.get("options", {}), **{k: v for k, v in options.items() if v is not None}}
    return JudgeConfig(**spec)


BackendFactory = Callable[[JudgeConfig], Judge]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    def decorator(factory: BackendFactory) -> BackendFactory:
        BACKENDS[name] = factory
        return factory
    return decorator


@register_backend("openai")
def _openai(config: JudgeConfig) -> Judge:
    from alignbench.judges.openai_api import OpenAIJudge

    key = config.api_key()
    needs_key = config.key_required and not any(config.base_url) and not os.environ.get("OPENAI_BASE_URL")
    if needs_key and not key:
        raise JudgeConfigError(
            f"judge {config.name} calls the OpenAI API but ${config.api_key_env} is not set; "
            "export it, or point --judge-base-url at an OpenAI-compatible server")
    return OpenAIJudge(config.name, config.model, config.base_url, key, timeout=config.timeout,
                       concurrency=config.concurrency, extra_body=config.extra_body)


# Packages each backend imports (checked by `alignbench judges` without importing them).
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {"openai": ("openai",), "zhipuai": ("zhipuai",),
                                                "hf": ("torch", "transformers")}


@register_backend("zhipuai")
def _zhipuai(config: JudgeConfig) -> Judge:
    from alignbench.judges.zhipuai_api import ZhipuAIJudge

    key = config.api_key()
    needs_key = config.key_required and not any(config.base_url) and not os.environ.get("ZHIPUAI_BASE_URL")
    if needs_key and not key:
        raise JudgeConfigError(
            f"judge {config.name} calls the ZhipuAI API but ${config.api_key_env or 'ZHIPUAI_API_KEY'} is not set; "
            "export it (from open.bigmodel.cn), or point --judge-base-url at a GLM-compatible server")
    return ZhipuAIJudge(config.name, config.model, config.base_url, key, timeout=config.timeout,
                        concurrency=config.concurrency, extra_body=config.extra_body)


@register_backend("hf")
def _hf(config: JudgeConfig) -> Judge:
    from alignbench.judges.local import LocalJudge, LocalJudgeError

    try:
        return LocalJudge.from_options(config.name, config.model, config.options)
    except LocalJudgeError as exc:
        raise JudgeConfigError(str(exc)) from None


def make_judge(config: JudgeConfig) -> Judge:
    factory = BACKENDS.get(config.backend)
    if factory is None:
        raise JudgeConfigError(f"judge {config.name}: unknown backend {config.backend!r}")
    return factory(config)


__all__ = ["BACKENDS", "BACKEND_PACKAGES", "Judge", "JudgeCallError", "JudgeConfig", "JudgeConfigError",
           "load_presets", "make_judge", "register_backend", "resolve_judge"]
