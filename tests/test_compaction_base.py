"""The compaction seam: CompactionInput, render, selection blocks, choose_cut and apply."""

from __future__ import annotations

from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.compaction import (
    SELECTION_HEADING,
    CompactionInput,
    Outcome,
    Replace,
    Skip,
    Strategy,
    Wait,
    WindowStrategy,
    apply,
    choose_cut,
    covered_ids,
    last_user_text,
    render,
    selection_message,
)
from llmvoice.errors import ConfigurationError
from llmvoice.messages import Message
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

ADAPTER = OpenAIAdapter(counter=EstimateCounter())
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "tent"}'}}


def _state() -> State:
    """Two turns, the second with a tool round: ids 0-1 and 2-5."""
    return fn.append_messages(
        fn.new_state("S", session_id="b"),
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "find my tent"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "tent found"},
            {"role": "assistant", "content": "it is on its way"},
        ],
    )


def test_turns_split_the_span_at_boundaries() -> None:
    """The span 0..6 splits into the plain turn and the tool turn, call and result together."""
    data = CompactionInput(_state(), 6, ADAPTER)
    assert [[m.id for m in turn] for turn in data.turns()] == [[0, 1], [2, 3, 4, 5]]


def test_query_is_the_newest_user_message() -> None:
    """CompactionInput.query and last_user_text read the newest user message."""
    state = fn.append_message(_state(), {"role": "user", "content": "and the boots?"})
    assert (CompactionInput(state, 2, ADAPTER).query, last_user_text(fn.new_state("S"))) == ("and the boots?", "")


@pytest.mark.parametrize("cut", [0, 7, True, 1.5])
def test_bad_cuts_are_refused(cut: Any) -> None:
    """A cut outside 1..len(committed) is a ConfigurationError naming the range."""
    with pytest.raises(ConfigurationError, match=r"cut must be an index in 1\.\.6"):
        CompactionInput(_state(), cut, ADAPTER)


def test_negative_budget_is_refused() -> None:
    """budget_tokens must be a non-negative integer."""
    with pytest.raises(ConfigurationError, match="budget_tokens must be a non-negative integer"):
        CompactionInput(_state(), 2, ADAPTER, budget_tokens=-1)


def test_render_quotes_calls_and_cuts_outputs() -> None:
    """render writes one line per message, quoting calls and cutting tool outputs."""
    lines = render(list(_state().committed)[2:], tool_chars=4)
    assert lines.split("\n") == [
        "user: find my tent",
        'assistant: [calls lookup({"q": "tent"})]',
        "tool c1: tent [...]",
        "assistant: it is on its way",
    ]


def test_selection_message_is_a_summary_block() -> None:
    """selection_message is a user block of kind summary, covers sorted and unique."""
    block = selection_message("user: hi", [3, 1, 3])
    assert (block.role, block.kind, block.covers, block.text) == (
        "user",
        "summary",
        (1, 3),
        f"{SELECTION_HEADING}\nuser: hi",
    )


def test_covered_ids_inherit_summaries() -> None:
    """A summary in the span contributes what it covers, not its own id."""
    span = [Message("user", "s", id=9, kind="summary", covers=(0, 1)), Message("user", "x", id=10)]
    assert covered_ids(span) == (0, 1, 10)


def test_choose_cut_finds_the_smallest_boundary_that_fits() -> None:
    """With ~12 tokens allowed only the tool turn is kept; with everything allowed no cut is needed."""
    state = _state()
    tokens = ADAPTER.committed_tokens(state)
    assert (choose_cut(state, ADAPTER, sum(tokens[2:])), choose_cut(state, ADAPTER, sum(tokens))) == (2, None)
    assert choose_cut(state, ADAPTER, 0) == 6


def test_apply_rebases_on_replace() -> None:
    """apply with the window strategy archives the span and starts a new epoch."""
    state, outcome = apply(_state(), ADAPTER, WindowStrategy(), 2)
    assert (outcome, state.epoch, [m.id for m in state.archive], [m.id for m in state.committed]) == (
        Replace(()),
        1,
        [0, 1],
        [2, 3, 4, 5],
    )


class _Fixed(Strategy):
    name = "fixed"

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def compact(self, data: CompactionInput) -> Outcome:
        return self.outcome


@pytest.mark.parametrize("outcome", [Wait("later"), Skip("no")])
def test_apply_leaves_the_state_on_wait_or_skip(outcome: Outcome) -> None:
    """Wait and Skip return the same state object."""
    state = _state()
    assert apply(state, ADAPTER, _Fixed(outcome), 2) == (state, outcome)


def test_apply_turns_a_refused_replacement_into_skip() -> None:
    """A replacement the rebase refuses (a tool message) leaves the state and says why."""
    state = _state()
    bad = Replace((Message("tool", "x", tool_call_id="c9"),))
    new, outcome = apply(state, ADAPTER, _Fixed(bad), 2)
    assert new is state
    assert isinstance(outcome, Skip) and outcome.reason.startswith("fixed: its replacement was refused")


def test_apply_refuses_a_cut_that_is_not_a_boundary() -> None:
    """Cutting between a call and its result is refused with the nearest boundaries."""
    with pytest.raises(
        ConfigurationError, match=r"cut 4 is not a turn boundary .*nearest turn boundaries are \[2, 6\]"
    ):
        apply(_state(), ADAPTER, WindowStrategy(), 4)


def test_base_strategy_compact_is_abstract() -> None:
    """Strategy.compact must be overridden; observe and close do nothing by default."""
    strategy = Strategy()
    strategy.observe(_state(), ADAPTER)
    strategy.close()
    with pytest.raises(NotImplementedError):
        strategy.compact(CompactionInput(_state(), 2, ADAPTER))
