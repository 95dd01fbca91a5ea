"""An offline walk through a short voice call: ``python -m llmvoice.demo``.

Builds each turn's request for OpenAI and Anthropic, checks that the cached prefix of turn N is a
byte prefix of turn N+1, and prints the cache-prefix report per turn. No key, no network.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter, ProviderAdapter
from llmvoice.manager import PromptManager
from llmvoice.testing import breakpoint_offsets, prompt_bytes

__all__ = ["main"]

SYSTEM = (
    "You are Ava, the voice assistant of Northwind Outfitters. Speak in short, friendly sentences. "
    "Confirm order numbers digit by digit. Never read out more than three options at once."
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by its number.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        },
    }
]
CALL: list[tuple[str, list[dict[str, Any]]]] = [
    ("Caller: returning customer, premium tier.", [{"role": "user", "content": "Hi, I'm calling about my order."}]),
    (
        "Caller: returning customer, premium tier.",
        [
            {"role": "assistant", "content": "Of course. What's the order number?"},
            {"role": "user", "content": "It's 4 4 7 1 9."},
        ],
    ),
    (
        "Caller: returning customer, premium tier. Warehouse status: normal.",
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": '{"order_id":"44719"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status":"shipped","eta":"Thursday"}'},
        ],
    ),
    (
        "Caller: returning customer, premium tier. Warehouse status: normal.",
        [
            {"role": "assistant", "content": "Order 4 4 7 1 9 shipped and arrives Thursday."},
            {"role": "user", "content": "Great, can I change the delivery address?"},
        ],
    ),
]


def run(adapter: ProviderAdapter, out: TextIO) -> bool:
    """Play the call through ``adapter``; return whether every prefix stayed byte-stable."""
    manager = PromptManager(SYSTEM, adapter=adapter, tools=TOOLS, session_id="demo-call")
    provider = "anthropic" if isinstance(adapter, AnthropicAdapter) else "openai"
    previous: tuple[bytes, int] | None = None
    stable = True
    out.write(f"\n{adapter.name} ({adapter.model})\n")
    for turn, (context, messages) in enumerate(CALL, start=1):
        manager.append_many(messages)
        body = json.dumps(manager.build_request(context)).encode()
        report = manager.cache_prefix(context)
        prompt = prompt_bytes(body, provider)
        cut = max(breakpoint_offsets(body, provider, history_messages=report.messages), default=0)
        ok = previous is None or prompt[: previous[1]] == previous[0][: previous[1]]
        stable &= ok
        out.write(f"  turn {turn}: {report}; previous prefix {'kept' if ok else 'BROKEN'}\n")
        previous = (prompt, cut)
    return stable


def main(argv: list[str] | None = None) -> int:
    """Run the demo for OpenAI and Anthropic; exit 1 if a prefix broke."""
    out = sys.stdout
    out.write("llmvoice demo: a four-turn support call, built offline (no key, no network)\n")
    ok = run(OpenAIAdapter("gpt-4o-mini"), out) & run(AnthropicAdapter("claude-sonnet-4-6"), out)
    out.write("\nEvery turn's cached prefix is a byte prefix of the next turn's.\n" if ok else "\nA prefix broke.\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
