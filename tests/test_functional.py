"""Unit tests for llmvoice.functional: the pure state-transition API."""

from __future__ import annotations

import pytest
from builders import assistant as _assistant
from builders import calls as _calls
from builders import result as _result
from builders import state as _state
from builders import user as _user

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.errors import (
    AdapterError,
    ConfigurationError,
    InvalidMessageError,
    PendingToolCallsError,
    StateClosedError,
    ToolCallError,
)
from llmvoice.messages import Message, ToolCall, freeze
from llmvoice.state import Log, State

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}


def _adapter() -> OpenAIAdapter:
    return OpenAIAdapter("gpt-4o")


class TestNewState:
    """new_state and its validation."""

    def test_defaults(self) -> None:
        """new_state builds an empty agent_cycle, per_turn state with the given prompt and session."""
        assert fn.new_state("P", session_id="s1") == State(static_system="P", session_id="s1")

    def test_tools_are_frozen(self) -> None:
        """Tools are stored frozen and do not follow later changes to the input."""
        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        state = fn.new_state("P", tools=[tool], session_id="s1")
        tool["function"]["name"] = "g"
        assert state.tools == (
            freeze({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}),
        )

    def test_modes_are_kept(self) -> None:
        """The transition and dynamic modes given are stored."""
        state = fn.new_state(transition_mode="manual", dynamic_mode="append")
        assert (state.transition_mode, state.dynamic_mode) == ("manual", "append")

    def test_unknown_mode(self) -> None:
        """An unknown mode raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            fn.new_state(transition_mode="later")

    def test_tool_not_a_dict(self) -> None:
        """A tool that is not a dict is rejected with its index."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[TOOL, "lookup"])
        assert (info.value.index, info.value.field) == (1, "tools[1]")

    def test_tool_wrong_type(self) -> None:
        """A tool whose type is not function is rejected on its type."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[{**TOOL, "type": "web_search"}])
        assert (info.value.index, info.value.field) == (0, "tools[0].type")

    def test_tool_missing_name(self) -> None:
        """A tool function without a name is rejected on its name."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[TOOL, {"type": "function", "function": {"parameters": {}}}])
        assert (info.value.index, info.value.field) == (1, "tools[1].function.name")

    def test_tool_missing_function(self) -> None:
        """A tool without a function dict is rejected on the function name."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[{"type": "function"}])
        assert (info.value.index, info.value.field) == (0, "tools[0].function.name")

    def test_tool_non_object_parameters(self) -> None:
        """Tool parameters that are not an object are rejected on parameters."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[{"type": "function", "function": {"name": "f", "parameters": ["x"]}}])
        assert (info.value.index, info.value.field) == (0, "tools[0].function.parameters")

    def test_tool_lone_surrogate(self) -> None:
        """A lone surrogate in a tool description is rejected on that field."""
        tool = {"type": "function", "function": {"name": "f", "description": "\ud800"}}
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(tools=[tool])
        assert (info.value.index, info.value.field) == (0, "tools[0].function.description")

    def test_prompt_lone_surrogate(self) -> None:
        """A lone surrogate in the system prompt is rejected on static_system_prompt."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state("You are \ud800")
        assert (info.value.index, info.value.field) == (0, "static_system_prompt")

    def test_prompt_not_a_string(self) -> None:
        """A system prompt that is not a string is rejected on static_system_prompt."""
        with pytest.raises(InvalidMessageError) as info:
            fn.new_state(b"P")  # type: ignore[arg-type]
        assert (info.value.index, info.value.field) == (0, "static_system_prompt")


class TestTransitionModes:
    """When recent turns are committed."""

    def test_agent_cycle_user_stays_recent(self) -> None:
        """In agent_cycle a user message waits in recent."""
        state = fn.append_message(_state(), _user())
        assert (list(state.committed), state.recent) == ([], (Message("user", "hi", id=0),))

    def test_agent_cycle_commits_on_final_assistant(self) -> None:
        """In agent_cycle an assistant message without tool calls commits the turn."""
        state = fn.append_messages(_state(), [_user(), _assistant()])
        assert list(state.committed) == [Message("user", "hi", id=0), Message("assistant", "hello", id=1)]
        assert state.recent == ()

    def test_agent_cycle_not_on_tool_calls(self) -> None:
        """In agent_cycle an assistant message with tool calls does not commit."""
        state = fn.append_messages(_state(), [_user(), _calls("c1")])
        assert list(state.committed) == []
        assert state.recent == (
            Message("user", "hi", id=0),
            Message("assistant", None, (ToolCall("c1", "lookup", "{}"),), id=1),
        )
        assert state.open_tool_calls == ("c1",)

    def test_agent_cycle_full_tool_turn(self) -> None:
        """A call, its result and the final answer are committed together."""
        state = fn.append_messages(_state(), [_user(), _calls("c1"), _result("c1"), _assistant()])
        assert [(m.role, m.id) for m in state.committed] == [
            ("user", 0),
            ("assistant", 1),
            ("tool", 2),
            ("assistant", 3),
        ]
        assert (state.recent, state.open_tool_calls) == ((), ())

    def test_manual_waits_for_transition(self) -> None:
        """In manual mode nothing is committed until transition()."""
        state = fn.append_messages(_state(transition_mode="manual"), [_user(), _assistant()])
        assert (list(state.committed), len(state.recent)) == ([], 2)
        committed = fn.transition(state)
        assert list(committed.committed) == [Message("user", "hi", id=0), Message("assistant", "hello", id=1)]
        assert committed.recent == ()

    def test_transition_without_recent_is_identity(self) -> None:
        """transition() with no recent turns returns the same state."""
        state = _state()
        assert fn.transition(state) is state

    def test_transition_leaves_old_state(self) -> None:
        """transition() returns a new state and leaves the old one unchanged."""
        state = fn.append_message(_state(transition_mode="manual"), _user())
        fn.transition(state)
        assert (list(state.committed), state.recent) == ([], (Message("user", "hi", id=0),))

    def test_none_commits_immediately(self) -> None:
        """In none mode every message is committed at once, tool calls included."""
        state = fn.append_messages(_state(transition_mode="none"), [_user(), _calls("c1")])
        assert list(state.committed) == [
            Message("user", "hi", id=0),
            Message("assistant", None, (ToolCall("c1", "lookup", "{}"),), id=1),
        ]
        assert (state.recent, state.open_tool_calls) == ((), ("c1",))


class TestMessageIds:
    """Sequence numbers of appended messages."""

    def test_sequential_ids(self) -> None:
        """Messages get ids 0, 1, 2 ... across separate appends."""
        state = fn.append_message(_state(transition_mode="manual"), _user("a"))
        state = fn.append_messages(state, [_assistant("b"), _user("c")])
        assert ([m.id for m in state.recent], state.next_id) == ([0, 1, 2], 3)

    def test_message_instance_gets_fresh_id(self) -> None:
        """An appended Message object gets the next id, whatever id it carried."""
        state = fn.append_message(_state(), _user())
        state = fn.append_message(state, Message("assistant", "x", id=42))
        assert [m.id for m in state.committed] == [0, 1]

    def test_appended_blocks_are_messages(self) -> None:
        """An appended summary or context Message is stored as a plain message (rebase and set_context write those)."""
        summary = Message("user", "s", id=7, kind="summary", covers=(1, 2))
        context = Message("system", "c", kind="context")
        state = fn.append_messages(_state(transition_mode="none"), [summary, context])
        assert list(state.committed) == [Message("user", "s", id=0), Message("system", "c", id=1)]

    def test_context_event_takes_an_id(self) -> None:
        """A committed context event takes the next id, shared with messages."""
        state = fn.append_message(_state(dynamic_mode="append"), _user())
        state = fn.set_context(state, "ctx")
        state = fn.append_message(state, _assistant())
        assert [(m.id, m.kind) for m in state.committed] == [(0, "message"), (1, "context"), (2, "message")]
        assert state.next_id == 3


class TestToolCallPairing:
    """Tool results must answer open calls."""

    def test_unknown_tool_call_id(self) -> None:
        """A tool result for an unknown call raises ToolCallError on tool_call_id."""
        state = fn.append_messages(_state(), [_user(), _calls("c1")])
        with pytest.raises(ToolCallError) as info:
            fn.append_message(state, _result("c2"))
        assert (info.value.index, info.value.field) == (0, "tool_call_id")

    def test_result_without_any_call(self) -> None:
        """A tool result with no open calls raises ToolCallError at its batch index."""
        with pytest.raises(ToolCallError) as info:
            fn.append_messages(_state(), [_user(), _result("c1")])
        assert (info.value.index, info.value.field) == (1, "tool_call_id")

    def test_duplicate_result(self) -> None:
        """A second result for an answered call raises ToolCallError on tool_call_id."""
        state = fn.append_messages(_state(), [_user(), _calls("c1", "c2"), _result("c1")])
        with pytest.raises(ToolCallError) as info:
            fn.append_message(state, _result("c1"))
        assert (info.value.index, info.value.field) == (0, "tool_call_id")

    def test_user_while_calls_open(self) -> None:
        """A user message while calls are open raises ToolCallError on role."""
        state = fn.append_messages(_state(), [_user(), _calls("c1")])
        with pytest.raises(ToolCallError) as info:
            fn.append_message(state, _user("again"))
        assert (info.value.index, info.value.field) == (0, "role")

    def test_hand_built_message_with_duplicate_ids(self) -> None:
        """A hand-built Message is validated too: a repeated call id is refused on that call's id."""
        calls = (ToolCall("c1", "lookup", "{}"), ToolCall("c1", "lookup", "{}"))
        state = fn.append_message(_state(), _user())
        with pytest.raises(InvalidMessageError) as info:
            fn.append_messages(state, [_assistant("x"), _user("y"), Message("assistant", None, calls)])
        assert (info.value.index, info.value.field) == (2, "tool_calls[1].id")

    def test_new_calls_while_calls_open(self) -> None:
        """An assistant reusing a still-open id before all results are in is refused on role."""
        state = fn.append_messages(_state(), [_user(), _calls("c1", "c2"), _result("c2")])
        with pytest.raises(ToolCallError) as info:
            fn.append_message(state, _calls("c1"))
        assert (info.value.index, info.value.field) == (0, "role")

    def test_results_in_any_order(self) -> None:
        """Results may arrive in any order; every call is closed afterwards."""
        state = fn.append_messages(_state(), [_user(), _calls("a", "b", "c"), _result("c"), _result("a")])
        assert state.open_tool_calls == ("b",)
        state = fn.append_message(state, _result("b"))
        assert state.open_tool_calls == ()

    def test_answered_id_may_be_reused(self) -> None:
        """A call id whose result arrived may be used by a later call."""
        state = fn.append_messages(_state(), [_user(), _calls("c1"), _result("c1"), _calls("c1")])
        assert state.open_tool_calls == ("c1",)

    def test_tool_call_error_is_invalid_message(self) -> None:
        """ToolCallError is an InvalidMessageError."""
        assert issubclass(ToolCallError, InvalidMessageError)


class TestAtomicAppend:
    """append_messages appends all or nothing."""

    def test_invalid_third_message(self) -> None:
        """An invalid third message raises with index 2 and the state is unchanged."""
        state = fn.append_message(_state(), _user())
        before = fn.dumps(state)
        with pytest.raises(InvalidMessageError) as info:
            fn.append_messages(state, [_assistant(), _user("b"), {"role": "bot", "content": "x"}])
        assert (info.value.index, info.value.field) == (2, "role")
        assert fn.dumps(state) == before
        assert fn.loads(before) == state

    def test_tool_error_at_third_message(self) -> None:
        """A pairing error at the third message raises with index 2 and commits nothing."""
        state = _state(transition_mode="none")
        with pytest.raises(ToolCallError) as info:
            fn.append_messages(state, [_user(), _assistant(), _result("zz")])
        assert (info.value.index, info.value.field) == (2, "tool_call_id")
        assert (list(state.committed), state.next_id) == ([], 0)

    def test_failed_append_does_not_touch_shared_log(self) -> None:
        """A failed batch does not leave items in the committed log a later append shares."""
        state = fn.append_messages(_state(transition_mode="none"), [_user()])
        with pytest.raises(ToolCallError):
            fn.append_messages(state, [_assistant(), _result("zz")])
        state = fn.append_message(state, _assistant("real"))
        assert list(state.committed) == [Message("user", "hi", id=0), Message("assistant", "real", id=1)]

    def test_branches_are_independent(self) -> None:
        """Two appends to the same state give two independent histories."""
        base = fn.append_messages(_state(), [_user(), _assistant()])
        left = fn.append_messages(base, [_user("L"), _assistant("l")])
        right = fn.append_messages(base, [_user("R"), _assistant("r")])
        assert [m.text for m in left.committed] == ["hi", "hello", "L", "l"]
        assert [m.text for m in right.committed] == ["hi", "hello", "R", "r"]
        assert [m.text for m in base.committed] == ["hi", "hello"]

    def test_generator_input(self) -> None:
        """append_messages accepts any iterable."""
        state = fn.append_messages(_state(), (m for m in [_user(), _assistant()]))
        assert [m.role for m in state.committed] == ["user", "assistant"]


class TestClosed:
    """A closed state refuses new messages."""

    def test_append_after_close(self) -> None:
        """append_message on a closed state raises StateClosedError."""
        state = fn.close(_state())
        with pytest.raises(StateClosedError):
            fn.append_message(state, _user())

    def test_append_many_after_close(self) -> None:
        """append_messages on a closed state raises StateClosedError."""
        state = fn.close(fn.append_message(_state(), _user()))
        with pytest.raises(StateClosedError):
            fn.append_messages(state, [_assistant()])

    def test_set_context_after_close_in_append_mode(self) -> None:
        """set_context with a new context on a closed append-mode state raises StateClosedError."""
        state = fn.close(_state(dynamic_mode="append"))
        with pytest.raises(StateClosedError):
            fn.set_context(state, "ctx")

    def test_close_sets_flag(self) -> None:
        """close returns a closed copy and leaves the original open."""
        state = _state()
        closed = fn.close(state)
        assert (state.closed, closed.closed) == (False, True)

    def test_close_twice_is_identity(self) -> None:
        """Closing a closed state returns the same state."""
        closed = fn.close(_state())
        assert fn.close(closed) is closed


class TestPendingToolCalls:
    """Commits and requests wait for open tool calls."""

    def test_transition_with_open_calls(self) -> None:
        """transition() with open calls raises PendingToolCallsError with their ids."""
        state = fn.append_messages(_state(transition_mode="manual"), [_user(), _calls("c1", "c2")])
        with pytest.raises(PendingToolCallsError) as info:
            fn.transition(state)
        assert info.value.call_ids == ("c1", "c2")

    def test_build_request_with_open_calls(self) -> None:
        """build_request with open calls raises PendingToolCallsError with their ids."""
        state = fn.append_messages(_state(), [_user(), _calls("c1", "c2"), _result("c2")])
        with pytest.raises(PendingToolCallsError) as info:
            fn.build_request(state, _adapter())
        assert info.value.call_ids == ("c1",)

    def test_build_messages_with_open_calls(self) -> None:
        """build_messages with open calls raises PendingToolCallsError with their ids."""
        state = fn.append_messages(_state(), [_user(), _calls("c1")])
        with pytest.raises(PendingToolCallsError) as info:
            fn.build_messages(state, _adapter())
        assert info.value.call_ids == ("c1",)


class TestDynamicAppend:
    """dynamic_mode="append" commits a changed context as a context event."""

    def test_changed_context_committed(self) -> None:
        """A new context joins the turn in progress as a kind="context" system message, after it."""
        state = fn.append_message(_state(dynamic_mode="append"), _user())
        built = fn.build_request(state, _adapter(), "ctx A")
        assert built.state.recent[-1] == Message("system", "ctx A", id=1, kind="context")
        assert (built.state.context, built.state.next_id) == ("ctx A", 2)
        assert built.payload == {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "P"},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "ctx A"},
            ],
            "prompt_cache_key": "s1",
        }

    def test_context_between_turns_is_committed(self) -> None:
        """With no turn in progress a new context is committed at the end of the history."""
        state = fn.set_context(_state(dynamic_mode="append"), "ctx A")
        assert (list(state.committed), state.recent) == ([Message("system", "ctx A", id=0, kind="context")], ())

    def test_context_mid_turn_keeps_the_earlier_request_a_prefix(self) -> None:
        """A context arriving between two requests of one turn goes after both: the first stays a prefix."""
        adapter = _adapter()
        state = fn.append_message(_state(dynamic_mode="append"), _user())
        first = fn.build_request(state, adapter, None)
        second = fn.build_request(first.state, adapter, "ctx A")
        assert second.payload["messages"][: len(first.payload["messages"])] == first.payload["messages"]

    def test_same_context_adds_nothing(self) -> None:
        """Building again with the same context commits nothing new."""
        adapter = _adapter()
        state = fn.append_message(_state(dynamic_mode="append"), _user())
        first = fn.build_request(state, adapter, "ctx A").state
        second = fn.build_request(first, adapter, "ctx A").state
        assert (second.committed, second.next_id, second.context) == (first.committed, 2, "ctx A")

    def test_none_context_adds_nothing(self) -> None:
        """Building with no context commits nothing and keeps the last context."""
        adapter = _adapter()
        state = fn.build_request(fn.append_message(_state(dynamic_mode="append"), _user()), adapter, "ctx A").state
        after = fn.build_request(state, adapter, None).state
        assert (after.committed, after.next_id, after.context) == (state.committed, 2, "ctx A")

    def test_changed_again_adds_event(self) -> None:
        """A second, different context adds a second context event."""
        state = fn.set_context(fn.set_context(_state(dynamic_mode="append"), "A"), "B")
        assert list(state.committed) == [
            Message("system", "A", id=0, kind="context"),
            Message("system", "B", id=1, kind="context"),
        ]

    def test_set_context_same_is_identity(self) -> None:
        """set_context with the current context returns the same state."""
        state = fn.set_context(_state(dynamic_mode="append"), "A")
        assert fn.set_context(state, "A") is state

    def test_set_context_per_turn_is_noop(self) -> None:
        """set_context in per_turn mode returns the same state."""
        state = _state()
        assert fn.set_context(state, "A") is state

    def test_context_must_be_string(self) -> None:
        """A non-string context is rejected on dynamic_context."""
        with pytest.raises(InvalidMessageError) as info:
            fn.set_context(_state(dynamic_mode="append"), 5)  # type: ignore[arg-type]
        assert (info.value.index, info.value.field) == (0, "dynamic_context")

    def test_context_lone_surrogate(self) -> None:
        """A lone surrogate in the context is rejected on dynamic_context."""
        with pytest.raises(InvalidMessageError) as info:
            fn.build_request(fn.append_message(_state(), _user()), _adapter(), "\ud800")
        assert (info.value.index, info.value.field) == (0, "dynamic_context")


class TestPerTurn:
    """dynamic_mode="per_turn" never commits the context."""

    def test_build_never_changes_committed(self) -> None:
        """build_request leaves committed, recent and context exactly as they were."""
        adapter = _adapter()
        state = fn.append_messages(_state(), [_user(), _assistant(), _user("next")])
        after = fn.build_request(state, adapter, "ctx A").state
        after = fn.build_request(after, adapter, "ctx B").state
        assert (after.committed is state.committed, after.recent is state.recent) == (True, True)
        assert (after.context, after.next_id) == (None, 3)

    def test_request_layout(self) -> None:
        """The request is system, committed history, dynamic context, then recent turns."""
        state = fn.append_messages(_state(), [_user(), _assistant(), _user("next")])
        assert fn.build_request(state, _adapter(), "ctx").payload == {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "P"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "ctx"},
                {"role": "user", "content": "next"},
            ],
            "prompt_cache_key": "s1",
        }


class TestBuild:
    """build_request and build_messages."""

    def test_returns_built(self) -> None:
        """build_request returns Built(state, request) with built_committed set to the history length."""
        state = fn.append_messages(_state(), [_user(), _assistant(), _user("next")])
        built = fn.build_request(state, _adapter())
        assert isinstance(built, fn.Built)
        assert (built.state.built_committed, len(built.state.committed), state.built_committed) == (2, 2, 0)
        assert built.state == state.evolve(built_committed=2)

    def test_unpacks(self) -> None:
        """Built unpacks as (state, payload)."""
        new, request = fn.build_request(fn.append_message(_state(), _user()), _adapter())
        assert (new.built_committed, request["messages"][-1]) == (0, {"role": "user", "content": "hi"})

    def test_stream_and_options(self) -> None:
        """stream=True adds the streaming keys and options are added last."""
        state = fn.append_message(_state(), _user())
        assert fn.build_request(state, _adapter(), stream=True, temperature=0.2).payload == {
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": "P"}, {"role": "user", "content": "hi"}],
            "prompt_cache_key": "s1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.2,
        }

    def test_tools_in_request(self) -> None:
        """Tools are sent as given."""
        state = fn.append_message(fn.new_state("P", tools=[TOOL], session_id="s1"), _user())
        assert fn.build_request(state, _adapter()).payload == {
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": "P"}, {"role": "user", "content": "hi"}],
            "tools": [TOOL],
            "prompt_cache_key": "s1",
        }

    def test_build_messages(self) -> None:
        """build_messages returns the request's message list and the marked state."""
        state = fn.append_messages(_state(), [_user(), _assistant()])
        built = fn.build_messages(state, _adapter(), "ctx")
        assert built.payload == [
            {"role": "system", "content": "P"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "ctx"},
        ]
        assert built.state.built_committed == 2

    def test_nothing_to_send(self) -> None:
        """A state with no prompt, context or turns cannot be built."""
        with pytest.raises(AdapterError):
            fn.build_request(fn.new_state(session_id="s1"), _adapter())

    def test_cache_prefix(self) -> None:
        """cache_prefix reports the epoch, the system plus committed messages and the blocks."""
        state = fn.append_messages(_state(), [_user(), _assistant(), _user("next")])
        report = fn.cache_prefix(state, _adapter())
        assert (report.epoch, report.messages, report.blocks) == (0, 3, 2)


class TestSerialisation:
    """dumps and loads."""

    def test_round_trip(self) -> None:
        """loads(dumps(state)) equals the state, open calls and context included."""
        adapter = _adapter()
        state = fn.new_state("P", tools=[TOOL], dynamic_mode="append", session_id="s1")
        state = fn.append_messages(state, [_user(), _calls("c1"), _result("c1"), _assistant()])
        state = fn.build_request(fn.append_message(state, _user("more")), adapter, "ctx").state
        state = fn.append_message(state, _calls("c2"))
        assert fn.loads(fn.dumps(state)) == state

    def test_dumps_deterministic(self) -> None:
        """dumps gives the same text twice."""
        state = fn.append_messages(_state(), [_user(), _assistant()])
        assert fn.dumps(state) == fn.dumps(state)

    def test_loaded_state_builds_same_request(self) -> None:
        """A loaded state builds the same request as the original."""
        state = fn.append_messages(_state(), [_user(), _assistant(), _user("next")])
        loaded = fn.loads(fn.dumps(state))
        assert fn.build_request(loaded, _adapter(), "c").payload == fn.build_request(state, _adapter(), "c").payload

    def test_loaded_state_accepts_appends(self) -> None:
        """A loaded state continues the id sequence."""
        state = fn.loads(fn.dumps(fn.append_messages(_state(), [_user(), _assistant()])))
        state = fn.append_message(state, _user("again"))
        assert ([m.id for m in state.messages], state.next_id) == ([0, 1, 2], 3)


def test_committed_is_log() -> None:
    """The committed history of a new state is an empty Log."""
    assert _state().committed == Log()
