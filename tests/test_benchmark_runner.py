from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from llmvoice.benchmark.base import Contender, Fact, Scenario, Send, Step, Target, Turn
from llmvoice.benchmark.metrics import summarize
from llmvoice.benchmark.runner import irreducible_tokens, run, speech_seconds
from llmvoice.benchmark.simulate import SimResult, make_provider


class FakeProvider:
    """TTFT = 0.1 s + 1 ms per uncached message; the cache is the longest message prefix seen last time."""

    def __init__(self) -> None:
        self.previous: list[Any] = []
        self.calls: list[tuple[float, Mapping[str, Any]]] = []

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        messages = list(request["messages"])
        self.calls.append((now, request))
        common = 0
        for a, b in zip(self.previous, messages, strict=False):
            if a != b:
                break
            common += 1
        self.previous = messages
        uncached = len(messages) - common
        return SimResult(
            response={"model": request["model"], "usage": {}},
            ttft_s=0.1 + 0.001 * uncached,
            input_tokens=10 * len(messages),
            cached_tokens=10 * common,
            cache_write_tokens=0,
            cost_usd=0.5,
        )


class KeepAll(Contender):
    name = "keep-all"

    def __init__(self, scenario: Scenario, target: Target, **kwargs: Any) -> None:
        super().__init__(scenario, target, **kwargs)
        self.history: list[Mapping[str, Any]] = [{"role": "system", "content": scenario.system_prompt}]
        self.background = 0

    def user_turn(self, turn: Turn) -> None:
        self.history.append({"role": "user", "content": turn.user})

    def call(self, send: Send) -> SimResult:
        return send({"model": self.target.model, "messages": list(self.history)})

    def reply(self, step: Step) -> None:
        self.history.append(step.assistant)
        self.history.extend(step.tool_results)

    def idle(self, send: Send) -> None:
        if self.background:
            send({"model": self.target.model, "messages": [{"role": "user", "content": "summarise"}]})


class Forgetful(KeepAll):
    """Keeps only the last two messages after the system prompt."""

    name = "forgetful"

    def call(self, send: Send) -> SimResult:
        return send({"model": self.target.model, "messages": [self.history[0], *self.history[-2:]]})


class TwoSends(KeepAll):
    name = "two-sends"

    def call(self, send: Send) -> SimResult:
        send({"model": self.target.model, "messages": list(self.history)})
        return send({"model": self.target.model, "messages": list(self.history)})


class Exploding(KeepAll):
    name = "exploding"

    def user_turn(self, turn: Turn) -> None:
        if turn.user == "third":
            raise RuntimeError("boom")
        super().user_turn(turn)


def _tool_step(call_id: str) -> Step:
    return Step(
        assistant={
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
            ],
        },
        tool_results=({"role": "tool", "tool_call_id": call_id, "content": "result text"},),
    )


def _say(text: str) -> Step:
    return Step(assistant={"role": "assistant", "content": text})


SCENARIO = Scenario(
    name="tiny",
    description="three turns",
    seed=0,
    system_prompt="You are helpful.",
    tools=(),
    turns=(
        Turn(at_s=0.0, user="My name is Zephyrine Quall.", context="ctx A", steps=(_say("Hello Zephyrine."),)),
        Turn(at_s=10.0, user="second", context="ctx A", steps=(_tool_step("c1"), _say("done"))),
        Turn(at_s=20.0, user="third", context="ctx B", steps=(_say("bye"),)),
    ),
    facts=(Fact(key="name", value="Zephyrine Quall", turn=0),),
)
TARGET = Target("openai", "test-model")


def _count(text: str) -> int:
    return len(text.split())


class TestIrreducible:
    def test_first_request_holds_system_user_and_context(self) -> None:
        # system 3 words + 4 overhead; user 5 words + 4; context "ctx A" 2 words + 4
        assert irreducible_tokens(SCENARIO, _count)[0] == [7 + 9 + 6]

    def test_tool_round_counts_previous_answer_then_results(self) -> None:
        # turn 1 step 0: previous answer "Hello Zephyrine." (2 + 4) + user "second" (1 + 4); context unchanged
        # step 1: the tool call (4 + name 1 + arguments 2) + tool result (2 + 4)
        assert irreducible_tokens(SCENARIO, _count)[1] == [11, 7 + 6]

    def test_changed_context_counts_again(self) -> None:
        # previous answer "done" (1 + 4) + user "third" (1 + 4) + new context "ctx B" (2 + 4)
        assert irreducible_tokens(SCENARIO, _count)[2] == [16]


class TestRun:
    def test_plays_every_turn_and_step(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider())
        assert ([t.turn for t in result.turns], [(r.turn, r.step) for r in result.requests]) == (
            [0, 1, 2],
            [(0, 0), (1, 0), (1, 1), (2, 0)],
        )

    def test_turn_ttft_sums_steps(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider())
        # turn 1: step 0 has 2 new messages (assistant, user), step 1 has 2 (tool call, result)
        assert result.turns[1].ttft_s == pytest.approx(0.102 + 0.102)

    def test_virtual_time_advances_by_ttft_within_a_turn(self) -> None:
        provider = FakeProvider()
        run(SCENARIO, KeepAll(SCENARIO, TARGET), provider)
        assert [round(now, 6) for now, _ in provider.calls] == [0.0, 10.0, 10.102, 20.0]

    def test_facts_retained_when_still_sent(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider())
        assert (result.facts_retained, result.facts_total) == (("name",), 1)

    def test_facts_lost_when_dropped(self) -> None:
        result = run(SCENARIO, Forgetful(SCENARIO, TARGET), FakeProvider())
        assert (result.facts_retained, result.facts_total) == ((), 1)

    def test_background_requests_are_recorded_apart(self) -> None:
        contender = KeepAll(SCENARIO, TARGET)
        contender.background = 1
        result = run(SCENARIO, contender, FakeProvider())
        assert [(r.turn, r.step, r.background) for r in result.requests if r.background] == [
            (0, -1, True),
            (1, -1, True),
            (2, -1, True),
        ]

    def test_background_cost_counts_in_the_turn(self) -> None:
        contender = KeepAll(SCENARIO, TARGET)
        contender.background = 1
        result = run(SCENARIO, contender, FakeProvider())
        assert [t.cost_usd for t in result.turns] == [1.0, 1.5, 1.0]

    def test_background_request_is_not_the_fact_check_request(self) -> None:
        contender = KeepAll(SCENARIO, TARGET)
        contender.background = 1
        result = run(SCENARIO, contender, FakeProvider())
        assert result.facts_retained == ("name",)

    def test_final_input_tokens_is_last_foreground_request(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider())
        # system, u0, a0, u1, call, result, a1, u2
        assert result.final_input_tokens == 80

    def test_a_contender_sending_twice_stops_the_run(self) -> None:
        result = run(SCENARIO, TwoSends(SCENARIO, TARGET), FakeProvider())
        assert (len(result.turns), result.error) == (
            0,
            "turn 0: ConfigurationError: two-sends: call() must send exactly one request, it sent 2",
        )

    def test_an_exception_keeps_the_turns_played(self) -> None:
        result = run(SCENARIO, Exploding(SCENARIO, TARGET), FakeProvider())
        assert (len(result.turns), result.error) == (2, "turn 2: RuntimeError: boom")

    def test_overhead_excludes_send_time(self) -> None:
        ticks = iter(range(1000))

        def clock() -> float:
            return float(next(ticks))

        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider(), clock=clock)
        # per turn: start, (send start, send end) per step, end; send time is one tick per send
        assert [t.overhead_s for t in result.turns] == [2.0, 3.0, 2.0]

    def test_idle_time_is_kept_apart_from_the_critical_path(self) -> None:
        """Time in user_turn/call/reply is overhead; time in speech_start and idle is idle time."""
        now = [0.0]

        class Busy(KeepAll):
            def user_turn(self, turn: Turn) -> None:
                now[0] += 0.001
                super().user_turn(turn)

            def speech_start(self, at_s: float, send: Send) -> None:
                now[0] += 0.002

            def idle(self, send: Send) -> None:
                now[0] += 0.005

        result = run(SCENARIO, Busy(SCENARIO, TARGET), FakeProvider(), clock=lambda: now[0])
        assert [(round(t.overhead_s, 9), round(t.idle_s, 9)) for t in result.turns] == [(0.001, 0.007)] * 3

    def test_on_turn_reports_progress(self) -> None:
        seen: list[int] = []
        run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider(), on_turn=seen.append)
        assert seen == [0, 1, 2]

    def test_runs_against_a_simulated_provider(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), make_provider("openai", seed=0))
        assert (len(result.turns), result.error, [r.cached_tokens for r in result.requests]) == (
            3,
            None,
            [0, 0, 0, 0],  # under OpenAI's 1,024-token minimum
        )


class Listening(KeepAll):
    """Records when the user starts speaking and pre-warms each time."""

    def __init__(self, scenario: Scenario, target: Target, **kwargs: Any) -> None:
        super().__init__(scenario, target, **kwargs)
        self.speech: list[float] = []

    def speech_start(self, at_s: float, send: Send) -> None:
        self.speech.append(at_s)
        send({"model": self.target.model, "messages": [{"role": "system", "content": "warm"}]})


class TestSpeechStart:
    def test_speech_starts_before_the_utterance_ends(self) -> None:
        """Speech starts words / 2.5 s before at_s (at least 0.5 s), never before the last reply began."""
        contender = Listening(SCENARIO, TARGET)
        run(SCENARIO, contender, FakeProvider())
        assert [round(t, 6) for t in contender.speech] == [-2.0, 9.5, 19.5]

    def test_speech_start_requests_are_background(self) -> None:
        """Requests sent at speech start are background requests at that time, outside TTFT."""
        result = run(SCENARIO, Listening(SCENARIO, TARGET), FakeProvider())
        warm = [(r.turn, round(r.at_s, 6)) for r in result.requests if r.background]
        assert warm == [(0, -2.0), (1, 9.5), (2, 19.5)]

    def test_speech_seconds(self) -> None:
        """Five words take two seconds; one word the 0.5 s floor."""
        assert (speech_seconds("one two three four five"), speech_seconds("hi")) == (2.0, 0.5)


class SerialProvider(FakeProvider):
    """A one-slot engine: every request answers in 2 s, first token at 0.5 s."""

    serial = True

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        result = super().send(request, now)
        return SimResult(
            response={"model": "m", "usage": {}, "timings": {"predicted_ms": 1500.0}},
            ttft_s=0.5,
            input_tokens=result.input_tokens,
            cached_tokens=result.cached_tokens,
            cache_write_tokens=0,
            cost_usd=0.0,
        )


class WarmsAtSpeech(KeepAll):
    """Sends a background request when the user starts speaking."""

    def speech_start(self, at_s: float, send: Send) -> None:
        send({"model": self.target.model, "messages": [{"role": "system", "content": "warm"}]})


class TestSerialEngine:
    def test_turn_waits_for_a_background_request(self) -> None:
        """A pre-warm sent 2 s before the utterance ends (busy 2 s) leaves no wait; turn 1's 0.5 s speech does."""
        result = run(SCENARIO, WarmsAtSpeech(SCENARIO, TARGET), SerialProvider())
        # turn 0: warm at -2.0, busy until 0.0 -> no wait; turn 1: warm at 9.5, busy until 11.5 -> wait 1.5 s
        assert [round(t.ttft_s, 6) for t in result.turns] == [0.5, 2.0 + 0.5, 2.0]

    def test_concurrent_provider_never_waits(self) -> None:
        """Without ``serial`` background requests delay nobody."""
        result = run(SCENARIO, WarmsAtSpeech(SCENARIO, TARGET), FakeProvider())
        # only the fake cache's misses: 2, 2 + 4 and 8 uncached messages
        assert [round(t.ttft_s, 6) for t in result.turns] == [0.102, 0.206, 0.108]


class TestSummarize:
    def test_figures_of_a_run(self) -> None:
        result = run(SCENARIO, KeepAll(SCENARIO, TARGET), FakeProvider())
        summary = summarize(result, target_ms=150.0)
        assert (
            summary.turns,
            round(summary.ttft_p50_ms, 6),
            round(summary.ttft_max_ms, 6),
            summary.over_target_pct,
            summary.cached_share,
            summary.cost_usd,
            summary.facts_retained,
            summary.facts_total,
            summary.context_kept_tokens,
        ) == (3, 102.0, 204.0, 100.0 / 3, 120 / 200, 2.0, 1, 1, 80)

    def test_empty_run_gives_nan_latency(self) -> None:
        result = run(SCENARIO, TwoSends(SCENARIO, TARGET), FakeProvider())
        summary = summarize(result, target_ms=150.0)
        assert (summary.turns, summary.ttft_p95_ms != summary.ttft_p95_ms, summary.error is not None) == (
            0,
            True,
            True,
        )
