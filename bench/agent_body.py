"""An agent-sized Messages request, generated deterministically (no randomness, no files).

Shaped like a mid-session turn of Claude Code or G3: a long system prompt with
`cache_control`, 18 tool schemas, and a history of tool_use / tool_result turns holding
source code. `agent_body(target_bytes)` grows the history until the body reaches the size.
"""

from __future__ import annotations

import json

TOOL_COUNT = 18
SYSTEM_PARAGRAPHS = 40
SOURCE_LINES_PER_RESULT = 60


def _tool(number: int) -> dict:
    """One tool with a realistic schema: a few typed properties, enums, nested arrays."""
    return {
        "name": f"tool_{number:02d}_{['read', 'write', 'grep', 'bash', 'edit', 'glob'][number % 6]}",
        "description": f"Tool number {number}. " + "Reads or changes files in the workspace; " * 6,
        "input_schema": {
            "type": "object",
            "properties": {
                "file_path": {"type": "string", "description": "Absolute path of the file"},
                "limit": {"type": "integer", "description": "How many lines", "minimum": 1},
                "mode": {"type": "string", "enum": ["fast", "thorough", "exact"]},
                "patterns": {"type": "array", "items": {"type": "string"}},
                "options": {"type": "object", "properties": {"recursive": {"type": "boolean"},
                                                            "depth": {"type": "integer"}}},
            },
            "required": ["file_path"],
        },
    }


def _source(turn: int) -> str:
    """A screenful of Python source, different per turn."""
    lines = [f"def function_{turn}_{line}(value: int) -> int:" if line % 6 == 0 else
             f"    result_{line} = value * {line} + {turn}  # keeps the numbers apart"
             for line in range(SOURCE_LINES_PER_RESULT)]
    return "\n".join(lines)


def _turn_pair(turn: int) -> list[dict]:
    """An assistant tool_use and the user's tool_result for it."""
    tool_id = f"toolu_{turn:06d}abcdefghijklmnop"
    return [
        {"role": "assistant", "content": [
            {"type": "text", "text": f"Let me look at module {turn} next."},
            {"type": "tool_use", "id": tool_id, "name": "tool_00_read",
             "input": {"file_path": f"/work/project/src/module_{turn}.py", "limit": 200}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_id, "content": _source(turn)}]},
    ]


def agent_body(target_bytes: int, *, model: str, stream: bool) -> bytes:
    """A Messages body of about `target_bytes` (never less), with a history of tool turns."""
    system = [{"type": "text", "text": "You are a coding agent working in a repository. " * 8 + "\n",
               "cache_control": {"type": "ephemeral"}} for _ in range(SYSTEM_PARAGRAPHS)]
    body = {"model": model, "max_tokens": 16000, "stream": stream, "system": system,
            "tools": [_tool(number) for number in range(TOOL_COUNT)],
            "messages": [{"role": "user", "content": "Refactor the project's modules for clarity."}]}
    size = len(json.dumps(body, separators=(",", ":")))
    turn = 0
    while size < target_bytes:
        pair = _turn_pair(turn)
        body["messages"].extend(pair)
        size += len(json.dumps(pair, separators=(",", ":"))) + 1
        turn += 1
    body["messages"].append({"role": "user", "content": "Continue."})
    return json.dumps(body, separators=(",", ":")).encode()


if __name__ == "__main__":
    for target in (270_000, 1_000_000):
        data = agent_body(target, model="m", stream=False)
        print(target, len(data), len(json.loads(data)["messages"]))
