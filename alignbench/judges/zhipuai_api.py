"""GLM judges (glm-4, glm-4-plus, glm-4-flash …) through ZhipuAI's official ``zhipuai`` SDK.

The SDK is synchronous. Each call runs in a thread of a pool sized to the number of requests allowed
in flight, so ``--concurrency`` calls really are in flight at once (``asyncio.to_thread`` would share
the default executor, a handful of threads on a small machine). The HTTP connection pool of each
client is sized the same way, or the SDK's default of 50 connections would queue requests silently.

Like every backend it never retries: the SDK's retries are off (``max_retries=0``) and its errors
are mapped to ``ModelCallError`` so that the runner applies one retry policy to every judge.
Several base URLs (e.g. a gateway per region) share one ``EndpointPool``.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import zhipuai
from zhipuai.core import _errors as zerr
from zhipuai.types.chat.chat_completion import Completion

from alignbench import safejson
from alignbench.judges.base import ModelCallError, parse_retry_after, refused_connection
from alignbench.judges.pool import (
    DEFAULT_MAX_REPLY_BYTES,
    Endpoint,
    EndpointPool,
    FeatureRefused,
    PooledClient,
    ReplyTooLarge,
    bounded_transport,
    refused_feature,
)
from alignbench.redact import redact_url
from alignbench.types import ModelReply, ModelRequest

DEFAULT_BASE_URL = "https://open.bigmodel.cn/api/paas/v4"

# ZhipuAI business error codes (in the JSON body of a 400/429) that need their own handling.
_TOO_LONG_CODES = {"1261"}  # prompt longer than the model's context
_FATAL_CODES = {"1211", "1113", "1000", "1001", "1002", "1003", "1004"}  # unknown model, no balance, auth
_TOO_LONG_MARKERS = ("超长", "too long", "context length", "maximum context", "exceeds the model")


class ZhipuAIChat(PooledClient):
    """A GLM model judged through ``zhipuai.ZhipuAI().chat.completions.create``."""

    backend = "zhipuai"

    def __init__(self, name: str, model: str, base_urls: list[str | None], api_key: str | None,
                 timeout: float = 120.0, concurrency: int = 16, extra_body: dict[str, Any] | None = None,
                 structured_via: str = "json_object", max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> None:
        self.name = name
        self.model = model
        self.structured_via = structured_via
        self.deadline = timeout  # the engine bounds each whole attempt by it
        self.extra_body = extra_body or {}
        key = api_key or "EMPTY"  # a self-hosted GLM-compatible gateway may not check keys
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        endpoints = []
        for url in base_urls:
            url = url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL  # as the SDK would choose
            # The SDK is synchronous and runs in worker threads, which asyncio cannot cancel: the transport
            # itself ends a reply at the deadline and at max_reply_bytes (else a server answering one byte at
            # a time would hold a thread, and the process at exit, long after --timeout).
            http = httpx.Client(timeout=timeout, transport=bounded_transport(
                httpx, max_bytes=max_reply_bytes, deadline=timeout, sync=True, limits=limits))
            client = zhipuai.ZhipuAI(api_key=key, base_url=url, timeout=timeout, max_retries=0, http_client=http)
            endpoints.append(Endpoint(url=redact_url(url) or url, limit=concurrency, client=client))
        self.pool = EndpointPool(endpoints)
        self._executor = ThreadPoolExecutor(max_workers=self.pool.capacity, thread_name_prefix="zhipuai")
        self._probe = httpx.Client(timeout=min(5.0, timeout), transport=bounded_transport(
            httpx, max_bytes=65536, deadline=min(5.0, timeout), sync=True))

    async def check(self) -> list[str]:
        """The servers that do not answer at all (any HTTP status, even 404, counts as answering)."""
        def probe(url: str) -> str | None:
            try:  # bounded end to end: a server answering this GET one byte at a time is answering
                self._probe.get(url)
            except httpx.ConnectError:
                return url
            except (httpx.HTTPError, ReplyTooLarge):
                pass
            return None
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(self._executor, probe, e.url)
                                         for e in self.pool.endpoints))
        return [r for r in results if r]

    async def _send_once(self, endpoint: Endpoint, request: ModelRequest, sent: set[str]) -> ModelReply:
        # the SDK is synchronous: run it on the judge's own thread pool, sized to its concurrency. Structured
        # output goes as GLM's JSON mode (``response_format={"type": "json_object"}``; the prompt describes it)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(self._call_once, endpoint, request, sent))

    def sendable(self, request: ModelRequest) -> set[str]:
        """The protocol features to put on ``request`` now. GLM returns no token log-probabilities, so they
        are never asked (``--score-from logprobs`` falls back to the verdicts); the batch path asks the same
        method, so a batch line carries what an online call would."""
        return self.features(request) - {"logprobs"}

    def kwargs_for(self, request: ModelRequest, sent: set[str]) -> dict[str, Any]:
        """This judge's ``chat.completions.create`` keyword arguments for ``request`` (see ``chat_kwargs``)."""
        return chat_kwargs(request, self.model, extra_body=self.extra_body, structured_via=self.structured_via,
                           sent=sent)

    def body_for(self, request: ModelRequest, sent: set[str]) -> dict[str, Any]:
        """The JSON body the SDK would post for ``request``: a batch line's ``body``."""
        return request_body(self.kwargs_for(request, sent))

    def read_body(self, body: dict[str, Any], url: str) -> ModelReply:
        """A reply from a chat completion that arrived as JSON (a batch output line), read by the same code
        as an online reply: the SDK's own loose construction of its response type, then ``reply_from``."""
        return self.reply_from(Completion.construct(**body), url)

    def reply_from(self, resp: Any, url: str) -> ModelReply:
        """The shared reader, plus the cached prompt tokens: the zhipuai SDK keeps ``usage.prompt_tokens_details``
        as a plain dict, which the shared reader (attribute access) would count as none, so GLM's context
        cache would be billed at the full price in every summary."""
        reply = super().reply_from(resp, url)
        details = getattr(getattr(resp, "usage", None), "prompt_tokens_details", None)
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if reply.usage.cached_prompt_tokens or not isinstance(cached, int) or isinstance(cached, bool) or cached <= 0:
            return reply
        return reply.model_copy(update={"usage": reply.usage.model_copy(update={"cached_prompt_tokens": cached})})

    def _call_once(self, endpoint: Endpoint, request: ModelRequest, sent: set[str]) -> ModelReply:
        kwargs = self.kwargs_for(request, sent)
        url = endpoint.url
        try:
            resp = endpoint.client.chat.completions.create(**kwargs)
        except zerr.APIReachLimitError as exc:
            code, message = _error_detail(exc)
            if code in _FATAL_CODES:
                raise ModelCallError(f"429 from {url}: {message}", retryable=False, fatal=True,
                                     endpoint=url) from None
            raise ModelCallError(f"429 rate limited by {url}: {message}", retryable=True, endpoint=url, overload=True,
                                 retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
        except zerr.APIAuthenticationError as exc:
            raise ModelCallError(f"401 from {url}: {_error_detail(exc)[1]} (check $ZHIPUAI_API_KEY)",
                                 retryable=False, fatal=True, endpoint=url) from None
        except zerr.APIStatusError as exc:  # 400, 500, 503 and every other status
            status = exc.status_code
            code, message = _error_detail(exc)
            if feature := refused_feature(status, message, sent):  # a 500 naming response_format too
                raise FeatureRefused(feature, f"{status} from {url}: {message}"[:300]) from None
            if status >= 500 or status in (408, 409):
                raise ModelCallError(f"{status} from {url}: {message}", retryable=True, endpoint=url,
                                     overload=status == 503, retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
            if code in _TOO_LONG_CODES or any(m in message.lower() for m in _TOO_LONG_MARKERS):
                raise ModelCallError(f"prompt too long for the judge: {message}", retryable=False,
                                     too_long=True, endpoint=url) from None
            raise ModelCallError(f"{status} from {url}: {message}", retryable=False, endpoint=url,
                                 fatal=status in (403, 404) or code in _FATAL_CODES) from None
        except zerr.APITimeoutError:  # a subclass of APIConnectionError: catch it first
            raise ModelCallError(f"timed out waiting for {url}", retryable=True, endpoint=url, overload=True) from None
        except zerr.APIConnectionError as exc:
            if isinstance(exc.__cause__, ReplyTooLarge):
                raise ModelCallError(f"{exc.__cause__} (from {url})", retryable=False, endpoint=url) from None
            raise ModelCallError(f"cannot connect to {url}: {exc.__cause__ or exc}", retryable=True,
                                 endpoint=url, unreachable=refused_connection(exc)) from None
        except ReplyTooLarge as exc:
            raise ModelCallError(f"{exc} (from {url})", retryable=False, endpoint=url) from None
        except (zerr.APIResponseError, ValueError) as exc:  # malformed body: json.JSONDecodeError is a ValueError
            raise ModelCallError(f"malformed reply from {url}: {type(exc).__name__}", retryable=True,
                                 endpoint=url) from None
        return self.reply_from(resp, url)

    async def aclose(self) -> None:
        for ep in self.pool.endpoints:
            ep.client.close()
        self._probe.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _error_detail(exc: zerr.APIStatusError) -> tuple[str, str]:
    """(business code, message) from a ZhipuAI error body ``{"error": {"code", "message"}}``.

    The SDK has read the body already (its own message embeds it), so ``.text`` is safe here.
    """
    text = exc.response.text.strip()
    try:
        body = safejson.loads(text)
    except ValueError:
        return "", text[:300]
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("code") or ""), str(err.get("message") or text)[:300]
    return "", text[:300]


build = ZhipuAIChat.from_config  # the registry's factory (see ``judges/presets.yaml``)


def chat_kwargs(request: ModelRequest, model: str, *, extra_body: dict[str, Any] | None = None,
                structured_via: str = "json_object", sent: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The keyword arguments of the zhipuai SDK's ``chat.completions.create`` for ``request``. The one place
    a GLM request is made: the online call passes them to the SDK and a batch line's body is
    ``request_body`` of them, so the two cannot drift apart.

    Temperature and top_p are already in the open interval (0, 1) GLM accepts, rewritten as the SDK
    rewrites them (temperature 0 is greedy decoding: ``do_sample=False``); the SDK then finds nothing to
    change, so the online body and the batch body are the same dict by construction, not by imitation."""
    dec = request.decoding
    # The SDK rewrites message contents in place: give it copies, never the request's dicts.
    kwargs: dict[str, Any] = {"model": model, "messages": [dict(m) for m in request.messages],
                              "temperature": dec.temperature, "max_tokens": dec.max_tokens}
    if dec.temperature <= 0:  # GLM rejects temperature 0 itself
        kwargs.update(do_sample=False, temperature=0.01)
    elif dec.temperature >= 1:
        kwargs["temperature"] = 0.99
    if dec.top_p is not None:
        kwargs["top_p"] = 0.99 if dec.top_p >= 1 else 0.01 if dec.top_p <= 0 else dec.top_p
    if dec.seed is not None:
        kwargs["seed"] = dec.seed
    if extra_body:
        kwargs["extra_body"] = dict(extra_body)
    if "structured" in sent and request.response_schema is not None:
        kwargs["response_format"] = {"type": "json_object"} if structured_via != "json_schema" else {
            "type": "json_schema", "json_schema": {"name": "alignbench_verdict", "schema": request.response_schema}}
    return kwargs


def request_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON body the zhipuai SDK posts for ``kwargs`` (``extra_body`` merged over the top level; the
    ``null`` fields the SDK always adds are left out, which the API reads the same)."""
    body = {k: v for k, v in kwargs.items() if k != "extra_body"}
    body.update(kwargs.get("extra_body") or {})
    return body


__all__ = ["ZhipuAIChat", "build", "chat_kwargs", "request_body"]
