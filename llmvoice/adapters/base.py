"""The provider adapter: the one seam between llmvoice's state and a provider's request shape.

An adapter formats canonical messages into the provider's shape, places cache markers, counts
tokens, parses usage and builds pre-warm requests. The base class does the incremental work:
the formatted committed history is kept per session and only new messages are formatted, so a
turn costs O(new messages). A new provider needs one method::

    class MyProviderAdapter(ProviderAdapter):
        name = "my-provider"

        def format_message(self, message):
            return {"role": message.role, "content": message.text}

The default request is ``{"model": ..., "messages": [system, *history, *dynamic, *recent]}``
(the OpenAI chat shape); override :meth:`assemble` for another layout.
"""

from __future__ import annotations

import abc
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from llmvoice.errors import AdapterError
from llmvoice.messages import Message, thaw
from llmvoice.state import Log, State
from llmvoice.tokens import TokenCounter, counter_for_model

__all__ = [
    "CachePrefixReport",
    "Prompt",
    "ProviderAdapter",
    "Usage",
    "get_field",
]

_MAX_SESSIONS: Final[int] = 256
_DUMPS: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def get_field(obj: Any, *path: str) -> Any:
    """Read ``obj.a.b`` or ``obj["a"]["b"]`` (SDK objects or dicts); ``None`` when absent."""
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return obj


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one request, normalised across providers.

    Attributes:
        input_tokens: all input tokens, cached and cache-written ones included (Anthropic's own
            ``input_tokens`` excludes them; OpenAI's ``prompt_tokens`` includes them).
        cached_tokens: input tokens read from the prompt cache; ``None`` when the provider did not
            say (not the same as 0).
        cache_write_tokens: input tokens written to the cache (billed at a premium by some
            providers); ``None`` when not reported.
        output_tokens: generated tokens.
    """

    input_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def uncached_tokens(self) -> int | None:
        """Input tokens prefilled without the cache (cache writes included), when known."""
        if self.input_tokens is None or self.cached_tokens is None:
            return None
        return self.input_tokens - self.cached_tokens

    def merge(self, other: Usage | None) -> Usage:
        """Combine partial usage (stream events): fields of ``other`` that are set win."""
        if other is None:
            return self
        return Usage(
            other.input_tokens if other.input_tokens is not None else self.input_tokens,
            other.cached_tokens if other.cached_tokens is not None else self.cached_tokens,
            other.cache_write_tokens if other.cache_write_tokens is not None else self.cache_write_tokens,
            other.output_tokens if other.output_tokens is not None else self.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class CachePrefixReport:
    """The cacheable prefix of the request a state builds.

    Attributes:
        epoch: the state's epoch; the prefix only grows within an epoch.
        messages: provider messages (system included where it is a message) in the prefix.
        blocks: committed history blocks in the prefix.
        bytes: UTF-8 bytes of the prefix's JSON (system, tools and committed history).
        tokens: tokens of the prefix.
        request_tokens: tokens of the whole request (prefix, dynamic context, recent turns).
        min_cacheable_tokens: the provider's minimum cacheable length for the model.
    """

    epoch: int
    messages: int
    blocks: int
    bytes: int
    tokens: int
    request_tokens: int
    min_cacheable_tokens: int

    @property
    def cacheable(self) -> bool:
        """Whether the prefix is long enough for the provider to cache it at all."""
        return self.tokens >= self.min_cacheable_tokens

    def __str__(self) -> str:
        flag = "" if self.cacheable else f" (below the {self.min_cacheable_tokens}-token minimum)"
        return (
            f"epoch {self.epoch}: cached prefix {self.messages} messages, {self.bytes} bytes, "
            f"{self.tokens} of {self.request_tokens} tokens{flag}"
        )


@dataclass(frozen=True, slots=True)
class Prompt:
    """The formatted pieces of one request, in cache order, handed to :meth:`ProviderAdapter.assemble`.

    Attributes:
        state: the state being built.
        static: the formatted static part (whatever :meth:`ProviderAdapter.format_static` returned).
        history: formatted committed history (shared, read-only: copy an element before changing it).
        dynamic: formatted dynamic-context messages for this turn.
        recent: formatted recent turns.
        previous_mark: ``(message index, block index)`` in ``history`` of the end of the history
            the previous request held, or ``None``.
        blocks_since_mark: content blocks added to the history since that previous end.
    """

    state: State
    static: Any
    history: Sequence[dict[str, Any]]
    dynamic: Sequence[dict[str, Any]]
    recent: Sequence[dict[str, Any]]
    previous_mark: tuple[int, int] | None
    blocks_since_mark: int


class _History:
    """Formatted committed history of one session, extended incrementally."""

    __slots__ = ("blocks", "ends", "epoch", "log", "n", "nbytes", "out", "tokens")

    def __init__(self, log: Log[Message], epoch: int) -> None:
        self.log = log
        self.epoch = epoch
        self.n = 0  # canonical messages formatted
        self.out: list[dict[str, Any]] = []
        self.ends: list[tuple[int, int]] = []  # per canonical message: (out index, block index) of its last block
        self.blocks: list[int] = []  # per canonical message: content blocks in out up to and including it
        self.tokens: list[int] = []  # cumulative tokens per canonical message (filled lazily)
        self.nbytes: list[int] = []  # cumulative bytes per out message except the last (filled lazily)


def _nblocks(message: Mapping[str, Any]) -> int:
    content = message.get("content")
    return len(content) if isinstance(content, list) and content else 1


class ProviderAdapter(abc.ABC):
    """Base class of provider adapters. Subclass it for a provider llmvoice does not ship.

    Implement :meth:`format_message`; override :meth:`format_static`, :meth:`assemble`,
    :meth:`merge_message`, :meth:`parse_usage`, :meth:`usage_from_chunk` and
    :meth:`prewarm_request` where the provider differs from the OpenAI chat shape::

        class MyProviderAdapter(ProviderAdapter):
            name = "my-provider"

            def format_message(self, message):
                return {"role": message.role, "content": message.text}

    Args:
        model: the model name sent with every request.
        counter: the token counter (default: the model's tokenizer, or an estimate).
        dynamic_role: the role of the dynamic-context message.
        dynamic_template: how the dynamic context is worded (``{context}`` is replaced).

    Attributes:
        name: a short provider name used in reports.
        min_cacheable_tokens: the shortest prefix the provider caches (0: no minimum).
        cache_ttl_s: how long an unused cached prefix is expected to live, in seconds (the
            controller pre-warms after longer pauses); ``None``: it does not expire on its own.
        serial: the server runs one request at a time (a single llama.cpp slot), so a pre-warm
            holds up a turn that arrives before it is done.
    """

    name: ClassVar[str] = "custom"
    min_cacheable_tokens: int = 0
    cache_ttl_s: float | None = 300.0
    serial: bool = False

    def __init__(
        self,
        model: str,
        *,
        counter: TokenCounter | None = None,
        dynamic_role: str = "system",
        dynamic_template: str = "{context}",
    ) -> None:
        if not isinstance(model, str) or not model:
            raise AdapterError("model must be a non-empty string")
        if "{context}" not in dynamic_template:
            raise AdapterError("dynamic_template must contain '{context}'")
        self.model = model
        self.counter: TokenCounter = counter if counter is not None else counter_for_model(model)
        self.dynamic_role = dynamic_role
        self.dynamic_template = dynamic_template
        self._sessions: OrderedDict[str, _History] = OrderedDict()
        self._static_key: tuple[str, tuple[Any, ...]] | None = None
        self._static: Any = None
        self._static_tokens: int | None = None
        self._dynamic_key: str | None = None
        self._dynamic: list[dict[str, Any]] = []
        self._recent_memo: dict[int, tuple[Message, dict[str, Any]]] = {}
        self._tail_memo: dict[int, tuple[dict[str, Any], int]] = {}

    # -- hooks a subclass implements or overrides ------------------------------------------

    @abc.abstractmethod
    def format_message(self, message: Message) -> dict[str, Any]:
        """Format one canonical message (``message.kind`` may be ``"context"`` or ``"summary"``).

        Called once per message; the result is memoised and shared between requests, so it must
        be a fresh dict that nobody changes afterwards.
        """

    def merge_message(self, previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
        """Return one message that replaces ``previous`` followed by ``new``, or ``None`` to keep both.

        Used for providers that want consecutive messages grouped (Anthropic's tool results).
        Must not change its arguments.
        """
        return None

    def format_dynamic(self, context: str) -> list[dict[str, Any]]:
        """The message(s) carrying this turn's dynamic context (a context event, not committed)."""
        return [self.format_message(Message(self.dynamic_role, context, kind="context"))]

    def context_text(self, context: str) -> str:
        """The dynamic context worded with ``dynamic_template``."""
        return self.dynamic_template.replace("{context}", context)

    def format_static(self, static_system: str, tools: Sequence[Mapping[str, Any]]) -> Any:
        """Format the static system prompt and tools (default: a system message and OpenAI tools)."""
        messages = [{"role": "system", "content": static_system}] if static_system else []
        return (messages, [thaw(t) for t in tools])

    def assemble(self, prompt: Prompt) -> dict[str, Any]:
        """Build the request from formatted pieces (default: the OpenAI chat shape)."""
        system, tools = prompt.static
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [*system, *prompt.history, *prompt.dynamic, *prompt.recent],
        }
        if tools:
            request["tools"] = tools
        return request

    def stream_options(self, stream: bool) -> dict[str, Any]:
        """Request keys for streaming (default: ``{"stream": stream}``)."""
        return {"stream": stream}

    def parse_usage(self, response: Any) -> Usage | None:
        """Usage of a full response in the OpenAI chat shape (``None`` when it has none)."""
        usage = get_field(response, "usage")
        if usage is None:
            return None
        prompt = _int(get_field(usage, "prompt_tokens"))
        cached = _int(get_field(usage, "prompt_tokens_details", "cached_tokens"))
        written = _int(get_field(usage, "prompt_tokens_details", "cache_write_tokens"))
        return Usage(prompt, cached, written, _int(get_field(usage, "completion_tokens")))

    def usage_from_chunk(self, chunk: Any) -> Usage | None:
        """Usage carried by one stream chunk, if any (OpenAI: the last chunk)."""
        return self.parse_usage(chunk)

    def parse_stream_usage(self, chunks: Iterable[Any]) -> Usage | None:
        """Fold the usage of a whole stream of chunks or events."""
        total: Usage | None = None
        for chunk in chunks:
            part = self.usage_from_chunk(chunk)
            if part is not None:
                total = part if total is None else total.merge(part)
        return total

    def prewarm_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A request that fills the cache with ``request``'s prefix and generates (almost) nothing."""
        warm = {k: v for k, v in request.items() if k not in ("stream", "stream_options", "max_tokens")}
        warm["max_tokens"] = 1
        return warm

    def request_options(self, state: State) -> dict[str, Any]:
        """Provider options added to every request (cache keys, retention, ...)."""
        return {}

    def prefix_message_count(self, static: Any, history: Sequence[Mapping[str, Any]]) -> int:
        """Provider messages up to the end of the committed history (default: system + history)."""
        return len(static[0]) + len(history)

    def count_message_tokens(self, message: Mapping[str, Any]) -> int:
        """Tokens of one formatted message: its text plus a small per-message overhead."""
        return 3 + self._count_value(message)

    # -- the machinery ---------------------------------------------------------------------

    def _count_value(self, value: Any) -> int:
        if isinstance(value, str):
            return self.counter.count_text(value)
        if isinstance(value, Mapping):
            total = 0
            for key, item in value.items():
                if key in ("role", "type", "cache_control"):
                    continue
                if key in ("image_url", "source", "input_audio", "file"):
                    total += 85
                    continue
                total += self._count_value(item)
            return total
        if isinstance(value, list | tuple):
            return sum(self._count_value(v) for v in value)
        return 0 if value is None else self.counter.count_text(str(value))

    def _static_part(self, state: State) -> Any:
        key = self._static_key
        if key is None or key[0] is not state.static_system or key[1] is not state.tools:
            if key is None or key != (state.static_system, state.tools):
                self._static = self.format_static(state.static_system, state.tools)
                self._static_tokens = None
            self._static_key = (state.static_system, state.tools)
        return self._static

    def _history(self, state: State) -> _History:
        log = state.committed
        hist = self._sessions.get(state.session_id)
        if (
            hist is None
            or hist.epoch != state.epoch
            or hist.n > len(log)
            or not (hist.log is log or log.shares_prefix_with(hist.log))
        ):
            hist = _History(log, state.epoch)
            self._sessions[state.session_id] = hist
            if len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        elif len(self._sessions) > 1:
            self._sessions.move_to_end(state.session_id)
        n = len(log)
        if hist.n < n:
            out = hist.out
            blocks = hist.blocks[-1] if hist.blocks else 0
            for i in range(hist.n, n):
                formatted = self.format_message(log[i])
                merged = self.merge_message(out[-1], formatted) if out else None
                if merged is not None:
                    added = _nblocks(merged) - _nblocks(out[-1])
                    out[-1] = merged
                    if len(hist.nbytes) == len(out):
                        hist.nbytes.pop()
                else:
                    out.append(formatted)
                    added = _nblocks(formatted)
                blocks += added
                hist.blocks.append(blocks)
                hist.ends.append((len(out) - 1, _nblocks(out[-1]) - 1))
            hist.n = n
        hist.log = log
        return hist

    def _dynamic_part(self, context: str | None) -> list[dict[str, Any]]:
        if context is None:
            return []
        if context != self._dynamic_key:
            self._dynamic = self.format_dynamic(context)
            self._dynamic_key = context
        return self._dynamic

    def _recent_part(self, recent: tuple[Message, ...]) -> list[dict[str, Any]]:
        if not recent:
            if self._recent_memo:
                self._recent_memo.clear()
            return []
        memo = self._recent_memo
        out: list[dict[str, Any]] = []
        fresh: dict[int, tuple[Message, dict[str, Any]]] = {}
        for message in recent:
            hit = memo.get(id(message))
            formatted = hit[1] if hit is not None and hit[0] is message else self.format_message(message)
            fresh[id(message)] = (message, formatted)
            merged = self.merge_message(out[-1], formatted) if out else None
            if merged is not None:
                out[-1] = merged
            else:
                out.append(formatted)
        self._recent_memo = fresh
        return out

    def prompt(self, state: State, dynamic_context: str | None) -> Prompt:
        """Format ``state`` into a :class:`Prompt` (incrementally)."""
        hist = self._history(state)
        mark: tuple[int, int] | None = None
        since = 0
        prev = state.built_committed
        if 0 < prev <= hist.n:
            mark = hist.ends[prev - 1]
            since = hist.blocks[-1] - hist.blocks[prev - 1]
        return Prompt(
            state,
            self._static_part(state),
            hist.out,
            self._dynamic_part(dynamic_context),
            self._recent_part(state.recent),
            mark,
            since,
        )

    def build_request(
        self, state: State, dynamic_context: str | None = None, *, stream: bool | None = None, **options: Any
    ) -> dict[str, Any]:
        """The request for ``state``; this does not change the state.

        Use :func:`llmvoice.functional.build_request` (or the manager) to keep the state's
        bookkeeping of where the previous breakpoint stood.
        """
        request = self.assemble(self.prompt(state, dynamic_context))
        if not request.get("messages"):
            raise AdapterError("nothing to send: the request has no messages (no prompt, context or turns yet)")
        request.update(self.request_options(state))
        if stream is not None:
            request.update(self.stream_options(stream))
        if options:
            request.update(options)
        return request

    def build_messages(self, state: State, dynamic_context: str | None = None) -> list[dict[str, Any]]:
        """The provider-shaped message list of :meth:`build_request`."""
        messages: list[dict[str, Any]] = self.build_request(state, dynamic_context)["messages"]
        return messages

    def _static_token_count(self, state: State) -> int:
        static = self._static_part(state)
        if self._static_tokens is None:
            self._static_tokens = self._count_value(static)
        return self._static_tokens

    def static_tokens(self, state: State) -> int:
        """Tokens of the static system prompt and tools as this adapter formats them (memoised)."""
        return self._static_token_count(state)

    def _cumulative_tokens(self, state: State) -> list[int]:
        """Running token totals of the committed blocks, counted once per block per session."""
        hist = self._history(state)
        tokens = hist.tokens
        for i in range(len(tokens), hist.n):
            previous = tokens[-1] if tokens else 0
            tokens.append(previous + self.count_message_tokens(self.format_message(state.committed[i])))
        return tokens

    def history_tokens(self, state: State) -> int:
        """Tokens of the whole committed history as this adapter formats it (memoised per block)."""
        tokens = self._cumulative_tokens(state)
        return tokens[-1] if tokens else 0

    def committed_tokens(self, state: State) -> list[int]:
        """Tokens of each committed block as this adapter formats it, oldest first.

        Counted once per block and memoised for the session, so a call per turn costs only the
        blocks committed since the last one.
        """
        tokens = self._cumulative_tokens(state)
        return [b - a for a, b in zip([0, *tokens], tokens, strict=False)]

    def tail_tokens(self, state: State, dynamic_context: str | None = None) -> int:
        """Tokens after the cacheable prefix: the dynamic context and the recent turns.

        Each formatted message is counted once while it stays in the tail, so calling this for
        every request of a turn costs only what changed.
        """
        memo = self._tail_memo
        fresh: dict[int, tuple[dict[str, Any], int]] = {}
        total = 0
        for message in (*self._dynamic_part(dynamic_context), *self._recent_part(state.recent)):
            hit = memo.get(id(message))
            count = hit[1] if hit is not None and hit[0] is message else self.count_message_tokens(message)
            fresh[id(message)] = (message, count)
            total += count
        self._tail_memo = fresh
        return total

    def cache_prefix(self, state: State, dynamic_context: str | None = None) -> CachePrefixReport:
        """Report the cacheable prefix of the request ``state`` builds (tokens counted lazily, once)."""
        tokens = self._cumulative_tokens(state)
        hist = self._history(state)
        nbytes = hist.nbytes
        for i in range(len(nbytes), max(len(hist.out) - 1, 0)):
            previous = nbytes[-1] if nbytes else 0
            nbytes.append(previous + len(_DUMPS(hist.out[i]).encode()) + 1)
        history_bytes = (nbytes[-1] if nbytes else 0) + (len(_DUMPS(hist.out[-1]).encode()) if hist.out else 0)
        static = self._static_part(state)
        static_bytes = len(_DUMPS(static).encode())
        prefix_tokens = self._static_token_count(state) + (tokens[-1] if tokens else 0)
        tail_tokens = self.tail_tokens(state, dynamic_context)
        return CachePrefixReport(
            epoch=state.epoch,
            messages=self.prefix_message_count(static, hist.out),
            blocks=hist.n,
            bytes=static_bytes + history_bytes,
            tokens=prefix_tokens,
            request_tokens=prefix_tokens + tail_tokens,
            min_cacheable_tokens=self.min_cacheable_tokens,
        )

    def parse_message(self, response: Any) -> dict[str, Any]:
        """The assistant message of a full OpenAI-shaped response, as a canonical dict to append."""
        message = get_field(response, "choices")
        if not message:
            raise AdapterError("the response has no choices")
        first = message[0]
        msg = get_field(first, "message")
        if msg is None:
            raise AdapterError("the response's first choice has no message")
        out: dict[str, Any] = {"role": "assistant", "content": get_field(msg, "content")}
        calls = get_field(msg, "tool_calls")
        if calls:
            out["tool_calls"] = [
                {
                    "id": get_field(c, "id"),
                    "type": "function",
                    "function": {
                        "name": get_field(c, "function", "name"),
                        "arguments": get_field(c, "function", "arguments"),
                    },
                }
                for c in calls
            ]
        return out
