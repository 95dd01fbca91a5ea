"""Errors and warnings raised by llmvoice.

Every error llmvoice raises derives from one base, so one ``except`` catches them all::

    LLMVoiceError
    ├── InvalidMessageError        a message is malformed (role, content, tool_calls, ...)
    │   └── ToolCallError          a tool result without its call, a duplicate result, ...
    ├── PendingToolCallsError      a request or commit while tool calls still wait for results
    ├── StateClosedError           a message arrived after the state was closed
    ├── StateVersionError          serialised state with an unknown or newer schema version
    ├── StateFormatError           serialised state that is not valid llmvoice state
    ├── ConfigurationError         a bad option (unknown mode, TTL order, ...)
    └── AdapterError               a provider adapter cannot format or parse something

Warnings derive from :class:`LLMVoiceWarning`.

Example::

    try:
        manager.append({"role": "bot", "content": "hi"})
    except llmvoice.InvalidMessageError as exc:
        print(exc.index, exc.field)   # 0 role

When an error is raised, the state it was raised for is unchanged.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "ConfigurationError",
    "InvalidMessageError",
    "LLMVoiceError",
    "LLMVoiceWarning",
    "PendingToolCallsError",
    "StateClosedError",
    "StateFormatError",
    "StateVersionError",
    "StoreConflictError",
    "StoreError",
    "TokenizerFallbackWarning",
    "ToolCallError",
]


class LLMVoiceError(Exception):
    """Base class of every error raised by llmvoice."""


class InvalidMessageError(LLMVoiceError, ValueError):
    """A message is malformed.

    Attributes:
        index: position of the offending message in the batch that was appended
            (0 for a single :meth:`~llmvoice.PromptManager.append`).
        field: the offending field, as a dotted path (``"role"``, ``"content[2].text"``,
            ``"tool_calls[0].function.arguments"``).
    """

    def __init__(self, message: str, *, index: int, field: str) -> None:
        super().__init__(f"message {index}, field {field!r}: {message}")
        self.index = index
        self.field = field


class ToolCallError(InvalidMessageError):
    """A tool message does not match an open tool call, or a call is left unanswered."""


class PendingToolCallsError(LLMVoiceError):
    """A request was built, or recent turns committed, while tool calls still wait for results.

    Attributes:
        call_ids: the ids of the calls without a result.
    """

    def __init__(self, message: str, *, call_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.call_ids = call_ids


class StateClosedError(LLMVoiceError):
    """A message was appended to a state that was closed."""


class StateVersionError(LLMVoiceError):
    """Serialised state carries a schema version this llmvoice cannot read."""


class StateFormatError(LLMVoiceError, ValueError):
    """Serialised state is not valid llmvoice state (bad JSON, missing or wrong fields)."""


class ConfigurationError(LLMVoiceError, ValueError):
    """An option has an unknown or inconsistent value."""


class StoreError(LLMVoiceError):
    """A session store could not load or save (I/O, a corrupt record, an invalid id)."""


class StoreConflictError(StoreError):
    """A save was based on an older version than the stored one: another writer saved first.

    Attributes:
        session_id: the session.
        expected: the version the save was based on (``None``: the session was expected new).
        actual: the version in the store.
    """

    def __init__(self, session_id: str, expected: int | None, actual: int) -> None:
        base = "a new session" if expected is None else f"version {expected}"
        super().__init__(
            f"session {session_id!r} was saved by another writer: the store holds version {actual}, "
            f"this save was based on {base}; load it again and re-apply the change"
        )
        self.session_id = session_id
        self.expected = expected
        self.actual = actual


class AdapterError(LLMVoiceError):
    """A provider adapter cannot format a request or parse a response."""


class LLMVoiceWarning(UserWarning):
    """Base class of llmvoice's warnings."""


class TokenizerFallbackWarning(LLMVoiceWarning):
    """An exact tokenizer was unavailable; token counts are estimates."""
