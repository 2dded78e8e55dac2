"""A real OpenAI-compatible HTTP server on localhost, for tests and benchmarks.

Stdlib only.  Used instead of mocking SDKs: point ``openai.AsyncOpenAI(base_url=server.url)``
or ``zhipuai.ZhipuAI(base_url=server.root + "/api/paas/v4")`` at it.

In-process use::

    with StubServer(responder=lambda body: "你好", latency=0.05) as server:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        server.fail_next(1, status=429, retry_after=0.1)
        ...

Separate-process use (benchmarks)::

    python tests/stub_server.py --port 0 --latency 0.2 --reply alignbench
    # first stdout line is the base URL (".../v1"); serves until killed

or ``proc, url = spawn_stub(latency=0.2)`` and ``proc.kill()`` when done.

Faults (``fail_next``, ``hang_next``, ``malformed_next``) go into one FIFO queue and are consumed
one per chat request in order of arrival.  ``fail_always`` overrides the queue until ``heal()``.

Text completions (``POST /v1/completions``, a ``prompt`` instead of ``messages``) are served by the same
responders, faults and counters: a responder reads the prompt where it reads the last user message
(``_last_user_text``), and the reply is a ``text_completion``. ``paths`` records which route each
request in ``requests`` came to.

A tokenizer endpoint at the server root, off by default (a POST there is a 404, as on a server without one):
``tokenizer = "vllm"`` serves vLLM's ``POST /tokenize`` (``messages`` through a chat template, or a bare
``prompt``; reply ``count``/``max_model_len``/``tokens``), ``tokenizer = "llamacpp"`` llama.cpp's ``POST
/tokenize`` (``content``, ``add_special``; reply ``tokens`` only) and ``POST /apply-template``. The tokenizer is
byte-level (one token per UTF-8 byte, + 1 BOS), like a small model with no Chinese merges, so its counts
are far from the character estimate; ``stub_tokens`` computes them. ``tokenize_requests`` records each call.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Responder = Callable[[dict], "str | dict"]


class Refuse(Exception):
    """Raised by a responder to answer with an HTTP error (e.g. 400 for an unsupported response_format)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

__all__ = [
    "ALIGNBENCH_DIMENSIONS",
    "Refuse",
    "Responder",
    "StubServer",
    "alignbench_responder",
    "chat_template",
    "echo_responder",
    "fixed_responder",
    "prompt_chars",
    "spawn_stub",
    "stub_tokens",
]

FIXED_REPLY = "好的，这是桩服务器的固定回复。"

ALIGNBENCH_DIMENSIONS = (
    "事实正确性",
    "满足用户需求",
    "清晰度",
    "完备性",
    "逻辑连贯性",
    "创造性",
    "丰富度",
    "公平与可负责程度",
)

ANSWER_TYPE_DIMENSIONS = {
    "事实与解释型回答": ("事实正确性", "满足用户需求", "清晰度", "完备性"),
    "逻辑推理型回答": ("事实正确性", "满足用户需求", "逻辑连贯性", "完备性"),
    "生成型回答": ("事实正确性", "满足用户需求", "逻辑连贯性", "创造性", "丰富度"),
    "建议型回答": ("事实正确性", "满足用户需求", "公平与可负责程度", "创造性"),
}

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


# --------------------------------------------------------------------------- responders


def _content_text(content: Any) -> str:
    """Text of a message ``content`` (a string, or a list of OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def _messages(body: dict) -> list[dict]:
    msgs = body.get("messages") if isinstance(body, dict) else None
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def _last_user_text(body: dict) -> str:
    if not _messages(body) and isinstance(body.get("prompt"), str):  # a text completion: its bare prompt
        return body["prompt"]
    msgs = _messages(body)
    for msg in reversed(msgs):
        if msg.get("role") == "user":
            return _content_text(msg.get("content"))
    return _content_text(msgs[-1].get("content")) if msgs else ""


def prompt_chars(body: dict) -> int:
    """What the stub counts as a request's prompt tokens: the characters of its messages' contents, or of a
    text completion's bare prompt."""
    if not _messages(body) and isinstance(body.get("prompt"), str):
        return len(body["prompt"])
    return sum(len(_content_text(m.get("content"))) for m in _messages(body))


def chat_template(messages: list[dict]) -> str:
    """The stub's chat template (ChatML, with the generation prompt), what its tokenizer endpoints count."""
    turns = "".join(f"<|im_start|>{m.get('role')}\n{_content_text(m.get('content'))}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def stub_tokens(text: str, add_special: bool = True) -> list[int]:
    """The stub tokenizer: one token per UTF-8 byte (3 per Chinese character), a BOS (id 1) first."""
    return ([1] if add_special else []) + list(text.encode("utf-8"))


def fixed_responder(body: dict) -> str:
    """Always the same (Chinese) reply."""
    return FIXED_REPLY


def echo_responder(body: dict) -> str:
    """Echo the last user message."""
    return _last_user_text(body)


def alignbench_responder(body: dict) -> str:
    """Imitate an AlignBench judge.

    Finds the dimension names that occur in the last user message (in order of first
    occurrence), and answers with a short Chinese analysis whose last line is a Python dict
    literal such as ``{'事实正确性': 7, '满足用户需求': 6, '综合得分': 6}``.  Scores (3..9) are
    derived deterministically from a hash of the prompt.
    """
    prompt = _last_user_text(body)
    found = sorted((prompt.find(d), d) for d in ALIGNBENCH_DIMENSIONS if d in prompt)
    dims = [d for _, d in found]
    tag = prompt.lstrip().split("\n", 1)[0].strip("[] ")
    if tag in ANSWER_TYPE_DIMENSIONS:  # CritiqueLLM's short format names only the answer type
        dims = list(ANSWER_TYPE_DIMENSIONS[tag])
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    scores: dict[str, int] = {}
    for i, dim in enumerate(dims):
        scores[dim] = 3 + digest[i % len(digest)] % 7
    if scores:
        overall = round(sum(scores.values()) / len(scores))
    else:
        overall = 3 + digest[-1] % 7
    lines = ["评价如下："]
    for dim, score in scores.items():
        quality = "较好" if score >= 7 else ("一般" if score >= 5 else "较差")
        lines.append(f"{dim}：回答在该维度上表现{quality}，给出{score}分。")
    lines.append(f"综合来看，回答的整体质量{'较好' if overall >= 7 else '一般'}，综合得分为{overall}分。")
    scores["综合得分"] = overall
    lines.append(repr(scores))
    return "\n".join(lines)


_REPLIES: dict[str, Responder] = {
    "fixed": fixed_responder,
    "echo": echo_responder,
    "alignbench": alignbench_responder,
}


# --------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # silent
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a reply is written in pieces: without this, each waits ~40 ms for a delayed ACK
    server_version = "alignbench-stub/1.0"
    sys_version = ""
    server: _HTTPServer

    # -- plumbing ----------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # silent
        pass

    def setup(self) -> None:
        super().setup()
        self.server.stub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.stub._track(self.connection, add=False)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json; charset=utf-8",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (extra_headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # client went away (BrokenPipe, ConnectionReset, ...)
            self.close_connection = True

    def _send_json(self, status: int, obj: Any, extra_headers: dict[str, str] | None = None) -> None:
        text = json.dumps(obj, ensure_ascii=False)
        try:
            payload = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in a reply: sent as a JSON escape, as hostile servers do
            payload = json.dumps(obj).encode("ascii")
        self._send(status, payload, extra_headers=extra_headers)

    def _send_error_json(
        self, status: int, message: str, extra_headers: dict[str, str] | None = None
    ) -> None:
        err_type, code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", str(status))
        )
        self._send_json(
            status,
            {"error": {"message": message, "type": err_type, "code": code}},
            extra_headers=extra_headers,
        )

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    # -- verbs -------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self._path()
        if path.endswith("/models"):
            created = int(time.time())
            data = [
                {"id": name, "object": "model", "created": created, "owned_by": "stub"}
                for name in self.server.stub.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        elif path == "/props" and self.server.stub.slots and self.server.stub.advertise_slots:
            self._send_json(200, {"total_slots": self.server.stub.slots})
        elif path in ("", "/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_error_json(404, f"Unknown path {self.path}")

    def do_POST(self) -> None:
        raw = self._read_body()
        if len(raw) < int(self.headers.get("Content-Length") or 0):
            # the client went away mid-request (a killed process): nothing was asked, nothing is recorded
            self.close_connection = True
            return
        if self._path() in ("/tokenize", "/apply-template") and self.server.stub.tokenizer:
            self.server.stub._handle_tokenize(self, self._path(), raw)
        elif self._path().endswith("/chat/completions"):
            self.server.stub._handle_chat(self, raw)
        elif self._path().endswith("/completions"):
            self.server.stub._handle_chat(self, raw, completion=True)
        else:
            self._send_error_json(404, f"Unknown path {self.path}")


class EndlessServer:
    """Answers every request (GET or POST) with a 200 whose body never ends: one byte every ``byte_every``
    seconds (a drip: each read is quick, the reply never done), or as fast as the socket takes it (a
    flood); ``length`` announces a Content-Length it never reaches. A raw socket, since no HTTP server
    library sends a reply this broken. ``sent`` counts the bytes written."""

    def __init__(self, byte_every: float = 0.0, length: int | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.root = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.url = self.root + "/v1"
        self.byte_every = byte_every
        self.head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     + (f"Content-Length: {length}\r\n" if length else "Connection: close\r\n") + "\r\n").encode()
        self.sent = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            chunk = b" " if self.byte_every else b" " * 65536
            while not self.stop.is_set():
                conn.sendall(chunk)
                self.sent += len(chunk)
                if self.byte_every:
                    time.sleep(self.byte_every)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class StubServer:
    """OpenAI-compatible chat-completions server running in a background thread."""

    handler_class: type[_Handler] = _Handler  # a subclass adds routes (tests/batch_server.py)

    def __init__(
        self,
        responder: Responder | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder: Responder = responder or fixed_responder
        self.latency = float(latency)
        self.host = host
        self.port = port
        self.models: list[str] = ["stub-model", "glm-4", "gpt-4o-mini"]
        # the model id every reply reports (None: the id asked for, echoed); set it to be a server that answers
        # to any id with its one model, as llama.cpp and vLLM do
        self.reported_model: str | None = None
        self.slots: int | None = None  # parallel slots: enforced, and advertised on GET /props
        self.advertise_slots = True
        self.requests: list[dict] = []
        self.paths: list[str] = []  # the route of each request: "/chat/completions" or "/completions"
        self.headers: list[dict] = []
        self.max_in_flight = 0
        self.in_flight = 0
        # generations run (a slot taken and the latency slept) and those whose client had already given up
        # by the time the reply was ready: with ``slots = 1`` and ``advertise_slots = False`` this is a
        # llama.cpp-like server that runs one request at a time and says nothing about it (the waste measure)
        self.generations = 0
        self.abandoned = 0
        self.tokenizer: str | None = None  # "vllm" or "llamacpp": serve that server's tokenizer endpoints
        self.tokenize_latency = 0.0
        self.tokenize_requests: list[tuple[str, dict, dict]] = []  # (path, body, headers) of each call
        self.tokenize_max_in_flight = 0
        self._tokenize_in_flight = 0
        self._calls = 0
        self._lock = threading.Lock()
        self._faults: collections.deque[dict] = collections.deque()
        self._always_status: int | None = None
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> StubServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._slot_gate = threading.BoundedSemaphore(self.slots or 1)
        httpd = _HTTPServer((self.host, self.port), self.handler_class)
        httpd.stub = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping for latency / hangs
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:  # drop idle keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        if self._httpd is None:
            raise RuntimeError("StubServer is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + "/v1"

    # -- statistics ------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Number of chat completion requests received (including faulted ones)."""
        return self._calls

    def reset(self) -> None:
        """Forget recorded requests/headers/counters and pending faults."""
        with self._lock:
            self.requests.clear()
            self.paths.clear()
            self.headers.clear()
            self._calls = 0
            self.max_in_flight = self.in_flight
            self._faults.clear()
            self._always_status = None

    # -- faults ----------------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 500, retry_after: float | None = None, body: str | None = None
    ) -> None:
        """The next ``n`` chat requests get HTTP ``status`` (with ``Retry-After`` if given)."""
        with self._lock:
            for _ in range(n):
                self._faults.append(
                    {"kind": "fail", "status": status, "retry_after": retry_after, "body": body}
                )

    def hang_next(self, n: int, seconds: float) -> None:
        """The next ``n`` chat requests sleep ``seconds`` (plus latency) before answering normally."""
        with self._lock:
            for _ in range(n):
                self._faults.append({"kind": "hang", "seconds": float(seconds)})

    def malformed_next(self, n: int) -> None:
        """The next ``n`` chat requests get 200 with a body that is not valid JSON."""
        with self._lock:
            for _ in range(n):
                self._faults.append({"kind": "malformed"})

    def fail_always(self, status: int = 500) -> None:
        """Every chat request fails with ``status`` until :meth:`heal`."""
        with self._lock:
            self._always_status = status

    def heal(self) -> None:
        """Undo :meth:`fail_always` and drop any queued faults."""
        with self._lock:
            self._always_status = None
            self._faults.clear()

    # -- internals -------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle_tokenize(self, handler: _Handler, path: str, raw: bytes) -> None:
        body = json.loads(raw.decode("utf-8")) if raw else {}
        with self._lock:
            self.tokenize_requests.append((path, body, {k.lower(): v for k, v in handler.headers.items()}))
            self._tokenize_in_flight += 1
            self.tokenize_max_in_flight = max(self.tokenize_max_in_flight, self._tokenize_in_flight)
        try:
            if self.tokenize_latency and self._stopping.wait(self.tokenize_latency):
                handler.close_connection = True
                return
            if self.tokenizer == "llamacpp":  # reads only what llama.cpp reads
                if path == "/apply-template":
                    handler._send_json(200, {"prompt": chat_template(_messages(body))})
                else:
                    content = body.get("content")
                    tokens = stub_tokens(content, bool(body.get("add_special", False))) \
                        if isinstance(content, str) else []
                    handler._send_json(200, {"tokens": tokens})
                return
            if path != "/tokenize":  # vLLM has no /apply-template
                handler._send_error_json(404, "Not Found")
                return
            if body.get("model") not in self.models:
                handler._send_error_json(404, f"The model `{body.get('model')}` does not exist.")
                return
            text = chat_template(_messages(body)) if "messages" in body else str(body.get("prompt", ""))
            tokens = stub_tokens(text, bool(body.get("add_special_tokens", True)))
            handler._send_json(200, {"count": len(tokens), "max_model_len": 32768, "tokens": tokens})
        finally:
            with self._lock:
                self._tokenize_in_flight -= 1

    def _handle_chat(self, handler: _Handler, raw: bytes, completion: bool = False) -> None:
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
            bad_json = None if isinstance(body, dict) else "request body must be a JSON object"
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            body, bad_json = {"_raw": raw.decode("utf-8", "replace")}, f"invalid JSON body: {exc}"
        if not isinstance(body, dict):
            body = {"_raw": body}
        hdrs = {k.lower(): v for k, v in handler.headers.items()}

        with self._lock:
            self.requests.append(body)
            self.paths.append("/completions" if completion else "/chat/completions")
            self.headers.append(hdrs)
            self._calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._always_status is not None:
                fault: dict | None = {
                    "kind": "fail",
                    "status": self._always_status,
                    "retry_after": None,
                    "body": None,
                }
            else:
                fault = self._faults.popleft() if self._faults else None
        try:
            if self.slots is None:
                self._answer(handler, body, bad_json, fault, completion)
            else:  # like llama.cpp: at most ``slots`` requests run, the rest wait their turn
                with self._slot_gate:
                    self._answer(handler, body, bad_json, fault, completion)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, handler: _Handler, body: dict, bad_json: str | None, fault: dict | None,
                completion: bool = False) -> None:
        delay = self.latency
        if fault is not None and fault["kind"] == "hang":
            delay += fault["seconds"]
        if delay > 0 and self._stopping.wait(delay):
            handler.close_connection = True
            return
        with self._lock:
            self.generations += 1
            self.abandoned += _client_gone(handler.connection)

        if fault is not None and fault["kind"] == "fail":
            status = int(fault["status"])
            extra: dict[str, str] = {}
            if fault["retry_after"] is not None:
                ra = float(fault["retry_after"])
                extra["Retry-After"] = str(int(ra)) if ra == int(ra) else repr(ra)
            if fault["body"] is not None:
                handler._send(status, fault["body"].encode("utf-8"), extra_headers=extra)
            else:
                handler._send_error_json(status, f"stub injected error {status}", extra_headers=extra)
            return
        if fault is not None and fault["kind"] == "malformed":
            handler._send(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess')
            return
        if bad_json is not None:
            handler._send_error_json(400, bad_json)
            return

        # A responder may return a dict: content plus reasoning_content, logprobs (a list of OpenAI token
        # entries) and finish_reason, for protocol tests.
        extra: dict = {}
        try:
            text = self.responder(body)
            if isinstance(text, dict):
                extra, text = text, text.get("content", "")
            if not isinstance(text, str):
                text = str(text)
        except Refuse as exc:
            handler._send_error_json(exc.status, exc.message)
            return
        except Exception as exc:  # responder bug -> 500 with the message
            handler._send_error_json(500, f"responder raised {type(exc).__name__}: {exc}")
            return

        model = self.reported_model or body.get("model") or "stub-model"
        prompt_tokens = prompt_chars(body)
        completion_tokens = len(text)
        with self._lock:
            n = self._calls
        completion_id = f"chatcmpl-stub-{n}-{time.monotonic_ns()}"
        created = int(time.time())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if completion:
            handler._send_json(200, {
                "id": completion_id.replace("chatcmpl", "cmpl"), "object": "text_completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": extra.get("finish_reason", "stop"),
                             "logprobs": _completion_logprobs(extra["logprobs"]) if extra.get("logprobs") else None}],
                "usage": usage})
            return
        if body.get("stream"):
            handler._send(
                200,
                _sse_payload(completion_id, created, model, text, usage),
                "text/event-stream; charset=utf-8",
            )
            return
        handler._send_json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "request_id": completion_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text,
                                    **({"reasoning_content": extra["reasoning_content"]}
                                       if extra.get("reasoning_content") else {})},
                        "finish_reason": extra.get("finish_reason", "stop"),
                        **({"logprobs": {"content": extra["logprobs"]}} if extra.get("logprobs") else {}),
                    }
                ],
                "usage": usage,
            },
        )


def _completion_logprobs(entries: list[dict]) -> dict:
    """Chat-shaped token entries (what a responder returns) in the completions API's shape: parallel lists of
    tokens, their log-probabilities, their alternatives (``{token: logprob}``) and character offsets."""
    offsets, at = [], 0
    for e in entries:
        offsets.append(at)
        at += len(e["token"])
    return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e.get("top_logprobs") or []} for e in entries],
            "text_offset": offsets}


def _client_gone(conn: socket.socket) -> bool:
    """Whether the client closed its side (it timed out): readable with nothing to read."""
    try:
        ready, _, _ = select.select([conn], [], [], 0)
        return bool(ready) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _sse_payload(completion_id: str, created: int, model: str, text: str, usage: dict) -> bytes:
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
    ]
    out = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return out.encode("utf-8")


# --------------------------------------------------------------------------- subprocess helpers


def spawn_stub(
    latency: float = 0.0, reply: str = "alignbench", timeout: float = 15.0
) -> tuple[subprocess.Popen, str]:
    """Run the stub server CLI in a subprocess; return ``(process, base_url)``.

    ``base_url`` ends in ``/v1``.  The caller must terminate/kill the process.
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--port",
            "0",
            "--latency",
            str(latency),
            "--reply",
            reply,
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("http"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"stub server did not start (exit={proc.returncode}, first line={line!r})")
    return proc, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible stub chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to sleep per chat request")
    parser.add_argument("--reply", choices=sorted(_REPLIES), default="fixed")
    args = parser.parse_args(argv)
    server = StubServer(_REPLIES[args.reply], latency=args.latency, host=args.host, port=args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
