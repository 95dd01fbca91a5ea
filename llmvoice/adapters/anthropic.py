"""Anthropic Messages API: system as top-level blocks, explicit ``cache_control`` breakpoints."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from llmvoice.adapters.base import Prompt, ProviderAdapter, Usage, get_field
from llmvoice.errors import AdapterError, ConfigurationError
from llmvoice.messages import Message, thaw
from llmvoice.tokens import CalibratedCounter, TokenCounter, counter_for_model

__all__ = ["AnthropicAdapter", "anthropic_min_cacheable_tokens"]

# Minimum cacheable prompt length per model, from the prompt-caching page (snapshot 2026-08-21):
# https://platform.claude.com/docs/en/build-with-claude/prompt-caching ("Cache limitations").
# Most specific names first; the first pattern found in the model name wins.
_MIN_CACHEABLE: Final[tuple[tuple[str, int], ...]] = (
    ("opus-5", 512),
    ("fable-5", 512),
    ("mythos-5", 512),
    ("mythos-preview", 2048),
    ("opus-4-8", 1024),
    ("opus-4-7", 2048),
    ("opus-4-6", 4096),
    ("opus-4-5", 4096),
    ("haiku-4-5", 4096),
    ("opus-4-1", 1024),
    ("opus-4", 1024),
    ("sonnet-5", 1024),
    ("sonnet-4", 1024),
    ("3-7-sonnet", 1024),
    ("3-5-sonnet", 1024),
    ("3-opus", 1024),
    ("3-5-haiku", 2048),
    ("3-haiku", 2048),
)
_DEFAULT_MIN_CACHEABLE: Final[int] = 1024

# "The lookback window is 20 blocks. The system checks at most 20 positions per breakpoint,
# counting the breakpoint itself as the first." (prompt-caching page, 2026-08-21)
LOOKBACK_BLOCKS: Final[int] = 20
# "You can define up to 4 cache breakpoints" (same page); llmvoice uses at most 3.
MAX_BREAKPOINTS: Final[int] = 4

_TTL_SECONDS: Final[dict[str, int]] = {"5m": 300, "1h": 3600}
_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:(?P<media>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


def anthropic_min_cacheable_tokens(model: str) -> int:
    """The minimum cacheable prompt length of a Claude model (1,024 for unknown names)."""
    for pattern, tokens in _MIN_CACHEABLE:
        if pattern in model:
            return tokens
    return _DEFAULT_MIN_CACHEABLE


def _tool_id(call_id: str) -> str:
    # Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; the mapping is deterministic so a call and
    # its result always agree.
    return _TOOL_ID.sub("_", call_id)


def _cache_control(ttl: str) -> dict[str, str]:
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}


def _mark(message: Mapping[str, Any], block: int, control: Mapping[str, str]) -> dict[str, Any]:
    content = list(message["content"])
    content[block] = {**content[block], "cache_control": dict(control)}
    return {**message, "content": content}


class AnthropicAdapter(ProviderAdapter):
    """Requests for ``client.messages.create(**request, max_tokens=...)``.

    The static prompt goes into top-level ``system`` blocks; tools are converted to Anthropic's
    ``input_schema`` form; ``tool_calls`` become ``tool_use`` blocks and tool messages
    ``tool_result`` blocks (consecutive results grouped in one user turn). Breakpoints (at most
    the 4 allowed): the end of the static system and tools, the end of the committed history,
    the previous request's history end when more than 20 blocks were added since, so the
    20-block lookback still finds the previous cache entry, and, with ``dynamic_mode="append"``
    (nothing per-turn after the history), the end of the request, so the next turn reads the
    current utterance from the cache instead of prefilling it again.

    Args:
        model: the Claude model.
        ttl: cache TTL of the history breakpoints, ``"5m"`` or ``"1h"``.
        static_ttl: TTL of the static breakpoint (default ``ttl``); longer TTLs must come first.
        max_tokens: included in every request when set.
        dynamic_template: wording of the dynamic context, sent as a user text block.
        leading_user_text: the user turn put first when the conversation starts with the
            assistant (Anthropic requires a user turn first).
        counter: the token counter (default: an o200k count calibrated from reported usage).
    """

    name: ClassVar[str] = "anthropic"

    def __init__(
        self,
        model: str = "claude-sonnet-4-6",
        *,
        ttl: str = "5m",
        static_ttl: str | None = None,
        max_tokens: int | None = None,
        dynamic_template: str = "<context>\n{context}\n</context>",
        leading_user_text: str = "(The conversation starts.)",
        counter: TokenCounter | None = None,
    ) -> None:
        if counter is None:
            counter = CalibratedCounter(counter_for_model("o200k_base"))
        super().__init__(model, counter=counter, dynamic_role="user", dynamic_template=dynamic_template)
        static_ttl = ttl if static_ttl is None else static_ttl
        for label, value in (("ttl", ttl), ("static_ttl", static_ttl)):
            if value not in _TTL_SECONDS:
                raise ConfigurationError(f"{label} must be '5m' or '1h', not {value!r}")
        if _TTL_SECONDS[static_ttl] < _TTL_SECONDS[ttl]:
            raise ConfigurationError(
                f"static_ttl {static_ttl!r} is shorter than ttl {ttl!r}: Anthropic requires longer TTLs before shorter"
            )
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ConfigurationError(f"max_tokens must be a positive integer, not {max_tokens!r}")
        self.ttl = ttl
        self.static_ttl = static_ttl
        self.cache_ttl_s = float(_TTL_SECONDS[ttl])
        self.max_tokens = max_tokens
        self.leading_user_text = leading_user_text
        self.min_cacheable_tokens = anthropic_min_cacheable_tokens(model)

    # -- formatting ------------------------------------------------------------------------

    def _blocks(self, content: Any) -> list[dict[str, Any]]:
        if content is None:
            return []
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        blocks: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                if part["text"]:
                    blocks.append({"type": "text", "text": part["text"]})
            elif kind == "image_url":
                url = get_field(part, "image_url", "url")
                if not isinstance(url, str):
                    raise AdapterError("an image_url part needs image_url.url")
                match = _DATA_URL.match(url)
                if match:
                    source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
                else:
                    source = {"type": "url", "url": url}
                blocks.append({"type": "image", "source": source})
            else:
                blocks.append(thaw(part))
        return blocks

    def format_message(self, message: Message) -> dict[str, Any]:
        """A canonical message as an Anthropic message (content always a list of blocks)."""
        role = message.role
        if message.kind == "context" or role in ("system", "developer"):
            if message.kind == "context":
                text = self.context_text(message.text)
            else:
                text = f"<{role}>\n{message.text}\n</{role}>"
            return {"role": "user", "content": [{"type": "text", "text": text or "(empty)"}]}
        if role == "tool":
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(message.tool_call_id or "")}
            content = message.content
            result["content"] = content if isinstance(content, str) else self._blocks(content)
            return {"role": "user", "content": [result]}
        blocks = self._blocks(message.content)
        for call in message.tool_calls:
            try:
                arguments = json.loads(call.arguments) if call.arguments.strip() else {}
            except ValueError:
                arguments = {"arguments": call.arguments}
            if not isinstance(arguments, dict):
                arguments = {"arguments": arguments}
            blocks.append({"type": "tool_use", "id": _tool_id(call.id), "name": call.name, "input": arguments})
        if not blocks:
            blocks = [{"type": "text", "text": "(empty)"}]
        return {"role": "user" if role == "user" else "assistant", "content": blocks}

    def merge_message(self, previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
        """Group consecutive tool results into one user turn."""
        if (
            previous["role"] == "user"
            and new["role"] == "user"
            and all(b.get("type") == "tool_result" for b in previous["content"])
            and all(b.get("type") == "tool_result" for b in new["content"])
        ):
            return {"role": "user", "content": [*previous["content"], *new["content"]]}
        return None

    def format_static(self, static_system: str, tools: Sequence[Mapping[str, Any]]) -> Any:
        """Top-level system blocks and tools in Anthropic's form, the static breakpoint placed."""
        control = _cache_control(self.static_ttl)
        system: list[dict[str, Any]] = [{"type": "text", "text": static_system}] if static_system else []
        converted: list[dict[str, Any]] = []
        for tool in tools:
            function = thaw(tool["function"])
            entry: dict[str, Any] = {"name": function["name"]}
            if function.get("description"):
                entry["description"] = function["description"]
            entry["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
            converted.append(entry)
        if system:
            system[-1]["cache_control"] = dict(control)
        elif converted:
            converted[-1]["cache_control"] = dict(control)
        return (system, converted)

    def assemble(self, prompt: Prompt) -> dict[str, Any]:
        """``system`` blocks, ``tools`` and ``messages`` with the history breakpoints placed."""
        system, tools = prompt.static
        history = prompt.history
        rest = history or prompt.dynamic or prompt.recent
        if not rest and not system and not tools:
            raise AdapterError("nothing to send: no static system prompt, tools, context or messages")
        lead = [] if rest and rest[0]["role"] == "user" else [self._leading()]
        messages = [*lead, *history, *prompt.dynamic, *prompt.recent]
        control = _cache_control(self.ttl)
        if history:
            offset = len(lead)
            end = offset + len(history) - 1
            messages[end] = _mark(messages[end], -1, control)
            if prompt.previous_mark is not None and prompt.blocks_since_mark >= LOOKBACK_BLOCKS:
                index, block = prompt.previous_mark
                messages[offset + index] = _mark(messages[offset + index], block, control)
        if prompt.recent and not prompt.dynamic and prompt.state.dynamic_mode == "append":
            # Nothing per-turn follows the history, so the next request repeats this one up to its
            # last block: cache it now and the next turn reads the utterance instead of
            # prefilling it again.
            messages[-1] = _mark(messages[-1], -1, control)
        request: dict[str, Any] = {"model": self.model}
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if system:
            request["system"] = system
        request["messages"] = messages
        if tools:
            request["tools"] = tools
        return request

    def prefix_message_count(self, static: Any, history: Sequence[Mapping[str, Any]]) -> int:
        """Messages up to the history end: the system is top-level, a leading user turn may precede."""
        if not history:
            return 0
        return len(history) + (0 if history[0]["role"] == "user" else 1)

    def _leading(self) -> dict[str, Any]:
        return {"role": "user", "content": [{"type": "text", "text": self.leading_user_text}]}

    def count_message_tokens(self, message: Mapping[str, Any]) -> int:
        """Tokens of one Anthropic message (estimate calibrated by :meth:`calibrate`)."""
        return 3 + self._count_value(message)

    def calibrate(self, usage: Usage, estimated_input_tokens: int) -> None:
        """Teach the token estimate the provider's real count.

        Args:
            usage: the usage reported for a request.
            estimated_input_tokens: what this adapter estimated for that request's input.
        """
        counter = self.counter
        if isinstance(counter, CalibratedCounter) and usage.input_tokens is not None:
            # observe() learns against the uncalibrated base count.
            counter.observe(round(estimated_input_tokens / counter.ratio), usage.input_tokens)

    # -- responses -------------------------------------------------------------------------

    def stream_options(self, stream: bool) -> dict[str, Any]:
        """``{"stream": stream}`` (usage arrives in ``message_start`` / ``message_delta`` events)."""
        return {"stream": stream}

    def parse_usage(self, response: Any) -> Usage | None:
        """Usage of a Message; ``input_tokens`` here includes cache reads and writes."""
        return self._usage(get_field(response, "usage"))

    @staticmethod
    def _usage(usage: Any) -> Usage | None:
        if usage is None:
            return None
        uncached = get_field(usage, "input_tokens")
        read = get_field(usage, "cache_read_input_tokens")
        written = get_field(usage, "cache_creation_input_tokens")
        output = get_field(usage, "output_tokens")
        total = None
        if isinstance(uncached, int):
            total = uncached + (read or 0) + (written or 0)
            read = read or 0
            written = written or 0
        return Usage(total, read, written, output if isinstance(output, int) else None)

    def usage_from_chunk(self, chunk: Any) -> Usage | None:
        """Usage in a stream event: ``message_start`` (input side) or ``message_delta`` (output)."""
        kind = get_field(chunk, "type")
        if kind == "message_start":
            return self._usage(get_field(chunk, "message", "usage"))
        if kind == "message_delta":
            return self._usage(get_field(chunk, "usage"))
        return None

    def prewarm_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The same prompt with ``max_tokens: 0``: Anthropic writes the cache and returns at once."""
        warm = {k: v for k, v in request.items() if k not in ("stream", "max_tokens")}
        warm["max_tokens"] = 0
        return warm

    def parse_message(self, response: Any) -> dict[str, Any]:
        """The canonical (OpenAI-shaped) assistant message of an Anthropic Message."""
        content = get_field(response, "content")
        if content is None:
            raise AdapterError("the response has no content")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in content:
            kind = get_field(block, "type")
            if kind == "text":
                texts.append(get_field(block, "text") or "")
            elif kind == "tool_use":
                arguments = json.dumps(get_field(block, "input") or {}, ensure_ascii=False, separators=(",", ":"))
                calls.append(
                    {
                        "id": get_field(block, "id"),
                        "type": "function",
                        "function": {"name": get_field(block, "name"), "arguments": arguments},
                    }
                )
        out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if calls:
            out["tool_calls"] = calls
        return out
