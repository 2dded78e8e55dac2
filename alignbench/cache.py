"""Content-addressed store of raw judge replies in SQLite.

The key is a hash of everything that determines a reply (judge fingerprint, rubric version,
messages, decoding settings), so a repeated command reads the store instead of paying again, and a
parser fix costs nothing: only raw text and token usage are stored, never parsed scores, never keys.
Each reply is committed as it arrives (WAL mode), so a killed run keeps every reply it received.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from alignbench.types import JudgeReply, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    model TEXT,
    text TEXT NOT NULL,
    usage TEXT NOT NULL,
    endpoint TEXT,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    env = os.environ.get("ALIGNBENCH_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "alignbench" / "replies.sqlite"


class ReplyStore:
    """A SQLite table of replies keyed by content. Used from one thread (the event loop)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> JudgeReply | None:
        row = self._db.execute("SELECT text, usage, model, endpoint FROM replies WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        text, usage, model, endpoint = row
        return JudgeReply(text=text, usage=Usage(**json.loads(usage)), model=model or "", endpoint=endpoint,
                          cached=True)

    def get_many(self, keys: list[str]) -> dict[str, JudgeReply]:
        found: dict[str, JudgeReply] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, usage, model, endpoint in self._db.execute(
                    f"SELECT key, text, usage, model, endpoint FROM replies WHERE key IN ({marks})", chunk):
                found[key] = JudgeReply(text=text, usage=Usage(**json.loads(usage)), model=model or "",
                                        endpoint=endpoint, cached=True)
        return found

    def put(self, key: str, judge: str, reply: JudgeReply) -> None:
        if reply.text is None:
            return  # failures are never cached: a later run should try again
        self._db.execute(
            "INSERT OR REPLACE INTO replies (key, judge, model, text, usage, endpoint, created) VALUES (?,?,?,?,?,?,?)",
            (key, judge, reply.model, reply.text, reply.usage.model_dump_json(), reply.endpoint, time.time()),
        )

    def stats(self) -> dict[str, object]:
        rows = self._db.execute("SELECT judge, COUNT(*) FROM replies GROUP BY judge").fetchall()
        return {"path": str(self.path), "replies": sum(n for _, n in rows), "by_judge": dict(rows),
                "bytes": self.path.stat().st_size if self.path.exists() else 0}

    def clear(self, judge: str | None = None) -> int:
        cur = self._db.execute("DELETE FROM replies WHERE judge = ?", (judge,)) if judge else \
            self._db.execute("DELETE FROM replies")
        return cur.rowcount

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReplyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullStore(ReplyStore):
    """``--no-cache``: nothing is read or written."""

    def __init__(self) -> None:  # noqa: D107 - no database at all
        self.path = Path(os.devnull)

    def get(self, key: str) -> JudgeReply | None:
        return None

    def get_many(self, keys: list[str]) -> dict[str, JudgeReply]:
        return {}

    def put(self, key: str, judge: str, reply: JudgeReply) -> None:
        return None

    def stats(self) -> dict[str, object]:
        return {"path": None, "replies": 0, "by_judge": {}, "bytes": 0}

    def clear(self, judge: str | None = None) -> int:
        return 0

    def close(self) -> None:
        return None
