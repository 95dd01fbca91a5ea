"""OpenAI-compatible servers: vLLM, SGLang, llama.cpp (and others speaking Chat Completions)."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from llmvoice.adapters.base import Usage, get_field
from llmvoice.adapters.openai import OpenAIAdapter
from llmvoice.errors import ConfigurationError
from llmvoice.state import State
from llmvoice.tokens import TokenCounter

__all__ = ["OpenAICompatibleAdapter"]

_SERVERS: Final[frozenset[str]] = frozenset({"vllm", "sglang", "llamacpp"})

# vLLM caches full 16-token KV blocks only ("We only cache full blocks"):
# https://docs.vllm.ai/en/latest/design/prefix_caching/
VLLM_BLOCK_TOKENS: Final[int] = 16


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Requests for ``OpenAI(base_url=adapter.base_url).chat.completions.create(**request)``.

    Self-hosted engines cache prefixes by tokens: vLLM by full 16-token blocks, SGLang in a radix
    tree, llama.cpp by the longest common prefix with the slot's previous prompt. Usage is read
    from ``usage.prompt_tokens_details.cached_tokens`` (vLLM with ``--enable-prompt-tokens-details``,
    SGLang with ``--enable-cache-report``, recent llama.cpp) or llama.cpp's ``timings.cache_n``;
    when a server reports neither, cached tokens are ``None`` (unknown), never 0.

    Args:
        base_url: the server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name.
        server: ``"vllm"``, ``"sglang"``, ``"llamacpp"`` or ``None``; ``"llamacpp"`` sends
            ``cache_prompt`` (through ``extra_body``).
        cache_prompt: override llama.cpp's ``cache_prompt`` (default ``True`` for llama.cpp).
        dynamic_role: role of the dynamic context; ``"user"`` by default, because many chat
            templates refuse a system message after the first.
    """

    name: ClassVar[str] = "openai-compatible"
    min_cacheable_tokens = 0

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        server: str | None = None,
        cache_prompt: bool | None = None,
        dynamic_role: str = "user",
        dynamic_template: str = "<context>\n{context}\n</context>",
        counter: TokenCounter | None = None,
    ) -> None:
        if server is not None and server not in _SERVERS:
            raise ConfigurationError(f"server must be one of {sorted(_SERVERS)} or None, not {server!r}")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must be an http(s) URL, not {base_url!r}")
        super().__init__(
            model,
            prompt_cache_key=None,
            dynamic_role=dynamic_role,
            dynamic_template=dynamic_template,
            counter=counter,
        )
        self.base_url = base_url
        self.server = server
        self.cache_ttl_s = None  # a self-hosted cache evicts under memory pressure, not by time
        self.serial = server == "llamacpp"  # one slot: one request at a time
        self.cache_prompt = cache_prompt if cache_prompt is not None else (True if server == "llamacpp" else None)

    def request_options(self, state: State) -> dict[str, Any]:
        """``extra_body={"cache_prompt": ...}`` for llama.cpp; nothing else by default."""
        if self.cache_prompt is None:
            return {}
        return {"extra_body": {"cache_prompt": self.cache_prompt}}

    def parse_usage(self, response: Any) -> Usage | None:
        """OpenAI usage fields, or llama.cpp ``timings`` (``prompt_n`` + ``cache_n``)."""
        usage = super().parse_usage(response)
        cache_n = get_field(response, "timings", "cache_n")
        prompt_n = get_field(response, "timings", "prompt_n")
        if isinstance(cache_n, int) and (usage is None or usage.cached_tokens is None):
            total = usage.input_tokens if usage is not None and usage.input_tokens is not None else None
            if total is None and isinstance(prompt_n, int):
                total = prompt_n + cache_n
            output = usage.output_tokens if usage is not None else None
            return Usage(total, cache_n, None, output)
        return usage

    def prewarm_request(self, request: Any) -> dict[str, Any]:
        """The same prompt with ``max_tokens=1`` (a prefill that fills the server's cache)."""
        warm = {k: v for k, v in request.items() if k not in ("stream", "stream_options", "max_completion_tokens")}
        warm["max_tokens"] = 1
        return warm
