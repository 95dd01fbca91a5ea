"""Session stores: where a session's state lives between turns, calls and workers.

:class:`SQLiteStore` is the embedded default; :class:`RedisStore` serves many workers. Saves use
optimistic concurrency: a save based on an older version raises
:class:`~llmvoice.errors.StoreConflictError` instead of losing an update.
"""

from llmvoice.store.base import ID_PATTERN, SessionStore, Stored, check_id
from llmvoice.store.memory import (
    MAX_MEMORY_CHARS,
    RECALL_HEADING,
    recall_prompt,
    remember,
    remember_session,
    trim_memory,
)
from llmvoice.store.redis import RedisStore
from llmvoice.store.saver import SessionSaver
from llmvoice.store.sqlite import SQLiteStore

__all__ = [
    "ID_PATTERN",
    "MAX_MEMORY_CHARS",
    "RECALL_HEADING",
    "RedisStore",
    "SQLiteStore",
    "SessionSaver",
    "SessionStore",
    "Stored",
    "check_id",
    "recall_prompt",
    "remember",
    "remember_session",
    "trim_memory",
]
