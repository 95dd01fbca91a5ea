"""Message and state builders shared by the core's tests."""

from __future__ import annotations

from typing import Any

from llmvoice import functional as fn
from llmvoice.state import State


def user(text: str = "hi") -> dict[str, Any]:
    """A user message."""
    return {"role": "user", "content": text}


def assistant(text: str = "hello") -> dict[str, Any]:
    """An assistant reply without tool calls."""
    return {"role": "assistant", "content": text}


def calls(*ids: str) -> dict[str, Any]:
    """An assistant message calling the ``lookup`` tool once per id."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": i, "type": "function", "function": {"name": "lookup", "arguments": "{}"}} for i in ids],
    }


def result(call_id: str, text: str = "ok") -> dict[str, Any]:
    """The tool result answering ``call_id``."""
    return {"role": "tool", "content": text, "tool_call_id": call_id}


def state(**options: Any) -> State:
    """A new session with system prompt "P" and session id "s1"."""
    return fn.new_state("P", session_id="s1", **options)
