"""Unit tests for llmvoice.state: the Log sequence, State validation and (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.errors import ConfigurationError, InvalidMessageError, StateFormatError, StateVersionError
from llmvoice.messages import Message, ToolCall, freeze
from llmvoice.state import (
    SCHEMA_VERSION,
    Log,
    State,
    dumps_state,
    loads_state,
    state_from_dict,
    state_to_dict,
)

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object", "properties": {}}},
}


def _rich_state() -> State:
    """A state with every kind of block, recent turns, an archive, tools and open calls."""
    committed = Log(
        [
            Message("user", "hi", id=0),
            Message("system", "ctx A", id=1, kind="context"),
            Message("assistant", "hello", id=2),
            Message("system", "Earlier: greetings.", id=5, kind="summary", covers=(3, 4)),
        ]
    )
    recent = (
        Message("user", (freeze({"type": "text", "text": "é?"}),), id=6, name="ann"),
        Message("assistant", None, (ToolCall("c1", "lookup", '{"q":"x"}'),), id=7),
    )
    archive = Log([Message("user", "old", id=3), Message("assistant", "older", id=4, extra=freeze({"meta": [1]}))])
    return State(
        static_system="You are terse.",
        tools=(freeze(TOOL),),
        transition_mode="manual",
        dynamic_mode="append",
        session_id="s1",
        epoch=2,
        committed=committed,
        recent=recent,
        archive=archive,
        context="ctx A",
        open_tool_calls=("c1",),
        next_id=8,
        closed=False,
        built_committed=3,
    )


def _minimal_dict(**changes: Any) -> dict[str, Any]:
    data = state_to_dict(State(session_id="s1"))
    data.update(changes)
    return data


class TestLog:
    """Log: an immutable sequence with shared-storage append."""

    def test_empty(self) -> None:
        """An empty Log has no items."""
        log: Log[int] = Log()
        assert (len(log), list(log)) == (0, [])

    def test_constructor_copies(self) -> None:
        """Changing the source list after construction does not change the Log."""
        source = [1, 2]
        log = Log(source)
        source.append(3)
        assert list(log) == [1, 2]

    def test_append_leaves_old_log_unchanged(self) -> None:
        """Appending returns a longer Log while the original keeps its length and items."""
        a = Log([1, 2])
        b = a.append(3)
        assert (len(a), list(a)) == (2, [1, 2])
        assert (len(b), list(b)) == (3, [1, 2, 3])

    def test_append_shares_storage(self) -> None:
        """Appending to the newest Log shares the underlying storage."""
        a = Log([1, 2])
        b = a.append(3)
        c = b.append(4)
        assert (b.shares_prefix_with(a), c.shares_prefix_with(a)) == (True, True)

    def test_extend(self) -> None:
        """extend appends several items at once and leaves the original unchanged."""
        a = Log([1])
        b = a.extend([2, 3])
        assert (list(a), list(b)) == ([1], [1, 2, 3])

    def test_extend_empty_returns_self(self) -> None:
        """Extending with nothing returns the same Log."""
        a = Log([1])
        assert a.extend([]) is a

    def test_append_to_older_log_copies(self) -> None:
        """Appending to an older Log copies, so both branches keep their own items."""
        a = Log([1, 2])
        b = a.append(3)
        c = a.append(4)
        assert (list(a), list(b), list(c)) == ([1, 2], [1, 2, 3], [1, 2, 4])
        assert (c.shares_prefix_with(a), b.shares_prefix_with(a)) == (False, True)

    def test_branch_keeps_growing_independently(self) -> None:
        """Further appends to either branch never show up in the other."""
        a = Log(["x"])
        b = a.append("b1")
        c = a.append("c1")
        b2 = b.append("b2")
        c2 = c.append("c2")
        assert (list(b2), list(c2), list(b), list(c)) == (
            ["x", "b1", "b2"],
            ["x", "c1", "c2"],
            ["x", "b1"],
            ["x", "c1"],
        )
        assert c2.shares_prefix_with(c)

    def test_indexing(self) -> None:
        """Positive and negative indices address the Log's own items."""
        log = Log([10, 20]).append(30)
        assert [log[0], log[1], log[2], log[-1], log[-3]] == [10, 20, 30, 30, 10]

    def test_index_out_of_range(self) -> None:
        """Indices past either end raise IndexError."""
        log = Log([10, 20])
        for index in (2, -3):
            with pytest.raises(IndexError):
                log[index]

    def test_older_log_does_not_see_shared_items(self) -> None:
        """An older Log raises IndexError for items appended to its shared storage later."""
        a = Log([10, 20])
        a.append(30)
        with pytest.raises(IndexError):
            a[2]
        assert list(a) == [10, 20]
        assert a[-1] == 20

    def test_slice(self) -> None:
        """Slicing returns a tuple of the Log's own items only."""
        a = Log([1, 2, 3])
        a.append(4)
        assert (a[1:], a[:], a[::-1], a[5:]) == ((2, 3), (1, 2, 3), (3, 2, 1), ())

    def test_equality(self) -> None:
        """Logs with the same items are equal regardless of storage; different items are not."""
        a = Log([1, 2])
        assert a == Log([1, 2])
        assert a.append(3) == Log([1, 2, 3])
        assert a != a.append(3)
        assert Log([1, 2]) != Log([1, 3])

    def test_not_equal_to_list(self) -> None:
        """A Log does not compare equal to a list with the same items."""
        assert (Log([1, 2]) == [1, 2]) is False

    def test_hash(self) -> None:
        """Equal Logs hash equally."""
        assert hash(Log([1, 2])) == hash(Log([1]).append(2))

    def test_repr(self) -> None:
        """repr shows the Log's own items."""
        a = Log([1, 2])
        a.append(3)
        assert repr(a) == "Log([1, 2])"

    def test_concurrent_appends_to_one_log(self) -> None:
        """Threads appending to the same Log each get a Log ending in their own item."""
        base = Log([0])
        results: dict[int, Log[int]] = {}
        barrier = threading.Barrier(8)

        def work(n: int) -> None:
            barrier.wait()
            for i in range(200):
                results[n * 1000 + i] = base.append(n * 1000 + i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {key: list(log) for key, log in results.items()} == {key: [0, key] for key in results}
        assert list(base) == [0]


class TestStateConfig:
    """State construction and its mode checks."""

    def test_defaults(self) -> None:
        """A default State is empty, agent_cycle and per_turn, with a 24-hex-digit session id."""
        state = State()
        assert (
            state.static_system,
            state.tools,
            state.transition_mode,
            state.dynamic_mode,
            state.epoch,
            list(state.committed),
            state.recent,
            list(state.archive),
            state.context,
            state.open_tool_calls,
            state.next_id,
            state.closed,
            state.built_committed,
        ) == ("", (), "agent_cycle", "per_turn", 0, [], (), [], None, (), 0, False, 0)
        assert re.fullmatch(r"[0-9a-f]{24}", state.session_id)

    def test_session_ids_differ(self) -> None:
        """Two default states get different session ids."""
        assert State().session_id != State().session_id

    def test_unknown_transition_mode(self) -> None:
        """An unknown transition_mode raises ConfigurationError naming the choices."""
        with pytest.raises(ConfigurationError) as info:
            State(transition_mode="sometimes")
        assert (
            str(info.value) == "unknown transition_mode 'sometimes'; expected one of ['agent_cycle', 'manual', 'none']"
        )

    def test_unknown_dynamic_mode(self) -> None:
        """An unknown dynamic_mode raises ConfigurationError naming the choices."""
        with pytest.raises(ConfigurationError) as info:
            State(dynamic_mode="prepend")
        assert str(info.value) == "unknown dynamic_mode 'prepend'; expected one of ['append', 'per_turn']"

    def test_evolve_checks_modes(self) -> None:
        """evolve into an unknown mode raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            State().evolve(transition_mode="always")

    def test_evolve_returns_new_state(self) -> None:
        """evolve returns a changed copy and leaves the original unchanged."""
        state = State(session_id="s1")
        changed = state.evolve(closed=True)
        assert (state.closed, changed.closed, changed.session_id) == (False, True, "s1")

    def test_frozen(self) -> None:
        """Assigning to a State field raises FrozenInstanceError."""
        state = State()
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.closed = True  # type: ignore[misc]

    def test_messages(self) -> None:
        """State.messages lists committed blocks, then recent turns."""
        state = _rich_state()
        assert state.messages == [*state.committed, *state.recent]
        assert [m.id for m in state.messages] == [0, 1, 2, 5, 6, 7]


class TestStateToDict:
    """state_to_dict output."""

    def test_exact_dict(self) -> None:
        """A small state serialises to exactly the documented dict."""
        state = State(
            static_system="P",
            tools=(freeze(TOOL),),
            session_id="s1",
            committed=Log([Message("user", "hi", id=0), Message("system", "c", id=1, kind="context")]),
            recent=(Message("system", "sum", id=2, kind="summary", covers=(0, 1)),),
            next_id=3,
        )
        assert state_to_dict(state) == {
            "version": 1,
            "static_system": "P",
            "tools": [TOOL],
            "transition_mode": "agent_cycle",
            "dynamic_mode": "per_turn",
            "session_id": "s1",
            "epoch": 0,
            "committed": [
                {"id": 0, "message": {"role": "user", "content": "hi"}},
                {"id": 1, "message": {"role": "system", "content": "c"}, "kind": "context"},
            ],
            "recent": [{"id": 2, "message": {"role": "system", "content": "sum"}, "kind": "summary", "covers": [0, 1]}],
            "archive": [],
            "context": None,
            "open_tool_calls": [],
            "next_id": 3,
            "closed": False,
            "built_committed": 0,
            "tool_output_limit": None,
        }

    def test_version_is_schema_version(self) -> None:
        """The written version is SCHEMA_VERSION, which is 1."""
        assert (state_to_dict(State())["version"], SCHEMA_VERSION) == (1, 1)


class TestRoundTrip:
    """state_to_dict / state_from_dict and dumps_state / loads_state."""

    def test_dict_round_trip(self) -> None:
        """A state with message, context and summary blocks survives a dict round trip."""
        state = _rich_state()
        assert state_from_dict(state_to_dict(state)) == state

    def test_dict_round_trip_keeps_kinds_and_covers(self) -> None:
        """Kinds, ids and covers come back exactly."""
        loaded = state_from_dict(state_to_dict(_rich_state()))
        assert [(m.id, m.kind, m.covers) for m in loaded.committed] == [
            (0, "message", ()),
            (1, "context", ()),
            (2, "message", ()),
            (5, "summary", (3, 4)),
        ]

    def test_text_round_trip(self) -> None:
        """A state survives dumps_state / loads_state."""
        state = _rich_state()
        assert loads_state(dumps_state(state)) == state

    def test_loads_bytes(self) -> None:
        """loads_state accepts UTF-8 bytes."""
        state = _rich_state()
        assert loads_state(dumps_state(state).encode()) == state

    def test_loaded_logs_are_logs(self) -> None:
        """The loaded committed history and archive are Log instances."""
        loaded = loads_state(dumps_state(_rich_state()))
        assert (type(loaded.committed), type(loaded.archive)) == (Log, Log)

    def test_dumps_deterministic(self) -> None:
        """dumps_state gives the same text twice, and for an equal state loaded back."""
        state = _rich_state()
        first = dumps_state(state)
        assert dumps_state(state) == first
        assert dumps_state(loads_state(first)) == first

    def test_dumps_exact_text(self) -> None:
        """dumps_state writes compact JSON with non-ASCII characters kept."""
        state = State(static_system="Grüß", session_id="s1")
        assert dumps_state(state) == (
            '{"version":1,"static_system":"Grüß","tools":[],"transition_mode":"agent_cycle",'
            '"dynamic_mode":"per_turn","session_id":"s1","epoch":0,"committed":[],"recent":[],'
            '"archive":[],"context":null,"open_tool_calls":[],"next_id":0,"closed":false,"built_committed":0,"tool_output_limit":null}'
        )

    def test_extra_key_named_like_bookkeeping_survives(self) -> None:
        """An appended message whose extra key is named "kind" either is refused or round-trips unchanged."""
        state = fn.new_state("P", transition_mode="none", session_id="s1")
        try:
            state = fn.append_message(state, {"role": "user", "content": "hi", "kind": "summary"})
        except InvalidMessageError as exc:
            assert (exc.index, exc.field) == (0, "kind")
            return
        assert loads_state(dumps_state(state)) == state


class TestLoadErrors:
    """Serialised state that cannot be read."""

    def test_newer_version(self) -> None:
        """Version 2 is refused with StateVersionError telling to upgrade."""
        with pytest.raises(StateVersionError) as info:
            state_from_dict(_minimal_dict(version=2))
        assert str(info.value) == "llmvoice state version 2 is newer than this llmvoice reads (1); upgrade llmvoice"

    @pytest.mark.parametrize("version", ["1", 0, -1, True, None, 1.0])
    def test_bad_version(self, version: Any) -> None:
        """A non-integer or unknown version raises StateVersionError."""
        with pytest.raises(StateVersionError):
            state_from_dict(_minimal_dict(version=version))

    def test_missing_version(self) -> None:
        """A state without a version raises StateVersionError."""
        data = _minimal_dict()
        del data["version"]
        with pytest.raises(StateVersionError) as info:
            state_from_dict(data)
        assert str(info.value) == "llmvoice state has no integer 'version' (got None)"

    @pytest.mark.parametrize(
        "name",
        [
            "static_system",
            "tools",
            "transition_mode",
            "dynamic_mode",
            "session_id",
            "epoch",
            "committed",
            "recent",
            "archive",
            "context",
            "open_tool_calls",
            "next_id",
            "closed",
            "built_committed",
        ],
    )
    def test_missing_field(self, name: str) -> None:
        """A missing field raises StateFormatError naming it."""
        data = _minimal_dict()
        del data[name]
        with pytest.raises(StateFormatError) as info:
            state_from_dict(data)
        assert str(info.value) == f"llmvoice state is missing {name!r}"

    @pytest.mark.parametrize(
        ("name", "value", "type_name"),
        [
            ("epoch", "0", "str"),
            ("epoch", True, "bool"),
            ("closed", 0, "int"),
            ("committed", {}, "dict"),
            ("context", 5, "int"),
            ("session_id", None, "NoneType"),
        ],
    )
    def test_wrong_type(self, name: str, value: Any, type_name: str) -> None:
        """A field of the wrong type raises StateFormatError naming it and the type."""
        with pytest.raises(StateFormatError) as info:
            state_from_dict(_minimal_dict(**{name: value}))
        assert str(info.value) == f"llmvoice state field {name!r} has the wrong type {type_name}"

    def test_bad_json(self) -> None:
        """Text that is not JSON raises StateFormatError."""
        with pytest.raises(StateFormatError):
            loads_state("{not json")

    def test_bad_utf8(self) -> None:
        """Bytes that are not UTF-8 raise StateFormatError."""
        with pytest.raises(StateFormatError):
            loads_state(b"\xff\xfe{")

    def test_not_an_object(self) -> None:
        """A JSON array raises StateFormatError."""
        with pytest.raises(StateFormatError) as info:
            loads_state("[]")
        assert str(info.value) == "llmvoice state must be a JSON object"

    def test_invalid_message(self) -> None:
        """An invalid committed message raises StateFormatError naming its position."""
        data = _minimal_dict(committed=[{"role": "bot", "content": "x", "id": 0}])
        with pytest.raises(StateFormatError) as info:
            state_from_dict(data)
        assert str(info.value).startswith("committed[0]: ")

    def test_unknown_kind(self) -> None:
        """An unknown block kind raises StateFormatError."""
        data = _minimal_dict(recent=[{"id": 0, "message": {"role": "user", "content": "x"}, "kind": "note"}])
        with pytest.raises(StateFormatError) as info:
            state_from_dict(data)
        assert str(info.value) == "recent[0].kind: unknown kind 'note'"

    def test_non_integer_id(self) -> None:
        """A non-integer message id raises StateFormatError."""
        data = _minimal_dict(archive=[{"id": "0", "message": {"role": "user", "content": "x"}}])
        with pytest.raises(StateFormatError) as info:
            state_from_dict(data)
        assert str(info.value) == "archive[0].id: expected an integer"

    def test_bad_covers(self) -> None:
        """covers that is not a list of integers raises StateFormatError."""
        data = _minimal_dict(
            committed=[{"id": 0, "message": {"role": "system", "content": "s"}, "kind": "summary", "covers": "1"}]
        )
        with pytest.raises(StateFormatError) as info:
            state_from_dict(data)
        assert str(info.value) == "committed[0].covers: expected a list of integers"

    def test_unknown_mode_is_format_error(self) -> None:
        """An unknown mode in serialised state raises StateFormatError, not ConfigurationError."""
        with pytest.raises(StateFormatError) as info:
            state_from_dict(_minimal_dict(dynamic_mode="prepend"))
        assert type(info.value) is StateFormatError

    def test_tool_not_an_object(self) -> None:
        """A tool that is not an object raises StateFormatError."""
        with pytest.raises(StateFormatError) as info:
            state_from_dict(_minimal_dict(tools=["x"]))
        assert str(info.value) == "tools[0]: expected an object"

    def test_open_tool_calls_not_strings(self) -> None:
        """Open tool call ids that are not strings raise StateFormatError."""
        with pytest.raises(StateFormatError) as info:
            state_from_dict(_minimal_dict(open_tool_calls=[1]))
        assert str(info.value) == "open_tool_calls: expected a list of strings"

    def test_errors_share_base(self) -> None:
        """StateFormatError is a ValueError; StateVersionError is not."""
        assert (issubclass(StateFormatError, ValueError), issubclass(StateVersionError, ValueError)) == (True, False)

    def test_loaded_json_matches_dict(self) -> None:
        """dumps_state is the JSON text of state_to_dict."""
        state = _rich_state()
        assert json.loads(dumps_state(state)) == state_to_dict(state)
