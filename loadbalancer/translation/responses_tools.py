"""Responses API tools -> Anthropic tools, and the routes that turn tool_use blocks back.

Pure: no network, no Flask. Codex offers three kinds of tools the backend can call:
`function` tools, the inner tools of a `namespace` group (a call must come back with
`name` = the inner name and `namespace` = the group's name, or Codex answers "unsupported
call"), and `custom` freeform tools such as `apply_patch` (the call carries a raw `input`
string). Each becomes one Anthropic tool; a `ToolRoute` remembers how to answer its calls.
Hosted tools (`web_search`, `file_search`, `tool_search`, ...) run on OpenAI's side and have
no Anthropic equivalent: they are dropped and their names reported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

MAX_TOOL_NAME_LENGTH = 64
NAMESPACE_SEPARATOR = "__"
CUSTOM_INPUT_FIELD = "input"
EMPTY_SCHEMA = {"type": "object", "properties": {}}
LOCAL_SHELL_SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}, "description": "argv of the command"},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "integer"},
    },
    "required": ["command"],
}
_INVALID_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
_TOOL_CHOICE_MODES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


@dataclass(frozen=True)
class ToolRoute:
    """How a tool_use block of one Anthropic tool goes back: kind, Responses name, namespace."""

    kind: str  # "function", "custom" or "local_shell"
    name: str
    namespace: str | None = None


@dataclass
class ToolSet:
    """The Anthropic tools of a request, their routes back, and the tools that were dropped."""

    tools: list[dict] = field(default_factory=list)
    routes: dict[str, ToolRoute] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def add(self, route: ToolRoute, tool: dict) -> None:
        """Register one translated tool under a unique Anthropic name."""
        name = anthropic_tool_name(route.name, route.namespace)
        if name in self.routes and self.routes[name] != route:
            name = _hashed_name(name, f"{route.kind}:{route.namespace}:{route.name}")
        self.routes[name] = route
        self.tools.append({"name": name, **tool})

    def name_for(self, name: str, namespace: str | None = None, kind: str = "function") -> str:
        """The Anthropic name of a Responses tool, also for a tool no longer offered."""
        wanted = ToolRoute(kind, name, namespace)
        for anthropic_name, route in self.routes.items():
            if route == wanted:
                return anthropic_name
        return anthropic_tool_name(name, namespace)


def anthropic_tool_name(name: str, namespace: str | None = None) -> str:
    """A name Anthropic accepts (^[A-Za-z0-9_-]{1,64}$): `ns__name`, hashed when it must change."""
    original = f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name
    cleaned = _INVALID_NAME_CHARACTERS.sub("_", original) or "tool"
    if cleaned == original and len(cleaned) <= MAX_TOOL_NAME_LENGTH:
        return cleaned
    return _hashed_name(cleaned, original)


def _hashed_name(cleaned: str, original: str) -> str:
    """A shortened name with a hash of the original, so distinct originals stay distinct."""
    digest = hashlib.sha1(original.encode()).hexdigest()[:8]
    return f"{cleaned[: MAX_TOOL_NAME_LENGTH - 9]}_{digest}"


def translate_tools(tools: Any) -> ToolSet:
    """The ToolSet for a Responses `tools` list (ValueError when it is not a list)."""
    if tools is None:
        return ToolSet()
    if not isinstance(tools, list):
        raise ValueError("'tools' must be a list")
    toolset = ToolSet()
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise ValueError(f"tools[{position}] must be an object")
        _add_tool(toolset, tool, namespace=None)
    return toolset


def _add_tool(toolset: ToolSet, tool: dict, namespace: str | None) -> None:
    """Translate one tool (a namespace group recursively) or record it as dropped."""
    kind = tool.get("type")
    name = tool.get("name")
    if kind == "namespace" and isinstance(name, str) and isinstance(tool.get("tools"), list):
        for inner in tool["tools"]:
            if isinstance(inner, dict):
                _add_tool(toolset, inner, namespace=name)
    elif kind == "function" and isinstance(name, str) and name:
        toolset.add(ToolRoute("function", name, namespace), _function_tool(tool))
    elif kind == "custom" and isinstance(name, str) and name:
        toolset.add(ToolRoute("custom", name, namespace), _custom_tool(tool))
    elif kind == "local_shell":
        description = "Run a command on the user's machine (argv list)."
        toolset.add(ToolRoute("local_shell", "local_shell"),
                    {"description": description, "input_schema": LOCAL_SHELL_SCHEMA})
    else:
        label = name if isinstance(name, str) and name else str(kind)
        toolset.dropped.append(f"{namespace}.{label}" if namespace else label)


def _function_tool(tool: dict) -> dict:
    """description and input_schema of a function tool (`strict` has no Anthropic twin)."""
    parameters = tool.get("parameters")
    schema = dict(parameters) if isinstance(parameters, dict) and parameters else dict(EMPTY_SCHEMA)
    schema.setdefault("type", "object")
    result: dict[str, Any] = {"input_schema": schema}
    if isinstance(tool.get("description"), str) and tool["description"]:
        result["description"] = tool["description"]
    return result


def _custom_tool(tool: dict) -> dict:
    """A freeform tool as a tool with one string field holding the raw input."""
    description = tool.get("description") if isinstance(tool.get("description"), str) else ""
    tool_format = tool.get("format") if isinstance(tool.get("format"), dict) else {}
    if tool_format.get("type") == "grammar" and isinstance(tool_format.get("definition"), str):
        syntax = tool_format.get("syntax") or "grammar"
        description += f"\n\nThe `{CUSTOM_INPUT_FIELD}` text must match this {syntax} grammar:\n{tool_format['definition']}"
    description += f"\n\nPut the whole raw input, not JSON, in the `{CUSTOM_INPUT_FIELD}` string."
    schema = {"type": "object", "properties": {CUSTOM_INPUT_FIELD: {"type": "string"}},
              "required": [CUSTOM_INPUT_FIELD]}
    return {"description": description.strip(), "input_schema": schema}


def translate_tool_choice(tool_choice: Any, parallel_tool_calls: Any, toolset: ToolSet) -> dict | None:
    """The Anthropic tool_choice for a Responses tool_choice and parallel_tool_calls."""
    choice: dict[str, Any] | None = None
    if isinstance(tool_choice, str) and tool_choice in _TOOL_CHOICE_MODES:
        choice = dict(_TOOL_CHOICE_MODES[tool_choice])
    elif isinstance(tool_choice, dict) and tool_choice.get("type") in ("function", "custom"):
        name = toolset.name_for(str(tool_choice.get("name")), tool_choice.get("namespace"), tool_choice["type"])
        choice = {"type": "tool", "name": name} if name in toolset.routes else None
    elif isinstance(tool_choice, dict) and tool_choice.get("type") == "allowed_tools":
        choice = {"type": "any"} if tool_choice.get("mode") == "required" else {"type": "auto"}
    if parallel_tool_calls is False and (choice is None or choice["type"] != "none"):
        choice = choice or {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    return choice


def restrict_to_allowed_tools(tool_choice: Any, toolset: ToolSet) -> None:
    """Keep only the tools an `allowed_tools` tool_choice names (others become dropped)."""
    if not (isinstance(tool_choice, dict) and tool_choice.get("type") == "allowed_tools"):
        return
    allowed = {
        toolset.name_for(str(entry.get("name")), entry.get("namespace"), entry.get("type") or "function")
        for entry in tool_choice.get("tools") or []
        if isinstance(entry, dict)
    }
    kept = [tool for tool in toolset.tools if tool["name"] in allowed]
    toolset.dropped.extend(tool["name"] for tool in toolset.tools if tool["name"] not in allowed)
    toolset.tools = kept
