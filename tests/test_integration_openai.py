"""OpenAI-compatible backends and the OpenAI front door, through real gunicorn and real SDKs.

One service, two fake backends (one OpenAI, one Anthropic) and the model name choosing the order:
  claude-*   → oa (OpenAI) first, then an (Anthropic)
  reverse-*  → an-first (Anthropic) first, then oa-second (OpenAI)
  refused-*  → oa-dead (OpenAI on a closed port) first, then an
  solo-*     → oa only
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import anthropic
import openai
import pytest
import requests

from support.fake_backend import (
    FakeBackend, anthropic_error, anthropic_message, anthropic_stream, closed_port, drop, garbage,
    openai_completion, openai_stream, status,
)
from support.lb_process import LoadBalancerProcess, anthropic_provider, openai_provider, providers_config
from support.service_rig import (
    CLIENT_TIMEOUT, anthropic_error_of, anthropic_sdk, openai_sdk, wait_until_rested,
)
from support.sse_validation import check_anthropic_stream, read_openai_stream

pytestmark = pytest.mark.integration

TIMEOUT = CLIENT_TIMEOUT
BODY = {"model": "claude-test-1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
THINKING = {"type": "enabled", "budget_tokens": 1024}
TOOLS = [{"name": "read_file", "description": "Read a file",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
         {"name": "run_shell", "description": "Run a command",
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": tool["name"], "description": tool["description"],
                                                  "parameters": tool["input_schema"]}} for tool in TOOLS]
READ_CALL = ("read_file", {"path": "src/app/main.py"})
SHELL_CALL = ("run_shell", {"command": "ls -la /tmp && echo 'done \"quoted\"'"})


@dataclass(frozen=True)
class Rig:
    """The service and its OpenAI and Anthropic fake backends."""

    lb: LoadBalancerProcess
    openai_backend: FakeBackend
    anthropic_backend: FakeBackend

    def post(self, body: dict[str, Any], *, stream: bool = False, path: str = "/v1/messages") -> requests.Response:
        """POST a body to the service and read the whole answer."""
        payload = {**body, **({"stream": True} if stream else {})}
        return requests.post(self.lb.url + path, json=payload, timeout=TIMEOUT)

    def chat_requests(self) -> list[Any]:
        """What the OpenAI backend received on its chat completions path."""
        return self.openai_backend.requests_to("/chat/completions")


@pytest.fixture(scope="module")
def rig_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The service with the provider table from the module docstring."""
    oa_backend, an_backend = FakeBackend("openai", models=("gpt-big",)).start(), FakeBackend().start()
    dead = f"http://127.0.0.1:{closed_port()}"
    config = providers_config(
        openai_provider("oa-dead", dead, priority=0, models={"refused-*": "gpt-big"}),
        openai_provider("oa", oa_backend.url, priority=1, models={"claude-*": "gpt-big", "solo-*": "gpt-big"}),
        anthropic_provider("an", an_backend.url, priority=2, models={"claude-*": "*", "refused-*": "claude-test-1"}),
        anthropic_provider("an-first", an_backend.url, priority=1, models={"reverse-*": "claude-test-1"}),
        openai_provider("oa-second", oa_backend.url, priority=2, models={"reverse-*": "gpt-big"}),
        routing={"affinity": False, "cooldown": 0.1, "max_cooldown": 0.3, "wait_for_cooldown": 0})
    lb = LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("openai-lb")).start()
    yield Rig(lb, oa_backend, an_backend)
    lb.stop()
    oa_backend.stop()
    an_backend.stop()


@pytest.fixture
def rig(rig_process: Rig) -> Rig:
    """The service with no provider cooling down and fresh recordings."""
    wait_until_rested(rig_process.lb)
    rig_process.openai_backend.clear_requests()
    rig_process.anthropic_backend.clear_requests()
    return rig_process


def tool_inputs(blocks: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, input) of the tool_use blocks of an SDK message."""
    return [(block.name, block.input) for block in blocks if block.type == "tool_use"]


# --- Anthropic clients in front of an OpenAI backend ------------------------------------------------

def test_a_message_from_an_openai_backend(rig: Rig) -> None:
    rig.openai_backend.queue(openai_completion("Hi from OpenAI", usage=(12, 4)))
    with anthropic_sdk(rig.lb) as client:
        message = client.messages.create(**BODY)
    assert [block.text for block in message.content] == ["Hi from OpenAI"]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("end_turn", 12, 4)
    assert message.model == "claude-test-1"


def test_a_stream_from_an_openai_backend(rig: Rig) -> None:
    rig.openai_backend.queue(openai_stream(["Hi ", "from ", "OpenAI"]))
    response = rig.post(BODY, stream=True)
    assert response.headers["x-lb-provider"] == "oa"
    stream = check_anthropic_stream(response.content)
    assert (stream.text, stream.stop_reason) == ("Hi from OpenAI", "end_turn")


def test_the_openai_backend_gets_a_bearer_key_and_no_anthropic_only_fields(rig: Rig) -> None:
    body = {**BODY, "thinking": THINKING, "metadata": {"user_id": "u-1"},
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                      "cache_control": {"type": "ephemeral"}}]}]}
    assert rig.post(body).status_code == 200
    received = rig.chat_requests()[-1]
    assert received.headers["authorization"] == "Bearer sk-test-oa"
    assert "x-api-key" not in received.headers and "anthropic-version" not in received.headers
    assert received.json["model"] == "gpt-big"
    for field in (b"thinking", b"cache_control", b"anthropic", b"metadata"):
        assert field not in received.body, received.body


@pytest.mark.parametrize("interleave", [False, True], ids=["one-after-another", "interleaved"])
def test_parallel_tool_calls_split_over_many_chunks_stream_as_valid_blocks(rig: Rig, interleave: bool) -> None:
    rig.openai_backend.queue(openai_stream(["Let me look."], tool_calls=[READ_CALL, SHELL_CALL],
                                           split_arguments=12, interleave_parallel=interleave))
    stream = check_anthropic_stream(rig.post({**BODY, "tools": TOOLS}, stream=True).content)
    assert [(block["name"], block["input"]) for block in stream.tool_uses] == [READ_CALL, SHELL_CALL]
    assert stream.stop_reason == "tool_use"
    assert stream.text == "Let me look."


@pytest.mark.parametrize("interleave", [False, True], ids=["one-after-another", "interleaved"])
def test_the_sdk_stream_parser_accepts_tool_calls_and_rebuilds_them(rig: Rig, interleave: bool) -> None:
    rig.openai_backend.queue(openai_stream([], tool_calls=[READ_CALL, SHELL_CALL], split_arguments=20,
                                           interleave_parallel=interleave))
    with anthropic_sdk(rig.lb) as client, client.messages.stream(**BODY, tools=TOOLS) as stream:
        final = stream.get_final_message()
    assert tool_inputs(final.content) == [READ_CALL, SHELL_CALL]
    assert all(block.id for block in final.content)


def test_native_tool_calls_in_a_message(rig: Rig) -> None:
    rig.openai_backend.queue(openai_completion(None, tool_calls=[READ_CALL, SHELL_CALL]))
    with anthropic_sdk(rig.lb) as client:
        message = client.messages.create(**BODY, tools=TOOLS)
    assert tool_inputs(message.content) == [READ_CALL, SHELL_CALL]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("thinking_requested", [True, False], ids=["thinking", "no-thinking"])
def test_reasoning_becomes_thinking_only_when_asked(rig: Rig, thinking_requested: bool) -> None:
    rig.openai_backend.queue(openai_stream(["Answer"], reasoning_chunks=["Let me ", "think."]),
                             openai_completion("Answer", reasoning="Let me think."))
    body = {**BODY, **({"thinking": THINKING} if thinking_requested else {})}
    stream = check_anthropic_stream(rig.post(body, stream=True).content)
    message = rig.post(body).json()
    expected = [("thinking", "Let me think."), ("text", "Answer")] if thinking_requested else [("text", "Answer")]
    assert [(block["type"], block.get("thinking", block.get("text"))) for block in stream.content] == expected
    assert [(block["type"], block.get("thinking", block.get("text"))) for block in message["content"]] == expected


def test_the_sdk_accepts_a_thinking_stream(rig: Rig) -> None:
    rig.openai_backend.queue(openai_stream(["Answer"], reasoning_chunks=["hmm ", "ok"]))
    with anthropic_sdk(rig.lb) as client, client.messages.stream(**BODY, thinking=THINKING) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "hmm ok"


# --- failover between dialects ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
@pytest.mark.parametrize("failure", [anthropic_error(529), drop(), garbage(),
                                     status(502, body=b"<html><h1>502 Bad Gateway</h1></html>",
                                            content_type="text/html")],
                         ids=["529", "dropped", "garbage-200", "html-502"])
def test_a_failing_openai_backend_fails_over_to_anthropic(rig: Rig, failure: Any, stream: bool) -> None:
    rig.openai_backend.queue(failure)
    rig.anthropic_backend.queue(anthropic_stream(["from ", "anthropic"]) if stream
                                else anthropic_message("from anthropic"))
    response = rig.post(BODY, stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "an"
    text = check_anthropic_stream(response.content).text if stream else response.json()["content"][0]["text"]
    assert text == "from anthropic"


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
def test_a_refused_openai_backend_fails_over_to_anthropic(rig: Rig, stream: bool) -> None:
    response = rig.post({**BODY, "model": "refused-1"}, stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "an"
    assert rig.anthropic_backend.requests[-1].json["model"] == "claude-test-1"


@pytest.mark.parametrize("failure, stream", [
    pytest.param(anthropic_error(529), False, id="529-message"),
    pytest.param(anthropic_error(500), True, id="500-stream"),
    pytest.param(anthropic_stream(break_after=1), True, id="stream-breaks-after-message_start"),
])
def test_a_failing_anthropic_backend_fails_over_to_openai(rig: Rig, failure: Any, stream: bool) -> None:
    rig.anthropic_backend.queue(failure)
    rig.openai_backend.queue(openai_stream(["from ", "openai"]) if stream else openai_completion("from openai"))
    response = rig.post({**BODY, "model": "reverse-1"}, stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "oa-second"
    if stream:
        answer = check_anthropic_stream(response.content)
        assert (answer.count("message_start"), answer.text) == (1, "from openai")
    else:
        assert response.json()["content"][0]["text"] == "from openai"


@pytest.mark.parametrize("failure", [
    status(502, body=b"<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"),
    garbage(),
    status(200, body=b"{\"no\": \"choices\"}"),
], ids=["html-502", "garbage-200", "json-without-choices"])
def test_a_broken_openai_answer_with_no_other_provider_is_an_anthropic_error(rig: Rig, failure: Any) -> None:
    rig.openai_backend.queue(failure)
    response = rig.post({**BODY, "model": "solo-1"})
    assert response.status_code in (502, 529), response.text
    error = anthropic_error_of(response)
    assert error["type"] in ("api_error", "overloaded_error")
    assert "<html>" not in error["message"]
    assert "retry-after" in response.headers


def test_an_openai_400_html_page_is_passed_on_as_an_anthropic_400(rig: Rig) -> None:
    rig.openai_backend.queue(status(400, body=b"<html>bad request</html>", content_type="text/html"))
    response = rig.post(BODY)
    assert response.status_code == 400
    assert anthropic_error_of(response)["type"] == "invalid_request_error"
    assert rig.anthropic_backend.requests == []


def test_an_openai_error_json_is_translated_to_the_anthropic_format(rig: Rig) -> None:
    rig.openai_backend.queue(status(400, {"error": {"message": "context too long", "type": "invalid_request_error",
                                                    "code": "context_length_exceeded"}}))
    response = rig.post(BODY)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "context too long" in response.json()["error"]["message"]


# --- OpenAI clients at the front door ------------------------------------------------------------------

FRONT_DOOR = [pytest.param("reverse-1", "an-first", id="anthropic-backend"),
              pytest.param("claude-test-1", "oa", id="openai-backend")]


def queue_tool_answer(rig: Rig, provider: str, stream: bool) -> None:
    """Queue one answer calling read_file on the backend behind `provider`."""
    if provider == "oa":
        rig.openai_backend.queue(openai_stream(["Sure."], tool_calls=[READ_CALL], split_arguments=6) if stream
                                 else openai_completion("Sure.", tool_calls=[READ_CALL]))
    else:
        rig.anthropic_backend.queue(anthropic_stream(["Sure."], tool_uses=[READ_CALL]) if stream
                                    else anthropic_message("Sure.", tool_uses=[READ_CALL]))


@pytest.mark.parametrize("model, provider", FRONT_DOOR)
def test_openai_sdk_non_stream(rig: Rig, model: str, provider: str) -> None:
    with openai_sdk(rig.lb) as client:
        completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello"
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model, provider", FRONT_DOOR)
def test_openai_sdk_non_stream_with_tools(rig: Rig, model: str, provider: str) -> None:
    queue_tool_answer(rig, provider, stream=False)
    with openai_sdk(rig.lb) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "read it"}], tools=OPENAI_TOOLS)
    completion = raw.parse()
    assert raw.headers["x-lb-provider"] == provider
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == READ_CALL


@pytest.mark.parametrize("model, provider", FRONT_DOOR)
def test_openai_sdk_stream_with_tools(rig: Rig, model: str, provider: str) -> None:
    queue_tool_answer(rig, provider, stream=True)
    with openai_sdk(rig.lb) as client:
        chunks = list(client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "read it"}], tools=OPENAI_TOOLS, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names[call.index] = names.get(call.index, "") + (call.function.name or "")
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    assert text == "Sure."
    assert [(names[index], json.loads(arguments[index])) for index in sorted(names)] == [READ_CALL]
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"


@pytest.mark.parametrize("model, provider", FRONT_DOOR)
def test_front_door_stream_is_strict_sse_ending_in_done(rig: Rig, model: str, provider: str) -> None:
    response = rig.post({"model": model, "messages": [{"role": "user", "content": "hi"}]}, stream=True,
                        path="/v1/chat/completions")
    assert response.headers["x-lb-provider"] == provider
    chunks = read_openai_stream(response.content)
    assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"]) == "Hello"


def test_front_door_passes_the_openai_body_through_to_an_openai_backend(rig: Rig) -> None:
    body = {"model": "claude-test-1", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
            "seed": 7, "tools": OPENAI_TOOLS}
    rig.post(body, path="/v1/chat/completions")
    received = rig.chat_requests()[-1]
    assert received.json == {**body, "model": "gpt-big"}
    assert received.headers["authorization"] == "Bearer sk-test-oa"


def test_front_door_fails_over_from_openai_to_anthropic(rig: Rig) -> None:
    rig.openai_backend.queue(anthropic_error(529))
    with openai_sdk(rig.lb) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="claude-test-1", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-lb-provider"] == "an"
    assert raw.parse().choices[0].message.content == "Hello"


# --- unknown models -------------------------------------------------------------------------------------

def test_an_unknown_model_is_a_404_the_sdks_do_not_retry(rig: Rig) -> None:
    with anthropic.Anthropic(base_url=rig.lb.url, api_key="k", max_retries=2, timeout=TIMEOUT) as client:
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(**{**BODY, "model": "nobody-serves-this-1"})
    assert caught.value.body["error"]["type"] == "not_found_error"
    with openai_sdk(rig.lb) as client, pytest.raises(openai.NotFoundError) as not_found:
        client.with_options(max_retries=2).chat.completions.create(
            model="nobody-serves-this-2", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.body["code"] == "model_not_found"
    log = rig.lb.log_text()
    assert log.count("model=nobody-serves-this-1 ") == 1 and log.count("model=nobody-serves-this-2 ") == 1


# --- reasoning round trip (DeepSeek thinking mode, Kimi K2 Thinking) ---------------------------------

def test_a_thinking_backends_reasoning_comes_back_with_its_tool_call(rig: Rig) -> None:
    # The client asked for no thinking, but the backend refuses the next turn of a tool loop
    # without its reasoning: the client gets it as a thinking block and sends it back.
    rig.openai_backend.queue(openai_stream([], reasoning_chunks=["I need ", "the file."], tool_calls=[READ_CALL]),
                             openai_completion("It is the main module."))
    with anthropic_sdk(rig.lb) as client:
        with client.messages.stream(**BODY, tools=TOOLS) as stream:
            first = stream.get_final_message()
        assert [block.type for block in first.content] == ["thinking", "tool_use"]
        call = first.content[-1]
        history = [*BODY["messages"], {"role": "assistant", "content": [block.model_dump() for block in first.content]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "x"}]}]
        client.messages.create(**{**BODY, "messages": history}, tools=TOOLS)
    assistant = next(message for message in rig.chat_requests()[-1].json["messages"] if message["role"] == "assistant")
    assert assistant["reasoning_content"] == "I need the file."
    assert "signature" not in json.dumps(assistant)
