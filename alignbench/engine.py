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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from alignbench.cache import ReplyStore
from alignbench.judges.base import ModelCallError, ModelClient
from alignbench.redact import known_secrets, redact
from alignbench.types import ModelReply, ModelRequest, Status, Usage

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")  # a result


class FatalCallError(RuntimeError):
    """An error every request would hit (bad key, unknown model): the run stops."""


class ServerUnavailable(RuntimeError):
    """No server of the model answers at all; the message says how to start one."""


class ServerGone(ServerUnavailable):
    """Every server of the model stopped accepting connections mid-run: the run stops at once (retrying a
    refused connection for minutes helps nobody); every reply received so far is in the cache."""


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

    replies: tuple[ModelReply, ...]

    @property
    def last(self) -> ModelReply:
        return self.replies[-1]

    @property
    def usage(self) -> Usage:
        return Usage(prompt_tokens=sum(r.usage.prompt_tokens for r in self.replies),
                     completion_tokens=sum(r.usage.completion_tokens for r in self.replies),
                     cached_prompt_tokens=sum(r.usage.cached_prompt_tokens for r in self.replies),
                     batch=all(r.usage.batch for r in self.replies))  # a mix is priced online: an upper bound

    @property
    def attempts(self) -> int:
        return sum(r.attempts for r in self.replies)

    @property
    def cached(self) -> bool:
        return all(r.cached for r in self.replies)


class ReplySource(Protocol):
    """A second way to get replies (a provider's batch API, ``alignbench.batch``). ``Engine.map`` hands
    it each round's uncached requests (the first requests, then each parse-retry round as ``attempt``)
    before the items read their replies. It stores what it gets in the engine's store and returns the
    replies it obtained (fresh), and error replies for requests that must not be asked online; a request
    it returns nothing for is asked online as usual."""

    async def fetch(self, engine: Engine, requests: Sequence[ModelRequest], tags: Sequence[str],
                    attempt: int) -> dict[str, ModelReply]: ...


# Replies that came back but cannot be used: asked again with a fresh sample (a greedy judge would
# repeat itself), up to the parse-retry budget. A truncated reply is one: a new sample may be shorter.
_timeout = getattr(asyncio, "timeout", None)

RETRYABLE_PARSE = (Status.PARSE_FAILED, Status.OUT_OF_RANGE, Status.REFUSED, Status.TRUNCATED)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelCallError) and exc.retryable


class AdaptiveLimit:
    """How many requests may be in flight at once.

    It starts at the configured concurrency and halves when the server shows it cannot keep up (a
    timeout, a 429 or a 503): requests queued at a busy server time out, are retried, and the server
    still finishes the abandoned ones — paid work thrown away. It grows back by one after as many
    successes as the current limit. One cut per ``cooldown`` seconds, so a burst of requests that
    failed together counts as one signal.
    """

    learn: ClassVar[bool] = True  # benchmarks switch it off to measure the old behaviour

    def __init__(self, limit: int, cooldown: float = 1.0) -> None:
        self.max = self.limit = max(1, limit)
        self.learning = False
        self.deadline: float | None = None
        self._quickest = float("inf")  # the fastest whole reply seen (seconds)
        self.ceiling = self.max  # where latency last grew with requests in flight (the server's parallelism)
        self._recent: deque[float] = deque(maxlen=16)
        self._flat = 0
        self.in_flight = 0
        self.lowest = self.limit
        self.cooldown = cooldown
        self._ok = 0
        self._last_cut = -cooldown
        self._waiters: deque[asyncio.Future[None]] = deque()  # first come, first served, O(1) per slot

    async def __aenter__(self) -> AdaptiveLimit:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # a slot was handed over as we were cancelled
                self.in_flight -= 1
                self._wake()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def cap(self, limit: int) -> None:
        """Never more than the server says it can run (its advertised parallel slots)."""
        self.max = max(1, min(self.max, limit))
        self.limit, self.ceiling = min(self.limit, self.max), min(self.ceiling, self.max)

    def overloaded(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_cut >= self.cooldown and self.limit > 1:
            self.limit = max(1, self.limit // 2)
            self.ceiling = self.limit
            self.lowest = min(self.lowest, self.limit)
            self._last_cut, self._ok = now, 0

    def learn_from_latency(self, deadline: float | None) -> None:
        """From now on learn the parallelism (``observe``), starting slow: a server that runs one request
        at a time never sees a queue of 16. For servers behind HTTP (an in-process model batches instead).
        ``deadline`` (--timeout) makes the start fast: once one reply took ``t`` seconds, even a server
        running one request at a time finishes ``deadline / (2 t)`` queued requests in time, so the limit
        jumps there at once (a remote API answering in 2 s under a 120 s timeout is at full speed after
        its first reply)."""
        if self.learn and not self.learning:
            self.learning = True
            self.deadline = deadline
            self.limit = self.lowest = min(self.limit, 2)

    def observe(self, latency: float, in_flight: int, tokens: int = 0) -> None:
        """Learn the server's parallelism from how latency grows with requests in flight (HTTP servers
        that do not say how many they run at once). Latency is compared per generated token where ``tokens``
        is known (a long judgment is slow by itself; a queued one is slow for waiting). A reply under twice the
        fastest recent one means the server ran it at once: after ``limit`` such replies the limit doubles, up to the ceiling. A slower
        one, sent with ``in_flight`` others, means it queued: the server runs about
        ``in_flight * fastest / latency`` at once, and the limit drops to that (the ceiling with it), so
        requests wait here, where waiting costs nothing, not at the server, where a request that times out
        while queued is generated anyway and asked again. The ceiling creeps up by one after many flat
        replies at it, so a noisy estimate does not hold a parallel server down for good."""
        if not self.learning:
            return
        self._quickest = min(self._quickest, latency)
        if self.deadline and self._quickest > 0 and self.limit < self.ceiling:  # safe whatever the parallelism
            safe = min(self.ceiling, int(self.deadline / (2 * self._quickest)))
            if safe > self.limit:
                self.limit = safe
                self._wake()
        latency = latency / tokens if tokens > 0 else latency
        self._recent.append(latency)
        fastest = min(self._recent)
        if in_flight <= 1 or latency <= 2 * fastest or len(self._recent) < 2:
            self.answered_at_once()
            return
        estimate = max(1, round(in_flight * fastest / latency))
        if estimate < self.limit:
            self.limit = self.ceiling = estimate
            self.lowest = min(self.lowest, self.limit)
        self._flat = 0

    def answered_at_once(self) -> None:
        """A reply that did not wait in a queue (``observe``), or an error the server answered with (a 500, a
        malformed body: it was not left waiting): after ``limit`` such replies the limit doubles, up to the
        ceiling. Without the errors, a server failing every request would be asked two at a time for good."""
        if not self.learning:
            return
        self._flat += 1
        if self.limit >= self.ceiling and self._flat >= 4 * self.limit and self.ceiling < self.max:
            self.ceiling += 1
        if self._flat >= self.limit and self.limit < self.ceiling:
            self.limit, self._flat = min(self.ceiling, self.limit * 2), 0
            self._wake()

    async def succeeded(self) -> None:
        if self.learning:  # observe() grows the limit
            return
        self._ok += 1
        if self._ok >= self.limit and self.limit < self.max:
            self.limit += 1
            self._ok = 0
            self._wake()


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
                 serve_hint: str | None = None, role: str = "judge", deadline: float | None = None,
                 refresh_failed: bool = False, source: ReplySource | None = None) -> None:
        self.client = client
        self.source = source  # a batch API: each round's uncached requests go there first (see map)
        self.role = role  # "judge" or "model": named in the server-down message
        self.store = store
        self.retry = retry or RetryPolicy()
        self.limit = AdaptiveLimit(concurrency or client.capacity)
        self.overloads = 0  # attempts that timed out or met a busy server (429, 503)
        # seconds one attempt may take in all, queueing at the server included (an API client's --timeout)
        self.deadline = deadline if deadline is not None else getattr(client, "deadline", None)
        self.refresh_failed = refresh_failed  # ask again where the cached reply gave a failed result
        self.on_event = on_event
        self.serve_hint = serve_hint
        self.stats: dict[str, CallStats] = {}  # by tag (the model being judged or answered)
        self._prefetched: dict[str, ModelReply] = {}
        self._keys: dict[int, tuple[ModelRequest, str]] = {}
        self._fatal: FatalCallError | ServerGone | None = None  # once set, no further call is sent
        self._gone_lock: asyncio.Lock | None = None
        self._gone_checked = -1.0
        self._checked = False
        self.notes: list[str] = []  # what the caller should be told (a model the server does not serve …)
        self.reported: dict[str, int] = {}  # model named in each reply -> replies (the judge's identity)
        self.foreign: dict[str, int] = {}  # server a reused cached reply came from, not among ours -> replies
        self._secrets = tuple(known_secrets())
        self._backoff = wait_exponential_jitter(multiplier=self.retry.initial, max=self.retry.max_wait, jitter=0.5)

    # -- totals ---------------------------------------------------------------------------------

    def stats_for(self, *tags: str) -> CallStats:
        """Call counters of the given tags (all tags when none is given)."""
        total = CallStats()
        for tag, stats in self.stats.items():
            if not tags or tag in tags:
                total += stats
        return total

    def record(self, store: ReplyStore | None = None) -> dict[str, object]:
        """What the manifest keeps of this engine run: the models the server reported for the replies
        (the judge's identity), and notes the user must see (a model not served, a reply from another
        model, replies that could not be cached)."""
        notes = list(self.notes)
        model = getattr(self.client, "model", None)
        other = {m: self.reported[m] for m in self.served_other()}
        if other:
            notes.append(f"{sum(other.values())} repl{'ies' if sum(other.values()) > 1 else 'y'} came from "
                         f"{', '.join(sorted(other))}, not {model}")
        if self.foreign:
            n = sum(self.foreign.values())
            notes.append(f"{n} cached repl{'ies' if n > 1 else 'y'} of {model or self.client.fingerprint} came from "
                         f"another server ({', '.join(sorted(self.foreign))}), not {', '.join(self.client.urls)}, and "
                         f"{'were' if n > 1 else 'was'} reused: a server answering to the same model name may serve "
                         "another model; pass --cache NEW_FILE (or --no-cache) to ask this server")
        retried = self.stats_for().retries
        if retried:  # the retries succeeded in the end, but they cost time (and generations on a busy server)
            why = (f", {self.overloads} because the server could not keep up (timeouts, 429, 503); it kept up with "
                   f"{self.limit.limit} in flight: pass --concurrency {self.limit.limit} (or raise --timeout) next "
                   "time") if self.overloads else ""
            notes.append(f"{retried} call{'s' if retried > 1 else ''} had to be retried{why}")
        if store is not None and store.vanished():
            notes.append(f"the reply cache {store.path} was deleted or replaced during the run: the replies of this "
                         "run were not kept there, a re-run would ask for them again")
        if store is not None and store.write_failures:
            notes.append(f"{store.write_failures} replies could not be stored in the cache {store.path} "
                         f"({store.write_error}); this run used them, a re-run would ask for them again")
        out: dict[str, object] = {"served_models": dict(self.reported)} if self.reported else {}
        if other:  # the judge as the views name it (stats.fmt.judge_label): what the server says it serves
            out["judge_served"] = list(other)
        return {**out, "notes": notes} if notes else out

    def served_other(self) -> list[str]:
        """The model ids the replies reported that are not the id asked for, most replies first: what the
        server says it serves when it answered to another name (llama.cpp and vLLM answer to any id). Empty
        when every reply named the model asked for, and for a local backend (its model is the network)."""
        model = getattr(self.client, "model", None)
        if not isinstance(model, str) or not model:
            return []
        return sorted((m for m in self.reported if m and m != model), key=lambda m: (-self.reported[m], m))

    # -- one request ----------------------------------------------------------------------------

    def key(self, request: ModelRequest) -> str:
        """The request's cache key (computed once per request object: hashing the prompt is not free)."""
        hit = self._keys.get(id(request))
        if hit is None or hit[0] is not request:
            hit = self._keys[id(request)] = (request, request.cache_key(self.client.fingerprint))
        return hit[1]

    def prefetch(self, requests: Iterable[ModelRequest]) -> int:
        """Read every cached reply for these requests in one query; returns how many are not cached."""
        keys = [self.key(r) for r in requests]
        self._prefetched.update(self.store.get_many(keys))
        return sum(k not in self._prefetched for k in keys)

    async def check(self, uncached: int) -> None:
        """Fail fast, with how to start a server, when requests must be sent and no server answers."""
        if self._checked or not uncached or getattr(self.source, "offline", False):  # batch files: no server here
            return
        self._checked = True
        try:  # a server that accepts the connection and never finishes answering must not hang us here
            dead = await asyncio.wait_for(self.client.check(), min(10.0, max(2.0, self.deadline or 10.0)))
        except asyncio.TimeoutError:
            dead = []  # it answers, slowly: each request is bounded by the deadline instead
        pool = getattr(self.client, "pool", None)
        if pool is not None:  # the servers may have said how many requests they run at once
            self.limit.cap(pool.capacity)
            # nothing said by the servers or the user (no --concurrency): learn it from latency
            if getattr(self.client, "learns", True) and not any(e.limit < self.limit.max for e in pool.endpoints):
                self.limit.learn_from_latency(self.deadline)
        self._check_served(getattr(self.client, "served", None) or {})
        if dead and len(dead) == len(self.client.urls):
            hint = f"; start one with: {self.serve_hint}" if self.serve_hint else ""
            what = "judge server" if self.role == "judge" else "server"
            fix = "--judge-base-url URL" if self.role == "judge" else "--base-url URL"
            raise ServerUnavailable(f"no {what} answers at {', '.join(dead)}{hint} (start it, or pass {fix})")

    def _check_served(self, served: dict[str, list[str]]) -> None:
        """The judge is who it says it is: servers of one pool must serve the same models (or their
        scores would mix under one name), and a model id no server lists is a warning naming what they
        serve (most servers answer to any id)."""
        model = getattr(self.client, "model", None)
        model = model if isinstance(model, str) else None
        if len({tuple(sorted(ids)) for ids in served.values()}) > 1:
            listing = "; ".join(f"{url}: {', '.join(ids)}" for url, ids in served.items())
            raise ServerUnavailable(f"the servers serve different models ({listing}); a judge is one model: "
                                    "pass servers of the same model")
        for url, ids in served.items():
            if model and model not in ids:
                self.notes.append(f"{url} does not list model {model!r} (it serves {', '.join(ids)}); its replies "
                                  "are recorded under the model the server reports")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ModelCallError) and exc.retry_after is not None:
            return min(self.retry.max_wait, exc.retry_after)
        return self._backoff(state)

    async def get(self, request: ModelRequest, tag: str = "", fresh: bool = False) -> ModelReply:
        """The reply to ``request``: from the cache (unless ``fresh``), else from the model (stored
        before returning, replacing what the cache held)."""
        stats = self.stats.setdefault(tag, CallStats())
        key = self.key(request)
        hit = None if fresh else self._prefetched.pop(key, None) or self.store.get(key)
        if hit is not None:
            stats.cached += 1
            self._reported(hit)
            urls = self.client.urls
            if hit.endpoint and urls and hit.endpoint not in urls:  # recorded from another server: said so
                self.foreign[hit.endpoint] = self.foreign.get(hit.endpoint, 0) + 1
            return hit
        async with self.limit:
            if self._fatal is not None:  # requests queued behind a fatal error never reach the server
                raise self._fatal
            reply = self.received(await self._call(request, stats))
            self.store.put(key, self.client.fingerprint, reply)
        self._reported(reply)
        return reply

    def received(self, reply: ModelReply) -> ModelReply:
        """A reply as it may be stored: every known key value redacted (a server that quotes a key back
        must not put it into the cache, the run folder or a report). Online and batch replies pass here."""
        if not self._secrets:
            return reply
        return reply.model_copy(update={"text": redact(reply.text, self._secrets),
                                        "error": redact(reply.error, self._secrets),
                                        "reasoning": redact(reply.reasoning, self._secrets)})

    def _reported(self, reply: ModelReply) -> None:
        if reply.text is not None and reply.model:
            self.reported[reply.model] = self.reported.get(reply.model, 0) + 1

    async def _attempt(self, request: ModelRequest, parked: list[tuple[asyncio.Task[ModelReply], float, int]]
                       ) -> ModelReply:
        """One attempt, bounded as a whole by the deadline (the SDK's timeout bounds each read only).

        ``parked``: while the engine learns a server's parallelism (it did not say it, nor did the user), a call
        that outlasts the deadline is not abandoned: the server may be working on it after a queue, and asking
        again would put a second copy behind it (the first still generated: paid work thrown away). The next
        attempt waits for that same call instead, within the same budget of attempts; only a call that failed
        is asked again. The attempt that times out records the call here."""
        loop = asyncio.get_running_loop()
        start, in_flight = loop.time(), self.limit.in_flight
        try:
            if parked or self.limit.learning:
                call, start, in_flight = parked.pop() if parked else (
                    loop.create_task(self.client.complete(request)), start, in_flight)
                try:
                    reply = await asyncio.wait_for(asyncio.shield(call), self.deadline)
                except asyncio.TimeoutError:
                    parked.append((call, start, in_flight))
                    raise
            elif _timeout is not None:  # Python 3.11+: no extra task per call
                async with _timeout(self.deadline):
                    reply = await self.client.complete(request)
            else:
                reply = await asyncio.wait_for(self.client.complete(request), self.deadline)
        except asyncio.TimeoutError:
            self.overloads += 1
            self.limit.overloaded()
            raise ModelCallError(f"no reply within --timeout {self.deadline:g} s (time queued at the server "
                                 "counts): lower --concurrency, raise --timeout or lower --max-tokens",
                                 retryable=True, overload=True) from None
        except ModelCallError as exc:
            if exc.overload:
                self.overloads += 1
                self.limit.overloaded()
            elif not exc.unreachable:
                self.limit.answered_at_once()
            if exc.unreachable:
                await self._check_gone()
            raise
        # time per generated token where the server says how many: a long judgment is slow by itself, a
        # queued one is slow for waiting (the signal the limit learns from)
        self.limit.observe(loop.time() - start, in_flight, reply.usage.completion_tokens)
        await self.limit.succeeded()
        return reply

    async def _check_gone(self, confirm: float = 1.0) -> None:
        """After a refused connection: when every server refuses, twice ``confirm`` seconds apart (a server
        restarting for a moment is not gone), stop the run with one line instead of minutes of retries.
        One check at a time, at most one per ``confirm`` seconds, whatever number of requests failed."""
        if self._fatal is not None:
            raise self._fatal
        self._gone_lock = self._gone_lock or asyncio.Lock()
        async with self._gone_lock:
            loop = asyncio.get_running_loop()
            if self._fatal is None and loop.time() - self._gone_checked >= confirm:
                urls = list(self.client.urls)
                for pause in (0.0, confirm):
                    await asyncio.sleep(pause)
                    try:
                        dead = await asyncio.wait_for(self.client.check(), min(10.0, self.deadline or 10.0))
                    except asyncio.TimeoutError:
                        dead = []
                    if not urls or len(dead) < len(urls):
                        break
                else:
                    what = "judge server" if self.role == "judge" else "server"
                    self._fatal = ServerGone(f"{what} gone at {', '.join(urls)} (connection refused); every reply "
                                             "received so far is in the cache: re-run to resume")
                self._gone_checked = loop.time()
        if self._fatal is not None:
            raise self._fatal

    def _stop(self, state: RetryCallState) -> bool:
        """Stop after the last attempt, or when the server asks for a pause longer than the cap (waiting
        would hold a slot for nothing; the request fails now with that reason)."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ModelCallError) and exc.retry_after is not None and exc.retry_after > self.retry.max_wait:
            return True
        return state.attempt_number >= self.retry.attempts

    async def _call(self, request: ModelRequest, stats: CallStats) -> ModelReply:
        attempts = 0
        parked: list[tuple[asyncio.Task[ModelReply], float, int]] = []  # a call still awaited (see _attempt)

        async def once() -> ModelReply:
            nonlocal attempts
            attempts += 1
            stats.calls += not parked  # waiting on for a parked call sends nothing
            stats.retries += attempts > 1
            return await self._attempt(request, parked)

        try:
            try:  # most calls succeed at once: the retry machinery is only set up after a failure
                reply = await once()
                return reply if reply.attempts == 1 else reply.model_copy(update={"attempts": 1})
            except ModelCallError as exc:
                if not exc.retryable:
                    raise
                first = exc
            async for attempt in AsyncRetrying(stop=self._stop, wait=self._wait,
                                               retry=retry_if_exception(_is_retryable), reraise=True):
                with attempt:
                    if attempt.retry_state.attempt_number == 1:
                        raise first  # the failure above is attempt 1: the policy decides on it as on any other
                    reply = await once()
        except ModelCallError as exc:
            if exc.fatal:
                self._fatal = self._fatal or FatalCallError(str(exc))
                raise self._fatal from None
            stats.errors += 1
            status = Status.TOO_LONG if exc.too_long else Status.JUDGE_ERROR
            why = f"{exc} (after {attempts} attempt{'s' if attempts > 1 else ''})"
            if exc.retry_after is not None and exc.retry_after > self.retry.max_wait:
                why += f"; the server asked to wait {exc.retry_after:.0f} s, more than the {self.retry.max_wait:.0f} s cap"
            return ModelReply(error=why, error_status=status, attempts=attempts, endpoint=exc.endpoint)
        finally:
            for call, _, _ in parked:  # out of attempts (or the run stopped): the call is given up now
                if not call.cancel() and not call.cancelled():
                    call.exception()  # it failed meanwhile: its error is the timeout's, already counted
        return reply.model_copy(update={"attempts": attempts})

    # -- many items -----------------------------------------------------------------------------

    async def map(self, items: Sequence[I], request_of: Callable[[I, int], ModelRequest],
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

        async def reading(item: I, replies: list[ModelReply], previous: R | None) -> R:
            if sum(len(r.text or "") for r in replies) > 32_000:  # a huge reply is parsed off the event loop
                return await asyncio.to_thread(read, item, Exchange(tuple(replies)), previous)
            return read(item, Exchange(tuple(replies)), previous)

        async def one(item: I) -> R:
            replies = [await self.get(request_of(item, 0), tag(item))]
            result = await reading(item, replies, None)
            if self.refresh_failed and replies[0].cached and failed(result):  # --refresh failed
                replies = [await self.get(request_of(item, 0), tag(item), fresh=True)]
                result = await reading(item, replies, None)
            attempt = 0
            while attempt < retries and again(result):
                attempt += 1
                replies.append(await self.get(request_of(item, attempt), tag(item), fresh=self.refresh_failed))
                result = await reading(item, replies, result)
            if done is not None:
                done(result)
            counter.done += 1
            counter.failed += failed(result)
            counter.cached += all(r.cached for r in replies)
            self._emit(label, counter)
            return result

        if self.source is None:
            return await gather_all(one(it) for it in items)

        # With a source (a batch API) the items move in rounds: a round's uncached requests go to the
        # source in one go (it stores the replies in the cache), then every item reads its reply: the one
        # the source returned, else the cache, else online. Items whose result asks for a fresh sample
        # make the next round, so parse retries become one follow-up batch.
        fetched: dict[str, ModelReply] = {}

        async def ask(request: ModelRequest, item: I) -> ModelReply:
            key = self.key(request)
            got = fetched.get(key)
            if got is None:
                return await self.get(request, tag(item))
            stats = self.stats.setdefault(tag(item), CallStats())
            if got.text is None:  # failed in the batch and not to be asked online: kept as the error
                stats.errors += 1
                return got
            del fetched[key]  # another item with the same request reads it from the cache
            stats.calls += 1
            self._reported(got)
            return got

        results: list[R | None] = [None] * len(items)
        replies: list[list[ModelReply]] = [[] for _ in items]
        active, attempt = list(range(len(items))), 0
        while active:
            requests = [request_of(items[i], attempt) for i in active]
            if attempt:
                self.prefetch(requests)
            todo = [(r, tag(items[i])) for i, r in zip(active, requests, strict=True)
                    if self.key(r) not in self._prefetched]
            if todo:
                fetched.update(await self.source.fetch(self, [r for r, _ in todo], [t for _, t in todo], attempt))

            async def step(i: int, request: ModelRequest) -> None:
                replies[i].append(await ask(request, items[i]))
                results[i] = await reading(items[i], replies[i], results[i])

            await gather_all(step(i, r) for i, r in zip(active, requests, strict=True))
            attempt += 1
            again_ = [i for i in active if attempt <= retries and again(results[i])]  # type: ignore[arg-type]
            asked = set(again_)
            for i in active:
                if i not in asked:
                    if done is not None:
                        done(results[i])  # type: ignore[arg-type]
                    counter.done += 1
                    counter.failed += failed(results[i])  # type: ignore[arg-type]
                    counter.cached += all(r.cached for r in replies[i])
                    self._emit(label, counter)
            active = again_
        return results  # type: ignore[return-value]

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
                       "(or compare_async, meta_eval_async, answer_async, run_async) instead")
