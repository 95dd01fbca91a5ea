"""The SQLite session store: round trip, optimistic concurrency, hostile ids, TTL, crash safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_checks import kill_mid_save, make_state, race

from llmvoice import functional as fn
from llmvoice.errors import StoreConflictError, StoreError
from llmvoice.state import State
from llmvoice.store import SQLiteStore, Stored

_state = make_state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_trip(tmp_path: Path) -> None:
    """A saved state loads back equal, at version 1, then 2."""
    store = SQLiteStore(tmp_path / "s.db")
    state = _state()
    assert store.save(state, expected_version=None) == 1
    loaded = store.load("call-1")
    assert loaded == Stored(state, 1)
    assert store.save(fn.append_message(state, {"role": "user", "content": "more"}), expected_version=1) == 2
    assert store.load("missing") is None


def test_two_writers_on_the_same_version_conflict(tmp_path: Path) -> None:
    """Two stores on one file both based on version 1: the second save raises, the first is kept."""
    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    first.save(_state(turns=1), expected_version=None)
    first.save(_state(turns=2), expected_version=1)
    with pytest.raises(StoreConflictError) as info:
        second.save(_state(turns=3), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    loaded = second.load("call-1")
    assert loaded is not None and len(loaded.state.committed) == 4


def test_creating_an_existing_session_conflicts(tmp_path: Path) -> None:
    """expected_version=None for a session that exists is a conflict naming 'a new session'."""
    store = SQLiteStore(tmp_path / "s.db")
    store.save(_state(), expected_version=None)
    with pytest.raises(StoreConflictError, match="this save was based on a new session"):
        store.save(_state(), expected_version=None)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "a b", "", "x" * 129, "*", "a..b", "-lead", "k\nv", 7])
def test_hostile_ids_are_refused(tmp_path: Path, bad: object) -> None:
    """Ids with separators, wildcards, '..', control characters or odd lengths are refused."""
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="invalid session id"):
        store.load(bad)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="invalid session id"):
        store.save(State(session_id=bad), expected_version=None)  # type: ignore[arg-type]


def test_ttl_hides_and_purges_abandoned_sessions(tmp_path: Path) -> None:
    """Past ttl_s a session loads as None, may be created again, and is purged."""
    clock = Clock()
    store = SQLiteStore(tmp_path / "s.db", ttl_s=60, clock=clock)
    store.save(_state("old"), expected_version=None)
    clock.now += 30
    store.save(_state("fresh"), expected_version=None)
    clock.now += 40
    assert (store.load("old"), store.load("fresh") is not None) == (None, True)
    assert store.save(_state("old"), expected_version=None) == 2
    clock.now += 100
    assert (store.purge_expired(), store.ids()) == (2, [])


def test_ids_and_delete(tmp_path: Path) -> None:
    """ids() lists by prefix in order; delete() reports whether there was a session."""
    store = SQLiteStore(tmp_path / "s.db")
    for name in ("b-2", "a-1", "b-1"):
        store.save(_state(name), expected_version=None)
    assert (store.ids(), store.ids("b-"), store.ids(limit=1)) == (["a-1", "b-1", "b-2"], ["b-1", "b-2"], ["a-1"])
    assert (store.delete("b-1"), store.delete("b-1"), store.ids("b")) == (True, False, ["b-2"])


def test_a_corrupt_record_is_a_store_error(tmp_path: Path) -> None:
    """A row that is not llmvoice state raises StoreError naming the session."""
    store = SQLiteStore(tmp_path / "s.db")
    store.save(_state(), expected_version=None)
    store._db.execute("UPDATE llmvoice_sessions SET state = 'not json'")
    with pytest.raises(StoreError, match="session 'call-1': the stored state cannot be read"):
        store.load("call-1")


def test_kill_during_saves_leaves_a_readable_state(tmp_path: Path) -> None:
    """A writer killed with SIGKILL in the middle of a save loop leaves the last committed state, whole."""
    db = tmp_path / "s.db"
    kill_mid_save(f"from llmvoice.store import SQLiteStore; store = SQLiteStore({str(db)!r})")
    loaded = SQLiteStore(db).load("crash")
    assert loaded is not None
    assert len(loaded.state.committed) == 2 * loaded.version


def test_racing_threads_never_lose_an_update(tmp_path: Path) -> None:
    """Eight threads, each with its own store on one file, race from version 1: exactly one wins."""
    SQLiteStore(tmp_path / "s.db").save(_state(turns=1), expected_version=None)
    assert race(lambda: SQLiteStore(tmp_path / "s.db")) == ([2], 7)
