"""The canonical message: OpenAI chat shape, validated once, frozen.

Applications hand llmvoice plain dicts in the OpenAI chat shape (or SDK message objects with a
``model_dump`` method). :func:`to_message` validates such a dict and freezes it into a
:class:`Message`; :meth:`Message.to_dict` gives the dict back. Adapters format a ``Message`` into a
provider's shape once and memoise the result, so a turn costs O(new messages).
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from llmvoice.errors import InvalidMessageError

__all__ = [
    "KINDS",
    "ROLES",
    "Kind",
    "Message",
    "Role",
    "ToolCall",
    "freeze",
    "thaw",
    "to_message",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
Kind = Literal["message", "context", "summary", "masked"]

#: Roles a canonical message may carry.
ROLES: Final[frozenset[str]] = frozenset({"system", "developer", "user", "assistant", "tool"})
#: What a block of the committed history is: a conversation message, a dynamic-context event
#: (``dynamic_mode="append"``), a summary written by a rebase, or (in the archive only) the full
#: form of a tool result whose committed form is a stub (``masked``).
KINDS: Final[frozenset[str]] = frozenset({"message", "context", "summary", "masked"})

_KNOWN_KEYS: Final[frozenset[str]] = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})
# Keys that SDK response objects carry and that a request must not echo back when they are empty.
_RESPONSE_ONLY_KEYS: Final[frozenset[str]] = frozenset({"refusal", "annotations", "audio", "function_call"})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call an assistant message asks for.

    Attributes:
        id: the call id the tool result must quote (``tool_call_id``).
        name: the function name.
        arguments: the arguments as the JSON text the model produced (kept verbatim).
    """

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI chat shape of this call."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class Message:
    """A validated, immutable chat message.

    Attributes:
        role: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``.
        content: a string, a tuple of frozen content parts, or ``None`` (an assistant message
            that only calls tools).
        tool_calls: the calls an assistant message makes.
        tool_call_id: for a ``tool`` message, the call it answers.
        name: the optional participant or tool name.
        extra: other keys of the original dict, frozen, passed through by OpenAI-shaped adapters.
        id: the message's sequence number within its session (assigned on append).
        kind: ``message``, ``context``, ``summary`` or ``masked`` (see :data:`KINDS`).
        covers: for a summary, the ids of the messages it replaces.
    """

    role: str
    content: str | tuple[Mapping[str, Any], ...] | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    extra: Mapping[str, Any] | None = None
    id: int = -1
    kind: str = "message"
    covers: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        """The text of the content: the string, or the text parts joined by newlines."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "\n".join(str(p["text"]) for p in content if p.get("type") == "text" and "text" in p)

    def to_dict(self) -> dict[str, Any]:
        """The message as a fresh OpenAI chat dict (no llmvoice bookkeeping fields)."""
        out: dict[str, Any] = {"role": self.role}
        content = self.content
        out["content"] = content if content is None or isinstance(content, str) else thaw(content)
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.extra:
            for key, value in self.extra.items():
                out[key] = thaw(value)
        return out


def freeze(value: Any) -> Any:
    """Return an immutable copy of a JSON value: dicts become read-only mappings, lists tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Return a fresh mutable copy of a frozen JSON value (the inverse of :func:`freeze`)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def _fail(message: str, index: int, field: str) -> InvalidMessageError:
    return InvalidMessageError(message, index=index, field=field)


def check_text(value: str, index: int, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _fail(f"lone surrogate at position {exc.start}; the text cannot be sent as UTF-8", index, field) from None


def check_json(value: Any, index: int, field: str, depth: int = 0) -> None:
    """Reject anything that JSON cannot carry faithfully (objects, bytes, NaN, non-str keys)."""
    if depth > 64:
        raise _fail("nested more than 64 levels deep", index, field)
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        check_text(value, index, field)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f"{value!r} is not valid JSON", index, field)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(f"key {key!r} is not a string", index, field)
            check_text(key, index, field)
            check_json(item, index, f"{field}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, index, f"{field}[{i}]", depth + 1)
        return
    raise _fail(f"value of type {type(value).__name__} is not JSON-serialisable", index, field)


def _content(raw: Any, role: str, index: int) -> str | tuple[Mapping[str, Any], ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        check_text(raw, index, "content")
        return raw
    if not isinstance(raw, list | tuple):
        raise _fail(f"must be a string or a list of content parts, not {type(raw).__name__}", index, "content")
    for i, part in enumerate(raw):
        field = f"content[{i}]"
        if not isinstance(part, Mapping):
            raise _fail(f"must be a dict, not {type(part).__name__}", index, field)
        kind = part.get("type")
        if not isinstance(kind, str) or not kind:
            raise _fail("missing the 'type' of the content part", index, f"{field}.type")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _fail("a text part needs a string 'text'", index, f"{field}.text")
        if role == "tool" and kind != "text":
            raise _fail(f"a tool result may only hold text parts, not {kind!r}", index, f"{field}.type")
        check_json(part, index, field)
    return tuple(freeze(dict(p)) for p in raw)


def _tool_calls(raw: Any, index: int) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise _fail(f"must be a list, not {type(raw).__name__}", index, "tool_calls")
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        field = f"tool_calls[{i}]"
        call = item.model_dump(exclude_none=True) if hasattr(item, "model_dump") else item
        if not isinstance(call, Mapping):
            raise _fail(f"must be a dict, not {type(call).__name__}", index, field)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise _fail("needs a non-empty string 'id'", index, f"{field}.id")
        if call_id in seen:
            raise _fail(f"duplicate tool call id {call_id!r}", index, f"{field}.id")
        seen.add(call_id)
        kind = call.get("type", "function")
        if kind != "function":
            raise _fail(f"only 'function' tool calls are supported, not {kind!r}", index, f"{field}.type")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise _fail("needs a 'function' dict with 'name' and 'arguments'", index, f"{field}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _fail("needs a non-empty string 'name'", index, f"{field}.function.name")
        arguments = function.get("arguments", "{}")
        if isinstance(arguments, Mapping):
            check_json(arguments, index, f"{field}.function.arguments")
            arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        if not isinstance(arguments, str):
            raise _fail("must be the JSON text of the arguments", index, f"{field}.function.arguments")
        check_text(call_id, index, f"{field}.id")
        check_text(name, index, f"{field}.function.name")
        check_text(arguments, index, f"{field}.function.arguments")
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def to_message(raw: Mapping[str, Any] | Message | Any, index: int = 0) -> Message:
    """Validate one message in the OpenAI chat shape and freeze it.

    Args:
        raw: a dict (``{"role": ..., "content": ...}``), an SDK message object with
            ``model_dump()``, or a :class:`Message`.
        index: the position reported in errors.

    Returns:
        The frozen message (``id`` and ``kind`` are assigned when it is appended to a state).

    Raises:
        InvalidMessageError: naming the index and the field that is wrong.
    """
    if isinstance(raw, Message):
        # Re-validate a hand-built Message through its dict form; keep its bookkeeping.
        checked = to_message(raw.to_dict(), index)
        return Message(
            checked.role,
            checked.content,
            checked.tool_calls,
            checked.tool_call_id,
            checked.name,
            checked.extra,
            raw.id,
            raw.kind,
            raw.covers,
        )
    if hasattr(raw, "model_dump") and not isinstance(raw, Mapping):
        raw = raw.model_dump(exclude_none=True)
    if not isinstance(raw, Mapping):
        raise _fail(f"a message must be a dict, not {type(raw).__name__}", index, "message")
    role = raw.get("role")
    if role is None:
        raise _fail("missing", index, "role")
    if not isinstance(role, str) or role not in ROLES:
        raise _fail(f"unknown role {role!r}; expected one of {sorted(ROLES)}", index, "role")
    if "content" not in raw and role != "assistant":
        raise _fail("missing", index, "content")
    content = _content(raw.get("content"), role, index)
    tool_calls = _tool_calls(raw.get("tool_calls"), index)
    if tool_calls and role != "assistant":
        raise _fail(f"only assistant messages may call tools, not {role!r}", index, "tool_calls")
    if content is None and role != "assistant":
        raise _fail(f"a {role} message needs content", index, "content")
    if content is None and not tool_calls:
        raise _fail("an assistant message needs content or tool_calls", index, "content")
    tool_call_id = raw.get("tool_call_id")
    if role == "tool":
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise _fail("a tool message needs the string 'tool_call_id' of the call it answers", index, "tool_call_id")
        check_text(tool_call_id, index, "tool_call_id")
    elif tool_call_id is not None:
        raise _fail(f"only tool messages carry a tool_call_id, not {role!r}", index, "tool_call_id")
    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise _fail(f"must be a string, not {type(name).__name__}", index, "name")
        check_text(name, index, "name")
    extra: dict[str, Any] | None = None
    for key, value in raw.items():
        if key in _KNOWN_KEYS:
            continue
        if key in _RESPONSE_ONLY_KEYS and not value:
            continue
        if not isinstance(key, str):
            raise _fail(f"key {key!r} is not a string", index, "message")
        check_text(key, index, "message")
        check_json(value, index, key)
        if extra is None:
            extra = {}
        extra[key] = freeze(value)
    return Message(
        role,
        content,
        tool_calls,
        tool_call_id,
        name,
        types.MappingProxyType(extra) if extra else None,
    )


def to_messages(raw: Sequence[Mapping[str, Any] | Message | Any]) -> list[Message]:
    """Validate a batch; the error names the index within the batch."""
    return [to_message(m, i) for i, m in enumerate(raw)]
