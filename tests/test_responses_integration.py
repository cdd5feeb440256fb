"""The Responses front door (`POST /v1/responses`) through real gunicorn, with the `openai` SDK.

One service, a fake Anthropic backend and a fake OpenAI-compatible backend; the model name picks:
  claude-*   → an (Anthropic)
  open-*     → oa (OpenAI chat completions, model "qwen3")
  both-*     → an-flaky (Anthropic) first, then oa
  plain-*    → an-plain (Anthropic, capabilities.thinking false) only
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import openai
import pytest
import requests

from support.fake_backend import FakeBackend, anthropic_error, anthropic_message, anthropic_stream, openai_completion, openai_stream
from support.lb_process import LoadBalancerProcess, anthropic_provider, openai_provider, providers_config
from support.service_rig import CLIENT_TIMEOUT, openai_sdk, wait_until_rested

pytestmark = pytest.mark.integration

SHELL_TOOL = {"type": "function", "name": "exec_command", "description": "Run a shell command", "strict": False,
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"],
                             "additionalProperties": False}}
NAMESPACE_TOOL = {"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [
    {"type": "function", "name": "close_agent", "parameters": {"type": "object", "properties": {}}}]}
CODEX_TOOLS = [SHELL_TOOL, NAMESPACE_TOOL, {"type": "web_search", "external_web_access": True}]
SHELL_CALL = ("exec_command", {"cmd": "printf hi > hello.txt"})


@dataclass(frozen=True)
class Rig:
    """The service and its two fake backends."""

    lb: LoadBalancerProcess
    anthropic_backend: FakeBackend
    openai_backend: FakeBackend

    def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
        """POST a Responses body and read the whole answer."""
        return requests.post(self.lb.url + "/v1/responses", json=body, headers=headers, timeout=CLIENT_TIMEOUT)


@pytest.fixture(scope="module")
def rig_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The service with the provider table of the module docstring."""
    an_backend, oa_backend = FakeBackend().start(), FakeBackend("openai", models=("qwen3",)).start()
    config = providers_config(
        anthropic_provider("an", an_backend.url, models={"claude-*": "*"}),
        anthropic_provider("an-flaky", an_backend.url, models={"both-*": "claude-test-1"}),
        anthropic_provider("an-plain", an_backend.url, models={"plain-*": "claude-test-1"},
                           capabilities={"thinking": False}),
        openai_provider("oa", oa_backend.url + "/v1", priority=2, models={"open-*": "qwen3", "both-*": "qwen3"}),
        routing={"affinity": False, "cooldown": 0.1, "max_cooldown": 0.3, "wait_for_cooldown": 0})
    lb = LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("responses-lb")).start()
    yield Rig(lb, an_backend, oa_backend)
    lb.stop()
    an_backend.stop()
    oa_backend.stop()


@pytest.fixture
def rig(rig_process: Rig) -> Rig:
    """The service with no provider cooling down and fresh recordings."""
    wait_until_rested(rig_process.lb)
    rig_process.anthropic_backend.clear_requests()
    rig_process.openai_backend.clear_requests()
    return rig_process


def last_body(backend: FakeBackend) -> dict[str, Any]:
    """The last conversation body a backend received."""
    return backend.requests_to("/v1/messages", "/v1/chat/completions")[-1].json


# --- plain, streamed, tool round trip ----------------------------------------------------------------

@pytest.mark.parametrize("model, answer", [("claude-test-1", anthropic_message("Hi from Anthropic", usage=(12, 4))),
                                           ("open-x", openai_completion("Hi from Anthropic", usage=(12, 4)))],
                         ids=["anthropic", "openai"])
def test_a_plain_response_from_either_backend(rig: Rig, model: str, answer: Any) -> None:
    backend = rig.anthropic_backend if model.startswith("claude") else rig.openai_backend
    backend.queue(answer)
    with openai_sdk(rig.lb) as client:
        response = client.responses.create(model=model, input="Say hi", instructions="be brief", store=False)
    assert response.output_text == "Hi from Anthropic"
    assert (response.status, response.model) == ("completed", model)
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 4, 16)
    sent = last_body(backend)
    assert "be brief" in json.dumps(sent) and "Say hi" in json.dumps(sent["messages"])


@pytest.mark.parametrize("model", ["claude-test-1", "open-x"], ids=["anthropic", "openai"])
def test_a_streamed_response_has_the_spec_events_in_order(rig: Rig, model: str) -> None:
    backend = rig.anthropic_backend if model.startswith("claude") else rig.openai_backend
    backend.queue(anthropic_stream(["Hel", "lo ", "there"]) if model.startswith("claude")
                  else openai_stream(["Hel", "lo ", "there"]))
    with openai_sdk(rig.lb) as client:
        with client.responses.stream(model=model, input="hi", store=False) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * 3,
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert final.output_text == "Hello there" and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude-test-1", "open-x"], ids=["anthropic", "openai"])
def test_a_function_call_round_trip(rig: Rig, model: str) -> None:
    is_anthropic = model.startswith("claude")
    backend = rig.anthropic_backend if is_anthropic else rig.openai_backend
    backend.queue(anthropic_stream(["Running it."], tool_uses=[SHELL_CALL]) if is_anthropic
                  else openai_stream(["Running it."], tool_calls=[SHELL_CALL]),
                  anthropic_message("Done.") if is_anthropic else openai_completion("Done."))
    history: list[Any] = [{"role": "user", "content": "make hello.txt"}]
    with openai_sdk(rig.lb) as client:
        with client.responses.stream(model=model, input=history, tools=CODEX_TOOLS, store=False) as stream:
            first = stream.get_final_response()
        call = first.output[-1]
        assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", *SHELL_CALL)
        history += [item.model_dump(exclude_none=True) for item in first.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": "exit 0"})
        second = client.responses.create(model=model, input=history, tools=CODEX_TOOLS, store=False, stream=False)
    assert second.output_text == "Done."
    sent = json.dumps(last_body(backend))
    assert "exit 0" in sent and call.call_id in sent


def test_a_text_tool_call_from_an_open_model_becomes_a_function_call(rig: Rig) -> None:
    written = json.dumps({"name": "exec_command", "arguments": SHELL_CALL[1]})
    rig.openai_backend.queue(openai_stream(["I will run it.\n<tool_call>\n", written[:15], written[15:],
                                            "\n</tool_call>"]))
    with openai_sdk(rig.lb) as client:
        with client.responses.stream(model="open-x", input="go", tools=[SHELL_TOOL], store=False) as stream:
            final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(call.name, json.loads(call.arguments)) for call in calls] == [SHELL_CALL]
    assert "<tool_call>" not in final.output_text


def test_namespace_tools_are_offered_flat_and_come_back_with_their_namespace(rig: Rig) -> None:
    rig.anthropic_backend.queue(anthropic_message("", tool_uses=[("multi_agent_v1__close_agent", {})]))
    response = rig.post({"model": "claude-test-1", "input": "close it", "tools": CODEX_TOOLS, "store": False})
    item = response.json()["output"][-1]
    assert (item["type"], item["name"], item["namespace"]) == ("function_call", "close_agent", "multi_agent_v1")
    offered = [tool["name"] for tool in last_body(rig.anthropic_backend)["tools"]]
    assert offered == ["exec_command", "multi_agent_v1__close_agent"]
    assert response.headers["x-lb-dropped-tools"] == "web_search"


def test_dropped_tools_are_named_in_the_log(rig: Rig) -> None:
    response = rig.post({"model": "claude-test-1", "input": "hi", "tools": CODEX_TOOLS},
                        headers={"x-request-id": "codex-dropped-1"})
    assert response.status_code == 200
    line = next(line for line in rig.lb.log_text().splitlines() if "request_id=codex-dropped-1" in line)
    assert "dropped_tools=web_search" in line


# --- settings the front door maps -------------------------------------------------------------------

def test_settings_reach_the_anthropic_backend(rig: Rig) -> None:
    body = {"model": "claude-test-1", "input": "hi", "tools": [SHELL_TOOL], "tool_choice": "required",
            "parallel_tool_calls": False, "max_output_tokens": 700, "temperature": 0.3, "top_p": 0.8}
    assert rig.post(body).status_code == 200
    sent = last_body(rig.anthropic_backend)
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (700, 0.3, 0.8)
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_reasoning_effort_becomes_thinking_only_where_the_provider_can_think(rig: Rig) -> None:
    rig.anthropic_backend.queue(anthropic_stream(["ok"], thinking="Let me think"))
    body = {"model": "claude-test-1", "input": "hi", "reasoning": {"effort": "medium", "summary": "auto"},
            "stream": True}
    events = read_events(rig.post(body))
    assert last_body(rig.anthropic_backend)["thinking"] == {"type": "enabled", "budget_tokens": 10000}
    reasoning = next(event["item"] for event in events if event["type"] == "response.output_item.done")
    assert reasoning["type"] == "reasoning" and reasoning["summary"][0]["text"] == "Let me think"
    assert rig.post({**body, "model": "plain-x"}).status_code == 200
    assert "thinking" not in last_body(rig.anthropic_backend)


def read_events(response: requests.Response) -> list[dict[str, Any]]:
    """The data of every SSE event of a Responses stream (comments skipped)."""
    assert response.status_code == 200, response.text
    return [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]


# --- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", [{"previous_response_id": "resp_1"}, {"store": True}])
def test_state_the_load_balancer_does_not_keep_is_a_clear_400(rig: Rig, field: dict[str, Any]) -> None:
    with openai_sdk(rig.lb) as client, pytest.raises(openai.BadRequestError, match="stateless") as caught:
        client.responses.create(model="claude-test-1", input="hi", **field)
    assert caught.value.body["type"] == "invalid_request_error"
    assert rig.anthropic_backend.requests == []


def test_an_unknown_model_is_a_404_model_not_found(rig: Rig) -> None:
    with openai_sdk(rig.lb) as client, pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-unknown", input="hi", store=False)
    assert caught.value.body["code"] == "model_not_found" and "gpt-unknown" in caught.value.body["message"]


def test_a_provider_refusal_comes_back_in_the_openai_error_shape(rig: Rig) -> None:
    rig.anthropic_backend.queue(anthropic_error(400, message="prompt is too long: 300000 tokens > 200000"))
    response = rig.post({"model": "claude-test-1", "input": "hi"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_a_failing_provider_fails_over_invisibly(rig: Rig) -> None:
    rig.anthropic_backend.queue(anthropic_error(529))
    rig.openai_backend.queue(openai_stream(["from the second"]))
    events = read_events(rig.post({"model": "both-x", "input": "hi", "stream": True}))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "from the second"


def test_a_stream_that_breaks_after_content_ends_with_response_failed(rig: Rig) -> None:
    rig.anthropic_backend.queue(anthropic_stream(["partial ", "answer", "never sent"], break_after=6))
    events = read_events(rig.post({"model": "claude-test-1", "input": "hi", "stream": True}))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert "response.output_item.done" not in [event["type"] for event in events]


def test_the_client_request_id_is_kept_and_a_bad_one_replaced(rig: Rig) -> None:
    kept = rig.post({"model": "claude-test-1", "input": "hi"}, headers={"x-request-id": "codex-abc.123"})
    assert kept.headers["x-request-id"] == "codex-abc.123"
    replaced = rig.post({"model": "claude-test-1", "input": "hi"}, headers={"x-request-id": "has space"})
    assert replaced.headers["x-request-id"].startswith("req_")


def test_an_openai_backends_reasoning_survives_codexs_round_trip(rig: Rig) -> None:
    rig.openai_backend.queue(openai_stream([], reasoning_chunks=["Plan: ", "run it."], tool_calls=[SHELL_CALL]),
                             openai_completion("Done."))
    history: list[Any] = [{"role": "user", "content": "make hello.txt"}]
    with openai_sdk(rig.lb) as client:
        with client.responses.stream(model="open-x", input=history, tools=[SHELL_TOOL], store=False,
                                     include=["reasoning.encrypted_content"]) as stream:
            first = stream.get_final_response()
        assert [item.type for item in first.output] == ["reasoning", "function_call"]
        history += [item.model_dump(exclude_none=True) for item in first.output]
        history.append({"type": "function_call_output", "call_id": first.output[-1].call_id, "output": "ok"})
        client.responses.create(model="open-x", input=history, tools=[SHELL_TOOL], store=False)
    assistant = next(message for message in last_body(rig.openai_backend)["messages"] if message["role"] == "assistant")
    assert assistant["reasoning_content"] == "Plan: run it." and assistant["tool_calls"]
