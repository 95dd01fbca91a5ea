"""llmvoice: faster, cheaper voice agents through cache-stable prompts.

Every request is laid out as static system → committed history → dynamic context → recent
turns, so the provider's prompt cache keeps hitting the whole history; provider adapters place
the cache markers.
"""

from llmvoice import functional
from llmvoice.adapters import (
    AnthropicAdapter,
    CachePrefixReport,
    OpenAIAdapter,
    OpenAICompatibleAdapter,
    ProviderAdapter,
    Usage,
)
from llmvoice.control import TTFTController, wrap
from llmvoice.errors import (
    AdapterError,
    ConfigurationError,
    InvalidMessageError,
    LLMVoiceError,
    LLMVoiceWarning,
    PendingToolCallsError,
    StateClosedError,
    StateFormatError,
    StateVersionError,
    TokenizerFallbackWarning,
    ToolCallError,
)
from llmvoice.manager import PromptManager
from llmvoice.messages import Message, ToolCall
from llmvoice.state import SCHEMA_VERSION, State

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "AdapterError",
    "AnthropicAdapter",
    "CachePrefixReport",
    "ConfigurationError",
    "InvalidMessageError",
    "LLMVoiceError",
    "LLMVoiceWarning",
    "Message",
    "OpenAIAdapter",
    "OpenAICompatibleAdapter",
    "PendingToolCallsError",
    "PromptManager",
    "ProviderAdapter",
    "State",
    "StateClosedError",
    "StateFormatError",
    "StateVersionError",
    "TTFTController",
    "TokenizerFallbackWarning",
    "ToolCall",
    "ToolCallError",
    "Usage",
    "__version__",
    "functional",
    "wrap",
]
