"""Pipecat: a frame processor that hands the LLM a cache-stable context every turn.

Place it between the user context aggregator and the LLM service::

    llmvoice = LLMVoiceProcessor()
    pipeline = Pipeline([transport.input(), stt, user_aggregator, llmvoice, llm, tts,
                         transport.output(), assistant_aggregator])

On every :class:`~pipecat.frames.frames.LLMContextFrame` going downstream it appends the
messages the aggregators added since the last turn to an llmvoice
:class:`~llmvoice.PromptManager`, and rewrites the context's messages in llmvoice's order:
static system prompt, committed history, dynamic context (:meth:`LLMVoiceProcessor.set_context`),
recent turns. The aggregators keep appending to the same context, so what they add lands after
the cached prefix. A tool result still ``IN_PROGRESS`` (Pipecat fills it in place later) is left
where it is and taken in once it has its content. If something else rewrote the context (a
``LLMMessagesUpdateFrame``, Pipecat's own summarizer), the state is rebuilt from it. A context
llmvoice cannot take in (for instance a tool result without its call) is passed on unchanged,
with one warning: the processor never breaks the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMEnablePromptCachingFrame,
    LLMFullResponseEndFrame,
    MetricsFrame,
)
from pipecat.metrics.metrics import LLMUsageMetricsData, TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_context import LLMContext, LLMSpecificMessage
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService

from llmvoice.adapters.base import Usage
from llmvoice.control.controller import TTFTController
from llmvoice.errors import LLMVoiceError
from llmvoice.integrations._session import FrameworkSession
from llmvoice.manager import PromptManager

__all__ = ["LLMVoiceMetricsObserver", "LLMVoiceProcessor"]

_log = logging.getLogger("llmvoice.integrations")

#: The content Pipecat gives a tool result while the function still runs.
IN_PROGRESS: Final[str] = "IN_PROGRESS"


def _starts_with(messages: list[Any], known: list[dict[str, Any]]) -> bool:
    """Whether ``messages`` begins with ``known`` (the very objects written last turn, or equal ones)."""
    return len(messages) >= len(known) and all(a is b or a == b for a, b in zip(messages, known, strict=False))


def _pending(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "tool" and message.get("content") == IN_PROGRESS


class LLMVoiceProcessor(FrameProcessor):
    """Keeps the LLM context of a Pipecat pipeline in llmvoice's cache-stable order.

    With ``target_ms`` a :class:`~llmvoice.TTFTController` steers the history; add
    :meth:`observer` to the ``PipelineTask``'s observers so the LLM service's own TTFB and usage
    metrics (``enable_metrics`` and ``enable_usage_metrics``) reach it.

    Args:
        manager: the session's prompt manager (default: one built from the first context: its
            leading system messages become the static system prompt).
        dynamic_mode: for the default manager: ``"per_turn"`` or ``"append"``.
        target_ms: the controller's P95 TTFT target (``None``: no controller).
        controller_options: more :class:`~llmvoice.TTFTController` options (``strategy``, ...).
        enable_prompt_caching: before the first context, send ``LLMEnablePromptCachingFrame``
            so a service with an explicit cache switch (Anthropic) turns its prompt caching on.
        **kwargs: passed to :class:`~pipecat.processors.frame_processor.FrameProcessor`.
    """

    def __init__(
        self,
        manager: PromptManager | None = None,
        *,
        dynamic_mode: str = "per_turn",
        target_ms: float | None = None,
        controller_options: Mapping[str, Any] | None = None,
        enable_prompt_caching: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.enable_prompt_caching = enable_prompt_caching
        self._caching_sent = False
        self._session = FrameworkSession(manager, dynamic_mode, target_ms, controller_options)
        self._ttfb: float | None = None
        self._usage: Usage | None = None
        self._assembled: list[dict[str, Any]] | None = None
        self._warned = False

    @property
    def manager(self) -> PromptManager | None:
        """The prompt manager, once the first context arrived (or the one given)."""
        return self._session.manager

    @property
    def controller(self) -> TTFTController | None:
        """The TTFT controller, when ``target_ms`` is given and a context arrived."""
        return self._session.controller

    @property
    def resyncs(self) -> int:
        """How many times the state was rebuilt because the context was rewritten elsewhere."""
        return self._session.resyncs

    def set_context(self, dynamic_context: str | None) -> None:
        """The dynamic context (RAG results, caller state) of the next turns; ``None`` for none."""
        self._session.context = dynamic_context

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Rewrite downstream LLM contexts in cache order; pass every frame on, in order."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM and not frame.speculation:
            if self.enable_prompt_caching and not self._caching_sent:
                # Services with an explicit cache switch (Anthropic's cache_control) turn it on.
                self._caching_sent = True
                await self.push_frame(LLMEnablePromptCachingFrame(enable=True), direction)
            self._sync(frame.context)
        elif isinstance(frame, InterruptionFrame):
            self._on_response_end(interrupted=True)
        await self.push_frame(frame, direction)

    # -- keeping the state in step with the context ---------------------------------------------

    def _sync(self, context: LLMContext) -> None:
        messages = list(context.get_messages())
        if any(isinstance(m, LLMSpecificMessage) for m in messages):
            self._warn("the context holds provider-specific messages; it is passed on as it is")
            return
        try:
            tail = self._new_messages(messages)
            taken = 0
            for message in tail:
                if _pending(message):
                    break
                assert self.manager is not None
                self.manager.append(message)
                taken += 1
            assert self.manager is not None
            assembled = self._build()
        except LLMVoiceError as exc:
            self._assembled = None  # start again from the next context
            self._warn(f"the context cannot be taken in ({exc}); it is passed on as it is")
            return
        self._assembled = assembled
        written: list[Any] = [*assembled, *tail[taken:]]
        context.set_messages(written)

    def _build(self) -> list[dict[str, Any]]:
        """This turn's messages; with a controller, its turn starts here (a due cut switches now)."""
        self._ttfb, self._usage = None, None
        return self._session.build()

    # -- metrics, through the observer ----------------------------------------------------------

    def observer(self) -> BaseObserver:
        """A Pipecat observer that hands the LLM service's TTFB and usage metrics to the controller."""
        return LLMVoiceMetricsObserver(self)

    def _on_metrics(self, frame: MetricsFrame) -> None:
        for data in frame.data:
            if isinstance(data, TTFBMetricsData) and self._ttfb is None:
                self._ttfb = float(data.value)
            elif isinstance(data, LLMUsageMetricsData):
                usage = data.value
                cached = usage.cache_read_input_tokens
                self._usage = Usage(
                    input_tokens=usage.total_tokens - usage.completion_tokens,  # gross on every service
                    cached_tokens=cached if cached is not None else None,
                    cache_write_tokens=usage.cache_creation_input_tokens,
                    output_tokens=usage.completion_tokens,
                )

    def _on_response_end(self, *, interrupted: bool = False) -> None:
        """End the controller's turn: at the end of the response, or at a barge-in.

        A barge-in before the first token records a censored sample (the time waited so far);
        the part of the reply that was spoken comes back with the next context, as Pipecat's
        assistant aggregator commits it.
        """
        if self._ttfb is None and not interrupted:
            return
        self._session.finish(self._ttfb, self._usage)
        self._ttfb, self._usage = None, None

    def _new_messages(self, messages: list[Any]) -> list[Any]:
        """The messages added since the last turn; rebuilds the state when the context was rewritten."""
        known = self._assembled
        if known is not None and self.manager is not None and _starts_with(messages, known):
            return messages[len(known) :]
        system: list[str] = []
        rest = list(messages)
        while rest and rest[0].get("role") == "system" and isinstance(rest[0].get("content"), str):
            system.append(rest.pop(0)["content"])
        self._session.restart("\n\n".join(system) if system else None, rewritten=known is not None)
        return rest

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            _log.warning("llmvoice: %s", text)


class LLMVoiceMetricsObserver(BaseObserver):
    """Passes the LLM service's metrics frames and response ends to an :class:`LLMVoiceProcessor`.

    Args:
        processor: the processor whose controller gets the figures.
    """

    def __init__(self, processor: LLMVoiceProcessor) -> None:
        super().__init__(observe_every_push=False)
        self.processor = processor

    async def on_push_frame(self, data: FramePushed) -> None:
        """Route metrics and the end of each response that an LLM service pushes."""
        if not isinstance(data.source, LLMService):
            return
        if isinstance(data.frame, MetricsFrame):
            self.processor._on_metrics(data.frame)
        elif isinstance(data.frame, LLMFullResponseEndFrame):
            self.processor._on_response_end()
