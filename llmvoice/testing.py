"""Helpers for tests: capture the exact HTTP body the official SDKs would send.

``RecordingClient`` builds a real ``openai.OpenAI`` or ``anthropic.Anthropic`` client whose HTTP
transport records each request body instead of sending it and answers with a canned response,
so a test can assert on the bytes a provider would see::

    rec = RecordingClient("openai")
    rec.client.chat.completions.create(**manager.build_request())
    body = rec.bodies[-1]          # bytes, exactly as the SDK serialised them

:func:`prompt_bytes` reduces a recorded body to what the provider's cache keys on, in the
provider's cache order (tools → system → messages for Anthropic), with Anthropic's
``cache_control`` markers removed: markers move from turn to turn but are not part of the cached
content.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["RecordingClient", "breakpoint_offsets", "prompt_bytes"]

_OPENAI_RESPONSE: Final[dict[str, Any]] = {
    "id": "chatcmpl-test",
    "object": "chat.completion",
    "created": 0,
    "model": "test",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
_ANTHROPIC_RESPONSE: Final[dict[str, Any]] = {
    "id": "msg_test",
    "type": "message",
    "role": "assistant",
    "model": "test",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
}


def _http_module(sdk: Any) -> Any:
    """The HTTP library the SDK's client is built on (``httpx`` or its successor ``httpx2``)."""
    base = importlib.import_module(f"{sdk.__name__}._base_client")
    for name in ("httpx2", "httpx"):
        if hasattr(base, name):
            return getattr(base, name)
    raise RuntimeError(f"cannot tell which HTTP library {sdk.__name__} uses")


class RecordingClient:
    """A real provider SDK client whose requests are recorded, not sent.

    Args:
        provider: ``"openai"`` or ``"anthropic"``.
        response: the JSON the fake server answers with (a minimal valid response by default).

    Attributes:
        client: the SDK client (``openai.OpenAI`` or ``anthropic.Anthropic``).
        bodies: the raw body bytes of every request, in order.
        paths: the URL path of every request.
    """

    def __init__(self, provider: str, *, response: dict[str, Any] | None = None) -> None:
        if provider not in ("openai", "anthropic"):
            raise ValueError(f"provider must be 'openai' or 'anthropic', not {provider!r}")
        sdk = importlib.import_module(provider)
        http = _http_module(sdk)
        answer = response or (_OPENAI_RESPONSE if provider == "openai" else _ANTHROPIC_RESPONSE)
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

        def handle(request: Any) -> Any:
            self.bodies.append(bytes(request.content))
            self.paths.append(str(request.url.path))
            return http.Response(200, json=answer)

        transport = http.MockTransport(handle)
        factory: Callable[..., Any] = sdk.OpenAI if provider == "openai" else sdk.Anthropic
        self.client = factory(api_key="test-key", http_client=http.Client(transport=transport), max_retries=0)
        self.provider = provider

    def send(self, request: dict[str, Any]) -> bytes:
        """Send ``request`` through the SDK (as ``create(**request)``) and return the recorded body."""
        if self.provider == "openai":
            self.client.chat.completions.create(**request)
        else:
            options = dict(request)
            options.setdefault("max_tokens", 64)
            self.client.messages.create(**options)
        return self.bodies[-1]


_MARKER: Final = re.compile(rb',"cache_control":\{"type":"ephemeral"(?:,"ttl":"(?:5m|1h)")?\}')


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def prompt_bytes(body: bytes, provider: str) -> bytes:
    """The cache-relevant bytes of a recorded body, in the provider's cache order.

    For OpenAI-shaped bodies: ``tools`` then ``messages`` as serialised. For Anthropic:
    ``tools``, ``system`` then ``messages`` with every ``cache_control`` marker removed.
    """
    data = json.loads(body)
    if provider == "anthropic":
        raw = _dump([data.get("tools", []), data.get("system", []), data["messages"]])
        return _MARKER.sub(b"", raw)
    return _dump([data.get("tools", []), data["messages"]])


def breakpoint_offsets(body: bytes, provider: str, *, history_messages: int | None = None) -> list[int]:
    """Byte offsets in :func:`prompt_bytes` just after each cache breakpoint.

    For Anthropic these are the blocks marked with ``cache_control``. OpenAI has no markers: pass
    ``history_messages`` (the provider messages up to the end of the committed history) to get the
    offset where the cacheable prefix ends.
    """
    data = json.loads(body)
    tools = data.get("tools", [])
    messages = data["messages"]
    if provider != "anthropic":
        if history_messages is None:
            return []
        head = _dump([tools, messages[:history_messages]])
        return [len(head) - 2]  # drop the closing "]]" of the partial dump
    offsets: list[int] = []

    def cut(copy: dict[str, Any], last: Any) -> None:
        dumped = prompt_bytes(_dump(copy), "anthropic")
        needle = _MARKER.sub(b"", _dump(last))
        offsets.append(dumped.rfind(needle) + len(needle))

    for key in ("tools", "system"):
        for i, item in enumerate(data.get(key, [])):
            if "cache_control" in item:
                copy = {k: v for k, v in data.items() if k in ("tools", "system")}
                copy[key] = data[key][: i + 1]
                if key == "tools":
                    copy["system"] = []
                copy["messages"] = []
                cut(copy, item)
    for i, message in enumerate(messages):
        content = message["content"]
        for j, block in enumerate(content if isinstance(content, list) else []):
            if "cache_control" in block:
                copy = dict(data)
                copy["messages"] = [*messages[:i], {**message, "content": content[: j + 1]}]
                cut(copy, block)
    return offsets
