"""Several servers serving one model (a judge or the model under test), seen as one: per-server concurrency, affinity, resting.

Used by every HTTP backend (OpenAI-compatible servers, ZhipuAI). Why each rule exists:

* **Per-server concurrency.** Each server has its own limit of requests in flight (``--concurrency``
  is per server), so adding a GPU server adds throughput instead of spreading the same load thinner.
* **Affinity.** Answers to one question share a long prompt prefix (rubric, question, reference). A
  request prefers the server picked by its question id, so vLLM's prefix cache on that server
  already holds the prefix; when that server is full the request goes to the least-loaded one
  rather than waiting (throughput first, cache second).
* **Resting a failing server.** A server that fails (5xx, 429, timeout, dropped connection) is
  taken out of rotation for a pause that doubles with each failed probe (capped), or for its
  Retry-After when longer, while the others carry on; the requests that were already in flight
  when it broke fail together and count as one failure. When the pause ends it is *half-open*:
  only one probe request goes there until one succeeds, so a server that is still broken costs one
  failed call per pause instead of a full batch of them. A single server is never rested (nothing
  else could take its load; the runner's backoff already spaces its retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from alignbench.judges.base import ModelCallError
from alignbench.logprobs import from_openai
from alignbench.types import ModelReply, ModelRequest, Usage


@dataclass
class Endpoint:
    """One server: its client object (whatever the backend's SDK needs) and its health."""

    url: str
    limit: int
    client: Any
    in_flight: int = 0
    failures: int = 0  # consecutive failures; 0 = healthy
    rest_until: float = 0.0
    probing: bool = False  # rested and not yet proven healthy: one request at a time
    served: int = 0
    failed: int = 0
    max_in_flight: int = 0

    def capacity_now(self, now: float) -> int:
        """How many more requests this server may take right now."""
        if self.rest_until > now:
            return 0
        limit = 1 if self.probing else self.limit
        return max(0, limit - self.in_flight)


@dataclass
class EndpointPool:
    """Hands out servers to requests; see the module docstring for the rules."""

    endpoints: list[Endpoint]
    max_rest: float = 30.0
    base_rest: float = 0.5
    _cond: asyncio.Condition | None = field(default=None, init=False, repr=False)
    _failed_on: dict[str, Endpoint] = field(default_factory=dict, init=False, repr=False)

    @property
    def cond(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    @property
    def capacity(self) -> int:
        return sum(e.limit for e in self.endpoints)

    def _pick(self, affinity: int | None, now: float, avoid: Endpoint | None = None) -> Endpoint | None:
        ready = [e for e in self.endpoints if e.capacity_now(now) > 0]
        if avoid in ready and any(e is not avoid and e.rest_until <= now for e in self.endpoints):
            ready.remove(avoid)  # a retry waits for a slot on a live server rather than meet the failed one again
        if not ready:
            return None
        if affinity is not None:
            preferred = self.endpoints[affinity % len(self.endpoints)]
            if preferred in ready:
                return preferred
        return min(ready, key=lambda e: (e.in_flight / e.limit, e.failures))

    async def acquire(self, affinity: int | None = None, key: str | None = None) -> Endpoint:
        """Wait for a slot on a server that is not resting; ``affinity`` is usually the question id.

        ``key`` names the request: a retry of a request that failed on a server goes to another one
        when another one is free (else a request could meet the same broken server's probe each time).
        """
        async with self.cond:
            avoid = self._failed_on.pop(key, None) if key else None
            while True:
                now = time.monotonic()
                chosen = self._pick(affinity, now, avoid)
                if chosen is not None:
                    chosen.in_flight += 1
                    chosen.max_in_flight = max(chosen.max_in_flight, chosen.in_flight)
                    return chosen
                resting = [e.rest_until for e in self.endpoints if e.rest_until > now]
                wait = (min(resting) - now) if resting else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.cond.wait(), timeout=wait)

    async def release(self, endpoint: Endpoint, ok: bool, retry_after: float | None = None,
                      key: str | None = None) -> None:
        """Return the slot; ``ok`` False means the server itself misbehaved (not a bad request)."""
        async with self.cond:
            endpoint.in_flight -= 1
            if not ok and key and len(self.endpoints) > 1:
                self._failed_on[key] = endpoint
            if ok:
                endpoint.failures = 0
                endpoint.probing = False
                endpoint.served += 1
            else:
                endpoint.failed += 1
                now = time.monotonic()
                # Requests that were already in flight when the server went down fail together: they
                # are one outage, not many. Only a failure outside a rest (a probe) lengthens the pause.
                if endpoint.rest_until <= now:
                    endpoint.failures += 1
                if len(self.endpoints) > 1:
                    pause = min(self.max_rest, self.base_rest * 2 ** (endpoint.failures - 1))
                    endpoint.rest_until = max(endpoint.rest_until, now + max(pause, retry_after or 0.0))
                    endpoint.probing = True
            self.cond.notify_all()

    def stats(self) -> list[dict[str, Any]]:
        """Per-server counters (for benchmarks and diagnostics; URLs only, never keys)."""
        return [{"url": e.url, "served": e.served, "failed": e.failed, "max_in_flight": e.max_in_flight,
                 "limit": e.limit} for e in self.endpoints]


# What a server says when it does not support a protocol feature a request asked for (HTTP 4xx/5xx): the
# request is sent again without it, and the reply records why (docs/protocols.md).
_FEATURE_MARKERS = {
    "structured": ("response_format", "json_schema", "json schema", "guided", "structured output", "json mode",
                   "json_object", "grammar"),
    "logprobs": ("logprob",),
}


class FeatureRefused(Exception):
    """A server refused a protocol feature of the request (structured output, logprobs): not an error of
    the call. Each HTTP backend raises it from one attempt; the request is sent again without the feature."""

    def __init__(self, feature: str, reason: str) -> None:
        super().__init__(reason)
        self.feature, self.reason = feature, reason


def refused_feature(status: int, message: str, asked: set[str]) -> str | None:
    """Which of the ``asked`` features (structured, logprobs) an error refuses, if any: any 4xx or 5xx whose
    message names the feature (llama-cpp-python answers ``response_format: json_schema`` with a 500 naming
    it; retrying that six times per request failed every judgment). Not 401/403 (the key) nor 429 (load)."""
    if status < 400 or status in (401, 403, 429):
        return None
    low = message.lower()
    return next((f for f in sorted(asked) if any(m in low for m in _FEATURE_MARKERS[f])), None)


class PooledClient:
    """What every API client spreading requests over an ``EndpointPool`` shares.

    Subclasses set ``backend``, ``model`` and ``pool`` and implement ``_send_once`` (one call to one
    server with the protocol features ``sent``); ``complete`` takes a server slot, sends, and reports the
    server's health back, so the pool can rest a failing server while the others carry on.
    """

    backend: str
    model: str
    pool: EndpointPool
    structured_via: str = "json_schema"  # how structured output is asked for (judges.STRUCTURED_VIA)

    @classmethod
    def from_config(cls, config: Any, api_key: str | None) -> Any:
        """A client of a ``ModelConfig``: each backend module's ``build`` (``judges/presets.yaml``)."""
        return cls(config.name, config.model, config.base_url, api_key, timeout=config.timeout,
                   concurrency=config.in_flight, extra_body=config.extra_body, structured_via=config.via,
                   max_reply_bytes=config.max_reply_bytes)

    @property
    def unsupported(self) -> dict[str, str]:
        """Features a server refused (structured, logprobs) -> why: later requests go without them at once."""
        if "_unsupported" not in self.__dict__:
            self.__dict__["_unsupported"] = {}
        return self.__dict__["_unsupported"]

    def features(self, request: ModelRequest) -> set[str]:
        """The protocol features ``request`` asks for that no server has refused yet."""
        asked = {"structured"} if request.response_schema is not None else set()
        asked |= {"logprobs"} if request.logprobs else set()
        return asked - set(self.unsupported)

    def annotate(self, reply: ModelReply, request: ModelRequest, sent: set[str]) -> ModelReply:
        """Record on the reply how structured output was obtained, or why it was not."""
        if request.response_schema is None:
            return reply
        if "structured" in sent:
            return reply.model_copy(update={"structured": self.structured_via})
        return reply.model_copy(update={"structured_fallback": self.unsupported.get("structured")})

    @property
    def fingerprint(self) -> str:
        return f"{self.backend}:{self.model}"

    @property
    def capacity(self) -> int:
        return self.pool.capacity

    @property
    def urls(self) -> list[str]:
        return [e.url for e in self.pool.endpoints]

    def sendable(self, request: ModelRequest) -> set[str]:
        """The protocol features to put on ``request`` now (asked for, and not refused by a server so far).
        The batch path asks the same method, so a feature refused online is not sent in a batch either."""
        return self.features(request)

    async def _send_once(self, endpoint: Endpoint, request: ModelRequest, sent: set[str]) -> ModelReply:
        raise NotImplementedError

    async def _send(self, endpoint: Endpoint, request: ModelRequest) -> ModelReply:
        """One call; a protocol feature the server refuses (an error naming response_format, guided decoding
        or logprobs: ``FeatureRefused``) is dropped and the request sent again at once, once per feature: the
        verdict is then read from text, and the reply says why."""
        sent = self.sendable(request)
        while True:
            try:
                return self.annotate(await self._send_once(endpoint, request, sent), request, sent)
            except FeatureRefused as refused:
                self.unsupported.setdefault(refused.feature, refused.reason)
                sent = sent - {refused.feature}

    def reply_from(self, resp: Any, url: str) -> ModelReply:
        """A ModelReply from an OpenAI-shaped chat completion (both SDKs return one). An empty reply is
        a transient server fault, retried like a 5xx; content in parts (the multi-part format) is
        joined; content of any other shape is a failed call with the reason, never a crash."""
        choices = getattr(resp, "choices", None)
        message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
        content = getattr(message, "content", None)
        if content is None:
            raise ModelCallError(f"reply from {url} has no message content", retryable=True, endpoint=url)
        if isinstance(content, list):
            parts = [p.get("text") if isinstance(p, dict) else getattr(p, "text", None) for p in content]
            if not parts or not all(isinstance(t, str) for t in parts):
                raise ModelCallError(f"reply from {url} has message content in parts that are not all text",
                                     retryable=False, endpoint=url)
            content = "".join(parts)
        if not isinstance(content, str):
            raise ModelCallError(f"reply from {url} has message content of type {type(content).__name__}, not "
                                 "text", retryable=False, endpoint=url)
        usage = Usage()
        raw = getattr(resp, "usage", None)
        if raw is not None:
            usage = Usage(prompt_tokens=_count(getattr(raw, "prompt_tokens", 0)),
                          completion_tokens=_count(getattr(raw, "completion_tokens", 0)),
                          # billed at the cached-input price (OpenAI's prompt caching)
                          cached_prompt_tokens=_count(getattr(getattr(raw, "prompt_tokens_details", None),
                                                              "cached_tokens", 0)))
        model = getattr(resp, "model", None)
        finish = getattr(choices[0], "finish_reason", None)
        # A reasoning model behind a reasoning parser (vLLM, SGLang, DeepSeek, GLM thinking models) returns its
        # scratchpad beside the content: kept in its own field, never parsed, never shown as an answer.
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        tokens = from_openai(getattr(getattr(choices[0], "logprobs", None), "content", None), content)
        return ModelReply(text=content, usage=usage, model=model if isinstance(model, str) and model else self.model,
                          endpoint=url, finish_reason=finish if isinstance(finish, str) else None,
                          reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
                          logprobs=tokens)

    async def complete(self, request: ModelRequest) -> ModelReply:
        key = request.prompt_hash if len(self.pool.endpoints) > 1 else None
        endpoint = await self.pool.acquire(request.question_id, key)
        ok, retry_after = False, None
        try:
            reply = await self._send(endpoint, request)
            ok = True
            return reply
        except ModelCallError as exc:
            retry_after = exc.retry_after
            ok = not exc.retryable  # a bad request says nothing about the server's health
            raise
        finally:
            await self.pool.release(endpoint, ok, retry_after, key)


def _count(value: Any) -> int:
    """A token count from a server's usage block; anything but a non-negative integer counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# -- bounded replies ----------------------------------------------------------------------------------------

DEFAULT_MAX_REPLY_BYTES = 8_000_000  # a judgment is kilobytes; 8 MB leaves room for log-probabilities


class ReplyTooLarge(Exception):
    """A reply body grew past ``--max-reply-bytes``: reading stopped there, so a server streaming garbage
    cannot grow the process without bound. Not retried (the same request would get the same reply)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"reply larger than --max-reply-bytes {limit}: reading stopped there")
        self.limit = limit


@functools.cache
def _bounded_classes(httpx: ModuleType) -> tuple[type, type]:
    """A sync and an async transport for ``httpx`` (the SDK's own copy: openai 3 bundles ``httpx2``) that
    stop reading a body at ``max_bytes`` and, when given a ``deadline``, once the request has taken that
    many seconds in all. The SDKs' timeouts bound each read only: a server that answers one byte at a time
    would otherwise hold a worker thread (and the process, at exit) for as long as it likes."""

    def check(request: Any, head: Any, start: float, max_bytes: int, deadline: float | None) -> None:
        length = head.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise ReplyTooLarge(max_bytes)
        if deadline is not None and time.monotonic() - start > deadline:
            raise httpx.ReadTimeout(f"no whole reply within {deadline:g} s", request=request)

    class Counted:
        """What both streams check on every chunk: the bytes so far against ``max_bytes``, the time so far
        against ``deadline``."""

        def __init__(self, inner: Any, request: Any, start: float, max_bytes: int, deadline: float | None) -> None:
            self.inner, self.request, self.start, self.max, self.deadline = inner, request, start, max_bytes, deadline
            self.got = 0

        def counted(self, chunk: bytes) -> bytes:
            self.got += len(chunk)
            if self.got > self.max:
                raise ReplyTooLarge(self.max)
            if self.deadline is not None and time.monotonic() - self.start > self.deadline:
                raise httpx.ReadTimeout(f"no whole reply within {self.deadline:g} s", request=self.request)
            return chunk

    class SyncStream(Counted, httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                yield self.counted(chunk)

        def close(self) -> None:
            self.inner.close()

    class AsyncStream(Counted, httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.inner:
                yield self.counted(chunk)

        async def aclose(self) -> None:
            await self.inner.aclose()

    class SyncTransport(httpx.BaseTransport):
        def __init__(self, max_bytes: int, deadline: float | None, **kwargs: Any) -> None:
            self.inner, self.max, self.deadline = httpx.HTTPTransport(**kwargs), max_bytes, deadline

        def handle_request(self, request: Any) -> Any:
            start = time.monotonic()
            head = self.inner.handle_request(request)
            try:
                check(request, head, start, self.max, self.deadline)
            except BaseException:
                head.close()
                raise
            return httpx.Response(head.status_code, headers=head.headers, extensions=head.extensions,
                                  request=request,
                                  stream=SyncStream(head.stream, request, start, self.max, self.deadline))

        def close(self) -> None:
            self.inner.close()

    class AsyncTransport(httpx.AsyncBaseTransport):
        def __init__(self, max_bytes: int, deadline: float | None, **kwargs: Any) -> None:
            self.inner, self.max, self.deadline = httpx.AsyncHTTPTransport(**kwargs), max_bytes, deadline

        async def handle_async_request(self, request: Any) -> Any:
            start = time.monotonic()
            head = await self.inner.handle_async_request(request)
            try:
                check(request, head, start, self.max, self.deadline)
            except BaseException:
                await head.aclose()
                raise
            return httpx.Response(head.status_code, headers=head.headers, extensions=head.extensions,
                                  request=request,
                                  stream=AsyncStream(head.stream, request, start, self.max, self.deadline))

        async def aclose(self) -> None:
            await self.inner.aclose()

    return SyncTransport, AsyncTransport


def bounded_transport(httpx: ModuleType, *, max_bytes: int, deadline: float | None = None, sync: bool = False,
                      **kwargs: Any) -> Any:
    """A transport of ``httpx`` (the module an SDK uses) whose replies stop at ``max_bytes`` and, with a
    ``deadline``, within that many seconds end to end; ``kwargs`` go to the real transport (``limits``)."""
    sync_cls, async_cls = _bounded_classes(httpx)
    return (sync_cls if sync else async_cls)(max_bytes, deadline, **kwargs)
