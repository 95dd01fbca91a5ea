"""Tool-output masking at commit time: a stub in the history, the full output in the archive."""

from __future__ import annotations

from typing import Any

import pytest

from llmvoice import PromptManager
from llmvoice import functional as fn
from llmvoice.compaction import MASKED_NOTE, find_archived, mask_tool_output
from llmvoice.errors import ConfigurationError, StateFormatError
from llmvoice.messages import Message

CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
OUTPUT = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"  # 66 characters


def _tool_turn(state: Any, output: str = OUTPUT) -> Any:
    return fn.append_messages(
        state,
        [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": output},
        ],
    )


def test_stub_cuts_back_to_a_word_boundary() -> None:
    """With limit 27 the head stops before the word the limit falls in."""
    masked = mask_tool_output(Message("tool", OUTPUT, tool_call_id="c1", id=7), 27)
    assert masked is not None
    stub = masked[0]
    assert stub.content == "alpha beta gamma delta\n" + MASKED_NOTE.format(archived=44, id=7)


def test_stub_keeps_the_head_at_a_word_boundary() -> None:
    """A 66-character output with limit 30 keeps its first five words and notes 36 archived characters."""
    masked = mask_tool_output(Message("tool", OUTPUT, tool_call_id="c1", id=7), 30)
    assert masked is not None
    stub, original = masked
    assert (stub.content, stub.id, stub.kind, stub.tool_call_id) == (
        "alpha beta gamma delta epsilon\n" + MASKED_NOTE.format(archived=36, id=7),
        7,
        "message",
        "c1",
    )
    assert (original.content, original.kind) == (OUTPUT, "masked")


def test_short_outputs_and_other_roles_are_left_alone() -> None:
    """Outputs within the limit, non-tool messages and content parts are not masked."""
    assert mask_tool_output(Message("tool", "short", tool_call_id="c1", id=1), 30) is None
    assert mask_tool_output(Message("user", OUTPUT, id=1), 30) is None
    assert mask_tool_output(Message("tool", ({"type": "text", "text": OUTPUT},), tool_call_id="c1", id=1), 30) is None


def test_the_turn_sees_the_full_output_and_the_commit_masks_it() -> None:
    """The request during the turn carries the output; after the answer the history holds the stub."""
    state = _tool_turn(fn.new_state("S", tool_output_limit=30, session_id="m"))
    during = fn.build_request(state, _adapter(), None).payload["messages"]
    assert during[-1]["content"] == OUTPUT
    state = fn.append_message(state, {"role": "assistant", "content": "found it"})
    assert (
        state.committed[2].text.startswith("alpha beta gamma delta epsilon\n[..."),
        [m.kind for m in state.archive],
    ) == (
        True,
        ["masked"],
    )


def test_find_archived_returns_the_full_output() -> None:
    """find_archived(state, stub id) gives the original tool message back."""
    state = fn.append_message(
        _tool_turn(fn.new_state("S", tool_output_limit=30)), {"role": "assistant", "content": "ok"}
    )
    full = find_archived(state, 2)
    assert full is not None
    assert (full.content, full.kind, full.tool_call_id, find_archived(state, 99)) == (OUTPUT, "message", "c1", None)


def test_manual_mode_masks_on_transition() -> None:
    """In manual mode the stub is written by transition()."""
    state = _tool_turn(fn.new_state("S", transition_mode="manual", tool_output_limit=30))
    state = fn.transition(fn.append_message(state, {"role": "assistant", "content": "ok"}))
    assert [m.kind for m in state.archive] == ["masked"]


def test_none_mode_is_refused() -> None:
    """Masking needs a commit after the model has read the output."""
    with pytest.raises(ConfigurationError, match="needs transition_mode 'agent_cycle' or 'manual'"):
        fn.new_state("S", transition_mode="none", tool_output_limit=30)


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "30"])
def test_bad_limits_are_refused(bad: Any) -> None:
    """The limit is a positive number of characters."""
    with pytest.raises(ConfigurationError, match="tool_output_limit must be a positive number of characters"):
        fn.new_state("S", tool_output_limit=bad)


def test_rollback_keeps_the_stub_and_the_archived_output() -> None:
    """A rollback to before a masked commit restores the stub (not the full output) and keeps the original."""
    state = fn.append_message(fn.new_state("S", tool_output_limit=30), {"role": "user", "content": "hi"})
    state = fn.append_message(state, {"role": "assistant", "content": "hello"})
    saved = state
    state = fn.append_message(_tool_turn(state), {"role": "assistant", "content": "ok"})
    state = fn.rebase(state, fn.turn_boundaries(state)[0])
    back = fn.rollback(state, saved)
    assert [m.kind for m in back.committed] == ["message"] * 6
    assert back.committed[4].content != OUTPUT
    assert [m.kind for m in back.archive] == ["masked"]


def test_the_limit_survives_builds_and_serialisation() -> None:
    """tool_output_limit is kept by build_request, rebase and the JSON round trip."""
    state = fn.append_message(
        _tool_turn(fn.new_state("S", tool_output_limit=30)), {"role": "assistant", "content": "ok"}
    )
    built = fn.build_request(state, _adapter(), None).state
    rebased = fn.rebase(built, len(built.committed))
    assert (built.tool_output_limit, rebased.tool_output_limit, fn.loads(fn.dumps(rebased)).tool_output_limit) == (
        30,
        30,
        30,
    )


def test_states_without_the_field_still_load() -> None:
    """A state written before masking existed loads with no limit; a wrong type is refused."""
    text = fn.dumps(fn.new_state("S")).replace(',"tool_output_limit":null', "")
    assert fn.loads(text).tool_output_limit is None
    with pytest.raises(StateFormatError, match="'tool_output_limit' has the wrong type str"):
        fn.loads(text.replace('"built_committed":0', '"built_committed":0,"tool_output_limit":"9"'))


def test_prompt_manager_option() -> None:
    """PromptManager(tool_output_limit=...) turns masking on."""
    manager = PromptManager("S", tool_output_limit=30)
    assert manager.state.tool_output_limit == 30


def _adapter() -> Any:
    from llmvoice.adapters import OpenAIAdapter
    from llmvoice.tokens import EstimateCounter

    return OpenAIAdapter(counter=EstimateCounter())
