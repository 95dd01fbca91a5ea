"""llmvoice in a LiveKit agent's LLM node; run offline, it prints three turns' contexts.

    pip install -e ".[livekit]" && python examples/livekit_agent.py

In a real agent, keep the ``Assistant`` class and wire the metrics:
``session.on("metrics_collected", lambda ev: assistant.llmvoice.on_metrics(ev.metrics))``.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, llm

from llmvoice.integrations.livekit import LLMVoiceChatContext, from_chat_items


class Assistant(Agent):
    """An agent whose LLM node gets its context in cache order."""

    def __init__(self) -> None:
        super().__init__(instructions="You are Ava, the voice agent of Northwind.")
        self.llmvoice = LLMVoiceChatContext(target_ms=800)

    def llm_node(self, chat_ctx: llm.ChatContext, tools: list[Any], model_settings: Any) -> Any:
        """Send the prepared context through the default LLM node."""
        return self.llmvoice.llm_node(self, chat_ctx, tools, model_settings)


def main() -> None:
    """Three turns of a chat context prepared for the LLM."""
    adapter = LLMVoiceChatContext()
    chat_ctx = llm.ChatContext()
    chat_ctx.add_message(role="system", content="You are Ava, the voice agent of Northwind.")
    for turn in range(3):
        adapter.set_context(f"Caller status at turn {turn}: premium tier")
        chat_ctx.add_message(role="user", content=f"question {turn}")
        prepared = adapter.prepare(chat_ctx)
        print(" | ".join(f"{m['role']}: {m['content']}" for m in from_chat_items(prepared.items)))
        chat_ctx.add_message(role="assistant", content=f"answer {turn}")


if __name__ == "__main__":
    main()
