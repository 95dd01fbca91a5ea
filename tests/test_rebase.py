"""Rebase and rollback: the two operations that change the cached prefix, each in a new epoch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import assistant as _assistant
from builders import calls as _calls
from builders import result as _result
from builders import state as _state
from builders import user as _user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmvoice import functional as fn
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.errors import ConfigurationError, InvalidMessageError, StateClosedError
from llmvoice.manager import PromptManager
from llmvoice.messages import Message
from llmvoice.state import Log, State
from llmvoice.testing import RecordingClient, breakpoint_offsets, prompt_bytes
from llmvoice.tokens import EstimateCounter

HEADING = "Summary of the earlier conversation:\n"


def _chat(turns: int, **options: Any) -> State:
    """u0 a0 u1 a1 ... committed (agent_cycle): ids 0 .. 2*turns-1."""
    state = _state(**options)
    for i in range(turns):
        state = fn.append_messages(state, [_user(f"u{i}"), _assistant(f"a{i}")])
    return state


def _texts(blocks: Any) -> list[tuple[int, str, str]]:
    return [(m.id, m.kind, m.text) for m in blocks]


# -- turn_boundaries ---------------------------------------------------------------------------


class TestTurnBoundaries:
    """Where a cut leaves a history every provider accepts."""

    def test_empty(self) -> None:
        """Nothing committed: no boundary."""
        assert fn.turn_boundaries(_state()) == ()

    def test_plain_turns(self) -> None:
        """Before each user message and at the end; never before an assistant message."""
        assert fn.turn_boundaries(_chat(2)) == (2, 4)

    def test_tool_cycle_is_not_split(self) -> None:
        """No cut between a tool call and its results, nor before the answer that follows them."""
        state = fn.append_messages(
            _state(), [_user(), _calls("c1", "c2"), _result("c1"), _result("c2"), _assistant(), _user(), _assistant()]
        )
        assert fn.turn_boundaries(state) == (5, 7)

    def test_context_event_starts_a_turn(self) -> None:
        """A context event committed between turns is a turn start, like a user message."""
        state = fn.set_context(_state(dynamic_mode="append"), "ctx A")
        state = fn.append_message(state, _user("u0"))
        state = fn.append_message(state, _assistant("a0"))
        state = fn.set_context(state, "ctx B")
        assert _texts(state.committed) == [
            (0, "context", "ctx A"),
            (1, "message", "u0"),
            (2, "message", "a0"),
            (3, "context", "ctx B"),
        ]
        assert fn.turn_boundaries(state) == (1, 3, 4)

    def test_context_event_between_call_and_result(self) -> None:
        """A context event committed while a call waits (none mode) is not a boundary."""
        state = fn.append_messages(_state(transition_mode="none", dynamic_mode="append"), [_user(), _calls("c1")])
        state = fn.set_context(state, "ctx")
        state = fn.append_messages(state, [_result("c1"), _assistant()])
        assert [m.kind for m in state.committed] == ["message", "message", "context", "message", "message"]
        assert fn.turn_boundaries(state) == (5,)

    def test_system_message_starts_a_turn(self) -> None:
        """A system message in the history is a turn start."""
        state = fn.append_messages(
            _state(transition_mode="none"), [_user(), _assistant(), {"role": "system", "content": "note"}, _user()]
        )
        assert fn.turn_boundaries(state) == (2, 3, 4)

    def test_open_call_at_the_end(self) -> None:
        """In none mode a committed call still waiting for its result rules out the end."""
        state = fn.append_messages(_state(transition_mode="none"), [_user(), _assistant(), _user(), _calls("c1")])
        assert fn.turn_boundaries(state) == (2,)

    def test_partial_results_at_the_end(self) -> None:
        """One result of two committed: the end is not a boundary."""
        state = fn.append_messages(_state(transition_mode="none"), [_user(), _calls("c1", "c2"), _result("c1")])
        assert fn.turn_boundaries(state) == ()

    def test_after_a_summary(self) -> None:
        """After a rebase the summary heads the history; cuts follow the same rules."""
        state = fn.rebase(_chat(2), 2, [fn.summary_message("s", [0, 1])])
        assert fn.turn_boundaries(state) == (1, 3)


# -- summary_message ---------------------------------------------------------------------------


class TestSummaryMessage:
    """The summary block constructor."""

    def test_value(self) -> None:
        """A user message that names itself a summary, kind "summary", covers sorted without repeats."""
        assert fn.summary_message("They met.", [3, 1, 3]) == Message(
            "user", HEADING + "They met.", kind="summary", covers=(1, 3)
        )

    def test_default_covers(self) -> None:
        """Without covers the summary covers nothing."""
        assert fn.summary_message("x").covers == ()

    def test_text_must_be_string(self) -> None:
        """A non-string text raises InvalidMessageError on "text"."""
        with pytest.raises(InvalidMessageError) as info:
            fn.summary_message(b"x")  # type: ignore[arg-type]
        assert (info.value.field, str(info.value)) == ("text", "message 0, field 'text': must be a string, not bytes")

    @pytest.mark.parametrize("bad", [-1, True, "2", 1.0])
    def test_covers_must_be_ids(self, bad: Any) -> None:
        """A covered id that is not a non-negative integer raises InvalidMessageError on "covers"."""
        with pytest.raises(InvalidMessageError) as info:
            fn.summary_message("x", [0, bad])
        assert str(info.value) == f"message 0, field 'covers': ids must be non-negative integers, not {bad!r}"


# -- rebase ------------------------------------------------------------------------------------


class TestRebase:
    """rebase: archive the head, put the replacement first, start a new epoch."""

    def test_with_summary(self) -> None:
        """The head is archived in order; the summary takes the next id and comes first."""
        state = fn.rebase(_chat(3), 4, [fn.summary_message("u0..a1", [0, 1, 2, 3])])
        assert list(state.committed) == [
            Message("user", HEADING + "u0..a1", id=6, kind="summary", covers=(0, 1, 2, 3)),
            Message("user", "u2", id=4),
            Message("assistant", "a2", id=5),
        ]
        assert [m.id for m in state.archive] == [0, 1, 2, 3]
        assert (state.epoch, state.next_id, state.built_committed) == (1, 7, 0)

    def test_without_replacement(self) -> None:
        """No replacement: the history is the tail alone and no id is used."""
        state = fn.rebase(_chat(3), 2)
        assert (_texts(state.committed), state.next_id, state.epoch) == (
            [(2, "message", "u1"), (3, "message", "a1"), (4, "message", "u2"), (5, "message", "a2")],
            6,
            1,
        )

    def test_cut_everything(self) -> None:
        """The end is a valid cut: everything is archived, the summary alone remains."""
        state = fn.rebase(_chat(2), 4, [fn.summary_message("all", [0, 1, 2, 3])])
        assert (_texts(state.committed), [m.id for m in state.archive]) == (
            [(4, "summary", HEADING + "all")],
            [0, 1, 2, 3],
        )

    def test_resets_built_committed(self) -> None:
        """The previous request's breakpoint belongs to the old epoch: built_committed becomes 0."""
        built = fn.build_request(_chat(2), OpenAIAdapter("gpt-4o"))
        assert (built.state.built_committed, fn.rebase(built.state, 2).built_committed) == (4, 0)

    def test_recent_and_open_calls_unchanged(self) -> None:
        """Recent turns and open tool calls are not touched."""
        state = fn.append_messages(_chat(2, transition_mode="manual"), [_user("u2")])
        state = fn.transition(state)
        state = fn.append_messages(state, [_user("u3"), _calls("c1")])
        rebased = fn.rebase(state, 2)
        assert (rebased.recent, rebased.open_tool_calls) == (state.recent, ("c1",))
        assert _texts(rebased.recent) == [(5, "message", "u3"), (6, "message", "")]

    def test_does_not_change_the_input(self) -> None:
        """The rebased state is new; the original keeps its history, archive and epoch."""
        state = _chat(2)
        fn.rebase(state, 2, [fn.summary_message("s", [0, 1])])
        assert (_texts(state.committed)[0], len(state.archive), state.epoch) == ((0, "message", "u0"), 0, 0)

    def test_plain_replacement_becomes_summary(self) -> None:
        """A plain message in the replacement is stored as a block written by the rebase."""
        state = fn.rebase(_chat(2), 2, [_user("We spoke about tables."), _assistant("Noted.")])
        assert list(state.committed)[:2] == [
            Message("user", "We spoke about tables.", id=4, kind="summary"),
            Message("assistant", "Noted.", id=5, kind="summary"),
        ]

    def test_summary_inherits_covers(self) -> None:
        """A second summary may cover what a summary inside its cut span covered."""
        first = fn.rebase(_chat(3), 2, [fn.summary_message("one", [0, 1])])
        second = fn.rebase(first, 3, [fn.summary_message("two", [0, 1, 2, 3, 6])])
        assert _texts(second.committed) == [(7, "summary", HEADING + "two"), (4, "message", "u2"), (5, "message", "a2")]
        assert (second.committed[0].covers, [m.id for m in second.archive]) == ((0, 1, 2, 3, 6), [0, 1, 6, 2, 3])

    def test_accounted_ids(self) -> None:
        """Every appended id stays accounted for, and the summary's own id is added."""
        state = fn.rebase(_chat(3), 4, [fn.summary_message("s", [0, 1, 2, 3])])
        assert fn.accounted_ids(state) == frozenset(range(7))

    def test_append_mode_archived_context_is_cleared(self) -> None:
        """When the last context event is archived, the context is cleared and recommitted on the next build."""
        state = fn.set_context(_state(dynamic_mode="append"), "ctx A")
        state = fn.append_messages(state, [_user("u0"), _assistant("a0"), _user("u1"), _assistant("a1")])
        rebased = fn.rebase(state, 3)
        assert (state.context, rebased.context) == ("ctx A", None)
        built = fn.build_request(rebased, OpenAIAdapter("gpt-4o"), "ctx A")
        assert _texts(built.state.committed) == [(3, "message", "u1"), (4, "message", "a1"), (5, "context", "ctx A")]
        assert built.state.context == "ctx A"

    def test_append_mode_surviving_context_is_kept(self) -> None:
        """A context event left in the history keeps the context."""
        state = fn.append_messages(_state(dynamic_mode="append"), [_user("u0"), _assistant("a0")])
        state = fn.set_context(state, "ctx A")
        state = fn.append_messages(state, [_user("u1"), _assistant("a1")])
        rebased = fn.rebase(state, 2)
        assert (_texts(rebased.committed)[0], rebased.context) == ((2, "context", "ctx A"), "ctx A")

    def test_openai_request_after_rebase(self) -> None:
        """The OpenAI request carries the summary as a user message right after the system prompt."""
        state = fn.rebase(_chat(2), 2, [fn.summary_message("Greetings.", [0, 1])])
        state = fn.append_message(state, _user("u2"))
        assert fn.build_messages(state, OpenAIAdapter("gpt-4o")).payload == [
            {"role": "system", "content": "P"},
            {"role": "user", "content": HEADING + "Greetings."},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"},
        ]

    def test_anthropic_body_after_rebase(self) -> None:
        """Through the real anthropic client the summary is a user turn before the next user turn, marked at the end."""
        state = fn.rebase(_chat(2), 2, [fn.summary_message("Greetings.", [0, 1])])
        state = fn.append_message(state, _user("u2"))
        adapter = AnthropicAdapter("claude-sonnet-4-6", counter=EstimateCounter(4.0))
        body = RecordingClient("anthropic").send(fn.build_request(state, adapter).payload)
        assert json.loads(body)["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": HEADING + "Greetings."}]},
            {"role": "user", "content": [{"type": "text", "text": "u1"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a1", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [{"type": "text", "text": "u2"}]},
        ]

    def test_json_round_trip(self) -> None:
        """A rebased state survives JSON with its summary's kind and covers, its archive and epoch."""
        state = fn.rebase(_chat(3), 4, [fn.summary_message("s", [0, 1, 2, 3])])
        loaded = fn.loads(fn.dumps(state))
        assert loaded == state
        assert [(m.id, m.kind, m.covers) for m in loaded.committed] == [
            (6, "summary", (0, 1, 2, 3)),
            (4, "message", ()),
            (5, "message", ()),
        ]


class TestRebaseErrors:
    """Bad rebases raise and leave the state as it was."""

    def test_cut_not_a_boundary(self) -> None:
        """A cut before an assistant message raises ConfigurationError naming the nearest boundaries."""
        with pytest.raises(ConfigurationError) as info:
            fn.rebase(_chat(3), 3)
        assert str(info.value) == (
            "cut 3 is not a turn boundary of the committed history (6 blocks); the nearest turn boundaries are [2, 4]"
        )

    def test_cut_zero(self) -> None:
        """Cutting nothing is not a rebase."""
        with pytest.raises(ConfigurationError) as info:
            fn.rebase(_chat(1), 0)
        assert str(info.value) == (
            "cut 0 is not a turn boundary of the committed history (2 blocks); the nearest turn boundaries are [2]"
        )

    def test_nothing_committed(self) -> None:
        """An empty history has no boundary."""
        with pytest.raises(ConfigurationError) as info:
            fn.rebase(_state(), 0)
        assert str(info.value) == (
            "cut 0 is not a turn boundary of the committed history (0 blocks); "
            "the committed history has no turn boundary"
        )

    @pytest.mark.parametrize("cut", [True, 2.0, "2", None])
    def test_cut_not_an_integer(self, cut: Any) -> None:
        """A cut that is not an int raises ConfigurationError."""
        with pytest.raises(ConfigurationError) as info:
            fn.rebase(_chat(2), cut)
        assert str(info.value) == f"cut must be an integer index into the committed history, not {cut!r}"

    def test_tool_message(self) -> None:
        """A tool result in the replacement raises InvalidMessageError on its role."""
        with pytest.raises(InvalidMessageError) as info:
            fn.rebase(_chat(2), 2, [fn.summary_message("s"), _result("c1")])
        assert (info.value.index, info.value.field) == (1, "role")

    def test_tool_calls(self) -> None:
        """An assistant message calling tools in the replacement raises InvalidMessageError on tool_calls."""
        with pytest.raises(InvalidMessageError) as info:
            fn.rebase(_chat(2), 2, [_calls("c1")])
        assert (info.value.index, info.value.field) == (0, "tool_calls")

    def test_context_event(self) -> None:
        """A context event in the replacement raises InvalidMessageError on kind."""
        with pytest.raises(InvalidMessageError) as info:
            fn.rebase(_chat(2), 2, [Message("system", "ctx", kind="context")])
        assert (info.value.index, info.value.field) == (0, "kind")

    def test_malformed_message(self) -> None:
        """A malformed replacement message raises InvalidMessageError naming its index and field."""
        with pytest.raises(InvalidMessageError) as info:
            fn.rebase(_chat(2), 2, [fn.summary_message("s"), {"role": "bot", "content": "x"}])
        assert (info.value.index, info.value.field) == (1, "role")

    def test_covers_outside_the_span(self) -> None:
        """A summary covering blocks that stay in the history raises InvalidMessageError on covers."""
        with pytest.raises(InvalidMessageError) as info:
            fn.rebase(_chat(3), 2, [fn.summary_message("s", [0, 1, 2, 9])])
        assert str(info.value) == (
            "message 0, field 'covers': covers ids [2, 9] that are neither in the cut span "
            "nor covered by a summary in it"
        )

    def test_closed(self) -> None:
        """A closed state raises StateClosedError."""
        with pytest.raises(StateClosedError):
            fn.rebase(fn.close(_chat(2)), 2)

    def test_manager_state_unchanged(self) -> None:
        """A failed rebase leaves the manager's state the very same object."""
        manager = PromptManager(state=_chat(2))
        before = manager.state
        with pytest.raises(InvalidMessageError):
            manager.rebase(2, [fn.summary_message("s", [3])])
        with pytest.raises(ConfigurationError):
            manager.rebase(1)
        assert manager.state is before


# -- rollback ----------------------------------------------------------------------------------


def _rebased_then_more() -> tuple[State, State]:
    """A snapshot with a pending utterance, a rebase, the answer and the newest utterance."""
    earlier = fn.append_message(_chat(3), _user("u3"))
    current = fn.rebase(earlier, 4, [fn.summary_message("u0..a1", [0, 1, 2, 3])])
    current = fn.append_messages(current, [_assistant("a3"), _user("u4")])
    return earlier, current


class TestRollback:
    """rollback: the earlier state, byte for byte, plus everything since."""

    def test_history_and_newest_utterance(self) -> None:
        """Earlier's history, then the answer committed since; the newest utterance is in the recent turns."""
        earlier, current = _rebased_then_more()
        restored = fn.rollback(current, earlier)
        assert list(restored.committed) == [
            Message("user", "u0", id=0),
            Message("assistant", "a0", id=1),
            Message("user", "u1", id=2),
            Message("assistant", "a1", id=3),
            Message("user", "u2", id=4),
            Message("assistant", "a2", id=5),
            Message("user", "u3", id=6),
            Message("assistant", "a3", id=8),
        ]
        assert restored.recent == (Message("user", "u4", id=9),)

    def test_bookkeeping(self) -> None:
        """A new epoch after the current one, earlier's archive, current's next id, no previous breakpoint."""
        earlier, current = _rebased_then_more()
        restored = fn.rollback(current, earlier)
        assert (restored.epoch, list(restored.archive), restored.next_id, restored.built_committed) == (2, [], 10, 0)

    def test_summary_dropped_ids_accounted(self) -> None:
        """The summary is gone; every appended id is accounted for."""
        earlier, current = _rebased_then_more()
        restored = fn.rollback(current, earlier)
        assert fn.accounted_ids(restored) == frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9})
        assert [m for m in restored.messages if m.kind == "summary"] == []

    def test_blocks_archived_again_come_back(self) -> None:
        """Messages cut by a second rebase after the snapshot return in order."""
        earlier = _chat(2)
        current = fn.rebase(earlier, 2, [fn.summary_message("one", [0, 1])])
        current = fn.append_messages(current, [_user("u2"), _assistant("a2"), _user("u3"), _assistant("a3")])
        current = fn.rebase(current, 5, [fn.summary_message("two", [0, 1, 2, 3, 4, 5, 6])])
        current = fn.append_message(current, _user("u4"))
        restored = fn.rollback(current, earlier)
        assert _texts(restored.committed) == [
            (0, "message", "u0"),
            (1, "message", "a0"),
            (2, "message", "u1"),
            (3, "message", "a1"),
            (5, "message", "u2"),
            (6, "message", "a2"),
            (7, "message", "u3"),
            (8, "message", "a3"),
        ]
        assert (_texts(restored.recent), restored.epoch) == ([(10, "message", "u4")], 3)

    def test_manual_mode_commit_positions(self) -> None:
        """Manual mode: what was committed stays committed, context events where they were committed."""
        state = fn.transition(fn.append_messages(_state(transition_mode="manual", dynamic_mode="append"), [_user()]))
        earlier = fn.append_messages(state, [_assistant("a0"), _user("u1")])
        current = fn.rebase(earlier, 1)
        current = fn.set_context(current, "ctx")
        current = fn.transition(fn.append_message(current, _assistant("a1")))
        current = fn.append_message(current, _user("u2"))
        restored = fn.rollback(current, earlier)
        assert _texts(restored.committed) == [
            (0, "message", "hi"),
            (1, "message", "a0"),
            (2, "message", "u1"),
            (3, "context", "ctx"),
            (4, "message", "a1"),
        ]
        assert _texts(restored.recent) == [(5, "message", "u2")]

    def test_append_mode_context(self) -> None:
        """The context is the last context event of the restored history."""
        earlier = fn.set_context(_chat(2, dynamic_mode="append"), "A")
        current = fn.rebase(earlier, 4)
        current = fn.set_context(fn.append_messages(current, [_user(), _assistant()]), "B")
        restored = fn.rollback(current, earlier)
        assert (restored.context, _texts(restored.committed)[4:]) == (
            "B",
            [(4, "context", "A"), (5, "message", "hi"), (6, "message", "hello"), (7, "context", "B")],
        )

    def test_no_rebase_in_between(self) -> None:
        """Rolling back across plain appends keeps every block and still starts a new epoch."""
        earlier = _chat(1)
        current = fn.append_messages(earlier, [_user("u1"), _assistant("a1")])
        restored = fn.rollback(current, earlier)
        assert (list(restored.committed), restored.epoch) == (list(current.committed), 1)

    def test_openai_request_starts_with_earlier(self) -> None:
        """The restored request's messages start with exactly the earlier request's system and history."""
        adapter = OpenAIAdapter("gpt-4o")
        earlier, current = _rebased_then_more()
        before = fn.build_messages(earlier, adapter).payload
        fn.build_messages(current, adapter)
        after = fn.build_messages(fn.rollback(current, earlier), adapter).payload
        assert after[:7] == before[:7]
        assert after[7:] == [
            {"role": "user", "content": "u3"},
            {"role": "assistant", "content": "a3"},
            {"role": "user", "content": "u4"},
        ]
        assert before[7:] == [{"role": "user", "content": "u3"}]

    def test_anthropic_prefix_bytes_come_back(self) -> None:
        """Through the real anthropic client, earlier's cached prefix is a byte prefix of the restored request."""
        adapter = AnthropicAdapter("claude-sonnet-4-6", counter=EstimateCounter(4.0))
        recorder = RecordingClient("anthropic")
        earlier, current = _rebased_then_more()
        first = recorder.send(fn.build_request(earlier, adapter).payload)
        recorder.send(fn.build_request(current, adapter).payload)
        restored = recorder.send(fn.build_request(fn.rollback(current, earlier), adapter).payload)
        end = max(breakpoint_offsets(first, "anthropic"))
        assert prompt_bytes(restored, "anthropic")[:end] == prompt_bytes(first, "anthropic")[:end]
        assert json.loads(restored)["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "u4"}]}

    def test_manager(self) -> None:
        """PromptManager.rebase and rollback replace its state; turn_boundaries reads it."""
        manager = PromptManager(state=_chat(2))
        earlier = manager.state
        assert manager.turn_boundaries() == (2, 4)
        assert manager.rebase(2, [fn.summary_message("s", [0, 1])]) is manager
        assert (manager.state.epoch, manager.turn_boundaries()) == (1, (1, 3))
        manager.append(_user("u2"))
        assert manager.rollback(earlier) is manager
        assert (_texts(manager.state.committed)[-1], _texts(manager.state.recent), manager.state.epoch) == (
            (3, "message", "a1"),
            [(5, "message", "u2")],
            2,
        )


class TestRollbackErrors:
    """Bad rollbacks raise and leave the state as it was."""

    def test_other_session(self) -> None:
        """A state of another session raises ConfigurationError."""
        other = fn.new_state("P", session_id="s2")
        with pytest.raises(ConfigurationError) as info:
            fn.rollback(_chat(1), other)
        assert str(info.value) == "cannot roll back to a state of another session ('s2', not 's1')"

    def test_newer(self) -> None:
        """A state newer than the current one raises ConfigurationError."""
        with pytest.raises(ConfigurationError) as info:
            fn.rollback(_chat(1), _chat(2))
        assert str(info.value) == "the earlier state is newer than the current one (next_id 4 > 2)"

    def test_not_an_ancestor(self) -> None:
        """A state holding blocks the current one lacks raises ConfigurationError naming them."""
        earlier, current = _rebased_then_more()
        other = fn.append_message(earlier, _assistant("elsewhere"))
        with pytest.raises(ConfigurationError) as info:
            fn.rollback(current, other)
        assert str(info.value) == (
            "the earlier state holds blocks [7] that the current state does not: it is not an earlier state of this one"
        )

    def test_not_a_state(self) -> None:
        """Something other than a State raises ConfigurationError."""
        with pytest.raises(ConfigurationError) as info:
            fn.rollback(_chat(1), {"committed": []})  # type: ignore[arg-type]
        assert str(info.value) == "earlier must be an llmvoice State, not dict"

    def test_closed(self) -> None:
        """A closed current state raises StateClosedError."""
        earlier, current = _rebased_then_more()
        with pytest.raises(StateClosedError):
            fn.rollback(fn.close(current), earlier)

    def test_manager_state_unchanged(self) -> None:
        """A failed rollback leaves the manager's state the very same object."""
        manager = PromptManager(state=_chat(1))
        before = manager.state
        with pytest.raises(ConfigurationError):
            manager.rollback(_chat(2))
        assert manager.state is before


# -- properties --------------------------------------------------------------------------------

text = st.text(alphabet="abcxyz ", min_size=1, max_size=6)


@st.composite
def _ops(draw: st.DrawFn, min_size: int = 0) -> list[tuple[str, Any]]:
    ops: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(min_value=min_size, max_value=12))):
        kind = draw(st.sampled_from(["user", "user", "assistant", "tools", "context", "transition", "rebase"]))
        if kind in ("user", "assistant", "context"):
            ops.append((kind, draw(text)))
        elif kind == "tools":
            ops.append((kind, draw(st.integers(min_value=1, max_value=3))))
        elif kind == "rebase":
            ops.append((kind, (draw(st.integers(min_value=0, max_value=50)), draw(st.booleans()))))
        else:
            ops.append((kind, None))
    return ops


class _Player:
    """Plays operations on a state; counts the calls and the ids a rebase wrote."""

    def __init__(self, state: State, rebases: bool = True) -> None:
        self.state = state
        self.rebases = rebases
        self.calls = 0
        self.written: set[int] = set()

    def play(self, ops: list[tuple[str, Any]]) -> None:
        for kind, arg in ops:
            state = self.state
            if kind == "user":
                state = fn.append_message(state, _user(arg))
            elif kind == "assistant":
                state = fn.append_message(state, _assistant(arg))
            elif kind == "tools":
                ids = [f"c{self.calls + i}" for i in range(arg)]
                self.calls += arg
                state = fn.append_messages(state, [_calls(*ids), *(_result(i) for i in ids)])
            elif kind == "context":
                state = fn.set_context(state, arg)
            elif kind == "transition":
                state = fn.transition(state)
            elif self.rebases and fn.turn_boundaries(state):
                state = self.rebase(state, *arg)
            self.state = state

    def rebase(self, state: State, pick: int, summarise: bool) -> State:
        boundaries = fn.turn_boundaries(state)
        cut = boundaries[pick % len(boundaries)]
        covers = sorted(fn.accounted_ids(State(committed=Log(state.committed[:cut]))))
        replacement = [fn.summary_message("so far", covers)] if summarise else []
        rebased = fn.rebase(state, cut, replacement)
        self.written.update(range(state.next_id, rebased.next_id))
        return rebased


def _blocks(state: State) -> list[Message]:
    return [*state.archive, *state.committed, *state.recent]


def _kept(blocks: Any) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in blocks if m.kind == "message"]


_modes = {
    "transition_mode": st.sampled_from(["none", "manual", "agent_cycle"]),
    "dynamic_mode": st.sampled_from(["per_turn", "append"]),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops(), **_modes)
def test_every_appended_id_is_accounted(ops: list[tuple[str, Any]], transition_mode: str, dynamic_mode: str) -> None:
    """Through random appends and rebases, accounted ids are every id appended, each held once."""
    player = _Player(_state(transition_mode=transition_mode, dynamic_mode=dynamic_mode))
    player.play(ops)
    state = player.state
    held = [m.id for m in _blocks(state)]
    assert len(held) == len(set(held))
    assert fn.accounted_ids(state) == frozenset(range(state.next_id))
    assert {m.id for m in _blocks(state) if m.kind == "summary"} == player.written


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=_ops(min_size=1),
    cut=st.integers(min_value=0, max_value=50),
    summarise=st.booleans(),
    after=_ops(),
    **_modes,
)
def test_rebase_then_rollback_keeps_every_message(
    before: list[tuple[str, Any]],
    cut: int,
    summarise: bool,
    after: list[tuple[str, Any]],
    transition_mode: str,
    dynamic_mode: str,
) -> None:
    """Rebase, more turns, rollback: earlier's history intact, then the messages a run without the rebase has."""
    player = _Player(_state(transition_mode=transition_mode, dynamic_mode=dynamic_mode))
    player.play(before)
    earlier = player.state
    written_before = set(player.written)
    if not fn.turn_boundaries(earlier):
        return
    twin = _Player(earlier, rebases=False)
    twin.calls = player.calls
    player.state = player.rebase(earlier, cut, summarise)
    player.play(after)
    twin.play(after)
    restored = fn.rollback(player.state, earlier)
    assert list(restored.committed[: len(earlier.committed)]) == list(earlier.committed)
    assert (_kept(restored.committed), _kept(restored.recent)) == (
        _kept(twin.state.committed),
        _kept(twin.state.recent),
    )
    assert (restored.open_tool_calls, list(restored.archive)) == (twin.state.open_tool_calls, list(earlier.archive))
    assert fn.accounted_ids(restored) == fn.accounted_ids(player.state) - (player.written - written_before)
    if dynamic_mode == "append":
        assert restored.context == twin.state.context
