"""OpenAI chat.completions answers (and errors) -> Anthropic Messages answers."""

from __future__ import annotations

import html
import json
import re
import secrets
import string
from typing import Any

import json_repair

from loadbalancer.translation.tool_names import ToolNameMap

ERROR_SNIPPET_LENGTH = 200
TOOL_ID_LENGTH = 24
_ID_ALPHABET = string.ascii_letters + string.digits
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_HTML_TAG = re.compile(r"<[^>]*>")
_HTML_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def new_message_id() -> str:
    """A fresh Anthropic message id."""
    return "msg_" + secrets.token_hex(12)


def new_tool_use_id() -> str:
    """A fresh Anthropic tool_use id."""
    return "toolu_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(TOOL_ID_LENGTH))


def anthropic_stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    """The Anthropic stop_reason for an OpenAI finish_reason; tool calls always mean tool_use."""
    if has_tool_calls:
        return "tool_use"
    return _STOP_REASONS.get(finish_reason, "end_turn")


def parse_tool_arguments(arguments: Any) -> dict:
    """A tool call's arguments as a dict, repairing broken or twice-encoded JSON."""
    parsed = _decode_json(arguments)
    if isinstance(parsed, str):
        parsed = _decode_json(parsed)
    # Arguments that are no object even after repair (a bare number, prose) carry nothing a
    # tool could use; {} lets the client report the missing arguments.
    return parsed if isinstance(parsed, dict) else {}


def _decode_json(value: Any) -> Any:
    """A JSON text decoded, with json_repair for broken JSON; non-strings pass through."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return json_repair.loads(value)


def anthropic_usage(usage: Any) -> dict:
    """Anthropic usage for OpenAI usage; cached prompt tokens are counted apart, as Anthropic does."""
    usage = usage if isinstance(usage, dict) else {}
    prompt_tokens = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached_tokens = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    result = {
        "input_tokens": max(prompt_tokens - cached_tokens, 0),
        "output_tokens": _count(usage.get("completion_tokens")),
    }
    if cached_tokens:
        result["cache_read_input_tokens"] = cached_tokens
    return result


def _count(value: Any) -> int:
    """A token count, 0 for anything that is not a non-negative integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def reasoning_text(message: dict) -> str:
    """The reasoning in a message or delta (DeepSeek/vLLM `reasoning_content`, others `reasoning`)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            return message[key]
    return ""


def _message_text(message: dict) -> str:
    """The answer text: a string, a list of text parts, or a refusal."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    if isinstance(content, str) and content:
        return content
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def _function_calls(message: dict) -> list[dict]:
    """The `function` objects of the message's tool calls (legacy function_call included)."""
    calls = [
        call["function"]
        for call in message.get("tool_calls") or []
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    if isinstance(message.get("function_call"), dict):
        calls.append(message["function_call"])
    return [call for call in calls if isinstance(call.get("name"), str) and call["name"]]


def openai_to_anthropic_message(
    data: dict, requested_model: str, tool_names: ToolNameMap, *, thinking_requested: bool = False
) -> dict:
    """An Anthropic Messages response for an OpenAI chat.completions response."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[dict] = []
    reasoning = reasoning_text(message)
    if thinking_requested and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _message_text(message)
    if text:
        content.append({"type": "text", "text": text})
    for call in _function_calls(message):
        content.append(
            {
                "type": "tool_use",
                "id": new_tool_use_id(),
                "name": tool_names.original_name(call["name"]),
                "input": parse_tool_arguments(call.get("arguments")),
            }
        )
    has_tool_calls = any(block["type"] == "tool_use" for block in content)
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": anthropic_stop_reason(choice.get("finish_reason"), has_tool_calls),
        "stop_sequence": None,
        "usage": anthropic_usage(data.get("usage") if isinstance(data, dict) else None),
    }


def anthropic_error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def openai_error_to_anthropic(
    status: int, body: bytes, content_type: str | None = None
) -> tuple[int, dict]:
    """(status, Anthropic error body) for a backend error answer: OpenAI error JSON, HTML page, or garbage."""
    # A backend that fails with a success status still failed: report it as a bad gateway.
    status = status if status >= 400 else 502
    message = _json_error_message(body) or _non_json_error_message(status, body, content_type)
    error = {"type": anthropic_error_type(status), "message": message}
    return status, {"type": "error", "error": error}


def _json_error_message(body: bytes) -> str | None:
    """The message of an OpenAI-style (or FastAPI-style) JSON error body, if it is one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return error["message"]
    for candidate in (error, data.get("message"), data.get("detail")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "provider error: " + _snippet(json.dumps(data, ensure_ascii=False))


def _non_json_error_message(status: int, body: bytes, content_type: str | None) -> str:
    """A readable message for an error body that is not JSON (an HTML page, garbage, nothing)."""
    text = body.decode("utf-8", errors="replace")
    if "html" in (content_type or "").lower() or _HTML_TAG.search(text):
        text = html.unescape(_HTML_TAG.sub(" ", _HTML_HIDDEN.sub(" ", text)))
    snippet = _snippet(text)
    if not snippet:
        return f"provider answered HTTP {status} with an empty body"
    return f"provider answered HTTP {status} with a non-JSON body: {snippet}"


def _snippet(text: str) -> str:
    """The first characters of a text with its whitespace collapsed."""
    return _WHITESPACE.sub(" ", text).strip()[:ERROR_SNIPPET_LENGTH]
