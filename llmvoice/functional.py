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

Only two operations change the cached prefix, and each starts a new epoch: :func:`rebase`
replaces the head of the committed history (at one of :func:`turn_boundaries`) with a summary,
and :func:`rollback` returns to a state saved before a rebase, keeping every message that arrived
since.

:class:`llmvoice.PromptManager` wraps the same functions around a state it keeps for you.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from llmvoice.errors import (
    ConfigurationError,
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
    "SUMMARY_HEADING",
    "Built",
    "accounted_ids",
    "append_message",
    "append_messages",
    "build_messages",
    "build_request",
    "cache_prefix",
    "close",
    "dumps",
    "loads",
    "new_state",
    "rebase",
    "rollback",
    "set_context",
    "summary_message",
    "transition",
    "turn_boundaries",
]

#: The first line of a summary block written by :func:`summary_message`.
SUMMARY_HEADING: Final[str] = "Summary of the earlier conversation:\n"
_SUMMARY_HEADING: Final[str] = SUMMARY_HEADING


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
    tool_output_limit: int | None = None,
) -> State:
    """Start a session.

    Args:
        static_system_prompt: the persona and rules; never changes within the session.
        tools: tool definitions in OpenAI function format (``{"type": "function", "function":
            {...}}``); part of the static prefix.
        transition_mode: ``none``, ``manual`` or ``agent_cycle``.
        dynamic_mode: ``per_turn`` or ``append``.
        session_id: a stable key for the session (random when omitted).
        tool_output_limit: commit tool results longer than this many characters as a stub and
            archive them in full (``None``: never); needs ``agent_cycle`` or ``manual`` mode.

    Raises:
        ConfigurationError: an unknown mode, or a bad ``tool_output_limit``.
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
        tool_output_limit=tool_output_limit,
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
        # Context events come from set_context and summaries from rebase; an append adds messages.
        message = Message(raw.role, raw.content, raw.tool_calls, raw.tool_call_id, raw.name, raw.extra, next_id)
        next_id += 1
        if mode == "none":
            to_commit.append(message)
            continue
        recent.append(message)
        if _commit_point(message, mode):
            to_commit.extend(recent)
            recent.clear()
    committed, archive = _commit(state, to_commit)
    return State(
        state.static_system,
        state.tools,
        state.transition_mode,
        state.dynamic_mode,
        state.session_id,
        state.epoch,
        committed,
        tuple(recent),
        archive,
        state.context,
        tuple(open_calls),
        next_id,
        state.closed,
        state.built_committed,
        state.tool_output_limit,
    )


def _commit(state: State, blocks: Sequence[Message]) -> tuple[Log[Message], Log[Message]]:
    """The committed history and archive once ``blocks`` are committed (long tool outputs masked)."""
    limit = state.tool_output_limit
    if limit is None or not blocks:
        return state.committed.extend(blocks), state.archive
    from llmvoice.compaction.masking import mask_tool_output  # noqa: PLC0415  (compaction imports this module)

    kept: list[Message] = []
    archived: list[Message] = []
    for block in blocks:
        masked = mask_tool_output(block, limit)
        if masked is None:
            kept.append(block)
        else:
            kept.append(masked[0])
            archived.append(masked[1])
    return state.committed.extend(kept), state.archive.extend(archived)


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
    committed, archive = _commit(state, state.recent)
    return state.evolve(committed=committed, recent=(), archive=archive)


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
    """In ``append`` mode, add a changed dynamic context as a context event.

    The event goes at the end of the conversation: committed directly when no turn is in
    progress, otherwise after the turn's messages so far (it is committed with the turn). Either
    way every request sent before it stays a prefix of the next one. An unchanged context (or
    ``None``) adds nothing; in ``per_turn`` mode this is a no-op.
    """
    context = _check_context(dynamic_context)
    if state.dynamic_mode != "append" or context is None or context == state.context:
        return state
    if state.closed:
        raise StateClosedError("this llmvoice state is closed; start a new session to add context")
    event = Message("system", context, id=state.next_id, kind="context")
    if state.recent:
        return state.evolve(recent=(*state.recent, event), context=context, next_id=state.next_id + 1)
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
        state.tool_output_limit,
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


# -- rebase and rollback ------------------------------------------------------------------


def _starts_turn(message: Message) -> bool:
    return message.role not in ("assistant", "tool")


def turn_boundaries(state: State) -> tuple[int, ...]:
    """Where the committed history may be cut by :func:`rebase`, ascending.

    A boundary ``i`` (``1 <= i <= len(state.committed)``) leaves ``committed[i:]`` a history every
    provider accepts: no tool call is separated from its results, and ``committed[i]`` (when
    ``i`` is not the end) starts a turn: a user, system or developer message, a context event or
    a summary, never an assistant message or a tool result. The end is a boundary when no
    committed tool call still waits for its result.

    Args:
        state: the session state.

    Returns:
        The allowed cuts; empty when nothing is committed.
    """
    boundaries: list[int] = []
    waiting: set[str] = set()
    for i, message in enumerate(state.committed):
        if i and not waiting and _starts_turn(message):
            boundaries.append(i)
        if message.tool_call_id is not None:
            waiting.discard(message.tool_call_id)
        waiting.update(call.id for call in message.tool_calls)
    if state.committed and not waiting:
        boundaries.append(len(state.committed))
    return tuple(boundaries)


def summary_message(text: str, covers: Iterable[int] = ()) -> Message:
    """A summary block for :func:`rebase`: a user message that says what it stands for.

    Args:
        text: the summary itself; the content is ``Summary of the earlier conversation:``, a line
            break, then ``text``.
        covers: ids of the blocks the summary replaces (the cut span's blocks, and blocks covered
            by summaries inside it); stored sorted and without repeats.

    Returns:
        A ``Message`` with ``kind="summary"`` (its id is assigned by the rebase).

    Raises:
        InvalidMessageError: ``text`` is not a string, or an id is not a non-negative integer.
    """
    if not isinstance(text, str):
        raise InvalidMessageError(f"must be a string, not {type(text).__name__}", index=0, field="text")
    check_text(text, 0, "text")
    ids: set[int] = set()
    for value in covers:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidMessageError(f"ids must be non-negative integers, not {value!r}", index=0, field="covers")
        ids.add(value)
    return Message("user", _SUMMARY_HEADING + text, kind="summary", covers=tuple(sorted(ids)))


def accounted_ids(state: State) -> frozenset[int]:
    """Ids of every block the state still holds: committed, recent, archived or covered by a summary.

    Every id ever appended to a session (messages and context events) stays in this set through
    rebases and rollbacks; nothing is dropped.
    """
    ids: set[int] = set()
    for message in chain(state.committed, state.recent, state.archive):
        ids.add(message.id)
        if message.covers:
            ids.update(message.covers)
    return frozenset(ids)


def _last_context(blocks: Iterable[Message]) -> str | None:
    context: str | None = None
    for message in blocks:
        if message.kind == "context":
            context = message.text
    return context


def _near(boundaries: Sequence[int], cut: int) -> list[int]:
    below = [b for b in boundaries if b < cut]
    above = [b for b in boundaries if b > cut]
    return [*below[-1:], *above[:1]]


def rebase(state: State, cut: int, replacement: Sequence[Message | Mapping[str, Any]] = ()) -> State:
    """Replace the head of the committed history: a new epoch starts.

    ``committed[:cut]`` moves to the archive (in order, nothing is dropped); the committed
    history becomes ``replacement`` followed by ``committed[cut:]``. The recent turns and open tool
    calls stay as they are. Every replacement block is stored as a summary (``kind="summary"``,
    with a fresh id): a block written by a rebase, which :func:`rollback` drops when it brings the
    replaced blocks back. In ``append`` mode, when the last context event is archived the context
    is cleared, so the next request commits the current context again.

    Args:
        state: the session state.
        cut: one of :func:`turn_boundaries`.
        replacement: what stands for the archived blocks, usually one :func:`summary_message`;
            plain messages (OpenAI chat shape) are accepted as well.

    Returns:
        The new state, with ``epoch + 1``.

    Raises:
        StateClosedError: the state is closed.
        ConfigurationError: ``cut`` is not a turn boundary.
        InvalidMessageError: a replacement block is malformed, is a tool result, calls tools, is a
            context event, or covers an id outside the cut span (the error names its index).
    """
    if state.closed:
        raise StateClosedError("this llmvoice state is closed; a closed session cannot be rebased")
    boundaries = turn_boundaries(state)
    if isinstance(cut, bool) or not isinstance(cut, int):
        raise ConfigurationError(f"cut must be an integer index into the committed history, not {cut!r}")
    if cut not in boundaries:
        if not boundaries:
            where = "the committed history has no turn boundary"
        else:
            where = f"the nearest turn boundaries are {_near(boundaries, cut)}"
        raise ConfigurationError(
            f"cut {cut} is not a turn boundary of the committed history ({len(state.committed)} blocks); {where}"
        )
    head = state.committed[:cut]
    span: set[int] = set()
    for message in head:
        span.add(message.id)
        if message.kind == "summary":
            span.update(message.covers)
    written: list[Message] = []
    next_id = state.next_id
    for i, raw in enumerate(replacement):
        message = to_message(raw, i)
        if message.role == "tool":
            raise InvalidMessageError("a rebase cannot write a tool result", index=i, field="role")
        if message.tool_calls:
            raise InvalidMessageError("a rebase cannot write tool calls", index=i, field="tool_calls")
        if message.kind == "context":
            raise InvalidMessageError(
                "a rebase cannot write a context event; the dynamic context is committed by set_context",
                index=i,
                field="kind",
            )
        outside = sorted(set(message.covers) - span)
        if outside:
            raise InvalidMessageError(
                f"covers ids {outside} that are neither in the cut span nor covered by a summary in it",
                index=i,
                field="covers",
            )
        covers = tuple(sorted(set(message.covers)))
        written.append(
            Message(
                message.role,
                message.content,
                (),
                None,
                message.name,
                message.extra,
                next_id,
                "summary",
                covers,
            )
        )
        next_id += 1
    committed: Log[Message] = Log([*written, *state.committed[cut:]])
    context = _last_context([*committed, *state.recent]) if state.dynamic_mode == "append" else state.context
    return state.evolve(
        epoch=state.epoch + 1,
        committed=committed,
        archive=state.archive.extend(head),
        context=context,
        next_id=next_id,
        built_committed=0,
    )


def rollback(current: State, earlier: State) -> State:
    """Return to ``earlier`` (saved before a rebase), keeping every block added since.

    The committed history becomes ``earlier``'s, byte for byte, followed by every message and
    context event that was committed after it, in the order they were committed (blocks archived
    again by a later rebase included); the recent turns are ``current``'s. Summaries written
    after ``earlier`` are dropped: the blocks they replaced are back. The archive is
    ``earlier``'s plus the full tool outputs masked since (their stubs stay in the history), ids
    keep counting from ``current``, and a new epoch starts
    (``current.epoch + 1``): the prefix changes again.

    Args:
        current: the state now.
        earlier: a state of the same session that ``current`` descends from.

    Returns:
        The restored state.

    Raises:
        StateClosedError: ``current`` is closed.
        ConfigurationError: ``earlier`` is not a state of the same session, is newer than
            ``current``, or holds blocks ``current`` does not (it is not an earlier state of it).
    """
    for name, value in (("current", current), ("earlier", earlier)):
        if not isinstance(value, State):
            raise ConfigurationError(f"{name} must be an llmvoice State, not {type(value).__name__}")
    if current.closed:
        raise StateClosedError("this llmvoice state is closed; a closed session cannot be rolled back")
    if earlier.session_id != current.session_id:
        raise ConfigurationError(
            f"cannot roll back to a state of another session ({earlier.session_id!r}, not {current.session_id!r})"
        )
    if earlier.next_id > current.next_id:
        raise ConfigurationError(
            f"the earlier state is newer than the current one (next_id {earlier.next_id} > {current.next_id})"
        )
    held: dict[int, list[Message]] = {}
    for block in chain(current.archive, current.committed, current.recent):
        m = block
        if m.kind == "masked":  # a full tool output: what the block was before its stub
            m = Message(m.role, m.content, m.tool_calls, m.tool_call_id, m.name, m.extra, m.id)
        held.setdefault(m.id, []).append(m)
    missing = [m.id for m in chain(earlier.committed, earlier.recent) if m not in held.get(m.id, ())]
    if missing:
        raise ConfigurationError(
            f"the earlier state holds blocks {missing[:5]}{' ...' if len(missing) > 5 else ''} that the current "
            "state does not: it is not an earlier state of this one"
        )
    start = earlier.next_id
    pending = {m.id for m in earlier.recent}

    def later(message: Message) -> bool:
        if message.kind in ("summary", "masked"):
            return False
        return message.id in pending or message.id >= start

    restored: list[Message] = []
    seen: set[int] = set()
    for message in chain(current.archive, current.committed):
        if later(message) and message.id not in seen:
            seen.add(message.id)
            restored.append(message)
    committed = earlier.committed.extend(restored)
    context = _last_context([*committed, *current.recent]) if current.dynamic_mode == "append" else current.context
    # Full tool outputs masked since ``earlier`` stay archived: their stubs are back in the history.
    kept = {m.id for m in earlier.archive if m.kind == "masked"}
    masked = [m for m in current.archive if m.kind == "masked" and m.id not in kept]
    return current.evolve(
        epoch=current.epoch + 1,
        committed=committed,
        archive=earlier.archive.extend(masked),
        context=context,
        built_committed=0,
    )


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
