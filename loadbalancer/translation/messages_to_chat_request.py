"""Anthropic Messages request -> OpenAI chat.completions request, for `openai` providers.

Only fields OpenAI-compatible servers know are produced: anything Anthropic-specific
(thinking, cache_control, output_config, context_management, server tools, ...) is dropped,
never forwarded, because strict servers such as vLLM answer 400 to unknown fields. The one
exception is earlier turns' thinking, sent back as `reasoning_content` on assistant messages
(the text only, never a signature), as the provider's `reasoning_content` setting says:
DeepSeek's thinking mode and Kimi K2 Thinking refuse a tool loop without it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from loadbalancer.translation.tool_names import DEFAULT_MAX_TOOL_NAME_LENGTH, ToolNameMap, build_tool_name_map

TEXT_BLOCK_SEPARATOR = "\n\n"
TOOL_ERROR_PREFIX = "Error: "
# OpenAI tool messages cannot carry images; this stands in for an image-only tool result.
IMAGE_ONLY_TOOL_RESULT = "(the tool returned an image, attached in the next message)"
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def anthropic_to_openai_request(
    body: dict, provider_model: str, *, max_tool_name_length: int = DEFAULT_MAX_TOOL_NAME_LENGTH,
    reasoning_content: str = "auto",
) -> tuple[dict, ToolNameMap]:
    """The OpenAI chat.completions body for an Anthropic Messages body.

    `reasoning_content`: "auto" sends earlier thinking back on assistant turns with tool
    calls, "send" on every assistant turn, "drop" never.
    """
    function_tools = [tool for tool in body.get("tools") or [] if _is_function_tool(tool)]
    # Each message's blocks, listed once: the tool names and the translation both read them.
    turns = [(message.get("role"), _blocks_of(message)) for message in body.get("messages") or []
             if isinstance(message, dict)]
    tool_names = build_tool_name_map(_tool_names_in(turns, function_tools), max_tool_name_length)
    messages = _translate_conversation(body.get("system"), turns, tool_names, reasoning_content)
    result: dict[str, Any] = {"model": provider_model, "messages": messages}
    _copy_sampling_fields(body, result)
    if function_tools:
        result["tools"] = [_translate_tool(tool, tool_names) for tool in function_tools]
        _copy_tool_choice(body.get("tool_choice"), function_tools, tool_names, result)
    if body.get("stream") is True:
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        result["user"] = metadata["user_id"]
    return result, tool_names


def _is_function_tool(tool: Any) -> bool:
    """Whether a tool is a client tool (server tools such as web_search have no schema)."""
    return (
        isinstance(tool, dict)
        and isinstance(tool.get("name"), str)
        and isinstance(tool.get("input_schema"), dict)
    )


def _tool_names_in(turns: list[tuple[Any, list[dict]]], function_tools: list[dict]) -> list[str]:
    """Every tool name the backend will see: declared tools and calls in the history."""
    names = [tool["name"] for tool in function_tools]
    for _, blocks in turns:
        for block in blocks:
            if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                names.append(block["name"])
    return names


def _blocks_of(message: Any) -> list[dict]:
    """A message's content as a list of block dicts (a string becomes one text block)."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _copy_sampling_fields(body: dict, result: dict) -> None:
    """Copy the generation limits and sampling settings OpenAI shares with Anthropic."""
    for name in ("max_tokens", "temperature", "top_p"):
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result[name] = value
    stop_sequences = body.get("stop_sequences")
    if isinstance(stop_sequences, list):
        stops = [stop for stop in stop_sequences if isinstance(stop, str) and stop]
        if stops:
            result["stop"] = stops


def _translate_tool(tool: dict, tool_names: ToolNameMap) -> dict:
    """An OpenAI function tool for an Anthropic client tool; extra fields are dropped."""
    function: dict[str, Any] = {"name": tool_names.backend_name(tool["name"])}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = tool["input_schema"]
    return {"type": "function", "function": function}


def _copy_tool_choice(
    tool_choice: Any, function_tools: list[dict], tool_names: ToolNameMap, result: dict
) -> None:
    """Translate tool_choice and disable_parallel_tool_use, when tools are sent."""
    if not isinstance(tool_choice, dict):
        return
    choice_type = tool_choice.get("type")
    declared = {tool["name"] for tool in function_tools}
    if choice_type in _TOOL_CHOICES:
        result["tool_choice"] = _TOOL_CHOICES[choice_type]
    elif choice_type == "tool" and tool_choice.get("name") in declared:
        backend_name = tool_names.backend_name(tool_choice["name"])
        result["tool_choice"] = {"type": "function", "function": {"name": backend_name}}
    if tool_choice.get("disable_parallel_tool_use") is True:
        result["parallel_tool_calls"] = False


def _translate_conversation(system: Any, turns: list[tuple[Any, list[dict]]], tool_names: ToolNameMap,
                            reasoning_content: str) -> list[dict]:
    """The OpenAI messages list: one system message, then the turns, same roles merged."""
    system_texts = _system_texts(system)
    translated: list[dict] = []
    for role, blocks in turns:
        if role == "system":
            system_texts.extend(_plain_texts(blocks))
        elif role == "assistant":
            translated.append(_translate_assistant_turn(blocks, tool_names, reasoning_content))
        elif role == "user":
            _translate_user_turn(blocks, translated)
    merged = _merge_same_role_turns(translated)
    if system_texts:
        return [{"role": "system", "content": TEXT_BLOCK_SEPARATOR.join(system_texts)}] + merged
    return merged


def _system_texts(system: Any) -> list[str]:
    """The texts of the top-level system prompt (a string or a list of text blocks)."""
    if isinstance(system, str):
        return [system] if system else []
    if isinstance(system, list):
        return _plain_texts([block for block in system if isinstance(block, dict)])
    return []


def _plain_texts(blocks: list[dict]) -> list[str]:
    """The non-empty texts of text and text-document blocks."""
    texts = [_block_text(block) for block in blocks]
    return [text for text in texts if text]


def _block_text(block: dict) -> str:
    """The text a text or document block carries; "" for every other block."""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if block.get("type") != "document" or not isinstance(block.get("source"), dict):
        return ""
    source = block["source"]
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return source["data"]
    if source.get("type") == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, list):
            return TEXT_BLOCK_SEPARATOR.join(
                _plain_texts([item for item in inner if isinstance(item, dict)])
            )
    return ""


def _image_part(block: dict) -> dict | None:
    """An OpenAI image_url part for an Anthropic image block, or None if unusable."""
    source = block.get("source")
    if block.get("type") != "image" or not isinstance(source, dict):
        return None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "image/png"
        url = f"data:{media_type};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _translate_assistant_turn(blocks: list[dict], tool_names: ToolNameMap, reasoning_content: str) -> dict:
    """One OpenAI assistant message: the text, the tool calls, and the thinking as the mode says.

    One pass over the blocks (a long history has hundreds of turns): texts and tool calls
    keep their order, thinking is gathered apart.
    """
    texts: list[str] = []
    tool_calls: list[dict] = []
    thoughts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if text and isinstance(text, str):
                texts.append(text)
        elif kind == "tool_use":
            tool_calls.append({"id": block.get("id") or "", "type": "function", "function": {
                "name": tool_names.backend_name(block.get("name") or ""),
                "arguments": _arguments_json(block.get("input"))}})
        elif kind == "thinking":
            thinking = block.get("thinking")
            if thinking and isinstance(thinking, str):
                thoughts.append(thinking)
        elif kind == "document":
            text = _block_text(block)
            if text:
                texts.append(text)
    turn: dict[str, Any] = {"role": "assistant", "content": TEXT_BLOCK_SEPARATOR.join(texts) if texts else None}
    if tool_calls:
        turn["tool_calls"] = tool_calls
    if thoughts and (reasoning_content == "send" or (reasoning_content == "auto" and tool_calls)):
        turn["reasoning_content"] = TEXT_BLOCK_SEPARATOR.join(thoughts)
    return turn


def _arguments_json(arguments: Any) -> str:
    """A tool call's input as the JSON string OpenAI wants (orjson: a long history has dozens)."""
    try:
        return orjson.dumps(arguments or {}).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits, which json writes as they are
        return json.dumps(arguments or {}, ensure_ascii=False)


def _translate_user_turn(blocks: list[dict], translated: list[dict]) -> None:
    """Append to `translated` the turn's tool messages first (OpenAI's order), then one user message.

    One pass over the blocks; a turn of tool results only adds no user message (it would be
    empty, and empty turns are dropped).
    """
    result_images: list[dict] = []
    parts: list[dict] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_result":
            message, images = _translate_tool_result(block)
            translated.append(message)
            result_images.extend(images)
        elif kind == "text":
            text = block.get("text")
            if text and isinstance(text, str):
                parts.append({"type": "text", "text": text})
        elif text := _block_text(block):  # a document
            parts.append({"type": "text", "text": text})
        elif (image := _image_part(block)) is not None:
            parts.append(image)
    if result_images:
        parts = result_images + parts
    if parts:
        translated.append({"role": "user", "content": _collapse_parts(parts)})


def _translate_tool_result(block: dict) -> tuple[dict, list[dict]]:
    """An OpenAI tool message for a tool_result block, and the images it carried."""
    content = block.get("content")
    if isinstance(content, str):  # the usual result: its text as it is, no blocks to look through
        text, images = content, []
    else:
        inner_blocks = _blocks_of({"content": content})
        text = TEXT_BLOCK_SEPARATOR.join(_plain_texts(inner_blocks))
        images = [part for part in map(_image_part, inner_blocks) if part is not None]
    if not text and images:
        text = IMAGE_ONLY_TOOL_RESULT
    if block.get("is_error") is True:
        text = TOOL_ERROR_PREFIX + text
    message = {"role": "tool", "tool_call_id": block.get("tool_use_id") or "", "content": text}
    return message, images


def _collapse_parts(parts: list[dict]) -> str | list[dict]:
    """A plain string when every part is text (what every backend accepts), else the parts."""
    if all(part["type"] == "text" for part in parts):
        return TEXT_BLOCK_SEPARATOR.join(part["text"] for part in parts)
    return parts


def _is_empty_turn(turn: dict) -> bool:
    """Whether a user or assistant turn has nothing left to say (tool messages never are)."""
    if turn["role"] == "tool":
        return False
    return not turn.get("content") and not turn.get("tool_calls")


def _merge_same_role_turns(turns: list[dict]) -> list[dict]:
    """Drop empty turns and merge consecutive user (or assistant) ones: several chat templates
    reject them. The turns are this translation's own dicts, so merging changes them in place."""
    merged: list[dict] = []
    for turn in turns:
        if _is_empty_turn(turn):
            continue
        previous = merged[-1] if merged else None
        if previous is None or turn["role"] == "tool" or previous["role"] != turn["role"]:
            merged.append(turn)
            continue
        previous["content"] = _merge_content(previous.get("content"), turn.get("content"))
        if turn.get("tool_calls"):
            previous["tool_calls"] = previous.get("tool_calls", []) + turn["tool_calls"]
        if turn.get("reasoning_content"):
            previous["reasoning_content"] = _merge_content(previous.get("reasoning_content"),
                                                           turn["reasoning_content"])
    return merged


def _merge_content(first: str | list | None, second: str | list | None) -> str | list | None:
    """The content of two merged turns, kept a string when both are strings."""
    if not first:
        return second
    if not second:
        return first
    if isinstance(first, str) and isinstance(second, str):
        return first + TEXT_BLOCK_SEPARATOR + second
    return _as_parts(first) + _as_parts(second)


def _as_parts(content: str | list) -> list[dict]:
    """Content as a list of parts."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
