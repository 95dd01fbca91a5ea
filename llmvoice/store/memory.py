"""Cross-session memory: a rolling summary per (user, skill), recalled once at the next session.

At the end of a call (or whenever a summary is applied) :func:`remember` adds what should carry
over to the user's rolling memory for that skill, trimmed to a size limit (the oldest sentences go
first). At the start of the next call :func:`recall_prompt` puts it into the *static* system
prompt, once, phrased so the model brings it up only when it fits; being static, it is cached for
the whole session::

    memory = store.load_memory(user_id, "support")
    manager = PromptManager(recall_prompt(SYSTEM, memory), session_id=call_id)
    ...
    remember(store, user_id, "support", "Asked about order NW-39416; prefers calls before 11 am.")
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from llmvoice.errors import StoreError

if TYPE_CHECKING:
    from llmvoice.store.base import SessionStore

__all__ = ["MAX_MEMORY_CHARS", "RECALL_HEADING", "recall_prompt", "remember", "trim_memory"]

#: The longest rolling memory kept per (user, skill), in characters.
MAX_MEMORY_CHARS: Final[int] = 2000
#: How the recall block starts in the system prompt.
RECALL_HEADING: Final[str] = (
    "Notes from earlier calls with this caller. Use them only if they help with what the caller "
    "asks now; do not bring them up otherwise:"
)
_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+")


def trim_memory(text: str, limit: int = MAX_MEMORY_CHARS) -> str:
    """The newest whole sentences of ``text`` that fit ``limit`` characters (a hard cut if none does)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    for sentence in reversed(_SENTENCE.split(text)):
        if size + len(sentence) + (1 if kept else 0) > limit:
            break
        kept.insert(0, sentence)
        size += len(sentence) + (1 if len(kept) > 1 else 0)
    return " ".join(kept) if kept else text[-limit:]


def remember(store: SessionStore, user_id: str, skill: str, text: str, *, limit: int = MAX_MEMORY_CHARS) -> str:
    """Add ``text`` to the user's rolling memory for ``skill``; returns what is stored now.

    Raises:
        StoreError: an invalid user id or skill, or the store failed.
    """
    if not isinstance(text, str):
        raise StoreError(f"memory text must be a string, not {type(text).__name__}")
    previous = store.load_memory(user_id, skill) or ""
    merged = trim_memory(f"{previous} {text}".strip(), limit)
    store.save_memory(user_id, skill, merged)
    return merged


def recall_prompt(static_system: str, memory: str | None) -> str:
    """The static system prompt with the recall block appended (unchanged when there is none)."""
    if not memory or not memory.strip():
        return static_system
    block = f"{RECALL_HEADING}\n{memory.strip()}"
    return f"{static_system}\n\n{block}" if static_system else block
