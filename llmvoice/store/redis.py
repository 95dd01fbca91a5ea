"""Redis, the store for many workers: an atomic check-and-set per save.

Each session is a hash ``<prefix>session:<id>`` (``version``, ``saved_at``, ``state``). A save runs
one Lua script on the server, which compares the version and writes the new state in one step,
so two workers can never both win from the same version. ``ttl_s`` becomes the key's expiry,
renewed by each save::

    store = RedisStore("redis://localhost:6379/0", ttl_s=24 * 3600)
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, Final

from llmvoice.errors import StoreConflictError, StoreError
from llmvoice.store.base import SessionStore

__all__ = ["RedisStore"]

_CHECK_AND_SET: Final[str] = """
local current = redis.call('HGET', KEYS[1], 'version')
local expected = ARGV[1]
if (expected == '' and current) or (expected ~= '' and current ~= expected) then
  return {-1, tonumber(current or '0')}
end
local version = tonumber(current or '0') + 1
redis.call('HSET', KEYS[1], 'version', version, 'saved_at', ARGV[3], 'state', ARGV[2])
if ARGV[4] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {version, 0}
"""


class RedisStore(SessionStore):
    """Sessions in Redis, shared by every worker.

    Args:
        url: a ``redis://`` URL, or an existing ``redis.Redis`` client.
        prefix: the key prefix (keeps llmvoice's keys apart from others in the same database).
        ttl_s: the sessions' expiry after their last save (``None``: none).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        url: str | Any,
        *,
        prefix: str = "llmvoice:",
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, clock=clock)
        try:
            redis = importlib.import_module("redis")
        except ImportError as exc:
            raise StoreError("RedisStore needs redis-py: pip install 'llmvoice[redis]'") from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self.client = redis.Redis.from_url(url) if isinstance(url, str) else url
        self.prefix = prefix
        self._script = self.client.register_script(_CHECK_AND_SET)

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def _load(self, session_id: str) -> tuple[str, int, float] | None:
        try:
            row = self.client.hmget(self._key(session_id), "state", "version", "saved_at")
        except self._errors as exc:
            raise StoreError(f"cannot load session {session_id!r}: {exc}") from exc
        if row[0] is None:
            return None
        return row[0].decode(), int(row[1]), float(row[2])

    def _save(self, session_id: str, text: str, expected: int | None, now: float) -> int:
        ttl_ms = "" if self.ttl_s is None else str(int(self.ttl_s * 1000))
        try:
            version, actual = self._script(
                keys=[self._key(session_id)], args=["" if expected is None else str(expected), text, repr(now), ttl_ms]
            )
        except self._errors as exc:
            raise StoreError(f"cannot save session {session_id!r}: {exc}") from exc
        if int(version) < 0:
            raise StoreConflictError(session_id, expected, int(actual))
        return int(version)

    def _delete(self, session_id: str) -> bool:
        try:
            return bool(self.client.delete(self._key(session_id)))
        except self._errors as exc:
            raise StoreError(f"cannot delete session {session_id!r}: {exc}") from exc

    def _ids(self, prefix: str, limit: int) -> list[str]:
        head = f"{self.prefix}session:"
        try:
            keys = [k.decode() for k in self.client.scan_iter(match=f"{head}{prefix}*", count=500)]
        except self._errors as exc:
            raise StoreError(f"cannot list sessions: {exc}") from exc
        return sorted(k[len(head) :] for k in keys)[:limit]

    def _load_memory(self, user_id: str, skill: str) -> str | None:
        try:
            value = self.client.get(f"{self.prefix}memory:{user_id}:{skill}")
        except self._errors as exc:
            raise StoreError(f"cannot load the memory of {user_id!r} for {skill!r}: {exc}") from exc
        return None if value is None else str(value.decode())

    def _save_memory(self, user_id: str, skill: str, text: str, now: float) -> None:
        try:
            self.client.set(f"{self.prefix}memory:{user_id}:{skill}", text)
        except self._errors as exc:
            raise StoreError(f"cannot save the memory of {user_id!r} for {skill!r}: {exc}") from exc

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
