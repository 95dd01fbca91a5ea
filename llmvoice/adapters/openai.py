"""OpenAI Chat Completions: automatic prefix caching, ``prompt_cache_key`` and retention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from llmvoice.adapters.base import ProviderAdapter
from llmvoice.errors import AdapterError
from llmvoice.messages import Message
from llmvoice.state import State
from llmvoice.tokens import TokenCounter

__all__ = ["OpenAIAdapter"]


class _Default:
    def __repr__(self) -> str:
        return "SESSION"


#: ``prompt_cache_key`` default: the state's stable session id.
SESSION: Final = _Default()

# "Caching is enabled automatically for prompts that are 1024 tokens or longer."
# https://developers.openai.com/api/docs/guides/prompt-caching
OPENAI_MIN_CACHEABLE_TOKENS: Final[int] = 1024

_RETENTIONS: Final[frozenset[str]] = frozenset({"in_memory", "24h"})


class OpenAIAdapter(ProviderAdapter):
    """Requests for ``client.chat.completions.create(**request)``.

    OpenAI caches the longest prefix automatically (1,024 tokens and more, in 128-token steps),
    routed by a hash of the first ~256 tokens plus ``prompt_cache_key``. llmvoice keeps the prefix
    byte-stable and sends a stable per-session ``prompt_cache_key`` so a session's requests land
    on the machine that holds its cache.

    Args:
        model: the model name.
        prompt_cache_key: a routing key; default the state's session id, ``None`` to send none.
        prompt_cache_retention: ``"in_memory"`` or ``"24h"`` (supported models only), or ``None``.
        system_role: ``"system"`` or ``"developer"`` for the static prompt.
        dynamic_role: the role of the dynamic-context message (default ``"system"``).
        dynamic_template: the wording of the dynamic context (``{context}`` is replaced).
        counter: the token counter (default: tiktoken's encoding for the model, offline).

    Example::

        adapter = OpenAIAdapter(model="gpt-4o-mini")
        manager = PromptManager("You are a helpful voice agent.", adapter=adapter)
        manager.append({"role": "user", "content": "Hi!"})
        stream = client.chat.completions.create(**manager.build_request(stream=True))
    """

    name: ClassVar[str] = "openai"
    min_cacheable_tokens = OPENAI_MIN_CACHEABLE_TOKENS

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        prompt_cache_key: str | _Default | None = SESSION,
        prompt_cache_retention: str | None = None,
        system_role: str = "system",
        dynamic_role: str = "system",
        dynamic_template: str = "{context}",
        counter: TokenCounter | None = None,
    ) -> None:
        super().__init__(model, counter=counter, dynamic_role=dynamic_role, dynamic_template=dynamic_template)
        if prompt_cache_retention is not None and prompt_cache_retention not in _RETENTIONS:
            raise AdapterError(
                f"prompt_cache_retention must be one of {sorted(_RETENTIONS)} or None, not {prompt_cache_retention!r}"
            )
        if system_role not in ("system", "developer"):
            raise AdapterError(f"system_role must be 'system' or 'developer', not {system_role!r}")
        self.prompt_cache_key = prompt_cache_key
        self.prompt_cache_retention = prompt_cache_retention
        # In-memory retention: "5 to 10 minutes of inactivity"; extended: "up to 24 hours".
        self.cache_ttl_s = 86_400.0 if prompt_cache_retention == "24h" else 300.0
        self.system_role = system_role

    def format_message(self, message: Message) -> dict[str, Any]:
        """The OpenAI chat dict of a message; context events take the dynamic role."""
        if message.kind == "context":
            return {"role": self.dynamic_role, "content": self.context_text(message.text)}
        return message.to_dict()

    def format_static(self, static_system: str, tools: Any) -> Any:
        """The static system message (in ``system_role``) and the tools as given."""
        messages, formatted_tools = super().format_static(static_system, tools)
        for m in messages:
            m["role"] = self.system_role
        return (messages, formatted_tools)

    def request_options(self, state: State) -> dict[str, Any]:
        """``prompt_cache_key`` (the session id by default) and ``prompt_cache_retention``."""
        options: dict[str, Any] = {}
        key = self.prompt_cache_key
        if key is SESSION:
            options["prompt_cache_key"] = state.session_id
        elif isinstance(key, str):
            options["prompt_cache_key"] = key
        if self.prompt_cache_retention is not None:
            options["prompt_cache_retention"] = self.prompt_cache_retention
        return options

    def stream_options(self, stream: bool) -> dict[str, Any]:
        """``stream`` plus ``stream_options={"include_usage": True}`` so the last chunk has usage."""
        if stream:
            return {"stream": True, "stream_options": {"include_usage": True}}
        return {"stream": False}

    def prewarm_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The same prompt with ``max_completion_tokens=1`` and no streaming."""
        warm = {
            k: v
            for k, v in request.items()
            if k not in ("stream", "stream_options", "max_tokens", "max_completion_tokens")
        }
        warm["max_completion_tokens"] = 1
        return warm
