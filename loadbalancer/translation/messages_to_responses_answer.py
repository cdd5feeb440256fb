"""Anthropic message -> Responses `response` object, and the Responses error shapes.

Pure: no network, no Flask. `messages_to_responses` turns a non-stream Anthropic message into
the `response` object of `POST /v1/responses`; the item builders here are shared with
messages_to_responses_stream. `error_body` is the HTTP error body of the Responses front door,
`response_error` the `error` of a `response.failed` event, with the codes Codex acts on.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from loadbalancer.translation.responses_input import encode_reasoning
from loadbalancer.translation.responses_to_messages_request import TranslatedRequest
from loadbalancer.translation.responses_tools import CUSTOM_INPUT_FIELD, ToolRoute

_INCOMPLETE_REASONS = {"max_tokens": "max_output_tokens", "model_context_window_exceeded": "max_output_tokens",
                       "refusal": "content_filter"}
_ERROR_CODES = {"rate_limit_error": "rate_limit_exceeded", "overloaded_error": "server_error",
                "api_error": "server_error", "timeout_error": "server_error"}
# Anthropic has no error type for an over-long prompt; Codex needs the code to say so plainly.
_CONTEXT_TOO_LONG_TEXT = "prompt is too long"
_ID_PREFIXES = {"message": "msg", "function_call": "fc", "custom_tool_call": "ctc",
                "local_shell_call": "lsh", "reasoning": "rs"}


def new_id(prefix: str) -> str:
    """A fresh id such as resp_..., msg_..., fc_... ."""
    return f"{prefix}_{secrets.token_hex(16)}"


def responses_usage(usage: Any) -> dict:
    """Responses usage for Anthropic usage (cache reads and writes count as input tokens)."""
    usage = usage if isinstance(usage, dict) else {}
    count = {key: value for key, value in usage.items() if isinstance(value, int) and value > 0}
    cached, written = count.get("cache_read_input_tokens", 0), count.get("cache_creation_input_tokens", 0)
    input_tokens = count.get("input_tokens", 0) + cached + written
    output_tokens = count.get("output_tokens", 0)
    details = {"cached_tokens": cached, "cache_write_tokens": written}
    return {"input_tokens": input_tokens, "input_tokens_details": details,
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


def response_error(error: Any, retry_after_seconds: float | None = None) -> dict:
    """A Responses `error` object ({code, message}) for an Anthropic error object."""
    error = error if isinstance(error, dict) else {}
    message = error.get("message") if isinstance(error.get("message"), str) else "the provider failed"
    code = _ERROR_CODES.get(error.get("type"), "server_error")
    if error.get("type") == "invalid_request_error" and _CONTEXT_TOO_LONG_TEXT in message.lower():
        code = "context_length_exceeded"
    if code == "rate_limit_exceeded" and retry_after_seconds:
        message += f" Please try again in {retry_after_seconds:g}s."  # Codex reads this delay
    return {"code": code, "message": message}


def error_body(status: int, error: Any) -> dict:
    """The OpenAI-style HTTP error body (`{"error": {...}}`) for an Anthropic error object."""
    mapped = response_error(error)
    error_type = error.get("type") if isinstance(error, dict) and error.get("type") else "api_error"
    code = None if mapped["code"] == "server_error" and status < 500 else mapped["code"]
    return {"error": {"message": mapped["message"], "type": error_type, "param": None, "code": code}}


def response_object(request: TranslatedRequest, response_id: str, created_at: int, status: str,
                    output: list[dict], **fields: Any) -> dict:
    """A Responses `response` object repeating the request's settings."""
    result = {"id": response_id, "object": "response", "created_at": created_at, "status": status,
              "model": request.body.get("model"), "output": output, "error": None,
              "incomplete_details": None, "usage": None, **request.echo}
    result.update(fields)
    return result


def final_fields(stop_reason: Any, usage: Any) -> tuple[str, dict]:
    """The terminal status and fields for an Anthropic stop_reason and usage."""
    reason = _INCOMPLETE_REASONS.get(stop_reason)
    fields: dict[str, Any] = {"usage": responses_usage(usage)}
    if reason:
        fields["incomplete_details"] = {"reason": reason}
        return "incomplete", fields
    fields["completed_at"] = int(time.time())
    return "completed", fields


def messages_to_responses(message: dict, request: TranslatedRequest) -> dict:
    """The Responses `response` object for a non-stream Anthropic message."""
    output = []
    for block in message.get("content") or []:
        if isinstance(block, dict):
            item = _item_for_block(block, request)
            if item is not None:
                output.append(item)
    status, fields = final_fields(message.get("stop_reason"), message.get("usage"))
    return response_object(request, new_id("resp"), int(time.time()), status, output, **fields)


def _item_for_block(block: dict, request: TranslatedRequest) -> dict | None:
    """The completed output item for one Anthropic content block (None: nothing to show)."""
    kind = block.get("type")
    if kind == "text" and block.get("text"):
        return message_item(new_id("msg"), block["text"], "completed")
    if kind == "tool_use":
        item = call_item(request.toolset.routes.get(block.get("name")), block)
        return finish_call(item, block.get("input"))
    if kind in ("thinking", "redacted_thinking"):
        return reasoning_item(new_id("rs"), block, request.include_reasoning_summary)
    return None


def message_item(item_id: str, text: str, status: str) -> dict:
    """An assistant message item with one output_text part."""
    content = [text_part(text)] if status == "completed" or text else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> dict:
    """An output_text content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(route: ToolRoute | None, block: dict) -> dict:
    """The in-progress call item for a tool_use block, by the route of its tool."""
    route = route or ToolRoute("function", str(block.get("name") or ""))
    kind = {"custom": "custom_tool_call", "local_shell": "local_shell_call"}.get(route.kind, "function_call")
    item: dict[str, Any] = {"id": new_id(_ID_PREFIXES[kind]), "type": kind, "status": "in_progress",
                            "call_id": block.get("id") or new_id("call")}
    if kind == "local_shell_call":
        item["action"] = {"type": "exec", "command": [], "env": {}}
        return item
    item["name"] = route.name
    item["input" if kind == "custom_tool_call" else "arguments"] = ""
    if route.namespace:
        item["namespace"] = route.namespace
    return item


def finish_call(item: dict, arguments: Any) -> dict:
    """The completed call item once its arguments (a dict) are known."""
    arguments = arguments if isinstance(arguments, dict) else {}
    done = {**item, "status": "completed"}
    if item["type"] == "custom_tool_call":
        raw = arguments.get(CUSTOM_INPUT_FIELD)
        done["input"] = raw if isinstance(raw, str) else json.dumps(arguments, ensure_ascii=False)
    elif item["type"] == "local_shell_call":
        command = arguments.get("command")
        action = {"type": "exec", "command": command if isinstance(command, list) else [str(command or "")],
                  "env": {}, "timeout_ms": arguments.get("timeout_ms"), "working_directory": arguments.get("workdir")}
        done["action"] = action
    else:
        done["arguments"] = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return done


def reasoning_item(item_id: str, block: dict, include_summary: bool) -> dict | None:
    """A reasoning item: the thinking text as its summary, the block itself in encrypted_content."""
    thinking = block.get("thinking") if isinstance(block.get("thinking"), str) else ""
    summary = [{"type": "summary_text", "text": thinking}] if include_summary and thinking else []
    encrypted = encode_reasoning(block)
    if not summary and encrypted is None:
        return None
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item
