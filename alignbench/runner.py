"""Async orchestration of judge calls: cache first, bounded concurrency, retries with backoff.

A concurrency slot is released only after the reply is stored, so a run killed at any moment
(SIGKILL included) loses at most the calls that were in flight. Retries use exponential backoff
with jitter and honour a server's Retry-After; SDK-level retries are off, so nothing multiplies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from alignbench.cache import ReplyStore
from alignbench.judges.base import Judge, JudgeCallError
from alignbench.types import JudgeReply, JudgeRequest, Status

T = TypeVar("T")


class FatalJudgeError(RuntimeError):
    """An error every request would hit (bad key, unknown model): the run stops."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # calls per request, first one included
    initial: float = 0.5  # seconds before the first retry; doubles each time, with jitter
    max_wait: float = 60.0  # cap on one pause (a longer Retry-After is honoured up to this)


@dataclass
class CallStats:
    calls: int = 0  # requests actually sent (first tries and retries)
    retries: int = 0
    cached: int = 0
    errors: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, JudgeCallError) and exc.retryable


class Runner:
    """Gets replies for requests from the store or the judge."""

    def __init__(self, judge: Judge, store: ReplyStore, concurrency: int = 16,
                 retry: RetryPolicy | None = None) -> None:
        self.judge = judge
        self.store = store
        self.retry = retry or RetryPolicy()
        self.semaphore = asyncio.Semaphore(max(1, concurrency))
        self.stats = CallStats()
        self._prefetched: dict[str, JudgeReply] = {}
        self._fatal: FatalJudgeError | None = None  # once set, no further call is sent
        self._backoff = wait_exponential_jitter(multiplier=self.retry.initial, max=self.retry.max_wait, jitter=0.5)

    def key(self, request: JudgeRequest) -> str:
        return request.cache_key(self.judge.fingerprint)

    def prefetch(self, requests: list[JudgeRequest]) -> int:
        """Read every cached reply for these requests in one go; returns how many were cached."""
        self._prefetched.update(self.store.get_many([self.key(r) for r in requests]))
        return len(self._prefetched)

    def is_cached(self, request: JudgeRequest) -> bool:
        return self.key(request) in self._prefetched

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, JudgeCallError) and exc.retry_after is not None:
            return min(self.retry.max_wait, exc.retry_after)
        return self._backoff(state)

    async def get(self, request: JudgeRequest) -> JudgeReply:
        key = self.key(request)
        hit = self._prefetched.pop(key, None) or self.store.get(key)
        if hit is not None:
            self.stats.cached += 1
            return hit
        async with self.semaphore:
            if self._fatal is not None:  # requests queued behind a fatal error never reach the server
                raise self._fatal
            reply = await self._call(request)
            self.store.put(key, self.judge.fingerprint, reply)
        return reply

    async def _call(self, request: JudgeRequest) -> JudgeReply:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.retry.attempts), wait=self._wait,
                                               retry=retry_if_exception(_is_retryable), reraise=True):
                with attempt:
                    attempts += 1
                    self.stats.calls += 1
                    if attempts > 1:
                        self.stats.retries += 1
                    reply = await self.judge.complete(request)
        except JudgeCallError as exc:
            if exc.fatal:
                self._fatal = self._fatal or FatalJudgeError(str(exc))
                raise self._fatal from None
            self.stats.errors += 1
            kind = "too_long" if exc.too_long else str(exc).split(" ", 1)[0]
            self.stats.by_error[kind] = self.stats.by_error.get(kind, 0) + 1
            status = Status.TOO_LONG if exc.too_long else Status.JUDGE_ERROR
            return JudgeReply(error=f"{exc} (after {attempts} attempt{'s' if attempts > 1 else ''})",
                              error_status=status, attempts=attempts, endpoint=exc.endpoint)
        return reply.model_copy(update={"attempts": attempts})


async def gather_all(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Await every coroutine concurrently; if one fails (a fatal judge error, Ctrl-C), cancel the
    rest and wait for them, so no request is left running behind the error."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
