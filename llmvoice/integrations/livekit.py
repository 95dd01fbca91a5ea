"""LiveKit Agents: the Agent's LLM node gets its chat context in llmvoice's cache-stable order.

Use it from your ``Agent``'s ``llm_node``::

    class Assistant(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are Ava, the voice agent of Northwind.")
            self.llmvoice = LLMVoiceChatContext(target_ms=800)

        def llm_node(self, chat_ctx, tools, model_settings):
            return self.llmvoice.llm_node(self, chat_ctx, tools, model_settings)

    session.on("metrics_collected", lambda ev: assistant.llmvoice.on_metrics(ev.metrics))

Every turn, :meth:`LLMVoiceChatContext.prepare` takes in the chat items it has not seen (by item
id: messages, function calls, function call outputs), and returns a new ``ChatContext`` laid out as
static instructions, committed history, dynamic context (:meth:`~LLMVoiceChatContext.set_context`),
current turn. The session's own context is left as it is. If items it took in disappear or
change order (``truncate``, a summary), the state is rebuilt from the context. The LLM's metrics
(``ttft``, ``prompt_cached_tokens``) feed the :class:`~llmvoice.TTFTController`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from typing import Any

from livekit.agents import llm
from livekit.agents.metrics import LLMMetrics

from llmvoice.adapters.base import Usage
from llmvoice.control.controller import TTFTController
from llmvoice.errors import LLMVoiceError
from llmvoice.integrations._session import FrameworkSession
from llmvoice.manager import PromptManager

__all__ = ["LLMVoiceChatContext", "from_chat_items", "to_chat_items"]

_log = logging.getLogger("llmvoice.integrations")
_INSTRUCTION_ROLES = ("system", "developer")


def from_chat_items(items: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI chat messages for LiveKit chat items (consecutive function calls become one message).

    Messages keep their role and text; ``FunctionCall`` items become an assistant message with
    ``tool_calls``; ``FunctionCallOutput`` items become ``tool`` messages. Other items (agent
    handoffs, configuration updates) carry nothing for the model and are left out.
    """
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, llm.ChatMessage):
            out.append({"role": item.role, "content": item.text_content or ""})
        elif isinstance(item, llm.FunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") and last["content"] is None:
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, llm.FunctionCallOutput):
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return out


def to_chat_items(messages: Sequence[Mapping[str, Any]]) -> list[llm.ChatItem]:
    """LiveKit chat items for OpenAI chat messages, with ids stable across turns (``lv_<n>_<k>``)."""
    items: list[llm.ChatItem] = []
    for index, message in enumerate(messages):
        role = message["role"]
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content) if content is not None else ""
        if role == "tool":
            items.append(
                llm.FunctionCallOutput(id=f"lv_{index}", call_id=message["tool_call_id"], output=text, is_error=False)
            )
            continue
        if text or not message.get("tool_calls"):
            items.append(llm.ChatMessage(id=f"lv_{index}", role=role, content=[text]))
        for k, call in enumerate(message.get("tool_calls") or ()):
            function = call["function"]
            items.append(
                llm.FunctionCall(
                    id=f"lv_{index}_{k}", call_id=call["id"], name=function["name"], arguments=function["arguments"]
                )
            )
    return items


class LLMVoiceChatContext:
    """Keeps what a LiveKit agent sends its LLM in llmvoice's cache-stable order.

    Args:
        manager: the session's prompt manager (default: one built from the first context, whose
            leading system or developer messages, the agent's instructions, become the static
            system prompt).
        dynamic_mode: for the default manager: ``"per_turn"`` or ``"append"``.
        target_ms: the controller's P95 TTFT target (``None``: no controller).
        controller_options: more :class:`~llmvoice.TTFTController` options (``strategy``, ...).
    """

    def __init__(
        self,
        manager: PromptManager | None = None,
        *,
        dynamic_mode: str = "per_turn",
        target_ms: float | None = None,
        controller_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._session = FrameworkSession(manager, dynamic_mode, target_ms, controller_options)
        self._seen: list[str] | None = None  # ids of the items taken in; None: start again
        self._instructions: str | None = None

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

    def prepare(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """The chat context to send this turn, in cache order; ``chat_ctx`` itself is not changed.

        A context llmvoice cannot take in is returned as it is, with one warning logged.
        """
        items = [
            i for i in chat_ctx.items if isinstance(i, llm.ChatMessage | llm.FunctionCall | llm.FunctionCallOutput)
        ]
        leading: list[str] = []
        for item in items:
            if not isinstance(item, llm.ChatMessage) or item.role not in _INSTRUCTION_ROLES:
                break
            leading.append(item.text_content or "")
        instructions = "\n\n".join(leading)
        body = items[len(leading) :]
        ids = [i.id for i in body]
        seen = self._seen
        try:
            if seen is None or instructions != self._instructions or ids[: len(seen)] != seen:
                manager: PromptManager | None = self._session.restart(instructions, rewritten=seen is not None)
                self._instructions = instructions
                new = body
            else:
                manager = self._session.manager
                new = body[len(seen) :]
            assert manager is not None
            for message in from_chat_items(new):
                manager.append(message)
            self._seen = ids
            messages = self._session.build()
        except LLMVoiceError as exc:
            self._seen = None  # the next context is taken in afresh (what was held goes to the archive)
            _log.warning("llmvoice: the chat context cannot be taken in (%s); it is sent as it is", exc)
            return chat_ctx
        return llm.ChatContext(to_chat_items(messages))

    def on_metrics(self, metrics: Any) -> None:
        """Feed the controller from LiveKit's ``LLMMetrics`` (other metrics are ignored)."""
        if not isinstance(metrics, LLMMetrics):
            return
        usage = Usage(
            input_tokens=metrics.prompt_tokens,
            cached_tokens=metrics.prompt_cached_tokens,
            cache_write_tokens=metrics.cache_creation_tokens or None,
            output_tokens=metrics.completion_tokens,
        )
        # A request cancelled before its first token reports ttft -1: a censored sample.
        self._session.finish(None if metrics.ttft < 0 else metrics.ttft, usage)

    def llm_node(
        self,
        agent: Any,
        chat_ctx: llm.ChatContext,
        tools: list[Any],
        model_settings: Any,
        *,
        inner: Callable[..., Any] | None = None,
    ) -> AsyncIterable[Any]:
        """The agent's LLM node on the prepared context (``inner`` defaults to ``Agent.default.llm_node``)."""
        from livekit.agents import Agent  # noqa: PLC0415  (heavy; only when the node runs)

        node = inner if inner is not None else Agent.default.llm_node
        result: AsyncIterable[Any] = node(agent, self.prepare(chat_ctx), tools, model_settings)
        return result
