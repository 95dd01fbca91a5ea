"""Pure functions over :class:`~llmvoice.state.State`, for stateless servers.

Every function takes a state and returns a new one; nothing is mutated, nothing does I/O. A web
or serverless handler loads the state, applies the turn and stores it again::

    from llmvoice import functional as lv
    from llmvoice.adapters import OpenAIAdapter

    adapter = OpenAIAdapter(model="gpt-4o-mini")
    state = lv.loads(row.state) if row.state else lv.new_state("You are a helpful agent.")
    state = lv.append_message(state, {"role": "user", "content": text})
    state, request = lv.build_request(state, adapter, dynamic_context=rag_text)
    reply = client.chat.completions.create(**request)
    state = lv.append_message(state, adapter.parse_message(reply))
    row.state = lv.dumps(state)

:class:`llmvoice.PromptManager` wraps the same functions around a state it keeps for you.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from llmvoice.errors import (
    InvalidMessageError,
    PendingToolCallsError,
    StateClosedError,
    ToolCallError,
)
from llmvoice.messages import Message, check_json, check_text, freeze, to_message
from llmvoice.state import Log, State, dumps_state, loads_state

if TYPE_CHECKING:
    from llmvoice.adapters.base import CachePrefixReport, ProviderAdapter

__all__ = [
    "Built",
    "append_message",
    "append_messages",
    "build_messages",
    "build_request",
    "cache_prefix",
    "close",
    "dumps",
    "loads",
    "new_state",
    "set_context",
    "transition",
]


class Built(NamedTuple):
    """What :func:`build_request` and :func:`build_messages` return.

    Attributes:
        state: the state to keep.
        payload: the request dict, or the message list.
    """

    state: State
    payload: Any


def new_state(
    static_system_prompt: str = "",
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    transition_mode: str = "agent_cycle",
    dynamic_mode: str = "per_turn",
    session_id: str | None = None,
) -> State:
    """Start a session.

    Args:
        static_system_prompt: the persona and rules; never changes within the session.
        tools: tool definitions in OpenAI function format (``{"type": "function", "function":
            {...}}``); part of the static prefix.
        transition_mode: ``none``, ``manual`` or ``agent_cycle``.
        dynamic_mode: ``per_turn`` or ``append``.
        session_id: a stable key for the session (random when omitted).

    Raises:
        ConfigurationError: an unknown mode.
        InvalidMessageError: the prompt or a tool definition cannot be sent as JSON.
    """
    if not isinstance(static_system_prompt, str):
        raise InvalidMessageError(
            f"must be a string, not {type(static_system_prompt).__name__}", index=0, field="static_system_prompt"
        )
    check_text(static_system_prompt, 0, "static_system_prompt")
    frozen_tools: tuple[Mapping[str, Any], ...] = ()
    if tools is not None:
        for i, tool in enumerate(tools):
            _check_tool(tool, i)
        frozen_tools = tuple(freeze(dict(t)) for t in tools)
    kwargs: dict[str, Any] = {}
    if session_id is not None:
        kwargs["session_id"] = session_id
    return State(
        static_system=static_system_prompt,
        tools=frozen_tools,
        transition_mode=transition_mode,
        dynamic_mode=dynamic_mode,
        **kwargs,
    )


def _check_tool(tool: Any, index: int) -> None:
    field = f"tools[{index}]"
    if not isinstance(tool, Mapping):
        raise InvalidMessageError(f"must be a dict, not {type(tool).__name__}", index=index, field=field)
    if tool.get("type") != "function":
        raise InvalidMessageError("only 'function' tools are supported", index=index, field=f"{field}.type")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidMessageError(
            "needs a 'function' dict with a non-empty 'name'", index=index, field=f"{field}.function.name"
        )
    parameters = function.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise InvalidMessageError("must be a JSON schema object", index=index, field=f"{field}.function.parameters")
    check_json(tool, index, field)


def _commit_point(message: Message, mode: str) -> bool:
    return mode == "agent_cycle" and message.role == "assistant" and not message.tool_calls


def _append(state: State, batch: Sequence[Message]) -> State:
    if state.closed:
        raise StateClosedError("this llmvoice state is closed; start a new session to add messages")
    open_calls = list(state.open_tool_calls)
    mode = state.transition_mode
    next_id = state.next_id
    to_commit: list[Message] = []
    recent = list(state.recent)
    for i, raw in enumerate(batch):
        if raw.role == "tool":
            call_id = raw.tool_call_id
            if call_id not in open_calls:
                raise ToolCallError(
                    f"no open tool call with id {call_id!r} (open: {open_calls})", index=i, field="tool_call_id"
                )
            open_calls.remove(call_id)
        elif open_calls:
            raise ToolCallError(
                f"tool calls {open_calls} have no result yet; append their tool messages before a {raw.role} message",
                index=i,
                field="role",
            )
        open_calls.extend(call.id for call in raw.tool_calls)
        message = Message(
            raw.role, raw.content, raw.tool_calls, raw.tool_call_id, raw.name, raw.extra, next_id, raw.kind, raw.covers
        )
        next_id += 1
        if mode == "none":
            to_commit.append(message)
            continue
        recent.append(message)
        if _commit_point(message, mode):
            to_commit.extend(recent)
            recent.clear()
    return State(
        state.static_system,
        state.tools,
        state.transition_mode,
        state.dynamic_mode,
        state.session_id,
        state.epoch,
        state.committed.extend(to_commit),
        tuple(recent),
        state.archive,
        state.context,
        tuple(open_calls),
        next_id,
        state.closed,
        state.built_committed,
    )


def append_message(state: State, message: Mapping[str, Any] | Message | Any) -> State:
    """Append one message (OpenAI chat shape).

    Raises:
        InvalidMessageError: the message is malformed (the error names the field).
        ToolCallError: a tool result without an open call, or a new turn before all results.
        StateClosedError: the state was closed.
    """
    return _append(state, (to_message(message, 0),))


def append_messages(state: State, messages: Iterable[Mapping[str, Any] | Message | Any]) -> State:
    """Append several messages at once; if any is invalid, none is appended."""
    return _append(state, [to_message(m, i) for i, m in enumerate(messages)])


def transition(state: State) -> State:
    """Commit the recent turns into the history (what ``manual`` mode waits for).

    Raises:
        PendingToolCallsError: tool calls still wait for results (committing now would put the
            dynamic context between a call and its result).
    """
    if state.open_tool_calls:
        raise PendingToolCallsError(
            f"cannot commit while tool calls {list(state.open_tool_calls)} wait for results",
            call_ids=state.open_tool_calls,
        )
    if not state.recent:
        return state
    return state.evolve(committed=state.committed.extend(state.recent), recent=())


def close(state: State) -> State:
    """Mark the session closed: further messages are refused."""
    return state if state.closed else state.evolve(closed=True)


def _check_context(dynamic_context: Any) -> str | None:
    if dynamic_context is None:
        return None
    if not isinstance(dynamic_context, str):
        raise InvalidMessageError(
            f"must be a string or None, not {type(dynamic_context).__name__}", index=0, field="dynamic_context"
        )
    check_text(dynamic_context, 0, "dynamic_context")
    return dynamic_context


def set_context(state: State, dynamic_context: str | None) -> State:
    """In ``append`` mode, commit a changed dynamic context as a context event.

    An unchanged context (or ``None``) adds nothing; in ``per_turn`` mode this is a no-op.
    """
    context = _check_context(dynamic_context)
    if state.dynamic_mode != "append" or context is None or context == state.context:
        return state
    if state.closed:
        raise StateClosedError("this llmvoice state is closed; start a new session to add context")
    event = Message("system", context, id=state.next_id, kind="context")
    committed: Log[Message] = state.committed.append(event)
    return state.evolve(committed=committed, context=context, next_id=state.next_id + 1)


def _prepare(state: State, dynamic_context: Any) -> tuple[State, str | None]:
    if state.open_tool_calls:
        raise PendingToolCallsError(
            f"tool calls {list(state.open_tool_calls)} have no result yet; append them before building a request",
            call_ids=state.open_tool_calls,
        )
    context = _check_context(dynamic_context)
    if state.dynamic_mode == "append":
        return set_context(state, context), None
    return state, context


def _mark_built(state: State) -> State:
    n = len(state.committed)
    if state.built_committed == n:
        return state
    return State(
        state.static_system,
        state.tools,
        state.transition_mode,
        state.dynamic_mode,
        state.session_id,
        state.epoch,
        state.committed,
        state.recent,
        state.archive,
        state.context,
        state.open_tool_calls,
        state.next_id,
        state.closed,
        n,
    )


def build_request(
    state: State,
    adapter: ProviderAdapter,
    dynamic_context: str | None = None,
    *,
    stream: bool | None = None,
    **options: Any,
) -> Built:
    """Build the keyword arguments for the provider's official client.

    Args:
        state: the session state.
        adapter: the provider adapter.
        dynamic_context: this turn's dynamic context, or ``None`` for none.
        stream: ``True`` adds the streaming keys (and usage reporting where the provider needs
            a flag for it); ``None`` leaves streaming to the caller.
        **options: extra request keys (``temperature``, ...), added after the prompt.

    Returns:
        ``Built(state, request)``: keep the returned state (it records the context event in
        ``append`` mode and where the cache breakpoint stood).
    """
    state, context = _prepare(state, dynamic_context)
    request = adapter.build_request(state, context, stream=stream, **options)
    return Built(_mark_built(state), request)


def build_messages(state: State, adapter: ProviderAdapter, dynamic_context: str | None = None) -> Built:
    """Like :func:`build_request`, but the payload is the provider-shaped message list alone."""
    state, context = _prepare(state, dynamic_context)
    messages = adapter.build_messages(state, context)
    return Built(_mark_built(state), messages)


def cache_prefix(state: State, adapter: ProviderAdapter) -> CachePrefixReport:
    """Report the cacheable prefix: messages, bytes and tokens up to the last stable breakpoint."""
    return adapter.cache_prefix(state)


def dumps(state: State) -> str:
    """Serialise a state to deterministic JSON text (with its schema version)."""
    return dumps_state(state)


def loads(text: str | bytes) -> State:
    """Parse :func:`dumps` output.

    Raises:
        StateVersionError: an unknown or newer schema version.
        StateFormatError: not llmvoice state.
    """
    return loads_state(text)
