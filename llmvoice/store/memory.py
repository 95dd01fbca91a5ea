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
    from llmvoice.state import State
    from llmvoice.store.base import SessionStore

__all__ = ["MAX_MEMORY_CHARS", "RECALL_HEADING", "recall_prompt", "remember", "remember_session", "trim_memory"]

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


def remember_session(
    store: SessionStore, user_id: str, skill: str, state: State, *, closing: str = "", limit: int = MAX_MEMORY_CHARS
) -> str | None:
    """At a session's end: remember its newest summary (written by a summarising cut) and ``closing``.

    Args:
        store: where the memory lives.
        user_id: the caller.
        skill: the agent's skill (support, sales, ...).
        state: the session's final state; its newest summary block, if any, is remembered.
        closing: what else should carry over (for instance an LLM's one-line wrap-up of the call).
        limit: the memory's size limit in characters.

    Returns:
        The stored memory, or ``None`` when there was nothing to remember.
    """
    from llmvoice.functional import SUMMARY_HEADING  # noqa: PLC0415  (functional imports nothing from here)

    newest = ""
    for message in (*state.archive, *state.committed):
        if message.kind == "summary" and message.text.startswith(SUMMARY_HEADING):
            newest = message.text[len(SUMMARY_HEADING) :]
    text = " ".join(part for part in (newest.strip(), closing.strip()) if part)
    if not text:
        return None
    return remember(store, user_id, skill, text, limit=limit)


def recall_prompt(static_system: str, memory: str | None) -> str:
    """The static system prompt with the recall block appended (unchanged when there is none)."""
    if not memory or not memory.strip():
        return static_system
    block = f"{RECALL_HEADING}\n{memory.strip()}"
    return f"{static_system}\n\n{block}" if static_system else block
