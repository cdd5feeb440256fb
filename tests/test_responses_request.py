"""The Responses front door, inbound: a `POST /v1/responses` body -> an Anthropic Messages body.

Checked against the bodies Codex CLI 0.171.0 really sent (tests/codex_requests/) and against
the rules the Anthropic API enforces (support/anthropic_rules.py).
"""

from __future__ import annotations

import copy

import pytest

from loadbalancer.translation.responses_input import MISSING_OUTPUT_TEXT, encode_reasoning
from loadbalancer.translation.responses_to_messages_request import (DEFAULT_MAX_TOKENS, THINKING_BUDGETS,
                                                                    responses_to_messages)
from loadbalancer.translation.responses_tools import anthropic_tool_name
from support.anthropic_rules import assert_valid_anthropic_body, codex_request

SHELL_TOOL = {"type": "function", "name": "exec_command", "description": "run", "strict": False,
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def call(call_id: str, name: str = "exec_command", arguments: str = '{"cmd": "ls"}', **extra) -> dict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments, **extra}


def output(call_id: str, text: str = "ok") -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def translate(input_items, cache_breakpoints: bool = False, **fields):
    """Translate with the shell tool offered, and check the result is a body Anthropic accepts."""
    body = {"model": "claude-sonnet-4-5", "input": input_items, "tools": [SHELL_TOOL], **fields}
    translated = responses_to_messages(body, cache_breakpoints=cache_breakpoints)
    assert_valid_anthropic_body(translated.body)
    return translated


def shapes(messages: list[dict]) -> list[tuple]:
    """(role, [block types]) per turn: the structure a test asserts."""
    return [(turn["role"], [block["type"] for block in turn["content"]]) for turn in messages]


@pytest.fixture
def codex_turn2() -> dict:
    """Codex's second request of a one-tool task (claude model name, fallback metadata)."""
    return codex_request("run1-2")


@pytest.fixture
def codex_gpt_turn1() -> dict:
    """Codex's first request with a known model (gpt-5.5): apply_patch, tool_search, an image."""
    return codex_request("run2-1")


# --- the real Codex requests -------------------------------------------------------------------


def test_codex_turn2_translates_to_a_valid_tool_loop(codex_turn2):
    translated = responses_to_messages(codex_turn2)
    body = translated.body
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["stream"] is True
    assert "You are a coding agent running in the Codex CLI" in body["system"][0]["text"]
    assert "<skills_instructions>" in body["system"][0]["text"]
    assert shapes(body["messages"]) == [("user", ["text", "text"]), ("assistant", ["tool_use"]),
                                        ("user", ["tool_result"])]
    tool_use, tool_result = body["messages"][1]["content"][0], body["messages"][2]["content"][0]
    assert tool_use["name"] == "exec_command" and tool_use["input"] == {"cmd": "printf hi > hello.txt"}
    assert tool_result["tool_use_id"] == tool_use["id"] == codex_turn2["input"][4]["call_id"]
    assert "thinking" not in body and translated.include_reasoning_summary is True
    assert translated.affinity_key == codex_turn2["prompt_cache_key"]


def test_codex_tools_flatten_the_namespace_and_drop_web_search(codex_turn2):
    translated = responses_to_messages(codex_turn2)
    names = [tool["name"] for tool in translated.body["tools"]]
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names
    assert translated.dropped_tools == ["web_search"]
    route = translated.toolset.routes["multi_agent_v1__close_agent"]
    assert (route.kind, route.name, route.namespace) == ("function", "close_agent", "multi_agent_v1")
    assert translated.body["tool_choice"] == {"type": "auto"}
    assert all("strict" not in tool and tool["input_schema"]["type"] == "object" for tool in translated.body["tools"])


def test_codex_gpt_request_keeps_apply_patch_and_the_image(codex_gpt_turn1):
    translated = responses_to_messages(codex_gpt_turn1)
    tools = {tool["name"]: tool for tool in translated.body["tools"]}
    assert translated.toolset.routes["apply_patch"].kind == "custom"
    assert tools["apply_patch"]["input_schema"]["required"] == ["input"]
    assert "*** Begin Patch" in tools["apply_patch"]["description"]
    assert sorted(translated.dropped_tools) == ["tool_search", "web_search"]
    assert translated.body["thinking"] == {"type": "enabled", "budget_tokens": THINKING_BUDGETS["high"]}
    image = [block for block in translated.body["messages"][-1]["content"] if block["type"] == "image"]
    assert image[0]["source"]["media_type"] == "image/png" and image[0]["source"]["type"] == "base64"
    assert "ignored 'text.verbosity'" in translated.notes


@pytest.mark.parametrize("name", ["run1-1", "run1-2", "run2-1", "run2-2", "prefix-2", "custom-2", "ns_b-2",
                                  "compact-2"])
def test_every_captured_codex_request_gives_a_body_anthropic_accepts(name):
    translated = responses_to_messages(codex_request(name))
    assert_valid_anthropic_body(translated.body)


# --- turns ------------------------------------------------------------------------------------


def test_calls_merge_into_the_assistant_turn_before_them_and_outputs_into_one_user_turn():
    translated = translate([user("hi"), assistant("I'll look."), call("c1"), call("c2"), output("c1"), output("c2"),
                            user("thanks")])
    assert shapes(translated.body["messages"]) == [
        ("user", ["text"]), ("assistant", ["text", "tool_use", "tool_use"]),
        ("user", ["tool_result", "tool_result", "text"])]


def test_consecutive_user_messages_merge_and_empty_ones_vanish():
    translated = translate([user("a"), {"role": "user", "content": ""}, user("b"), {"role": "user", "content": "c"}])
    assert shapes(translated.body["messages"]) == [("user", ["text", "text", "text"])]


def test_string_input_is_one_user_message():
    translated = translate("hello")
    assert translated.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]


def test_instructions_and_developer_and_system_messages_join_system_in_order():
    items = [{"role": "developer", "content": "dev"}, user("hi"), {"role": "system", "content": [
        {"type": "input_text", "text": "sys"}]}]
    translated = translate(items, instructions="base")
    assert translated.body["system"] == [{"type": "text", "text": "base\n\ndev\n\nsys"}]


def test_a_call_without_output_gets_an_error_result_and_an_orphan_output_becomes_text():
    translated = translate([user("hi"), call("c1"), user("go on"), output("ghost", "late")])
    messages = translated.body["messages"]
    assert shapes(messages) == [("user", ["text"]), ("assistant", ["tool_use"]), ("user", ["tool_result", "text", "text"])]
    assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": "c1", "content": MISSING_OUTPUT_TEXT,
                                         "is_error": True}
    assert messages[2]["content"][2]["text"] == "Output of tool call ghost:\nlate"


def test_tool_results_open_their_user_turn_even_after_user_text():
    translated = translate([user("hi"), call("c1"), user("note"), output("c1")])
    assert shapes(translated.body["messages"])[2] == ("user", ["tool_result", "text"])


def test_call_ids_are_made_valid_the_same_way_for_use_and_result():
    translated = translate([user("hi"), call("call.1/x"), output("call.1/x")])
    messages = translated.body["messages"]
    assert messages[1]["content"][0]["id"] == messages[2]["content"][0]["tool_use_id"] == "call_1_x"


@pytest.mark.parametrize("arguments, expected", [
    ('{"cmd": "ls"}', {"cmd": "ls"}),
    ("", {}),
    ("not json", {"arguments": "not json"}),
    ("[1, 2]", {"arguments": [1, 2]}),
])
def test_function_call_arguments_become_an_input_object(arguments, expected):
    translated = translate([user("hi"), call("c1", arguments=arguments), output("c1")])
    assert translated.body["messages"][1]["content"][0]["input"] == expected


def test_structured_outputs_keep_text_and_images_and_failure_marks_an_error():
    parts = [{"type": "input_text", "text": "see"}, {"type": "input_image", "image_url": "https://x/y.png"}]
    items = [user("hi"), call("c1"), {"type": "function_call_output", "call_id": "c1", "output": parts},
             call("c2"), {"type": "function_call_output", "call_id": "c2", "output": {"content": "boom", "success": False}}]
    messages = translate(items).body["messages"]
    first, second = messages[2]["content"][0], messages[4]["content"][0]
    assert [block["type"] for block in first["content"]] == ["text", "image"]
    assert second == {"type": "tool_result", "tool_use_id": "c2", "content": "boom", "is_error": True}


def test_namespaced_call_in_history_uses_the_flattened_name():
    namespace = {"type": "namespace", "name": "crm", "description": "d", "tools": [
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]}
    items = [user("hi"), call("c1", name="lookup", arguments="{}", namespace="crm"), output("c1")]
    translated = responses_to_messages({"model": "m", "input": items, "tools": [namespace]}, cache_breakpoints=False)
    assert translated.body["messages"][1]["content"][0]["name"] == "crm__lookup"
    assert [tool["name"] for tool in translated.body["tools"]] == ["crm__lookup"]


def test_custom_tool_calls_round_trip_as_a_single_input_field():
    custom = {"type": "custom", "name": "apply_patch", "description": "patch"}
    items = [user("hi"), {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin"},
             {"type": "custom_tool_call_output", "call_id": "c1", "output": "Success"}]
    translated = responses_to_messages({"model": "m", "input": items, "tools": [custom]}, cache_breakpoints=False)
    tool_use, result = translated.body["messages"][1]["content"][0], translated.body["messages"][2]["content"][0]
    assert tool_use == {"type": "tool_use", "id": "c1", "name": "apply_patch", "input": {"input": "*** Begin"}}
    assert result["content"] == "Success"


def test_without_tools_tool_blocks_become_text_like_codex_compaction_needs():
    translated = responses_to_messages({"model": "m", "tools": [], "tool_choice": "auto", "parallel_tool_calls": False,
                                        "input": [user("hi"), call("c1"), output("c1", "done"), user("summarize")]},
                                       cache_breakpoints=False)
    body = translated.body
    assert "tools" not in body and "tool_choice" not in body
    assert shapes(body["messages"]) == [("user", ["text"]), ("assistant", ["text"]), ("user", ["text", "text"])]
    assert body["messages"][1]["content"][0]["text"] == '[called tool exec_command with {"cmd": "ls"}]'


# --- tools and tool_choice ------------------------------------------------------------------------


@pytest.mark.parametrize("tool_choice, parallel, expected", [
    ("auto", True, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", False, {"type": "none"}),
    ({"type": "function", "name": "exec_command"}, None, {"type": "tool", "name": "exec_command"}),
    ({"type": "function", "name": "unknown"}, None, None),
    ({"type": "web_search"}, None, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
])
def test_tool_choice_mapping(tool_choice, parallel, expected):
    fields = {"parallel_tool_calls": parallel} if parallel is not None else {}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    assert translate([user("hi")], **fields).body.get("tool_choice") == expected


def test_allowed_tools_keeps_only_the_named_tools():
    other = {**SHELL_TOOL, "name": "other"}
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "other"}]}
    translated = responses_to_messages({"model": "m", "input": "hi", "tools": [SHELL_TOOL, other], "tool_choice": choice})
    assert [tool["name"] for tool in translated.body["tools"]] == ["other"]
    assert translated.body["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize("name, namespace", [("a" * 80, None), ("ok", "x" * 70), ("has.dot", None), ("sp ace", "n")])
def test_tool_names_are_valid_and_distinct(name, namespace):
    cleaned = anthropic_tool_name(name, namespace)
    assert len(cleaned) <= 64 and cleaned.replace("_", "").replace("-", "").isalnum()
    assert cleaned != anthropic_tool_name(name + "2", namespace)


# --- generation settings ------------------------------------------------------------------------


def test_max_output_tokens_sampling_and_user_are_copied():
    body = translate("hi", max_output_tokens=500, temperature=0.2, top_p=0.9, safety_identifier="u1").body
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (500, 0.2, 0.9)
    assert body["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize("effort, max_output_tokens, budget", [
    ("medium", None, THINKING_BUDGETS["medium"]),
    ("high", 8000, 4000),
    ("low", 1500, None),
    ("none", None, None),
    (None, None, None),
])
def test_reasoning_effort_sets_a_thinking_budget_below_max_tokens(effort, max_output_tokens, budget):
    fields = {"reasoning": {"effort": effort, "summary": "auto"}, "temperature": 0.5}
    if max_output_tokens:
        fields["max_output_tokens"] = max_output_tokens
    body = translate("hi", **fields).body
    assert body.get("thinking", {}).get("budget_tokens") == budget
    assert ("temperature" in body) == (budget is None)


def thinking_block() -> dict:
    return {"type": "thinking", "thinking": "plan", "signature": "sig=="}


def test_our_reasoning_items_come_back_as_thinking_before_the_tool_use():
    reasoning = {"type": "reasoning", "summary": [], "encrypted_content": encode_reasoning(thinking_block())}
    translated = translate([user("hi"), reasoning, call("c1"), output("c1")], reasoning={"effort": "low"})
    assert translated.body["messages"][1]["content"][0] == thinking_block()
    assert translated.body["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("encrypted_content", ["gAAAAB-openai-encrypted", None, "lb-thinking-v1:!!notbase64"])
def test_foreign_reasoning_items_are_dropped(encrypted_content):
    reasoning = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "x"}],
                 "encrypted_content": encrypted_content}
    translated = translate([user("hi"), reasoning, assistant("done")], reasoning={"effort": "low"})
    assert shapes(translated.body["messages"]) == [("user", ["text"]), ("assistant", ["text"])]


def test_thinking_stays_off_when_the_open_tool_loop_has_no_thinking_block():
    translated = translate([user("hi"), call("c1"), output("c1")], reasoning={"effort": "high"})
    assert "thinking" not in translated.body
    assert "thinking off (the open tool loop has no thinking block)" in translated.notes


def test_thinking_blocks_are_stripped_when_thinking_is_off():
    reasoning = {"type": "reasoning", "summary": [], "encrypted_content": encode_reasoning(thinking_block())}
    translated = translate([user("hi"), reasoning, call("c1"), output("c1")])
    assert shapes(translated.body["messages"])[1] == ("assistant", ["tool_use"])


def test_forced_tool_choice_turns_thinking_off():
    translated = translate("hi", reasoning={"effort": "high"}, tool_choice="required")
    assert "thinking" not in translated.body and translated.body["tool_choice"] == {"type": "any"}


def test_json_schema_text_format_becomes_a_system_instruction():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = translate("hi", text={"format": {"type": "json_schema", "name": "out", "schema": schema}}).body
    assert '"answer"' in body["system"][0]["text"]


def test_cache_breakpoints_mark_the_system_and_the_last_block():
    body = translate([user("a"), user("b")], cache_breakpoints=True, instructions="sys").body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["messages"][-1]["content"][0]


def test_translation_does_not_change_the_request(codex_turn2):
    before = copy.deepcopy(codex_turn2)
    responses_to_messages(codex_turn2)
    assert codex_turn2 == before


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fields, message", [
    ({"previous_response_id": "resp_1"}, "stateless"),
    ({"store": True}, "stateless"),
    ({"conversation": "conv_1"}, "stateless"),
    ({"background": True}, "keeps no responses"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "stateless"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "file storage"),
    ({"input": [{"role": "tool", "content": "x"}]}, "unsupported role"),
    ({"input": [{"role": "developer", "content": "only system"}]}, "no user or assistant"),
    ({"input": None}, "'input' is required"),
    ({"model": ""}, "'model' is required"),
    ({"tools": {"type": "function"}}, "'tools' must be a list"),
])
def test_requests_that_need_state_or_are_malformed_are_refused(fields, message):
    body = {"model": "m", "input": "hi", **fields}
    with pytest.raises(ValueError, match=message):
        responses_to_messages(body)


def test_store_false_is_accepted_silently():
    translated = responses_to_messages({"model": "m", "input": "hi", "store": False})
    assert not any("store" in note for note in translated.notes)


def test_unsigned_thinking_never_counts_as_the_tool_loop_opening_anthropic_needs():
    unsigned = {"type": "reasoning", "summary": [],
                "encrypted_content": encode_reasoning({"type": "thinking", "thinking": "t", "signature": ""})}
    translated = translate([user("hi"), unsigned, call("c1"), output("c1")], reasoning={"effort": "high"})
    assert "thinking" not in translated.body
    assert translated.body["messages"][1]["content"][0]["signature"] == ""


def test_the_default_max_tokens_can_be_lowered_to_what_the_providers_take():
    body = {"model": "m", "input": "hi"}
    assert responses_to_messages(body, default_max_tokens=8192).body["max_tokens"] == 8192
    assert responses_to_messages({**body, "max_output_tokens": 100}, default_max_tokens=8192).body["max_tokens"] == 100
