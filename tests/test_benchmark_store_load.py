"""The store load test runs and finds no lost update, owned or contended (SQLite)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from llmvoice.store import SQLiteStore

SCRIPT = Path(__file__).resolve().parent.parent / "benchmark" / "store_load.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("store_load", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_owned_sessions_save_every_turn(tmp_path: Path) -> None:
    """4 workers x 8 sessions x 3 turns: 24 saves, no conflict, nothing lost."""
    figures = _load().play(lambda: SQLiteStore(tmp_path / "a.db"), 8, 3, 4, False)
    assert (figures["saves"], figures["conflicts"], figures["lost"]) == (24, 0, 0)


def test_contended_sessions_retry_and_lose_nothing(tmp_path: Path) -> None:
    """Two writers per session: every turn of both lands (48 saves), conflicts are retried."""
    figures = _load().play(lambda: SQLiteStore(tmp_path / "b.db"), 8, 3, 4, True)
    assert (figures["saves"], figures["lost"]) == (48, 0)
