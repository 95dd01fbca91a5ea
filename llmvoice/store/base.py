"""The session-store seam: load and save a session's state with optimistic concurrency.

Every saved state carries a version. ``save(state, expected_version=v)`` succeeds only when the
store still holds version ``v`` (``None``: the session must not exist yet) and returns the new
version; otherwise it raises :class:`~llmvoice.errors.StoreConflictError`, never overwriting a
newer save. A store in five lines::

    class DictStore(SessionStore):
        def _load(self, session_id): return self.rows.get(session_id)
        def _save(self, session_id, text, expected, now): ...  # check-and-set, return the new version
        def _delete(self, session_id): return self.rows.pop(session_id, None) is not None
        def _ids(self, prefix, limit): return sorted(k for k in self.rows if k.startswith(prefix))[:limit]
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from llmvoice.errors import StoreError
from llmvoice.state import State, dumps_state, loads_state

__all__ = ["ID_PATTERN", "SessionStore", "Stored", "check_id"]

#: What a session, user or skill id may look like: 1-128 letters, digits and ``_ . : @ -``,
#: starting with a letter or digit (no path separators, spaces, wildcards or key delimiters).
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def check_id(value: object, what: str = "session id") -> str:
    """``value`` when it is a valid id, else :class:`~llmvoice.errors.StoreError` naming it."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None or ".." in value:
        raise StoreError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '.', ':', '@' or '-', starting with a "
            "letter or digit, and no '..'"
        )
    return value


@dataclass(frozen=True, slots=True)
class Stored:
    """A loaded session: its state and the version to base the next save on."""

    state: State
    version: int


class SessionStore:
    """Where sessions live between turns and workers; subclass and implement the four ``_`` methods.

    Args:
        ttl_s: sessions not saved for this long are treated as gone (``None``: kept until deleted).
        clock: seconds since the epoch (``time.time``); inject one for tests.
    """

    def __init__(self, *, ttl_s: float | None = None, clock: Callable[[], float] = time.time) -> None:
        if ttl_s is not None and not ttl_s > 0:
            raise StoreError(f"ttl_s must be positive, not {ttl_s!r}")
        self.ttl_s = ttl_s
        self.clock = clock

    def load(self, session_id: str) -> Stored | None:
        """The stored session, or ``None`` when there is none (or it expired).

        Raises:
            StoreError: an invalid id, or a stored record that is not llmvoice state.
        """
        row = self._load(check_id(session_id))
        if row is None:
            return None
        text, version, saved_at = row
        if self.ttl_s is not None and self.clock() - saved_at > self.ttl_s:
            return None
        try:
            return Stored(loads_state(text), version)
        except Exception as exc:
            raise StoreError(f"session {session_id!r}: the stored state cannot be read ({exc})") from exc

    def save(self, state: State, *, expected_version: int | None) -> int:
        """Save ``state`` if the store still holds ``expected_version``; returns the new version.

        Raises:
            StoreConflictError: another writer saved first (nothing is written).
            StoreError: an invalid session id, or the store failed.
        """
        session_id = check_id(state.session_id)
        return self._save(session_id, dumps_state(state), expected_version, self.clock())

    def delete(self, session_id: str) -> bool:
        """Delete a session; ``True`` when there was one."""
        return self._delete(check_id(session_id))

    def ids(self, prefix: str = "", limit: int = 1000) -> list[str]:
        """Session ids starting with ``prefix``, sorted, at most ``limit``."""
        if prefix:
            check_id(prefix, "id prefix")
        return self._ids(prefix, limit)

    def load_memory(self, user_id: str, skill: str) -> str | None:
        """The rolling memory of ``user_id`` for ``skill``, or ``None`` (see :mod:`llmvoice.store.memory`)."""
        return self._load_memory(check_id(user_id, "user id"), check_id(skill, "skill"))

    def save_memory(self, user_id: str, skill: str, text: str) -> None:
        """Replace the rolling memory of ``user_id`` for ``skill``."""
        self._save_memory(check_id(user_id, "user id"), check_id(skill, "skill"), text, self.clock())

    def close(self) -> None:
        """Release connections; the default does nothing."""

    # -- what a store implements ----------------------------------------------------------------

    def _load(self, session_id: str) -> tuple[str, int, float] | None:
        """``(state JSON, version, saved at)`` or ``None``."""
        raise NotImplementedError

    def _save(self, session_id: str, text: str, expected: int | None, now: float) -> int:
        """Check-and-set atomically; the new version, or :class:`StoreConflictError`."""
        raise NotImplementedError

    def _delete(self, session_id: str) -> bool:
        raise NotImplementedError

    def _ids(self, prefix: str, limit: int) -> list[str]:
        raise NotImplementedError

    def _load_memory(self, user_id: str, skill: str) -> str | None:
        raise NotImplementedError

    def _save_memory(self, user_id: str, skill: str, text: str, now: float) -> None:
        raise NotImplementedError
