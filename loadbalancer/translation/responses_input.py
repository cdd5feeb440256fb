"""Responses API input items -> Anthropic turns, for the Responses front door.

Pure: no network, no Flask. Messages keep their role (system and developer text is collected
apart, for `system`); function, custom and local shell calls become `tool_use` blocks and their
outputs `tool_result` blocks; reasoning items become thinking blocks only when they carry one
this load balancer produced (see encode_reasoning), since OpenAI's encrypted reasoning cannot
be read by any other backend. normalize_turns then makes the turns acceptable to Anthropic:
one turn per role change, every tool_use answered in the next turn, tool_result blocks first.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from loadbalancer.translation.responses_tools import ToolSet

REASONING_PREFIX = "lb-thinking-v1:"
MISSING_OUTPUT_TEXT = "No output was recorded for this tool call."
_ID_INVALID_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


def encode_reasoning(block: dict) -> str | None:
    """A reasoning item's encrypted_content carrying a thinking block, or None.

    Anthropic's thinking carries a signature; an OpenAI-compatible backend's reasoning comes
    as thinking without one, and goes back to it as `reasoning_content`.
    """
    if block.get("type") == "thinking" and isinstance(block.get("thinking"), str) and (
            block["thinking"] or block.get("signature")):
        payload = {"thinking": block["thinking"], "signature": str(block.get("signature") or "")}
    elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
        payload = {"data": block["data"]}
    else:
        return None
    return REASONING_PREFIX + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_reasoning(encrypted_content: Any) -> dict | None:
    """The thinking block encode_reasoning stored, or None for anything else."""
    if not isinstance(encrypted_content, str) or not encrypted_content.startswith(REASONING_PREFIX):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(encrypted_content[len(REASONING_PREFIX):]))
    except (ValueError, TypeError):
        return None
    if isinstance(payload, dict) and isinstance(payload.get("signature"), str):
        return {"type": "thinking", "thinking": str(payload.get("thinking") or ""), "signature": payload["signature"]}
    if isinstance(payload, dict) and isinstance(payload.get("data"), str):
        return {"type": "redacted_thinking", "data": payload["data"]}
    return None


def is_anthropic_thinking(block: dict) -> bool:
    """A thinking block Anthropic made: signed (or redacted), unlike an OpenAI backend's reasoning."""
    return block.get("type") == "redacted_thinking" or (
        block.get("type") == "thinking" and bool(block.get("signature")))


def translate_input(items: Any, toolset: ToolSet, system_texts: list[str], notes: list[str]) -> list[dict]:
    """Anthropic turns (unmerged) for the input; system/developer texts go to system_texts."""
    if isinstance(items, str):
        return [{"role": "user", "content": [{"type": "text", "text": items}]}] if items else []
    if not isinstance(items, list):
        raise ValueError("'input' must be a string or a list of items")
    turns: list[dict] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"input[{position}] must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            _add_message(item, position, turns, system_texts)
        elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
            turns.append({"role": "assistant", "content": [_tool_use_block(item, kind, position, toolset)]})
        elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            turns.append({"role": "user", "content": [_tool_result_block(item, position)]})
        elif kind == "reasoning":
            block = decode_reasoning(item.get("encrypted_content"))
            if block is not None:
                turns.append({"role": "assistant", "content": [block]})
        elif kind == "item_reference":
            raise ValueError(f"input[{position}]: 'item_reference' is not supported: this load balancer "
                             "is stateless; send the referenced item itself")
        else:
            notes.append(f"dropped input[{position}] of type {kind!r}")
    return turns


def _add_message(item: dict, position: int, turns: list[dict], system_texts: list[str]) -> None:
    """A message item: system/developer text to system_texts, user/assistant content to a turn."""
    role = item.get("role")
    if role in ("system", "developer"):
        blocks = _content_blocks(item.get("content"), position)
        system_texts.extend(block["text"] for block in blocks if block["type"] == "text")
    elif role in ("user", "assistant"):
        turns.append({"role": role, "content": _content_blocks(item.get("content"), position)})
    else:
        raise ValueError(f"input[{position}] has an unsupported role {role!r}")


def _content_blocks(content: Any, position: int) -> list[dict]:
    """Anthropic blocks for message content: a string or input_text/output_text/refusal/image/file parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ValueError(f"input[{position}].content must be a string or a list of parts")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str) and part["text"]:
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and isinstance(part.get("refusal"), str) and part["refusal"]:
            blocks.append({"type": "text", "text": part["refusal"]})
        elif kind == "input_image":
            blocks.append(_image_block(part, position))
        elif kind == "input_file":
            blocks.append(_file_block(part, position))
    return blocks


def _data_url_source(url: str, position: int) -> dict:
    """An Anthropic base64 source for a data: URL."""
    header, separator, data = url.partition(",")
    if not separator or not header.endswith(";base64"):
        raise ValueError(f"input[{position}] has a data URL that is not base64")
    return {"type": "base64", "media_type": header[len("data:"):-len(";base64")], "data": data}


def _image_block(part: dict, position: int) -> dict:
    """An Anthropic image block for an input_image part (data: or http(s) URL)."""
    url = part.get("image_url")
    if isinstance(url, str) and url.startswith("data:"):
        return {"type": "image", "source": _data_url_source(url, position)}
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise ValueError(f"input[{position}] has an input_image without an inline or http(s) image_url "
                     "(file_id needs OpenAI's file storage, which this load balancer does not have)")


def _file_block(part: dict, position: int) -> dict:
    """An Anthropic document block for an input_file part (inline data or a URL)."""
    if isinstance(part.get("file_data"), str) and part["file_data"].startswith("data:"):
        return {"type": "document", "source": _data_url_source(part["file_data"], position)}
    if isinstance(part.get("file_url"), str) and part["file_url"].startswith(("http://", "https://")):
        return {"type": "document", "source": {"type": "url", "url": part["file_url"]}}
    raise ValueError(f"input[{position}] has an input_file without file_data or file_url "
                     "(file_id needs OpenAI's file storage, which this load balancer does not have)")


def tool_use_id(call_id: Any, position: int) -> str:
    """A tool_use id Anthropic accepts (^[A-Za-z0-9_-]+$) for a Responses call_id."""
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"input[{position}] needs a 'call_id'")
    return _ID_INVALID_CHARACTERS.sub("_", call_id)


def _tool_use_block(item: dict, kind: str, position: int, toolset: ToolSet) -> dict:
    """A tool_use block for a function_call, custom_tool_call or local_shell_call item."""
    if kind == "local_shell_call":
        action = item.get("action") if isinstance(item.get("action"), dict) else {}
        arguments = {"command": action.get("command") or []}
        if action.get("working_directory"):
            arguments["workdir"] = action["working_directory"]
        if action.get("timeout_ms"):
            arguments["timeout_ms"] = action["timeout_ms"]
        call_id = item.get("call_id") or item.get("id")
        return {"type": "tool_use", "id": tool_use_id(call_id, position),
                "name": toolset.name_for("local_shell", None, "local_shell"), "input": arguments}
    if not isinstance(item.get("name"), str) or not item["name"]:
        raise ValueError(f"input[{position}] ({kind}) needs a 'name'")
    if kind == "custom_tool_call":
        arguments = {"input": item.get("input") if isinstance(item.get("input"), str) else ""}
        name = toolset.name_for(item["name"], item.get("namespace"), "custom")
    else:
        arguments = _parse_arguments(item.get("arguments"))
        name = toolset.name_for(item["name"], item.get("namespace"), "function")
    return {"type": "tool_use", "id": tool_use_id(item.get("call_id"), position), "name": name, "input": arguments}


def _parse_arguments(arguments: Any) -> dict:
    """A function_call's arguments (a JSON string) as an object; anything else kept under 'arguments'."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def _tool_result_block(item: dict, position: int) -> dict:
    """A tool_result block for a *_call_output item (output: a string, parts, or {content, success})."""
    call_id = item.get("call_id") or (item.get("id") if item.get("type") == "local_shell_call_output" else None)
    output = item.get("output")
    is_error = False
    if isinstance(output, dict):
        is_error = output.get("success") is False
        output = output.get("content")
    if isinstance(output, list):
        content: Any = [block for block in _content_blocks(output, position) if block["type"] != "document"]
    else:
        content = output if isinstance(output, str) else json.dumps(output) if output is not None else ""
    block = {"type": "tool_result", "tool_use_id": tool_use_id(call_id, position), "content": content or ""}
    if is_error:
        block["is_error"] = True
    return block


def normalize_turns(turns: list[dict], has_tools: bool) -> list[dict]:
    """Merge same-role turns and repair what Anthropic refuses: unpaired tool blocks, empty turns."""
    merged = merge_turns(turns)
    _pair_tool_blocks(merged)
    for turn in merged:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn that answers the tool_use blocks
            turn["content"].sort(key=lambda block: block.get("type") != "tool_result")
    if not has_tools:
        _tool_blocks_to_text(merged)
    return merged


def merge_turns(turns: list[dict]) -> list[dict]:
    """Consecutive turns of one role as one turn; empty turns left out."""
    merged: list[dict] = []
    for turn in turns:
        if not turn["content"]:
            continue
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"].extend(turn["content"])
        else:
            merged.append({"role": turn["role"], "content": list(turn["content"])})
    return merged


def _pair_tool_blocks(turns: list[dict]) -> None:
    """Give every tool_use a tool_result in the next turn; turn orphan tool_results into text."""
    index = 0
    while index < len(turns):
        turn = turns[index]
        previous = turns[index - 1] if index else None
        if turn["role"] == "user":
            open_ids = {block["id"] for block in (previous or {}).get("content", []) if block.get("type") == "tool_use"}
            turn["content"] = [_orphan_to_text(block, open_ids) for block in turn["content"]]
        if turn["role"] == "assistant":
            ids = [block["id"] for block in turn["content"] if block.get("type") == "tool_use"]
            following = turns[index + 1] if index + 1 < len(turns) else None
            if ids and (following is None or following["role"] != "user"):
                following = {"role": "user", "content": []}
                turns.insert(index + 1, following)
            answered = {block.get("tool_use_id") for block in (following or {}).get("content", [])
                        if block.get("type") == "tool_result"}
            missing = [{"type": "tool_result", "tool_use_id": call_id, "content": MISSING_OUTPUT_TEXT,
                        "is_error": True} for call_id in ids if call_id not in answered]
            if following is not None and missing:
                following["content"][:0] = missing
        index += 1


def _orphan_to_text(block: dict, open_ids: set) -> dict:
    """A tool_result without its tool_use just before it, as text (Anthropic refuses it otherwise)."""
    if block.get("type") != "tool_result" or block.get("tool_use_id") in open_ids:
        return block
    return {"type": "text", "text": f"Output of tool call {block.get('tool_use_id')}:\n{_result_text(block)}"}


def _result_text(block: dict) -> str:
    """The text of a tool_result block's content."""
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content if isinstance(content, str) else ""


def _tool_blocks_to_text(turns: list[dict]) -> None:
    """Without tools Anthropic refuses tool_use/tool_result blocks (Codex's compaction request)."""
    for turn in turns:
        converted = []
        for block in turn["content"]:
            if block.get("type") == "tool_use":
                arguments = json.dumps(block.get("input"), ensure_ascii=False)
                converted.append({"type": "text", "text": f"[called tool {block['name']} with {arguments}]"})
            elif block.get("type") == "tool_result":
                converted.append({"type": "text", "text": f"[tool output]\n{_result_text(block)}"})
            else:
                converted.append(block)
        turn["content"] = converted

