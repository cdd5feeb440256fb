"""The test harness itself: each fake-backend behaviour does what it promises."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import anthropic
import openai
import pytest
import requests

from support.fake_backend import (
    FakeBackend, ToolCall, anthropic_error, anthropic_message, anthropic_stream, closed_port, drop,
    echo_request, garbage, hang, openai_completion, openai_stream, slow_first_byte, status,
)
from support.lb_process import (
    REPO_ROOT, LoadBalancerProcess, anthropic_provider, iter_sse, openai_provider, providers_config,
    read_anthropic_events, read_openai_chunks,
)

ANTHROPIC_BODY = {"model": "claude-test-1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
SHORT = 2.0  # seconds a client waits where the fake answers at once


def post(backend: FakeBackend, path: str, body: dict[str, Any], **options: Any) -> requests.Response:
    """POST JSON to the fake backend with a short timeout."""
    return requests.post(backend.url + path, json=body, timeout=options.pop("timeout", SHORT), **options)


def stream_post(backend: FakeBackend, path: str, body: dict[str, Any], timeout: float = SHORT) -> requests.Response:
    """POST a streaming request and return before the body is read."""
    return requests.post(backend.url + path, json={**body, "stream": True}, stream=True, timeout=timeout)


def anthropic_events_lazily(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Yield events the moment their data line arrives."""
    for _, data in iter_sse(response):
        yield json.loads(data)


@pytest.fixture
def backend(fake_backend: Any) -> FakeBackend:
    """One Anthropic-dialect fake backend."""
    return fake_backend()


# --- non-stream answers --------------------------------------------------------------

def test_anthropic_message_echoes_the_model_and_carries_tool_uses(backend: FakeBackend) -> None:
    backend.queue(anthropic_message("Sure", tool_uses=[("shell", {"command": "ls"})], usage=(7, 3)))
    answer = post(backend, "/v1/messages", ANTHROPIC_BODY).json()
    assert answer["model"] == "claude-test-1"
    assert answer["content"] == [{"type": "text", "text": "Sure"},
                                 {"type": "tool_use", "id": "toolu_fake0", "name": "shell", "input": {"command": "ls"}}]
    assert answer["stop_reason"] == "tool_use"
    assert answer["usage"] == {"input_tokens": 7, "output_tokens": 3}


def test_default_answers_follow_the_path_dialect(backend: FakeBackend) -> None:
    assert post(backend, "/v1/messages", ANTHROPIC_BODY).json()["content"][0]["text"] == "Hello"
    completion = post(backend, "/chat/completions", OPENAI_BODY).json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Hello"


def test_openai_completion_has_tool_calls_with_json_string_arguments(backend: FakeBackend) -> None:
    backend.queue(openai_completion(None, tool_calls=[ToolCall("read_file", {"file_path": "a.py"}, "call_1")],
                                    reasoning="thinking hard"))
    choice = post(backend, "/v1/chat/completions", OPENAI_BODY).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["reasoning_content"] == "thinking hard"
    call = choice["message"]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == ("call_1", "read_file")
    assert json.loads(call["function"]["arguments"]) == {"file_path": "a.py"}


@pytest.mark.parametrize("behaviour, code, error_type", [
    (anthropic_error(529), 529, "overloaded_error"),
    (anthropic_error(500), 500, "api_error"),
    (anthropic_error(400), 400, "invalid_request_error"),
    (anthropic_error(401), 401, "authentication_error"),
])
def test_anthropic_errors_carry_the_type_matching_the_status(backend: FakeBackend, behaviour: Any,
                                                             code: int, error_type: str) -> None:
    backend.queue(behaviour)
    response = post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert response.status_code == code
    assert response.json()["error"]["type"] == error_type


def test_rate_limit_carries_retry_after(backend: FakeBackend) -> None:
    backend.queue(anthropic_error(429, headers={"retry-after": "7"}))
    response = post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_status_sends_any_body_and_content_type(backend: FakeBackend) -> None:
    backend.queue(status(502, body=b"<html>Bad Gateway</html>", content_type="text/html"))
    response = post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert (response.status_code, response.headers["Content-Type"]) == (502, "text/html")
    assert response.text == "<html>Bad Gateway</html>"


def test_garbage_is_a_200_that_is_not_json(backend: FakeBackend) -> None:
    backend.queue(garbage())
    response = post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_echo_request_reports_headers_and_body(backend: FakeBackend) -> None:
    backend.queue(echo_request())
    answer = post(backend, "/v1/messages?beta=true", ANTHROPIC_BODY, headers={"x-api-key": "k"}).json()
    echoed = json.loads(answer["content"][0]["text"])
    assert (echoed["query"], echoed["json"], echoed["headers"]["x-api-key"]) == ("beta=true", ANTHROPIC_BODY, "k")


# --- Anthropic streams -----------------------------------------------------------------

def test_anthropic_stream_has_the_documented_event_order(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(("Hel", "lo"), thinking="hmm",
                                   tool_uses=[("shell", {"command": "ls -la"}), ("todo_read", {})]))
    response = stream_post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert response.headers["Content-Type"] == "text/event-stream"
    events = read_anthropic_events(response)
    assert [event["type"] for event in events[:2]] == ["message_start", "ping"]
    assert [event["type"] for event in events[-2:]] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    starts = [event["content_block"] for event in events if event["type"] == "content_block_start"]
    assert [block["type"] for block in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert starts[2] == {"type": "tool_use", "id": "toolu_fake0", "name": "shell", "input": {}}
    text = "".join(event["delta"].get("text", "") for event in events if event["type"] == "content_block_delta")
    assert text == "Hello"
    shell_json = "".join(event["delta"]["partial_json"] for event in events
                         if event["type"] == "content_block_delta" and event["index"] == 2)
    assert json.loads(shell_json) == {"command": "ls -la"}


def test_anthropic_stream_blocks_never_interleave(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(("a", "b"), tool_uses=[("shell", {"command": "x"}), ("shell", {"command": "y"})]))
    events = read_anthropic_events(stream_post(backend, "/v1/messages", ANTHROPIC_BODY))
    indexes = [event["index"] for event in events if "index" in event]
    assert indexes == sorted(indexes)
    assert sum(event["type"] == "content_block_stop" for event in events) == 3


def test_the_anthropic_sdk_accepts_the_fake_stream(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(("Hi ", "there"), tool_uses=[("read_file", {"file_path": "x.py"})]))
    client = anthropic.Anthropic(base_url=backend.url, api_key="sk-test", max_retries=0, timeout=SHORT)
    with client.messages.stream(**ANTHROPIC_BODY) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Hi there"
    assert (message.content[1].name, message.content[1].input) == ("read_file", {"file_path": "x.py"})
    # anthropic SDK 2.x sends the key as "Authorization: Bearer", older ones as x-api-key.
    headers = backend.requests[0].headers
    assert "sk-test" in (headers.get("x-api-key", ""), headers.get("Authorization", "").removeprefix("Bearer "))


def test_delay_spaces_events_and_each_arrives_as_sent(backend: FakeBackend) -> None:
    delay = 0.1
    backend.queue(anthropic_stream(("a",), delay=delay))  # 7 events, 6 gaps
    started = time.monotonic()
    arrivals = [time.monotonic() - started
                for _ in anthropic_events_lazily(stream_post(backend, "/v1/messages", ANTHROPIC_BODY))]
    assert len(arrivals) == 7
    # Spacing only grows on a loaded machine, so both bounds hold there too.
    assert arrivals[-1] - arrivals[0] >= 6 * delay * 0.9  # the first event did not wait for the rest


@pytest.mark.parametrize("option, headers_wait", [("first_delay", False), ("headers_delay", True)])
def test_first_and_headers_delay_hold_back_the_right_bytes(backend: FakeBackend, option: str,
                                                           headers_wait: bool) -> None:
    wait = 0.3
    backend.queue(anthropic_stream(**{option: wait}))
    started = time.monotonic()
    response = stream_post(backend, "/v1/messages", ANTHROPIC_BODY)
    headers_after = time.monotonic() - started
    next(anthropic_events_lazily(response))
    first_event_after = time.monotonic() - started
    assert first_event_after >= wait * 0.9
    held_back = headers_after if headers_wait else first_event_after - headers_after
    assert held_back >= wait * 0.9


def test_break_after_zero_gives_headers_then_a_truncated_body(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(break_after=0))
    response = stream_post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        response.content


def test_break_after_n_delivers_n_events_then_fails(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(break_after=3))
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for event in anthropic_events_lazily(stream_post(backend, "/v1/messages", ANTHROPIC_BODY)):
            received.append(event["type"])
    assert received == ["message_start", "ping", "content_block_start"]


def test_stall_after_goes_silent_until_the_client_times_out(backend: FakeBackend) -> None:
    backend.queue(anthropic_stream(stall_after=2, stall_seconds=5))
    received = []
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        for event in anthropic_events_lazily(stream_post(backend, "/v1/messages", ANTHROPIC_BODY, timeout=0.3)):
            received.append(event["type"])
    assert received == ["message_start", "ping"]
    assert 0.3 <= time.monotonic() - started < 2


# --- OpenAI streams --------------------------------------------------------------------

def test_openai_stream_chunk_order(backend: FakeBackend) -> None:
    backend.queue(openai_stream(("Hel", "lo"), reasoning_chunks=("think",),
                                tool_calls=[("shell", {"command": "ls"})], split_arguments=3))
    body = {**OPENAI_BODY, "stream_options": {"include_usage": True}}
    chunks = read_openai_chunks(stream_post(backend, "/chat/completions", body))
    assert chunks[-1] == "[DONE]"
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:-3]]
    assert deltas[0]["role"] == "assistant"
    assert [delta.get("reasoning_content") for delta in deltas[1:2]] == ["think"]
    assert "".join(delta.get("content") or "" for delta in deltas) == "Hello"
    fragments = [delta["tool_calls"][0] for delta in deltas if "tool_calls" in delta]
    assert fragments[0]["function"]["name"] == "shell" and fragments[0]["id"] == "call_fake0"
    assert len(fragments) == 4  # the name, then the arguments in three pieces
    assert json.loads("".join(fragment["function"]["arguments"] for fragment in fragments)) == {"command": "ls"}
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["total_tokens"] == 15


@pytest.mark.parametrize("stream_options, include_usage, has_usage", [
    ({"include_usage": True}, True, True),
    ({"include_usage": True}, False, False),
    (None, True, False),
])
def test_openai_usage_chunk_only_when_asked_and_enabled(backend: FakeBackend, stream_options: Any,
                                                        include_usage: bool, has_usage: bool) -> None:
    backend.queue(openai_stream(include_usage=include_usage))
    body = {**OPENAI_BODY, **({"stream_options": stream_options} if stream_options else {})}
    chunks = read_openai_chunks(stream_post(backend, "/chat/completions", body))
    assert any("usage" in chunk for chunk in chunks[:-1]) is has_usage


@pytest.mark.parametrize("interleave, expected_order", [(False, [0, 0, 0, 1, 1, 1]), (True, [0, 1, 0, 1, 0, 1])])
def test_parallel_openai_tool_calls_have_distinct_indexes(backend: FakeBackend, interleave: bool,
                                                          expected_order: list[int]) -> None:
    calls = [("shell", {"command": "ls"}), ("read_file", {"file_path": "a"})]
    backend.queue(openai_stream((), tool_calls=calls, split_arguments=2, interleave_parallel=interleave))
    chunks = read_openai_chunks(stream_post(backend, "/chat/completions", OPENAI_BODY))
    fragments = [chunk["choices"][0]["delta"]["tool_calls"][0] for chunk in chunks[:-1]
                 if chunk["choices"] and "tool_calls" in chunk["choices"][0]["delta"]]
    assert [fragment["index"] for fragment in fragments] == expected_order
    for index, (name, arguments) in enumerate(calls):
        mine = [fragment for fragment in fragments if fragment["index"] == index]
        assert mine[0]["function"]["name"] == name
        assert json.loads("".join(fragment["function"]["arguments"] for fragment in mine)) == arguments


def test_the_openai_sdk_accepts_the_fake_stream(backend: FakeBackend) -> None:
    backend.queue(openai_stream(("Hi ", "there"), tool_calls=[("shell", {"command": "pwd"})]))
    client = openai.OpenAI(base_url=backend.url + "/v1", api_key="sk-test", max_retries=0, timeout=SHORT)
    chunks = list(client.chat.completions.create(**OPENAI_BODY, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hi there"
    assert chunks[-1].usage.completion_tokens == 5
    assert backend.requests[0].path == "/v1/chat/completions"
    assert backend.requests[0].headers["Authorization"] == "Bearer sk-test"


# --- network faults --------------------------------------------------------------------

def test_hang_sends_nothing_so_the_client_read_times_out(backend: FakeBackend) -> None:
    backend.queue(hang(5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(backend, "/v1/messages", ANTHROPIC_BODY, timeout=0.3)


@pytest.mark.parametrize("behaviour", [drop(), hang(0.1)], ids=["drop", "short-hang"])
def test_drop_and_hang_end_by_closing_without_a_response(backend: FakeBackend, behaviour: Any) -> None:
    backend.queue(behaviour)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(backend, "/v1/messages", ANTHROPIC_BODY)


def test_slow_first_byte_then_answers(backend: FakeBackend) -> None:
    backend.queue(slow_first_byte(0.3, then=anthropic_message("late")))
    started = time.monotonic()
    response = post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert time.monotonic() - started >= 0.27
    assert response.json()["content"][0]["text"] == "late"


def test_closed_port_refuses_connections() -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{closed_port()}/health", timeout=SHORT)


def test_stop_wakes_hanging_behaviours_and_closes_connections(fake_backend: Any) -> None:
    backend = fake_backend()
    backend.queue(hang(30))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(backend, "/v1/messages", ANTHROPIC_BODY, timeout=10)
        except requests.RequestException as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    backend.wait_for_requests(1)
    started = time.monotonic()
    backend.stop()
    caller.join(5)
    assert not caller.is_alive() and time.monotonic() - started < 2
    assert len(errors) == 1


def test_a_stopped_backend_refuses_then_comes_back_on_the_same_port(backend: FakeBackend) -> None:
    url = backend.url
    backend.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        post(backend, "/v1/messages", ANTHROPIC_BODY)
    backend.start()
    assert backend.url == url
    assert post(backend, "/v1/messages", ANTHROPIC_BODY).status_code == 200


# --- scripting and recording -----------------------------------------------------------

def test_queue_is_used_in_order_then_the_default(backend: FakeBackend) -> None:
    backend.queue(anthropic_error(529), anthropic_error(500))
    backend.set_default(anthropic_message("fallback"))
    codes = [post(backend, "/v1/messages", ANTHROPIC_BODY).status_code for _ in range(4)]
    assert codes == [529, 500, 200, 200]
    assert post(backend, "/v1/messages", ANTHROPIC_BODY).json()["content"][0]["text"] == "fallback"


def test_messages_paths_share_the_main_queue(backend: FakeBackend) -> None:
    backend.queue(anthropic_error(529), anthropic_error(500), anthropic_error(400), anthropic_error(401))
    paths = ["/v1/messages", "/chat/completions", "/v1/chat/completions", "/v1/messages/"]
    assert [post(backend, path, ANTHROPIC_BODY).status_code for path in paths] == [529, 500, 400, 401]
    assert [request.path for request in backend.requests] == paths  # recorded exactly as sent


def test_requests_are_recorded_with_headers_query_and_json(backend: FakeBackend) -> None:
    post(backend, "/v1/messages?beta=true", ANTHROPIC_BODY, headers={"X-Api-Key": "k1", "anthropic-beta": "b1"})
    [recorded] = backend.requests
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v1/messages", "beta=true")
    assert recorded.headers["x-api-key"] == "k1" and recorded.headers["ANTHROPIC-BETA"] == "b1"
    assert recorded.json == ANTHROPIC_BODY and json.loads(recorded.body) == ANTHROPIC_BODY


def test_chunked_request_bodies_are_read_whole(backend: FakeBackend) -> None:
    pieces = [b'{"model": ', b'"m", "max_tokens": 1}']
    requests.post(backend.url + "/v1/messages", data=iter(pieces), timeout=SHORT)
    assert backend.requests[0].json == {"model": "m", "max_tokens": 1}


def test_count_tokens_and_models_answer_by_path_whatever_is_queued(backend: FakeBackend) -> None:
    backend.queue(anthropic_error(529))
    assert post(backend, "/v1/messages/count_tokens", ANTHROPIC_BODY).json() == {"input_tokens": 42}
    models = requests.get(backend.url + "/v1/models", timeout=SHORT).json()
    assert [model["id"] for model in models["data"]] == ["claude-test-1", "claude-test-2"]
    assert models["data"][0]["type"] == "model" and models["has_more"] is False
    assert post(backend, "/v1/messages", ANTHROPIC_BODY).status_code == 529


def test_queue_for_overrides_one_path_then_falls_back(backend: FakeBackend) -> None:
    backend.queue_for("/v1/models", anthropic_error(500))
    assert requests.get(backend.url + "/v1/models", timeout=SHORT).status_code == 500
    assert requests.get(backend.url + "/v1/models", timeout=SHORT).status_code == 200
    backend.set_default_for("/v1/models/", anthropic_error(503))
    assert requests.get(backend.url + "/v1/models", timeout=SHORT).status_code == 503


def test_openai_dialect_lists_models_the_openai_way(fake_backend: Any) -> None:
    backend = fake_backend(dialect="openai", models=("gpt-test",))
    listing = requests.get(backend.url + "/models", timeout=SHORT).json()
    assert listing == {"object": "list", "data": [{"id": "gpt-test", "object": "model",
                                                   "created": 1700000000, "owned_by": "fake"}]}


def test_unknown_paths_get_an_anthropic_404(backend: FakeBackend) -> None:
    response = requests.get(backend.url + "/nowhere", timeout=SHORT)
    assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found_error")


def test_keep_alive_serves_two_requests_on_one_connection(backend: FakeBackend) -> None:
    request = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2\r\n\r\n{}")
    with socket.create_connection(("127.0.0.1", backend.port), timeout=SHORT) as connection:
        reader = connection.makefile("rb")
        for _ in range(2):
            connection.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert json.loads(reader.read(int(headers["content-length"])))["type"] == "message"
    assert len(backend.requests) == 2


# --- the load balancer process (no app needed) ------------------------------------------

def test_lb_environment_drops_real_keys_and_points_at_the_test_config(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-real")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-real")
    process = LoadBalancerProcess([anthropic_provider("a", "http://127.0.0.1:1")], env={"EXTRA": "1"},
                                  workdir=tmp_path)
    environment = process.environment()
    assert "ANTHROPIC_API_KEY" not in environment and "OPENROUTER_API_KEY" not in environment
    assert environment["PROVIDERS_FILE"] == str(tmp_path / "providers.json") and environment["EXTRA"] == "1"
    command = process.command()
    assert command[-1] == "app:create_app()" and f"127.0.0.1:{process.port}" in command


def test_rewrite_config_replaces_the_whole_file(tmp_path: Path) -> None:
    process = LoadBalancerProcess([anthropic_provider("a", "http://127.0.0.1:1")], workdir=tmp_path)
    replacement = providers_config(openai_provider("b", "http://127.0.0.1:2"), routing={"strategy": "weighted"})
    process.rewrite_config(replacement)
    written = json.loads(process.providers_path.read_text())
    assert written == replacement and written["routing"]["cooldown"] == 0.2
    assert [path.name for path in tmp_path.iterdir()] == ["providers.json"]


@pytest.mark.integration
@pytest.mark.skipif(not (REPO_ROOT / "app.py").exists(), reason="app.py is not written yet")
def test_gunicorn_serves_a_fake_backend_answer(fake_backend: Any, lb: Any) -> None:
    backend = fake_backend()
    backend.queue(anthropic_message("from the fake"))
    balancer = lb([anthropic_provider("primary", backend.url)])
    answer = requests.post(balancer.url + "/v1/messages", json=ANTHROPIC_BODY, timeout=10).json()
    assert answer["content"][0]["text"] == "from the fake"
    assert backend.requests[-1].headers["x-api-key"] == "sk-test-primary"


def test_requests_to_filters_by_path(backend: FakeBackend) -> None:
    requests.get(backend.url + "/v1/models", timeout=SHORT)
    post(backend, "/v1/messages", ANTHROPIC_BODY)
    assert [request.path for request in backend.requests_to("/v1/messages")] == ["/v1/messages"]


def test_many_concurrent_streams_are_all_served(backend: FakeBackend) -> None:
    backend.set_default(anthropic_stream(delay=0.05))
    results: list[int] = []

    def stream_one() -> None:
        results.append(len(read_anthropic_events(stream_post(backend, "/v1/messages", ANTHROPIC_BODY))))

    callers = [threading.Thread(target=stream_one) for _ in range(30)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert results == [8] * 30
