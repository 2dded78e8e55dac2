"""Judges behind an OpenAI-compatible chat API: OpenAI itself, vLLM, SGLang, llama.cpp, gateways.

One ``AsyncOpenAI`` client per server. Several servers serving the same judge are one judge
(``judges.pool``): each server has its own concurrency limit, requests for the same question prefer
the same server (to keep its prefix cache warm), and a server that fails is rested while the others
carry on. The SDK's own retries are off; the runner retries, so a retry lands on whichever server is
healthy.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import httpx
import openai
from openai.types import Completion
from openai.types.chat import ChatCompletion

from alignbench import safejson
from alignbench.judges.base import (
    ModelCallError,
    TokenizerUnavailable,
    completion_prompt,
    parse_retry_after,
    prompt_token_key,
    refused_connection,
)
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
from alignbench.logprobs import from_openai
from alignbench.redact import redact_url
from alignbench.types import ModelReply, ModelRequest

# The httpx the SDK itself uses (openai 3 bundles its own copy, ``httpx2``): its transport and errors.
_SDK_HTTPX = importlib.import_module(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])

TOKENIZE_CONCURRENCY = 16  # tokenizer requests in flight while counting (vLLM takes one prompt per request)
PROBE_TIMEOUT = 10.0  # seconds the first tokenizer request may take (a tokenizer answers in milliseconds)

_TOO_LONG_MARKERS = ("maximum context length", "context length", "too long", "context_length_exceeded",
                     "prompt is too long", "exceeds the model")


def _sdk_timeout(timeout: float) -> Any:
    """The SDK's own timeouts: connecting within ``timeout``, reading for much longer. The engine bounds every
    attempt by ``timeout`` as a whole; a read bound of its own would end a call the engine chose to wait on
    after a queue at the server (``Engine._attempt``: a call is not asked again while it is being served)."""
    return openai.Timeout(timeout * 10, connect=timeout)


class OpenAIChat(PooledClient):
    """A judge model reached through the OpenAI chat-completions API, or through its text-completions API
    (``/v1/completions``) for a request marked ``completion``: the bare prompt a judge fine-tuned on a raw
    input format was run with (CritiqueLLM), with no chat template put around it by the server."""

    backend = "openai"

    def __init__(self, name: str, model: str, base_urls: list[str | None], api_key: str | None,
                 timeout: float = 120.0, concurrency: int = 16, extra_body: dict | None = None,
                 structured_via: str = "json_schema", max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> None:
        self.name = name
        self.model = model
        self.structured_via = structured_via
        self.deadline = timeout  # the engine bounds each whole attempt by it
        self.extra_body = extra_body or {}
        self._token_counts: dict[str, int] = {}  # prompt_token_key -> the server's count, asked once per client
        self._token_where: str | None = None
        key = api_key or "EMPTY"  # local servers (vLLM, llama.cpp) accept any key
        # The SDK's own HTTP client, over a transport that stops a reply at max_reply_bytes (the engine
        # bounds each attempt's time as a whole; the transport bounds its memory).
        httpx_ = _SDK_HTTPX
        limits = httpx_.Limits(max_connections=max(100, concurrency), max_keepalive_connections=max(20, concurrency))

        def http() -> Any:
            return openai.DefaultAsyncHttpxClient(transport=bounded_transport(httpx_, max_bytes=max_reply_bytes,
                                                                              limits=limits))
        self.pool = EndpointPool([
            Endpoint(url=str(redact_url(url) or "https://api.openai.com/v1"), limit=concurrency,
                     client=openai.AsyncOpenAI(api_key=key, base_url=url, timeout=_sdk_timeout(timeout), max_retries=0,
                                               http_client=http()))
            for url in base_urls
        ])

    async def check(self) -> list[str]:
        """The servers that do not answer at all (an HTTP error still counts as answering). Also
        records which models each server says it serves (``served``), so a judge id the server does
        not serve, or a pool of servers serving different models, is caught before judging."""
        self.served: dict[str, list[str]] = {}

        async def probe(ep: Endpoint) -> str | None:
            # The model list and the slot count are asked at once: this check is time added before the
            # first judge request, so it costs one round trip, not three.
            slots = asyncio.ensure_future(_advertised_slots(ep))
            try:
                listed = await ep.client.with_options(timeout=5.0).models.list()
                ids = [m.id for m in getattr(listed, "data", None) or [] if isinstance(getattr(m, "id", None), str)]
                if ids:
                    self.served[ep.url] = ids
                if n := await slots:  # never more in flight than the server runs at once
                    ep.limit = min(ep.limit, n)
            except (openai.APIConnectionError, openai.APITimeoutError):
                return ep.url
            except (openai.APIError, ValueError, TypeError, ReplyTooLarge, _SDK_HTTPX.HTTPError):
                pass  # it answers (a huge or slow listing is still an answer)
            finally:
                slots.cancel()
            return None
        results = await asyncio.gather(*(probe(e) for e in self.pool.endpoints))
        return [r for r in results if r]

    async def count_prompts(self, requests: Sequence[ModelRequest], *, concurrency: int = TOKENIZE_CONCURRENCY,
                            deadline: float | None = None) -> tuple[dict[str, int], str]:
        """Prompt tokens of ``requests`` counted by the judge's own server, as it will count them when judging:
        ``({prompt_token_key: tokens}, where)``, or ``TokenizerUnavailable`` saying in one line why not.

        vLLM: ``POST {root}/tokenize`` with the chat messages (the server applies its chat template and the
        generation prompt, exactly what a chat completion gets) or a completion's bare prompt; the reply's
        ``count``. llama.cpp: the same first request is answered with ``{"tokens": []}`` (it reads only
        ``content``), so a chat prompt is rendered by ``POST {root}/apply-template`` and counted by
        ``POST {root}/tokenize`` ``{"content", "add_special": true}`` (the BOS its chat path adds). The root is
        the first server's URL without ``/v1``: the judge's own host, asked with the judge's own client (its
        key, which ``judges.key_to_send`` already keeps to the host it belongs to; its reply-size cap). One
        request first (a server without the endpoint costs one 404), then the rest ``concurrency`` at a time,
        each distinct prompt once, all within ``deadline`` seconds (default ``--timeout``; the first request
        within ``PROBE_TIMEOUT``): the 683 official prompts are ~43 requests deep, not a slow dry-run."""
        ep = self.pool.endpoints[0]
        root = _root(ep)
        shown = str(redact_url(root) or root)  # a URL's credentials never go into a message
        where = f"{shown}/tokenize"
        budget = self.deadline if deadline is None else deadline
        stop = time.monotonic() + budget
        todo = {prompt_token_key(r): r for r in requests if prompt_token_key(r) not in self._token_counts}

        async def post(path: str, body: dict[str, Any], cap: float | None = None) -> Any:
            left = stop - time.monotonic()
            if left <= 0:
                raise TokenizerUnavailable(f"{where} did not count {len(todo)} prompt(s) within {budget:g} s")
            message = ""
            try:
                resp = await ep.client.post(root + path, body=body, cast_to=httpx.Response,
                                            options={"timeout": min(left, cap or left)})
                status, content = resp.status_code, resp.content
            except openai.APIStatusError as exc:
                status, content, message = exc.status_code, b"", _error_message(exc)
            except (openai.APITimeoutError, asyncio.TimeoutError):
                raise TokenizerUnavailable(f"{where} did not count {len(todo)} prompt(s) within "
                                           f"{min(budget, cap or budget):g} s") from None
            except openai.APIConnectionError as exc:
                raise TokenizerUnavailable(f"cannot connect to {where}: {exc.__cause__ or exc}") from None
            except (openai.APIError, ReplyTooLarge, _SDK_HTTPX.HTTPError) as exc:
                raise TokenizerUnavailable(f"{where}: {exc}") from None
            if status != 200:
                said = f"HTTP {status}" + (f": {message}" if message else "")
                raise TokenizerUnavailable((f"no tokenizer endpoint at {shown}{path} ({said})" if status in (404, 405)
                                            else f"{said} from {shown}{path}")[:300])
            try:
                return safejson.loads(content)
            except ValueError as exc:
                raise TokenizerUnavailable(f"unreadable reply from {shown}{path}: {exc}"[:300]) from None

        def counted(reply: Any, key: str) -> int:
            value = reply.get(key) if isinstance(reply, dict) else None
            n = len(value) if key == "tokens" and isinstance(value, list) else value
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise TokenizerUnavailable(f"{where} answered without a token count")
            return n

        template = {k: v for k, v in self.extra_body.items() if k in ("chat_template", "chat_template_kwargs")}

        def vllm_body(request: ModelRequest) -> dict[str, Any]:
            body: dict[str, Any] = {"model": self.model}
            if request.completion:
                body["prompt"] = completion_prompt(request.messages)
            else:
                body.update(messages=[dict(m) for m in request.messages], **template)
            return body

        async def vllm(request: ModelRequest) -> int:
            return counted(await post("/tokenize", vllm_body(request)), "count")

        async def llamacpp(request: ModelRequest) -> int:
            if request.completion:
                text = completion_prompt(request.messages)
            else:
                rendered = await post("/apply-template", {"messages": [dict(m) for m in request.messages]})
                text = rendered.get("prompt") if isinstance(rendered, dict) else None
                if not isinstance(text, str):
                    raise TokenizerUnavailable(f"{shown}/apply-template answered without a prompt")
            return counted(await post("/tokenize", {"content": text, "add_special": True}), "tokens")

        if not todo:
            return {k: self._token_counts[k] for k in map(prompt_token_key, requests)}, self._token_where or where
        first_key, first = next(iter(todo.items()))
        probe = await post("/tokenize", vllm_body(first), cap=PROBE_TIMEOUT)  # a silent server: 10 s, not --timeout
        if isinstance(probe, dict) and "count" in probe:
            count, how = vllm, where
        elif isinstance(probe, dict) and isinstance(probe.get("tokens"), list):
            count, how = llamacpp, f"{where} after {shown}/apply-template" if not first.completion else where
        else:
            raise TokenizerUnavailable(f"{where} answered neither as vLLM nor as llama.cpp does")
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(key: str, request: ModelRequest) -> None:
            async with gate:
                self._token_counts[key] = await count(request)

        if count is vllm:
            self._token_counts[first_key] = counted(probe, "count")
            rest = [(k, r) for k, r in todo.items() if k != first_key]
        else:
            rest = list(todo.items())
        tasks = [asyncio.ensure_future(one(k, r)) for k, r in rest]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        self._token_where = how
        return {k: self._token_counts[k] for k in map(prompt_token_key, requests)}, how

    def body_for(self, request: ModelRequest, sent: set[str]) -> dict[str, Any]:
        """The JSON body posted for ``request``: online, and as a batch line's ``body`` (see ``request_body``)."""
        return request_body(request, self.model, extra_body=self.extra_body, structured_via=self.structured_via,
                            sent=sent)

    def read_body(self, body: dict[str, Any], url: str) -> ModelReply:
        """A reply from a chat or text completion that arrived as JSON (a batch output line), read by the same
        code as an online reply: the SDK's own loose construction of its response type, then its reader."""
        choices = body.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        if body.get("object") == "text_completion" or ("text" in first and "message" not in first):
            return self.completion_reply(Completion.construct(**body), url)
        return self.reply_from(ChatCompletion.construct(**body), url)

    def completion_reply(self, resp: Any, url: str) -> ModelReply:
        """A ModelReply from a text completion (``choices[0].text``), read by ``reply_from`` as a chat reply
        of the same text: usage, model, finish reason and log-probabilities (the completions API's
        ``tokens``/``token_logprobs``/``top_logprobs`` lists, turned into the chat shape) are read one way."""
        choices = getattr(resp, "choices", None)
        choice = choices[0] if isinstance(choices, list) and choices else None
        text = getattr(choice, "text", None) if choice is not None else None
        if not isinstance(text, str):
            raise ModelCallError(f"reply from {url} has no completion text", retryable=True, endpoint=url)
        chat = SimpleNamespace(model=getattr(resp, "model", None), usage=getattr(resp, "usage", None), choices=[
            SimpleNamespace(message=SimpleNamespace(content=text), logprobs=None,
                            finish_reason=getattr(choice, "finish_reason", None))])
        reply = self.reply_from(chat, url)
        tokens = from_openai(_chat_logprobs(getattr(choice, "logprobs", None)), text)
        return reply.model_copy(update={"logprobs": tokens}) if tokens else reply

    async def _send_once(self, endpoint: Endpoint, request: ModelRequest, sent: set[str]) -> ModelReply:
        url = endpoint.url
        path, kind = ("/completions", Completion) if request.completion else ("/chat/completions", ChatCompletion)
        try:  # the SDK's own POST (its headers, auth, errors, response type) with a body that is already JSON
            resp = await endpoint.client.post(path, body=self.body_for(request, sent), cast_to=kind)
        except openai.RateLimitError as exc:
            raise ModelCallError(f"429 rate limited by {url}", retryable=True, endpoint=url, overload=True,
                                 retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
        except openai.APITimeoutError:
            raise ModelCallError(f"timed out waiting for {url}", retryable=True, endpoint=url, overload=True) from None
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, ReplyTooLarge):
                raise ModelCallError(f"{exc.__cause__} (from {url})", retryable=False, endpoint=url) from None
            raise ModelCallError(f"cannot connect to {url}: {exc.__cause__ or exc}", retryable=True,
                                 endpoint=url, unreachable=refused_connection(exc)) from None
        except openai.APIStatusError as exc:
            message = _error_message(exc)
            if feature := refused_feature(exc.status_code, message, sent):  # a 500 naming response_format too
                raise FeatureRefused(feature, f"{exc.status_code} from {url}: {message}"[:300]) from None
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise ModelCallError(f"{exc.status_code} from {url}: {message}", retryable=True, endpoint=url,
                                     overload=exc.status_code == 503, retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from None
            if exc.status_code in (400, 413, 422) and any(m in message.lower() for m in _TOO_LONG_MARKERS):
                raise ModelCallError(f"prompt too long for the judge: {message}", retryable=False,
                                     too_long=True, endpoint=url) from None
            if request.completion and exc.status_code in (404, 405):
                message += (" (this judge sends text completions to /completions, which the server does not "
                            "serve; a chat form of the same judge, e.g. --judge critiquellm-chat, is an explicit choice)")
            raise ModelCallError(f"{exc.status_code} from {url}: {message}", retryable=False, endpoint=url,
                                 fatal=exc.status_code in (401, 403, 404)) from None
        except ReplyTooLarge as exc:  # read outside the SDK's send (a streamed body)
            raise ModelCallError(f"{exc} (from {url})", retryable=False, endpoint=url) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise ModelCallError(f"malformed reply from {url}: {exc}", retryable=True, endpoint=url) from None
        return self.completion_reply(resp, url) if request.completion else self.reply_from(resp, url)

    async def aclose(self) -> None:
        for ep in self.pool.endpoints:
            await ep.client.close()


build = OpenAIChat.from_config  # the registry's factory (see ``judges/presets.yaml``)


def request_body(request: ModelRequest, model: str, *, extra_body: dict[str, Any] | None = None,
                 structured_via: str = "json_schema", sent: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The JSON body for ``request``: a chat completion (``messages``), or for a request marked ``completion`` a
    text completion (``prompt``: ``completion_prompt``, the bare string, no chat template), with the protocol
    features in ``sent`` ("structured", "logprobs") and ``extra_body`` merged over the top level. The one place
    an OpenAI-compatible request is made: an online call posts it and a batch line carries it, so the two
    cannot drift apart (a batch line once lacked the schema and the log-probabilities an online call carried).

    A text completion asks for structured output only as vLLM's ``guided_json`` (``response_format`` is a
    chat parameter; ``judges.check_prompt_format`` refuses the others before any call) and for
    log-probabilities as the completions API does (``logprobs: N``).

    Why not ``chat.completions.create``: it walks every message through the SDK's typed-dict transform
    (1-2 ms of CPU per request, more than everything else we do per judgment) to produce this same dict."""
    dec = request.decoding
    body: dict[str, Any] = {"model": model}
    if request.completion:
        body["prompt"] = completion_prompt(request.messages)
    else:
        body["messages"] = [dict(m) for m in request.messages]
    body.update(temperature=dec.temperature, max_tokens=dec.max_tokens)
    if dec.top_p is not None:
        body["top_p"] = dec.top_p
    if dec.seed is not None:
        body["seed"] = dec.seed
    if "structured" in sent and request.response_schema is not None:
        schema = request.response_schema
        if structured_via == "guided_json":  # vLLM's guided decoding (chat and text completions alike)
            body["guided_json"] = schema
        elif request.completion:
            raise ModelCallError(f"structured output by {structured_via} needs chat messages; a text completion "
                                 "takes guided_json only", retryable=False, fatal=True)
        elif structured_via == "json_object":  # with the schema: llama.cpp servers constrain to it
            body["response_format"] = {"type": "json_object", "schema": schema}
        else:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "alignbench_verdict", "schema": schema, "strict": True}}
    if "logprobs" in sent and request.logprobs:
        if request.completion:
            body["logprobs"] = request.logprobs
        else:
            body.update(logprobs=True, top_logprobs=request.logprobs)
    body.update(extra_body or {})
    return body


def _chat_logprobs(logprobs: Any) -> list[dict[str, Any]] | None:
    """A text completion's log-probabilities (parallel lists ``tokens``, ``token_logprobs``, ``top_logprobs``
    of ``{token: logprob}``) as the chat API's ``content`` entries, which ``logprobs.from_openai`` reads."""
    def get(name: str) -> Any:
        return logprobs.get(name) if isinstance(logprobs, dict) else getattr(logprobs, name, None)

    tokens, values, tops = get("tokens"), get("token_logprobs"), get("top_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        return None
    tops = tops if isinstance(tops, list) and len(tops) == len(tokens) else [None] * len(tokens)
    return [{"token": t, "logprob": v,
             "top_logprobs": [{"token": k, "logprob": x} for k, x in top.items()] if isinstance(top, dict) else []}
            for t, v, top in zip(tokens, values, tops, strict=True)]


__all__ = ["Endpoint", "EndpointPool", "OpenAIChat", "build", "request_body"]


async def _advertised_slots(ep: Endpoint) -> int | None:
    """The parallel slots a server says it has: llama.cpp's ``/props`` (``total_slots``), SGLang's
    ``/get_server_info`` (``max_running_requests``). None when it does not say (vLLM, OpenAI)."""
    root = _root(ep)

    async def ask(path: str, key: str) -> int | None:
        try:
            resp = await ep.client.get(root + path, cast_to=httpx.Response, options={"timeout": 3.0})
            value = resp.json().get(key) if resp.status_code == 200 else None
        except (openai.APIError, ValueError, AttributeError, ReplyTooLarge, _SDK_HTTPX.HTTPError):
            return None
        return value if isinstance(value, int) and value > 0 else None

    found = await asyncio.gather(ask("/props", "total_slots"), ask("/get_server_info", "max_running_requests"))
    return next((n for n in found if n), None)


def _root(ep: Endpoint) -> str:
    """The server's root (its URL without ``/v1``), where vLLM's, llama.cpp's and SGLang's own routes live."""
    return str(ep.client.base_url).rstrip("/").removesuffix("/v1")


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(exc.message)

