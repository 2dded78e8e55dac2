"""The one bounded JSON reader: every JSON we did not write ourselves a moment ago goes through ``loads``.

Why: ``json.loads`` has no bounds. A 5,000-digit integer raises a bare ``ValueError`` (Python's
``int_max_str_digits``), 5,000 levels of nesting a ``RecursionError``, a lone ``\\ud800`` escape gives a
string that cannot be written as UTF-8 (a crash only when the run is stored, after the judge was paid).
A judge reply, a provider's batch output line or a user's input file may hold any of them. Here each is a
``JSONLimitError``, a subclass of ``json.JSONDecodeError``, so every caller that already handles bad JSON
(a counted parse failure with the text kept, one line naming file and line) handles these too, and
nothing else ever escapes.

The checks cost nearly nothing on ordinary data: depth is scanned only when the text holds more opening
brackets than the limit allows, integers are hooked only when a run of digits longer than the limit
exists, surrogates are looked for only when a ``\\uD800``–``\\uDFFF`` escape is in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 2**20  # one document (a whole JSON file, one JSONL line, one reply)
MAX_DEPTH = 128  # nesting of arrays and objects: far above any file or verdict this tool reads
MAX_DIGITS = 400  # digits of one integer (Python's own limit is 4,300 and raises a bare ValueError)

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE = re.compile(r"[\ud800-\udfff]")


class JSONLimitError(json.JSONDecodeError):
    """JSON beyond a bound (size, nesting, integer digits) or holding text that cannot be stored."""


def _depth(text: str, limit: int) -> int:
    """The position where nesting first exceeds ``limit``, or -1 (strings skipped: brackets in them count
    for nothing)."""
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c in "]}":
            depth -= 1
    return -1


def _int_hook(limit: int, doc: str) -> Any:
    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > limit:
            raise JSONLimitError(f"an integer of {len(s.lstrip('-')):,} digits (at most {limit:,})", doc,
                                 max(0, doc.find(s)))
        return int(s)

    return parse_int


def lone_surrogate(obj: Any) -> str | None:
    """The first lone UTF-16 surrogate in any string of ``obj`` (keys too), as ``\\udXXX``; None if there is
    none. Such a string cannot be encoded as UTF-8: no cache, run folder or terminal can store it."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            m = _LONE.search(item)
            if m:
                return f"\\u{ord(m.group()):04x}"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def scrub(obj: Any) -> Any:
    """``obj`` with every lone surrogate replaced by U+FFFD: a paid reply that holds one is stored (escaped)
    rather than lost or crashing the cache. Nesting is bounded by ``loads``, so the recursion is too."""
    if isinstance(obj, str):
        return _LONE.sub("\ufffd", obj) if _LONE.search(obj) else obj
    if isinstance(obj, dict):
        return {scrub(k): scrub(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj


def loads(data: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
          max_digits: int = MAX_DIGITS, storable: bool = True) -> Any:
    """``json.loads`` within bounds. Raises ``json.JSONDecodeError`` for bad JSON and ``JSONLimitError``
    (a subclass) for JSON beyond ``max_bytes``, ``max_depth`` or ``max_digits``, or, with ``storable``,
    holding a lone surrogate; never ``RecursionError`` or a bare ``ValueError``."""
    if isinstance(data, bytes | bytearray):
        if len(data) > max_bytes:
            raise JSONLimitError(f"{len(data):,} bytes (at most {max_bytes:,})", "", 0)
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise JSONLimitError(f"not UTF-8 ({exc.reason} at byte {exc.start})", "", 0) from None
    text: str = data
    if len(text) > max_bytes:
        raise JSONLimitError(f"{len(text):,} characters (at most {max_bytes:,})", "", 0)
    if text.count("[") + text.count("{") > max_depth:
        at = _depth(text, max_depth)
        if at >= 0:
            raise JSONLimitError(f"nested more than {max_depth} levels deep", text, at)
    hook = _int_hook(max_digits, text) if re.search(rf"\d{{{max_digits + 1}}}", text) else None
    try:
        obj = json.loads(text, parse_int=hook)
    except RecursionError:  # a lower recursion limit than ``max_depth`` needs (a deep call stack)
        raise JSONLimitError("nested too deeply", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int_max_str_digits below ``max_digits``, set by the embedding program
        raise JSONLimitError(str(exc).split(";")[0], text, 0) from None
    if storable and _SURROGATE_ESCAPE.search(text):
        bad = lone_surrogate(obj)
        if bad:
            raise JSONLimitError(f"a lone UTF-16 surrogate ({bad}), which cannot be stored as UTF-8", text,
                                 max(0, text.lower().find(bad)))
    return obj


def describe(exc: json.JSONDecodeError) -> str:
    """What is wrong, in the words an error line uses: ``not valid JSON (…, column N)`` or the bound."""
    if isinstance(exc, JSONLimitError):
        if exc.msg.startswith("not UTF-8"):
            return f"{exc.msg}; re-save the file as UTF-8"
        return f"JSON beyond this tool's limits: {exc.msg}"
    return f"not valid JSON ({exc.msg}, column {exc.colno})"


def read_json(path: Path | str, *, max_bytes: int = MAX_BYTES, **bounds: Any) -> Any:
    """A whole JSON file, bounded; ``OSError`` as the caller's usual, bad JSON as ``json.JSONDecodeError``
    (``JSONLimitError`` for a bound, the file's size first, before it is read)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise JSONLimitError(f"{size:,} bytes (at most {max_bytes:,})", "", 0)
    return loads(path.read_bytes(), max_bytes=max_bytes, **bounds)


def iter_lines(path: Path | str, *, max_bytes: int = MAX_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) for each line of a file, never holding more than ``max_bytes`` of one line:
    a longer line is yielded as None (the caller reports it) and skipped to its end."""
    with Path(path).open("rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(max_bytes + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > max_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(1 << 20)
                yield lineno, None
                continue
            yield lineno, raw


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_DIGITS", "JSONLimitError", "describe", "iter_lines", "loads",
           "lone_surrogate", "read_json", "scrub"]
