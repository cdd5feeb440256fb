"""Arguments: decoding, repair, schema coercion and tool-name normalisation."""
from __future__ import annotations

import json

import pytest

from loadbalancer.toolcalls.arguments import build_tool_index, coerce_value, decode_arguments, resolve_arguments, split_call_object

TOOLS = [
    {"name": "read_file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
    {"name": "Shell", "input_schema": {"type": "object"}},
    {"type": "web_search_20250305", "name": "web_search"},
]


@pytest.mark.parametrize("raw, expected, repaired", [
    ({"a": 1}, {"a": 1}, False),
    ('{"a": 1}', {"a": 1}, False),
    (json.dumps(json.dumps({"a": 1})), {"a": 1}, True),
    ("{'a': True, 'b': None}", {"a": True, "b": None}, True),
    ('{"a": 1,}', {"a": 1}, True),
    ('{"a": 1', {"a": 1}, True),
    ('{"a": 1} and then prose', {"a": 1}, True),
    ("", {}, False),
    (None, {}, False),
    ('[{"a": 1}]', {"a": 1}, True),
])
def test_decode_arguments(raw: object, expected: dict, repaired: bool) -> None:
    assert decode_arguments(raw) == (expected, repaired)


@pytest.mark.parametrize("raw", ["just prose", "[1, 2]", 42, '"a string"'])
def test_decode_arguments_rejects_what_is_not_an_object(raw: object) -> None:
    assert decode_arguments(raw)[0] is None


@pytest.mark.parametrize("value, schema, expected", [
    ("5", {"type": "integer"}, 5),
    ("5.0", {"type": "integer"}, 5),
    ("2.5", {"type": "number"}, 2.5),
    ("3", {"type": "number"}, 3),
    ("true", {"type": "boolean"}, True),
    ("False", {"type": "boolean"}, False),
    ("0", {"type": "boolean"}, False),
    ('["a", "b"]', {"type": "array"}, ["a", "b"]),
    ("['a', 'b'", {"type": "array"}, ["a", "b"]),
    ('{"k": 1}', {"type": "object"}, {"k": 1}),
    ("null", {"anyOf": [{"type": "number"}, {"type": "null"}]}, None),
    ("0.5", {"anyOf": [{"type": "number"}, {"type": "null"}]}, 0.5),
    ("7", {"type": ["integer", "string"]}, "7"),
    ("7", {"type": ["null", "integer"]}, 7),
    (5, {"type": "string"}, "5"),
    (5.0, {"type": "integer"}, 5),
    ("five", {"type": "integer"}, "five"),
    ("text", {}, "text"),
])
def test_coerce_value_follows_the_schema(value: object, schema: dict, expected: object) -> None:
    assert coerce_value(value, schema)[0] == expected


def test_resolve_arguments_reports_missing_required_and_keeps_unknown_properties() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}, "count": {"type": "integer"}},
              "required": ["path", "content"]}
    resolved = resolve_arguments({"path": "a", "count": "2", "extra": 1}, schema)
    assert resolved.values == {"path": "a", "count": 2, "extra": 1}
    assert resolved.missing == ("content",)
    assert resolved.repaired


def test_string_values_from_xml_are_not_counted_as_repairs() -> None:
    schema = {"type": "object", "properties": {"count": {"type": "integer"}}}
    assert resolve_arguments({"count": "2"}, schema, string_values=True).repaired is False
    assert resolve_arguments({"count": "2"}, schema, string_values=False).repaired is True


@pytest.mark.parametrize("written, exact", [
    ("read_file", "read_file"),
    ("functions.read_file", "read_file"),
    ("functions.read_file:0", "read_file"),
    ("READ_FILE", "read_file"),
    ("shell", "Shell"),
    ("delete_all", None),
    ("web_search", None),   # server tools have no input_schema and are not parsed
])
def test_tool_names_are_normalised_to_the_request_tools(written: str, exact: str | None) -> None:
    assert build_tool_index(TOOLS).resolve(written) == exact


@pytest.mark.parametrize("call, expected", [
    ({"name": "f", "arguments": {"a": 1}}, ("f", {"a": 1})),
    ({"name": "f", "parameters": {"a": 1}}, ("f", {"a": 1})),
    ({"tool": "f", "args": {"a": 1}}, ("f", {"a": 1})),
    ({"name": "f", "input": "{}"}, ("f", "{}")),
    ({"type": "function", "function": {"name": "f", "arguments": "{}"}}, ("f", "{}")),
    ({"name": "f"}, ("f", None)),
    ({"id": 3}, None),
])
def test_split_call_object_accepts_the_usual_keys(call: dict, expected: tuple | None) -> None:
    assert split_call_object(call) == expected


NULLABLE = {"type": "object", "properties": {"nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                             "city": {"type": "string"}, "steps": {"type": "array"}}}


def test_the_word_null_from_xml_is_null_and_other_words_stay_strings() -> None:
    resolved = resolve_arguments({"nickname": "null", "city": "NULL", "other": "null"}, NULLABLE, string_values=True)
    assert resolved.values == {"nickname": None, "city": None, "other": None}
    assert resolve_arguments({"nickname": "hi", "city": "42"}, NULLABLE, string_values=True).values == \
        {"nickname": "hi", "city": "42"}
    assert resolve_arguments({"city": "null"}, NULLABLE).values == {"city": "null"}  # JSON writes null as null


def test_json_written_with_escaped_quotes_is_decoded_once() -> None:
    escaped = '[{\\"id\\": \\"1\\", \\"path\\": \\"C:\\\\\\\\tmp\\"}]'
    assert coerce_value(escaped, {"type": "array"}) == ([{"id": "1", "path": "C:\\tmp"}], True)


def _tools_named(*names: str) -> list[dict]:
    return [{"name": name, "input_schema": {"type": "object", "properties": {name: {"type": "string"}}}}
            for name in names]


def test_the_same_tool_objects_get_the_same_index_again() -> None:
    shared = _tools_named("read_file", "edit_file")  # what body_scan hands every turn that sends these bytes
    first = build_tool_index(shared)
    assert build_tool_index(tuple(shared)) is first  # the request keeps them as a tuple: same objects, same index
    assert first.names == ("read_file", "edit_file")


def test_new_tool_objects_are_indexed_from_what_they_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbalancer.toolcalls import arguments
    monkeypatch.setattr(arguments, "TOOL_INDEXES_KEPT", 100_000)  # nothing dropped: every index stays findable
    monkeypatch.setattr(arguments, "_kept_indexes", {})
    schema = {"type": "object"}
    for number in range(200):
        # One new dict per turn, freed right after: CPython hands its memory to the next dict, so
        # an index found by ids alone would be an earlier tool's.
        index = build_tool_index([{"name": f"tool_{number}", "input_schema": schema}])
        assert index.names == (f"tool_{number}",)


def test_only_so_many_indexes_are_kept_and_the_one_in_use_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbalancer.toolcalls import arguments
    monkeypatch.setattr(arguments, "TOOL_INDEXES_KEPT", 4)
    monkeypatch.setattr(arguments, "_kept_indexes", {})
    in_use = _tools_named("read_file")
    index = build_tool_index(in_use)
    for number in range(10):
        build_tool_index(_tools_named(f"tool_{number}"))
        assert build_tool_index(in_use) is index  # used every turn: never the oldest
    assert len(arguments._kept_indexes) <= 4


def test_no_tools_and_an_index_need_no_keeping() -> None:
    assert build_tool_index(None).names == () and build_tool_index([]).names == ()
    index = build_tool_index(TOOLS)
    assert build_tool_index(index) is index
    assert index.names == ("read_file", "Shell")  # the server tool has no input_schema


def test_tools_given_as_an_iterator_are_indexed_whole() -> None:
    tools = _tools_named("read_file", "bash")
    assert build_tool_index(iter(tools)).names == ("read_file", "bash")
