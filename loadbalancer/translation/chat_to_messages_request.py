"""Client side, inbound: an OpenAI Chat Completions request -> an Anthropic Messages request.

The answer goes back through `messages_to_chat_answer`.
"""

from __future__ import annotations

from typing import Any

from loadbalancer.translation.chat_to_messages_answer import parse_tool_arguments

DEFAULT_MAX_TOKENS = 4096
_TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


def openai_to_anthropic_request(body: dict) -> dict:
    """An Anthropic Messages body for an OpenAI chat.completions body (ValueError on bad input)."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise ValueError("n>1 is not supported")
    system_texts, turns = _translate_messages(messages)
    result: dict[str, Any] = {"model": body.get("model"), "messages": _merge_same_role_turns(turns)}
    if system_texts:
        result["system"] = "\n\n".join(system_texts)
    result["max_tokens"] = _max_tokens(body)
    _copy_generation_fields(body, result)
    if not isinstance(body.get("tools") or [], list):
        raise ValueError("'tools' must be a list")
    tools = [_translate_tool(tool) for tool in body.get("tools") or [] if _is_function_tool(tool)]
    if tools:
        result["tools"] = tools
        tool_choice = _translate_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if tool_choice is not None:
            result["tool_choice"] = tool_choice
    return result


def _max_tokens(body: dict) -> int:
    """max_tokens or max_completion_tokens; Anthropic requires one, so a default otherwise."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_MAX_TOKENS


def _copy_generation_fields(body: dict, result: dict) -> None:
    """Sampling, stop sequences, streaming and the end-user id."""
    for name in ("temperature", "top_p"):
        if isinstance(body.get(name), (int, float)) and not isinstance(body[name], bool):
            result[name] = body[name]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [item for item in stops if isinstance(item, str) and item]
    if stops:
        result["stop_sequences"] = stops
    if body.get("stream") is True:
        result["stream"] = True
    if isinstance(body.get("user"), str) and body["user"]:
        result["metadata"] = {"user_id": body["user"]}


def _translate_messages(messages: list) -> tuple[list[str], list[dict]]:
    """The system texts and the Anthropic turns of an OpenAI messages list."""
    system_texts: list[str] = []
    turns: list[dict] = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages[{position}] must be an object with a 'role'")
        role = message["role"]
        if role in ("system", "developer"):
            blocks = _content_blocks(message.get("content"), position)
            system_texts.extend(block["text"] for block in blocks if block["type"] == "text")
        elif role == "user":
            turns.append({"role": "user", "content": _content_blocks(message.get("content"), position)})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_blocks(message, position)})
        elif role == "tool":
            turns.append({"role": "user", "content": [_tool_result_block(message, position)]})
        else:
            raise ValueError(f"messages[{position}] has an unsupported role {role!r}")
    return system_texts, [turn for turn in turns if turn["content"]]


def _content_blocks(content: Any, position: int) -> list[dict]:
    """Anthropic text and image blocks for OpenAI content (a string or a list of parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ValueError(f"messages[{position}].content must be a string or a list of parts")
    blocks: list[dict] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str) and part["text"]:
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part.get("image_url"), position))
    return blocks


def _image_block(image_url: Any, position: int) -> dict:
    """An Anthropic image block for an OpenAI image_url part (data: URL or http(s) URL)."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise ValueError(f"messages[{position}] has an image_url part without a url")
    if url.startswith("data:"):
        header, separator, data = url.partition(",")
        if not separator or not header.endswith(";base64"):
            raise ValueError(f"messages[{position}] has an image data URL that is not base64")
        media_type = header[len("data:"):-len(";base64")]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise ValueError(f"messages[{position}] has an image url that is neither data: nor http(s)")


def _assistant_blocks(message: dict, position: int) -> list[dict]:
    """Text blocks, then tool_use blocks, for an OpenAI assistant message."""
    blocks = _content_blocks(message.get("content"), position)
    if not isinstance(message.get("tool_calls") or [], list):
        raise ValueError(f"messages[{position}].tool_calls must be a list")
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    if isinstance(message.get("function_call"), dict):
        calls.append({"function": message["function_call"]})
    for call in calls:
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise ValueError(f"messages[{position}] has a tool call without a function name")
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"call_{position}_{len(blocks)}",
                "name": function["name"],
                "input": parse_tool_arguments(function.get("arguments")),
            }
        )
    return blocks


def _tool_result_block(message: dict, position: int) -> dict:
    """An Anthropic tool_result block for an OpenAI tool message."""
    if not isinstance(message.get("tool_call_id"), str):
        raise ValueError(f"messages[{position}] (role tool) needs a 'tool_call_id'")
    texts = [block["text"] for block in _content_blocks(message.get("content"), position) if block["type"] == "text"]
    return {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": "\n\n".join(texts)}


def _merge_same_role_turns(turns: list[dict]) -> list[dict]:
    """Merge consecutive turns of one role (consecutive tool messages become one user turn)."""
    merged: list[dict] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"] = merged[-1]["content"] + turn["content"]
        else:
            merged.append({"role": turn["role"], "content": list(turn["content"])})
    return merged


def _is_function_tool(tool: Any) -> bool:
    """Whether an OpenAI tool is a named function tool."""
    return (
        isinstance(tool, dict)
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    )


def _translate_tool(tool: dict) -> dict:
    """An Anthropic tool for an OpenAI function tool."""
    function = tool["function"]
    result: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        result["description"] = function["description"]
    parameters = function.get("parameters")
    result["input_schema"] = parameters if isinstance(parameters, dict) else dict(_EMPTY_SCHEMA)
    return result


def _translate_tool_choice(tool_choice: Any, parallel_tool_calls: Any) -> dict | None:
    """The Anthropic tool_choice for OpenAI tool_choice and parallel_tool_calls."""
    if isinstance(tool_choice, str) and tool_choice in _TOOL_CHOICES:
        choice = dict(_TOOL_CHOICES[tool_choice])
    elif isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
        choice = {"type": "tool", "name": tool_choice["function"].get("name")}
    else:
        choice = None
    if parallel_tool_calls is False and (choice is None or choice["type"] != "none"):
        choice = choice or {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    return choice
