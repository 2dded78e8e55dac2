"""Secrets never leave the machine except to their own provider, and never appear in output.

Why here, in one place: a key can leak three ways — sent to the wrong server (an OpenAI key to a
local vLLM that logs headers, or to any host named by ``--judge-base-url``), written into a URL
(``http://user:KEY@host/v1``, ``?api_key=``), or quoted back by a server in a reply or an error.
``redact_url`` strips credentials from any URL we store or print; ``redact`` replaces every known key
value in text before it is printed, cached or written, in the forms a server may echo it: any letter case,
split across lines, percent- or base64-encoded, or only its first characters.
"""

from __future__ import annotations

import base64
import os
import re
from functools import lru_cache
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

_SECRET_NAME = re.compile(r"(API_KEY|APIKEY|_TOKEN|_SECRET|_PASSWORD)$", re.IGNORECASE)
# A URL part that may carry a credential: a query, fragment or ``;path`` parameter whose name contains one of
# these (``api_key``, ``access_token``, ``X-Amz-Signature``, ``;jsessionid``, ``?pass=``, ``?code=`` …).
_CREDENTIAL = r"(?:key|token|secret|pass|pwd|auth|access|code|sig|session|credential|ticket)"
_PARAM = re.compile(rf"([?&;#][\w.\-\[\]%]*{_CREDENTIAL}[\w.\-\[\]%]*=)[^&;#?\s\"'<>]*", re.IGNORECASE)
# user info: ``scheme://user:pass@`` (a ``/`` inside the password, which no parser accepts, included)
_USERINFO = re.compile(r"([a-z][a-z0-9+.\-]*://)(?:[^\s/@?#]*:[^\s@?#]*|[^\s/@?#:]+)@", re.IGNORECASE)
PREFIX = 16  # a key's first 16 characters (and whatever follows of it) are masked wherever they appear
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


def _spread(chars: str) -> str:
    """``chars`` as a pattern that also matches them split by whitespace or line breaks."""
    return r"\s*".join(re.escape(c) for c in chars)


def _prefix_and_rest(secret: str) -> str:
    """The key's first ``PREFIX`` characters, then as much of the rest as follows (so no tail is left
    visible): nested optional groups, each character allowed to be preceded by whitespace."""
    head = secret[:PREFIX]
    rest = secret[PREFIX:]
    tail = ""
    for c in reversed(rest):
        tail = rf"(?:\s*{re.escape(c)}{tail})?"
    return _spread(head) + tail


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that encode only the key, at each of the three byte offsets it can start at
    within a longer encoded text (standard and URL-safe alphabets; padding is outside the core)."""
    raw = secret.encode("utf-8")
    out = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode("ascii")
        core = enc[-(-8 * k // 6) if k else 0:(8 * (k + len(raw))) // 6]
        if len(core) >= 8:
            out.update({core, core.translate(str.maketrans("+/", "-_"))})
    return out


@lru_cache(maxsize=8)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for every form of every key: as written, in any letter case, split by whitespace, its
    first ``PREFIX`` characters on, percent-encoded, and base64-encoded (case-sensitive)."""
    forms: list[str] = []
    for secret in secrets:
        text = [_prefix_and_rest(secret) if len(secret) > PREFIX else _spread(secret)]
        text += [re.escape(q) for q in {quote(secret, safe=""), quote_plus(secret)} if q != secret]
        forms.append("(?i:" + "|".join(text) + ")")
        forms += sorted((re.escape(c) for c in _base64_cores(secret)), key=len, reverse=True)
    return re.compile("|".join(forms)) if forms else None


def redact(text: str | None, extra: tuple[str, ...] = ()) -> str | None:
    """``text`` with every known key value (in any of the forms ``_pattern`` knows) and every credential
    in a URL (user info, credential-named parameters) masked."""
    if not text:
        return text
    pattern = _pattern(tuple(known_secrets(extra)))
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "://" in text:
        text = _USERINFO.sub(rf"\1{MASK}@", text)
    return _PARAM.sub(rf"\1{MASK}", text) if "=" in text else text


def redact_url(url: str | None) -> str | None:
    """A URL without user info and without credential-looking query, fragment or ``;path`` parameters (for
    manifests, logs, errors). Never raises: a URL no parser accepts (``user:pa/ss@host``) is masked as text."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        if ":" in (parts.hostname or "") and not host.startswith("["):  # IPv6
            host = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    except ValueError:
        pass
    return _PARAM.sub(rf"\1{MASK}", _USERINFO.sub(rf"\1{MASK}@", url))


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used as a server address (it does not parse, or has no host), or None; the
    reason names the URL redacted."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:  # the parser's words may quote the password: not repeated
        return f"{redact_url(url)} does not parse; percent-encode '/', '@', ':' in a user name or password"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{redact_url(url)} is not an http(s) URL with a host"
    return None


def same_host(url: str | None, other: str | None) -> bool:
    """Whether two URLs name the same host (scheme https for both, so a key never goes out in clear)."""
    if not url or not other:
        return False
    a, b = urlsplit(url), urlsplit(other)
    return a.scheme == b.scheme == "https" and (a.hostname or "").lower() == (b.hostname or "").lower()
