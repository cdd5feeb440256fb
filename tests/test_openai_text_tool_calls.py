"""The OpenAI front door in front of an OpenAI backend that writes tool calls as text (real gunicorn, the openai SDK).

An OpenAI client with tools gets tool_calls (finish_reason "tool_calls", arguments a JSON string)
where the backend wrote <tool_call> JSON or Qwen3-Coder XML into content, streamed or not; with
nothing to rewrite, the backend's bytes reach the client as they were sent.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import requests

from support.fake_backend import Exchange, FakeBackend, openai_completion, openai_stream
from support.lb_process import LoadBalancerProcess, openai_provider, providers_config
from support.service_rig import CLIENT_TIMEOUT, openai_sdk, wait_until_rested

pytestmark = pytest.mark.integration

TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                          "required": ["path"]}}},
         {"type": "function", "function": {"name": "run_shell", "description": "Run a command",
                                           "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                                                          "required": ["command"]}}}]
HERMES = 'Reading it.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "src/app.py"}}\n</tool_call>'
QWEN = ("<tool_call>\n<function=run_shell>\n<parameter=command>\nls -la && echo 'done'\n</parameter>\n"
        "</function>\n</tool_call>")
ANSWERS = {"hermes": (HERMES, "Reading it.\n", [("read_file", {"path": "src/app.py"})]),
           "qwen3_coder": (QWEN, None, [("run_shell", {"command": "ls -la && echo 'done'"})])}
MESSAGES = [{"role": "user", "content": "go"}]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoadBalancerProcess, FakeBackend]]:
    """gunicorn with two openai providers on one fake backend: text tool calls parsed, and turned off."""
    backend = FakeBackend("openai", models=("gpt-big",)).start()
    config = providers_config(openai_provider("oa", backend.url, models={"claude-*": "gpt-big"}),
                              openai_provider("oa-off", backend.url, models={"off-*": "gpt-big"}, tool_calls="off"),
                              routing={"affinity": False})
    lb = LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("openai-text-calls")).start()
    yield lb, backend
    lb.stop()
    backend.stop()


@pytest.fixture
def rig(service: tuple[LoadBalancerProcess, FakeBackend]) -> tuple[LoadBalancerProcess, FakeBackend]:
    wait_until_rested(service[0])
    service[1].clear_requests()
    return service


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[position:position + size] for position in range(0, len(text), size)]


@pytest.mark.parametrize("family", sorted(ANSWERS))
def test_a_text_call_becomes_tool_calls_in_a_completion(rig: Any, family: str) -> None:
    lb, backend = rig
    text, prose, calls = ANSWERS[family]
    backend.queue(openai_completion(text))
    with openai_sdk(lb) as client:
        completion = client.chat.completions.create(model="claude-x", messages=MESSAGES, tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == prose
    assert [(call.function.name, json.loads(call.function.arguments)) for call in choice.message.tool_calls] == calls
    assert all(call.type == "function" and call.id.startswith("call_") for call in choice.message.tool_calls)


@pytest.mark.parametrize("family", sorted(ANSWERS))
def test_a_text_call_becomes_tool_calls_in_a_stream(rig: Any, family: str) -> None:
    lb, backend = rig
    text, prose, calls = ANSWERS[family]
    backend.queue(openai_stream(_pieces(text)))
    with openai_sdk(lb) as client:
        stream = client.chat.completions.create(model="claude-x", messages=MESSAGES, tools=TOOLS, stream=True)
        chunks = [chunk for chunk in stream if chunk.choices]
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or ():
            names[call.index] = names.get(call.index, "") + (call.function.name or "")
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    assert content == (prose or "")
    assert [(names[index], json.loads(arguments[index])) for index in sorted(names)] == calls
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


class _Raw:
    """A behaviour that sends exactly these bytes, so the test knows what the backend wrote."""

    def __init__(self, body: bytes, stream: bool) -> None:
        self.body, self.stream = body, stream

    def __call__(self, exchange: Exchange) -> None:
        if not self.stream:
            exchange.send(200, self.body)
            return
        exchange.start_stream()
        for frame in self.body.split(b"\n\n")[:-1]:
            exchange.write_chunk(frame + b"\n\n")
        exchange.end_stream()


def _completion_bytes(content: str) -> bytes:
    return json.dumps({"id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": "gpt-big",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
                      separators=(", ", ": ")).encode()


def _stream_bytes(pieces: list[str]) -> bytes:
    envelope = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": "gpt-big"}
    frames = [{**envelope, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
              for piece in pieces]
    frames.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(frame, separators=(", ", ": ")).encode() + b"\n\n" for frame in frames) \
        + b"data: [DONE]\n\n"


@pytest.mark.parametrize("model", ["claude-x", "off-x"])
def test_with_nothing_to_rewrite_the_bytes_pass_through(rig: Any, model: str) -> None:
    lb, backend = rig
    prose = "Nothing to run: compare a < b, see [docs](x) and {braces}."
    body = {"model": model, "messages": MESSAGES, "tools": TOOLS}
    backend.queue(_Raw(_completion_bytes(prose), stream=False))
    answer = requests.post(lb.url + "/v1/chat/completions", json=body, timeout=CLIENT_TIMEOUT)
    assert answer.content == _completion_bytes(prose)
    streamed = _stream_bytes(_pieces(prose, 4))
    backend.queue(_Raw(streamed, stream=True))
    answer = requests.post(lb.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=CLIENT_TIMEOUT)
    assert answer.content == streamed


def test_a_provider_with_tool_calls_off_passes_text_calls_through(rig: Any) -> None:
    lb, backend = rig
    backend.queue(_Raw(_completion_bytes(HERMES), stream=False))
    answer = requests.post(lb.url + "/v1/chat/completions", json={"model": "off-x", "messages": MESSAGES, "tools": TOOLS},
                           timeout=CLIENT_TIMEOUT)
    assert answer.content == _completion_bytes(HERMES)


def test_without_tools_in_the_request_nothing_is_parsed(rig: Any) -> None:
    lb, backend = rig
    backend.queue(_Raw(_completion_bytes(HERMES), stream=False))
    answer = requests.post(lb.url + "/v1/chat/completions", json={"model": "claude-x", "messages": MESSAGES},
                           timeout=CLIENT_TIMEOUT)
    assert answer.content == _completion_bytes(HERMES)
