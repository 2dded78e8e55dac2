"""The one engine: every call to a model (a judge, or the model under test) goes through here.

Why one place: the cache lookup, the server check, bounded concurrency, retries with backoff, parse
retries, progress events and usage accounting are the same whatever is asked (a pointwise judgment,
either order of a pair, a plan-execute judgment, an answer). Callers describe their work as items
plus two pure functions, ``request_of`` (item, attempt -> request) and ``read`` (item, replies ->
result); the engine does the rest and hands back typed results in the items' order.

* **Cache first.** Every reply is stored as it arrives (a concurrency slot is released only after the
  store has it), so a run killed at any moment, SIGKILL included, loses at most the calls in flight.
* **Retries.** Transport failures (429, 5xx, timeouts, malformed bodies) are retried with exponential
  backoff and jitter, honouring Retry-After; SDK-level retries are off, so nothing multiplies. A
  result the caller cannot use (``again(result)``) is asked again with a fresh sample (``request_of``
  with the next attempt number), up to ``retries`` times.
* **Exact usage.** A result sees every reply it used (``Exchange``), so its tokens count every
  attempt; calls are counted per tag (the model whose answers are judged), so per-model totals add up
  to the run's.
* **Fatal errors** (bad key, unknown model) stop everything at once; queued requests never leave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from alignbench.cache import ReplyStore
from alignbench.judges.base import JudgeCallError, ModelClient
from alignbench.types import JudgeReply, JudgeRequest, Status, Usage

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")  # a result


class FatalJudgeError(RuntimeError):
    """An error every request would hit (bad key, unknown model): the run stops."""


class ServerUnavailable(RuntimeError):
    """No server of the model answers at all; the message says how to start one."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # calls per request, first one included
    initial: float = 0.5  # seconds before the first retry; doubles each time, with jitter
    max_wait: float = 60.0  # cap on one pause (a longer Retry-After is honoured up to this)


@dataclass
class CallStats:
    """Calls actually sent, retries, replies read from the cache, requests that failed for good."""

    calls: int = 0
    retries: int = 0
    cached: int = 0
    errors: int = 0

    def __iadd__(self, other: CallStats) -> CallStats:
        self.calls += other.calls
        self.retries += other.retries
        self.cached += other.cached
        self.errors += other.errors
        return self


@dataclass(frozen=True)
class Event:
    """Progress of one engine run; ``done`` counts finished items (after their parse retries)."""

    label: str
    total: int
    done: int
    failed: int
    cached: int


EventHandler = Callable[[Event], None]


@dataclass(frozen=True)
class Exchange:
    """Every reply one item used, first to last (parse retries included)."""

    replies: tuple[JudgeReply, ...]

    @property
    def last(self) -> JudgeReply:
        return self.replies[-1]

    @property
    def usage(self) -> Usage:
        return Usage(prompt_tokens=sum(r.usage.prompt_tokens for r in self.replies),
                     completion_tokens=sum(r.usage.completion_tokens for r in self.replies))

    @property
    def attempts(self) -> int:
        return sum(r.attempts for r in self.replies)

    @property
    def cached(self) -> bool:
        return all(r.cached for r in self.replies)


RETRYABLE_PARSE = (Status.PARSE_FAILED, Status.OUT_OF_RANGE, Status.REFUSED)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, JudgeCallError) and exc.retryable


@dataclass
class _Counter:
    total: int
    done: int = 0
    failed: int = 0
    cached: int = 0


class Engine:
    """Gets replies for requests from the cache or the model, for one client and one store."""

    def __init__(self, client: ModelClient, store: ReplyStore, *, concurrency: int | None = None,
                 retry: RetryPolicy | None = None, on_event: EventHandler | None = None,
                 serve_hint: str | None = None, role: str = "judge") -> None:
        self.client = client
        self.role = role  # "judge" or "model": named in the server-down message
        self.store = store
        self.retry = retry or RetryPolicy()
        self.semaphore = asyncio.Semaphore(max(1, concurrency or client.capacity))
        self.on_event = on_event
        self.serve_hint = serve_hint
        self.stats: dict[str, CallStats] = {}  # by tag (the model being judged or answered)
        self._prefetched: dict[str, JudgeReply] = {}
        self._fatal: FatalJudgeError | None = None  # once set, no further call is sent
        self._checked = False
        self._backoff = wait_exponential_jitter(multiplier=self.retry.initial, max=self.retry.max_wait, jitter=0.5)

    # -- totals ---------------------------------------------------------------------------------

    def stats_for(self, *tags: str) -> CallStats:
        """Call counters of the given tags (all tags when none is given)."""
        total = CallStats()
        for tag, stats in self.stats.items():
            if not tags or tag in tags:
                total += stats
        return total

    # -- one request ----------------------------------------------------------------------------

    def key(self, request: JudgeRequest) -> str:
        return request.cache_key(self.client.fingerprint)

    def prefetch(self, requests: Iterable[JudgeRequest]) -> int:
        """Read every cached reply for these requests in one query; returns how many are not cached."""
        keys = [self.key(r) for r in requests]
        self._prefetched.update(self.store.get_many(keys))
        return sum(k not in self._prefetched for k in keys)

    async def check(self, uncached: int) -> None:
        """Fail fast, with how to start a server, when requests must be sent and no server answers."""
        if self._checked or not uncached:
            return
        self._checked = True
        dead = await self.client.check()
        if dead and len(dead) == len(self.client.urls):
            hint = f"; start one with: {self.serve_hint}" if self.serve_hint else ""
            what = "judge server" if self.role == "judge" else "server"
            fix = "--judge-base-url URL" if self.role == "judge" else "--base-url URL"
            raise ServerUnavailable(f"no {what} answers at {', '.join(dead)}{hint} (start it, or pass {fix})")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, JudgeCallError) and exc.retry_after is not None:
            return min(self.retry.max_wait, exc.retry_after)
        return self._backoff(state)

    async def get(self, request: JudgeRequest, tag: str = "") -> JudgeReply:
        """The reply to ``request``: from the cache, else from the model (stored before returning)."""
        stats = self.stats.setdefault(tag, CallStats())
        key = self.key(request)
        hit = self._prefetched.pop(key, None) or self.store.get(key)
        if hit is not None:
            stats.cached += 1
            return hit
        async with self.semaphore:
            if self._fatal is not None:  # requests queued behind a fatal error never reach the server
                raise self._fatal
            reply = await self._call(request, stats)
            self.store.put(key, self.client.fingerprint, reply)
        return reply

    async def _call(self, request: JudgeRequest, stats: CallStats) -> JudgeReply:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.retry.attempts), wait=self._wait,
                                               retry=retry_if_exception(_is_retryable), reraise=True):
                with attempt:
                    attempts += 1
                    stats.calls += 1
                    stats.retries += attempts > 1
                    reply = await self.client.complete(request)
        except JudgeCallError as exc:
            if exc.fatal:
                self._fatal = self._fatal or FatalJudgeError(str(exc))
                raise self._fatal from None
            stats.errors += 1
            status = Status.TOO_LONG if exc.too_long else Status.JUDGE_ERROR
            return JudgeReply(error=f"{exc} (after {attempts} attempt{'s' if attempts > 1 else ''})",
                              error_status=status, attempts=attempts, endpoint=exc.endpoint)
        return reply.model_copy(update={"attempts": attempts})

    # -- many items -----------------------------------------------------------------------------

    async def map(self, items: Sequence[I], request_of: Callable[[I, int], JudgeRequest],
                  read: Callable[[I, Exchange, R | None], R], *, failed: Callable[[R], bool],
                  again: Callable[[R], bool] = lambda _: False, retries: int = 0,
                  tag: Callable[[I], str] = lambda _: "", label: str = "judging",
                  done: Callable[[R], None] | None = None) -> list[R]:
        """One result per item, in order. ``read`` turns the replies so far (and the previous result,
        after a parse retry) into a result; ``again`` says whether to ask a fresh sample; ``done`` sees
        each final result as soon as it exists (e.g. to append it to a file)."""
        await self.check(self.prefetch(request_of(it, 0) for it in items))
        counter = _Counter(total=len(items))
        self._emit(label, counter)

        async def one(item: I) -> R:
            replies = [await self.get(request_of(item, 0), tag(item))]
            result = read(item, Exchange(tuple(replies)), None)
            attempt = 0
            while attempt < retries and again(result):
                attempt += 1
                replies.append(await self.get(request_of(item, attempt), tag(item)))
                result = read(item, Exchange(tuple(replies)), result)
            if done is not None:
                done(result)
            counter.done += 1
            counter.failed += failed(result)
            counter.cached += all(r.cached for r in replies)
            self._emit(label, counter)
            return result

        return await gather_all(one(it) for it in items)

    def _emit(self, label: str, c: _Counter) -> None:
        if self.on_event is not None:
            self.on_event(Event(label=label, total=c.total, done=c.done, failed=c.failed, cached=c.cached))


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


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous code; inside a running event loop (Jupyter) say what to use."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    if hasattr(coro, "close"):
        coro.close()  # type: ignore[union-attr]
    raise RuntimeError("an event loop is already running here (Jupyter?): use `await alignbench.score_async(...)` "
                       "(or compare_async, meta_eval_async, answer_async) instead")
