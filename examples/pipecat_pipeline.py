"""llmvoice in a Pipecat pipeline, offline: five turns through a scripted LLM service.

    pip install -e ".[pipecat]" && python examples/pipecat_pipeline.py

Swap ``ScriptedLLM`` for a real service (``OpenAILLMService``, ``AnthropicLLMService``) and add
``llmvoice.observer()`` to your ``PipelineTask`` to feed the TTFT controller.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipecat.frames.frames import LLMContextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test

from llmvoice.integrations.pipecat import LLMVoiceProcessor


class ScriptedLLM(FrameProcessor):
    """Stands in for the LLM service: prints what it would send."""

    async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
        """Print the context of each LLM call, then pass the frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            messages = frame.context.get_messages()
            shown = " | ".join(f"{m['role']}: {m['content']}" for m in messages)
            print(f"{len(json.dumps(messages)):5d} bytes: {shown}")
        await self.push_frame(frame, direction)


async def main() -> None:
    """Five turns: the aggregators' messages go in, the cache-ordered context comes out."""
    llmvoice = LLMVoiceProcessor()
    context = LLMContext([{"role": "system", "content": "You are Ava, the voice agent of Northwind."}])
    for turn in range(5):
        llmvoice.set_context(f"Caller status at turn {turn}: premium tier")
        context.add_message({"role": "user", "content": f"question {turn}"})  # what the user aggregator adds
        await run_test(Pipeline([llmvoice, ScriptedLLM()]), frames_to_send=[LLMContextFrame(context=context)])
        context.add_message({"role": "assistant", "content": f"answer {turn}"})  # the assistant aggregator


if __name__ == "__main__":
    asyncio.run(main())
