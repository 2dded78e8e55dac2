"""Secrets never leave the machine except to their own provider, and never appear in output.

Why here, in one place: a key can leak three ways — sent to the wrong server (an OpenAI key to a
local vLLM that logs headers, or to any host named by ``--judge-base-url``), written into a URL
(``http://user:KEY@host/v1``, ``?api_key=``), or quoted back by a server in a reply or an error.
``redact_url`` strips credentials from any URL we store or print; ``redact`` replaces every known key
value in text before it is printed, cached or written.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_NAME = re.compile(r"(API_KEY|APIKEY|_TOKEN|_SECRET|_PASSWORD)$", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"(key|token|secret|password|sig)", re.IGNORECASE)
MASK = "***"


_IN_USE: set[str] = set()  # keys read for a client this process, whatever their variable is called


def remember(key: str | None) -> str | None:
    """Mark a key value read for a client as secret (``--api-key-env MY_KEY`` need not look like a key's
    name), so ``redact`` masks it wherever it shows up; returns it unchanged."""
    if key and len(key) >= 8:
        _IN_USE.add(key)
    return key


def known_secrets(extra: tuple[str, ...] = ()) -> list[str]:
    """Values of environment variables that look like keys (long enough to be one) and of every key read
    for a client, longest first."""
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8} | _IN_USE
    values.update(v for v in extra if v and len(v) >= 8)
    return sorted(values, key=len, reverse=True)


def redact(text: str | None, extra: tuple[str, ...] = ()) -> str | None:
    """``text`` with every known key value and every URL credential masked."""
    if not text:
        return text
    for secret in known_secrets(extra):
        if secret in text:
            text = text.replace(secret, MASK)
    return re.sub(r"(https?://)[^/\s:@]+(:[^/\s@]*)?@", rf"\1{MASK}@", text)


def redact_url(url: str | None) -> str | None:
    """A URL without user info and without secret-looking query parameters (for manifests, logs, errors)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode([(k, MASK if _QUERY_SECRET.search(k) else v) for k, v in parse_qsl(parts.query)], safe="*")
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


def same_host(url: str | None, other: str | None) -> bool:
    """Whether two URLs name the same host (scheme https for both, so a key never goes out in clear)."""
    if not url or not other:
        return False
    a, b = urlsplit(url), urlsplit(other)
    return a.scheme == b.scheme == "https" and (a.hostname or "").lower() == (b.hostname or "").lower()
