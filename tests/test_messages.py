"""Unit tests for llmvoice.messages: validation and freezing of canonical messages."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from llmvoice.errors import InvalidMessageError
from llmvoice.messages import Message, ToolCall, freeze, thaw, to_message


def _error(raw: Any, index: int = 0) -> InvalidMessageError:
    with pytest.raises(InvalidMessageError) as info:
        to_message(raw, index)
    return info.value


def _where(exc: InvalidMessageError) -> tuple[int, str]:
    return (exc.index, exc.field)


def _call(call_id: str = "c1", name: str = "lookup", arguments: Any = "{}", **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


class FakeSDKMessage:
    """A stand-in for an SDK message object: only ``model_dump(exclude_none=...)``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        if exclude_none:
            return {k: v for k, v in self._data.items() if v is not None}
        return dict(self._data)


class TestRoles:
    """to_message accepts each known role and rejects others."""

    @pytest.mark.parametrize("role", ["system", "developer", "user"])
    def test_text_roles_round_trip(self, role: str) -> None:
        """A system, developer or user message with string content freezes and thaws unchanged."""
        message = to_message({"role": role, "content": "hello"})
        assert message == Message(role, "hello")
        assert message.to_dict() == {"role": role, "content": "hello"}

    def test_assistant_text_message(self) -> None:
        """An assistant message with text content has no tool calls."""
        message = to_message({"role": "assistant", "content": "Sure."})
        assert message == Message("assistant", "Sure.", ())
        assert message.to_dict() == {"role": "assistant", "content": "Sure."}

    def test_tool_message(self) -> None:
        """A tool message keeps its tool_call_id."""
        message = to_message({"role": "tool", "content": "42", "tool_call_id": "c1"})
        assert message == Message("tool", "42", tool_call_id="c1")
        assert message.to_dict() == {"role": "tool", "content": "42", "tool_call_id": "c1"}

    def test_name_is_kept(self) -> None:
        """The optional participant name is kept and written back."""
        message = to_message({"role": "user", "content": "hi", "name": "ann"})
        assert message.to_dict() == {"role": "user", "content": "hi", "name": "ann"}

    def test_unknown_role(self) -> None:
        """An unknown role is rejected on the role field."""
        exc = _error({"role": "bot", "content": "hi"})
        assert _where(exc) == (0, "role")

    def test_non_string_role(self) -> None:
        """A role that is not a string is rejected on the role field."""
        exc = _error({"role": 3, "content": "hi"})
        assert _where(exc) == (0, "role")

    def test_missing_role(self) -> None:
        """A message without a role is rejected on the role field."""
        exc = _error({"content": "hi"})
        assert _where(exc) == (0, "role")
        assert str(exc) == "message 0, field 'role': missing"

    def test_index_is_reported(self) -> None:
        """The index passed to to_message is the one the error carries."""
        exc = _error({"role": "bot", "content": "hi"}, index=7)
        assert _where(exc) == (7, "role")

    def test_not_a_mapping(self) -> None:
        """A message that is not a dict is rejected on the message field."""
        exc = _error("hello")
        assert _where(exc) == (0, "message")

    def test_message_instance_is_revalidated(self) -> None:
        """A Message given to to_message comes back equal, bookkeeping kept."""
        message = Message("system", "sum", id=4, kind="summary", covers=(1, 2))
        assert to_message(message) == message

    def test_message_instance_with_bad_role_is_refused(self) -> None:
        """A hand-built Message with an unknown role is refused like a dict."""
        with pytest.raises(InvalidMessageError) as info:
            to_message(Message("bot", "hi"), 3)
        assert (info.value.index, info.value.field) == (3, "role")


class TestContent:
    """Rules for string, part-list and None content."""

    def test_parts_are_frozen(self) -> None:
        """A list of content parts becomes a tuple of read-only mappings."""
        message = to_message({"role": "user", "content": [{"type": "text", "text": "a"}]})
        assert isinstance(message.content, tuple)
        assert isinstance(message.content[0], types.MappingProxyType)
        assert message.to_dict() == {"role": "user", "content": [{"type": "text", "text": "a"}]}

    def test_parts_round_trip(self) -> None:
        """Mixed content parts are written back exactly as given."""
        parts = [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        ]
        assert to_message({"role": "user", "content": parts}).to_dict() == {"role": "user", "content": parts}

    def test_parts_are_copied(self) -> None:
        """Changing the input list after validation does not change the message."""
        parts = [{"type": "text", "text": "a"}]
        message = to_message({"role": "user", "content": parts})
        parts[0]["text"] = "changed"
        parts.append({"type": "text", "text": "b"})
        assert message.to_dict() == {"role": "user", "content": [{"type": "text", "text": "a"}]}

    def test_to_dict_is_fresh(self) -> None:
        """Changing a dict returned by to_dict does not change the message."""
        message = to_message({"role": "user", "content": [{"type": "text", "text": "a"}]})
        out = message.to_dict()
        out["content"][0]["text"] = "changed"
        assert message.to_dict() == {"role": "user", "content": [{"type": "text", "text": "a"}]}

    def test_assistant_none_content_with_tool_calls(self) -> None:
        """An assistant message may have None content when it calls tools."""
        message = to_message({"role": "assistant", "content": None, "tool_calls": [_call()]})
        assert message.content is None
        assert message.to_dict() == {"role": "assistant", "content": None, "tool_calls": [_call()]}

    def test_assistant_missing_content_with_tool_calls(self) -> None:
        """An assistant message may omit content when it calls tools."""
        message = to_message({"role": "assistant", "tool_calls": [_call()]})
        assert message == Message("assistant", None, (ToolCall("c1", "lookup", "{}"),))

    def test_assistant_none_content_without_tool_calls(self) -> None:
        """An assistant message with neither content nor tool calls is rejected on content."""
        exc = _error({"role": "assistant", "content": None})
        assert _where(exc) == (0, "content")

    def test_assistant_empty_tool_calls_and_no_content(self) -> None:
        """An empty tool_calls list does not stand in for content."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": []})
        assert _where(exc) == (0, "content")

    @pytest.mark.parametrize("role", ["system", "developer", "user"])
    def test_none_content_rejected(self, role: str) -> None:
        """Only assistant messages may have None content."""
        exc = _error({"role": role, "content": None})
        assert _where(exc) == (0, "content")

    def test_tool_none_content_rejected(self) -> None:
        """A tool message with None content is rejected on content."""
        exc = _error({"role": "tool", "content": None, "tool_call_id": "c1"})
        assert _where(exc) == (0, "content")

    @pytest.mark.parametrize("role", ["system", "developer", "user", "tool"])
    def test_missing_content_rejected(self, role: str) -> None:
        """A non-assistant message without a content key is rejected on content."""
        exc = _error({"role": role, "tool_call_id": "c1"} if role == "tool" else {"role": role})
        assert _where(exc) == (0, "content")
        assert str(exc) == "message 0, field 'content': missing"

    def test_content_of_wrong_type(self) -> None:
        """Content that is neither a string nor a list is rejected on content."""
        exc = _error({"role": "user", "content": 5})
        assert _where(exc) == (0, "content")

    def test_part_not_a_dict(self) -> None:
        """A content part that is not a dict is rejected on that part."""
        exc = _error({"role": "user", "content": [{"type": "text", "text": "a"}, "b"]})
        assert _where(exc) == (0, "content[1]")

    def test_part_without_type(self) -> None:
        """A content part without a type is rejected on its type field."""
        exc = _error({"role": "user", "content": [{"text": "a"}]})
        assert _where(exc) == (0, "content[0].type")

    def test_text_part_without_text(self) -> None:
        """A text part without a string text is rejected on its text field."""
        exc = _error({"role": "user", "content": [{"type": "text", "text": 3}]})
        assert _where(exc) == (0, "content[0].text")

    def test_tool_result_only_text_parts(self) -> None:
        """A tool result holding a non-text part is rejected on that part's type."""
        parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}]
        exc = _error({"role": "tool", "content": parts, "tool_call_id": "c1"})
        assert _where(exc) == (0, "content[1].type")

    def test_text_joins_text_parts(self) -> None:
        """Message.text joins the text parts with newlines and skips other parts."""
        parts = [
            {"type": "text", "text": "one"},
            {"type": "image_url", "image_url": {"url": "u"}},
            {"type": "text", "text": "two"},
        ]
        assert to_message({"role": "user", "content": parts}).text == "one\ntwo"

    def test_text_of_string_content(self) -> None:
        """Message.text of string content is the string."""
        assert to_message({"role": "user", "content": "plain"}).text == "plain"

    def test_text_of_none_content(self) -> None:
        """Message.text of None content is the empty string."""
        assert to_message({"role": "assistant", "content": None, "tool_calls": [_call()]}).text == ""


class TestToolCalls:
    """Validation of an assistant message's tool_calls."""

    def test_calls_are_frozen(self) -> None:
        """Tool calls become ToolCall values in order."""
        message = to_message(
            {"role": "assistant", "content": "", "tool_calls": [_call("a", "f", '{"x":1}'), _call("b", "g")]}
        )
        assert message.tool_calls == (ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g", "{}"))

    def test_tool_call_to_dict(self) -> None:
        """ToolCall.to_dict gives the OpenAI chat shape."""
        assert ToolCall("a", "f", "{}").to_dict() == {
            "id": "a",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
        }

    def test_missing_type_defaults_to_function(self) -> None:
        """A call without a type is a function call."""
        raw = {"id": "a", "function": {"name": "f", "arguments": "{}"}}
        message = to_message({"role": "assistant", "content": None, "tool_calls": [raw]})
        assert message.tool_calls == (ToolCall("a", "f", "{}"),)

    def test_missing_arguments_default_to_empty_object(self) -> None:
        """A call without arguments gets the JSON text of an empty object."""
        raw = {"id": "a", "type": "function", "function": {"name": "f"}}
        message = to_message({"role": "assistant", "content": None, "tool_calls": [raw]})
        assert message.tool_calls == (ToolCall("a", "f", "{}"),)

    def test_missing_id(self) -> None:
        """A call without an id is rejected on its id field."""
        raw = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call("a"), raw]})
        assert _where(exc) == (0, "tool_calls[1].id")

    def test_empty_id(self) -> None:
        """A call with an empty id is rejected on its id field."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call("")]})
        assert _where(exc) == (0, "tool_calls[0].id")

    def test_duplicate_id(self) -> None:
        """Two calls with the same id are rejected on the second call's id."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("a")]})
        assert _where(exc) == (0, "tool_calls[1].id")

    def test_non_function_type(self) -> None:
        """A call whose type is not function is rejected on its type field."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call(type="custom")]})
        assert _where(exc) == (0, "tool_calls[0].type")

    def test_missing_function(self) -> None:
        """A call without a function dict is rejected on its function field."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function"}]})
        assert _where(exc) == (0, "tool_calls[0].function")

    def test_missing_function_name(self) -> None:
        """A call without a function name is rejected on the name field."""
        raw = {"id": "a", "type": "function", "function": {"arguments": "{}"}}
        exc = _error({"role": "assistant", "content": None, "tool_calls": [raw]})
        assert _where(exc) == (0, "tool_calls[0].function.name")

    def test_dict_arguments_serialised_compactly(self) -> None:
        """Arguments given as a dict become compact JSON text with non-ASCII kept."""
        message = to_message(
            {"role": "assistant", "content": None, "tool_calls": [_call(arguments={"city": "Zürich", "n": [1, 2]})]}
        )
        assert message.tool_calls == (ToolCall("c1", "lookup", '{"city":"Zürich","n":[1,2]}'),)

    def test_string_arguments_kept_verbatim(self) -> None:
        """Arguments given as text are kept byte for byte, spacing included."""
        message = to_message({"role": "assistant", "content": None, "tool_calls": [_call(arguments='{ "a" : 1 }')]})
        assert message.tool_calls == (ToolCall("c1", "lookup", '{ "a" : 1 }'),)

    @pytest.mark.parametrize("arguments", [5, ["a"], None, 1.5])
    def test_non_string_arguments_rejected(self, arguments: Any) -> None:
        """Arguments that are neither text nor a dict are rejected on the arguments field."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call(arguments=arguments)]})
        assert _where(exc) == (0, "tool_calls[0].function.arguments")

    def test_dict_arguments_with_nan_rejected(self) -> None:
        """Dict arguments that JSON cannot carry are rejected on the offending key."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call(arguments={"x": float("nan")})]})
        assert _where(exc) == (0, "tool_calls[0].function.arguments.x")

    def test_tool_calls_not_a_list(self) -> None:
        """tool_calls that is not a list is rejected on tool_calls."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": _call()})
        assert _where(exc) == (0, "tool_calls")

    def test_tool_call_not_a_dict(self) -> None:
        """A tool call that is not a dict is rejected on that call."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": ["c1"]})
        assert _where(exc) == (0, "tool_calls[0]")

    def test_only_assistant_may_call_tools(self) -> None:
        """A user message with tool_calls is rejected on tool_calls."""
        exc = _error({"role": "user", "content": "hi", "tool_calls": [_call()]})
        assert _where(exc) == (0, "tool_calls")

    def test_sdk_tool_call_objects(self) -> None:
        """Tool calls given as SDK objects are read through model_dump."""
        call = FakeSDKMessage({"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}})
        message = to_message({"role": "assistant", "content": None, "tool_calls": [call]})
        assert message.tool_calls == (ToolCall("a", "f", "{}"),)


class TestToolCallId:
    """The tool_call_id rules."""

    def test_tool_message_needs_tool_call_id(self) -> None:
        """A tool message without tool_call_id is rejected on tool_call_id."""
        exc = _error({"role": "tool", "content": "42"})
        assert _where(exc) == (0, "tool_call_id")

    def test_tool_call_id_must_be_string(self) -> None:
        """A non-string tool_call_id is rejected on tool_call_id."""
        exc = _error({"role": "tool", "content": "42", "tool_call_id": 1})
        assert _where(exc) == (0, "tool_call_id")

    def test_tool_call_id_must_not_be_empty(self) -> None:
        """An empty tool_call_id is rejected on tool_call_id."""
        exc = _error({"role": "tool", "content": "42", "tool_call_id": ""})
        assert _where(exc) == (0, "tool_call_id")

    def test_only_tool_messages_carry_tool_call_id(self) -> None:
        """A user message with a tool_call_id is rejected on tool_call_id."""
        exc = _error({"role": "user", "content": "hi", "tool_call_id": "c1"})
        assert _where(exc) == (0, "tool_call_id")


class TestJsonSafety:
    """Values JSON cannot carry are rejected with the path of the field."""

    def test_bytes_content(self) -> None:
        """Bytes content is rejected on content."""
        exc = _error({"role": "user", "content": b"hi"})
        assert _where(exc) == (0, "content")

    def test_bytes_in_part(self) -> None:
        """Bytes inside a content part are rejected on that key."""
        exc = _error({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": b"\x00"}}]})
        assert _where(exc) == (0, "content[0].input_audio.data")

    def test_object_in_extra_key(self) -> None:
        """An arbitrary object under an extra key is rejected on that key."""
        exc = _error({"role": "user", "content": "hi", "metadata": object()})
        assert _where(exc) == (0, "metadata")

    def test_nested_bytes_in_extra_key(self) -> None:
        """Bytes nested inside an extra key are rejected on the nested path."""
        exc = _error({"role": "user", "content": "hi", "metadata": {"a": [1, b"x"]}})
        assert _where(exc) == (0, "metadata.a[1]")

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
    def test_non_finite_float_in_part(self, value: float) -> None:
        """NaN and infinities inside a content part are rejected on that key."""
        exc = _error({"role": "user", "content": [{"type": "text", "text": "a", "score": value}]})
        assert _where(exc) == (0, "content[0].score")

    def test_non_str_key_in_part(self) -> None:
        """A content part with a non-string key is rejected on that part."""
        exc = _error({"role": "user", "content": [{"type": "text", "text": "a", 1: "b"}]})
        assert _where(exc) == (0, "content[0]")

    def test_non_str_key_in_message(self) -> None:
        """A message with a non-string top-level key is rejected on message."""
        exc = _error({"role": "user", "content": "hi", 1: "b"})
        assert _where(exc) == (0, "message")

    def test_non_str_key_nested_in_extra(self) -> None:
        """A non-string key nested under an extra key is rejected on that key."""
        exc = _error({"role": "user", "content": "hi", "metadata": {2: "x"}})
        assert _where(exc) == (0, "metadata")

    def test_deep_nesting_rejected(self) -> None:
        """A value nested more than 64 levels deep is rejected."""
        value: Any = "leaf"
        for _ in range(70):
            value = [value]
        exc = _error({"role": "user", "content": "hi", "metadata": value})
        assert _where(exc) == (0, "metadata" + "[0]" * 65)

    def test_name_must_be_string(self) -> None:
        """A non-string name is rejected on name."""
        exc = _error({"role": "user", "content": "hi", "name": 5})
        assert _where(exc) == (0, "name")


class TestLoneSurrogates:
    """Text that cannot be encoded as UTF-8 is rejected naming the field."""

    def test_in_content(self) -> None:
        """A lone surrogate in string content is rejected on content."""
        exc = _error({"role": "user", "content": "a\ud800b"})
        assert _where(exc) == (0, "content")
        assert str(exc) == (
            "message 0, field 'content': lone surrogate at position 1; the text cannot be sent as UTF-8"
        )

    def test_in_text_part(self) -> None:
        """A lone surrogate in a text part is rejected on that part's text."""
        exc = _error({"role": "user", "content": [{"type": "text", "text": "\udc00"}]})
        assert _where(exc) == (0, "content[0].text")

    def test_in_name(self) -> None:
        """A lone surrogate in the name is rejected on name."""
        exc = _error({"role": "user", "content": "hi", "name": "\ud800"})
        assert _where(exc) == (0, "name")

    def test_in_tool_call_id(self) -> None:
        """A lone surrogate in a tool message's tool_call_id is rejected on tool_call_id."""
        exc = _error({"role": "tool", "content": "1", "tool_call_id": "\ud800"})
        assert _where(exc) == (0, "tool_call_id")

    def test_in_call_id(self) -> None:
        """A lone surrogate in a tool call's id is rejected on that id."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call("\ud800")]})
        assert _where(exc) == (0, "tool_calls[0].id")

    def test_in_call_name(self) -> None:
        """A lone surrogate in a tool call's function name is rejected on that name."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call(name="\ud800")]})
        assert _where(exc) == (0, "tool_calls[0].function.name")

    def test_in_call_arguments(self) -> None:
        """A lone surrogate in tool call arguments text is rejected on the arguments."""
        exc = _error({"role": "assistant", "content": None, "tool_calls": [_call(arguments='{"a":"\ud800"}')]})
        assert _where(exc) == (0, "tool_calls[0].function.arguments")

    def test_in_extra_value(self) -> None:
        """A lone surrogate in an extra key's value is rejected on that key."""
        exc = _error({"role": "user", "content": "hi", "metadata": {"note": "\ud800"}})
        assert _where(exc) == (0, "metadata.note")

    def test_in_extra_key_name(self) -> None:
        """A lone surrogate in an extra top-level key name is rejected on message, like a non-string key."""
        exc = _error({"role": "user", "content": "hi", "\ud800": 1})
        assert _where(exc) == (0, "message")


class TestSDKObjects:
    """Messages given as SDK objects with model_dump."""

    def test_fake_sdk_object(self) -> None:
        """An object with model_dump is validated through its dump, None fields dropped."""
        raw = FakeSDKMessage({"role": "assistant", "content": "hi", "tool_calls": None, "refusal": None})
        assert to_message(raw) == Message("assistant", "hi")

    def test_openai_sdk_message(self) -> None:
        """An openai ChatCompletionMessage with tool calls becomes the same message as its dict."""
        from openai.types.chat import ChatCompletionMessage

        sdk = ChatCompletionMessage.model_validate(
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "annotations": [],
                "tool_calls": [_call("c9", "f", '{"a":1}')],
            }
        )
        message = to_message(sdk)
        assert message == Message("assistant", None, (ToolCall("c9", "f", '{"a":1}'),))
        assert message.to_dict() == {"role": "assistant", "content": None, "tool_calls": [_call("c9", "f", '{"a":1}')]}


class TestExtraKeys:
    """Keys beyond the known ones."""

    def test_response_only_empty_keys_dropped(self) -> None:
        """Empty response-only keys (refusal, annotations, audio, function_call) are dropped."""
        raw = {
            "role": "assistant",
            "content": "hi",
            "refusal": None,
            "annotations": [],
            "audio": None,
            "function_call": None,
        }
        message = to_message(raw)
        assert message.extra is None
        assert message.to_dict() == {"role": "assistant", "content": "hi"}

    def test_unknown_keys_round_trip(self) -> None:
        """Unknown extra keys are kept, frozen, and written back by to_dict."""
        raw = {"role": "user", "content": "hi", "metadata": {"tags": ["a", "b"], "n": 1}, "cache": True}
        message = to_message(raw)
        assert message.extra == {"metadata": {"tags": ("a", "b"), "n": 1}, "cache": True}
        assert isinstance(message.extra, types.MappingProxyType)
        assert message.to_dict() == raw

    def test_non_empty_response_only_key_kept(self) -> None:
        """A non-empty refusal is kept like any other key."""
        raw = {"role": "assistant", "content": "no", "refusal": "I can't help with that."}
        assert to_message(raw).to_dict() == raw

    def test_to_dict_is_json_serialisable(self) -> None:
        """The dict of a validated message serialises to JSON."""
        raw = {"role": "user", "content": [{"type": "text", "text": "é"}], "metadata": {"k": [1.5, None]}}
        assert json.loads(json.dumps(to_message(raw).to_dict())) == raw


class TestFreezeThaw:
    """freeze and thaw are inverse on JSON values."""

    def test_round_trip(self) -> None:
        """thaw(freeze(x)) gives back an equal JSON value."""
        value = {"a": [1, {"b": (2, 3)}, "s"], "c": None, "d": {"e": [True, 1.5]}}
        assert thaw(freeze(value)) == {"a": [1, {"b": [2, 3]}, "s"], "c": None, "d": {"e": [True, 1.5]}}

    def test_freeze_is_read_only(self) -> None:
        """A frozen mapping rejects item assignment."""
        frozen = freeze({"a": [1]})
        assert frozen == {"a": (1,)}
        with pytest.raises(TypeError):
            frozen["a"] = 2

    def test_freeze_copies(self) -> None:
        """Changing the source after freezing does not change the frozen copy."""
        source = {"a": [1]}
        frozen = freeze(source)
        source["a"].append(2)
        source["b"] = 3
        assert thaw(frozen) == {"a": [1]}

    def test_thaw_is_mutable(self) -> None:
        """thaw returns plain dicts and lists."""
        thawed = thaw(freeze({"a": [{"b": 1}]}))
        assert type(thawed) is dict
        assert type(thawed["a"]) is list
        assert type(thawed["a"][0]) is dict

    def test_scalars_unchanged(self) -> None:
        """Scalars pass through freeze and thaw unchanged."""
        assert [freeze(v) for v in ("s", 1, 1.5, None, True)] == ["s", 1, 1.5, None, True]
        assert [thaw(v) for v in ("s", 1, 1.5, None, True)] == ["s", 1, 1.5, None, True]
