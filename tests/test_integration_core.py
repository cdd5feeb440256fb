"""The core load balancer as clients see it: real gunicorn in front of fake Anthropic backends.

Two services run per module. `main` has a provider on a closed port (serving only the model
"claude-refused"), `primary` (maps claude-* to "big-model", adds a header) and `secondary`,
tried in that order. `strict` adds inbound keys, a small body limit, only claude-* models,
a disabled provider and a long cooldown.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from support.fake_backend import (
    FakeBackend, anthropic_error, anthropic_message, anthropic_stream, closed_port, drop,
)
from support.lb_process import (
    REPO_ROOT, SCRUBBED_ENV, LoadBalancerProcess, LoadBalancerStartError, anthropic_provider,
    providers_config, write_json_atomically,
)
from support.service_rig import (
    CLIENT_TIMEOUT, anthropic_error_of, anthropic_sdk, openai_sdk, provider_states, wait_until_rested,
)
from support.sse_validation import check_anthropic_stream, iter_timed_frames

pytestmark = pytest.mark.integration

TIMEOUT = CLIENT_TIMEOUT
BODY = {"model": "claude-test-1", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
TOOL = {"name": "read_file", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
MESSAGES_PATHS = ["/", "/v1", "/v1/messages", "/v1/messages?beta=true"]
CLIENT_KEY = "lb-client-key-1"
UNSET_VARIABLE = "LB_INTEGRATION_TEST_UNSET_KEY"
AUTHORIZED = {"x-api-key": CLIENT_KEY}
PROVIDER_KEYS = ("sk-test-dead", "sk-test-primary", "sk-test-secondary", "sk-test-first", "sk-test-second")


@dataclass(frozen=True)
class Rig:
    """A running load balancer and the fake backends behind it."""

    lb: LoadBalancerProcess
    first: FakeBackend
    second: FakeBackend

    def post(self, path: str = "/v1/messages", body: dict[str, Any] | None = None, *,
             stream: bool = False, headers: dict[str, str] | None = None) -> requests.Response:
        """POST a Messages body (stream decided by the body) and read the whole answer."""
        payload = {**(body or BODY), **({"stream": True} if stream else {})}
        return requests.post(self.lb.url + path, json=payload, headers=headers, timeout=TIMEOUT)

    def provider_state(self, name: str) -> dict[str, Any]:
        """One provider's entry in /health."""
        return provider_states(self.lb)[name]

    def reset(self) -> None:
        """Forget recorded requests and wait out cooldowns."""
        wait_until_rested(self.lb)
        self.first.clear_requests()
        self.second.clear_requests()


def start_backends() -> tuple[FakeBackend, FakeBackend]:
    """Two started Anthropic fake backends."""
    return FakeBackend().start(), FakeBackend().start()


@pytest.fixture(scope="module")
def main_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """dead (closed port, claude-refused only) → primary (claude-* → big-model) → secondary."""
    primary, secondary = start_backends()
    config = providers_config(
        anthropic_provider("dead", f"http://127.0.0.1:{closed_port()}", priority=0, models=["claude-refused"]),
        anthropic_provider("primary", primary.url, priority=1, models={"claude-*": "big-model"},
                           headers={"x-extra-header": "from-config"}),
        anthropic_provider("secondary", secondary.url, priority=2),
        # Short cooldowns that each test waits out before it starts; no waiting inside a request,
        # so a request whose providers all failed answers at once instead of retrying them.
        routing={"affinity": False, "cooldown": 0.1, "max_cooldown": 0.3, "wait_for_cooldown": 0})
    lb = LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("main-lb")).start()
    yield Rig(lb, primary, secondary)
    lb.stop()
    primary.stop()
    secondary.stop()


@pytest.fixture
def main(main_rig: Rig) -> Rig:
    """The main service with fresh recordings and no provider cooling down."""
    main_rig.reset()
    return main_rig


@pytest.fixture(scope="module")
def strict_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Inbound keys, 4 kB bodies, claude-* only, a disabled provider and 3 s cooldowns."""
    assert UNSET_VARIABLE not in os.environ
    first, second = start_backends()
    claude_only = {"claude-*": "*"}
    config = providers_config(
        anthropic_provider("first", first.url, priority=1, models=claude_only),
        anthropic_provider("second", second.url, priority=2, models=claude_only),
        anthropic_provider("off", f"http://127.0.0.1:{closed_port()}", api_key=f"${{{UNSET_VARIABLE}}}",
                           models=claude_only),
        routing={"affinity": False, "cooldown": 3, "max_cooldown": 3, "wait_for_cooldown": 0},
        auth={"api_keys": [{"name": "tester", "key": CLIENT_KEY}]},
        limits={"max_body_bytes": 4096})
    lb = LoadBalancerProcess(config, workdir=tmp_path_factory.mktemp("strict-lb")).start()
    yield Rig(lb, first, second)
    lb.stop()
    first.stop()
    second.stop()


@pytest.fixture
def strict(strict_rig: Rig) -> Rig:
    """The strict service with fresh recordings and no provider cooling down."""
    strict_rig.reset()
    return strict_rig


# --- the Messages endpoints ------------------------------------------------------------------

@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_every_messages_path_answers_non_stream(main: Rig, path: str) -> None:
    response = main.post(path)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "Hello"}]
    assert response.headers["x-lb-provider"] == "primary"
    assert response.headers["x-request-id"]
    assert [request.path for request in main.first.requests] == ["/v1/messages"]


@pytest.mark.parametrize("path", MESSAGES_PATHS)
def test_every_messages_path_answers_a_stream(main: Rig, path: str) -> None:
    main.first.queue(anthropic_stream(["Hel", "lo", " there"]))
    response = main.post(path, stream=True)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = check_anthropic_stream(response.content)
    assert stream.text == "Hello there"
    assert stream.count("message_start") == 1
    assert response.headers["x-lb-provider"] == "primary"


def test_streams_reuse_the_pooled_connection_to_the_provider(main: Rig) -> None:
    # A stream read to its end must leave its connection in the pool: a new TCP (and, for a
    # real provider, TLS) handshake per stream would add tens of milliseconds to each.
    for _ in range(3):
        main.first.queue(anthropic_stream(["Hel", "lo"]))
        assert check_anthropic_stream(main.post(stream=True).content).text == "Hello"
    assert len({request.client_port for request in main.first.requests}) == 1


def test_claude_codes_accept_json_with_stream_true_gets_a_stream(main: Rig) -> None:
    response = main.post(stream=True, headers={"accept": "application/json"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert check_anthropic_stream(response.content).text == "Hello"


def test_sdk_create_and_beta_create(main: Rig) -> None:
    with anthropic_sdk(main.lb) as client:
        message = client.messages.create(**BODY)
        beta = client.beta.messages.create(**BODY, betas=["interleaved-thinking-2025-05-14"])
    assert message.content[0].text == "Hello"
    assert beta.content[0].text == "Hello"
    beta_request = main.first.requests[-1]
    assert beta_request.query == "" and beta_request.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"


def test_sdk_stream_with_tools_gives_the_final_message(main: Rig) -> None:
    main.first.queue(anthropic_stream(["Reading"], tool_uses=[("read_file", {"path": "src/main.py"})],
                                      input_fragments=5))
    with anthropic_sdk(main.lb) as client, client.messages.stream(**BODY, tools=[TOOL]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_use = final.content[-1]
    assert (tool_use.type, tool_use.name, tool_use.input) == ("tool_use", "read_file", {"path": "src/main.py"})


def test_sdk_tool_use_message_non_stream(main: Rig) -> None:
    main.first.queue(anthropic_message("", tool_uses=[("read_file", {"path": "a.txt"})]))
    with anthropic_sdk(main.lb) as client:
        message = client.messages.create(**BODY, tools=[TOOL])
    blocks = [(block.type, getattr(block, "input", None)) for block in message.content]
    assert blocks == [("tool_use", {"path": "a.txt"})]


# --- what the provider receives --------------------------------------------------------------

def test_provider_gets_its_own_key_and_never_the_clients(main: Rig) -> None:
    main.post(headers={"x-api-key": "client-secret-key", "authorization": "Bearer client-bearer-token",
                       "anthropic-beta": "prompt-caching-2024-07-31"})
    received = main.first.requests[-1].headers
    assert received["x-api-key"] == "sk-test-primary"
    assert "authorization" not in received
    assert received["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert received["anthropic-version"] == "2023-06-01"
    assert received["x-extra-header"] == "from-config"
    assert not any("client-secret-key" in value or "client-bearer-token" in value for value in received.values())


def test_a_clients_anthropic_version_is_kept(main: Rig) -> None:
    main.post(headers={"anthropic-version": "2024-01-01"})
    assert main.first.requests[-1].headers["anthropic-version"] == "2024-01-01"


def test_model_is_mapped_and_the_rest_of_the_body_arrives_unchanged(main: Rig) -> None:
    body = {**BODY, "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"user_id": "u-1"},
            "some_future_field": {"nested": [1, 2.5, None, "x"]}, "temperature": 1}
    assert main.post(body=body).status_code == 200
    assert main.first.requests[-1].json == {**body, "model": "big-model"}


def test_unmapped_provider_gets_the_body_byte_for_byte(main: Rig) -> None:
    main.first.queue(anthropic_error(500))
    raw = b'{"model": "claude-test-1",  "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "x": 1}'
    response = requests.post(main.lb.url + "/v1/messages", data=raw,
                             headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert response.headers["x-lb-provider"] == "secondary"
    assert main.second.requests[-1].body == raw


# --- failover ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
def test_refused_connection_fails_over_to_the_next_provider(main: Rig, stream: bool) -> None:
    response = main.post(body={**BODY, "model": "claude-refused"}, stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "primary"
    if stream:
        assert check_anthropic_stream(response.content).count("message_start") == 1


@pytest.mark.parametrize("failure, stream", [
    pytest.param(anthropic_error(529), False, id="529-message"),
    pytest.param(anthropic_error(529), True, id="529-stream"),
    pytest.param(anthropic_error(500), False, id="500-message"),
    pytest.param(anthropic_error(500), True, id="500-stream"),
    pytest.param(drop(), False, id="dropped-connection"),
    pytest.param(anthropic_stream(break_after=0), True, id="stream-breaks-before-any-event"),
    pytest.param(anthropic_stream(break_after=1), True, id="stream-breaks-after-message_start"),
    pytest.param(anthropic_stream(break_after=2), True, id="stream-breaks-after-ping"),
])
def test_failure_before_content_fails_over_invisibly(main: Rig, failure: Any, stream: bool) -> None:
    main.first.queue(failure)
    main.second.queue(anthropic_stream(["from ", "second"]) if stream else anthropic_message("from second"))
    response = main.post(stream=stream)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "secondary"
    if stream:
        answer = check_anthropic_stream(response.content)
        assert answer.count("message_start") == 1
        assert answer.text == "from second"
    else:
        assert response.json()["content"][0]["text"] == "from second"
    assert len(main.first.requests) == len(main.second.requests) == 1


def test_a_stream_broken_after_content_ends_cleanly_with_an_error_event(main: Rig) -> None:
    main.first.queue(anthropic_stream(["partial ", "answer"], break_after=4))  # start, ping, block start, 1 delta
    response = main.post(stream=True)
    assert response.status_code == 200
    stream = check_anthropic_stream(response.content, allow_error=True)
    assert stream.text == "partial "
    assert stream.error is not None and stream.count("message_start") == 1
    assert main.second.requests == []  # content was sent: a second answer would be spliced onto it


def test_a_400_comes_back_as_is_and_is_not_retried(main: Rig) -> None:
    main.first.queue(anthropic_error(400, message="messages.0: bad block"))
    response = main.post()
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "messages.0: bad block"}}
    assert response.headers["x-lb-provider"] == "primary"
    assert main.second.requests == []


def test_when_nobody_answers_the_client_gets_a_retryable_529(main: Rig) -> None:
    main.first.queue(drop())
    main.second.queue(drop())
    response = main.post()
    assert response.status_code == 529
    assert anthropic_error_of(response)["type"] == "overloaded_error"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("first_status, second_status", [(500, 529), (529, 429), (429, 503)])
def test_when_every_provider_fails_the_client_gets_their_retryable_status(
        main: Rig, first_status: int, second_status: int) -> None:
    main.first.queue(anthropic_error(first_status))
    main.second.queue(anthropic_error(second_status))
    response = main.post()
    assert response.status_code in (first_status, second_status)
    message = anthropic_error_of(response)["message"]
    assert "primary" in message and "secondary" in message
    assert int(response.headers["retry-after"]) >= 1
    assert "x-request-id" in response.headers


def test_failed_stream_all_round_is_a_json_error_not_a_broken_stream(main: Rig) -> None:
    main.first.queue(anthropic_stream(break_after=1))
    main.second.queue(anthropic_error(529))
    response = main.post(stream=True)
    assert response.status_code == 529
    assert anthropic_error_of(response)["type"] == "overloaded_error"


def test_a_stream_is_forwarded_as_it_arrives(main: Rig) -> None:
    main.first.queue(anthropic_stream([f"word{number} " for number in range(8)], delay=0.2))
    started = time.monotonic()
    with requests.post(main.lb.url + "/v1/messages", json={**BODY, "stream": True},
                       stream=True, timeout=TIMEOUT) as response:
        arrivals = [(arrived - started, json.loads(frame.data)["type"])
                    for arrived, frame in iter_timed_frames(response)]
    first_content = next(at for at, kind in arrivals if kind == "content_block_delta")
    finished = arrivals[-1][0]
    assert arrivals[-1][1] == "message_stop"
    # 13 gaps of 0.2 s: buffering would deliver everything at once, at the end.
    assert finished - first_content > 1.5, arrivals
    delta_times = [at for at, kind in arrivals if kind == "content_block_delta"]
    assert len(set(round(at, 2) for at in delta_times)) == len(delta_times), arrivals


# --- other endpoints -----------------------------------------------------------------------------

def test_count_tokens_is_forwarded(main: Rig) -> None:
    response = requests.post(main.lb.url + "/v1/messages/count_tokens",
                             json={"model": "claude-test-1", "messages": BODY["messages"]}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": 42}
    request = main.first.requests[-1]
    assert (request.path, request.headers["x-api-key"]) == ("/v1/messages/count_tokens", "sk-test-primary")


def test_sdk_count_tokens(main: Rig) -> None:
    with anthropic_sdk(main.lb) as client:
        assert client.messages.count_tokens(model="claude-test-1", messages=BODY["messages"]).input_tokens == 42


# The exact name of "dead" (unreachable, so it reports nothing), and what primary and secondary report.
LISTED_MODELS = ["claude-refused", "claude-test-1", "claude-test-2"]


def test_models_in_anthropic_format(main: Rig) -> None:
    response = requests.get(main.lb.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}, timeout=TIMEOUT)
    listing = response.json()
    assert [model["id"] for model in listing["data"]] == LISTED_MODELS
    assert listing["data"][0]["type"] == "model" and listing["has_more"] is False
    assert [model["providers"] for model in listing["data"]] == [["dead", "primary", "secondary"],
                                                               ["primary", "secondary"], ["primary", "secondary"]]
    with anthropic_sdk(main.lb) as client:
        assert [model.id for model in client.models.list(limit=1)] == LISTED_MODELS  # the SDK pages through
        assert client.models.retrieve("claude-test-2").id == "claude-test-2"
        assert client.models.retrieve("claude-by-glob").id == "claude-by-glob"  # primary's claude-* serves it


def test_models_in_openai_format_for_bearer_clients(main: Rig) -> None:
    response = requests.get(main.lb.url + "/v1/models", headers={"authorization": "Bearer x"}, timeout=TIMEOUT)
    listing = response.json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == LISTED_MODELS and listing["data"][0]["object"] == "model"
    with openai_sdk(main.lb) as client:
        assert client.models.retrieve("claude-test-1").id == "claude-test-1"


def test_every_answer_carries_a_request_id(main: Rig) -> None:
    ids = {requests.get(main.lb.url + path, timeout=TIMEOUT).headers["x-request-id"]
           for path in ("/health", "/v1/models", "/no/such/path")}
    assert len(ids) == 3


def test_one_log_line_per_request_names_id_path_model_providers_and_status(main: Rig) -> None:
    main.first.queue(anthropic_error(500))
    response = main.post()
    request_id = response.headers["x-request-id"]
    line = next(line for line in main.lb.wait_for_log(request_id).splitlines() if request_id in line)
    assert "method=POST path=/v1/messages" in line and "model=claude-test-1" in line and "status=200" in line
    assert "tried=primary:500:" in line and "secondary:ok:" in line


def test_health_probe_reports_every_backend_without_secrets(main: Rig) -> None:
    response = requests.get(main.lb.url + "/health?probe=1", timeout=TIMEOUT)
    report = {entry["name"]: entry for entry in response.json()["providers"]}
    assert report["primary"]["probe"]["reachable"] is True
    assert report["primary"]["probe"]["models"] == ["claude-test-1", "claude-test-2"]
    assert report["dead"]["probe"]["reachable"] is False
    assert not any(key in response.text for key in PROVIDER_KEYS)
    assert main.first.requests_to("/v1/models")[-1].headers["x-api-key"] == "sk-test-primary"


def test_no_key_ever_reaches_the_log(main: Rig) -> None:
    main.post(headers={"x-api-key": "client-secret-key"})
    main.lb.wait_for_log(main.post().headers["x-request-id"])
    log = main.lb.log_text()
    assert not any(key in log for key in (*PROVIDER_KEYS, "client-secret-key"))


# --- inbound keys, limits and client errors (strict service) -------------------------------------

def test_without_a_key_the_client_gets_401_and_no_provider_is_contacted(strict: Rig) -> None:
    response = strict.post()
    assert response.status_code == 401
    assert anthropic_error_of(response)["type"] == "authentication_error"
    assert strict.post(headers={"x-api-key": "wrong"}).status_code == 401
    assert strict.first.requests == strict.second.requests == []


@pytest.mark.parametrize("headers", [{"x-api-key": CLIENT_KEY}, {"authorization": f"Bearer {CLIENT_KEY}"}],
                         ids=["x-api-key", "bearer"])
def test_a_configured_key_lets_the_client_in(strict: Rig, headers: dict[str, str]) -> None:
    response = strict.post(headers=headers)
    assert response.status_code == 200, response.text
    assert strict.first.requests[-1].headers["x-api-key"] == "sk-test-first"


@pytest.mark.parametrize("raw, status, fragment", [
    pytest.param(b'{"model": "claude-x", ', 400, "not valid JSON", id="malformed-json"),
    pytest.param(b'[1, 2]', 400, "JSON object", id="not-an-object"),
    pytest.param(json.dumps({"max_tokens": 5, "messages": BODY["messages"]}).encode(), 400, "model", id="no-model"),
    pytest.param(json.dumps({"model": "claude-x", "max_tokens": 5}).encode(), 400, "messages", id="no-messages"),
    pytest.param(json.dumps({"model": "claude-x", "messages": BODY["messages"]}).encode(), 400, "max_tokens",
                 id="no-max-tokens"),
    pytest.param(json.dumps({**BODY, "padding": "x" * 5000}).encode(), 413, "limit", id="body-over-the-limit"),
])
def test_bad_requests_are_refused_before_any_provider(strict: Rig, raw: bytes, status: int, fragment: str) -> None:
    response = requests.post(strict.lb.url + "/v1/messages", data=raw, timeout=TIMEOUT,
                             headers={**AUTHORIZED, "content-type": "application/json"})
    assert response.status_code == status
    assert fragment in anthropic_error_of(response)["message"]
    assert strict.first.requests == []
    assert strict.post(headers=AUTHORIZED).status_code == 200  # still serving


@pytest.mark.parametrize("size, status", [(5000, 413), (200, 200)])
def test_a_chunked_body_is_held_to_the_same_limit(strict: Rig, size: int, status: int) -> None:
    raw = json.dumps({**BODY, "padding": "x" * size}).encode()
    chunks = (raw[start:start + 512] for start in range(0, len(raw), 512))  # no content-length
    response = requests.post(strict.lb.url + "/v1/messages", data=chunks, timeout=TIMEOUT,
                             headers={**AUTHORIZED, "content-type": "application/json"})
    assert response.status_code == status, response.text


def test_unknown_model_is_404_naming_the_configured_models(strict: Rig) -> None:
    # Anthropic's own answer; never a 5xx, which the SDKs would retry three times for nothing.
    response = strict.post(body={**BODY, "model": "gpt-4o"}, headers=AUTHORIZED)
    assert response.status_code == 404
    error = anthropic_error_of(response)
    assert error["type"] == "not_found_error"
    assert "gpt-4o" in error["message"] and "claude-*" in error["message"]
    assert strict.first.requests == []


def test_models_behind_a_glob_are_what_the_providers_report(strict: Rig) -> None:
    listing = requests.get(strict.lb.url + "/v1/models", headers=AUTHORIZED, timeout=TIMEOUT).json()
    assert [(model["id"], model["providers"]) for model in listing["data"]] == [
        ("claude-test-1", ["first", "second"]), ("claude-test-2", ["first", "second"])]
    unknown = requests.get(strict.lb.url + "/v1/models/gpt-4o", headers=AUTHORIZED, timeout=TIMEOUT)
    assert unknown.status_code == 404 and anthropic_error_of(unknown)["type"] == "not_found_error"
    openai_unknown = requests.get(strict.lb.url + "/v1/models/gpt-4o", timeout=TIMEOUT,
                                  headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert openai_unknown.status_code == 404 and openai_unknown.json()["error"]["code"] == "model_not_found"


def test_unknown_path_is_a_json_404_listing_the_endpoints(strict: Rig) -> None:
    response = requests.post(strict.lb.url + "/v2/messages", json=BODY, headers=AUTHORIZED, timeout=TIMEOUT)
    assert response.status_code == 404
    assert "/v1/messages" in anthropic_error_of(response)["message"]


def test_wrong_method_is_a_json_405(strict: Rig) -> None:
    response = requests.get(strict.lb.url + "/v1/messages", headers=AUTHORIZED, timeout=TIMEOUT)
    assert response.status_code == 405
    assert "GET" in anthropic_error_of(response)["message"]


def test_health_shows_a_provider_without_its_key_as_disabled(strict: Rig) -> None:
    response = requests.get(strict.lb.url + "/health", timeout=TIMEOUT)
    off = next(entry for entry in response.json()["providers"] if entry["name"] == "off")
    assert off["state"] == "disabled"
    assert UNSET_VARIABLE in off["disabled_reason"]
    assert not any(key in response.text for key in (*PROVIDER_KEYS, CLIENT_KEY))
    assert CLIENT_KEY not in strict.lb.log_text()


def test_a_disabled_provider_is_said_once_at_start_even_with_several_workers(tmp_path: Path) -> None:
    config = providers_config(
        anthropic_provider("off", f"http://127.0.0.1:{closed_port()}", api_key=f"${{{UNSET_VARIABLE}}}"))
    lb = LoadBalancerProcess(config, workers=2, workdir=tmp_path).start()
    try:
        wait_for_workers = time.monotonic() + 5
        while lb.log_text().count("Booting worker") < 2 and time.monotonic() < wait_for_workers:
            time.sleep(0.05)
        time.sleep(1.0)  # let the second worker finish create_app, where a repeat would be said
        log = lb.log_text()
    finally:
        lb.stop()
    assert log.count("Booting worker") == 2
    assert log.count("provider off disabled") == 1
    assert UNSET_VARIABLE in log


def test_a_failed_provider_is_skipped_while_it_cools_down(strict: Rig) -> None:
    strict.first.queue(anthropic_error(500))
    assert strict.post(headers=AUTHORIZED).headers["x-lb-provider"] == "second"
    assert strict.provider_state("first")["state"] == "cooling_down"
    response = strict.post(headers=AUTHORIZED)
    assert response.headers["x-lb-provider"] == "second"
    assert len(strict.first.requests) == 1
    assert len(strict.second.requests) == 2


# --- configuration errors --------------------------------------------------------------------------

BAD_CONFIG = {"providers": [{"name": "p", "type": "anthropic", "base_url": "http://127.0.0.1:1", "weight": 0}]}
BAD_CONFIG_MESSAGE = "providers[0].weight"


def test_a_bad_config_stops_gunicorn_with_one_line(tmp_path: Path) -> None:
    process = LoadBalancerProcess(BAD_CONFIG, workdir=tmp_path, startup_timeout=10)
    with pytest.raises(LoadBalancerStartError):
        process.start()
    assert process.stop() == 1
    lines = [line for line in process.log_text().splitlines() if BAD_CONFIG_MESSAGE in line]
    assert len(lines) == 1, process.log_text()
    assert str(process.providers_path) in lines[0] and "configuration error" in lines[0]


def run_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`flask --app app check-config PATH` from the repository root."""
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED_ENV}
    env.update({"PROVIDERS_FILE": str(path), "LB_WATCH_CONFIG": "0"})
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "check-config", str(path)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)


def test_check_config_names_the_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    write_json_atomically(path, BAD_CONFIG)
    result = run_check_config(path)
    assert result.returncode == 1
    assert f"{path}: {BAD_CONFIG_MESSAGE}:" in result.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    write_json_atomically(path, providers_config(anthropic_provider("p", "http://127.0.0.1:1")))
    result = run_check_config(path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
