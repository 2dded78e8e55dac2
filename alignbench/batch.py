"""Provider batch APIs (OpenAI, ZhipuAI): a second way for the one engine to get replies, at about half
the price, within a day.

``BatchSource`` is what ``Engine(source=...)`` awaits for each round's uncached requests (see
``Engine.map``). It writes them as the provider's JSONL (one chat-completions request a line, ``custom_id``
= the request's cache key), uploads and submits them in as many batches as the provider's limits need
(request count and file size), polls with backoff, downloads the output and error files and puts every
reply into the reply cache under its request's key. The engine then reads them like any other reply, so
parsing, statuses and parse retries are the same as online; a parse-retry round becomes a follow-up batch
(or goes online with ``fallback="online"``).

One request, two ways to send it: a line's body is what the engine's own client would post online for the
same request (``body_for`` of the backend: the same keyword arguments, structured output and
log-probabilities included), and an output line is read by the client's own reader (``read_body``), so a
batch reply equals an online one. A protocol feature the provider refuses for an item (a 400 naming
``response_format`` or ``logprobs``) is remembered as the online client remembers it, and the item is asked
again without it (follow-up batch, or online) with the reason on the reply. Every reply passes through
``Engine.received`` (key values redacted) before it is stored.

Why it can never pay twice: every batch is recorded in the cache database (tables ``batches`` and
``batch_requests``) before anything leaves this machine, and each step is recorded as it happens
(uploading → submitting with the file id → the provider's batch id and state). Running the same command
again — after Ctrl-C, a kill, a reboot, or ``--no-wait`` — re-attaches to the batches that hold its
requests instead of submitting them again; a batch created in the instant before a kill is found again by
its input file at the provider. A batch is "collected" once its files are stored; only then can its failed
requests be submitted again.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignbench import safejson
from alignbench.cache import NullStore, ReplyStore
from alignbench.cost import (
    Budget,
    BudgetExceeded,
    Estimate,
    MeteredClient,
    TokenCounter,
    budget_for,
    counter_for,
    estimate,
    load_prices,
    metered,
    price_for,
    server_counter,
)
from alignbench.data import InputError, read_jsonl
from alignbench.engine import FatalCallError
from alignbench.judges import ModelCallError, ModelConfig, ModelConfigError, key_to_send
from alignbench.judges.pool import refused_feature
from alignbench.redact import redact, redact_url
from alignbench.types import ModelReply, ModelRequest, Status, Usage

if TYPE_CHECKING:
    from alignbench.engine import Engine

# Per provider: the chat-completions path of the JSONL lines and of the batch, and the limits of one
# input file (requests, bytes), a little under what the providers state (OpenAI 50,000 requests and
# 200 MB; ZhipuAI 50,000 requests and 100 MB).
ENDPOINT = {"openai": "/v1/chat/completions", "zhipuai": "/v4/chat/completions"}
LIMITS = {"openai": (50_000, 190 * 2**20), "zhipuai": (50_000, 95 * 2**20)}
TERMINAL = ("completed", "failed", "expired", "cancelled")
BROKEN = ("failed", "expired", "cancelled")
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([^"\\]{1,200})"')
_TOO_LONG = ("context length", "maximum context", "too long", "context_length_exceeded", "超长", "1261")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    local_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    batch_id TEXT,
    base_url TEXT,
    key_env TEXT,
    judge TEXT NOT NULL,
    input_file_id TEXT,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    output_file_id TEXT,
    error_file_id TEXT,
    message TEXT,
    collected INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    local_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (local_id, key)
);
CREATE INDEX IF NOT EXISTS batch_requests_key ON batch_requests (key);
CREATE TABLE IF NOT EXISTS batch_protocols (
    local_id TEXT NOT NULL,
    key TEXT NOT NULL,
    protocol TEXT NOT NULL,
    PRIMARY KEY (local_id, key)
);
"""


class BatchPending(RuntimeError):
    """``--no-wait``: requests are in batches at the provider; the message says how to collect them."""


class BatchIncomplete(RuntimeError):
    """A batch expired, failed or was cancelled; the message says what came back and what to run next."""


@dataclass
class BatchOptions:
    """How ``--batch`` behaves. ``fallback``: where failed batch items and parse retries go ("batch": a
    follow-up batch; "online": the usual online calls). ``poll``: first and longest pause between polls
    (seconds; ``$ALIGNBENCH_BATCH_POLL="first,longest"`` sets it for the CLI)."""

    wait: bool = True
    fallback: str = "batch"
    max_requests: int | None = None  # per batch; default: the provider's limit
    max_bytes: int | None = None
    poll: tuple[float, float] = (5.0, 60.0)
    resubmits: int = 2  # follow-up batches for requests that failed for a transient reason
    on_note: Callable[[str], None] | None = field(default=None, repr=False)
    # OpenAI Batch files for an engine of one's own (vllm run-batch, Ray Data LLM, a LiteLLM proxy; see
    # FileSource): write the requests left after the cache here and stop, and/or read replies from here
    file_out: Path | None = None
    file_in: Path | None = None

    def __post_init__(self) -> None:
        if self.fallback not in ("batch", "online"):
            raise ValueError(f"batch fallback must be batch or online, not {self.fallback!r}")
        env = os.environ.get("ALIGNBENCH_BATCH_POLL")
        if env and self.poll == (5.0, 60.0):
            first, _, longest = env.partition(",")
            self.poll = (float(first), float(longest or first))


# -- the ledger: batches in the cache database -----------------------------------------------------


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    """Whether the process that wrote a row may still be working on it (same host only; a row of
    another host is trusted to be alive for an hour)."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """The ``batches`` and ``batch_requests`` tables of the reply cache database."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row

    def add(self, local_id: str, provider: str, base_url: str | None, key_env: str | None, judge: str,
            keys: Sequence[str], protocols: dict[str, str] | None = None) -> None:
        """Record a batch before anything is sent. ``protocols``: per key, what its line asked beyond the
        plain request (JSON: features sent, and how structured output was or was not asked), so whoever
        collects the batch — this process or a re-run after a kill — annotates the reply as it was sent.
        They have their own table: a database written before lines carried them needs no migration (its
        batches have no rows there, and their lines asked nothing beyond the plain request)."""
        now = time.time()
        protocols = protocols or {}
        with self._db:  # one transaction: the row and its keys, or nothing
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO batches (local_id, provider, base_url, key_env, judge, state, n, owner, "
                             "created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (local_id, provider, base_url, key_env, judge, "uploading", len(keys), _owner(), now, now))
            self._db.executemany("INSERT INTO batch_requests (local_id, key) VALUES (?,?)",
                                 [(local_id, k) for k in keys])
            self._db.executemany("INSERT INTO batch_protocols (local_id, key, protocol) VALUES (?,?,?)",
                                 [(local_id, k, protocols[k]) for k in keys if k in protocols])

    def update(self, local_id: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE batches SET {cols} WHERE local_id = ?", (*fields.values(), local_id))

    def delete(self, local_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM batch_requests WHERE local_id = ?", (local_id,))
            self._db.execute("DELETE FROM batch_protocols WHERE local_id = ?", (local_id,))
            self._db.execute("DELETE FROM batches WHERE local_id = ?", (local_id,))

    def row(self, local_id: str) -> dict[str, Any]:
        return dict(self._db.execute("SELECT * FROM batches WHERE local_id = ?", (local_id,)).fetchone())

    def keys(self, local_id: str) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT key FROM batch_requests WHERE local_id = ? ORDER BY rowid",
                                               (local_id,))]

    def protocols(self, local_id: str) -> dict[str, dict[str, Any]]:
        """Per key of the batch, what its line asked beyond the plain request (keys without: absent)."""
        return {key: json.loads(text) for key, text in self._db.execute(
            "SELECT key, protocol FROM batch_protocols WHERE local_id = ?", (local_id,))}

    def live(self, keys: Sequence[str], judge: str) -> list[dict[str, Any]]:
        """Batches not yet collected that hold any of ``keys`` (their replies are still to come)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                    f"SELECT DISTINCT b.* FROM batches b JOIN batch_requests r ON r.local_id = b.local_id "
                    f"WHERE b.collected = 0 AND b.judge = ? AND r.key IN ({marks})", [judge, *chunk]):
                found[row["local_id"]] = dict(row)
        return sorted(found.values(), key=lambda r: r["created"])

    def all(self, limit: int = 50) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM batches ORDER BY created DESC LIMIT ?", (limit,))]

    def find(self, ident: str) -> dict[str, Any] | None:
        """A batch by its provider id, its local id, or a unique prefix of either."""
        rows = [dict(r) for r in self._db.execute(
            "SELECT * FROM batches WHERE batch_id = ? OR local_id = ? OR batch_id LIKE ? OR local_id LIKE ?",
            (ident, ident, ident + "%", ident + "%"))]
        exact = [r for r in rows if ident in (r["batch_id"], r["local_id"])]
        return exact[0] if exact else rows[0] if len(rows) == 1 else None

    def close(self) -> None:
        self._db.close()


def in_flight_keys(store: ReplyStore, keys: Sequence[str], judge: str) -> set[str]:
    """The keys held by batches submitted earlier and not yet collected (for estimates: never sent twice)."""
    if isinstance(store, NullStore) or not Path(store.path).exists():
        return set()
    ledger = Ledger(store.path)
    try:
        held: set[str] = set()
        for row in ledger.live(keys, judge):
            if row["state"] != "uploading":
                held.update(ledger.keys(row["local_id"]))
        return held & set(keys)
    finally:
        ledger.close()


# -- the providers' SDKs ---------------------------------------------------------------------------


@dataclass
class Info:
    """A batch as the provider describes it (both SDKs return the same shape)."""

    id: str
    status: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: str | None = None


def _info(b: Any) -> Info:
    counts = getattr(b, "request_counts", None)
    errs = getattr(getattr(b, "errors", None), "data", None) or []
    text = "; ".join(f"{getattr(e, 'code', '') or ''}: {getattr(e, 'message', '') or ''}".strip(": ") for e in errs)
    return Info(id=b.id, status=str(b.status), input_file_id=getattr(b, "input_file_id", None),
                output_file_id=getattr(b, "output_file_id", None), error_file_id=getattr(b, "error_file_id", None),
                total=int(getattr(counts, "total", 0) or 0), completed=int(getattr(counts, "completed", 0) or 0),
                failed=int(getattr(counts, "failed", 0) or 0), errors=text or None)


def _transient(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 409, 429)
    return type(exc).__name__ in ("APIConnectionError", "APITimeoutError", "ConnectError", "ReadTimeout")


def _fatal(provider: str, url: str, what: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> FatalCallError:
    status = getattr(exc, "status_code", None)
    if status == 404 and what in ("upload", "create"):
        return FatalCallError(f"{url} has no batch API (404 on {what}); drop --batch for this server")
    text = redact(f"{provider} batch {what} at {url} failed: {status or ''} {exc}", secrets) or ""
    return FatalCallError(text.replace("  ", " "))


class Provider:
    """One provider's files and batches endpoints, normalised; management calls are retried on
    transient errors, except ``create``, which is never sent twice (see ``BatchSource._create``).
    ``url`` is shown and recorded, so it never holds credentials; the key is kept only to mask it in the
    provider's own error messages (a server may quote it back)."""

    name = ""

    def __init__(self, url: str, key: str | None = None) -> None:
        self.url = redact_url(url) or url
        self.secrets = (key,) if key else ()

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]], retry: bool = True) -> Any:
        delay, tries = 0.5, 6 if retry else 1
        for attempt in range(1, tries + 1):
            try:
                return await fn()
            except Exception as exc:  # noqa: BLE001 - both SDKs' errors, classified here
                if not _transient(exc):
                    raise _fatal(self.name, self.url, what, exc, self.secrets) from None
                if attempt == tries:
                    raise BatchIncomplete(redact(f"{self.name} batch {what} at {self.url} failed after {tries} "
                                                 f"attempt(s): {type(exc).__name__}: {exc}. The batches submitted so "
                                                 "far are recorded: run the same command again to resume",
                                                 self.secrets)) from None
                await asyncio.sleep(delay)
                delay = min(8.0, delay * 2)
        raise AssertionError("unreachable")

    async def upload(self, data: bytes, filename: str) -> str: ...
    async def create(self, file_id: str, metadata: dict[str, str]) -> Info: ...
    async def retrieve(self, batch_id: str) -> Info: ...
    async def cancel(self, batch_id: str) -> Info: ...
    async def content(self, file_id: str) -> bytes: ...
    async def find(self, input_file_id: str) -> Info | None: ...
    async def aclose(self) -> None: ...


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, url: str | None, key: str | None, timeout: float = 120.0) -> None:
        import openai

        self.client = openai.AsyncOpenAI(api_key=key or "EMPTY", base_url=url, timeout=timeout, max_retries=0)
        super().__init__(str(self.client.base_url).rstrip("/"), key)

    async def upload(self, data: bytes, filename: str) -> str:
        f = await self._call("upload", lambda: self.client.files.create(file=(filename, data, "application/jsonl"),
                                                                         purpose="batch"))
        return f.id

    async def create(self, file_id: str, metadata: dict[str, str]) -> Info:
        return _info(await self._call("create", lambda: self.client.batches.create(
            input_file_id=file_id, endpoint=ENDPOINT["openai"], completion_window="24h", metadata=metadata),
            retry=False))

    async def retrieve(self, batch_id: str) -> Info:
        return _info(await self._call("retrieve", lambda: self.client.batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> Info:
        return _info(await self._call("cancel", lambda: self.client.batches.cancel(batch_id)))

    async def content(self, file_id: str) -> bytes:
        resp = await self._call("download", lambda: self.client.files.content(file_id))
        return resp.content

    async def find(self, input_file_id: str) -> Info | None:
        async def scan() -> Info | None:
            async for b in self.client.batches.list(limit=100):
                if b.input_file_id == input_file_id:
                    return _info(b)
            return None
        return await self._call("list", scan)

    async def aclose(self) -> None:
        await self.client.close()


class ZhipuAIProvider(Provider):
    """ZhipuAI's SDK is synchronous: each call runs in a worker thread."""

    name = "zhipuai"

    def __init__(self, url: str | None, key: str | None, timeout: float = 120.0) -> None:
        import zhipuai

        from alignbench.judges.zhipuai_api import DEFAULT_BASE_URL

        url = url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL
        self.client = zhipuai.ZhipuAI(api_key=key or "EMPTY", base_url=url, timeout=timeout, max_retries=0)
        super().__init__(url.rstrip("/"), key)

    def _thread(self, fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        return lambda: asyncio.to_thread(fn)

    async def upload(self, data: bytes, filename: str) -> str:
        f = await self._call("upload", self._thread(lambda: self.client.files.create(
            file=(filename, data, "application/jsonl"), purpose="batch")))
        return f.id

    async def create(self, file_id: str, metadata: dict[str, str]) -> Info:
        return _info(await self._call("create", self._thread(lambda: self.client.batches.create(
            input_file_id=file_id, endpoint=ENDPOINT["zhipuai"], completion_window="24h", metadata=metadata,
            auto_delete_input_file=False)), retry=False))

    async def retrieve(self, batch_id: str) -> Info:
        return _info(await self._call("retrieve", self._thread(lambda: self.client.batches.retrieve(batch_id))))

    async def cancel(self, batch_id: str) -> Info:
        return _info(await self._call("cancel", self._thread(lambda: self.client.batches.cancel(batch_id))))

    async def content(self, file_id: str) -> bytes:
        resp = await self._call("download", self._thread(lambda: self.client.files.content(file_id)))
        return resp.content

    async def find(self, input_file_id: str) -> Info | None:
        def scan() -> Info | None:
            for b in self.client.batches.list(limit=100):
                if b.input_file_id == input_file_id:
                    return _info(b)
            return None
        return await self._call("list", self._thread(scan))

    async def aclose(self) -> None:
        self.client.close()


def provider_for(backend: str, url: str | None, key: str | None, timeout: float = 120.0) -> Provider:
    if backend == "openai":
        return OpenAIProvider(url, key, timeout)
    if backend == "zhipuai":
        return ZhipuAIProvider(url, key, timeout)
    raise ModelConfigError(f"--batch works with the openai and zhipuai backends, not {backend!r}")


# -- the source ------------------------------------------------------------------------------------


@dataclass
class _Failure:
    message: str
    transient: bool
    too_long: bool = False
    refused: str | None = None  # a protocol feature the provider refused for this line (structured, logprobs)
    reason: str = ""  # for a refusal: what the reply's structured_fallback says, as online


def _failure(obj: dict[str, Any], sent: set[str] | frozenset[str] = frozenset(), where: str = "") -> _Failure:
    """Why one line of an output or error file holds no reply; ``sent`` are the protocol features its line
    carried, so a 400 refusing one of them is told apart from a bad request (it is asked again without)."""
    err = obj.get("error")
    if isinstance(err, dict) and err:
        code = str(err.get("code") or "")
        return _Failure(f"{code}: {err.get('message') or ''}".strip(": "),
                        transient=code in ("batch_expired", "batch_cancelled", "server_error", "rate_limit_exceeded"))
    resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
    status = resp.get("status_code")
    body = resp.get("body") if isinstance(resp.get("body"), dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    message = str(inner.get("message") or inner or f"status {status}") if isinstance(inner, dict) else str(inner)
    code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
    too_long = any(m in (message + code).lower() for m in _TOO_LONG)
    feature = None if too_long or not isinstance(status, int) else refused_feature(status, message, set(sent))
    if feature is not None:
        return _Failure(f"{status}: {message}", transient=False, refused=feature,
                        reason=f"{status} from {where}: {message}"[:300])
    transient = not isinstance(status, int) or status >= 500 or status in (408, 409, 429)
    return _Failure(f"{status}: {message}", transient=transient and not too_long, too_long=too_long)


class BatchSource:
    """Gets replies through the provider's batch API for ``Engine(source=...)``; see the module docstring.

    What a line carries and how an output line is read are the engine's client's (``sendable``,
    ``body_for``, ``read_body`` of ``OpenAIChat`` and ``ZhipuAIChat``): the client that would send the
    same request online, with the protocol features no server has refused so far."""

    def __init__(self, config: ModelConfig, store: ReplyStore, options: BatchOptions | None = None,
                 budget: Budget | None = None) -> None:
        if config.backend not in ENDPOINT:
            raise ModelConfigError(f"--batch works with the openai and zhipuai backends, not {config.backend!r} "
                                   f"({config.name})")
        refuse_completion(config)
        if isinstance(store, NullStore):
            raise ModelConfigError("--batch needs the reply cache (it holds the batches in flight and their "
                                   "replies): drop --no-cache")
        self.config = config
        self.store = store
        self.options = options or BatchOptions()
        self.budget = budget
        self.fingerprint = f"{config.backend}:{config.model}"
        self.url = next((u for u in config.base_url if u), None)
        self.key = key_to_send(config)
        self.secrets: tuple[str, ...] = (self.key,) if self.key else ()
        self.ledger = Ledger(store.path)
        self.price = price_for(self.fingerprint)
        self.counter = counter_for(config.backend, config.model)
        self._provider: Provider | None = None
        self._reserved: dict[str, float] = {}
        self.submitted: list[str] = []  # provider ids of the batches this source created
        self.attached: list[str] = []  # and of those it found in flight

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = provider_for(self.config.backend, self.url, self.key, self.config.timeout)
        return self._provider

    def note(self, message: str) -> None:
        if self.options.on_note is not None:
            self.options.on_note(self._redact(message))

    def _redact(self, text: str) -> str:
        """Messages made here quote the provider (errors, batch failures): no key value in them."""
        return redact(text, self.secrets) or ""

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()
        self.ledger.close()

    # -- the request lines ---------------------------------------------------------------------

    def body(self, client: Any, request: ModelRequest) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The chat-completions body ``client`` would post online for ``request`` now (the features no
        server has refused), and what to record of it: the features sent and how the reply must say
        structured output was obtained (None for a plain request)."""
        sent = client.sendable(request)
        body = client.body_for(request, sent)
        if request.response_schema is None and not request.logprobs:
            return body, None
        marked = client.annotate(ModelReply(), request, sent)
        record: dict[str, Any] = {"sent": sorted(sent)}
        record.update({k: v for k in ("structured", "structured_fallback")
                       if (v := getattr(marked, k)) is not None})
        return body, record

    def line(self, client: Any, key: str, request: ModelRequest) -> tuple[bytes, str | None]:
        if request.completion:  # never a chat line in its place (refuse_completion stops such a run first)
            raise ModelConfigError(f"{self.config.name}: a text-completion request cannot go into a "
                                   f"{ENDPOINT[self.config.backend]} batch line")
        body, record = self.body(client, request)
        data = (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT[self.config.backend], "body": body},
                           ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        return data, None if record is None else json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    def chunks(self, lines: list[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
        """Split within the provider's limits: at most so many requests and so many bytes a file."""
        max_n, max_bytes = LIMITS[self.config.backend]
        max_n = min(max_n, self.options.max_requests or max_n)
        max_bytes = min(max_bytes, self.options.max_bytes or max_bytes)
        out: list[list[tuple[str, bytes]]] = [[]]
        size = 0
        for key, data in lines:
            if out[-1] and (len(out[-1]) >= max_n or size + len(data) > max_bytes):
                out.append([])
                size = 0
            out[-1].append((key, data))
            size += len(data)
        return [c for c in out if c]

    # -- fetch: what the engine awaits ---------------------------------------------------------

    async def fetch(self, engine: Engine, requests: Sequence[ModelRequest], tags: Sequence[str],
                    attempt: int) -> dict[str, ModelReply]:
        if attempt and self.options.fallback == "online":
            return {}  # parse retries go online
        client = engine.client
        wanted: dict[str, ModelRequest] = {}
        for r in requests:
            wanted.setdefault(engine.key(r), r)
        result: dict[str, ModelReply] = {}
        pending = set(wanted)
        follow_ups = 0
        while pending:
            rows = await self._attach(pending)
            held = {k for row in rows for k in self.ledger.keys(row["local_id"])}
            new = [k for k in wanted if k in pending and k not in held]
            submitted, refused = await self._submit(client, [(k, wanted[k]) for k in new]) if new else ([], [])
            for k in refused:
                result[k] = ModelReply(error=f"not sent: --max-cost {self.budget.fmt(self.budget.limit)} reached"
                                       if self.budget else "not sent", error_status=Status.JUDGE_ERROR)
            pending -= set(refused)
            rows = rows + submitted
            if not rows:
                break
            rows = await self._wait(rows)
            got, failures = await self._collect(engine, rows, pending)
            result.update(got)
            pending -= set(got)
            without: dict[str, int] = {}  # refused feature -> items to ask again without it
            for k, f in failures.items():
                if k not in pending:
                    continue
                if f.refused is not None:  # as online: remembered, and the item asked again without it
                    client.unsupported.setdefault(f.refused, self._redact(f.reason))
                    without[f.refused] = without.get(f.refused, 0) + 1
                elif not f.transient:
                    result[k] = engine.received(ModelReply(
                        error=f"batch request failed: {f.message}", endpoint=self.provider.url,
                        error_status=Status.TOO_LONG if f.too_long else Status.JUDGE_ERROR))
                    pending.discard(k)
            broken = [r for r in rows if r["state"] in BROKEN]
            if broken and pending:
                message = self._redact(self._broken_message(broken, pending))
                if self.options.fallback == "online":
                    self.note(message + "; sending them online (--batch-fallback online)")
                    return result
                raise BatchIncomplete(message)
            for feature, n in without.items():
                self.note(f"{n} request(s): the provider refused {feature} ({client.unsupported[feature]}); asking "
                          + ("them online without it" if self.options.fallback == "online" else
                             "them again without it in a follow-up batch"))
            if not pending or self.options.fallback == "online":
                return result  # what failed goes online
            if without and all(k in failures and failures[k].refused for k in pending):
                continue  # only refusals: a follow-up without the feature, not a resubmission of the same lines
            follow_ups += 1
            if follow_ups > self.options.resubmits:
                for k in pending:
                    result[k] = engine.received(ModelReply(
                        error=f"batch request failed {follow_ups} times: "
                              f"{failures[k].message if k in failures else 'no result'}",
                        endpoint=self.provider.url, error_status=Status.JUDGE_ERROR))
                return result
            first = next(iter(failures.values())).message if failures else "no result"
            self.note(f"{len(pending)} request(s) failed in the batch ({first}); submitting them in a follow-up batch")
        return result

    def _broken_message(self, broken: list[dict[str, Any]], pending: set[str]) -> str:
        parts = []
        for r in broken:
            why = {"expired": "expired before the provider finished it (24 h window)",
                   "failed": "failed" + (f" ({r['message']})" if r.get("message") else ""),
                   "cancelled": "was cancelled"}[r["state"]]
            parts.append(f"batch {r['batch_id'] or r['local_id']} {why}: {r['completed']} of {r['n']} request(s) done")
        return ("; ".join(parts) + f". The replies that came back are in the cache. {len(pending)} request(s) have no "
                "reply: run the same command again to submit them in a new batch, or run it without --batch to send "
                "them online")

    # -- steps ---------------------------------------------------------------------------------

    async def _attach(self, keys: set[str]) -> list[dict[str, Any]]:
        """The recorded batches that hold these keys, with a dead process's half-done submission repaired:
        a row without a file is dropped (nothing was sent); a file without a batch id is looked up at the
        provider (the batch may have been created just before the kill) or submitted now."""
        out = []
        for row in self.ledger.live(sorted(keys), self.fingerprint):
            if row["state"] in ("uploading", "submitting") and row["owner"] != _owner() and \
                    _owner_alive(row["owner"]) and time.time() - row["updated"] < 600:
                out.append(row)  # another process is submitting it right now: wait for it
                continue
            if row["state"] == "uploading":
                self.ledger.delete(row["local_id"])
                continue
            if row["state"] == "submitting":
                info = await self.provider.find(row["input_file_id"])
                if info is None:
                    info = await self._create(row["local_id"], row["input_file_id"])
                self._record(row["local_id"], info)
                row = self.ledger.row(row["local_id"])
            self.attached.append(row["batch_id"])
            out.append(row)
        if out:
            self.note(f"re-attached to {len(out)} batch(es) already submitted: {', '.join(str(r['batch_id']) for r in out)}")
        return out

    def _upper(self, requests: Sequence[ModelRequest]) -> float:
        assert self.price is not None
        return sum(self.price.cost(Usage(prompt_tokens=self.counter.prompt_upper(r),
                                         completion_tokens=r.decoding.max_tokens, batch=True)) for r in requests)

    async def _submit(self, client: Any, items: list[tuple[str, ModelRequest]]) -> tuple[list[dict[str, Any]],
                                                                                     list[str]]:
        lines, protocols = [], {}
        for k, r in items:
            data, protocol = self.line(client, k, r)
            lines.append((k, data))
            if protocol is not None:
                protocols[k] = protocol
        by_key = dict(items)
        rows, refused = [], []
        for chunk in self.chunks(lines):
            keys = [k for k, _ in chunk]
            upper = 0.0
            if self.budget is not None:
                upper = self._upper([by_key[k] for k in keys])
                if not self.budget.reserve(upper):
                    refused.extend(keys)
                    continue
            local_id = uuid.uuid4().hex[:12]
            # no credentials in the database; the key's variable only when the key goes to this server
            self.ledger.add(local_id, self.config.backend, redact_url(self.url),
                            self.config.api_key_env if self.key else None, self.fingerprint, keys,
                            {k: protocols[k] for k in keys if k in protocols})
            file_id = await self.provider.upload(b"".join(d for _, d in chunk), f"alignbench-{local_id}.jsonl")
            self.ledger.update(local_id, input_file_id=file_id, state="submitting")
            info = await self._create(local_id, file_id)
            self._record(local_id, info)
            self._reserved[local_id] = upper
            self.submitted.append(info.id)
            self.note(f"submitted batch {info.id} ({len(keys)} request(s), {info.status})")
            rows.append(self.ledger.row(local_id))
        return rows, refused

    async def _create(self, local_id: str, file_id: str) -> Info:
        """Create the batch once. If the call fails without an answer, the batch may exist all the same:
        look for it by its input file before giving up (the row stays 'submitting', so a re-run looks too)."""
        try:
            return await self.provider.create(file_id, {"alignbench": local_id, "judge": self.fingerprint[:500]})
        except Exception:
            found = await self.provider.find(file_id)
            if found is not None:
                return found
            raise

    def _record(self, local_id: str, info: Info) -> None:
        fields: dict[str, Any] = {"batch_id": info.id, "state": info.status, "output_file_id": info.output_file_id,
                                  "error_file_id": info.error_file_id}
        if info.total:
            fields.update(completed=info.completed, failed=info.failed)
        if info.errors:
            fields["message"] = self._redact(info.errors)  # the provider's words, kept in the database
        self.ledger.update(local_id, **fields)

    async def _wait(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Poll until every batch is finished (completed, failed, expired or cancelled), backing off from
        ``poll[0]`` to ``poll[1]`` seconds; with ``wait=False`` poll once and stop if any is unfinished."""
        delay, longest = self.options.poll
        seen: dict[str, str] = {r["local_id"]: r["state"] for r in rows}
        while True:
            for row in rows:
                if row["state"] in TERMINAL or not row["batch_id"]:
                    continue
                info = await self.provider.retrieve(row["batch_id"])
                self._record(row["local_id"], info)
                if info.status != seen.get(row["local_id"]):
                    seen[row["local_id"]] = info.status
                    done = f" {info.completed}/{info.total}" if info.total else ""
                    self.note(f"batch {info.id}: {info.status}{done}")
            rows = [self.ledger.row(r["local_id"]) for r in rows]
            waiting = [r for r in rows if r["state"] not in TERMINAL]
            if not waiting:
                return rows
            if not self.options.wait:
                n = sum(r["n"] for r in waiting)
                ids = ", ".join(f"{r['batch_id'] or r['local_id']} ({r['state']})" for r in waiting)
                raise BatchPending(f"{n} request(s) are in {len(waiting)} batch(es) at {self.config.backend}: {ids}. "
                                   "Nothing waits for them (--no-wait): run the same command again to collect the "
                                   "replies when they are done (`alignbench batches` shows their state)")
            await asyncio.sleep(delay)
            delay = min(longest, delay * 1.5)

    async def _collect(self, engine: Engine, rows: list[dict[str, Any]],
                       wanted: set[str]) -> tuple[dict[str, ModelReply], dict[str, _Failure]]:
        """Download each finished batch's output and error files, store every reply under its key (after
        ``engine.received``: a reply quoting a key must not put it into the cache), and mark the batch
        collected; returns the replies and failures of ``wanted`` keys."""
        got: dict[str, ModelReply] = {}
        failures: dict[str, _Failure] = {}
        for row in rows:
            keys = self.ledger.keys(row["local_id"])
            protocols = self.ledger.protocols(row["local_id"])
            mine = set(keys)
            seen: set[str] = set()
            bad: list[str] = []
            cost = 0.0
            for file_id in (row["output_file_id"], row["error_file_id"]):
                if not file_id:
                    continue
                data = await self.provider.content(file_id)
                for lineno, raw in enumerate(data.splitlines(), start=1):
                    if not raw.strip():
                        continue
                    try:  # a cut or hostile line costs that line only: every good line is stored
                        obj = safejson.scrub(safejson.loads(raw, storable=False))
                        if not isinstance(obj, dict):
                            raise json.JSONDecodeError("not a JSON object", "", 0)
                    except json.JSONDecodeError as exc:
                        bad.append(f"line {lineno}: {safejson.describe(exc)}")
                        found = _CUSTOM_ID.search(raw[:4096])
                        key = found.group(1).decode("utf-8", "replace") if found else None
                        if key in mine and key not in seen:
                            failures[key] = _Failure(f"unreadable line in batch {row['batch_id']}'s output "
                                                     f"({bad[-1]})", transient=True)
                        continue
                    key = obj.get("custom_id")
                    if key not in mine:
                        continue
                    seen.add(key)
                    reply = self._reply(engine.client, obj, f"{self.provider.url} batch {row['batch_id']}",
                                        protocols.get(key) or {})
                    if isinstance(reply, _Failure):
                        failures[key] = reply
                        continue
                    reply = engine.received(reply)
                    self.store.put(key, self.fingerprint, reply)
                    if self.price is not None:
                        cost += self.price.cost(reply.usage)
                    if key in wanted:
                        got[key] = reply
                        failures.pop(key, None)
            if bad:
                self.note(f"batch {row['batch_id']}: {len(bad)} line(s) of its files could not be read ({bad[0]}); "
                          "their requests are asked again, every other reply is stored")
            for key in mine - seen:
                failures.setdefault(key, _Failure(f"no result in batch {row['batch_id']} ({row['state']})",
                                                  transient=True))
            if self.budget is not None:
                self.budget.settle(self._reserved.pop(row["local_id"], 0.0), cost)
            self.ledger.update(row["local_id"], collected=1)
        return got, {k: f for k, f in failures.items() if k in wanted}

    def _reply(self, client: Any, obj: dict[str, Any], where: str,
               protocol: dict[str, Any]) -> ModelReply | _Failure:
        """The reply in one output line, read by the client's own reader (text, usage with cached prompt
        tokens, model, finish reason, reasoning, log-probabilities) and marked as its line was sent
        (``protocol``: how structured output was obtained, or why not); or why the line holds none.
        ``where`` names the batch (or file) the line came from."""
        resp = obj.get("response")
        if not isinstance(resp, dict) or resp.get("status_code") != 200 or not isinstance(resp.get("body"), dict):
            return _failure(obj, set(protocol.get("sent") or ()), where)
        try:
            reply = client.read_body(resp["body"], where)
        except ModelCallError as exc:  # no content (transient, as online), content that is not text (not)
            return _Failure(str(exc), transient=exc.retryable)
        marks = {k: protocol[k] for k in ("structured", "structured_fallback") if isinstance(protocol.get(k), str)}
        return reply.model_copy(update={"usage": reply.usage.model_copy(update={"batch": True}), **marks})


# -- OpenAI Batch files for any engine --------------------------------------------------------------


class FileSource(BatchSource):
    """The batch path without a provider: the same request lines and the same output reader as
    ``BatchSource``, through files a user's own engine reads and writes (``vllm run-batch``, a Ray Data LLM
    pipeline, a LiteLLM batch proxy; docs/batch.md).

    ``file_in``: an OpenAI Batch output file. Each line is matched to a request by its ``custom_id`` (the
    request's cache key), read by the client's own reader and stored in the reply cache like any reply, so
    reading the same file again finds every reply cached and pays and changes nothing. A line holding an
    error is kept as that request's error (not cached: a later file or run can still answer it); a request
    with no line is named in a note and counted as failed, never invented. ``file_out``: the requests left
    (after the cache and ``file_in``) are collected for the channel, which writes them as one OpenAI Batch
    input file and stops the run (``BatchPending``) before anything is written. Nothing is sent online."""

    offline = True  # nothing is sent from here: the engine does not look for a judge server (Engine.check)

    def __init__(self, config: ModelConfig, store: ReplyStore, options: BatchOptions, outbox: list[bytes]) -> None:
        super().__init__(config, store, options)
        self.outbox = outbox
        self._lines: dict[str, dict[str, Any]] | None = None

    def _output(self) -> dict[str, dict[str, Any]]:
        """The output file's lines by custom_id (read once); a line that is not JSON is an error naming it."""
        if self._lines is None:
            path = Path(self.options.file_in)  # type: ignore[arg-type]
            if not path.is_file():
                raise ModelConfigError(f"--batch-file-in: {path} not found")
            try:  # the one bounded JSONL reader: a huge integer or deep nesting is that line's error too
                self._lines = {obj["custom_id"]: obj for _, obj in read_jsonl(path)
                               if isinstance(obj.get("custom_id"), str)}
            except InputError as exc:
                raise ModelConfigError(f"--batch-file-in: {exc}") from None
        return self._lines

    async def fetch(self, engine: Engine, requests: Sequence[ModelRequest], tags: Sequence[str],
                    attempt: int) -> dict[str, ModelReply]:
        client = engine.client
        wanted: dict[str, tuple[ModelRequest, str]] = {}
        for r, t in zip(requests, tags, strict=True):
            wanted.setdefault(engine.key(r), (r, t))
        result: dict[str, ModelReply] = {}
        missing: list[str] = []
        name = Path(self.options.file_in).name if self.options.file_in else ""
        if self.options.file_in:
            lines = self._output()
            for key, (request, _) in wanted.items():
                obj = lines.get(key)
                if obj is None:
                    missing.append(key)
                    continue
                _, protocol = self.body(client, request)  # how this line was sent: the same client, the same body
                reply = self._reply(client, obj, name, json.loads(protocol) if protocol else {})
                if isinstance(reply, _Failure):
                    result[key] = engine.received(ModelReply(
                        error=f"batch output line failed ({name}): {self._redact(reply.message)}",
                        error_status=Status.TOO_LONG if reply.too_long else Status.JUDGE_ERROR))
                    continue
                reply = engine.received(reply)
                self.store.put(key, self.fingerprint, reply)
                result[key] = reply
            failed = sum(1 for r in result.values() if r.text is None)
            self.note(f"{name}: {len(result) - failed} repl(ies) read and cached, {failed} error line(s) kept"
                      + (f", {len(missing)} request(s) have no line" if missing else ""))
        left = [k for k in wanted if k not in result]
        if self.options.file_out:
            for key in left:
                self.outbox.append(self.line(client, key, wanted[key][0])[0])
            for key in left:
                result[key] = ModelReply(error=f"written to {self.options.file_out} for an engine to answer",
                                         error_status=Status.JUDGE_ERROR)
            return result
        if missing:
            shown = ", ".join(f"{k[:16]} ({wanted[k][1]})" if wanted[k][1] else k[:16] for k in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            what = "parse-retry request(s)" if attempt else "request(s)"
            self.note(f"{len(missing)} {what} missing from {name} (counted as failed, not invented): custom_id "
                      f"{shown}{more}; answer them in another output file, or give --batch-file-out to write them")
        for key in left:
            result[key] = ModelReply(error=f"no line with custom_id {key} in {name}", error_status=Status.JUDGE_ERROR)
        return result


def write_batch_file(path: Path | str, lines: Sequence[bytes]) -> int:
    """Write OpenAI Batch input lines (one request each, duplicates dropped: several items may share a
    request) to ``path`` through a temporary file, so a half-written file is never left; returns the count."""
    seen: set[str] = set()
    kept = []
    for data in lines:
        key = json.loads(data)["custom_id"]
        if key not in seen:
            seen.add(key)
            kept.append(data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(b"".join(kept))
    tmp.replace(path)
    return len(kept)


# -- a call's channel: batch and budget together ---------------------------------------------------


def fingerprint_of(config: ModelConfig) -> str:
    """The judge's cache identity without building its client (an API judge is backend:model)."""
    if config.backend == "hf":
        try:
            from alignbench.judges.local import resolve_source

            return resolve_source(config.model, revision=config.options.get("revision")).fingerprint
        except Exception:  # noqa: BLE001 - an estimate: the caller reports it against the model name
            pass
    return f"{config.backend}:{config.model}"


async def estimate_for_async(config: ModelConfig, requests: Sequence[ModelRequest], store: ReplyStore, *,
                             batch: bool = False, known: TokenCounter | None = None) -> tuple[Estimate, TokenCounter]:
    """``cost.estimate`` with what the cache holds and what batches submitted earlier will bring, the
    prompts still to send counted by the judge's own server where it can (``cost.server_counter``); and the
    counter used, so that ``--max-cost`` meters each request by the same counts (``known``: the counter an
    earlier check of this run got, reused when it holds every prompt)."""
    fp = fingerprint_of(config)
    keys = [r.cache_key(fp) for r in requests]
    cached = set(store.get_many(keys))
    flying = in_flight_keys(store, keys, fp)
    path = None if isinstance(store, NullStore) else store.path
    todo = [r for r, k in zip(requests, keys, strict=True) if k not in cached and k not in flying]
    counter, note = await server_counter(config, todo, known)
    return estimate(config, requests, path, cached_keys=cached, in_flight=flying, batch=batch, fingerprint=fp,
                    counter=counter, note=note), counter


def estimate_for(config: ModelConfig, requests: Sequence[ModelRequest], store: ReplyStore, *,
                 batch: bool = False) -> Estimate:
    """``estimate_for_async`` from synchronous code (``--dry-run``'s printer)."""
    return asyncio.run(estimate_for_async(config, requests, store, batch=batch))[0]


@dataclass
class Channel:
    """How one API call pays for its replies: online or through batches (``batch``), within a budget
    (``--max-cost``). ``open`` gives each judge its client (metered when there is a budget) and source;
    ``check_start`` refuses a run whose upper bound exceeds the budget before anything is sent;
    ``settle`` raises ``BudgetExceeded`` after a run that stopped at the budget (nothing is written then;
    every reply received is in the cache)."""

    batch: BatchOptions | None = None
    budget: Budget | None = None
    sources: list[BatchSource] = field(default_factory=list)
    outbox: list[bytes] = field(default_factory=list)  # --batch-file-out: the lines the file sources left
    # per judge fingerprint: the counter of the start's estimate (the server's counts for a self-hosted
    # judge) and the metered clients opened, so every request is metered by the counts the start checked
    counters: dict[str, TokenCounter] = field(default_factory=dict)
    metered: dict[str, list[MeteredClient]] = field(default_factory=dict)

    def open(self, config: ModelConfig, store: ReplyStore) -> tuple[Any, BatchSource | None]:
        from alignbench.judges import make_client

        fp = fingerprint_of(config)
        client = metered(make_client(config), config, self.budget, self.counters.get(fp))
        if isinstance(client, MeteredClient):
            self.metered.setdefault(fp, []).append(client)
        source: BatchSource | None = None
        if self.batch is not None and (self.batch.file_in or self.batch.file_out):
            source = FileSource(config, store, self.batch, self.outbox)
            self.sources.append(source)
        elif self.batch is not None:
            source = BatchSource(config, store, self.batch, self.budget)
            self.sources.append(source)
        return client, source

    async def check_start(self, work: Sequence[tuple[ModelConfig, Sequence[ModelRequest]]],
                          store: ReplyStore) -> list[Estimate]:
        """Refuse a run whose upper bound exceeds the budget (``Budget.check_start``), by the estimate a
        ``--dry-run`` prints: a self-hosted judge's prompts counted by its own server."""
        if self.budget is None:
            return []
        estimates = []
        for config, reqs in work:
            fp = fingerprint_of(config)
            est, counter = await estimate_for_async(config, reqs, store, batch=self.batch is not None,
                                                    known=self.counters.get(fp))
            estimates.append(est)
            self.counters[fp] = counter
            for client in self.metered.get(fp, []):
                client.counter = counter
        self.budget.check_start(estimates)
        return estimates

    async def close(self) -> None:
        for source in self.sources:
            await source.aclose()
        self.sources.clear()

    def settle(self) -> None:
        if self.batch is not None and self.batch.file_out and self.outbox:
            n = write_batch_file(self.batch.file_out, self.outbox)
            self.outbox.clear()
            raise BatchPending(f"wrote {n} request(s) to {self.batch.file_out} (OpenAI Batch input; nothing was "
                               f"sent). Run them with your engine (e.g. vllm run-batch -i {self.batch.file_out} -o "
                               "results.jsonl --model ...), then run the same command with --batch-file-in "
                               "results.jsonl (docs/batch.md)")
        if self.budget is not None and self.budget.refused:
            raise BudgetExceeded(self.budget.stopped_message())


def refuse_completion(config: ModelConfig) -> None:
    """One clear error, before anything is sent, for a judge whose requests are bare text completions
    (``prompt_format: completion``): batch lines and batches here are chat completions, and sending the
    prompt as a chat message instead would be the chat template this judge is meant to run without."""
    if config.completion:
        raise ModelConfigError(f"--batch sends chat completions, but judge {config.name} sends its prompt as a bare "
                               "text completion (prompt_format completion, /v1/completions); run it online, or "
                               "choose the chat form explicitly (e.g. --judge critiquellm-chat)")


def channel_for(batch: bool | BatchOptions | None, max_cost: float | None,
                configs: Sequence[ModelConfig]) -> Channel | None:
    """None for a plain online run; else the Channel, every judge checked first (a backend without a
    batch API, a price unknown under --max-cost: errors before anything is sent). The price table is read
    here in every run: a broken price file is one line before any call, never a crash when the spend is
    priced after the judges were paid."""
    load_prices()
    if not batch and max_cost is None:
        return None
    options = batch if isinstance(batch, BatchOptions) else BatchOptions() if batch else None
    if options is not None:
        for config in configs:
            if config.backend not in ENDPOINT:
                raise ModelConfigError(f"--batch works with the openai and zhipuai backends, not "
                                       f"{config.backend!r} ({config.name})")
            refuse_completion(config)
    return Channel(options, budget_for(max_cost, configs))


async def close_channel(channel: Channel | None) -> None:
    if channel is not None:
        await channel.close()


# -- listing and cancelling (alignbench batches) ---------------------------------------------------


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _provider_of(row: dict[str, Any]) -> Provider:
    key = os.environ.get(row["key_env"]) if row.get("key_env") else None
    return provider_for(row["provider"], row.get("base_url"), key)


async def list_batches(path: Path | str, *, refresh: bool = True, limit: int = 50) -> list[dict[str, Any]]:
    """The recorded batches, newest first, each with its state (asked again from the provider for the
    unfinished ones when ``refresh``), request counts and age."""
    if not Path(path).exists():
        return []
    ledger = Ledger(path)
    providers: dict[tuple[str, str | None, str | None], Provider] = {}
    try:
        rows = ledger.all(limit)
        for row in rows:
            if refresh and row["batch_id"] and row["state"] not in TERMINAL:
                ident = (row["provider"], row.get("base_url"), row.get("key_env"))
                try:
                    prov = providers.get(ident) or providers.setdefault(ident, _provider_of(row))
                    info = await prov.retrieve(row["batch_id"])
                except Exception as exc:  # noqa: BLE001 - a listing shows what it has
                    row["refresh_error"] = f"{type(exc).__name__}: {exc}"[:200]
                else:
                    fields = {"state": info.status, "output_file_id": info.output_file_id,
                              "error_file_id": info.error_file_id}
                    if info.total:
                        fields.update(completed=info.completed, failed=info.failed)
                    ledger.update(row["local_id"], **fields)
                    row.update(fields)
            row["age"] = _age(time.time() - row["created"])
        return rows
    finally:
        for prov in providers.values():
            await prov.aclose()
        ledger.close()


async def cancel_batch(path: Path | str, ident: str) -> dict[str, Any]:
    """Ask the provider to cancel a recorded batch (by provider id, local id, or a unique prefix)."""
    ledger = Ledger(path) if Path(path).exists() else None
    row = ledger.find(ident) if ledger else None
    if row is None or not row["batch_id"]:
        if ledger:
            ledger.close()
        raise ModelConfigError(f"no batch {ident!r} in {path} (`alignbench batches` lists them)")
    assert ledger is not None
    prov = _provider_of(row)
    try:
        info = await prov.cancel(row["batch_id"])
        ledger.update(row["local_id"], state=info.status)
        return {**row, "state": info.status}
    finally:
        await prov.aclose()
        ledger.close()


__all__ = ["BatchIncomplete", "BatchOptions", "BatchPending", "BatchSource", "Channel", "Ledger", "cancel_batch",
           "channel_for", "estimate_for", "estimate_for_async", "in_flight_keys", "list_batches"]
