"""The window strategy: a plain cut, nothing written in place of the span."""

from __future__ import annotations

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.compaction import CompactionInput, Replace, WindowStrategy
from llmvoice.tokens import EstimateCounter


def test_window_replaces_with_nothing() -> None:
    """compact returns Replace(()) and reserves no tokens."""
    state = fn.append_messages(
        fn.new_state("S"), [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    )
    data = CompactionInput(state, 2, OpenAIAdapter(counter=EstimateCounter()))
    assert (WindowStrategy().compact(data), WindowStrategy.replacement_tokens, WindowStrategy.name) == (
        Replace(()),
        0,
        "window",
    )
