"""The benchmark's shared types: scenarios, targets and the contender seam.

A :class:`Scenario` is a scripted conversation on virtual time: per :class:`Turn`, the user's
utterance, the dynamic context of that turn, and the model's scripted answers (:class:`Step`:
tool calls with their results, then the spoken reply). Every contender plays the same script
against its own copy of the same provider; only what each one sends differs.

A :class:`Contender` is one context-management library driven through that script::

    class KeepEverything(Contender):
        name = "keep-everything"
        def call(self, send): return send({"model": self.target.model, "messages": self.messages()})
        ...
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmvoice.benchmark.simulate import SimResult
from llmvoice.errors import ConfigurationError

__all__ = [
    "API_OF_PROVIDER",
    "Contender",
    "Fact",
    "Scenario",
    "Send",
    "Step",
    "Target",
    "Turn",
]

#: Which request shape each provider takes: OpenAI chat completions or Anthropic messages.
API_OF_PROVIDER: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "vllm": "openai",
    "llamacpp": "openai",
    "local": "openai",
    "openai-compatible": "openai",
}


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact planted early in a scenario, to check what each contender still holds at the end.

    Attributes:
        key: what the fact is (``"name"``, ``"order_number"``, ...).
        value: the exact text that carries it; it appears verbatim in the planting turn's user
            utterance, and a contender retains the fact when its final request still contains
            this text (case-insensitive).
        turn: index of the turn that plants it.
    """

    key: str
    value: str
    turn: int


@dataclass(frozen=True, slots=True)
class Step:
    """One model answer within a turn, in the canonical (OpenAI chat) message shape.

    Attributes:
        assistant: the assistant message the model returns: ``{"role": "assistant",
            "content": ...}`` and, for a tool round, ``"tool_calls"``.
        tool_results: the ``{"role": "tool", "tool_call_id", "content"}`` messages that answer the
            assistant's tool calls (empty when it made none).
    """

    assistant: Mapping[str, Any]
    tool_results: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn: the utterance, this turn's dynamic context, and the scripted model answers.

    Attributes:
        at_s: virtual time (seconds from the call's start) when the user stops speaking; a pause
            longer than a cache TTL is a gap between two turns' ``at_s``.
        user: the user's utterance.
        context: the dynamic context (RAG results, time, caller state) for this turn, or ``None``.
        steps: one LLM request each; every step but the last is a tool round, the last one is the
            spoken reply (content, no tool calls).
    """

    at_s: float
    user: str
    context: str | None
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scripted conversation.

    Attributes:
        name: scenario name (``"voice_support"``, ...).
        description: one line on what it exercises.
        seed: the seed it was generated from.
        system_prompt: the static system prompt.
        tools: tool definitions in OpenAI function format.
        turns: the turns, in order, with non-decreasing ``at_s``.
        facts: the planted facts.
    """

    name: str
    description: str
    seed: int
    system_prompt: str
    tools: tuple[Mapping[str, Any], ...]
    turns: tuple[Turn, ...]
    facts: tuple[Fact, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Target:
    """Where the requests go.

    Attributes:
        provider: ``"openai"``, ``"anthropic"``, ``"vllm"``, ``"llamacpp"``, ``"local"`` or
            ``"openai-compatible"``.
        model: the model name put in every request.
        base_url: the server address for ``openai-compatible`` and local servers.
    """

    provider: str
    model: str
    base_url: str = "http://localhost:8080/v1"

    def __post_init__(self) -> None:
        if self.provider not in API_OF_PROVIDER:
            raise ConfigurationError(
                f"unknown provider {self.provider!r}; expected one of {', '.join(API_OF_PROVIDER)}"
            )

    @property
    def api(self) -> str:
        """``"openai"`` (chat completions) or ``"anthropic"`` (messages)."""
        return API_OF_PROVIDER[self.provider]


#: Sends one request (the official client's keyword arguments) at the current virtual time.
Send = Callable[[Mapping[str, Any]], SimResult]


class Contender(abc.ABC):
    """One context-management approach, driven through a scenario by the benchmark runner.

    Per turn the runner calls :meth:`speech_start` when the user starts speaking, then
    :meth:`user_turn` when the utterance is complete, then for each step :meth:`call` (which builds
    the request and sends it exactly once through ``send``) followed by :meth:`reply`, then
    :meth:`idle` for background work while the reply is spoken. Time spent inside the
    contender's methods, minus the time inside ``send``, is its per-turn overhead.

    Args:
        scenario: the scenario being played (system prompt and tools are read from it).
        target: the provider and model the requests are for.
        budget: the contender's budget knob in tokens (``None``: its default).
        target_ms: the TTFT target, for contenders that steer by latency.

    Attributes:
        name: the contender's name in reports.
        knob: what ``budget`` sets, for reports (``None`` when it has no budget knob).
        counters: ``compactions``, ``rebases`` and ``rollbacks`` seen so far.
    """

    name: ClassVar[str] = "contender"
    knob: ClassVar[str | None] = None

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        self.scenario = scenario
        self.target = target
        self.budget = budget
        self.target_ms = target_ms
        self.counters: dict[str, int] = {"compactions": 0, "rebases": 0, "rollbacks": 0}

    @abc.abstractmethod
    def user_turn(self, turn: Turn) -> None:
        """The user's utterance (``turn.user``) and the turn's dynamic context arrive."""

    @abc.abstractmethod
    def call(self, send: Send) -> SimResult:
        """Build the next request of this turn, send it once through ``send``, return the result."""

    @abc.abstractmethod
    def reply(self, step: Step) -> None:
        """The model answered ``step.assistant``; ``step.tool_results`` follow it."""

    def speech_start(self, at_s: float, send: Send) -> None:  # noqa: B027 - optional hook
        """The user starts speaking the next turn at ``at_s`` (a voice framework's speech-start event).

        Background requests sent here (a pre-warm after a long pause) run while the user speaks,
        off the latency path.
        """

    def idle(self, send: Send) -> None:  # noqa: B027 - optional hook
        """Background work after the turn (summaries, pre-warms); each request goes through ``send``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (event loops, threads) at the end of the run."""
