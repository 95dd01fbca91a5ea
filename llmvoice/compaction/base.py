"""The compaction seam: a strategy decides what replaces the head of the committed history.

The controller's planner decides *where* to cut (a turn boundary); a :class:`Strategy` decides
*what stands for* ``committed[:cut]`` once it is archived. Its :meth:`~Strategy.compact` is a
pure decision over a :class:`CompactionInput` and returns one of three outcomes:

* :class:`Replace`: the replacement blocks are ready (none for a plain window cut);
* :class:`Wait`: background work (a summary, embeddings) is running; ask again later;
* :class:`Skip`: no cut now (the work failed, or backs off after failures); the history stays
  as it is.

A strategy in five lines::

    class KeepFirstTurn(Strategy):
        name = "keep-first-turn"

        def compact(self, data: CompactionInput) -> Outcome:
            first = data.turns()[0]
            return Replace((selection_message(render(first), covered_ids(data.span)),))

Nothing is lost: the cut span goes to the state's archive (:func:`llmvoice.functional.rebase`),
and the blocks a strategy writes record the ids they cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias

from llmvoice import functional as fn
from llmvoice.errors import ConfigurationError, LLMVoiceError
from llmvoice.messages import Message
from llmvoice.state import State

if TYPE_CHECKING:
    from llmvoice.adapters.base import ProviderAdapter

__all__ = [
    "SELECTION_HEADING",
    "CompactionInput",
    "Outcome",
    "Replace",
    "Skip",
    "Strategy",
    "Wait",
    "apply",
    "choose_cut",
    "covered_ids",
    "last_user_text",
    "render",
    "selection_message",
]

#: The first line of a block that quotes kept turns of the archived span.
SELECTION_HEADING: Final[str] = "Excerpts of the earlier conversation (the rest is archived):"
#: Characters of a tool output that :func:`render` quotes.
_TOOL_CHARS: Final[int] = 300


@dataclass(frozen=True, slots=True)
class Replace:
    """The replacement is ready: ``blocks`` stand for the cut span (none: a plain window cut).

    Attributes:
        blocks: what the rebase writes in place of ``committed[:cut]``.
        note: how the replacement was made, for the controller's log and reports.
    """

    blocks: tuple[Message, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Wait:
    """Background work for this cut is running; ask again with the same cut later.

    Attributes:
        reason: what is awaited.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """No cut now: the history stays as it is.

    Attributes:
        reason: why (a failed summary, a back-off, a hook that declined).
    """

    reason: str


#: What :meth:`Strategy.compact` returns.
Outcome: TypeAlias = Replace | Wait | Skip


@dataclass(frozen=True, slots=True)
class CompactionInput:
    """What a strategy sees of a planned cut.

    Attributes:
        state: the session state the cut applies to.
        cut: the committed index the history will start at; ``committed[:cut]`` is replaced.
        adapter: the session's adapter (token counts, request format).
        budget_tokens: the most tokens the replacement should take.
        now: the caller's clock in seconds (for timeouts and back-off; injectable).
    """

    state: State
    cut: int
    adapter: ProviderAdapter
    budget_tokens: int = 300
    now: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.cut, bool) or not isinstance(self.cut, int) or not 0 < self.cut <= len(self.state.committed):
            raise ConfigurationError(
                f"cut must be an index in 1..{len(self.state.committed)} of the committed history, not {self.cut!r}"
            )
        if isinstance(self.budget_tokens, bool) or not isinstance(self.budget_tokens, int) or self.budget_tokens < 0:
            raise ConfigurationError(f"budget_tokens must be a non-negative integer, not {self.budget_tokens!r}")

    @property
    def span(self) -> Sequence[Message]:
        """The blocks the cut replaces, oldest first."""
        return self.state.committed[: self.cut]

    @property
    def query(self) -> str:
        """The text of the newest user message (the current turn), or ``""``."""
        return last_user_text(self.state)

    def turns(self) -> list[list[Message]]:
        """The span split at turn boundaries: each turn keeps its tool calls with their results."""
        starts = [0, *(b for b in fn.turn_boundaries(self.state) if b < self.cut), self.cut]
        span = self.span
        return [list(span[a:b]) for a, b in pairwise(starts) if b > a]


class Strategy:
    """Decides what replaces the head of the history at a cut; subclass and override :meth:`compact`.

    Attributes:
        name: the strategy's name in logs, reports and the benchmark.
        replacement_tokens: tokens the replacement usually takes (the planner reserves them).
    """

    name: ClassVar[str] = "strategy"
    replacement_tokens: int = 0

    def compact(self, data: CompactionInput) -> Outcome:
        """What replaces ``data.span``; must not raise for a valid input and must not block."""
        raise NotImplementedError

    def observe(self, state: State, adapter: ProviderAdapter) -> None:
        """See the session after a turn (start background preparation); the default does nothing."""

    def close(self) -> None:
        """Release background resources; the default does nothing."""


def covered_ids(span: Iterable[Message]) -> tuple[int, ...]:
    """The ids a block replacing ``span`` covers: every block's id, and what its summaries covered."""
    ids: set[int] = set()
    for message in span:
        if message.kind == "summary":
            ids.update(message.covers)
        else:
            ids.add(message.id)
    return tuple(sorted(ids))


def last_user_text(state: State) -> str:
    """The text of the newest user message of a state (recent turns first), or ``""``."""
    for message in chain(reversed(state.recent), reversed(state.committed)):
        if message.role == "user" and message.kind == "message":
            return message.text
    return ""


def _line(message: Message, tool_chars: int) -> str:
    if message.kind == "summary":
        return message.text
    if message.kind == "context":
        return f"[context] {message.text}"
    if message.role == "tool":
        text = message.text
        if len(text) > tool_chars:
            text = text[:tool_chars].rstrip() + " [...]"
        return f"tool {message.name or message.tool_call_id or ''}: {text}".replace("tool :", "tool:")
    parts = [message.text] if message.text else []
    parts.extend(f"[calls {call.name}({call.arguments})]" for call in message.tool_calls)
    return f"{message.role}: {' '.join(parts)}"


def render(messages: Iterable[Message], *, tool_chars: int = _TOOL_CHARS) -> str:
    """Quote messages as plain text, one line each (``user: ...``, ``tool lookup: ...``).

    Tool calls are quoted with their arguments and tool outputs cut to ``tool_chars`` characters,
    so a quoted turn can stand in a user message that every provider accepts.
    """
    return "\n".join(_line(m, tool_chars) for m in messages)


def selection_message(text: str, covers: Iterable[int]) -> Message:
    """A replacement block quoting kept parts of the span (a user message, ``kind="summary"``)."""
    return Message("user", f"{SELECTION_HEADING}\n{text}", kind="summary", covers=tuple(sorted(set(covers))))


def choose_cut(state: State, adapter: ProviderAdapter, keep_tokens: int) -> int | None:
    """The smallest turn boundary after which the committed history fits ``keep_tokens``.

    Args:
        state: the session state.
        adapter: counts each committed block's tokens.
        keep_tokens: the most history tokens to keep after the cut.

    Returns:
        The cut, or ``None`` when the history already fits or has no boundary to cut at.
    """
    if isinstance(keep_tokens, bool) or not isinstance(keep_tokens, int) or keep_tokens < 0:
        raise ConfigurationError(f"keep_tokens must be a non-negative integer, not {keep_tokens!r}")
    blocks = adapter.committed_tokens(state)
    total = sum(blocks)
    if total <= keep_tokens:
        return None
    kept = total
    done = 0
    for boundary in fn.turn_boundaries(state):
        kept -= sum(blocks[done:boundary])
        done = boundary
        if kept <= keep_tokens:
            return boundary
    return None


def apply(
    state: State,
    adapter: ProviderAdapter,
    strategy: Strategy,
    cut: int,
    *,
    budget_tokens: int | None = None,
    now: float = 0.0,
) -> tuple[State, Outcome]:
    """Cut ``state`` at ``cut`` with ``strategy``: the rebased state when the replacement is ready.

    Args:
        state: the session state.
        adapter: the session's adapter.
        strategy: what replaces the cut span.
        cut: one of :func:`llmvoice.functional.turn_boundaries`.
        budget_tokens: the most tokens of the replacement (default: the strategy's
            ``replacement_tokens``).
        now: the caller's clock, for strategies with timeouts.

    Returns:
        ``(new_state, outcome)``: the rebased state for :class:`Replace`, otherwise ``state``
        unchanged with the :class:`Wait` or :class:`Skip` that says why.

    Raises:
        ConfigurationError: ``cut`` is not a turn boundary (the state is unchanged).
    """
    if cut not in fn.turn_boundaries(state):
        fn.rebase(state, cut)  # raises the error that names the nearest boundaries
    budget = strategy.replacement_tokens if budget_tokens is None else budget_tokens
    outcome = strategy.compact(CompactionInput(state, cut, adapter, budget, now))
    if not isinstance(outcome, Replace):
        return state, outcome
    try:
        return fn.rebase(state, cut, outcome.blocks), outcome
    except LLMVoiceError as exc:
        return state, Skip(f"{strategy.name}: its replacement was refused ({exc})")
