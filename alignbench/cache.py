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

from alignbench.types import ModelReply, Usage

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


class CacheError(ValueError):
    """The cache file cannot be used; the message names it and says what to do."""


def _problem(path: Path, exc: Exception) -> CacheError:
    return CacheError(f"reply cache {path} cannot be used ({exc}); pass --cache OTHER_FILE or --no-cache, or "
                      "delete the file (it only saves paying for replies again)")


class ReplyStore:
    """A SQLite table of replies keyed by content. Used from one thread (the event loop).

    A cache that cannot be opened (not a database, a folder, no permission) is a CacheError naming the
    file before anything is sent. A write that fails mid-run (a full disk) does not stop the run: the
    reply is used as received, ``write_failures`` counts what could not be stored, and the caller says
    so (a re-run would pay for those again)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self.write_failures = 0
        self.write_error: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(replies)")}
            if "finish" not in columns:  # caches written before finish reasons were kept
                self._db.execute("ALTER TABLE replies ADD COLUMN finish TEXT")
            if "extra" not in columns:  # caches written before reasoning, log-probabilities and structured output
                self._db.execute("ALTER TABLE replies ADD COLUMN extra TEXT")
            self._inode = _inode(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise _problem(self.path, exc) from None

    def vanished(self) -> bool:
        """The file was deleted or replaced since it was opened: SQLite goes on writing into the unlinked
        file without an error, so every reply stored since is lost when the run ends. Checked at the end
        of a run, so it is reported instead of discovered when a re-run pays again."""
        return _inode(self.path) != self._inode

    @staticmethod
    def _reply(text: str, usage: str, model: str | None, endpoint: str | None, finish: str | None,
               extra: str | None = None) -> ModelReply:
        more = json.loads(extra) if extra else {}
        return ModelReply(text=text, usage=Usage(**json.loads(usage)), model=model or "", endpoint=endpoint,
                          cached=True, finish_reason=finish, **more)

    def get(self, key: str) -> ModelReply | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, ModelReply]:
        found: dict[str, ModelReply] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, *row in self._db.execute(
                        f"SELECT key, text, usage, model, endpoint, finish, extra FROM replies WHERE key IN ({marks})",
                        chunk):
                    found[key] = self._reply(*row)
        except sqlite3.Error as exc:
            raise _problem(self.path, exc) from None
        return found

    def put(self, key: str, judge: str, reply: ModelReply) -> None:
        if reply.text is None:
            return  # failures are never cached: a later run should try again
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO replies (key, judge, model, text, usage, endpoint, created, finish, extra) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (key, judge, reply.model, reply.text, reply.usage.model_dump_json(), reply.endpoint, time.time(),
                 reply.finish_reason, _extra(reply)))
        except sqlite3.Error as exc:  # a full disk, a file removed under us: keep the run going, count it
            self.write_failures += 1
            self.write_error = str(exc)

    def stats(self) -> dict[str, object]:
        try:
            rows = self._db.execute("SELECT judge, COUNT(*) FROM replies GROUP BY judge").fetchall()
        except sqlite3.Error as exc:
            raise _problem(self.path, exc) from None
        return {"path": str(self.path), "replies": sum(n for _, n in rows), "by_judge": dict(rows),
                "bytes": self.path.stat().st_size if self.path.exists() else 0}

    def clear(self, judge: str | None = None) -> int:
        try:
            cur = self._db.execute("DELETE FROM replies WHERE judge = ?", (judge,)) if judge else \
                self._db.execute("DELETE FROM replies")
        except sqlite3.Error as exc:
            raise _problem(self.path, exc) from None
        return cur.rowcount

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReplyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


_EXTRA = ("reasoning", "logprobs", "structured", "structured_fallback")


def _extra(reply: ModelReply) -> str | None:
    """The reply's optional protocol fields as JSON (None when it has none: older rows look the same)."""
    more = reply.model_dump(mode="json", include=set(_EXTRA), exclude_none=True)
    return json.dumps(more, ensure_ascii=False, separators=(",", ":")) if more else None


class NullStore(ReplyStore):
    """``--no-cache``: nothing is read or written."""

    def __init__(self) -> None:  # noqa: D107 - no database at all
        self.path = Path(os.devnull)
        self.write_failures = 0
        self.write_error = None

    def get(self, key: str) -> ModelReply | None:
        return None

    def vanished(self) -> bool:
        return False

    def get_many(self, keys: list[str]) -> dict[str, ModelReply]:
        return {}

    def put(self, key: str, judge: str, reply: ModelReply) -> None:
        return None

    def stats(self) -> dict[str, object]:
        return {"path": None, "replies": 0, "by_judge": {}, "bytes": 0}

    def clear(self, judge: str | None = None) -> int:
        return 0

    def close(self) -> None:
        return None
