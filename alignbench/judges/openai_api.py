"""Judges behind an OpenAI-compatible chat API: OpenAI itself, vLLM, SGLang, llama.cpp, gateways.

One ``AsyncOpenAI`` client per server. Several servers serving the same judge are one judge
(``judges.pool``): each server has its own concurrency limit, requests for the same question prefer
the same server (to keep its prefix cache warm), and a server that fails is rested while the others
carry on. The SDK's own retries are off; the runner retries, so a retry lands on whichever server is
healthy.
"""

from __future__ import annotations

import asyncio

import openai

from alignbench.judges.base import JudgeCallError, parse_retry_after
from alignbench.judges.pool import Endpoint, EndpointPool, PooledJudge
from alignbench.types import JudgeReply, JudgeRequest

_TOO_LONG_MARKERS = ("maximum context length", "context length", "too long", "context_length_exceeded",
                     "prompt is too long", "exceeds the model")


class OpenAIJudge(PooledJudge):
    """A judge model reached through the OpenAI chat-completions API."""

    backend = "openai"

    def __init__(self, name: str, model: str, base_urls: list[str | None], api_key: str | None,
                 timeout: float = 120.0, concurrency: int = 16, extra_body: dict | None = None) -> None:
        self.name = name
        self.model = model
        self.extra_body = extra_body or {}
        key = api_key or "EMPTY"  # local servers (vLLM, llama.cpp) accept any key
        self.pool = EndpointPool([
            Endpoint(url=str(url or "https://api.openai.com/v1"), limit=concurrency,
                     client=openai.AsyncOpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=0))
            for url in base_urls
        ])

    async def check(self) -> list[str]:
        """The servers that do not answer at all (an HTTP error still counts as answering)."""
        async def probe(ep: Endpoint) -> str | None:
            try:
                await ep.client.with_options(timeout=5.0).models.list()
            except (openai.APIConnectionError, openai.APITimeoutError):
                return ep.url
            except openai.APIError:
                return None
            return None
        results = await asyncio.gather(*(probe(e) for e in self.pool.endpoints))
        return [r for r in results if r]

    async def _send(self, endpoint: Endpoint, request: JudgeRequest) -> JudgeReply:
        return await self._call(endpoint, request)

    async def _call(self, endpoint: Endpoint, request: JudgeRequest) -> JudgeReply:
        dec = request.decoding
        kwargs: dict = {"model": self.model, "messages": list(request.messages),
                        "temperature": dec.temperature, "max_tokens": dec.max_tokens}
        if dec.top_p is not None:
            kwargs["top_p"] = dec.top_p
        if dec.seed is not None:
            kwargs["seed"] = dec.seed
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        url = endpoint.url
        try:
            resp = await endpoint.client.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise JudgeCallError(f"429 rate limited by {url}", retryable=True, endpoint=url,
                                 retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
        except openai.APITimeoutError:
            raise JudgeCallError(f"timed out waiting for {url}", retryable=True, endpoint=url) from None
        except openai.APIConnectionError as exc:
            raise JudgeCallError(f"cannot connect to {url}: {exc.__cause__ or exc}", retryable=True,
                                 endpoint=url) from None
        except openai.APIStatusError as exc:
            message = _error_message(exc)
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise JudgeCallError(f"{exc.status_code} from {url}: {message}", retryable=True, endpoint=url,
                                     retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
            if exc.status_code in (400, 413, 422) and any(m in message.lower() for m in _TOO_LONG_MARKERS):
                raise JudgeCallError(f"prompt too long for the judge: {message}", retryable=False,
                                     too_long=True, endpoint=url) from None
            raise JudgeCallError(f"{exc.status_code} from {url}: {message}", retryable=False, endpoint=url,
                                 fatal=exc.status_code in (401, 403, 404)) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise JudgeCallError(f"malformed reply from {url}: {exc}", retryable=True, endpoint=url) from None
        return self.reply_from(resp, url)

    async def aclose(self) -> None:
        for ep in self.pool.endpoints:
            await ep.client.close()


def build(config, api_key: str | None) -> OpenAIJudge:  # noqa: ANN001 - a JudgeConfig
    """The registry's factory (see ``judges/presets.yaml``)."""
    return OpenAIJudge(config.name, config.model, config.base_url, api_key, timeout=config.timeout,
                       concurrency=config.concurrency, extra_body=config.extra_body)


__all__ = ["Endpoint", "EndpointPool", "OpenAIJudge", "build"]


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(exc.message)

