"""Tests for llmvoice.benchmark.simulate: provider-exact simulated prompt caches.

Prompts are built from words that are one ``o200k_base`` token each (`` hello``, `` world``), so
every token count below is exact: a message is ``3 + words + 1`` tokens (role header, content,
end marker), a further block of an Anthropic message ``words + 1``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmvoice import PromptManager
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter, OpenAICompatibleAdapter, Usage
from llmvoice.benchmark import simulate
from llmvoice.benchmark.simulate import (
    ANTHROPIC_PROFILE,
    LLAMACPP_PROFILE,
    OPENAI_PROFILE,
    VLLM_PROFILE,
    LatencyProfile,
    SimResult,
    SimulatedAnthropic,
    SimulatedLlamaCpp,
    SimulatedOpenAI,
    SimulatedVLLM,
    make_provider,
    prompt_tokens,
)
from llmvoice.errors import ConfigurationError
from llmvoice.tokens import EstimateCounter

HELLO = 40617  # " hello" in o200k_base
USER = 1428  # "user"
START, END, SEP = 200_264, 200_265, 200_266
FIVE_MIN: dict[str, Any] = {"type": "ephemeral"}
ONE_HOUR: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def words(n: int, word: str = " hello") -> str:
    """``n`` tokens of text."""
    return word * n


def chat(*contents: str, model: str = "gpt-4o-mini", **options: Any) -> dict[str, Any]:
    """A Chat Completions request: a system message, then alternating user / assistant turns."""
    messages = [{"role": "system", "content": contents[0]}]
    for index, content in enumerate(contents[1:]):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": content})
    return {"model": model, "messages": messages, **options}


def block(text: str, control: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Anthropic text block, with a breakpoint when ``control`` is given."""
    out: dict[str, Any] = {"type": "text", "text": text}
    if control is not None:
        out["cache_control"] = control
    return out


def messages_request(
    system: list[dict[str, Any]], *user_blocks: dict[str, Any], model: str = "claude-sonnet-4-6"
) -> dict[str, Any]:
    """A Messages request with system blocks and one user message made of ``user_blocks``."""
    return {
        "model": model,
        "max_tokens": 200,
        "system": system,
        "messages": [{"role": "user", "content": list(user_blocks)}],
    }


def lookback_request(n_blocks: int, marks: tuple[int, ...]) -> dict[str, Any]:
    """A 2,004-token system block (block 0) and a user message of ``n_blocks`` 10-word blocks.

    Breakpoints go on the user blocks numbered in ``marks`` (1-based: global block positions).
    Block 1 is 14 tokens (it carries the role header), every further block 11.
    """
    blocks = [block(words(10), FIVE_MIN if i in marks else None) for i in range(1, n_blocks + 1)]
    return messages_request([block(words(2000))], *blocks)


def usage_of(result: SimResult) -> tuple[int, int, int]:
    """Anthropic ``(input_tokens, cache_read_input_tokens, cache_creation_input_tokens)``."""
    usage = result.response["usage"]
    return usage["input_tokens"], usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]


# ---------------------------------------------------------------------------------------------


class TestPromptTokens:
    """prompt_tokens: the token sequence the caches compare."""

    def test_message_is_header_content_end(self) -> None:
        """A message renders as start, role, separator, its text and an end marker."""
        request = {"messages": [{"role": "user", "content": words(3)}]}
        assert prompt_tokens(request, "openai") == [START, USER, SEP, HELLO, HELLO, HELLO, END]

    def test_cache_control_is_not_a_token(self) -> None:
        """Breakpoint markers do not change the Anthropic token sequence."""
        plain = messages_request([block(words(5))], block(words(3)))
        marked = messages_request([block(words(5), ONE_HOUR)], block(words(3), FIVE_MIN))
        assert prompt_tokens(marked, "anthropic") == prompt_tokens(plain, "anthropic")
        assert len(prompt_tokens(plain, "anthropic")) == 9 + 7

    def test_image_is_85_tokens(self) -> None:
        """An image part adds a fixed 85-token placeholder."""
        image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
        request = {"messages": [{"role": "user", "content": [image]}]}
        assert len(prompt_tokens(request, "openai")) == 4 + 85

    def test_tool_call_name_and_arguments_count(self) -> None:
        """An assistant tool call renders its name and arguments."""
        call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"id":"7"}'}}
        with_call = {"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}
        without = {"messages": [{"role": "assistant", "content": None}]}
        assert len(prompt_tokens(with_call, "openai")) > len(prompt_tokens(without, "openai")) + 2

    def test_unknown_kind_raises(self) -> None:
        """An unknown provider kind is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            prompt_tokens({"messages": []}, "gemini")


class TestOpenAI:
    """SimulatedOpenAI: 1,024-token minimum, 128-token steps, routing, retention."""

    def test_below_minimum_nothing_cached(self) -> None:
        """A 1,000-token prompt sent twice reports 0 cached tokens."""
        provider = SimulatedOpenAI()
        request = chat(words(996))
        provider.send(request, 0.0)
        result = provider.send(request, 1.0)
        assert (result.input_tokens, result.cached_tokens) == (1000, 0)

    def test_minimum_prompt_cached_in_full(self) -> None:
        """A 1,024-token prompt sent twice is cached in full."""
        provider = SimulatedOpenAI()
        request = chat(words(1020))
        provider.send(request, 0.0)
        assert provider.send(request, 1.0).cached_tokens == 1024

    def test_hits_round_down_to_128(self) -> None:
        """A 1,400-token shared prefix is reported as 1,280 cached tokens."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1296), words(96)), 0.0)
        result = provider.send(chat(words(1296), words(96), words(20), words(20)), 5.0)
        assert (result.input_tokens, result.cached_tokens) == (1448, 1280)

    def test_usage_in_openai_fields(self) -> None:
        """The response carries prompt_tokens, completion_tokens, total_tokens and cached_tokens."""
        provider = SimulatedOpenAI(output_tokens=25)
        request = chat(words(1996))
        provider.send(request, 0.0)
        assert provider.send(request, 1.0).response["usage"] == {
            "prompt_tokens": 2000,
            "completion_tokens": 25,
            "total_tokens": 2025,
            "prompt_tokens_details": {"cached_tokens": 1920},
        }

    def test_other_prompt_cache_key_misses(self) -> None:
        """The same prompt under another prompt_cache_key is routed elsewhere and misses."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996), prompt_cache_key="a"), 0.0)
        assert provider.send(chat(words(1996), prompt_cache_key="b"), 1.0).cached_tokens == 0

    def test_same_prompt_cache_key_hits(self) -> None:
        """The same prompt under the same prompt_cache_key hits."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996), prompt_cache_key="a"), 0.0)
        assert provider.send(chat(words(1996), prompt_cache_key="a"), 1.0).cached_tokens == 1920

    def test_hit_before_idle_expiry(self) -> None:
        """A prefix last used 299 s ago still hits."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        assert provider.send(chat(words(1996)), 299.0).cached_tokens == 1920

    def test_expires_after_300s_idle(self) -> None:
        """A prefix idle for 300 s has expired."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        assert provider.send(chat(words(1996)), 300.0).cached_tokens == 0

    def test_use_refreshes_idle_timer(self) -> None:
        """A hit at 200 s keeps the prefix alive until 500 s."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        provider.send(chat(words(1996)), 200.0)
        assert provider.send(chat(words(1996)), 450.0).cached_tokens == 1920

    def test_in_memory_lives_at_most_one_hour(self) -> None:
        """Even when used every 200 s, an in_memory prefix expires 1 h after it was cached."""
        provider = SimulatedOpenAI()
        hits = [provider.send(chat(words(1996)), float(t)).cached_tokens for t in range(0, 3601, 200)]
        assert hits == [0] + [1920] * 17 + [0]

    def test_rewritten_prefix_after_one_hour_hits_again(self) -> None:
        """A growing prompt misses once when its 1-hour-old start expires, then hits in full again."""
        provider = SimulatedOpenAI()
        turns = [words(1996)]
        cached = []
        for t in range(0, 4001, 200):
            turns.append(words(20))
            cached.append(provider.send(chat(*turns), float(t)).cached_tokens)
        assert cached[18] == 0
        assert cached[19] == (1996 + 4 + 19 * 24) // 128 * 128

    def test_24h_retention_survives_two_idle_hours(self) -> None:
        """With prompt_cache_retention='24h' a prefix idle for 2 h still hits."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996), prompt_cache_retention="24h"), 0.0)
        assert provider.send(chat(words(1996), prompt_cache_retention="24h"), 7200.0).cached_tokens == 1920

    def test_changed_first_message_misses_everything(self) -> None:
        """Changing the first word of the system message loses the whole cache."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996), words(50)), 0.0)
        changed = " world" + words(1995)
        assert provider.send(chat(changed, words(50)), 1.0).cached_tokens == 0

    def test_change_after_minimum_keeps_prefix(self) -> None:
        """A word changed at token 1,203 keeps the 1,152 tokens before it (128-token steps)."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        changed = words(1200) + " world" + words(795)
        assert provider.send(chat(changed), 1.0).cached_tokens == 1152

    def test_other_model_misses(self) -> None:
        """Caches are per model."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996), model="gpt-4o-mini"), 0.0)
        assert provider.send(chat(words(1996), model="gpt-4o"), 1.0).cached_tokens == 0

    def test_cost_uses_cached_price(self) -> None:
        """gpt-4o-mini: 80 uncached at $0.15/M, 1,920 cached at $0.075/M, 40 output at $0.60/M."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        result = provider.send(chat(words(1996)), 1.0)
        assert result.cost_usd == pytest.approx((80 * 0.15 + 1920 * 0.075 + 40 * 0.60) / 1e6)

    def test_adapter_parses_response(self) -> None:
        """OpenAIAdapter.parse_usage reads the simulated response unchanged."""
        provider = SimulatedOpenAI()
        provider.send(chat(words(1996)), 0.0)
        result = provider.send(chat(words(1996)), 1.0)
        assert OpenAIAdapter().parse_usage(result.response) == Usage(2000, 1920, None, 40)

    def test_prompt_manager_requests_hit(self) -> None:
        """Requests built by PromptManager for OpenAI hit the whole previous prompt, in 128-token steps."""
        provider = SimulatedOpenAI()
        manager = PromptManager(words(1500), adapter=OpenAIAdapter("gpt-4o-mini"), session_id="s1")
        manager.append({"role": "user", "content": words(30)})
        first = manager.build_request()
        provider.send(first, 0.0)
        manager.append({"role": "assistant", "content": words(30)})
        manager.append({"role": "user", "content": words(30)})
        result = provider.send(manager.build_request(), 3.0)
        first_tokens = len(prompt_tokens(first, "openai"))
        assert result.cached_tokens == first_tokens // 128 * 128


class TestAnthropic:
    """SimulatedAnthropic: explicit breakpoints, minimum, 20-block lookback, TTL, limits."""

    def test_write_then_read(self) -> None:
        """A breakpoint writes its prefix; the same prefix is read on the next request."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        assert usage_of(provider.send(request, 0.0)) == (14, 0, 2004)
        assert usage_of(provider.send(request, 1.0)) == (14, 2004, 0)

    def test_below_minimum_writes_nothing(self) -> None:
        """A 504-token breakpoint prefix (minimum 1,024) reports both cache fields 0."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(500), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        assert usage_of(provider.send(request, 1.0)) == (518, 0, 0)

    def test_minimum_is_the_models(self) -> None:
        """claude-haiku-4-5 needs 4,096 tokens: a 2,004-token prefix is not cached."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)), model="claude-haiku-4-5")
        provider.send(request, 0.0)
        assert usage_of(provider.send(request, 1.0)) == (2018, 0, 0)

    def test_lookback_finds_entry_19_blocks_back(self) -> None:
        """A breakpoint at block 20 reads the entry written at block 1 (19 blocks back)."""
        provider = SimulatedAnthropic()
        provider.send(lookback_request(1, (1,)), 0.0)
        assert usage_of(provider.send(lookback_request(20, (20,)), 1.0)) == (0, 2018, 19 * 11)

    def test_lookback_misses_entry_20_blocks_back(self) -> None:
        """A breakpoint at block 21 does not see the entry at block 1 (20 blocks back)."""
        provider = SimulatedAnthropic()
        provider.send(lookback_request(1, (1,)), 0.0)
        assert usage_of(provider.send(lookback_request(21, (21,)), 1.0)) == (0, 0, 2018 + 20 * 11)

    def test_second_breakpoint_restores_the_hit(self) -> None:
        """A second breakpoint at the old position reads the entry 20 blocks back."""
        provider = SimulatedAnthropic()
        provider.send(lookback_request(1, (1,)), 0.0)
        assert usage_of(provider.send(lookback_request(21, (1, 21)), 1.0)) == (0, 2018, 20 * 11)

    def test_5m_entry_expires_300s_after_request_start(self) -> None:
        """An entry written by the request that started at 0 s is gone at 300 s."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        assert usage_of(provider.send(request, 300.0)) == (14, 0, 2004)

    def test_5m_entry_alive_just_before_expiry(self) -> None:
        """An entry written at 0 s is read at 299 s."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        assert usage_of(provider.send(request, 299.0)) == (14, 2004, 0)

    def test_read_refreshes_ttl(self) -> None:
        """A read at 299 s keeps the entry until 599 s."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        provider.send(request, 299.0)
        assert usage_of(provider.send(request, 598.0)) == (14, 2004, 0)

    def test_1h_ttl_survives_10_minutes(self) -> None:
        """A 1-hour entry is still read after 10 idle minutes."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), ONE_HOUR)], block(words(10)))
        provider.send(request, 0.0)
        assert usage_of(provider.send(request, 600.0)) == (14, 2004, 0)

    def test_1h_write_reported_and_priced(self) -> None:
        """A 1-hour write is reported as ephemeral_1h_input_tokens and costs 2x base."""
        provider = SimulatedAnthropic(output_tokens=0)
        request = messages_request([block(words(2000), ONE_HOUR)], block(words(10)))
        result = provider.send(request, 0.0)
        assert result.response["usage"]["cache_creation"] == {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 2004,
        }
        assert result.cost_usd == pytest.approx((14 * 3.0 + 2004 * 3.0 * 2) / 1e6)

    def test_mixed_ttl_split(self) -> None:
        """1h up to the 1-hour breakpoint, 5m from there to the last breakpoint."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), ONE_HOUR)], block(words(10)), block(words(10), FIVE_MIN))
        result = provider.send(request, 0.0)
        assert result.response["usage"]["cache_creation"] == {
            "ephemeral_5m_input_tokens": 25,
            "ephemeral_1h_input_tokens": 2004,
        }

    def test_read_cost(self) -> None:
        """Sonnet 4.6: reads at $0.30/M, plain input at $3/M, output at $15/M."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        result = provider.send(request, 1.0)
        assert result.cost_usd == pytest.approx((14 * 3.0 + 2004 * 0.3 + 40 * 15.0) / 1e6)

    def test_more_than_4_breakpoints_raise(self) -> None:
        """Five cache_control blocks are rejected like the API's 400."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(10), FIVE_MIN)], *(block(words(10), FIVE_MIN) for _ in range(4)))
        with pytest.raises(ValueError, match="maximum of 4"):
            provider.send(request, 0.0)

    def test_4_breakpoints_accepted(self) -> None:
        """Four cache_control blocks are accepted."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(10), FIVE_MIN)], *(block(words(10), FIVE_MIN) for _ in range(3)))
        assert provider.send(request, 0.0).input_tokens == 14 + 14 + 11 * 2

    def test_shorter_ttl_before_longer_raises(self) -> None:
        """A 5-minute breakpoint before a 1-hour one is rejected."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10), ONE_HOUR))
        with pytest.raises(ValueError, match="1h"):
            provider.send(request, 0.0)

    def test_malformed_ttl_raises(self) -> None:
        """A TTL other than 5m or 1h is rejected."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), {"type": "ephemeral", "ttl": "10m"})])
        with pytest.raises(ValueError, match="ttl"):
            provider.send(request, 0.0)

    def test_usage_sums_to_prompt_tokens(self) -> None:
        """input + cache read + cache write equals the prompt's tokens on writes, reads and misses."""
        provider = SimulatedAnthropic()
        requests = [
            lookback_request(1, (1,)),
            lookback_request(20, (20,)),
            lookback_request(30, (25,)),
            messages_request([block(words(500), FIVE_MIN)], block(words(10))),
            messages_request([block(words(2000))], block(words(10))),
        ]
        for now, request in enumerate(requests):
            result = provider.send(request, float(now))
            input_tokens, read, write = usage_of(result)
            assert input_tokens + read + write == len(prompt_tokens(request, "anthropic")) == result.input_tokens

    def test_top_level_cache_control_marks_last_block(self) -> None:
        """Automatic caching writes at the last block."""
        provider = SimulatedAnthropic()
        request = {**messages_request([block(words(2000))], block(words(10))), "cache_control": FIVE_MIN}
        assert usage_of(provider.send(request, 0.0)) == (0, 0, 2018)

    def test_tool_breakpoint_caches_tools(self) -> None:
        """A breakpoint on the last tool caches the tools; the system after it is input."""
        provider = SimulatedAnthropic()
        tool = {"name": "lookup", "description": words(1200), "input_schema": {"type": "object"}}
        request = {
            **messages_request([block(words(10))], block(words(10))),
            "tools": [{**tool, "cache_control": FIVE_MIN}],
        }
        result = provider.send(request, 0.0)
        input_tokens, read, write = usage_of(result)
        assert (input_tokens, read) == (28, 0)
        assert write == result.input_tokens - 28

    def test_adapter_parses_response(self) -> None:
        """AnthropicAdapter.parse_usage reads the simulated response unchanged."""
        provider = SimulatedAnthropic()
        request = messages_request([block(words(2000), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        result = provider.send(request, 1.0)
        assert AnthropicAdapter().parse_usage(result.response) == Usage(2018, 2004, 0, 40)

    def test_prompt_manager_requests_read_previous_turn(self) -> None:
        """Requests built by PromptManager read the static prefix, then the previous turn's history."""
        provider = SimulatedAnthropic()
        manager = PromptManager(words(1500), adapter=AnthropicAdapter(max_tokens=100))
        manager.append({"role": "user", "content": words(30)})
        results = [provider.send(manager.build_request(), 0.0)]
        for turn in range(1, 3):
            manager.append({"role": "assistant", "content": words(30)})
            manager.append({"role": "user", "content": words(30)})
            results.append(provider.send(manager.build_request(), 5.0 * turn))
        usages = [usage_of(result) for result in results]
        assert usages[0][1:] == (0, 1504)
        assert usages[1][1] == 1504
        assert usages[2][1] == usages[1][1] + usages[1][2]


class TestVLLM:
    """SimulatedVLLM: 16-token blocks and LRU eviction."""

    def test_16_token_granularity(self) -> None:
        """A 100-token shared prefix gives 96 cached tokens."""
        provider = SimulatedVLLM()
        provider.send(chat(words(96)), 0.0)
        result = provider.send(chat(words(96), words(10)), 1.0)
        assert (result.input_tokens, result.cached_tokens) == (114, 96)

    def test_identical_prompt_recomputes_last_token(self) -> None:
        """A fully cached 96-token prompt reports 80: the last block holds the token recomputed for logits."""
        provider = SimulatedVLLM()
        provider.send(chat(words(92)), 0.0)
        assert provider.send(chat(words(92)), 1.0).cached_tokens == 80

    def test_lru_eviction_with_tiny_capacity(self) -> None:
        """With room for 4 blocks, a second prompt evicts the first."""
        provider = SimulatedVLLM(capacity_tokens=64)
        provider.send(chat(words(64)), 0.0)
        provider.send(chat(words(64, " world")), 1.0)
        assert provider.send(chat(words(64)), 2.0).cached_tokens == 0

    def test_both_prompts_fit(self) -> None:
        """With room for 8 blocks, both 4-block prompts stay cached."""
        provider = SimulatedVLLM(capacity_tokens=128)
        provider.send(chat(words(64)), 0.0)
        provider.send(chat(words(64, " world")), 1.0)
        assert provider.send(chat(words(64)), 2.0).cached_tokens == 64

    def test_last_blocks_evicted_first(self) -> None:
        """With room for 6 blocks, evicting 2 of a 4-block prompt drops its last two and keeps 32 tokens."""
        provider = SimulatedVLLM(capacity_tokens=96)
        provider.send(chat(words(64)), 0.0)
        provider.send(chat(words(64, " world")), 1.0)
        assert provider.send(chat(words(64)), 2.0).cached_tokens == 32

    def test_cache_salt_isolates(self) -> None:
        """The same prompt under another cache_salt misses."""
        provider = SimulatedVLLM()
        provider.send(chat(words(96), extra_body={"cache_salt": "a"}), 0.0)
        assert provider.send(chat(words(96), extra_body={"cache_salt": "b"}), 1.0).cached_tokens == 0

    def test_usage_in_openai_fields(self) -> None:
        """vLLM reports cached tokens in prompt_tokens_details, cost 0."""
        provider = SimulatedVLLM()
        provider.send(chat(words(96)), 0.0)
        result = provider.send(chat(words(96), words(10)), 1.0)
        assert result.response["usage"]["prompt_tokens_details"] == {"cached_tokens": 96}
        assert result.cost_usd == 0.0


class TestLlamaCpp:
    """SimulatedLlamaCpp: one slot, longest common prefix with the previous request."""

    def test_one_slot_is_serial(self) -> None:
        """llama.cpp serves one request at a time (the runner queues behind background work)."""
        assert (SimulatedLlamaCpp.serial, hasattr(SimulatedOpenAI, "serial")) == (True, False)

    def test_alternating_conversations_never_hit(self) -> None:
        """Two conversations sent in turn share only the 3-token system header."""
        provider = SimulatedLlamaCpp()
        a, b = chat(words(500)), chat(words(500, " world"))
        assert [provider.send(r, float(t)).cached_tokens for t, r in enumerate([a, b, a, b])] == [0, 3, 3, 3]

    def test_append_reuses_previous_prompt_only(self) -> None:
        """The next turn reuses the previous prompt but not the tokens generated after it."""
        provider = SimulatedLlamaCpp()
        provider.send(chat(words(500), words(20)), 0.0)
        result = provider.send(chat(words(500), words(20), words(20), words(20)), 1.0)
        assert (result.input_tokens, result.cached_tokens) == (576, 528)

    def test_identical_prompt_evaluates_one_token(self) -> None:
        """The same prompt again evaluates exactly 1 token."""
        provider = SimulatedLlamaCpp()
        provider.send(chat(words(500)), 0.0)
        assert provider.send(chat(words(500)), 1.0).response["timings"]["prompt_n"] == 1

    def test_usage_has_timings_and_no_details(self) -> None:
        """Usage has no prompt_tokens_details; timings carry prompt_n and cache_n."""
        provider = SimulatedLlamaCpp()
        provider.send(chat(words(500), words(20)), 0.0)
        response = provider.send(chat(words(500), words(20), words(20), words(20)), 1.0).response
        assert "prompt_tokens_details" not in response["usage"]
        assert response["usage"]["prompt_tokens"] == 576
        assert (response["timings"]["prompt_n"], response["timings"]["cache_n"]) == (48, 528)

    def test_adapter_reads_cache_n(self) -> None:
        """OpenAICompatibleAdapter reads cached tokens from timings.cache_n."""
        provider = SimulatedLlamaCpp()
        provider.send(chat(words(500), words(20)), 0.0)
        result = provider.send(chat(words(500), words(20), words(20), words(20)), 1.0)
        adapter = OpenAICompatibleAdapter("http://127.0.0.1:8080/v1", "m", server="llamacpp", counter=EstimateCounter())
        assert adapter.parse_usage(result.response) == Usage(576, 528, None, 40)

    def test_cache_prompt_false_disables_reuse(self) -> None:
        """extra_body cache_prompt=false evaluates the whole prompt."""
        provider = SimulatedLlamaCpp()
        provider.send(chat(words(500)), 0.0)
        assert provider.send(chat(words(500), extra_body={"cache_prompt": False}), 1.0).cached_tokens == 0


class TestProviders:
    """Shared behaviour: determinism, reset, output tokens, make_provider."""

    @staticmethod
    def _ttfts(provider: Any) -> list[float]:
        return [provider.send(chat(words(1996), words(10 * t)), float(t)).ttft_s for t in range(5)]

    def test_same_seed_same_ttfts(self) -> None:
        """Two providers with the same seed give the same TTFTs."""
        assert self._ttfts(SimulatedOpenAI(seed=3)) == self._ttfts(SimulatedOpenAI(seed=3))

    def test_other_seed_other_ttfts(self) -> None:
        """Another seed gives other TTFTs."""
        assert self._ttfts(SimulatedOpenAI(seed=3)) != self._ttfts(SimulatedOpenAI(seed=4))

    def test_reset_replays(self) -> None:
        """reset() empties the cache and restarts the noise, so the same sends repeat exactly."""
        provider = SimulatedVLLM(seed=9)
        first = [(r.ttft_s, r.cached_tokens) for r in (provider.send(chat(words(96)), float(t)) for t in range(3))]
        provider.reset()
        again = [(r.ttft_s, r.cached_tokens) for r in (provider.send(chat(words(96)), float(t)) for t in range(3))]
        assert first == again
        assert [cached for _, cached in first] == [0, 96, 96]

    def test_max_tokens_caps_output(self) -> None:
        """max_tokens=0 (a pre-warm) generates nothing."""
        provider = SimulatedAnthropic()
        request = {**messages_request([block(words(2000), FIVE_MIN)]), "max_tokens": 0}
        assert provider.send(request, 0.0).response["usage"]["output_tokens"] == 0

    @pytest.mark.parametrize(
        ("name", "cls"),
        [
            ("openai", SimulatedOpenAI),
            ("anthropic", SimulatedAnthropic),
            ("vllm", SimulatedVLLM),
            ("llamacpp", SimulatedLlamaCpp),
        ],
    )
    def test_make_provider(self, name: str, cls: type) -> None:
        """make_provider builds each provider by its name."""
        provider = make_provider(name, seed=2)
        assert type(provider) is cls
        assert provider.name == name

    def test_make_provider_unknown_raises(self) -> None:
        """An unknown provider name is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            make_provider("gemini")

    def test_make_provider_bad_argument_raises(self) -> None:
        """An argument the provider does not take is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            make_provider("openai", capacity_tokens=10)


class TestProfiles:
    """Latency profiles and their sources."""

    def test_anthropic_book_uncached(self) -> None:
        """A 100k-token uncached prompt takes 11.5 s +- 10% with noise off."""
        provider = SimulatedAnthropic(profile=dataclasses.replace(ANTHROPIC_PROFILE, noise_sigma=0.0))
        request = messages_request([block(words(99_996), FIVE_MIN)], block(words(10)))
        assert provider.send(request, 0.0).ttft_s == pytest.approx(11.5, rel=0.1)

    def test_anthropic_book_cached(self) -> None:
        """The same 100k-token prompt read from the cache takes 2.4 s +- 10% with noise off."""
        provider = SimulatedAnthropic(profile=dataclasses.replace(ANTHROPIC_PROFILE, noise_sigma=0.0))
        request = messages_request([block(words(99_996), FIVE_MIN)], block(words(10)))
        provider.send(request, 0.0)
        result = provider.send(request, 1.0)
        assert result.cached_tokens == 100_000
        assert result.ttft_s == pytest.approx(2.4, rel=0.1)

    def test_openai_cookbook_ratios(self) -> None:
        """0.45 s uncached at 1,024 tokens; cached 7% faster there and 67% faster at 150k."""
        profile = OPENAI_PROFILE
        assert profile.predict(1024, 0) == pytest.approx(0.45)
        assert profile.predict(0, 1024) / profile.predict(1024, 0) == pytest.approx(0.93)
        assert profile.predict(0, 150_000) / profile.predict(150_000, 0) == pytest.approx(0.33)

    def test_llamacpp_fits_2k_rows(self) -> None:
        """2k cold (10.32 s) and identical (26 ms) are within 10%, append (231 ms) within 15%."""
        profile = LLAMACPP_PROFILE
        assert profile.predict(2104, 0) == pytest.approx(10.32, rel=0.1)
        assert profile.predict(1, 2139) == pytest.approx(0.026, rel=0.1)
        assert profile.predict(36, 2104) == pytest.approx(0.231, rel=0.15)

    def test_vllm_cold_row(self) -> None:
        """A 2,388-token cold prompt takes 1.48 s and a fully cached one 1/8 of that."""
        assert VLLM_PROFILE.predict(2388, 0) == pytest.approx(1.48)
        assert VLLM_PROFILE.predict(0, 2388) == pytest.approx(1.48 / 8)

    def test_profiles_name_their_sources(self) -> None:
        """Every profile carries a source."""
        sources = [p.source for p in (ANTHROPIC_PROFILE, OPENAI_PROFILE, VLLM_PROFILE, LLAMACPP_PROFILE)]
        assert all(len(source) > 40 for source in sources)

    def test_negative_constant_rejected(self) -> None:
        """A negative constant is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            LatencyProfile(base_s=-1.0, per_uncached_s=0.0, per_cached_s=0.0, noise_sigma=0.0, source="x")

    def test_noise_is_lognormal_around_prediction(self) -> None:
        """With sigma 0.2 the median TTFT over many sends is the noise-free prediction."""
        provider = SimulatedOpenAI(seed=1)
        ttfts = sorted(provider.send(chat(words(500)), float(t)).ttft_s for t in range(2001))
        assert ttfts[1000] == pytest.approx(OPENAI_PROFILE.predict(504, 0), rel=0.03)


class TestLongRuns:
    """Many sends: housekeeping and invariants."""

    @pytest.mark.parametrize("name", ["openai", "anthropic", "vllm"])
    def test_sweeping_expired_entries_changes_nothing(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Dropping expired entries every few sends gives the same results as never dropping them."""

        def run() -> list[tuple[int, int, int]]:
            provider = make_provider(name)
            out = []
            now = 0.0
            for turn in range(120):
                now += 400.0 if turn % 7 == 0 else 30.0
                history = [words(10 + turn % 5) for _ in range(turn % 11)]
                if name == "anthropic":
                    blocks = [block(text) for text in history] + [block(words(10), FIVE_MIN)]
                    request = messages_request([block(words(1100 + turn % 3), FIVE_MIN)], *blocks)
                else:
                    request = chat(words(1100 + turn % 3), *history)
                result = provider.send(request, now)
                out.append((result.input_tokens, result.cached_tokens, result.cache_write_tokens))
            return out

        monkeypatch.setattr(simulate, "_SWEEP_EVERY", 10**9)
        never = run()
        monkeypatch.setattr(simulate, "_SWEEP_EVERY", 3)
        assert run() == never
        assert any(cached for _, cached, _ in never)

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
                st.sets(st.integers(min_value=0, max_value=29), max_size=4),
                st.floats(min_value=0.0, max_value=400.0),
                st.booleans(),
            ),
            min_size=1,
            max_size=6,
        )
    )
    def test_anthropic_usage_invariants(self, turns: list[tuple[list[int], set[int], float, bool]]) -> None:
        """Random layouts and gaps: fields sum to the prompt, reads end on a block, writes need a breakpoint."""
        provider = SimulatedAnthropic()
        now = 0.0
        for sizes, marks, gap, long_ttl in turns:
            now += gap
            control = ONE_HOUR if long_ttl else FIVE_MIN
            blocks = [block(words(n), control if i in marks else None) for i, n in enumerate(sizes)]
            request = messages_request([block(words(1100))], *blocks)
            tokens = prompt_tokens(request, "anthropic")
            input_tokens, read, write = usage_of(provider.send(request, now))
            boundaries = {0, 1104, *(1104 + 3 + sum(sizes[: i + 1]) + i + 1 for i in range(len(sizes)))}
            assert input_tokens + read + write == len(tokens)
            assert read in boundaries
            assert write == 0 or (marks & set(range(len(sizes))))
