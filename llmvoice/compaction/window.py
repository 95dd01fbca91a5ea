"""The window strategy: a plain cut at a turn boundary; the span goes to the archive."""

from __future__ import annotations

from typing import ClassVar

from llmvoice.compaction.base import CompactionInput, Outcome, Replace, Strategy

__all__ = ["WindowStrategy"]


class WindowStrategy(Strategy):
    """Drop the head of the history from the prompt, keep it in the archive; write nothing in its place.

    The cut is always a turn boundary (:func:`llmvoice.functional.turn_boundaries`), so no tool
    call is separated from its results and the remaining history starts with a turn every
    provider accepts. It needs no model and no request, so it is ready at once and never fails;
    it is the controller's default and every other strategy's fallback.
    """

    name: ClassVar[str] = "window"
    replacement_tokens = 0

    def compact(self, data: CompactionInput) -> Outcome:
        """A plain cut: no replacement block."""
        return Replace(())
