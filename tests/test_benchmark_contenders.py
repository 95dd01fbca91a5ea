from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from llmvoice.benchmark import contenders as contenders_module
from llmvoice.benchmark.base import Contender, Fact, Scenario, Step, Target, Turn
from llmvoice.benchmark.contenders import (
    CONTENDERS,
    PLACEHOLDER_USER_TEXT,
    LLMBufferContender,
    LLMVoiceAppendContender,
    LLMVoiceContender,
    NaiveContender,
    PipecatSummarizerContender,
    VoiceBudgetContender,
    _repair_anthropic,
    available_contenders,
    llmvoice_adapter,
)
from llmvoice.benchmark.simulate import SimResult, SimulatedProvider, make_provider
from llmvoice.tokens import counter_for_model

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6"}
SYSTEM = "You are Ada, the voice agent of Acme Parcels. " + "Rule: answer briefly and kindly. " * 250
TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "track",
            "description": "Track a parcel.",
            "parameters": {"type": "object", "properties": {"parcel": {"type": "string"}}, "required": ["parcel"]},
        },
    },
)


def make_scenario(turns: int = 12, *, tool_every: int = 3, context: bool = True, words: int = 30) -> Scenario:
    played: list[Turn] = []
    for i in range(turns):
        steps: list[Step] = []
        if tool_every and i % tool_every == 1:
            call_id = f"call_{i}"
            steps.append(
                Step(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": "track", "arguments": f'{{"parcel": "P-{i}"}}'},
                            }
                        ],
                    },
                    ({"role": "tool", "tool_call_id": call_id, "content": f"Parcel P-{i} is in transit."},),
                )
            )
        steps.append(Step({"role": "assistant", "content": f"Answer {i}. " + "Certainly, happy to help. " * words}))
        user = f"Question {i}: " + "where is my parcel please " * (words // 5)
        if i == 0:
            user = "My name is Zebediah Quill. " + user
        played.append(
            Turn(
                at_s=10.0 * i,
                user=user,
                context=f"Caller status block {i // 3}: VIP tier, open ticket." if context else None,
                steps=tuple(steps),
            )
        )
    return Scenario(
        name="hand-made",
        description="a small hand-made scenario",
        seed=0,
        system_prompt=SYSTEM,
        tools=TOOLS,
        turns=tuple(played),
        facts=(Fact("name", "Zebediah Quill", 0),),
    )


class Played:
    """What a play-through sent: each request (foreground or background) with its turn and result."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, bool, Mapping[str, Any], SimResult]] = []

    def foreground(self) -> list[tuple[int, Mapping[str, Any], SimResult]]:
        return [(turn, req, res) for turn, bg, req, res in self.requests if not bg]

    def background(self) -> list[tuple[int, Mapping[str, Any], SimResult]]:
        return [(turn, req, res) for turn, bg, req, res in self.requests if bg]


def play(contender: Contender, scenario: Scenario, provider: SimulatedProvider | None = None) -> Played:
    """The runner's protocol on virtual time, in miniature."""
    provider = provider if provider is not None else make_provider(contender.target.api, seed=0)
    played = Played()
    try:
        for index, turn in enumerate(scenario.turns):
            contender.user_turn(turn)
            now = turn.at_s
            for step in turn.steps:
                sent: list[int] = []

                def send(
                    request: Mapping[str, Any], index: int = index, at: float = now, sent: list[int] = sent
                ) -> SimResult:
                    result = provider.send(request, at)
                    played.requests.append((index, False, request, result))
                    sent.append(1)
                    return result

                result = contender.call(send)
                assert len(sent) == 1
                now += result.ttft_s
                contender.reply(step)

            def send_background(request: Mapping[str, Any], index: int = index, at: float = now) -> SimResult:
                result = provider.send(request, at)
                played.requests.append((index, True, request, result))
                return result

            contender.idle(send_background)
    finally:
        contender.close()
    return played


def target(api: str) -> Target:
    return Target(api, MODELS[api])


def orphan_tool(messages: Sequence[Mapping[str, Any]]) -> bool:
    open_ids: set[Any] = set()
    for message in messages:
        if message["role"] == "assistant":
            open_ids = {call["id"] for call in message.get("tool_calls") or ()}
        elif message["role"] == "tool":
            if message["tool_call_id"] not in open_ids:
                return True
        else:
            open_ids = set()
    return False


def assert_valid_anthropic(request: Mapping[str, Any]) -> None:
    messages = request["messages"]
    assert messages and messages[0]["role"] == "user"
    uses: set[str] = set()
    for message in messages:  # consecutive same-role turns are allowed: the API combines them
        assert message["role"] in ("user", "assistant")
        assert isinstance(message["content"], list) and message["content"]
        for block in message["content"]:
            if block["type"] == "tool_result":
                assert block["tool_use_id"] in uses
        uses = {b["id"] for b in message["content"] if b["type"] == "tool_use"}
    assert not isinstance(request.get("system"), str) or request["system"]


# --------------------------------------------------------------------------------------------
# naive


def test_naive_drops_whole_oldest_turns_and_never_orphans_a_tool_result() -> None:
    scenario = make_scenario(12, tool_every=2)
    count = counter_for_model("gpt-4o-mini").count_text
    budget = count(SYSTEM) + 900
    contender = NaiveContender(scenario, target("openai"), budget=budget)
    played = play(contender, scenario)
    assert contender.counters["compactions"] > 0
    users = [turn.user for turn in scenario.turns]
    for turn_index, request, _ in played.foreground():
        messages = request["messages"]
        assert messages[0]["role"] == "system"
        assert messages[1]["role"] == "user"
        assert not orphan_tool(messages)
        assert request["tools"] == [dict(TOOLS[0])]
        # Whole turns: the history is a contiguous run of turns ending with the current one.
        kept = [m["content"] for m in messages if m["role"] == "user"]
        first = users.index(kept[0])
        assert kept == users[first : turn_index + 1]
    last = played.foreground()[-1][1]["messages"]
    assert last[1]["content"] != users[0]  # the oldest turns are gone


def test_naive_puts_context_in_the_system_message() -> None:
    scenario = make_scenario(2)
    contender = NaiveContender(scenario, target("openai"))
    played = play(contender, scenario)
    first = played.foreground()[0][1]
    assert first["messages"][0] == {"role": "system", "content": SYSTEM + "\n\n" + scenario.turns[0].context}
    assert first["model"] == "gpt-4o-mini"
    assert contender.counters["compactions"] == 0


def test_naive_anthropic_request_has_top_level_system_and_automatic_caching() -> None:
    scenario = make_scenario(6)
    contender = NaiveContender(scenario, target("anthropic"))
    played = play(contender, scenario)
    for turn_index, request, _ in played.foreground():
        assert request["cache_control"] == {"type": "ephemeral"}
        assert request["system"] == [{"type": "text", "text": SYSTEM + "\n\n" + scenario.turns[turn_index].context}]
        assert request["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
        assert_valid_anthropic(request)
    # Automatic caching hits within a context (turns 0-2 share one).
    assert played.foreground()[2][2].cached_tokens > 0


# --------------------------------------------------------------------------------------------
# llmbuffer


def test_llmbuffer_sends_its_messages_unchanged_for_openai() -> None:
    scenario = make_scenario(6)
    assert LLMBufferContender(scenario, target("openai")).manager.max_tokens == 8000
    seen: list[tuple[Any, Any]] = []
    provider = make_provider("openai", seed=0)

    class Recording(LLMBufferContender):
        def call(self, send: Any) -> SimResult:
            expected = self.manager.build_messages(dynamic_system_prompt=self._context)
            result = super().call(send)
            seen.append((expected, None))
            return result

    recording = Recording(scenario, target("openai"))
    played = play(recording, scenario, provider)
    for (expected, _), (_, request, _) in zip(seen, played.foreground(), strict=True):
        assert request["messages"] == expected
        assert request["tools"] == [dict(TOOLS[0])]
    assert recording.invalid_requests == 0


def test_llmbuffer_anthropic_request_is_valid_and_keeps_its_markers() -> None:
    scenario = make_scenario(8)
    contender = LLMBufferContender(scenario, target("anthropic"))
    played = play(contender, scenario)
    for _, request, _ in played.foreground():
        assert_valid_anthropic(request)
        assert all(m["role"] != "system" for m in request["messages"])
        assert request["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert played.foreground()[-1][2].cached_tokens > 0


def test_llmbuffer_compaction_is_counted_and_repaired_for_anthropic() -> None:
    scenario = make_scenario(14, tool_every=2)
    for api in ("openai", "anthropic"):
        contender = LLMBufferContender(scenario, target(api), budget=600)
        played = play(contender, scenario)
        assert contender.counters["compactions"] > 0
        if api == "anthropic":
            for _, request, _ in played.foreground():
                assert_valid_anthropic(request)


# --------------------------------------------------------------------------------------------
# voice-budget


def test_voice_budget_records_the_simulated_ttft_on_virtual_time() -> None:
    import voice_budget.wrapper

    scenario = make_scenario(5)
    contender = VoiceBudgetContender(scenario, target("openai"))
    played = play(contender, scenario)
    samples = [sample.ttft_ms for sample in contender.budget_wrapper._measurer._samples]
    assert samples == [result.ttft_s * 1000.0 for _, _, result in played.foreground()]
    assert voice_budget.wrapper.time is time  # the patch does not leak
    assert contender.counters["compactions"] == 0  # TTFT stays under 800 ms


def test_voice_budget_compresses_when_the_target_is_exceeded() -> None:
    scenario = make_scenario(10)
    contender = VoiceBudgetContender(scenario, target("openai"), target_ms=1.0, budget=2000)
    played = play(contender, scenario)
    events = contender.budget_wrapper.compression_history()
    assert contender.counters["compactions"] == len(events) > 0
    assert contender.counters["rollbacks"] == sum(1 for e in events if e.rolled_back)
    # From the fourth call on (three samples first), it sends less than the whole history.
    full = 1 + sum(1 + 2 * len(t.steps) - 1 for t in scenario.turns[:-1]) + 1
    last = played.foreground()[-1][1]["messages"]
    assert last[0]["role"] == "system"
    assert len(last) < full


def test_voice_budget_anthropic_requests_are_valid() -> None:
    scenario = make_scenario(10, tool_every=2)
    contender = VoiceBudgetContender(scenario, target("anthropic"), target_ms=1.0, budget=600)
    played = play(contender, scenario)
    assert contender.counters["compactions"] > 0
    for _, request, _ in played.foreground():
        assert_valid_anthropic(request)
        assert request["cache_control"] == {"type": "ephemeral"}
    # Its sliding window leaves [assistant tool call, tool result]: a placeholder user turn goes first.
    assert contender.invalid_requests > 0
    last = played.foreground()[-1][1]["messages"]
    assert last[0] == {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]}
    assert [m["role"] for m in last] == ["user", "assistant", "user"]


def test_anthropic_repair_removes_orphan_results_and_puts_a_user_turn_first() -> None:
    result = {"type": "tool_result", "tool_use_id": "a", "content": "x"}
    use = {"type": "tool_use", "id": "a", "name": "track", "input": {}}
    text = {"type": "text", "text": "hi"}
    repaired, changed = _repair_anthropic([{"role": "user", "content": [result, text]}])
    assert changed and repaired == [{"role": "user", "content": [text]}]
    repaired, changed = _repair_anthropic(
        [{"role": "user", "content": [result]}, {"role": "assistant", "content": [text]}]
    )
    assert changed and repaired[0]["content"][0]["text"] == PLACEHOLDER_USER_TEXT and len(repaired) == 2
    valid = [
        {"role": "user", "content": [text]},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]
    assert _repair_anthropic(valid) == (valid, False)


# --------------------------------------------------------------------------------------------
# Pipecat re-implementation


def test_pipecat_summarises_after_twenty_messages() -> None:
    scenario = make_scenario(13, tool_every=0, context=False, words=5)
    contender = PipecatSummarizerContender(scenario, target("openai"))
    assert contender.label == "pipecat-summarizer (re-impl.)"
    played = play(contender, scenario)
    # Turn k's request holds the system prompt and 2k + 1 messages: 21 >= 20 at turn 10.
    background = played.background()
    assert [turn for turn, _, _ in background] == [10]
    summary_request = background[0][1]
    assert summary_request["max_tokens"] == 6000
    assert "tools" not in summary_request
    assert summary_request["messages"][0]["role"] == "system"
    history = summary_request["messages"][1]["content"]
    assert history.startswith("Conversation history:\nUSER: My name is Zebediah Quill.")
    # Summarised: indices 1..17 (len 22 - 4), up to turn 8's question; kept: turn 8's answer onwards.
    assert history.endswith("USER: Question 8: where is my parcel please ") and "Answer 8." not in history
    before = played.foreground()[10][1]["messages"]
    after = played.foreground()[11][1]["messages"]
    assert after[0] == before[0]
    assert after[1]["role"] == "user" and after[1]["content"].startswith("Conversation summary: ")
    assert after[2:] == [*before[18:], scenario.turns[10].steps[-1].assistant, after[-1]]
    assert after[-1] == {"role": "user", "content": scenario.turns[11].user}
    assert contender.counters["compactions"] == 1


def test_pipecat_token_trigger_keeps_tool_pairs_and_marks_anthropic_requests() -> None:
    scenario = make_scenario(16, tool_every=2)
    contender = PipecatSummarizerContender(scenario, target("anthropic"), budget=1500)
    played = play(contender, scenario)
    assert contender.counters["compactions"] >= 2
    for _, request, _ in played.foreground():
        assert_valid_anthropic(request)
        assert request["system"][-1]["cache_control"] == {"type": "ephemeral"}
        marked = [m for m in request["messages"] if "cache_control" in m["content"][-1]]
        users = [m for m in request["messages"] if m["role"] == "user"]
        assert marked == users[-2:]
    assert played.background()[0][1]["max_tokens"] == 1200


# --------------------------------------------------------------------------------------------
# llmvoice


def test_llmvoice_request_is_the_managers() -> None:
    """Each request sent is exactly what the manager builds at that moment."""
    scenario = make_scenario(4)
    expected: list[dict[str, Any]] = []

    class Recording(LLMVoiceContender):
        def call(self, send: Any) -> SimResult:
            def recording(request: Any) -> SimResult:
                expected.append(self.manager.build_request(dynamic_context=self._context))
                result: SimResult = send(request)
                return result

            return super().call(recording)

    contender = Recording(scenario, target("openai"))
    played = play(contender, scenario)
    assert [request for _, request, _ in played.foreground()] == expected
    last = expected[-1]
    assert last["prompt_cache_key"] == "benchmark-hand-made-0"
    assert last["tools"] == [dict(TOOLS[0])]


def test_llmvoice_cuts_over_its_budget() -> None:
    """With max_context_tokens 4,000 the controller cuts, sends a summary and a pre-warm each time."""
    scenario = make_scenario(30)
    contender = LLMVoiceContender(scenario, target("anthropic"), budget=4000)
    played = play(contender, scenario)
    rebases = contender.counters["rebases"]
    assert rebases >= 2
    assert len(played.background()) == 2 * rebases
    assert max(result.input_tokens for _, _, result in played.foreground()) < 4000


def test_llmvoice_prewarms_after_a_long_pause() -> None:
    """speech_start pre-warms at the call start and after more than the 5-minute TTL; the turn reads it."""
    scenario = make_scenario(3)
    contender = LLMVoiceContender(scenario, target("anthropic"))
    provider = make_provider("anthropic", seed=0)
    sent: list[tuple[float, SimResult]] = []
    for index, turn in enumerate(scenario.turns):
        at = turn.at_s + (1000.0 if index == 2 else 0.0)
        contender.speech_start(
            at - 2.0, lambda r, at=at: sent.append((at - 2.0, provider.send(r, at - 2.0))) or sent[-1][1]
        )
        contender.user_turn(dataclasses.replace(turn, at_s=at))
        now = at
        for step in turn.steps:
            result = contender.call(lambda r, now=now: provider.send(r, now))
            now += result.ttft_s
            contender.reply(step)
        contender.idle(lambda r, now=now: provider.send(r, now))
    assert [round(at) for at, _ in sent] == [-2, 1018]
    assert result.cached_tokens > 0


def test_llmvoice_per_turn_hits_the_openai_cache_from_turn_two() -> None:
    scenario = make_scenario(6)
    assert counter_for_model("gpt-4o-mini").count_text(SYSTEM) > 1024
    played = play(LLMVoiceContender(scenario, target("openai")), scenario)
    cached = {}
    for turn, _, result in played.foreground():
        cached.setdefault(turn, []).append(result.cached_tokens)
    assert cached[0][0] == 0
    assert all(c > 0 for turn, values in cached.items() if turn >= 1 for c in values)


def test_llmvoice_append_and_adapters() -> None:
    assert LLMVoiceAppendContender.dynamic_mode == "append"
    assert LLMVoiceContender.knob == "max_context_tokens"
    assert type(llmvoice_adapter(Target("vllm", "m"))).__name__ == "OpenAICompatibleAdapter"
    assert llmvoice_adapter(Target("llamacpp", "m")).server == "llamacpp"  # type: ignore[attr-defined]
    assert llmvoice_adapter(Target("local", "m")).server == "llamacpp"  # type: ignore[attr-defined]
    assert llmvoice_adapter(Target("openai-compatible", "m")).server is None  # type: ignore[attr-defined]
    assert type(llmvoice_adapter(target("anthropic"))).__name__ == "AnthropicAdapter"


# --------------------------------------------------------------------------------------------
# Every contender


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_every_request_is_accepted(name: str, api: str) -> None:
    scenario = make_scenario(25, tool_every=2)
    contender = CONTENDERS[name](scenario, target(api), budget=1800 if CONTENDERS[name].knob else None)
    played = play(contender, scenario)
    assert len(played.foreground()) == sum(len(t.steps) for t in scenario.turns)
    for _, request, _ in played.foreground():
        assert request["model"] == MODELS[api]
        assert request["tools"]
        if api == "anthropic":
            assert_valid_anthropic(request)
            assert "input_schema" in request["tools"][0]
    assert set(contender.counters) == {"compactions", "rebases", "rollbacks"}
    assert isinstance(getattr(contender, "label", contender.name), str)


@pytest.mark.parametrize("provider", ["vllm", "llamacpp"])
def test_self_hosted_targets(provider: str) -> None:
    scenario = make_scenario(4)
    for cls in CONTENDERS.values():
        contender = cls(scenario, Target(provider, "m"))
        play(contender, scenario, make_provider(provider, seed=0))


def test_available_contenders(monkeypatch: pytest.MonkeyPatch) -> None:
    assert available_contenders() == dict.fromkeys(CONTENDERS)
    monkeypatch.setattr(contenders_module, "_installed", lambda module: module not in ("llmbuffer", "voice_budget"))
    reasons = available_contenders()
    assert reasons["llmbuffer"] == "llmbuffer is not installed (pip install 'llmvoice[benchmark]')"
    assert reasons["voice-budget"] == "voice-budget is not installed (pip install 'llmvoice[benchmark]')"
    assert reasons["naive"] is None and reasons["llmvoice"] is None


def test_registry() -> None:
    assert list(CONTENDERS) == [
        "naive",
        "llmbuffer",
        "voice-budget",
        "pipecat-summarizer",
        "llmvoice",
        "llmvoice-append",
    ]
    for cls in CONTENDERS.values():
        assert cls.__doc__
    assert NaiveContender.knob and LLMBufferContender.knob and VoiceBudgetContender.knob
    assert PipecatSummarizerContender.knob == "max_context_tokens"


def test_strategy_variants_are_named_and_configured() -> None:
    """strategy_variant builds a subclass per strategy; +mask turns tool-output masking on."""
    masked = contenders_module.strategy_variant(LLMVoiceContender, "window+mask")(make_scenario(2), target("openai"))
    plain = contenders_module.strategy_variant(LLMVoiceAppendContender, "summarise")(make_scenario(2), target("openai"))
    assert (masked.name, masked.label, masked.manager.state.tool_output_limit, masked.controller.strategy.name) == (
        "llmvoice[window+mask]",
        "llmvoice[window+mask]",
        600,
        "window",
    )
    assert (plain.name, plain.manager.state.tool_output_limit, plain.controller.strategy.name) == (
        "llmvoice-append[summarise]",
        None,
        "summarise",
    )


def test_custom_strategy_runs_llmbuffers_own_hook() -> None:
    """The custom variant cuts with llmbuffer's truncation hook and keeps every request valid."""
    contender = contenders_module.strategy_variant(LLMVoiceContender, "custom")(
        make_scenario(40, words=120), target("anthropic"), target_ms=300
    )
    played = play(contender, make_scenario(40, words=120))
    assert contender.controller.strategy.name == "custom"
    assert contender.counters["rebases"] >= 1
    for _, _, request, _ in played.requests:
        assert_valid_anthropic(request)


@pytest.mark.parametrize("spec", ["magic", "window+zip", "+mask"])
def test_parse_strategy_refuses_unknown_specs(spec: str) -> None:
    """An unknown strategy or option is a ConfigurationError listing the choices."""
    with pytest.raises(contenders_module.ConfigurationError, match=f"unknown strategy '{re.escape(spec)}'"):
        contenders_module.parse_strategy(spec)
