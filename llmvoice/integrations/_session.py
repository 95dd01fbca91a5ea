"""What the framework integrations share: the session's manager, its controller, and resyncs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from llmvoice import functional as fn
from llmvoice.adapters.base import Usage
from llmvoice.control.controller import TTFTController
from llmvoice.errors import LLMVoiceError
from llmvoice.manager import PromptManager

_log = logging.getLogger("llmvoice.integrations")


class FrameworkSession:
    """One conversation as a framework integration keeps it in step with the framework's context.

    Attributes:
        manager: the prompt manager, once the first context arrived (or the one given).
        controller: the TTFT controller, when ``target_ms`` is given and a context arrived.
        resyncs: how many times the state was rebuilt because the context was rewritten elsewhere.
        context: the dynamic context of the next turns.
    """

    def __init__(
        self,
        manager: PromptManager | None,
        dynamic_mode: str,
        target_ms: float | None,
        controller_options: Mapping[str, Any] | None,
    ) -> None:
        self.manager = manager
        self.dynamic_mode = dynamic_mode
        self.target_ms = target_ms
        self.controller_options = dict(controller_options or {})
        self.controller: TTFTController | None = None
        self.resyncs = 0
        self.context: str | None = None
        self.in_turn = False

    def restart(self, static_system: str | None, *, rewritten: bool) -> PromptManager:
        """Start again from a context the framework rewrote: a new epoch, the old blocks archived.

        Without a manager, one is built. Otherwise the session keeps its id, options and id
        counter, every block the state held moves into the archive (nothing is lost) and a new
        epoch starts, since the prefix changes. ``static_system`` ``None`` keeps the current one;
        ``rewritten`` counts a resync (not the first context a given manager sees).
        """
        if self.manager is None:
            self.manager = PromptManager(static_system or "", dynamic_mode=self.dynamic_mode)
            return self.manager
        if rewritten:
            self.resyncs += 1
            _log.info("the LLM context was rewritten outside llmvoice; rebuilding its state (a new prefix)")
        old = self.manager.state
        fresh = fn.new_state(
            old.static_system if static_system is None else static_system,
            tools=[dict(t) for t in old.tools],
            transition_mode=old.transition_mode,
            dynamic_mode=old.dynamic_mode,
            session_id=old.session_id,
            tool_output_limit=old.tool_output_limit,
        )
        self.manager.state = fresh.evolve(
            epoch=old.epoch + 1, next_id=old.next_id, archive=old.archive.extend([*old.committed, *old.recent])
        )
        return self.manager

    def build(self) -> list[dict[str, Any]]:
        """This turn's messages in cache order; with a controller its turn starts here."""
        assert self.manager is not None
        if self.target_ms is None:
            return self.manager.build_messages(self.context)
        if self.controller is None or self.controller.manager is not self.manager:
            options = {"prewarm": False, **self.controller_options}
            self.controller = TTFTController(self.manager, target_ms=self.target_ms, **options)
        request = self.controller.begin_turn(dynamic_context=self.context)
        self.in_turn = True
        return list(request["messages"])

    def finish(self, ttft_s: float | None, usage: Usage | None) -> None:
        """End the controller's turn with its first-token time (``None``: censored) and usage."""
        controller = self.controller
        if controller is None or not self.in_turn:
            return
        self.in_turn = False
        try:
            controller.record(ttft_s=ttft_s, usage=usage, censored=ttft_s is None)
            controller.end_turn()
        except LLMVoiceError as exc:  # a metric out of turn must never break the framework
            _log.warning("llmvoice: LLM metrics could not be recorded (%s)", exc)
