"""Conversation state: immutable, JSON-serialisable, versioned.

A :class:`State` holds everything needed to rebuild a request: the static system prompt and tools,
the committed history (an append-only :class:`Log` of blocks within an epoch), the recent turns
that are not committed yet, and the archive of blocks a compaction took out of the prompt.
Every change returns a new ``State``; the old one stays valid and unchanged.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, Literal, TypeVar, overload

from llmvoice.errors import ConfigurationError, StateFormatError, StateVersionError
from llmvoice.messages import KINDS, Message, freeze, thaw, to_message

__all__ = [
    "DYNAMIC_MODES",
    "SCHEMA_VERSION",
    "TRANSITION_MODES",
    "DynamicMode",
    "Log",
    "State",
    "TransitionMode",
    "dumps_state",
    "loads_state",
    "state_from_dict",
    "state_to_dict",
]

#: The schema version written by :func:`state_to_dict`; older versions are read, newer ones refused.
SCHEMA_VERSION: Final[int] = 1

TransitionMode = Literal["none", "manual", "agent_cycle"]
DynamicMode = Literal["per_turn", "append"]

#: ``none`` commits every message at once; ``manual`` waits for ``transition()``;
#: ``agent_cycle`` commits when an assistant message without tool calls ends the turn.
TRANSITION_MODES: Final[frozenset[str]] = frozenset({"none", "manual", "agent_cycle"})
#: ``per_turn`` rebuilds the dynamic context every turn and never commits it; ``append`` commits a
#: changed context into the history as a context event.
DYNAMIC_MODES: Final[frozenset[str]] = frozenset({"per_turn", "append"})

T = TypeVar("T")


class Log(Sequence[T], Generic[T]):
    """An immutable sequence with O(1) amortised append.

    Appending to the newest ``Log`` of a chain shares the underlying list instead of copying it
    (each ``Log`` only ever sees its own first ``len`` items), so an append-only history grows in
    O(1) per message while every earlier ``Log`` stays exactly as it was.
    """

    __slots__ = ("_items", "_n")

    _lock: Final = threading.Lock()

    def __init__(self, items: Sequence[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._n = len(self._items)

    @classmethod
    def _share(cls, items: list[T], n: int) -> Log[T]:
        log: Log[T] = cls.__new__(cls)
        log._items = items
        log._n = n
        return log

    def extend(self, new: Sequence[T]) -> Log[T]:
        """Return a new ``Log`` with ``new`` appended; this one is unchanged."""
        if not new:
            return self
        with Log._lock:
            if len(self._items) == self._n:
                self._items.extend(new)
                return Log._share(self._items, self._n + len(new))
        items = self._items[: self._n]
        items.extend(new)
        return Log._share(items, len(items))

    def append(self, item: T) -> Log[T]:
        """Return a new ``Log`` with ``item`` appended; this one is unchanged."""
        return self.extend((item,))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return tuple(self._items[: self._n][index])
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("Log index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        items = self._items
        for i in range(self._n):
            yield items[i]

    def shares_prefix_with(self, other: Log[T]) -> bool:
        """True when both logs are views of the same underlying storage (an O(1) check)."""
        return self._items is other._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Log):
            return self._n == other._n and (self._items is other._items or list(self) == list(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Log({list(self)!r})"


@dataclass(frozen=True, slots=True)
class State:
    """The whole conversation state of one session.

    Build one with :func:`llmvoice.functional.new_state`; change it with the functions of
    :mod:`llmvoice.functional` (or through :class:`llmvoice.PromptManager`).

    Attributes:
        static_system: the static system prompt (start of the cached prefix).
        tools: tool definitions in OpenAI function format, frozen.
        transition_mode: when recent turns are committed (see :data:`TRANSITION_MODES`).
        dynamic_mode: how the dynamic context is placed (see :data:`DYNAMIC_MODES`).
        session_id: a stable random key of the session (the default ``prompt_cache_key``).
        epoch: incremented by every rebase and rollback; within an epoch ``committed`` only grows at its
            end.
        committed: the committed history, oldest first.
        recent: messages appended but not committed yet.
        archive: blocks a compaction took out of the prompt; nothing is ever dropped.
        context: the dynamic context of the newest context event in ``committed`` (``append`` mode), or
            ``None``.
        open_tool_calls: ids of tool calls still waiting for their results, in call order.
        next_id: the id the next appended message gets.
        closed: a closed state accepts no more messages.
        built_committed: how many committed blocks the last built request held (used to place
            Anthropic's lookback breakpoint).
        tool_output_limit: when set, a tool result longer than this many characters is committed
            as a stub and archived in full (see :mod:`llmvoice.compaction.masking`).
    """

    static_system: str = ""
    tools: tuple[Mapping[str, Any], ...] = ()
    transition_mode: str = "agent_cycle"
    dynamic_mode: str = "per_turn"
    session_id: str = field(default_factory=lambda: secrets.token_hex(12))
    epoch: int = 0
    committed: Log[Message] = field(default_factory=Log)
    recent: tuple[Message, ...] = ()
    archive: Log[Message] = field(default_factory=Log)
    context: str | None = None
    open_tool_calls: tuple[str, ...] = ()
    next_id: int = 0
    closed: bool = False
    built_committed: int = 0
    tool_output_limit: int | None = None

    def __post_init__(self) -> None:
        if self.transition_mode not in TRANSITION_MODES:
            raise ConfigurationError(
                f"unknown transition_mode {self.transition_mode!r}; expected one of {sorted(TRANSITION_MODES)}"
            )
        if self.dynamic_mode not in DYNAMIC_MODES:
            raise ConfigurationError(
                f"unknown dynamic_mode {self.dynamic_mode!r}; expected one of {sorted(DYNAMIC_MODES)}"
            )
        limit = self.tool_output_limit
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigurationError(f"tool_output_limit must be a positive number of characters, not {limit!r}")
            if self.transition_mode == "none":
                raise ConfigurationError(
                    "tool_output_limit needs transition_mode 'agent_cycle' or 'manual': in 'none' mode a tool "
                    "result is committed before the model has read it"
                )

    def evolve(self, **changes: Any) -> State:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    @property
    def messages(self) -> list[Message]:
        """Every block in the prompt, committed then recent."""
        return [*self.committed, *self.recent]


# -- serialisation -----------------------------------------------------------------------------


def _message_to_dict(message: Message) -> dict[str, Any]:
    # Bookkeeping stays beside the message, so no key of the message itself can clash with it.
    out: dict[str, Any] = {"id": message.id, "message": message.to_dict()}
    if message.kind != "message":
        out["kind"] = message.kind
    if message.covers:
        out["covers"] = list(message.covers)
    return out


def _message_from_dict(raw: Any, where: str) -> Message:
    if not isinstance(raw, Mapping):
        raise StateFormatError(f"{where}: expected a message object")
    unknown = set(raw) - {"id", "message", "kind", "covers"}
    if unknown:
        raise StateFormatError(f"{where}: unknown fields {sorted(unknown)}")
    body = raw.get("message")
    if not isinstance(body, Mapping):
        raise StateFormatError(f"{where}.message: expected a message object")
    try:
        message = to_message(body)
    except Exception as exc:
        raise StateFormatError(f"{where}: {exc}") from exc
    msg_id = raw.get("id")
    kind = raw.get("kind", "message")
    covers = raw.get("covers", [])
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        raise StateFormatError(f"{where}.id: expected an integer")
    if kind not in KINDS:
        raise StateFormatError(f"{where}.kind: unknown kind {kind!r}")
    if not isinstance(covers, list) or not all(isinstance(c, int) for c in covers):
        raise StateFormatError(f"{where}.covers: expected a list of integers")
    return replace(message, id=msg_id, kind=kind, covers=tuple(covers))


def state_to_dict(state: State) -> dict[str, Any]:
    """The state as a JSON-ready dict carrying ``"version": SCHEMA_VERSION``."""
    return {
        "version": SCHEMA_VERSION,
        "static_system": state.static_system,
        "tools": [thaw(t) for t in state.tools],
        "transition_mode": state.transition_mode,
        "dynamic_mode": state.dynamic_mode,
        "session_id": state.session_id,
        "epoch": state.epoch,
        "committed": [_message_to_dict(m) for m in state.committed],
        "recent": [_message_to_dict(m) for m in state.recent],
        "archive": [_message_to_dict(m) for m in state.archive],
        "context": state.context,
        "open_tool_calls": list(state.open_tool_calls),
        "next_id": state.next_id,
        "closed": state.closed,
        "built_committed": state.built_committed,
        "tool_output_limit": state.tool_output_limit,
    }


_FIELD_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "static_system": (str,),
    "tools": (list,),
    "transition_mode": (str,),
    "dynamic_mode": (str,),
    "session_id": (str,),
    "epoch": (int,),
    "committed": (list,),
    "recent": (list,),
    "archive": (list,),
    "context": (str, type(None)),
    "open_tool_calls": (list,),
    "next_id": (int,),
    "closed": (bool,),
    "built_committed": (int,),
}


def state_from_dict(data: Any) -> State:
    """Rebuild a state from :func:`state_to_dict` output.

    Raises:
        StateVersionError: the version is missing, unknown or newer than this llmvoice reads.
        StateFormatError: a field is missing or has the wrong type.
    """
    if not isinstance(data, Mapping):
        raise StateFormatError("llmvoice state must be a JSON object")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateVersionError(f"llmvoice state has no integer 'version' (got {version!r})")
    if version > SCHEMA_VERSION:
        raise StateVersionError(
            f"llmvoice state version {version} is newer than this llmvoice reads ({SCHEMA_VERSION}); upgrade llmvoice"
        )
    if version < 1:
        raise StateVersionError(f"unknown llmvoice state version {version}")
    for name, types_ in _FIELD_TYPES.items():
        if name not in data:
            raise StateFormatError(f"llmvoice state is missing {name!r}")
        value = data[name]
        if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
            raise StateFormatError(f"llmvoice state field {name!r} has the wrong type {type(value).__name__}")
    for i, tool in enumerate(data["tools"]):
        if not isinstance(tool, Mapping):
            raise StateFormatError(f"tools[{i}]: expected an object")
    limit = data.get("tool_output_limit")  # absent in states written before tool-output masking
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise StateFormatError(f"llmvoice state field 'tool_output_limit' has the wrong type {type(limit).__name__}")
    if not all(isinstance(c, str) for c in data["open_tool_calls"]):
        raise StateFormatError("open_tool_calls: expected a list of strings")
    try:
        return State(
            static_system=data["static_system"],
            tools=tuple(freeze(t) for t in data["tools"]),
            transition_mode=data["transition_mode"],
            dynamic_mode=data["dynamic_mode"],
            session_id=data["session_id"],
            epoch=data["epoch"],
            committed=Log([_message_from_dict(m, f"committed[{i}]") for i, m in enumerate(data["committed"])]),
            recent=tuple(_message_from_dict(m, f"recent[{i}]") for i, m in enumerate(data["recent"])),
            archive=Log([_message_from_dict(m, f"archive[{i}]") for i, m in enumerate(data["archive"])]),
            context=data["context"],
            open_tool_calls=tuple(data["open_tool_calls"]),
            next_id=data["next_id"],
            closed=data["closed"],
            built_committed=data["built_committed"],
            tool_output_limit=limit,
        )
    except ConfigurationError as exc:
        raise StateFormatError(str(exc)) from exc


def dumps_state(state: State) -> str:
    """Deterministic JSON text of a state."""
    return json.dumps(state_to_dict(state), ensure_ascii=False, separators=(",", ":"))


def loads_state(text: str | bytes) -> State:
    """Parse :func:`dumps_state` output."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFormatError(f"llmvoice state is not valid JSON: {exc}") from exc
    return state_from_dict(data)
