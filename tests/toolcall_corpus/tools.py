"""Tool definitions used by the corpus: G3's own tools and typed tools with every JSON type."""
from __future__ import annotations


def _tool(name: str, properties: dict, required: list[str]) -> dict:
    return {"name": name, "description": f"The {name} tool.",
            "input_schema": {"type": "object", "properties": properties, "required": required}}


_STRING = {"type": "string"}

G3_TOOLS = [
    _tool("shell", {"command": _STRING}, ["command"]),
    _tool("read_file", {"file_path": _STRING, "start": {"type": "integer"}}, ["file_path"]),
    _tool("write_file", {"file_path": _STRING, "content": _STRING}, ["file_path", "content"]),
    _tool("str_replace", {"file_path": _STRING, "diff": _STRING}, ["file_path", "diff"]),
    _tool("final_output", {"summary": _STRING}, ["summary"]),
    _tool("todo_read", {}, []),
    _tool("todo_write", {"content": _STRING}, ["content"]),
    _tool("code_search", {"searches": {"type": "array", "items": {"type": "object"}}}, ["searches"]),
]

TYPED_TOOLS = [
    _tool("get_weather", {"city": _STRING, "days": {"type": "integer"}, "metric": {"type": "boolean"}}, ["city"]),
    _tool("search", {"query": _STRING, "limit": {"type": "integer"},
                     "filters": {"type": "object"}, "tags": {"type": "array", "items": _STRING},
                     "threshold": {"anyOf": [{"type": "number"}, {"type": "null"}]}}, ["query"]),
]

ALL_TOOLS = G3_TOOLS + TYPED_TOOLS
