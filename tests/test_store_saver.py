"""Background saves: the caller never waits or breaks; failures retried; conflicts not overwritten."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.errors import StoreConflictError, StoreError
from llmvoice.state import State
from llmvoice.store import SessionSaver, SQLiteStore


def _state(turns: int) -> State:
    state = fn.new_state("S", session_id="call-1")
    for i in range(turns):
        state = fn.append_messages(state, [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}])
    return state


class SlowStore(SQLiteStore):
    """Blocks saves until released; can fail the first N saves."""

    def __init__(self, path: Path, *, fail: int = 0) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.fail = fail
        self.calls = 0

    def _save(self, session_id: str, text: str, expected: int | None, now: float) -> int:
        self.calls += 1
        self.release.wait(5)
        if self.fail:
            self.fail -= 1
            raise StoreError("disk full")
        return super()._save(session_id, text, expected, now)


def test_save_returns_at_once_and_the_newest_state_wins(tmp_path: Path) -> None:
    """While a save is blocked, save() returns immediately; queued states collapse to the newest."""
    store = SlowStore(tmp_path / "s.db")
    saver = SessionSaver(store)
    started = time.perf_counter()
    for turns in range(1, 6):
        saver.save(_state(turns))
    returned = time.perf_counter() - started
    store.release.set()
    assert saver.close() is True
    loaded = store.load("call-1")
    assert returned < 0.05
    assert (loaded is not None and len(loaded.state.committed), store.calls <= 2, saver.version) == (
        10,
        True,
        saver.saves,
    )


def test_failures_are_retried_with_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two failing attempts, then success; waits 0.2 s then 0.4 s; nothing raises."""
    store = SlowStore(tmp_path / "s.db", fail=2)
    store.release.set()
    waits: list[float] = []
    saver = SessionSaver(store, sleep=waits.append)
    saver.save(_state(1))
    assert saver.close() is True
    assert (waits, saver.failures, saver.saves, saver.version) == ([0.2, 0.4], 2, 1, 1)


def test_giving_up_keeps_the_state_as_unsaved(tmp_path: Path) -> None:
    """After the retries the state is reported unsaved and close() says so; the next save tries again."""
    store = SlowStore(tmp_path / "s.db", fail=3)
    store.release.set()
    saver = SessionSaver(store, retries=3, sleep=lambda _: None)
    saver.save(_state(1))
    saver.flush(5)
    assert saver.unsaved is not None
    saver.save(_state(2))
    assert (saver.close(), saver.unsaved, saver.version) == (True, None, 1)


def test_a_conflict_is_reported_not_overwritten(tmp_path: Path) -> None:
    """Another writer saved first: the saver does not overwrite and calls on_conflict."""
    store = SQLiteStore(tmp_path / "s.db")
    store.save(_state(3), expected_version=None)
    conflicts: list[Any] = []
    saver = SessionSaver(store, version=None, on_conflict=conflicts.append)
    saver.save(_state(1))
    saver.close()
    loaded = store.load("call-1")
    assert (len(conflicts), isinstance(conflicts[0], StoreConflictError)) == (1, True)
    assert loaded is not None and len(loaded.state.committed) == 6
