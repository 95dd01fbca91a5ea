r"""Custom strategies: a user callable, including llmbuffer's ``compaction_hook`` shape.

A hook gets the cut span as OpenAI-shaped dicts, the token budget of the replacement and an
adapter whose ``count_tokens(messages)`` counts with the session's tokenizer, and returns what
stands for the span::

    def keep_user_lines(messages, target_tokens, adapter):
        return "\n".join(m["content"] for m in messages if m["role"] == "user")[: target_tokens * 4]

    controller = TTFTController(manager, strategy=CallableStrategy(keep_user_lines))

A string becomes a summary block; an empty list a plain window cut; a single user, system or
developer message (not one of the span's own) stays as it is; any other list of messages (a
selection of the span, for instance what llmbuffer's ``truncation_compaction_hook`` keeps) is
quoted in one block, so no tool call is cut from its result and the history stays valid for
every provider. ``None`` declines the cut. A hook that raises leaves the history unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

from llmvoice import functional as fn
from llmvoice.compaction.base import (
    CompactionInput,
    Outcome,
    Replace,
    Skip,
    Strategy,
    covered_ids,
    render,
    selection_message,
)
from llmvoice.errors import ConfigurationError, LLMVoiceError
from llmvoice.messages import Message, to_message

if TYPE_CHECKING:
    from llmvoice.adapters.base import ProviderAdapter

__all__ = ["CallableStrategy", "CompactionHook", "HookAdapter", "from_llmbuffer_hook"]

_log = logging.getLogger("llmvoice.compaction")

#: ``hook(messages, target_tokens, adapter)``: llmbuffer's compaction-hook signature.
CompactionHook = Callable[[list[dict[str, Any]], int, "HookAdapter"], Any]
_PLAIN_ROLES: Final[frozenset[str]] = frozenset({"user", "system", "developer"})


class HookAdapter:
    """What a hook sees as its ``adapter``: llmbuffer's interface over the session's adapter.

    Attributes:
        name: the adapter's name (``"openai"``, ``"anthropic"``, ...).
        adapter: the llmvoice adapter itself.
    """

    def __init__(self, adapter: ProviderAdapter) -> None:
        self.adapter = adapter
        self.name = adapter.name

    def count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of OpenAI-shaped messages, counted with the session's tokenizer."""
        return sum(self.adapter.count_message_tokens(m) for m in messages)


class CallableStrategy(Strategy):
    """Turns a hook ``hook(messages, target_tokens, adapter)`` into a strategy.

    Args:
        hook: the callable (see the module docstring for what it may return).
        name: the strategy's name in logs and reports.
        replacement_tokens: the budget handed to the hook as ``target_tokens``.
    """

    name: ClassVar[str] = "custom"

    def __init__(self, hook: CompactionHook, *, name: str | None = None, replacement_tokens: int = 300) -> None:
        if not callable(hook):
            raise ConfigurationError(f"hook must be callable, not {type(hook).__name__}")
        self.hook = hook
        self.label = name or getattr(hook, "__name__", "custom")
        self.replacement_tokens = replacement_tokens

    def compact(self, data: CompactionInput) -> Outcome:
        """Call the hook on the span and turn its answer into replacement blocks."""
        span = list(data.span)
        dicts = [m.to_dict() for m in span]
        try:
            result = self.hook(dicts, data.budget_tokens, HookAdapter(data.adapter))
        except Exception as exc:  # a failing hook leaves the history as it was
            _log.warning("compaction hook %s failed (%s: %s); no cut", self.label, type(exc).__name__, exc)
            return Skip(f"{self.label}: the hook failed ({type(exc).__name__}: {exc})")
        covers = covered_ids(span)
        if result is None:
            return Skip(f"{self.label}: the hook declined the cut")
        if isinstance(result, str):
            if not result.strip():
                return Replace((), f"{self.label}: empty summary, plain cut")
            return Replace((fn.summary_message(result, covers),), f"{self.label}: summary")
        if not isinstance(result, Sequence):
            return Skip(f"{self.label}: the hook returned {type(result).__name__}, not a string or a message list")
        try:
            kept = [to_message(m, i) for i, m in enumerate(result)]
        except LLMVoiceError as exc:
            return Skip(f"{self.label}: the hook returned an invalid message ({exc})")
        if not kept:
            return Replace((), f"{self.label}: plain cut")
        single = kept[0]
        if len(kept) == 1 and single.role in _PLAIN_ROLES and not single.tool_calls and single.to_dict() not in dicts:
            block = Message(single.role, single.content, name=single.name, kind="summary", covers=covers)
            return Replace((block,), f"{self.label}: one block")
        return Replace((selection_message(render(kept), covers),), f"{self.label}: {len(kept)} messages quoted")


def from_llmbuffer_hook(hook: CompactionHook) -> CallableStrategy:
    """A strategy from an llmbuffer ``compaction_hook(messages, target_tokens, adapter)``."""
    return CallableStrategy(hook, name=getattr(hook, "__name__", "llmbuffer-hook"))
