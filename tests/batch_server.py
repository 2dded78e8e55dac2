"""The loopback judge server (``stub_server.StubServer``) plus the files and batches endpoints of OpenAI
(under ``/v1``) and ZhipuAI (under ``/api/paas/v4``), for tests and benchmarks of ``--batch``.

Batches change state over time as the providers' do: ``validating`` → ``in_progress`` → ``finalizing`` →
``completed`` (seconds set by ``timing``), with an output file of chat completions (made by the same
responder as the online endpoint, so a batch run equals an online run) and an error file for the requests
that failed. Knobs for the cases a client must survive:

* ``hold()`` / ``release()``: batches stay ``in_progress`` until released (a kill between submit and
  download; ``--no-wait``);
* ``fail_items(custom_ids, status)``: those requests land in the error file, once;
* ``expire_next(n)``: the next batches expire with half of their requests done;
* ``max_requests``: a larger input file fails validation (checks that the client splits);
* ``create_delay`` / ``download_delay``: the server records the batch (or starts the download) and then
  waits, so a client can be killed in the middle; ``created_event`` / ``download_event`` tell when;
* ``cancel``: ``cancelling`` for ``timing[2]`` seconds, then ``cancelled`` with half the requests done;
* ``mangle``: a function that rewrites the next output file downloaded (cut lines, hostile JSON), once;
* ``echo_key``: every reply and every item error quotes the key the batch was created with (a provider that
  echoes what it received; the client must keep it out of every file it writes).

Output lines come from the same responder as the online endpoint, in the same shape: a responder returning a
dict (``content``, ``reasoning_content``, ``logprobs``, ``finish_reason``; e.g. ``tests/protocol_judge.py``, which
honours ``response_format``, ``guided_json`` and ``logprobs``) gives those fields, and one raising
``stub_server.Refuse`` puts that status and message into the error file, as a provider reports a request it
rejects.

Everything received is kept for assertions: ``uploads`` (each input file, parsed), ``created`` (batch ids
in order), ``downloads`` (file ids), ``retrieves`` (count).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stub_server import Refuse, StubServer, _content_text, _Handler, _messages, alignbench_responder

_PREFIX = re.compile(r"^(?P<prefix>/v1|/api/paas/v4)(?P<rest>/.*)?$")
ENDPOINTS = {"/v1": "/v1/chat/completions", "/api/paas/v4": "/v4/chat/completions"}


def char_count(body: dict) -> int:
    """Prompt tokens as the online stub counts them: characters of every message."""
    return sum(len(_content_text(m.get("content"))) for m in _messages(body))


def _bearer(header: str | None) -> str | None:
    """The key a client sent (``Authorization: Bearer KEY``), for ``echo_key``."""
    return header[7:].strip() if header and header.lower().startswith("bearer ") else None


class _BatchHandler(_Handler):
    def _route(self) -> tuple[str, str] | None:
        match = _PREFIX.match(self._path())
        return (match["prefix"], match["rest"] or "") if match else None

    def do_POST(self) -> None:
        route = self._route()
        stub: BatchServer = self.server.stub  # type: ignore[assignment]
        if route and route[1] == "/files":
            stub._upload(self, self._read_body())
        elif route and route[1] == "/batches":
            stub._create(self, route[0], self._read_body())
        elif route and (m := re.fullmatch(r"/batches/([^/]+)/cancel", route[1])):
            self._read_body()
            stub._cancel(self, m[1])
        else:
            super().do_POST()

    def do_GET(self) -> None:
        route = self._route()
        stub: BatchServer = self.server.stub  # type: ignore[assignment]
        if route and (m := re.fullmatch(r"/files/([^/]+)/content", route[1])):
            stub._content(self, m[1])
        elif route and (m := re.fullmatch(r"/batches/([^/]+)", route[1])):
            stub._retrieve(self, m[1])
        elif route and route[1] == "/batches":
            stub._list(self, parse_qs(urlsplit(self.path).query))
        else:
            super().do_GET()


class BatchServer(StubServer):
    """See the module docstring."""

    handler_class = _BatchHandler

    def __init__(self, responder: Callable[[dict], str] | None = None, *, timing: tuple[float, float, float] = (
            0.05, 0.2, 0.05), max_requests: int | None = None, prompt_counter: Callable[[dict], int] = char_count,
                 cached_counter: Callable[[dict], int] | None = None, **kwargs: Any) -> None:
        super().__init__(responder or alignbench_responder, **kwargs)
        self._lock = threading.RLock()  # a batch's files are made while its state is read under the lock
        self.timing = timing
        self.max_requests = max_requests
        self.prompt_counter = prompt_counter
        self.cached_counter = cached_counter
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.uploads: list[dict[str, Any]] = []
        self.created: list[str] = []
        self.downloads: list[str] = []
        self.retrieves = 0
        self.create_delay = 0.0
        self.download_delay = 0.0
        self.created_event = threading.Event()
        self.download_event = threading.Event()
        self.batch_prompt_tokens = 0
        self.busy_seconds = 0.0  # the server's own time making outputs (benchmarks subtract it)
        self.echo_key = False
        self.mangle: Callable[[bytes], bytes] | None = None  # rewrites the next output file sent (then cleared)
        self._held = False
        self._fail_items: dict[str, int] = {}
        self._expire = 0
        self._n = 0

    # -- knobs -----------------------------------------------------------------------------------

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        with self._lock:
            self._held = False
            now = time.monotonic()
            for b in self.batches.values():
                b.setdefault("released", now)

    def fail_items(self, custom_ids: list[str], status: int = 500) -> None:
        with self._lock:
            self._fail_items.update({c: status for c in custom_ids})

    def expire_next(self, n: int = 1) -> None:
        self._expire += n

    def lines_of(self, batch_id: str) -> list[dict[str, Any]]:
        return self.files[self.batches[batch_id]["input_file_id"]]["lines"]

    # -- helpers ---------------------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        with self._lock:
            self._n += 1
            return f"{kind}-{self._n:04d}{hashlib.sha1(str(time.time()).encode()).hexdigest()[:6]}"

    def _state(self, b: dict[str, Any]) -> str:
        """The batch's state now (moves with time), making its files when it first finishes."""
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return b["status"]
        now = time.monotonic()
        validating, running, finalizing = self.timing
        if b["status"] == "cancelling":
            if now - b["cancelling_mono"] >= finalizing:
                self._finish(b, "cancelled")
            return b["status"]
        age = now - b["mono"]
        if b.get("invalid"):
            if age >= validating:
                b["status"], b["failed_at"] = "failed", int(time.time())
            return b["status"]
        if age < validating:
            return "validating"
        if b["expire"] and age >= validating + running:
            self._finish(b, "expired")
            return b["status"]
        started = b.get("released", b["mono"] + validating) if b["held"] else b["mono"] + validating
        if (b["held"] and "released" not in b) or now - started < running:
            b["in_progress_at"] = b.get("in_progress_at") or int(time.time())
            return "in_progress"
        if now - started < running + finalizing:
            return "finalizing"
        self._finish(b, "completed")
        return b["status"]

    def _finish(self, b: dict[str, Any], status: str) -> None:
        started = time.perf_counter()
        lines = self.files[b["input_file_id"]]["lines"]
        done_upto = len(lines) if status == "completed" else len(lines) // 2
        out, err = [], []
        for i, line in enumerate(lines):
            cid = line["custom_id"]
            if i >= done_upto:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": code, "message": f"This request was not executed: the batch {status}."}})
                continue
            echo = f"（你的密钥是 {b['key']}）" if self.echo_key and b.get("key") else ""
            failing = self._fail_items.pop(cid, None)
            try:
                body = None if failing is not None else self._completion(line, echo)
            except Refuse as exc:
                failing, message = exc.status, exc.message
            else:
                message = f"stub batch item error {failing}{echo}"
            if failing is not None:
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None, "response": {
                    "status_code": failing, "request_id": f"req_{i}",
                    "body": {"error": {"message": message, "type": "server_error" if failing >= 500 else
                                       "invalid_request_error", "code": str(failing)}}}})
                continue
            out.append({"id": f"batch_req_{i}", "custom_id": cid, "error": None,
                        "response": {"status_code": 200, "request_id": f"req_{i}", "body": body}})
        now = int(time.time())
        for name, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                fid = self._id("file")
                data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
                self.files[fid] = {"bytes": data, "purpose": "batch_output", "filename": f"{b['id']}_{name}.jsonl",
                                   "lines": []}
                b[name] = fid
        b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        b["status"] = status
        b[f"{status}_at"] = now
        self.busy_seconds += time.perf_counter() - started

    def _completion(self, line: dict[str, Any], echo: str = "") -> dict[str, Any]:
        body = line["body"]
        out = self.responder(body)  # may raise Refuse: the caller puts it into the error file
        extra: dict[str, Any] = out if isinstance(out, dict) else {}
        # a dict's content is sent as it is (None, or a list of parts, are what broken providers send)
        content = extra.get("content", "") if isinstance(out, dict) else str(out)
        if echo and isinstance(content, str):
            content = f"{echo}\n{content}"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if extra.get("reasoning_content") or echo:
            message["reasoning_content"] = (extra.get("reasoning_content") or "") + echo
        prompt = self.prompt_counter(body)
        self.batch_prompt_tokens += prompt
        n = len(content) if isinstance(content, str) else 0
        usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
        if self.cached_counter is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_counter(body)}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": extra.get("finish_reason", "stop")}
        if extra.get("logprobs"):
            choice["logprobs"] = {"content": extra["logprobs"]}
        return {"id": f"chatcmpl-batch-{line['custom_id'][:8]}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model") or "stub-model", "choices": [choice],
                "usage": usage}

    def _object(self, b: dict[str, Any]) -> dict[str, Any]:
        status = self._state(b)
        keys = ("id", "object", "endpoint", "input_file_id", "completion_window", "output_file_id", "error_file_id",
                "created_at", "in_progress_at", "expires_at", "completed_at", "failed_at", "expired_at",
                "cancelling_at", "cancelled_at", "metadata")
        counts = b.get("request_counts") or {"total": b["n"], "completed": 0, "failed": 0}
        errors = {"object": "list", "data": b["errors"]} if b.get("errors") else None
        return {**{k: b.get(k) for k in keys}, "status": status, "request_counts": counts, "errors": errors}

    # -- endpoints -------------------------------------------------------------------------------

    def _upload(self, handler: _Handler, raw: bytes) -> None:
        ctype = handler.headers.get("Content-Type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        filename = None
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                filename = part.get_filename()
            fields[name] = part.get_payload(decode=True)
        data = fields.get("file") or b""
        purpose = (fields.get("purpose") or b"").decode()
        try:
            lines = [json.loads(x) for x in data.decode("utf-8").splitlines() if x.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            handler._send_error_json(400, f"not JSONL: {exc}")
            return
        fid = self._id("file")
        with self._lock:
            self.files[fid] = {"bytes": data, "purpose": purpose, "filename": filename, "lines": lines}
            self.uploads.append({"id": fid, "purpose": purpose, "n": len(lines), "bytes": len(data), "lines": lines})
        handler._send_json(200, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                 "filename": filename, "purpose": purpose, "status": "processed"})

    def _create(self, handler: _Handler, prefix: str, raw: bytes) -> None:
        body = json.loads(raw or b"{}")
        fid = body.get("input_file_id")
        if fid not in self.files:
            handler._send_error_json(404, f"no file {fid}")
            return
        lines = self.files[fid]["lines"]
        errors = []
        if body.get("endpoint") != ENDPOINTS[prefix]:
            errors.append({"code": "invalid_endpoint", "message": f"endpoint {body.get('endpoint')}"})
        ids = [x.get("custom_id") for x in lines]
        if len(set(ids)) != len(ids):
            errors.append({"code": "duplicate_custom_id", "message": "custom_id values must be unique"})
        if any(x.get("url") != ENDPOINTS[prefix] or x.get("method") != "POST" for x in lines):
            errors.append({"code": "invalid_url", "message": "every line must POST to " + ENDPOINTS[prefix]})
        if self.max_requests is not None and len(lines) > self.max_requests:
            errors.append({"code": "too_many_requests", "message": f"{len(lines)} > {self.max_requests} requests"})
        bid = self._id("batch")
        now = int(time.time())
        expire = self._expire > 0
        self._expire -= expire
        with self._lock:
            self.batches[bid] = {"id": bid, "object": "batch", "endpoint": body.get("endpoint"),
                                 "input_file_id": fid, "completion_window": body.get("completion_window"),
                                 "status": "validating", "created_at": now, "expires_at": now + 86400,
                                 "metadata": body.get("metadata"), "n": len(lines), "mono": time.monotonic(),
                                 "held": self._held, "expire": expire, "invalid": bool(errors), "errors": errors,
                                 "key": _bearer(handler.headers.get("Authorization"))}
            self.created.append(bid)
        self.created_event.set()
        if self.create_delay and self._stopping.wait(self.create_delay):
            return
        handler._send_json(200, self._object(self.batches[bid]))

    def _retrieve(self, handler: _Handler, bid: str) -> None:
        with self._lock:
            self.retrieves += 1
            b = self.batches.get(bid)
            obj = self._object(b) if b else None
        if obj is None:
            handler._send_error_json(404, f"no batch {bid}")
        else:
            handler._send_json(200, obj)

    def _list(self, handler: _Handler, query: dict[str, list[str]]) -> None:
        with self._lock:
            ids = list(reversed(self.created))  # newest first
            after = (query.get("after") or [None])[0]
            if after in ids:
                ids = ids[ids.index(after) + 1:]
            limit = int((query.get("limit") or ["20"])[0])
            page = [self._object(self.batches[i]) for i in ids[:limit]]
        handler._send_json(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                 "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit})

    def _cancel(self, handler: _Handler, bid: str) -> None:
        with self._lock:
            b = self.batches.get(bid)
            if b is not None and self._state(b) not in ("completed", "failed", "expired", "cancelled"):
                b["status"], b["cancelling_at"], b["cancelling_mono"] = "cancelling", int(time.time()), time.monotonic()
            obj = self._object(b) if b else None
        if obj is None:
            handler._send_error_json(404, f"no batch {bid}")
        else:
            handler._send_json(200, obj)

    def _content(self, handler: _Handler, fid: str) -> None:
        f = self.files.get(fid)
        if f is None:
            handler._send_error_json(404, f"no file {fid}")
            return
        self.downloads.append(fid)
        self.download_event.set()
        if self.download_delay and self._stopping.wait(self.download_delay):
            return
        data = f["bytes"]
        if self.mangle is not None and f["purpose"] == "batch_output" and f["filename"].endswith("output_file_id.jsonl"):
            data, self.mangle = self.mangle(data), None
        handler._send(200, data, "application/octet-stream")
