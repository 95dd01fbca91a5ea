"""Background saves: the session is saved after each turn without the voice turn waiting.

:class:`SessionSaver` keeps the newest state handed to it and saves it from a worker thread,
with the version it saved last, so the caller never blocks on the store. A failing store is
retried with exponential back-off; after the retries the state stays pending and the next
:meth:`~SessionSaver.save` tries again. Nothing raises into the caller. A conflict (another
writer saved this session) is not overwritten: it is logged and reported to ``on_conflict``::

    saver = SessionSaver(store)
    ...  # after each turn:
    saver.save(manager.state)
    ...  # at the end of the call:
    saver.close()  # waits for the last save
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from llmvoice.errors import StoreConflictError
from llmvoice.state import State
from llmvoice.store.base import SessionStore

__all__ = ["SessionSaver"]

_log = logging.getLogger("llmvoice.store")


class SessionSaver:
    """Saves one session's newest state in the background.

    Args:
        store: where to save.
        version: the stored version the session was loaded at (``None``: a new session).
        retries: attempts per state before giving up until the next save.
        backoff_s: the wait after the first failure; doubles after each one.
        max_backoff_s: the longest wait.
        on_conflict: called with the :class:`~llmvoice.errors.StoreConflictError` when another
            writer saved the session first (the state is then not saved).
        sleep: how to wait between attempts (injectable for tests).

    Attributes:
        version: the version of the last successful save.
        saves: successful saves.
        failures: failed attempts (retried ones included).
        unsaved: the newest state that could not be saved after its retries, or ``None``.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        version: int | None = None,
        retries: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        on_conflict: Callable[[StoreConflictError], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.version = version
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_conflict = on_conflict
        self.sleep = sleep
        self.saves = 0
        self.failures = 0
        self.unsaved: State | None = None
        self._pending: State | None = None
        self._condition = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def save(self, state: State) -> None:
        """Queue ``state`` (replacing an older queued one) and return at once."""
        with self._condition:
            if self._closed:
                _log.warning("session saver is closed; state of %r not saved", state.session_id)
                return
            self._pending = state
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmvoice-saver", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until nothing is queued or being saved; ``False`` on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and not self._busy, timeout_s)

    def close(self, timeout_s: float | None = 10.0) -> bool:
        """Save what is queued, then stop the worker; ``False`` if that did not finish or failed."""
        done = self.flush(timeout_s)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        return done and self.unsaved is None

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None and self._closed:
                    return
                state, self._pending = self._pending, None
                self._busy = True
            try:
                if state is not None:
                    self._save(state)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _save(self, state: State) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            try:
                self.version = self.store.save(state, expected_version=self.version)
            except StoreConflictError as exc:
                _log.warning("session %r was saved by another writer; not overwritten (%s)", state.session_id, exc)
                if self.on_conflict is not None:
                    try:
                        self.on_conflict(exc)
                    except Exception:  # a callback must not stop the saver
                        _log.exception("on_conflict failed")
                return
            except Exception as exc:  # the store failed: retry, never raise into the caller
                self.failures += 1
                _log.warning("saving session %r failed (attempt %d: %s)", state.session_id, attempt, exc)
                if attempt < self.retries:
                    self.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)
                continue
            self.saves += 1
            self.unsaved = None
            return
        # States are cumulative: the next save() carries everything this one did.
        self.unsaved = state
        _log.error(
            "session %r not saved after %d attempts; the next save will try again", state.session_id, self.retries
        )
