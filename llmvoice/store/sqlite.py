"""SQLite, the embedded default store: one file, WAL, one transaction per save.

A save is a single ``BEGIN IMMEDIATE`` transaction (check the version, write the row, commit):
a process killed during it leaves the old state or the new one, never a torn row. Several
processes may share the file; SQLite serialises their writes::

    store = SQLiteStore("sessions.db", ttl_s=24 * 3600)
    stored = store.load(session_id)
    version = store.save(state, expected_version=stored.version if stored else None)
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Final

from llmvoice.errors import StoreConflictError, StoreError
from llmvoice.store.base import SessionStore

__all__ = ["SQLiteStore"]

_SCHEMA: Final[str] = (
    "CREATE TABLE IF NOT EXISTS llmvoice_sessions ("
    "id TEXT PRIMARY KEY, version INTEGER NOT NULL, saved_at REAL NOT NULL, state TEXT NOT NULL)"
)


_MEMORY_SCHEMA: Final[str] = (
    "CREATE TABLE IF NOT EXISTS llmvoice_memory ("
    "user_id TEXT NOT NULL, skill TEXT NOT NULL, saved_at REAL NOT NULL, text TEXT NOT NULL, "
    "PRIMARY KEY (user_id, skill))"
)


class SQLiteStore(SessionStore):
    """Sessions in a SQLite file (``":memory:"`` for tests).

    Args:
        path: the database file.
        ttl_s: sessions not saved for this long are treated as gone.
        clock: seconds since the epoch.
        timeout_s: how long a save waits for another writer's lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.execute(_MEMORY_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {self.path!r}: {exc}") from exc

    def _load(self, session_id: str) -> tuple[str, int, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, version, saved_at FROM llmvoice_sessions WHERE id = ?", (session_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), float(row[2]))

    def _save(self, session_id: str, text: str, expected: int | None, now: float) -> int:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "SELECT version, saved_at FROM llmvoice_sessions WHERE id = ?", (session_id,)
                    ).fetchone()
                    actual = None if row is None else int(row[0])
                    expired = row is not None and self.ttl_s is not None and now - float(row[1]) > self.ttl_s
                    if actual != expected and not (expected is None and expired):
                        raise StoreConflictError(session_id, expected, actual if actual is not None else 0)
                    version = (actual or 0) + 1
                    self._db.execute(
                        "INSERT INTO llmvoice_sessions (id, version, saved_at, state) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET version = excluded.version, saved_at = excluded.saved_at, "
                        "state = excluded.state",
                        (session_id, version, now, text),
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot save session {session_id!r}: {exc}") from exc
        return version

    def _delete(self, session_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM llmvoice_sessions WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    def _ids(self, prefix: str, limit: int) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM llmvoice_sessions WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _load_memory(self, user_id: str, skill: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text FROM llmvoice_memory WHERE user_id = ? AND skill = ?", (user_id, skill)
            ).fetchone()
        return None if row is None else str(row[0])

    def _save_memory(self, user_id: str, skill: str, text: str, now: float) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO llmvoice_memory (user_id, skill, saved_at, text) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(user_id, skill) DO UPDATE SET saved_at = excluded.saved_at, text = excluded.text",
                    (user_id, skill, now, text),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot save the memory of {user_id!r} for {skill!r}: {exc}") from exc

    def purge_expired(self) -> int:
        """Delete the sessions past ``ttl_s``; how many were deleted (0 without a TTL)."""
        if self.ttl_s is None:
            return 0
        with self._lock:
            cursor = self._db.execute("DELETE FROM llmvoice_sessions WHERE saved_at < ?", (self.clock() - self.ttl_s,))
        return cursor.rowcount

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
