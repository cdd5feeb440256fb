"""Tool-call arguments: decode, repair and coerce them to the tool's input_schema."""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import json_repair

ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
NAME_KEYS = ("name", "tool", "tool_name", "function")
# An agent sends the same tools every turn, and body_scan gives every turn that sends the same
# bytes the same tool objects: their index (18 tools: ~8 µs) is found again by those objects.
# Each index is kept with the tools it was built from, so their ids stay their own; a tool is
# only ever read once a request holds it. The most recently used few sessions' worth is kept.
TOOL_INDEXES_KEPT = 64
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
                  "on": True, "off": False}


@dataclass(frozen=True)
class ToolIndex:
    """The request's tools, looked up by normalised name."""

    schemas: Mapping[str, dict]
    by_folded_name: Mapping[str, str]
    names: tuple[str, ...] = ()

    def resolve(self, raw_name: str) -> str | None:
        """The exact tool name for a name as a model wrote it, or None when unknown."""
        name = raw_name.strip().strip("\"'`")
        if name.startswith("functions."):
            name = name[len("functions."):]
        head, colon, tail = name.rpartition(":")
        if colon and tail.isdigit():
            name = head
        return self.by_folded_name.get(name.casefold())


_kept_indexes: dict[tuple[int, ...], tuple[tuple, ToolIndex]] = {}
_keeping = threading.Lock()


def build_tool_index(tools: Sequence[dict] | ToolIndex | None) -> ToolIndex:
    """Index the request's tools (an index is returned as it is); server tools without input_schema are ignored."""
    if isinstance(tools, ToolIndex):
        return tools
    if not tools:
        return _index_of(())
    if not isinstance(tools, (list, tuple)):
        tools = tuple(tools)  # read twice below: an iterator would be spent by the key
    key = tuple(map(id, tools))
    with _keeping:  # gthread workers: one thread at a time moves or drops an entry
        kept = _kept_indexes.pop(key, None)
        if kept is not None:
            _kept_indexes[key] = kept  # the most recently used goes last, the oldest is dropped first
            return kept[1]
    index = _index_of(tools)
    with _keeping:
        if len(_kept_indexes) >= TOOL_INDEXES_KEPT:
            _kept_indexes.pop(next(iter(_kept_indexes)))
        _kept_indexes[key] = (tuple(tools), index)  # the tools themselves, so no other object takes their ids
    return index


def _index_of(tools: Sequence[dict]) -> ToolIndex:
    schemas: dict[str, dict] = {}
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str) and "input_schema" in tool:
            schema = tool["input_schema"]
            schemas[tool["name"]] = schema if isinstance(schema, dict) else {}
    return ToolIndex(schemas, {name.casefold(): name for name in schemas}, tuple(schemas))


@dataclass(frozen=True)
class ResolvedArguments:
    """Arguments after decoding and coercion."""

    values: dict
    repaired: bool
    missing: tuple[str, ...]


def decode_arguments(raw: object) -> tuple[dict | None, bool]:
    """Turn raw arguments (dict, JSON text, twice-encoded or broken JSON) into a dict; (dict, repaired)."""
    if raw is None:
        return {}, False
    if isinstance(raw, Mapping):
        return dict(raw), False
    if not isinstance(raw, str):
        return None, False
    text = raw.strip()
    if not text:
        return {}, False
    repaired = False
    for _ in range(3):  # a string inside a string inside a string is the worst seen in the wild
        try:
            value = json.loads(text)
        except ValueError:
            value = json_repair.loads(text)
            repaired = True
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):
            text, repaired = value.strip(), True
            continue
        break
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping):
        return dict(value[0]), True
    return (dict(value), repaired) if isinstance(value, Mapping) else (None, repaired)


def _schema_types(schema: Mapping) -> list[str]:
    """Every JSON type a schema allows, including those in anyOf/oneOf branches."""
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            if isinstance(branch, Mapping):
                types.extend(_schema_types(branch))
    return types


def decode_structure(text: str, expected: type) -> object | None:
    """A JSON array or object from text, repaired when needed; None when it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        value = _unescaped_json(text)
        if value is None:
            value = json_repair.loads(text)
    return value if isinstance(value, expected) else None


def _unescaped_json(text: str) -> object | None:
    """JSON written with its quotes escaped once more ([{\\"id\\": 1}], as GLM-4.7 does in <arg_value>)."""
    if '\\"' not in text:
        return None
    try:
        return json.loads(json.loads('"' + text.replace('\n', '\\n') + '"', strict=False), strict=False)
    except ValueError:
        return None


def _coerce_string(text: str, types: list[str]) -> tuple[object, bool]:
    """Convert a string value to the first schema type it fits; (value, changed)."""
    stripped = text.strip()
    if stripped.lower() == "null" and "null" in types:
        return None, True  # anyOf [string, null]: the word null is the null, any other text the string
    if "string" in types or not types:
        return text, False
    if stripped.lower() == "none" and "null" in types:
        return None, True
    for kind in types:
        if kind == "integer":
            try:
                return int(stripped), True
            except ValueError:
                try:
                    number = float(stripped)
                except ValueError:
                    continue
                if number.is_integer():
                    return int(number), True
        elif kind == "number":
            try:
                number = float(stripped)
            except ValueError:
                continue
            return (int(number) if number.is_integer() and "." not in stripped else number), True
        elif kind == "boolean" and stripped.lower() in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[stripped.lower()], True
        elif kind in ("array", "object") and stripped[:1] in ("[", "{"):
            value = decode_structure(stripped, list if kind == "array" else dict)
            if value is not None:
                return value, True
    if stripped.lower() in ("null", "none"):
        return None, True
    return text, False


def coerce_value(value: object, schema: Mapping) -> tuple[object, bool]:
    """Coerce one value to its property schema; (value, changed)."""
    types = _schema_types(schema)
    if isinstance(value, str):
        return _coerce_string(value, types)
    if isinstance(value, bool):
        return value, False
    if isinstance(value, (int, float)) and "string" in types and not {"integer", "number"} & set(types):
        return str(value), True
    if isinstance(value, float) and value.is_integer() and "integer" in types and "number" not in types:
        return int(value), True
    return value, False


def coerce_arguments(values: dict, schema: Mapping, string_values: bool) -> ResolvedArguments:
    """Coerce every known property to the schema; unknown properties are kept as they are."""
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    result: dict = {}
    repaired = False
    for key, value in values.items():
        property_schema = properties.get(key)
        if string_values and isinstance(value, str) and value.strip().lower() == "null":
            result[key] = None  # XML formats can only write null as the word (vLLM and SGLang do the same)
            continue
        if isinstance(property_schema, Mapping):
            value, changed = coerce_value(value, property_schema)
            # XML formats carry every value as a string, so converting those is expected, not a repair
            repaired = repaired or (changed and not string_values)
        result[key] = value
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    missing = tuple(name for name in required if isinstance(name, str) and name not in result)
    return ResolvedArguments(result, repaired, missing)


def resolve_arguments(raw: object, schema: Mapping, string_values: bool = False) -> ResolvedArguments | None:
    """Decode then coerce raw arguments; None when they are not an object at all."""
    values, repaired = decode_arguments(raw)
    if values is None:
        return None
    resolved = coerce_arguments(values, schema, string_values)
    return ResolvedArguments(resolved.values, repaired or resolved.repaired, resolved.missing)


def split_call_object(call: Mapping) -> tuple[str, object] | None:
    """(name, raw arguments) of a call object such as {"name": ..., "arguments": ...}."""
    function = call.get("function")
    if isinstance(function, Mapping):  # OpenAI shape {"type": "function", "function": {...}}
        return split_call_object(function)
    name = next((call[key] for key in NAME_KEYS if isinstance(call.get(key), str)), None)
    if name is None:
        return None
    arguments = next((call[key] for key in ARGUMENT_KEYS if key in call), None)
    if arguments is None:
        extra = {key: value for key, value in call.items() if key not in NAME_KEYS and key != "type"}
        arguments = extra or None
    return name, arguments
