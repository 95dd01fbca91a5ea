"""Tests for llmvoice.benchmark.scenarios: seeded scenario generators and their JSON form."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llmvoice.benchmark.base import Fact, Scenario, Step, Turn
from llmvoice.benchmark.scenarios import (
    DEFAULT_TURNS,
    SCENARIOS,
    SCHEMA_VERSION,
    generate,
    load_scenario,
    scenario_from_json,
    scenario_stats,
    scenario_to_json,
)
from llmvoice.errors import ConfigurationError
from llmvoice.tokens import load_encoding

NAMES = sorted(SCENARIOS)
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "benchmark" / "scenarios"


@functools.cache
def scenario(name: str, seed: int = 0, turns: int | None = None) -> Scenario:
    return generate(name, turns=turns, seed=seed)


def tokens() -> Callable[[str], int]:
    encoding = load_encoding("o200k_base")
    if encoding is None:
        pytest.skip("o200k_base data is not installed")
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def tool_results(s: Scenario) -> Iterator[tuple[str, str]]:
    """(tool name, result content) of every tool call."""
    for turn in s.turns:
        for step in turn.steps:
            for call, result in zip(step.assistant.get("tool_calls") or (), step.tool_results, strict=True):
                yield call["function"]["name"], result["content"]


def all_text(s: Scenario) -> list[str]:
    """Every piece of text of a scenario, as contenders would send it."""
    texts = [s.system_prompt, json.dumps(list(s.tools), ensure_ascii=False)]
    for turn in s.turns:
        texts.append(turn.user)
        texts.append(turn.context or "")
        for step in turn.steps:
            texts.append(json.dumps(dict(step.assistant), ensure_ascii=False))
            texts.extend(json.dumps(dict(result), ensure_ascii=False) for result in step.tool_results)
    return texts


def document(name: str = "voice_support", turns: int = 12) -> dict[str, Any]:
    """A valid scenario as a JSON object, to break in one place."""
    loaded: dict[str, Any] = json.loads(scenario_to_json(scenario(name, turns=turns)))
    return loaded


def first_tool_turn(doc: dict[str, Any]) -> int:
    return next(i for i, turn in enumerate(doc["turns"]) if len(turn["steps"]) > 1)


# --- registry and arguments -------------------------------------------------------------------


def test_registry_names() -> None:
    assert NAMES == ["long_call", "long_system", "tool_heavy", "ttl_pauses", "voice_support"]
    assert set(DEFAULT_TURNS) == set(SCENARIOS)


def test_default_turns_values() -> None:
    assert DEFAULT_TURNS == {
        "voice_support": 300,
        "tool_heavy": 60,
        "long_system": 100,
        "ttl_pauses": 120,
        "long_call": 300,
    }


@pytest.mark.parametrize("name", NAMES)
def test_default_turn_count(name: str) -> None:
    assert len(scenario(name).turns) == DEFAULT_TURNS[name]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("turns", [1, 3, 7, 10, 300])
def test_exact_turn_count(name: str, turns: int) -> None:
    assert len(scenario(name, turns=turns).turns) == turns


def test_exact_turn_count_1000() -> None:
    assert len(generate("voice_support", turns=1000).turns) == 1000


@pytest.mark.parametrize("name", NAMES)
def test_name_description_and_seed_recorded(name: str) -> None:
    s = scenario(name, seed=5, turns=4)
    assert (s.name, s.description, s.seed) == (name, SCENARIOS[name], 5)


def test_unknown_name_names_value_and_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"'chitchat'.*voice_support.*tool_heavy"):
        generate("chitchat")


@pytest.mark.parametrize("turns", [0, -3, 2.5, "10", True])
def test_bad_turns_rejected(turns: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"turns.*{turns!r}"):
        generate("voice_support", turns=turns)


def test_bad_turns_message_shows_a_valid_choice() -> None:
    with pytest.raises(ConfigurationError, match="integer >= 1"):
        generate("voice_support", turns=0)


@pytest.mark.parametrize("seed", [1.5, "0", None])
def test_bad_seed_rejected(seed: Any) -> None:
    with pytest.raises(ConfigurationError, match="seed"):
        generate("voice_support", turns=2, seed=seed)


def test_generation_is_fast() -> None:
    generate("voice_support", turns=5)
    started = time.perf_counter()
    generate("voice_support", turns=300)
    assert time.perf_counter() - started < 0.5


# --- determinism and prefix consistency -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_json(name: str) -> None:
    assert scenario_to_json(generate(name, seed=11, turns=40)) == scenario_to_json(generate(name, seed=11, turns=40))


@pytest.mark.parametrize("name", NAMES)
def test_different_seed_different_json(name: str) -> None:
    assert scenario_to_json(generate(name, seed=1, turns=40)) != scenario_to_json(generate(name, seed=2, turns=40))


@pytest.mark.parametrize("name", NAMES)
def test_scenarios_differ_from_each_other(name: str) -> None:
    others = [other for other in NAMES if other != name]
    users = [t.user for t in scenario(name, turns=30).turns]
    for other in others:
        assert users != [t.user for t in scenario(other, turns=30).turns]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("short", [1, 5, 9, 13, 46])
def test_prefix_consistent(name: str, short: int) -> None:
    long_run = scenario(name, turns=120)
    short_run = scenario(name, turns=short)
    assert short_run.turns == long_run.turns[:short]
    assert short_run.facts == tuple(f for f in long_run.facts if f.turn < short)
    assert (short_run.system_prompt, short_run.tools) == (long_run.system_prompt, long_run.tools)


# --- validity rules ---------------------------------------------------------------------------

CASES = [(name, seed) for name in NAMES for seed in (0, 1, 2)]


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_every_turn_has_a_step(name: str, seed: int) -> None:
    assert all(len(turn.steps) >= 1 for turn in scenario(name, seed).turns)


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_last_step_is_a_spoken_reply(name: str, seed: int) -> None:
    for turn in scenario(name, seed).turns:
        last = turn.steps[-1]
        assert last.assistant["role"] == "assistant"
        assert isinstance(last.assistant["content"], str)
        assert last.assistant["content"].strip()
        assert "tool_calls" not in last.assistant
        assert last.tool_results == ()


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_earlier_steps_are_tool_rounds_with_results_in_order(name: str, seed: int) -> None:
    for turn in scenario(name, seed).turns:
        for step in turn.steps[:-1]:
            calls = step.assistant["tool_calls"]
            assert step.assistant["role"] == "assistant"
            assert len(calls) >= 1
            assert [r["tool_call_id"] for r in step.tool_results] == [c["id"] for c in calls]
            assert all(r["role"] == "tool" and isinstance(r["content"], str) for r in step.tool_results)


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_tool_calls_have_openai_shape(name: str, seed: int) -> None:
    for turn in scenario(name, seed).turns:
        for step in turn.steps[:-1]:
            for call in step.assistant["tool_calls"]:
                assert set(call) == {"id", "type", "function"}
                assert call["type"] == "function"
                assert set(call["function"]) == {"name", "arguments"}
                assert isinstance(json.loads(call["function"]["arguments"]), dict)


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_tool_call_ids_unique(name: str, seed: int) -> None:
    ids = [c["id"] for t in scenario(name, seed).turns for st in t.steps for c in st.assistant.get("tool_calls") or ()]
    assert ids
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_tool_calls_name_defined_tools(name: str, seed: int) -> None:
    s = scenario(name, seed)
    defined = {tool["function"]["name"] for tool in s.tools}
    used = {tool for tool, _ in tool_results(s)}
    assert used <= defined


@pytest.mark.parametrize("name", NAMES)
def test_tool_arguments_follow_their_schema(name: str) -> None:
    s = scenario(name)
    schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in s.tools}
    for turn in s.turns:
        for step in turn.steps[:-1]:
            for call in step.assistant["tool_calls"]:
                schema = schemas[call["function"]["name"]]
                arguments = json.loads(call["function"]["arguments"])
                assert set(schema["required"]) <= set(arguments) <= set(schema["properties"])


@pytest.mark.parametrize("name", NAMES)
def test_tools_are_openai_function_definitions(name: str) -> None:
    for tool in scenario(name).tools:
        assert tool["type"] == "function"
        assert tool["function"]["description"]
        assert tool["function"]["parameters"]["type"] == "object"


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_at_s_non_decreasing_from_zero(name: str, seed: int) -> None:
    times = [turn.at_s for turn in scenario(name, seed).turns]
    assert times[0] >= 0
    assert times == sorted(times)


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_text_is_plain_str_without_lone_surrogates(name: str, seed: int) -> None:
    for text in all_text(scenario(name, seed)):
        assert type(text) is str
        text.encode("utf-8")  # raises on a lone surrogate


# --- planted facts ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_at_least_six_facts_in_first_ten_turns(name: str, seed: int) -> None:
    facts = scenario(name, seed).facts
    assert len(facts) >= 6
    assert all(fact.turn < 10 for fact in facts)


def test_fact_keys_and_turns() -> None:
    assert [(f.key, f.turn) for f in scenario("voice_support").facts] == [
        ("name", 0),
        ("order_number", 1),
        ("loyalty_id", 2),
        ("delivery_city", 4),
        ("product_preference", 5),
        ("phone", 7),
        ("contact_time", 8),
    ]


@pytest.mark.parametrize(("name", "seed"), [*CASES, ("voice_support", 7), ("tool_heavy", 9), ("ttl_pauses", 4)])
def test_fact_appears_only_in_planting_utterance(name: str, seed: int) -> None:
    s = scenario(name, seed)
    haystack = "\n".join(all_text(s)).lower()
    for fact in s.facts:
        assert fact.value in s.turns[fact.turn].user
        assert haystack.count(fact.value.lower()) == 1, fact


def test_fact_value_survives_json_escaping() -> None:
    for fact in scenario("voice_support").facts:
        assert json.dumps(fact.value, ensure_ascii=False) == f'"{fact.value}"'


def test_fact_values_vary_with_seed() -> None:
    first = {f.key: f.value for f in scenario("voice_support", 0).facts}
    second = {f.key: f.value for f in scenario("voice_support", 1).facts}
    assert all(first[key] != second[key] for key in ("name", "order_number", "loyalty_id", "phone"))


def test_order_number_format() -> None:
    value = next(f.value for f in scenario("voice_support").facts if f.key == "order_number")
    assert value.startswith("NW-")
    assert len(value) == 8
    assert value[3:].isdigit()


@pytest.mark.parametrize(("turns", "expected"), [(1, ["name"]), (3, ["name", "order_number", "loyalty_id"])])
def test_short_runs_plant_only_facts_that_fit(turns: int, expected: list[str]) -> None:
    assert [f.key for f in scenario("voice_support", turns=turns).facts] == expected


# --- voice_support shape ----------------------------------------------------------------------


def test_voice_support_user_utterance_words() -> None:
    words = [len(turn.user.split()) for turn in scenario("voice_support").turns]
    assert min(words) >= 5
    assert max(words) <= 25


def test_voice_support_reply_words() -> None:
    words = [len(turn.steps[-1].assistant["content"].split()) for turn in scenario("voice_support").turns]
    assert min(words) >= 10
    assert max(words) <= 45


def test_voice_support_text_is_varied() -> None:
    turns = scenario("voice_support").turns
    assert len({turn.user for turn in turns}) >= 200
    assert len({turn.steps[-1].assistant["content"] for turn in turns}) >= 200


def test_voice_support_tool_call_every_four_to_six_turns() -> None:
    tool_turns = [i for i, turn in enumerate(scenario("voice_support").turns) if len(turn.steps) > 1]
    gaps = [b - a for a, b in itertools.pairwise(tool_turns)]
    assert 50 <= len(tool_turns) <= 75
    assert min(gaps) >= 4


def test_voice_support_one_tool_round_per_tool_turn() -> None:
    assert {len(turn.steps) for turn in scenario("voice_support").turns} == {1, 2}


def test_voice_support_tool_result_sizes() -> None:
    count = tokens()
    sizes = [count(content) for _, content in tool_results(scenario("voice_support"))]
    assert min(sizes) >= 50
    assert max(sizes) <= 300


def test_voice_support_tool_results_are_json_objects() -> None:
    for _, content in tool_results(scenario("voice_support")):
        assert isinstance(json.loads(content), dict)


def test_voice_support_context_sizes() -> None:
    count = tokens()
    contexts = {turn.context for turn in scenario("voice_support").turns if turn.context is not None}
    sizes = [count(context) for context in contexts]
    assert min(sizes) >= 100
    assert max(sizes) <= 200


def test_voice_support_most_turns_have_context() -> None:
    turns = scenario("voice_support").turns
    with_context = sum(turn.context is not None for turn in turns)
    assert with_context >= 0.75 * len(turns)
    assert turns[0].context is not None


def test_voice_support_context_rotates_every_three_to_five_turns() -> None:
    turns = scenario("voice_support").turns
    changes = [i for i in range(1, len(turns)) if turns[i].context != turns[i - 1].context]
    gaps = [b - a for a, b in zip([0, *changes], changes, strict=False)]
    assert min(gaps) >= 3
    assert max(gaps) <= 5


def test_voice_support_pacing() -> None:
    turns = scenario("voice_support").turns
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(turns)]
    assert min(gaps) >= 5
    assert max(gaps) <= 20
    assert 8 <= sum(gaps) / len(gaps) <= 15


def test_voice_support_system_prompt_tokens() -> None:
    assert 1_100 <= tokens()(scenario("voice_support").system_prompt) <= 1_700


# --- tool_heavy, long_system, ttl_pauses ------------------------------------------------------


def test_tool_heavy_tool_output_sizes() -> None:
    count = tokens()
    sizes = [count(content) for _, content in tool_results(scenario("tool_heavy"))]
    assert min(sizes) >= 400
    assert max(sizes) <= 1_500


def test_tool_heavy_most_turns_have_two_to_four_rounds() -> None:
    rounds = [len(turn.steps) - 1 for turn in scenario("tool_heavy").turns]
    assert sum(2 <= r <= 4 for r in rounds) > len(rounds) / 2
    assert max(rounds) == 4


def test_tool_heavy_uses_research_tools() -> None:
    used = {tool for tool, _ in tool_results(scenario("tool_heavy"))}
    assert used == {"search_catalog", "query_inventory", "fetch_logs", "get_order_history"}


def test_long_system_prompt_tokens() -> None:
    assert 3_600 <= tokens()(scenario("long_system").system_prompt) <= 4_400


def test_long_system_extends_the_voice_prompt() -> None:
    assert scenario("long_system").system_prompt.startswith(scenario("voice_support").system_prompt)


def test_ttl_pauses_holds_longer_than_five_minutes() -> None:
    turns = scenario("ttl_pauses").turns
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(turns)]
    assert sum(g > 300 for g in gaps) >= 2
    assert sum(g > 3_600 for g in gaps) >= 1


def test_ttl_pauses_hold_lengths() -> None:
    turns = scenario("ttl_pauses").turns
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(turns)]
    holds = [g for g in gaps if 300 < g <= 3_600]
    assert len(holds) == 6
    assert all(360 <= g <= 600 for g in holds)


def test_other_scenarios_have_no_long_pauses() -> None:
    for name in ("voice_support", "tool_heavy", "long_system"):
        turns = scenario(name).turns
        assert max(b.at_s - a.at_s for a, b in itertools.pairwise(turns)) < 60


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip(name: str) -> None:
    s = scenario(name)
    assert scenario_from_json(scenario_to_json(s)) == s


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip_text_is_stable(name: str) -> None:
    text = scenario_to_json(scenario(name, turns=20))
    assert scenario_to_json(scenario_from_json(text)) == text


def test_json_has_schema_version() -> None:
    assert json.loads(scenario_to_json(scenario("voice_support", turns=2)))["schema"] == SCHEMA_VERSION == 1


def test_json_top_level_keys() -> None:
    doc = document(turns=2)
    assert list(doc) == ["schema", "name", "description", "seed", "system_prompt", "tools", "facts", "turns"]


def test_hand_built_scenario_round_trips() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    s = Scenario(
        name="custom",
        description="d",
        seed=0,
        system_prompt="hello world",
        tools=({"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}},),
        turns=(
            Turn(
                at_s=0.0,
                user="hi",
                context=None,
                steps=(
                    Step(
                        assistant={"role": "assistant", "content": None, "tool_calls": [call]},
                        tool_results=({"role": "tool", "tool_call_id": "c1", "content": "ok"},),
                    ),
                    Step(assistant={"role": "assistant", "content": "done"}),
                ),
            ),
        ),
        facts=(Fact(key="k", value="hi", turn=0),),
    )
    assert scenario_from_json(scenario_to_json(s)) == s


def mutate(change: Callable[[dict[str, Any]], None]) -> str:
    doc = document()
    change(doc)
    return json.dumps(doc)


def _set_tool_turn(doc: dict[str, Any], key: str, value: Any) -> None:
    doc["turns"][first_tool_turn(doc)]["steps"][0]["tool_results"][0][key] = value


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing name", lambda d: d.pop("name"), r"\bname: missing"),
    ("missing schema", lambda d: d.pop("schema"), r"\bschema: missing"),
    ("newer schema", lambda d: d.update(schema=2), r"schema: version 2 is newer"),
    ("zero schema", lambda d: d.update(schema=0), r"schema: unknown version 0"),
    ("seed not int", lambda d: d.update(seed="0"), r"seed: expected int, got str"),
    ("bool seed", lambda d: d.update(seed=True), r"seed: expected int, got bool"),
    ("prompt not str", lambda d: d.update(system_prompt=None), r"system_prompt: expected str, got null"),
    ("tools not list", lambda d: d.update(tools={}), r"tools: expected list"),
    ("tool not function", lambda d: d["tools"][0].update(type="x"), r"tools\[0\]\.type"),
    ("no turns", lambda d: d.update(turns=[]), r"turns: a scenario needs at least one turn"),
    ("user not str", lambda d: d["turns"][3].update(user=5), r"turns\[3\]\.user: expected str, got int"),
    ("missing context", lambda d: d["turns"][2].pop("context"), r"turns\[2\]\.context: missing"),
    ("context not str", lambda d: d["turns"][2].update(context=[]), r"turns\[2\]\.context: expected str or NoneType"),
    ("missing at_s", lambda d: d["turns"][1].pop("at_s"), r"turns\[1\]\.at_s: missing"),
    ("decreasing at_s", lambda d: d["turns"][5].update(at_s=1.0), r"turns\[5\]\.at_s: decreases"),
    ("negative at_s", lambda d: d["turns"][0].update(at_s=-1.0), r"turns\[0\]\.at_s: must be >= 0"),
    ("no steps", lambda d: d["turns"][4].update(steps=[]), r"turns\[4\]\.steps: a turn needs at least one step"),
    (
        "result without matching call",
        lambda d: _set_tool_turn(d, "tool_call_id", "call_unknown"),
        r"turns\[\d+\]\.steps\[0\]\.tool_results\[0\]\.tool_call_id: 'call_unknown' does not match",
    ),
    (
        "result content not str",
        lambda d: _set_tool_turn(d, "content", {"a": 1}),
        r"turns\[\d+\]\.steps\[0\]\.tool_results\[0\]\.content: expected str",
    ),
    (
        "missing result",
        lambda d: d["turns"][first_tool_turn(d)]["steps"][0].update(tool_results=[]),
        r"turns\[\d+\]\.steps\[0\]\.tool_results: expected 1 results",
    ),
    (
        "last step with tool_calls",
        lambda d: d["turns"][0]["steps"][-1]["assistant"].update(
            tool_calls=[{"id": "x", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}]
        ),
        r"turns\[0\]\.steps\[0\]\.assistant\.tool_calls: the last step",
    ),
    (
        "empty reply",
        lambda d: d["turns"][0]["steps"][-1]["assistant"].update(content=""),
        r"turns\[0\]\.steps\[0\]\.assistant\.content: the last step needs",
    ),
    (
        "tool round without calls",
        lambda d: d["turns"][first_tool_turn(d)]["steps"][0]["assistant"].pop("tool_calls"),
        r"turns\[\d+\]\.steps\[0\]\.assistant\.tool_calls: every step but the last",
    ),
    (
        "undefined tool",
        lambda d: d["turns"][first_tool_turn(d)]["steps"][0]["assistant"]["tool_calls"][0]["function"].update(
            name="launch_rocket"
        ),
        r"tool_calls\[0\]\.function\.name: tool 'launch_rocket' is not defined",
    ),
    (
        "arguments not str",
        lambda d: d["turns"][first_tool_turn(d)]["steps"][0]["assistant"]["tool_calls"][0]["function"].update(
            arguments={}
        ),
        r"tool_calls\[0\]\.function\.arguments: expected str, got dict",
    ),
    (
        "assistant role",
        lambda d: d["turns"][0]["steps"][0]["assistant"].update(role="user"),
        r"turns\[0\]\.steps\[0\]\.assistant\.role",
    ),
    ("fact turn out of range", lambda d: d["facts"][0].update(turn=99), r"facts\[0\]\.turn: 99 is outside"),
    ("fact value missing", lambda d: d["facts"][1].pop("value"), r"facts\[1\]\.value: missing"),
]


@pytest.mark.parametrize(("change", "pattern"), [(c, p) for _, c, p in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_json_names_the_field(change: Callable[[dict[str, Any]], None], pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        scenario_from_json(mutate(change))


def test_duplicate_tool_call_id_rejected() -> None:
    doc = document(turns=30)
    tool_turns = [turn for turn in doc["turns"] if len(turn["steps"]) > 1]
    first = tool_turns[0]["steps"][0]
    second = tool_turns[1]["steps"][0]
    second["assistant"]["tool_calls"][0]["id"] = first["assistant"]["tool_calls"][0]["id"]
    second["tool_results"][0]["tool_call_id"] = first["assistant"]["tool_calls"][0]["id"]
    with pytest.raises(ConfigurationError, match=r"tool_calls\[0\]\.id: duplicate tool call id"):
        scenario_from_json(json.dumps(doc))


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", "null"])
def test_not_a_json_object_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid scenario JSON"):
        scenario_from_json(text)


def test_lone_surrogate_rejected() -> None:
    doc = document()
    doc["turns"][0]["user"] = "bad \ud800 text"
    with pytest.raises(ConfigurationError, match=r"turns\[0\]\.user: contains a lone surrogate"):
        scenario_from_json(json.dumps(doc))


def test_integer_at_s_accepted_as_float() -> None:
    doc = document(turns=2)
    doc["turns"][0]["at_s"] = 3
    assert scenario_from_json(json.dumps(doc)).turns[0].at_s == 3.0


# --- committed files and load_scenario ----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_committed_json_matches_generator(name: str) -> None:
    path = SCENARIO_DIR / f"{name}.json"
    assert path.read_text(encoding="utf-8") == scenario_to_json(scenario(name))


def test_load_scenario_by_name() -> None:
    assert load_scenario("ttl_pauses", turns=15, seed=3) == generate("ttl_pauses", turns=15, seed=3)


def test_load_scenario_by_name_default_turns() -> None:
    assert len(load_scenario("tool_heavy").turns) == 60


def test_load_scenario_from_file(tmp_path: Path) -> None:
    path = tmp_path / "call.json"
    path.write_text(scenario_to_json(scenario("voice_support", turns=20)), encoding="utf-8")
    assert load_scenario(str(path)) == scenario("voice_support", turns=20)


def test_load_scenario_from_file_cuts_turns(tmp_path: Path) -> None:
    path = tmp_path / "call.json"
    path.write_text(scenario_to_json(scenario("voice_support", turns=20)), encoding="utf-8")
    assert load_scenario(str(path), turns=3) == scenario("voice_support", turns=3)


def test_load_scenario_from_file_too_many_turns(tmp_path: Path) -> None:
    path = tmp_path / "call.json"
    path.write_text(scenario_to_json(scenario("voice_support", turns=20)), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="turns=21 exceeds the 20 turns"):
        load_scenario(str(path), turns=21)


def test_load_scenario_from_file_bad_turns(tmp_path: Path) -> None:
    path = tmp_path / "call.json"
    path.write_text(scenario_to_json(scenario("voice_support", turns=2)), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="turns must be an integer >= 1, not 0"):
        load_scenario(str(path), turns=0)


def test_load_scenario_committed_file() -> None:
    assert load_scenario(str(SCENARIO_DIR / "long_system.json"), turns=10) == scenario("long_system", turns=10)


def test_load_scenario_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read scenario file"):
        load_scenario(str(tmp_path / "absent.json"))


def test_load_scenario_unknown_name() -> None:
    with pytest.raises(ConfigurationError, match=r"'smalltalk'.*voice_support.*\.json"):
        load_scenario("smalltalk")


# --- stats ------------------------------------------------------------------------------------


def test_scenario_stats_hand_built() -> None:
    tokens()
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    steps = (
        Step(
            assistant={"role": "assistant", "content": None, "tool_calls": [call]},
            tool_results=({"role": "tool", "tool_call_id": "c1", "content": "ok"},),
        ),
        Step(assistant={"role": "assistant", "content": "done"}),
    )
    s = Scenario(
        name="custom",
        description="d",
        seed=0,
        system_prompt="hello world",
        tools=(),
        turns=(
            Turn(at_s=1.0, user="hi", context=None, steps=steps),
            Turn(at_s=12.5, user="bye", context="c", steps=steps[1:]),
        ),
        facts=(Fact(key="k", value="hi", turn=0),),
    )
    assert scenario_stats(s) == {
        "turns": 2,
        "requests": 3,
        "tool_calls": 1,
        "facts": 1,
        "system_prompt_tokens": 2,
        "duration_s": 12.5,
    }


@pytest.mark.parametrize("name", NAMES)
def test_scenario_stats_generated(name: str) -> None:
    s = scenario(name)
    stats = scenario_stats(s)
    assert stats["turns"] == DEFAULT_TURNS[name]
    assert stats["requests"] == sum(len(turn.steps) for turn in s.turns)
    assert stats["tool_calls"] == sum(1 for _ in tool_results(s))
    assert stats["facts"] == 7
    assert stats["duration_s"] == s.turns[-1].at_s


def test_cut_scenario_equals_dataclass_replace() -> None:
    full = scenario("voice_support", turns=30)
    cut = dataclasses.replace(full, turns=full.turns[:5], facts=tuple(f for f in full.facts if f.turn < 5))
    assert cut == scenario("voice_support", turns=5)
