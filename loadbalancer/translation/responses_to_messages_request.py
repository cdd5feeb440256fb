"""The Responses API front door, inbound half: a `POST /v1/responses` body -> an Anthropic Messages body.

Pure: no network, no Flask. The load balancer is stateless, so a request must carry the whole
conversation in `input` (Codex does: `store: false`, no `previous_response_id`); anything that
needs stored state is refused with a ValueError whose message the client can act on. The input
items become turns in responses_input, the tools in responses_tools; this module adds what the
body as a whole needs: system, max_tokens, thinking from reasoning.effort, sampling, prompt-cache
breakpoints, and the facts the answer's translation needs (TranslatedRequest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loadbalancer.translation.responses_input import is_anthropic_thinking, merge_turns, normalize_turns, translate_input
from loadbalancer.translation.responses_tools import ToolSet, restrict_to_allowed_tools, translate_tool_choice, translate_tools

DEFAULT_MAX_TOKENS = 32000  # Codex never sends max_output_tokens; a turn cut short fails in Codex
MIN_THINKING_BUDGET = 1024  # Anthropic's minimum budget_tokens
THINKING_BUDGETS = {"minimal": 1024, "low": 4000, "medium": 10000, "high": 20000, "xhigh": 28000}
SUMMARY_MODES = ("auto", "concise", "detailed")
CACHE_CONTROL = {"type": "ephemeral"}
_STATELESS_FIELDS = ("previous_response_id", "conversation")
_IGNORED_FIELDS = ("include", "truncation", "service_tier", "max_tool_calls", "top_logprobs",
                   "prompt_cache_retention", "client_metadata", "metadata", "background", "store")


@dataclass
class TranslatedRequest:
    """An Anthropic Messages body plus what the answer's translation and the log need."""

    body: dict
    toolset: ToolSet
    affinity_key: str | None
    stream: bool
    include_reasoning_summary: bool
    echo: dict  # the request fields a Responses `response` object repeats
    notes: list[str] = field(default_factory=list)  # what was dropped or changed, for the log

    @property
    def dropped_tools(self) -> list[str]:
        """Names of the tools the backend cannot run (hosted tools, for instance)."""
        return self.toolset.dropped


def responses_to_messages(body: Any, cache_breakpoints: bool = True,
                          default_max_tokens: int = DEFAULT_MAX_TOKENS) -> TranslatedRequest:
    """Translate a Responses request body (ValueError with a client-facing message on bad input)."""
    _check_request(body)
    notes: list[str] = []
    toolset = translate_tools(body.get("tools"))
    restrict_to_allowed_tools(body.get("tool_choice"), toolset)
    system_texts = [body["instructions"]] if isinstance(body.get("instructions"), str) and body["instructions"] else []
    turns = translate_input(body.get("input"), toolset, system_texts, notes)
    system_texts += _text_format_instructions(body.get("text"), notes)
    result: dict[str, Any] = {"model": body["model"], "max_tokens": _max_tokens(body, default_max_tokens)}
    if toolset.tools:
        result["tools"] = toolset.tools
        tool_choice = translate_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), toolset)
        if tool_choice is not None:
            result["tool_choice"] = tool_choice
    messages = normalize_turns(turns, has_tools=bool(toolset.tools))
    if not messages:
        raise ValueError("'input' holds no user or assistant message")
    result["messages"] = messages
    _apply_reasoning(body.get("reasoning"), result, notes)
    _copy_sampling(body, result)
    if system_texts:
        result["system"] = [{"type": "text", "text": "\n\n".join(system_texts)}]
    if cache_breakpoints:
        _add_cache_breakpoints(result)
    if body.get("stream") is True:
        result["stream"] = True
    user_id = body.get("safety_identifier") or body.get("user")
    if isinstance(user_id, str) and user_id:
        result["metadata"] = {"user_id": user_id}
    notes += [f"ignored '{name}'" for name in _IGNORED_FIELDS if name in body and name != "store"]
    if toolset.dropped:
        notes.append("dropped tools: " + ", ".join(toolset.dropped))
    return TranslatedRequest(
        body=result, toolset=toolset, affinity_key=_affinity_key(body), stream=body.get("stream") is True,
        include_reasoning_summary=_wants_summary(body.get("reasoning")), echo=_echo_fields(body), notes=notes,
    )


def _check_request(body: Any) -> None:
    """Reject what a stateless translation cannot serve, with a message the client can act on."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ValueError("'model' is required")
    for name in _STATELESS_FIELDS:
        if body.get(name):
            raise ValueError(f"'{name}' is not supported: this load balancer is stateless and stores no "
                             "responses; send the whole conversation in 'input' (with store: false)")
    if body.get("store") is True:
        raise ValueError("'store': true is not supported: this load balancer is stateless and stores no "
                         "responses; send 'store': false and the whole conversation in 'input'")
    if body.get("background") is True:
        raise ValueError("'background': true is not supported: this load balancer keeps no responses to poll")
    if body.get("input") is None:
        raise ValueError("'input' is required")


def _max_tokens(body: dict, default: int) -> int:
    """max_output_tokens, or the default (Anthropic requires a value)."""
    value = body.get("max_output_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


def _copy_sampling(body: dict, result: dict) -> None:
    """temperature and top_p, unless thinking is on (Anthropic refuses them with thinking)."""
    if "thinking" in result:
        return
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result[name] = value


def _affinity_key(body: dict) -> str | None:
    """The conversation key to pin a provider by: Codex's prompt_cache_key (its session id)."""
    key = body.get("prompt_cache_key")
    return key if isinstance(key, str) and key else None


def _wants_summary(reasoning: Any) -> bool:
    """Whether the client asked for reasoning summaries (Codex: reasoning.summary "auto")."""
    return isinstance(reasoning, dict) and reasoning.get("summary") in SUMMARY_MODES


def _echo_fields(body: dict) -> dict:
    """The request fields a `response` object repeats, with the spec's defaults."""
    echo = {
        "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
    }
    for name in ("instructions", "max_output_tokens", "temperature", "top_p", "reasoning", "text",
                 "prompt_cache_key", "metadata", "safety_identifier", "user", "service_tier"):
        if body.get(name) is not None:
            echo[name] = body[name]
    return echo


def _text_format_instructions(text: Any, notes: list[str]) -> list[str]:
    """A system instruction for text.format json_schema/json_object (no portable Anthropic twin)."""
    text_format = text.get("format") if isinstance(text, dict) and isinstance(text.get("format"), dict) else {}
    if isinstance(text, dict) and text.get("verbosity"):
        notes.append("ignored 'text.verbosity'")
    if text_format.get("type") == "json_schema" and isinstance(text_format.get("schema"), dict):
        schema = json.dumps(text_format["schema"], ensure_ascii=False)
        return [f"Answer with only a JSON value that matches this JSON schema, no other text:\n{schema}"]
    if text_format.get("type") == "json_object":
        return ["Answer with only a JSON object, no other text."]
    return []


def _apply_reasoning(reasoning: Any, result: dict, notes: list[str]) -> None:
    """reasoning.effort -> thinking with a budget, when the conversation allows it."""
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is not None and budget >= result["max_tokens"]:
        budget = result["max_tokens"] // 2
    blocker = _thinking_blocker(result) if budget is not None and budget >= MIN_THINKING_BUDGET else "no effort"
    if blocker is None:
        result["thinking"] = {"type": "enabled", "budget_tokens": budget}
        return
    if effort not in (None, "none"):
        notes.append(f"thinking off ({blocker})")
    _strip_thinking(result["messages"])


def _thinking_blocker(result: dict) -> str | None:
    """Why Anthropic would refuse thinking for this body, or None."""
    if result.get("tool_choice", {}).get("type") in ("any", "tool"):
        return "a forced tool_choice"
    for turn in reversed(result["messages"]):
        if turn["role"] == "user" and any(block.get("type") != "tool_result" for block in turn["content"]):
            return None  # a real user message ends the tool loop: earlier turns need no thinking
        if turn["role"] == "assistant" and any(block.get("type") == "tool_use" for block in turn["content"]):
            return None if is_anthropic_thinking(turn["content"][0]) else "the open tool loop has no thinking block"
    return None


def _strip_thinking(messages: list[dict]) -> None:
    """Remove Anthropic's thinking blocks (sent with thinking off they can be refused).

    Unsigned thinking (an OpenAI-compatible backend's reasoning) stays: such backends need it
    back as `reasoning_content`, and the Anthropic provider removes it on its way.
    """
    for turn in messages:
        turn["content"] = [block for block in turn["content"] if not is_anthropic_thinking(block)]
    messages[:] = merge_turns(messages)


def _add_cache_breakpoints(result: dict) -> None:
    """Mark the system prompt and the newest message for Anthropic's prompt cache."""
    if result.get("system"):
        result["system"][-1]["cache_control"] = dict(CACHE_CONTROL)
    for block in reversed(result["messages"][-1]["content"]):
        if block.get("type") not in ("thinking", "redacted_thinking"):
            block["cache_control"] = dict(CACHE_CONTROL)
            return