"""Codex CLI's real request bodies (tests/codex_requests/), and the rules Anthropic enforces on a body."""

from __future__ import annotations

import json
from pathlib import Path

from loadbalancer.providers.anthropic import without_unsigned_thinking

CODEX_REQUESTS = Path(__file__).resolve().parent.parent / "codex_requests"


def codex_request(name: str) -> dict:
    """One body Codex 0.171.0 sent (captured against a fake server): e.g. "run1-2" is run1's turn 2."""
    return json.loads((CODEX_REQUESTS / f"{name}.json").read_text())


USER_BLOCKS = {"text", "image", "document", "tool_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking"}


def assert_valid_anthropic_body(body: dict) -> None:
    """The rules the Anthropic Messages API enforces that a translation can break (after the
    Anthropic provider removed unsigned thinking, which it does on the way)."""
    body = without_unsigned_thinking(body)  # a no-op for a body without unsigned thinking
    assert isinstance(body["model"], str) and body["max_tokens"] > 0
    messages = body["messages"]
    assert messages and all(turn["content"] for turn in messages)
    tool_names = {tool["name"] for tool in body.get("tools", [])}
    assert len(tool_names) == len(body.get("tools", [])), "tool names must be unique"
    assert "tool_choice" not in body or tool_names, "tool_choice needs tools"
    for index, turn in enumerate(messages):
        assert turn["role"] in ("user", "assistant")
        if index:
            assert turn["role"] != messages[index - 1]["role"], f"messages[{index}] repeats a role"
        kinds = [block["type"] for block in turn["content"]]
        allowed = USER_BLOCKS if turn["role"] == "user" else ASSISTANT_BLOCKS
        assert set(kinds) <= allowed, f"messages[{index}] has {kinds}"
        assert all(block.get("text") for block in turn["content"] if block["type"] == "text"), "empty text block"
        if "tool_result" in kinds:
            assert kinds[: kinds.count("tool_result")] == ["tool_result"] * kinds.count("tool_result")
            open_ids = {block["id"] for block in messages[index - 1]["content"] if block["type"] == "tool_use"}
            assert {block["tool_use_id"] for block in turn["content"] if block["type"] == "tool_result"} <= open_ids
        uses = [block for block in turn["content"] if block["type"] == "tool_use"]
        if uses:
            assert tool_names, "tool_use blocks need tools"
            following = messages[index + 1]["content"] if index + 1 < len(messages) else []
            answered = {block.get("tool_use_id") for block in following if block["type"] == "tool_result"}
            assert {block["id"] for block in uses} <= answered, f"messages[{index}] has unanswered tool_use"
            assert all(isinstance(block["input"], dict) for block in uses)
        if body.get("thinking") and uses and index == _last_tool_loop_turn(messages):
            assert kinds[0] in ("thinking", "redacted_thinking"), "thinking on: the tool loop must open with thinking"
    if body.get("thinking"):
        assert body["thinking"]["budget_tokens"] >= 1024 and body["thinking"]["budget_tokens"] < body["max_tokens"]
        assert "temperature" not in body and body.get("tool_choice", {}).get("type") not in ("any", "tool")
    else:
        assert not any(block["type"] in ("thinking", "redacted_thinking") for turn in messages for block in turn["content"])


def _last_tool_loop_turn(messages: list[dict]) -> int | None:
    """The index of the assistant turn that opened the current tool loop, if one is open."""
    for index in range(len(messages) - 1, -1, -1):
        turn = messages[index]
        if turn["role"] == "user" and any(block["type"] != "tool_result" for block in turn["content"]):
            return None
        if turn["role"] == "assistant" and any(block["type"] == "tool_use" for block in turn["content"]):
            return index
    return None
