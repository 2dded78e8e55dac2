"""Judges behind an OpenAI-compatible chat API: OpenAI itself, vLLM, SGLang, llama.cpp, gateways.

One ``AsyncOpenAI`` client per server. Several servers serving the same judge are one judge
(``judges.pool``): each server has its own concurrency limit, requests for the same question prefer
the same server (to keep its prefix cache warm), and a server that fails is rested while the others
carry on. The SDK's own retries are off; the runner retries, so a retry lands on whichever server is
healthy.
"""

from __future__ import annotations

import asyncio

import httpx
import openai

from alignbench.judges.base import ModelCallError, parse_retry_after
from alignbench.judges.pool import Endpoint, EndpointPool, PooledClient, refused_feature
from alignbench.redact import redact_url
from alignbench.types import ModelReply, ModelRequest

_TOO_LONG_MARKERS = ("maximum context length", "context length", "too long", "context_length_exceeded",
                     "prompt is too long", "exceeds the model")


class OpenAIChat(PooledClient):
    """A judge model reached through the OpenAI chat-completions API."""

    backend = "openai"

    def __init__(self, name: str, model: str, base_urls: list[str | None], api_key: str | None,
                 timeout: float = 120.0, concurrency: int = 16, extra_body: dict | None = None,
                 structured_via: str = "json_schema") -> None:
        self.name = name
        self.model = model
        self.structured_via = structured_via
        self.deadline = timeout  # the engine bounds each whole attempt by it
        self.extra_body = extra_body or {}
        key = api_key or "EMPTY"  # local servers (vLLM, llama.cpp) accept any key
        self.pool = EndpointPool([
            Endpoint(url=str(redact_url(url) or "https://api.openai.com/v1"), limit=concurrency,
                     client=openai.AsyncOpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=0))
            for url in base_urls
        ])

    async def check(self) -> list[str]:
        """The servers that do not answer at all (an HTTP error still counts as answering). Also
        records which models each server says it serves (``served``), so a judge id the server does
        not serve, or a pool of servers serving different models, is caught before judging."""
        self.served: dict[str, list[str]] = {}

        async def probe(ep: Endpoint) -> str | None:
            try:
                listed = await ep.client.with_options(timeout=5.0).models.list()
            except (openai.APIConnectionError, openai.APITimeoutError):
                return ep.url
            except (openai.APIError, ValueError, TypeError):
                return None
            ids = [m.id for m in getattr(listed, "data", None) or [] if isinstance(getattr(m, "id", None), str)]
            if ids:
                self.served[ep.url] = ids
            slots = await _advertised_slots(ep)
            if slots:  # never more in flight than the server runs at once: the rest would queue and time out
                ep.limit = min(ep.limit, slots)
            return None
        results = await asyncio.gather(*(probe(e) for e in self.pool.endpoints))
        return [r for r in results if r]

    async def _send(self, endpoint: Endpoint, request: ModelRequest) -> ModelReply:
        return await self._call(endpoint, request)

    async def _call(self, endpoint: Endpoint, request: ModelRequest) -> ModelReply:
        """One call; a protocol feature the server refuses (HTTP 400 naming response_format, guided
        decoding or logprobs) is dropped and the request sent again at once, once per feature: the
        verdict is then read from text, and the reply says why."""
        sent = self.features(request)
        while True:
            try:
                return self.annotate(await self._send_once(endpoint, request, sent), request, sent)
            except _Refused as refused:
                self.unsupported.setdefault(refused.feature, refused.reason)
                sent = sent - {refused.feature}

    async def _send_once(self, endpoint: Endpoint, request: ModelRequest, sent: set[str]) -> ModelReply:
        dec = request.decoding
        kwargs: dict = {"model": self.model, "messages": list(request.messages),
                        "temperature": dec.temperature, "max_tokens": dec.max_tokens}
        if dec.top_p is not None:
            kwargs["top_p"] = dec.top_p
        if dec.seed is not None:
            kwargs["seed"] = dec.seed
        extra = dict(self.extra_body)
        if "structured" in sent:
            schema = request.response_schema
            if self.structured_via == "guided_json":  # vLLM's guided decoding
                extra["guided_json"] = schema
            elif self.structured_via == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            else:
                kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "alignbench_verdict", "schema": schema, "strict": True}}
        if "logprobs" in sent:
            kwargs.update(logprobs=True, top_logprobs=request.logprobs)
        if extra:
            kwargs["extra_body"] = extra
        url = endpoint.url
        try:
            resp = await endpoint.client.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise ModelCallError(f"429 rate limited by {url}", retryable=True, endpoint=url, overload=True,
                                 retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
        except openai.APITimeoutError:
            raise ModelCallError(f"timed out waiting for {url}", retryable=True, endpoint=url, overload=True) from None
        except openai.APIConnectionError as exc:
            raise ModelCallError(f"cannot connect to {url}: {exc.__cause__ or exc}", retryable=True,
                                 endpoint=url) from None
        except openai.APIStatusError as exc:
            message = _error_message(exc)
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise ModelCallError(f"{exc.status_code} from {url}: {message}", retryable=True, endpoint=url,
                                     overload=exc.status_code == 503, retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
            if exc.status_code in (400, 413, 422) and any(m in message.lower() for m in _TOO_LONG_MARKERS):
                raise ModelCallError(f"prompt too long for the judge: {message}", retryable=False,
                                     too_long=True, endpoint=url) from None
            if feature := refused_feature(exc.status_code, message, sent):
                raise _Refused(feature, f"{exc.status_code} from {url}: {message}"[:300]) from None
            raise ModelCallError(f"{exc.status_code} from {url}: {message}", retryable=False, endpoint=url,
                                 fatal=exc.status_code in (401, 403, 404)) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise ModelCallError(f"malformed reply from {url}: {exc}", retryable=True, endpoint=url) from None
        return self.reply_from(resp, url)

    async def aclose(self) -> None:
        for ep in self.pool.endpoints:
            await ep.client.close()


class _Refused(Exception):
    """The server refused a protocol feature of the request (not an error of the call)."""

    def __init__(self, feature: str, reason: str) -> None:
        super().__init__(reason)
        self.feature, self.reason = feature, reason


def build(config, api_key: str | None) -> OpenAIChat:  # noqa: ANN001 - a ModelConfig
    """The registry's factory (see ``judges/presets.yaml``)."""
    return OpenAIChat(config.name, config.model, config.base_url, api_key, timeout=config.timeout,
                       concurrency=config.concurrency, extra_body=config.extra_body, structured_via=config.via)


__all__ = ["Endpoint", "EndpointPool", "OpenAIChat", "build"]


async def _advertised_slots(ep: Endpoint) -> int | None:
    """The parallel slots a server says it has: llama.cpp's ``/props`` (``total_slots``), SGLang's
    ``/get_server_info`` (``max_running_requests``). None when it does not say (vLLM, OpenAI)."""
    root = str(ep.client.base_url).rstrip("/").removesuffix("/v1")
    for path, key in (("/props", "total_slots"), ("/get_server_info", "max_running_requests")):
        try:
            resp = await ep.client.get(root + path, cast_to=httpx.Response, options={"timeout": 3.0})
            value = resp.json().get(key) if resp.status_code == 200 else None
        except (openai.APIError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(exc.message)

