"""Provider adapters: the one seam between llmvoice's state and a provider's request shape."""

from llmvoice.adapters.anthropic import AnthropicAdapter, anthropic_min_cacheable_tokens
from llmvoice.adapters.base import CachePrefixReport, Prompt, ProviderAdapter, Usage
from llmvoice.adapters.openai import OpenAIAdapter
from llmvoice.adapters.openai_compatible import OpenAICompatibleAdapter

__all__ = [
    "AnthropicAdapter",
    "CachePrefixReport",
    "OpenAIAdapter",
    "OpenAICompatibleAdapter",
    "Prompt",
    "ProviderAdapter",
    "Usage",
    "anthropic_min_cacheable_tokens",
]
