"""wrap(): the drop-in path, an app's ever-growing message list around its own LLM function."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.control.wrap import wrap
from llmvoice.errors import ConfigurationError, InvalidMessageError
from llmvoice.tokens import EstimateCounter

SYSTEM = {"role": "system", "content": "You are Ava."}


class Clock:
    """A fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


class FakeLLM:
    """Records what it is sent; answers with a stream (or a full response) on the fake clock."""

    def __init__(self, clock: Clock, *, stream: bool = True) -> None:
        self.clock = clock
        self.stream = stream
        self.sent: list[list[dict[str, Any]]] = []
        self.kwargs: list[dict[str, Any]] = []

    async def __call__(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        self.sent.append(list(messages))
        self.kwargs.append(kwargs)
        if not self.stream:
            self.clock.now += 0.7
            return {"choices": [{"message": {"role": "assistant", "content": "Sure."}}]}
        return self._stream()

    async def _stream(self) -> AsyncIterator[Any]:
        self.clock.now += 0.4
        yield chunk("Sure")
        self.clock.now += 0.1
        yield chunk(".")


async def drain(stream: Any) -> str:
    return "".join([c["choices"][0]["delta"]["content"] async for c in stream])


def managed_llm(**options: Any) -> tuple[Any, FakeLLM, Clock]:
    clock = Clock()
    llm = FakeLLM(clock, stream=options.pop("stream", True))
    adapter = OpenAIAdapter(counter=EstimateCounter())
    return wrap(llm, 800, adapter=adapter, clock=clock, **options), llm, clock


async def test_first_call_sends_the_apps_messages() -> None:
    """The first call sends the system prompt and the user's message, in the cache-stable layout."""
    managed, llm, _ = managed_llm()
    text = await drain(await managed([SYSTEM, {"role": "user", "content": "Hi"}], temperature=0.2))
    assert (text, llm.sent[0], llm.kwargs[0]) == (
        "Sure.",
        [SYSTEM, {"role": "user", "content": "Hi"}],
        {"temperature": 0.2},
    )


async def test_growing_list_appends_only_what_is_new() -> None:
    """The second call sends the whole conversation, the reply included, once each."""
    managed, llm, _ = managed_llm()
    history: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Hi"}]
    reply = await drain(await managed(history))
    history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "Where is my order?"}]
    await drain(await managed(history))
    assert llm.sent[1] == history


async def test_turns_are_measured() -> None:
    """Each streamed call is one measured turn: TTFT 400 ms on the fake clock."""
    managed, _, _ = managed_llm()
    history: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Hi"}]
    await drain(await managed(history))
    stats = managed.stats()
    assert (stats.turns, round(stats.p50_ms)) == (1, 400)


async def test_full_responses_pass_through() -> None:
    """A non-streamed response is returned unchanged and timed as a whole."""
    managed, _, _ = managed_llm(stream=False)
    response = await managed([SYSTEM, {"role": "user", "content": "Hi"}])
    assert response["choices"][0]["message"]["content"] == "Sure."
    assert round(managed.stats().p50_ms) == 700


async def test_edited_history_starts_a_new_session() -> None:
    """When the app rewrites an earlier message, llmvoice starts over from the new list."""
    managed, llm, _ = managed_llm()
    await drain(await managed([SYSTEM, {"role": "user", "content": "Hi"}]))
    edited = [SYSTEM, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Sure."}]
    edited.append({"role": "user", "content": "Again"})
    await drain(await managed(edited))
    assert (llm.sent[1], managed.stats().turns) == (edited, 1)


async def test_llm_error_is_re_raised_and_counted() -> None:
    """An exception from llm_fn reaches the app; the turn is counted, censored."""

    async def broken(messages: Any, **kwargs: Any) -> Any:
        raise ConnectionError("down")

    managed = wrap(broken, 800, adapter=OpenAIAdapter(counter=EstimateCounter()), clock=Clock())
    with pytest.raises(ConnectionError, match="down"):
        await managed([SYSTEM, {"role": "user", "content": "Hi"}])
    assert managed.controller.history[0].censored is True


async def test_bad_message_is_refused_without_change() -> None:
    """A malformed message raises an llmvoice error and the session is as it was."""
    managed, _, _ = managed_llm()
    await drain(await managed([SYSTEM, {"role": "user", "content": "Hi"}]))
    before = managed.controller.manager.state
    with pytest.raises(InvalidMessageError):
        await managed([SYSTEM, {"role": "user", "content": "Hi"}, {"role": "wizard", "content": "?"}])
    assert managed.controller.manager.state is before


def test_report_before_any_call() -> None:
    """report() says there is nothing yet; stats() is None."""
    managed, _, _ = managed_llm()
    assert (managed.report(), managed.stats()) == ("no turns yet", None)


def test_anthropic_adapter_is_refused() -> None:
    """wrap() sends OpenAI chat messages, so an Anthropic adapter is a clear error."""
    with pytest.raises(ConfigurationError, match=r"for Anthropic use TTFTController.turn\(\)"):
        wrap(FakeLLM(Clock()), 800, adapter=AnthropicAdapter(counter=EstimateCounter()))


def test_bad_option_fails_at_wrap_time() -> None:
    """An invalid controller option is refused when wrapping, not at the first call."""
    with pytest.raises(ConfigurationError, match="target_ms must be positive, not -5"):
        wrap(FakeLLM(Clock()), -5)


async def test_prewarm_goes_through_send_prewarm() -> None:
    """With send_prewarm, a planned cut's pre-warm is sent in the background after the turn."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def warm(request: dict[str, Any]) -> None:
        sent.append(request)

    managed, _, _ = managed_llm(max_context_tokens=300, send_prewarm=warm)
    history: list[dict[str, Any]] = [SYSTEM]
    for index in range(6):
        history.append({"role": "user", "content": f"question {index} " + "about the order " * 20})
        reply = await drain(await managed(history))
        history.append({"role": "assistant", "content": reply})
        await asyncio.sleep(0)  # the reply plays: background work runs
    counters = managed.controller.counters
    assert (len(sent), counters["prewarms"], counters["rebases"]) == (2, 2, 2)
    assert [w["max_completion_tokens"] for w in sent] == [1, 1]
