"""What every judge backend offers: one async call per request, errors classified for retrying.

Backends never retry or sleep themselves (SDK retries are switched off): the runner owns retries,
backoff and concurrency, so the policy is the same for every backend and counted in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from alignbench.types import ModelReply, ModelRequest


class ModelCallError(Exception):
    """A call to a judge failed.

    ``retryable`` marks transient failures (429, 5xx, timeouts, dropped connections, malformed
    bodies); ``retry_after`` carries the server's Retry-After in seconds when it sent one;
    ``too_long`` marks a prompt that does not fit the judge's context (never retried);
    ``fatal`` marks errors that every other request would hit too (bad key, unknown model), which
    stop the run at once instead of failing every judgment one by one; ``overload`` marks a server
    that cannot keep up (timeout, 429, 503), so the engine sends fewer requests at once;
    ``unreachable`` marks a refused connection, so the engine checks whether every server is gone.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 too_long: bool = False, fatal: bool = False, endpoint: str | None = None,
                 overload: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable  # the connection itself was refused: the server may be gone
        self.overload = overload  # a timeout, 429 or 503: the server has more than it can run
        self.fatal = fatal
        self.retryable = retryable
        self.retry_after = retry_after
        self.too_long = too_long
        self.endpoint = endpoint


@runtime_checkable
class ModelClient(Protocol):
    """What the engine needs from a backend, whether it serves a judge or the model under test.

    ``fingerprint`` goes into every cache key; ``capacity`` bounds the requests in flight;
    ``check`` lists the servers that do not answer at all (empty for in-process models), so a run
    with nothing cached fails in one line instead of after every retry. A backend whose servers can count
    tokens also offers ``count_prompts(requests)`` (``OpenAIChat``: vLLM's and llama.cpp's tokenizer
    endpoints), which estimates use for a self-hosted judge (``cost.server_counter``).
    """

    name: str

    @property
    def fingerprint(self) -> str:
        """A stable string of everything that changes outputs (backend, model id); no URLs or keys."""
        ...

    @property
    def capacity(self) -> int:
        """Requests worth having in flight at once."""
        ...

    @property
    def urls(self) -> list[str]:
        """The servers behind this client (empty in-process)."""
        ...

    async def check(self) -> list[str]:
        """The servers that do not answer at all."""
        ...

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Send one request; return the reply or raise ModelCallError."""
        ...

    async def aclose(self) -> None: ...


class TokenizerUnavailable(Exception):
    """A judge's server cannot count prompt tokens (no tokenizer endpoint, an error, too slow): the message is
    the one line saying why, and the estimate falls back to its own counter."""


def prompt_token_key(request: ModelRequest) -> str:
    """What a server's token count of ``request`` depends on: its messages, and whether they are sent as chat
    (the server's chat template around them) or as one bare text completion. Requests differing only in
    seed or decoding (``--samples``) share one count."""
    return ("completion:" if request.completion else "chat:") + request.prompt_hash


def refused_connection(exc: BaseException) -> bool:
    """Whether an SDK's connection error was a refused connection (nothing listens any more), not a dropped
    or slow one. By class name: each SDK may bundle its own copy of httpx (openai 3 uses ``httpx2``)."""
    cause = exc.__cause__
    return cause is not None and any(c.__name__ == "ConnectError" for c in type(cause).__mro__)


def merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Fold a system message into the first user message, for judges whose chat format has no system role."""
    if len(messages) < 2 or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0], list(messages[1:])
    rest[0] = {"role": "user", "content": system["content"] + "\n\n" + rest[0]["content"]}
    return rest


def completion_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """The one bare prompt string of a text-completion request (``ModelRequest.completion``): the messages'
    text joined as ``merge_system`` joins a system message to its user turn. A completion-style rubric renders
    one user message, so the prompt is exactly that message: CritiqueLLM's input string, byte for byte, with no
    chat template around it. Every backend that sends a completion reads the prompt here, so a vLLM server, a
    batch line and the in-process tokenizer see the same string."""
    return "\n\n".join(m["content"] for m in messages)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import time
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
