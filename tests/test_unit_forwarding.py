"""The failover loop without processes: the Flask test client in front, `responses` behind.

Every outbound call is mocked with `responses.RequestsMock(assert_all_requests_are_fired=True)`,
so a test fails both when the service calls a provider it should not and when it skips one
it should call. Streams are left to the integration tests (the stream reader uses read1).
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest
import requests
import responses
from responses import matchers

from support.lb_process import anthropic_provider, openai_provider, providers_config

BODY = {"model": "claude-test-1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-1",
           "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 3, "output_tokens": 1}}
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-big",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
# Never reached: every request is answered by `responses`; the ports only keep URLs distinct.
URLS = {name: f"http://127.0.0.1:{port}" for name, port in (("primary", 1001), ("secondary", 1002),
                                                            ("tertiary", 1003))}
# Long cooldowns and no waiting: a failed provider stays skipped for the whole test.
ROUTING = {"affinity": False, "cooldown": 60, "max_cooldown": 60, "wait_for_cooldown": 0}


def messages_url(name: str) -> str:
    """Where an Anthropic provider of URLS receives Messages requests."""
    return URLS[name] + "/v1/messages"


def error_body(error_type: str, message: str = "upstream said no") -> dict[str, Any]:
    """An Anthropic error body."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


@pytest.fixture
def make_client(providers_file: Callable[..., Path]) -> Callable[..., Any]:
    """Factory: a Flask test client for a config of provider entries (plus routing overrides)."""
    from app import create_app

    def build(*providers: Mapping[str, Any], routing: Mapping[str, Any] | None = None) -> Any:
        config = providers_config(*providers, routing={**ROUTING, **(routing or {})})
        app = create_app({"PROVIDERS_FILE": str(providers_file(config)), "DISABLE_CONFIG_WATCH": True})
        return app.test_client()
    return build


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """A RequestsMock that fails the test when a registered answer was never requested."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as requests_mock:
        yield requests_mock


@pytest.fixture
def two_providers(make_client: Callable[..., Any]) -> Any:
    """primary (priority 1) then secondary (priority 2)."""
    return make_client(anthropic_provider("primary", URLS["primary"], priority=1),
                       anthropic_provider("secondary", URLS["secondary"], priority=2))


def called_urls(mock: responses.RequestsMock) -> list[str]:
    """The URLs the service requested, in order."""
    return [call.request.url for call in mock.calls]


# --- what is sent ---------------------------------------------------------------------------------

def test_the_provider_key_is_sent_and_the_clients_is_not(two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(messages_url("primary"), json=MESSAGE, match=[matchers.header_matcher(
        {"x-api-key": "sk-test-primary", "anthropic-version": "2023-06-01", "anthropic-beta": "tools-1"})])
    response = two_providers.post("/v1/messages", json=BODY, headers={
        "x-api-key": "client-secret", "authorization": "Bearer client-bearer", "anthropic-beta": "tools-1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    sent = mock.calls[0].request.headers
    assert "authorization" not in sent
    assert all("client-secret" not in value and "client-bearer" not in value for value in sent.values())


def test_the_model_is_mapped_for_the_provider(make_client: Callable[..., Any], mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("primary", URLS["primary"], models={"claude-*": "big-model"}))
    body = {**BODY, "thinking": {"type": "enabled", "budget_tokens": 1024}, "unknown": [1]}
    mock.post(messages_url("primary"), json=MESSAGE,
              match=[matchers.json_params_matcher({**body, "model": "big-model"})])
    assert client.post("/v1/messages", json=body).status_code == 200


def test_an_openai_provider_gets_a_bearer_key_and_an_openai_body(make_client: Callable[..., Any],
                                                                 mock: responses.RequestsMock) -> None:
    client = make_client(openai_provider("primary", URLS["primary"], models={"claude-*": "gpt-big"}))
    mock.post(URLS["primary"] + "/chat/completions", json=COMPLETION,
              match=[matchers.header_matcher({"authorization": "Bearer sk-test-primary"})])
    response = client.post("/v1/messages", json={**BODY, "thinking": {"type": "enabled", "budget_tokens": 1024}},
                           headers={"x-api-key": "client-secret"})
    assert response.get_json()["content"] == [{"type": "text", "text": "Hello"}]
    sent = mock.calls[0].request
    assert b"thinking" not in sent.body and "x-api-key" not in sent.headers


def test_a_large_turn_for_a_translating_provider_is_translated_whole(make_client: Callable[..., Any],
                                                                     mock: responses.RequestsMock) -> None:
    """From 64 KB the body is read whole at once when its model goes only to translating providers."""
    client = make_client(openai_provider("primary", URLS["primary"], models={"claude-*": "gpt-big"}))
    mock.post(URLS["primary"] + "/chat/completions", json=COMPLETION)
    source = "def f():\n    return 1\n" * 4000  # ~92 KB of tool result
    history = [{"role": "user", "content": "read it"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"p": "f.py"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": source}]}]
    response = client.post("/v1/messages", json={**BODY, "messages": history})
    assert response.status_code == 200
    sent = json.loads(mock.calls[0].request.body)
    assert sent["model"] == "gpt-big"
    assert [message["role"] for message in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": source}


def test_an_answer_with_no_text_tool_call_reaches_the_client_as_the_provider_wrote_it(
        make_client: Callable[..., Any], mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("primary", URLS["primary"]))
    written = json.dumps(MESSAGE, indent=1).encode()  # spacing orjson would not write
    mock.post(messages_url("primary"), body=written, content_type="application/json")
    tools = [{"name": "shell", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
    response = client.post("/v1/messages", json={**BODY, "tools": tools})
    assert response.status_code == 200 and response.get_data() == written


def test_tools_shared_by_the_turns_of_a_session_are_never_changed_by_serving_them(
        make_client: Callable[..., Any], mock: responses.RequestsMock) -> None:
    """A large turn's tools are read once and shared by every turn sending the same bytes (body_scan):
    parsing the text tool calls of answers, and coercing their arguments to the schemas, leaves them as sent."""
    from loadbalancer.client_request import parse_messages_request
    from loadbalancer.settings.records import LimitsConfig

    client = make_client(anthropic_provider("native", URLS["primary"], models={"claude-*": "claude-x"}),
                         openai_provider("open", URLS["secondary"], models={"open-*": "qwen3-coder"}))
    tools = [{"name": f"tool_{number}", "description": "Reads or changes files. " * 8,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
                               "required": ["path"]}} for number in range(12)]
    call = '<tool_call>\n{"name": "tool_3", "arguments": {"path": "a.py", "limit": "5"}}\n</tool_call>'
    mock.post(messages_url("primary"), json={**MESSAGE, "content": [{"type": "text", "text": call}]})
    mock.post(URLS["secondary"] + "/chat/completions",
              json={**COMPLETION, "choices": [{"index": 0, "message": {"role": "assistant", "content": call},
                                               "finish_reason": "stop"}]})
    source = "def f():\n    return 1\n" * 4000  # ~92 KB of tool result: the body is scanned
    history = [{"role": "user", "content": "read it"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "tool_1", "input": {"path": "f.py"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": source}]}]
    # The model written last: no hint, so the translated turn is scanned too.
    turns = [json.dumps({"max_tokens": 100, "tools": tools, "messages": history, "model": model}).encode()
             for model in ("claude-x", "open-x")]
    for raw in turns:
        response = client.post("/v1/messages", data=raw, content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)
        content = response.get_json()["content"]
        assert [block["input"] for block in content if block["type"] == "tool_use"] == [{"path": "a.py", "limit": 5}]
    shared = parse_messages_request(turns[0], LimitsConfig(max_body_bytes=1 << 20)).tools
    assert shared == tuple(tools)


def test_the_body_is_read_whole_at_once_only_for_a_model_every_provider_of_which_builds_it(
        providers_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from config import load_config
    from loadbalancer.runtime import Runtime

    config = providers_config(
        anthropic_provider("native", URLS["primary"], models={"claude-x": "claude-x", "alias": "claude-real"}),
        openai_provider("open", URLS["secondary"], models={"qwen": "qwen3-coder", "claude-x": "gpt"}),
        anthropic_provider("off", URLS["tertiary"], api_key="${LB_TEST_UNSET_KEY}", models={"only-off": "m"}))
    monkeypatch.delenv("LB_TEST_UNSET_KEY", raising=False)  # disabled: its key is not set
    runtime = Runtime.build(load_config(str(providers_file(config))))
    assert runtime.builds_body_for("qwen")           # translated by its only provider
    assert runtime.builds_body_for("alias")          # renamed: the body is rebuilt with the new name
    assert not runtime.builds_body_for("claude-x")   # one provider forwards the client's bytes
    assert not runtime.builds_body_for("nobody") and not runtime.builds_body_for("only-off")
    runtime.store.close()


def test_an_anthropic_provider_never_gets_unsigned_thinking(make_client: Callable[..., Any],
                                                           mock: responses.RequestsMock) -> None:
    # Thinking without a signature is an OpenAI-compatible backend's reasoning (kept for its
    # reasoning_content round trip); Anthropic refuses it, so it stays behind on failover.
    client = make_client(anthropic_provider("primary", URLS["primary"]))
    signed = {"type": "thinking", "thinking": "mine", "signature": "sig"}
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "theirs", "signature": ""}]},
               {"role": "assistant", "content": [signed, {"type": "text", "text": "ok"}]},
               {"role": "user", "content": "more"}]
    expected = [history[0], history[2], history[3]]
    mock.post(messages_url("primary"), json=MESSAGE,
              match=[matchers.json_params_matcher({**BODY, "messages": expected})])
    assert client.post("/v1/messages", json={**BODY, "messages": history}).status_code == 200


def test_a_responses_prompt_cache_key_keeps_the_conversation_on_one_provider(
        make_client: Callable[..., Any], mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("primary", URLS["primary"]),
                         anthropic_provider("secondary", URLS["secondary"]), routing={"affinity": True})
    for name in ("primary", "secondary"):
        mock.post(messages_url(name), json=MESSAGE)
    body = {"model": "claude-test-1", "input": "hi", "store": False}
    answered = [client.post("/v1/responses", json={**body, "prompt_cache_key": key}).headers["x-lb-provider"]
                for key in ("session-a", "session-a", "session-a", "session-b")]
    assert answered[0] == answered[1] == answered[2] != answered[3]


# --- failover ----------------------------------------------------------------------------------------

def test_providers_are_tried_in_priority_order(make_client: Callable[..., Any], mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("tertiary", URLS["tertiary"], priority=3),
                         anthropic_provider("primary", URLS["primary"], priority=1),
                         anthropic_provider("secondary", URLS["secondary"], priority=2))
    mock.post(messages_url("primary"), status=529, json=error_body("overloaded_error"))
    mock.post(messages_url("secondary"), status=500, json=error_body("api_error"))
    mock.post(messages_url("tertiary"), json=MESSAGE)
    response = client.post("/v1/messages", json=BODY)
    assert response.status_code == 200
    assert response.headers["x-lb-provider"] == "tertiary"
    assert called_urls(mock) == [messages_url(name) for name in ("primary", "secondary", "tertiary")]


def test_weights_split_traffic_within_a_priority(make_client: Callable[..., Any],
                                                  mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("primary", URLS["primary"], weight=3),
                         anthropic_provider("secondary", URLS["secondary"], weight=1))
    mock.post(messages_url("primary"), json=MESSAGE)
    mock.post(messages_url("secondary"), json=MESSAGE)
    answered = collections.Counter(client.post("/v1/messages", json=BODY).headers["x-lb-provider"]
                                   for _ in range(40))
    assert answered == {"primary": 30, "secondary": 10}


@pytest.mark.parametrize("fault", [requests.ConnectTimeout(), requests.ConnectionError("Connection refused"),
                                   requests.ReadTimeout()], ids=["connect-timeout", "connection-error", "read-timeout"])
def test_network_faults_fail_over(two_providers: Any, mock: responses.RequestsMock, fault: Exception) -> None:
    mock.post(messages_url("primary"), body=fault)
    mock.post(messages_url("secondary"), json=MESSAGE)
    response = two_providers.post("/v1/messages", json=BODY)
    assert response.status_code == 200
    assert response.headers["x-lb-provider"] == "secondary"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_retryable_statuses_fail_over(two_providers: Any, mock: responses.RequestsMock, status: int) -> None:
    mock.post(messages_url("primary"), status=status, json=error_body("api_error"))
    mock.post(messages_url("secondary"), json=MESSAGE)
    assert two_providers.post("/v1/messages", json=BODY).headers["x-lb-provider"] == "secondary"


@pytest.mark.parametrize("status, error_type", [(400, "invalid_request_error"), (404, "not_found_error"),
                                                (413, "request_too_large")])
def test_client_errors_come_back_as_they_are_and_are_not_retried(
        two_providers: Any, mock: responses.RequestsMock, status: int, error_type: str) -> None:
    mock.post(messages_url("primary"), status=status, json=error_body(error_type, "the request is wrong"))
    response = two_providers.post("/v1/messages", json=BODY)
    assert response.status_code == status
    assert response.get_json() == error_body(error_type, "the request is wrong")
    assert called_urls(mock) == [messages_url("primary")]


def test_when_every_provider_fails_the_error_is_retryable_and_names_them(
        two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(messages_url("primary"), status=500, json=error_body("api_error", "primary broke"))
    mock.post(messages_url("secondary"), status=503, json=error_body("overloaded_error", "secondary full"))
    response = two_providers.post("/v1/messages", json=BODY)
    assert response.status_code in (500, 503)
    error = response.get_json()["error"]
    assert "primary broke" in error["message"] and "secondary full" in error["message"]
    assert int(response.headers["retry-after"]) >= 1


def test_when_no_provider_answers_at_all_the_error_is_529(two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(messages_url("primary"), body=requests.ConnectTimeout())
    mock.post(messages_url("secondary"), body=requests.ConnectionError("Connection refused"))
    response = two_providers.post("/v1/messages", json=BODY)
    assert response.status_code == 529
    assert response.get_json()["error"]["type"] == "overloaded_error"
    assert "retry-after" in response.headers


def test_a_failed_provider_is_skipped_during_its_cooldown(two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(messages_url("primary"), status=500, json=error_body("api_error"))
    mock.post(messages_url("secondary"), json=MESSAGE)
    assert two_providers.post("/v1/messages", json=BODY).headers["x-lb-provider"] == "secondary"
    assert two_providers.post("/v1/messages", json=BODY).headers["x-lb-provider"] == "secondary"
    assert called_urls(mock) == [messages_url("primary"), messages_url("secondary"), messages_url("secondary")]
    health = {entry["name"]: entry for entry in two_providers.get("/health").get_json()["providers"]}
    assert health["primary"]["state"] == "cooling_down"
    assert health["primary"]["requests"] == 1


def test_a_providers_retry_after_reaches_the_client(make_client: Callable[..., Any],
                                                    mock: responses.RequestsMock) -> None:
    client = make_client(anthropic_provider("primary", URLS["primary"]), routing={"cooldown": 1, "max_cooldown": 60})
    mock.post(messages_url("primary"), status=429, json=error_body("rate_limit_error"), headers={"retry-after": "20"})
    response = client.post("/v1/messages", json=BODY)
    assert response.status_code == 429
    assert 19 <= int(response.headers["retry-after"]) <= 21


def test_a_2xx_that_is_not_a_message_fails_over(two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(messages_url("primary"), body="<html>captive portal</html>", content_type="text/html")
    mock.post(messages_url("secondary"), json=MESSAGE)
    assert two_providers.post("/v1/messages", json=BODY).headers["x-lb-provider"] == "secondary"


def test_count_tokens_goes_to_the_count_endpoint(two_providers: Any, mock: responses.RequestsMock) -> None:
    mock.post(URLS["primary"] + "/v1/messages/count_tokens", json={"input_tokens": 7},
              match=[matchers.header_matcher({"x-api-key": "sk-test-primary"})])
    response = two_providers.post("/v1/messages/count_tokens", json={"model": "claude-test-1",
                                                                     "messages": BODY["messages"]})
    assert response.get_json() == {"input_tokens": 7}


def test_bad_requests_never_reach_a_provider(two_providers: Any, mock: responses.RequestsMock) -> None:
    for body in ({"model": "claude-test-1"}, {"messages": BODY["messages"], "max_tokens": 1},
                 {**BODY, "max_tokens": 0}, {**BODY, "stream": "yes"}):
        assert two_providers.post("/v1/messages", json=body).status_code == 400
    assert two_providers.post("/v1/messages", data=b"{nope", content_type="application/json").status_code == 400
    assert len(mock.calls) == 0


@pytest.mark.parametrize("path, data, status, wanted", [
    ("/responses", b"{not json", 400, "not valid JSON"),
    ("/v1/responses", b'{"model": "claude-test-1"}', 400, "'input' is required"),
    ("/v1/responses", b'{"model": "claude-test-1", "input": "hi", "conversation": "c1"}', 400, "stateless"),
])
def test_responses_errors_come_in_the_openai_shape(two_providers: Any, path: str, data: bytes, status: int,
                                                   wanted: str) -> None:
    response = two_providers.post(path, data=data, content_type="application/json")
    error = response.get_json()["error"]
    assert response.status_code == status and wanted in error["message"]
    assert error["type"] == "invalid_request_error" and "param" in error
