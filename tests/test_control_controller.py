"""The TTFT controller on a fake clock: measurement bookkeeping, cuts, pre-warms, rollback, reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmvoice import PromptManager
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter, Usage
from llmvoice.compaction import (
    CompactionInput,
    Outcome,
    Replace,
    Strategy,
    SummariseStrategy,
    SummaryJob,
    Wait,
    WindowStrategy,
    covered_ids,
)
from llmvoice.control.controller import TTFTController
from llmvoice.control.model import LatencyPrior
from llmvoice.errors import ConfigurationError
from llmvoice.functional import summary_message
from llmvoice.tokens import EstimateCounter

SYSTEM = "You are Ava, the voice assistant of Northwind Outfitters."
# 0.4 s + 0.1 ms per uncached + 0.01 ms per cached token, trusted far beyond the data.
PRIOR = LatencyPrior(0.4, 1e-4, 1e-5, weight=1e6)
WORDS = "tent stove pack boots " * 100  # 2,200 characters: 550 estimated tokens


class Clock:
    """A fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(**options: Any) -> tuple[TTFTController, Clock]:
    clock = Clock()
    manager = PromptManager(SYSTEM, adapter=OpenAIAdapter(counter=EstimateCounter()), session_id="s1")
    values: dict[str, Any] = {
        "target_ms": 800,
        "clock": clock,
        "prior": PRIOR,
        "min_turns_between_cuts": 0,
        "headroom": 0.95,
    }
    values.update(options)
    return TTFTController(manager, **values), clock


def turn(
    controller: TTFTController, clock: Clock, index: int, *, ttft: float = 0.5, text: str = WORDS
) -> list[dict[str, Any]]:
    """One voice turn: user message, a request answered after ``ttft``, the reply, end of turn."""
    clock.now += 10.0
    controller.begin_turn({"role": "user", "content": f"question {index}: {text}"})
    clock.now += ttft
    controller.record(ttft_s=ttft)
    controller.append({"role": "assistant", "content": f"answer {index}: {text}"})
    return controller.end_turn()


def turns_until_cut(controller: TTFTController, clock: Clock, limit: int = 60) -> int:
    for index in range(limit):
        if turn(controller, clock, index):
            return index
    raise AssertionError("no cut was planned")


# -- the synchronous core ------------------------------------------------------------------------


def test_begin_turn_returns_the_managers_request() -> None:
    """begin_turn appends the user's message and returns what the manager builds."""
    controller, _ = make()
    request = controller.begin_turn({"role": "user", "content": "Hi"}, dynamic_context="VIP")
    assert request["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "system", "content": "VIP"},
        {"role": "user", "content": "Hi"},
    ]


def test_record_reads_cached_tokens_from_usage() -> None:
    """Reported usage is taken as is."""
    controller, _ = make()
    controller.begin_turn({"role": "user", "content": "Hi"})
    controller.record(ttft_s=0.5, usage=Usage(input_tokens=2000, cached_tokens=1536))
    controller.append({"role": "assistant", "content": "Hello"})
    controller.end_turn()
    record = controller.history[0]
    assert (record.input_tokens, record.cached_tokens, record.estimated) == (2000, 1536, False)


def test_cached_tokens_are_estimated_without_usage() -> None:
    """Without usage the cached tokens are the prefix the previous request carried (1,127 tokens)."""
    controller, clock = make()
    for index in range(3):
        turn(controller, clock, index)
    assert [(r.estimated, r.cached_tokens) for r in controller.history] == [(True, 0), (True, 0), (True, 1127)]


def test_estimate_respects_the_minimum_cacheable_length() -> None:
    """A 571-token prefix is below OpenAI's 1,024-token minimum: estimated uncached."""
    controller, clock = make()
    turn(controller, clock, 0)
    turn(controller, clock, 1)
    assert controller.history[1].cached_tokens == 0


def test_estimate_is_zero_after_the_ttl() -> None:
    """A request sent more than the adapter's TTL after the last one is estimated cold."""
    controller, clock = make()
    turn(controller, clock, 0)
    clock.now += 301.0
    turn(controller, clock, 1)
    assert controller.history[1].cached_tokens == 0


def test_keep_while_under_target() -> None:
    """Short turns under the target need no cut and no background request."""
    controller, clock = make()
    assert turn(controller, clock, 0, text="hi") == []
    assert controller.history[0].action == "keep"


def test_cut_is_planned_when_the_prediction_exceeds_the_target() -> None:
    """With 1,100-token turns the target (x 0.95 headroom) is predicted to fail at turn 6."""
    controller, clock = make()
    assert turns_until_cut(controller, clock) == 6
    assert controller.history[-1].reason == (
        "rebase: predicted P95 761 ms > 760 ms; cut 8 of 14 blocks, keep 3,336 history tokens"
    )


def test_cut_waits_for_its_prewarm() -> None:
    """Until prewarmed() the next turn still uses the old prefix (epoch 0)."""
    controller, clock = make()
    turns_until_cut(controller, clock)
    controller.begin_turn({"role": "user", "content": "next"})
    assert controller.manager.state.epoch == 0


def test_prewarm_request_is_the_new_prefix() -> None:
    """The pre-warm carries the cut history and asks for one token."""
    controller, clock = make()
    index = 0
    while not (warms := turn(controller, clock, index)):
        index += 1
    (warm,) = warms
    assert (warm["max_completion_tokens"], warm["messages"][0], len(warm["messages"])) == (
        1,
        {"role": "system", "content": SYSTEM},
        7,
    )


def test_switch_after_prewarm() -> None:
    """After prewarmed() the next turn starts a new epoch with the head archived."""
    controller, clock = make()
    turns_until_cut(controller, clock)
    controller.prewarmed()
    request = controller.begin_turn({"role": "user", "content": "next"})
    state = controller.manager.state
    assert (state.epoch, len(state.archive), len(request["messages"])) == (1, 8, 8)
    assert controller.stats().rebases == 1


def test_without_prewarm_the_cut_applies_at_once() -> None:
    """prewarm=False hands out no request and switches at the next turn."""
    controller, clock = make(prewarm=False)
    index = 0
    while controller.history == () or controller.history[-1].action != "rebase":
        assert turn(controller, clock, index) == []
        index += 1
    controller.begin_turn({"role": "user", "content": "next"})
    assert controller.manager.state.epoch == 1


def test_summary_replaces_the_cut_span() -> None:
    """A summarise strategy's text becomes a summary block covering every cut message."""
    seen: list[int] = []

    def summarize(job: SummaryJob) -> str:
        seen.append(len(job.span))
        return "The caller asked about tents."

    controller, clock = make(strategy=SummariseStrategy(summarize, background=False))
    turns_until_cut(controller, clock)
    controller.prewarmed()
    controller.begin_turn({"role": "user", "content": "next"})
    head = controller.manager.state.committed[0]
    assert (head.kind, head.covers, seen) == ("summary", tuple(range(8)), [8])


def test_failing_summary_leaves_the_history_unchanged() -> None:
    """A summary that raises means no cut (and no pre-warm); the turn is not broken."""

    def broken(job: SummaryJob) -> str:
        raise RuntimeError("model offline")

    strategy = SummariseStrategy(broken, background=False)
    controller, clock = make(strategy=strategy)
    for index in range(8):
        turn(controller, clock, index)
    assert (controller.manager.state.epoch, controller.counters["rebases"], strategy.counts["failed"]) == (0, 0, 2)
    assert controller.history[-1].reason.endswith("summarise: backing off 10.0 s after 2 failures")


def test_failing_summary_uses_the_fallback() -> None:
    """With a window fallback, a failed summary still cuts, plainly."""

    def broken(job: SummaryJob) -> str:
        raise RuntimeError("model offline")

    strategy = SummariseStrategy(broken, background=False, fallback=WindowStrategy())
    controller, clock = make(strategy=strategy)
    turns_until_cut(controller, clock)
    controller.prewarmed()
    controller.begin_turn({"role": "user", "content": "next"})
    assert (controller.manager.state.epoch, controller.manager.state.committed[0].kind) == (1, "message")


class _HeldStrategy(Strategy):
    """Waits for ``release`` before it gives its replacement."""

    name = "held"

    def __init__(self) -> None:
        self.ready = False
        self.cuts: list[int] = []

    def compact(self, data: CompactionInput) -> Outcome:
        self.cuts.append(data.cut)
        if not self.ready:
            return Wait("still working")
        return Replace((summary_message("held summary", covered_ids(data.span)),))


def test_a_waiting_strategy_holds_the_same_cut() -> None:
    """While the strategy waits, the controller keeps the history and asks again for the same cut."""
    strategy = _HeldStrategy()
    controller, clock = make(strategy=strategy)
    index = 0
    while not strategy.cuts:
        turn(controller, clock, index)
        index += 1
    assert controller.history[-1].reason.endswith("still working")
    turn(controller, clock, index)
    strategy.ready = True
    warms = turn(controller, clock, index + 1)
    assert (len(set(strategy.cuts)), len(strategy.cuts), len(warms)) == (1, 3, 1)


def test_a_raising_strategy_keeps_the_history() -> None:
    """A strategy that raises is logged; the turn ends normally and nothing is cut."""

    class Broken(Strategy):
        name = "broken"

        def compact(self, data: CompactionInput) -> Outcome:
            raise RuntimeError("bug")

    controller, clock = make(strategy=Broken())
    for index in range(8):
        turn(controller, clock, index)
    assert (controller.manager.state.epoch, controller.history[-1].reason) == (
        0,
        "keep: the broken strategy failed (RuntimeError)",
    )


def test_strategy_must_be_a_strategy() -> None:
    """A strategy that is not a Strategy is refused at construction."""
    with pytest.raises(ConfigurationError, match="strategy must be an llmvoice compaction Strategy"):
        make(strategy=lambda *a: None)


def test_on_compression_gets_the_decision() -> None:
    """on_compression is called with each planned cut."""
    decisions: list[Any] = []
    controller, clock = make(on_compression=decisions.append)
    turns_until_cut(controller, clock)
    assert [(d.action, d.cut) for d in decisions] == [("rebase", 8)]


def test_max_context_tokens_without_target() -> None:
    """target_ms=None with a cap cuts on the cap alone."""
    controller, clock = make(target_ms=None, max_context_tokens=6000)
    assert turns_until_cut(controller, clock) == 4


def test_rollback_restores_every_message_and_the_newest_utterance() -> None:
    """A cut followed by two turns far slower than predicted is undone; nothing is lost."""
    rollbacks: list[str] = []
    controller, clock = make(on_rollback=rollbacks.append)
    cut_at = turns_until_cut(controller, clock)
    controller.prewarmed()
    turn(controller, clock, cut_at + 1, ttft=3.0)
    turn(controller, clock, cut_at + 2, ttft=3.0)
    assert controller.history[-1].action == "rollback"
    request = controller.begin_turn({"role": "user", "content": "the newest utterance"})
    expected = [{"role": "system", "content": SYSTEM}]
    for index in [*range(cut_at + 1), cut_at + 1, cut_at + 2]:
        expected.append({"role": "user", "content": f"question {index}: {WORDS}"})
        expected.append({"role": "assistant", "content": f"answer {index}: {WORDS}"})
    expected.append({"role": "user", "content": "the newest utterance"})
    assert request["messages"] == expected
    assert (controller.stats().rollbacks, len(rollbacks)) == (1, 1)


def test_no_cut_right_after_a_rollback() -> None:
    """After a rollback the latency trigger rests, so the same cut is not retried at once."""
    controller, clock = make()
    cut_at = turns_until_cut(controller, clock)
    controller.prewarmed()
    turn(controller, clock, cut_at + 1, ttft=3.0)
    turn(controller, clock, cut_at + 2, ttft=3.0)
    assert turn(controller, clock, cut_at + 3) == []


def test_user_started_speaking_within_ttl_needs_nothing() -> None:
    """A caller speaking soon after the last request finds the cache warm."""
    controller, clock = make()
    turn(controller, clock, 0)
    clock.now += 100.0
    assert controller.user_started_speaking() is None


def test_user_started_speaking_after_ttl_prewarms() -> None:
    """After more than 0.9 x the 300 s TTL the current prefix is pre-warmed."""
    controller, clock = make()
    turn(controller, clock, 0, text="hi")
    clock.now += 280.0
    warm = controller.user_started_speaking()
    assert warm is not None
    assert (warm["max_completion_tokens"], len(warm["messages"]), controller.stats().prewarms) == (1, 3, 1)


def test_self_hosted_cache_needs_no_speech_prewarm() -> None:
    """An adapter without a TTL (a self-hosted server) never pre-warms on speech."""
    from llmvoice.adapters import OpenAICompatibleAdapter

    clock = Clock()
    manager = PromptManager(SYSTEM, adapter=OpenAICompatibleAdapter("http://localhost:8000/v1", "m"))
    controller = TTFTController(manager, clock=clock)
    turn(controller, clock, 0, text="hi")
    clock.now += 5000.0
    assert controller.user_started_speaking() is None


def test_budget_violation_is_reported_once() -> None:
    """on_budget_violation fires when the window P95 stays over the target, once per episode."""
    seen: list[float] = []
    controller, clock = make(on_budget_violation=seen.append)
    for index in range(4):
        turn(controller, clock, index, ttft=2.0, text="hi")
    assert seen == [2000.0]


def test_stats_and_report() -> None:
    """stats() and report() give the window figures and the counters."""
    controller, clock = make()
    for index, ttft in enumerate([0.5, 0.6, 0.7]):
        turn(controller, clock, index, ttft=ttft, text="hi")
    s = controller.stats()
    assert (round(s.p50_ms), round(s.p95_ms), s.turns, s.rebases) == (600, 690, 3, 0)
    assert controller.report().splitlines()[:2] == [
        "turns 3, target 800 ms",
        "TTFT P50 600 ms, P95 690 ms, P99 698 ms, jitter 82 ms",
    ]


def test_verbose_logs_a_line_per_turn(caplog: pytest.LogCaptureFixture) -> None:
    """verbose=True logs turn, TTFT, tokens, cached and the decision."""
    controller, clock = make(verbose=True)
    with caplog.at_level("INFO", logger="llmvoice.control"):
        turn(controller, clock, 0, text="hi")
    assert caplog.messages == [
        "turn 0: TTFT 500 ms, 22 tokens, 0 cached (estimated), keep: predicted P95 561 ms within 760 ms"
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target_ms": 0}, "target_ms must be positive, not 0"),
        ({"target_ms": None}, "give target_ms, max_context_tokens or max_messages"),
        ({"max_messages": 0}, "max_messages must be a positive integer, not 0"),
        ({"retention": 1.5}, r"retention must be in \(0, 1\], not 1.5"),
        ({"timeout_s": -1.0}, "timeout_s must be positive, not -1.0"),
        ({"min_turns_between_cuts": -1}, "min_turns_between_cuts must be an integer >= 0, not -1"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    """Each bad option raises a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=message):
        make(**options)


def test_manager_must_be_a_prompt_manager() -> None:
    """Anything else is refused."""
    with pytest.raises(ConfigurationError, match="manager must be a PromptManager, not dict"):
        TTFTController({})  # type: ignore[arg-type]


def test_record_needs_a_turn() -> None:
    """record() outside a turn is an error naming the call to make first."""
    controller, _ = make()
    with pytest.raises(ConfigurationError, match=r"record\(\) needs a turn in progress"):
        controller.record(ttft_s=0.5)


def test_anthropic_prior_is_chosen_by_adapter() -> None:
    """Without a prior the adapter's name picks the model's starting coefficients."""
    manager = PromptManager(SYSTEM, adapter=AnthropicAdapter(counter=EstimateCounter()))
    controller = TTFTController(manager)
    assert "model: 400 ms + 111.0 µs/uncached + 20.00 µs/cached token" in controller.report()


# -- the async driver --------------------------------------------------------------------------


def chunk(text: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    choices = [] if text is None else [{"index": 0, "delta": {"content": text}, "finish_reason": None}]
    out: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


async def stream(clock: Clock, pieces: list[str], *, wait: float = 0.3, fail: bool = False) -> AsyncIterator[Any]:
    clock.now += wait
    for piece in pieces:
        yield chunk(piece)
        clock.now += 0.05
    if fail:
        raise ConnectionError("reset by peer")
    yield chunk(
        usage={
            "prompt_tokens": 40,
            "completion_tokens": 3,
            "total_tokens": 43,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    )


async def test_turn_times_the_stream_and_commits_the_reply() -> None:
    """The async turn measures TTFT from the turn's start and appends the streamed reply."""
    controller, clock = make()
    async with controller.turn({"role": "user", "content": "Hi"}) as t:
        got = [c async for c in t.observe(stream(clock, ["Hel", "lo"]))]
    assert len(got) == 3
    record = controller.history[0]
    assert (round(record.ttft_s, 6), record.input_tokens, record.estimated) == (0.3, 40, False)
    assert controller.manager.state.committed[-1].content == "Hello"


async def test_barge_in_keeps_the_spoken_part() -> None:
    """A caller interrupting mid-answer leaves the partial reply and a consistent state."""
    controller, clock = make()
    async with controller.turn({"role": "user", "content": "Hi"}) as t:
        async for _ in t.observe(stream(clock, ["Hel", "lo", " there"])):
            break
    assert [m.content for m in controller.manager.state.committed] == ["Hi", "Hel"]


async def test_stream_error_is_a_censored_sample() -> None:
    """An error mid-stream is re-raised, recorded as censored, and the user's message stays."""
    controller, clock = make()
    with pytest.raises(ConnectionError):
        async with controller.turn({"role": "user", "content": "Hi"}) as t:
            async for _ in t.observe(stream(clock, ["Hel"], fail=True)):
                pass
    assert controller.history[0].censored is False  # the first token had arrived
    assert [m.content for m in controller.manager.state.messages] == ["Hi", "Hel"]


async def test_failure_before_any_token_is_censored() -> None:
    """A request that fails before its first token is a censored sample."""
    controller, clock = make()

    async def broken() -> AsyncIterator[Any]:
        clock.now += 2.0
        raise TimeoutError("no answer")
        yield chunk("never")  # pragma: no cover

    with pytest.raises(TimeoutError):
        async with controller.turn({"role": "user", "content": "Hi"}) as t:
            async for _ in t.observe(broken()):
                pass
    record = controller.history[0]
    assert (record.censored, round(record.ttft_s, 6)) == (True, 2.0)


async def test_buffered_stream_warns() -> None:
    """A stream whose chunks all arrive at once after a long wait raises BufferedStreamWarning."""
    from llmvoice.control.measure import BufferedStreamWarning

    controller, clock = make()

    async def buffered() -> AsyncIterator[Any]:
        clock.now += 1.2
        for piece in ["a", "b", "c", "d"]:
            yield chunk(piece)

    with pytest.warns(BufferedStreamWarning, match="arrived all at once"):
        async with controller.turn({"role": "user", "content": "Hi"}) as t:
            async for _ in t.observe(buffered()):
                pass
    assert t.measurement is not None and t.measurement.buffered is True


def test_truncate_tokens_keeps_the_head_at_a_word_boundary() -> None:
    """Three tokens of 4 characters: 'alpha beta g' is cut back to 'alpha beta'."""
    from llmvoice.control.controller import truncate_tokens

    count = EstimateCounter().count_text
    assert (truncate_tokens("alpha beta gamma delta", 3, count), truncate_tokens("short", 3, count)) == (
        "alpha beta",
        "short",
    )


def test_context_is_trimmed_when_no_cut_can_help() -> None:
    """With min_dynamic_share, a context too long for the target is trimmed from the next request on."""
    controller, _ = make(prior=LatencyPrior(0.4, 5e-4, 1e-5, weight=1e6), min_dynamic_share=0.25)
    context = "warehouse " * 200  # 2,000 characters: 500 estimated tokens
    controller.begin_turn({"role": "user", "content": "hi"}, dynamic_context=context)
    controller.record(ttft_s=0.9)
    controller.append({"role": "assistant", "content": "hello"})
    controller.end_turn()
    request = controller.begin_turn({"role": "user", "content": "and?"}, dynamic_context=context)
    sent = [m["content"] for m in request["messages"] if m["role"] == "system"][1]
    assert (controller.history[0].action, sent) == ("trim_dynamic", "warehouse " * 69 + "warehouse")


def test_one_request_servers_skip_cuts_whose_prewarm_outlasts_the_pause() -> None:
    """On a llama.cpp slot, turns 0.5 s apart leave no time for a ~1 s pre-warm: the cut waits."""
    from llmvoice.adapters import OpenAICompatibleAdapter

    clock = Clock()
    adapter = OpenAICompatibleAdapter("http://localhost:8080/v1", "m", server="llamacpp", counter=EstimateCounter())
    manager = PromptManager(SYSTEM, adapter=adapter, session_id="s1")
    controller = TTFTController(manager, clock=clock, prior=PRIOR, min_turns_between_cuts=0, headroom=0.95)
    for index in range(8):
        clock.now += 0.5
        controller.begin_turn({"role": "user", "content": f"question {index}: {WORDS}"})
        controller.record(ttft_s=0.5)
        controller.append({"role": "assistant", "content": f"answer {index}: {WORDS}"})
        assert controller.end_turn() == []
    assert controller.history[-1].reason.startswith("keep: a cut is due (rebase: predicted P95")
    assert "turns arrive 0.5 s apart on a server that runs one request at a time" in controller.history[-1].reason


def test_llamacpp_server_starts_from_the_llamacpp_prior() -> None:
    """An OpenAI-compatible adapter for a llama.cpp server starts from the CPU engine's prior."""
    from llmvoice.adapters import OpenAICompatibleAdapter

    adapter = OpenAICompatibleAdapter("http://localhost:8080/v1", "m", server="llamacpp", counter=EstimateCounter())
    controller = TTFTController(PromptManager(SYSTEM, adapter=adapter))
    assert controller.report().splitlines()[-1] == "model: 4 ms + 5074.0 µs/uncached + 8.04 µs/cached token"


def test_prewarmed_between_turns_switches_at_once() -> None:
    """A pre-warm confirmed between turns switches then, so the next turn does not pay for it."""
    controller, clock = make()
    turns_until_cut(controller, clock)
    controller.prewarmed()
    assert (controller.manager.state.epoch, controller.stats().rebases) == (1, 1)


def test_prewarmed_during_a_turn_waits_for_its_end() -> None:
    """A pre-warm confirmed while a turn is in progress switches at the next turn, not mid-turn."""
    controller, clock = make()
    turns_until_cut(controller, clock)
    controller.begin_turn({"role": "user", "content": "next"})
    controller.prewarmed()
    before = controller.manager.state.epoch
    controller.record(ttft_s=0.5)
    controller.append({"role": "assistant", "content": "ok"})
    controller.end_turn()
    controller.begin_turn({"role": "user", "content": "again"})
    assert (before, controller.manager.state.epoch) == (0, 1)


async def test_background_summary_is_awaited_and_applied_at_a_later_turn() -> None:
    """Inside an event loop an async summary runs as a task; the cut waits for it, then is pre-warmed."""
    calls: list[int] = []

    async def summarize(job: SummaryJob) -> str:
        calls.append(len(job.span))
        return "The caller asked about tents."

    controller, clock = make(strategy=SummariseStrategy(summarize))
    index = 0
    while not controller.history or "summarise: writing" not in controller.history[-1].reason:
        assert turn(controller, clock, index) == []
        index += 1
    for _ in range(20):  # the summary task runs between turns
        await asyncio.sleep(0)
    warms = turn(controller, clock, index)
    controller.prewarmed()
    controller.begin_turn({"role": "user", "content": "next"})
    head = controller.manager.state.committed[0]
    assert (len(calls), len(warms), head.kind, controller.counters["rebases"]) == (1, 1, "summary", 1)
    controller.close()
