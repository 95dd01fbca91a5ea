"""PromptManager: the stateful facade over :mod:`llmvoice.functional`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmvoice import functional as fn
from llmvoice.adapters.base import CachePrefixReport, ProviderAdapter
from llmvoice.adapters.openai import OpenAIAdapter
from llmvoice.errors import ConfigurationError
from llmvoice.messages import Message
from llmvoice.state import State

__all__ = ["PromptManager"]


class PromptManager:
    """Keeps one session's state and builds each turn's request in cache order.

    The request is laid out as static system → committed history → dynamic context → recent
    turns, so everything up to the end of the committed history is a byte-stable prefix that the
    provider's prompt cache keeps hitting.

    Args:
        static_system_prompt: the persona and rules; never changes within the session.
        adapter: the provider adapter (default :class:`~llmvoice.adapters.OpenAIAdapter`).
        transition_mode: ``"agent_cycle"`` (default: commit when an assistant message without
            tool calls ends the turn), ``"manual"`` (commit on :meth:`transition`) or ``"none"``
            (commit every message at once).
        dynamic_mode: ``"per_turn"`` (default: the dynamic context is rebuilt every turn and
            never committed) or ``"append"`` (a changed context is committed into the history).
        tools: tool definitions in OpenAI function format; part of the static prefix.
        session_id: a stable session key (random by default; the default ``prompt_cache_key``).
        tool_output_limit: commit tool results longer than this many characters as a short stub
            and keep the full output in the archive (``None``, the default: never). The model
            reads the full output during its turn; the cached history carries the stub.
        state: resume from an existing state instead (the other state options are then ignored).

    Example::

        manager = PromptManager("You are a friendly booking agent.", adapter=OpenAIAdapter("gpt-4o-mini"))
        manager.append({"role": "user", "content": "Table for two tonight?"})
        request = manager.build_request(dynamic_context="Open tables: 19:00, 20:30", stream=True)
        ...
        manager.append({"role": "assistant", "content": "I can do 19:00 or 20:30."})

    A manager is not thread-safe; use one per session and per task.
    """

    def __init__(
        self,
        static_system_prompt: str = "",
        *,
        adapter: ProviderAdapter | None = None,
        transition_mode: str = "agent_cycle",
        dynamic_mode: str = "per_turn",
        tools: Sequence[Mapping[str, Any]] | None = None,
        session_id: str | None = None,
        tool_output_limit: int | None = None,
        state: State | None = None,
    ) -> None:
        self.adapter: ProviderAdapter = adapter if adapter is not None else OpenAIAdapter()
        if not isinstance(self.adapter, ProviderAdapter):
            raise ConfigurationError(f"adapter must be a ProviderAdapter, not {type(self.adapter).__name__}")
        if state is not None and not isinstance(state, State):
            raise ConfigurationError(f"state must be an llmvoice State, not {type(state).__name__}")
        self._state = (
            state
            if state is not None
            else fn.new_state(
                static_system_prompt,
                tools=tools,
                transition_mode=transition_mode,
                dynamic_mode=dynamic_mode,
                session_id=session_id,
                tool_output_limit=tool_output_limit,
            )
        )

    @property
    def state(self) -> State:
        """The current (immutable) state; keep it to restore this exact point later."""
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        if not isinstance(state, State):
            raise ConfigurationError(f"state must be an llmvoice State, not {type(state).__name__}")
        self._state = state

    def append(self, message: Mapping[str, Any] | Any) -> PromptManager:
        """Append one message in the OpenAI chat shape (or an SDK message object).

        Raises:
            InvalidMessageError: the message is malformed; the state is unchanged.
            ToolCallError: a tool result without its call, or a new turn before all results.
            StateClosedError: the session was closed.
        """
        self._state = fn.append_message(self._state, message)
        return self

    def append_many(self, messages: Iterable[Mapping[str, Any] | Any]) -> PromptManager:
        """Append several messages atomically: if one is invalid, none is appended."""
        self._state = fn.append_messages(self._state, messages)
        return self

    def append_response(self, response: Any) -> PromptManager:
        """Append the assistant message of a full (non-streamed) provider response."""
        return self.append(self.adapter.parse_message(response))

    def transition(self) -> PromptManager:
        """Commit the recent turns into the history (``manual`` mode)."""
        self._state = fn.transition(self._state)
        return self

    def close(self) -> PromptManager:
        """Close the session: further messages raise :class:`~llmvoice.StateClosedError`."""
        self._state = fn.close(self._state)
        return self

    def turn_boundaries(self) -> tuple[int, ...]:
        """Where :meth:`rebase` may cut the committed history (see :func:`llmvoice.functional.turn_boundaries`)."""
        return fn.turn_boundaries(self._state)

    def rebase(self, cut: int, replacement: Sequence[Message | Mapping[str, Any]] = ()) -> PromptManager:
        """Archive ``committed[:cut]`` and put ``replacement`` (usually one summary) in its place.

        Starts a new epoch: the next request's prefix is new. Keep :attr:`state` from before the
        call to :meth:`rollback` to it later.

        Args:
            cut: one of :meth:`turn_boundaries`.
            replacement: blocks that stand for the archived ones, usually one
                :func:`llmvoice.functional.summary_message`.

        Raises:
            ConfigurationError: ``cut`` is not a turn boundary; the state is unchanged.
            InvalidMessageError: a replacement block is malformed, a tool message, or covers ids
                outside the cut span; the state is unchanged.
            StateClosedError: the session was closed.
        """
        self._state = fn.rebase(self._state, cut, replacement)
        return self

    def rollback(self, earlier: State) -> PromptManager:
        """Return to ``earlier`` (a state kept from before a rebase) plus every message since.

        Raises:
            ConfigurationError: ``earlier`` is not an earlier state of this session; the state is
                unchanged.
            StateClosedError: the session was closed.
        """
        self._state = fn.rollback(self._state, earlier)
        return self

    def build_request(
        self, dynamic_context: str | None = None, *, stream: bool | None = None, **options: Any
    ) -> dict[str, Any]:
        """Keyword arguments for the provider's official client, model included.

        ``client.chat.completions.create(**request)`` for OpenAI-shaped adapters,
        ``client.messages.create(**request, max_tokens=...)`` for Anthropic.

        Args:
            dynamic_context: this turn's dynamic context (RAG results, time, ...), or ``None``.
            stream: ``True`` adds the streaming keys (and ``stream_options`` for OpenAI usage).
            **options: extra request keys (``temperature``, ``max_tokens``, ...).

        The returned dicts share memoised message objects with later requests: treat them as
        read-only (copy before changing).
        """
        built = fn.build_request(self._state, self.adapter, dynamic_context, stream=stream, **options)
        self._state = built.state
        request: dict[str, Any] = built.payload
        return request

    def build_messages(self, dynamic_context: str | None = None) -> list[dict[str, Any]]:
        """The provider-shaped message list (for Anthropic the system prompt is not in it)."""
        built = fn.build_messages(self._state, self.adapter, dynamic_context)
        self._state = built.state
        messages: list[dict[str, Any]] = built.payload
        return messages

    def cache_prefix(self, dynamic_context: str | None = None) -> CachePrefixReport:
        """Messages, bytes and tokens of the cacheable prefix, and the epoch."""
        return self.adapter.cache_prefix(self._state, dynamic_context)

    def to_json(self) -> str:
        """The state as deterministic JSON text (with its schema version)."""
        return fn.dumps(self._state)

    @classmethod
    def from_json(cls, text: str | bytes, *, adapter: ProviderAdapter | None = None) -> PromptManager:
        """Resume a session saved with :meth:`to_json`.

        Raises:
            StateVersionError: an unknown or newer schema version.
            StateFormatError: not llmvoice state.
        """
        return cls(adapter=adapter, state=fn.loads(text))
