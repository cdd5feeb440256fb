"""One bad answer harms nothing else: provider auth failures, redirects, malformed answers,
silent providers, client bodies that cannot be re-encoded and local resource shortages.

The app runs in-process in front of fake backends on 127.0.0.1, so every test also checks
that no provider is left marked busy or holding a half-open trial.
"""
from __future__ import annotations

import errno
import json
import resource
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from support.fake_backend import (FakeBackend, anthropic_error, anthropic_message, anthropic_stream,
                                  encode_sse, hang, status)
from support.hostile_behaviours import RawStream, Redirect, Trickle
from support.inprocess import InProcessService, build_service
from support.lb_process import LoadBalancerProcess, anthropic_provider, openai_provider, providers_config
from support.sse_validation import check_anthropic_stream, read_openai_stream

pytestmark = pytest.mark.integration

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CHAT_BODY = {"model": "claude-test-1", "messages": [{"role": "user", "content": "hi"}]}
# Long cooldowns: a provider that failed stays out for the rest of the test.
ROUTING = {"affinity": False, "cooldown": 60, "max_cooldown": 60, "wait_for_cooldown": 0}
TIMEOUT = {"connect": 2, "read": 10, "idle": 5}
ONE_MIB = 1024 * 1024
STANDARD_STREAMS = 3  # descriptors 0-2: a soft limit of 3 leaves no number free for a new one


@pytest.fixture
def two(fake_backend: Callable[..., FakeBackend], tmp_path: Path) -> Callable[..., tuple]:
    """Factory: (service, primary, secondary); primary is tried first. Keywords shape the primary."""
    def build(primary_type: str = "anthropic", timeout: dict | None = None, **primary_options: Any) -> tuple:
        primary = fake_backend(dialect=primary_type)
        secondary = fake_backend()
        make = openai_provider if primary_type == "openai" else anthropic_provider
        service = build_service(
            tmp_path,
            make("primary", primary.url, priority=1, timeout={**TIMEOUT, **(timeout or {})}, **primary_options),
            anthropic_provider("secondary", secondary.url, priority=2, timeout=TIMEOUT),
            routing=ROUTING)
        return service, primary, secondary
    return build


def only_primary(fake_backend: Callable[..., FakeBackend], tmp_path: Path, *, provider_type: str = "anthropic",
                 routing: dict | None = None, **options: Any) -> tuple[InProcessService, FakeBackend]:
    backend = fake_backend(dialect=provider_type)
    make = openai_provider if provider_type == "openai" else anthropic_provider
    service = build_service(tmp_path, make("primary", backend.url, **options), routing={**ROUTING, **(routing or {})})
    return service, backend


# --- the provider refuses the load balancer's key ---------------------------------------------------------

@pytest.mark.parametrize("code", [401, 403])
def test_a_provider_refusing_its_key_fails_over_and_shows_auth_failed(two, code: int) -> None:
    service, primary, secondary = two()
    primary.queue(anthropic_error(code))
    response = service.client.post("/v1/messages", json=BODY)
    assert response.status_code == 200
    assert response.headers["x-lb-provider"] == "secondary"
    health = service.health()["primary"]
    assert health["state"] == "cooling_down"
    assert health["last_error"].startswith("auth_failed")
    assert service.leftover_state() == {}


@pytest.mark.parametrize("path, body", [("/v1/messages", BODY), ("/v1/messages", {**BODY, "stream": True})])
def test_when_every_provider_refuses_its_key_the_client_gets_a_502_not_a_401(
        fake_backend, tmp_path: Path, path: str, body: dict) -> None:
    service, backend = only_primary(fake_backend, tmp_path)
    backend.set_default(anthropic_error(401, message="invalid x-api-key"))
    response = service.client.post(path, json=body)
    assert response.status_code == 502
    error = response.get_json()
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "refused the load balancer's credentials" in error["error"]["message"]
    assert service.leftover_state() == {}


@pytest.mark.parametrize("provider_type", ["anthropic", "openai"])
def test_the_openai_front_door_answers_a_refused_key_with_a_502_in_openai_shape(
        fake_backend, tmp_path: Path, provider_type: str) -> None:
    service, backend = only_primary(fake_backend, tmp_path, provider_type=provider_type)
    backend.set_default(status(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}))
    response = service.client.post("/v1/chat/completions", json=CHAT_BODY)
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert "refused the load balancer's credentials" in error["message"] and error["code"] == "502"


# --- redirects ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_fails_over_and_never_reaches_the_client(two, code: int) -> None:
    service, primary, _ = two()
    primary.queue(Redirect(code))
    response = service.client.post("/v1/messages", json=BODY)
    assert response.status_code == 200 and response.headers["x-lb-provider"] == "secondary"
    assert "location" not in response.headers


def test_a_redirect_from_the_last_provider_is_a_502(fake_backend, tmp_path: Path) -> None:
    service, backend = only_primary(fake_backend, tmp_path)
    backend.set_default(Redirect(307))
    response = service.client.post("/v1/messages", json=BODY)
    assert response.status_code == 502
    assert "location" not in response.headers
    assert response.get_json()["type"] == "error"


# --- answers of unexpected shape -----------------------------------------------------------------------

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-1",
           "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}
COMPLETION = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}
BAD_ANSWERS = {
    "usage is a list": ("anthropic", BODY, {**MESSAGE, "usage": [1, 2]}),
    "usage is a string": ("anthropic", BODY, {**MESSAGE, "usage": "many"}),
    "openai tool call arguments nested past what can be re-encoded": ("openai", BODY, {**COMPLETION, "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": {"deep": json.loads("[" * 900 + "]" * 900)}}}]}}]}),
}


@pytest.mark.parametrize("provider_type, body, answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_an_answer_of_unexpected_shape_is_a_bad_response_and_fails_over(two, provider_type: str, body: dict,
                                                                        answer: dict) -> None:
    service, primary, _ = two(provider_type)
    primary.queue(status(200, answer))
    response = service.client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["x-lb-provider"] == "secondary"
    assert service.health()["primary"]["failures"] == 1
    assert service.leftover_state() == {}


START = encode_sse({"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}})
BLOCK = encode_sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
DELTA = encode_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
HUGE_FRAME = b"event: content_block_delta\ndata: " + b"x" * (16 * ONE_MIB + ONE_MIB)
BEFORE_CONTENT = {
    "message is a string": (encode_sse({"type": "message_start", "message": "hello"}), BLOCK, DELTA),
    "usage is a list": (encode_sse({"type": "message_start", "message": {"usage": [1]}}), BLOCK, DELTA),
    "frame over 16 MiB": (START, HUGE_FRAME),
    "event is not JSON": (START, b"event: message_delta\ndata: {not json\n\n"),
}


@pytest.mark.parametrize("chunks", BEFORE_CONTENT.values(), ids=BEFORE_CONTENT.keys())
def test_a_malformed_stream_before_content_fails_over_invisibly(two, chunks) -> None:
    service, primary, _ = two()
    primary.queue(RawStream(chunks))
    response = service.client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.headers["x-lb-provider"] == "secondary"
    assert check_anthropic_stream(response.get_data()).text == "Hello"
    assert service.leftover_state() == {}


AFTER_CONTENT = {
    "usage is a list": encode_sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": [1]}),
    "frame over 16 MiB": HUGE_FRAME,
    "event is not JSON": b"event: message_delta\ndata: {not json\n\n",
    "message_start again, not an object": encode_sse({"type": "message_start", "message": 5}),
}


@pytest.mark.parametrize("frame", AFTER_CONTENT.values(), ids=AFTER_CONTENT.keys())
def test_a_malformed_stream_after_content_ends_with_a_clean_error_event(two, frame: bytes) -> None:
    service, primary, _ = two()
    primary.queue(RawStream((START, BLOCK, DELTA, frame)))
    response = service.client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.headers["x-lb-provider"] == "primary"
    stream = check_anthropic_stream(response.get_data(), allow_error=True)
    assert stream.text == "Hi" and stream.error is not None and stream.error["message"]
    assert service.leftover_state() == {}


def test_an_openai_client_gets_an_error_chunk_and_done_when_a_stream_breaks_after_content(two) -> None:
    service, primary, _ = two()
    primary.queue(RawStream((START, BLOCK, DELTA, b"event: content_block_delta\ndata: {\"delta\": 5}\n\n")))
    response = service.client.post("/v1/chat/completions", json={**CHAT_BODY, "stream": True})
    chunks = read_openai_stream(response.get_data())
    assert chunks[-1]["error"]["message"]
    assert service.leftover_state() == {}


# --- a provider that accepts the connection and says nothing ----------------------------------------------

def test_a_stream_whose_provider_sends_no_headers_fails_over_after_first_byte(two) -> None:
    service, primary, _ = two(timeout={"read": 30, "first_byte": 0.5})
    primary.queue(hang(20))
    response = service.client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.headers["x-lb-provider"] == "secondary"
    assert "timeout.first_byte" in service.health()["primary"]["last_error"]


def test_a_stream_whose_provider_sends_headers_then_nothing_fails_over_after_first_byte(two) -> None:
    service, primary, _ = two(timeout={"read": 30, "idle": 30, "first_byte": 0.5})
    primary.queue(anthropic_stream(first_delay=20))
    response = service.client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.headers["x-lb-provider"] == "secondary"
    assert check_anthropic_stream(response.get_data()).text == "Hello"


def test_a_non_stream_answer_that_trickles_is_cut_at_timeout_total(two) -> None:
    service, primary, _ = two(timeout={"read": 30, "total": 1})
    primary.queue(Trickle(json.dumps(MESSAGE).encode(), delay=0.1))  # ~20 s in all, a byte every 0.1 s
    response = service.client.post("/v1/messages", json=BODY)
    assert response.headers["x-lb-provider"] == "secondary"
    assert "timeout.total" in service.health()["primary"]["last_error"]


# --- client bodies the load balancer cannot re-encode ---------------------------------------------------

def nested(depth: int) -> bytes:
    """A Messages body whose tool schema nests `depth` arrays deep (orjson reads 1024, writes 254)."""
    return (b'{"model":"claude-test-1","max_tokens":8,"messages":[{"role":"user","content":"hi"}],'
            b'"tools":[{"name":"f","input_schema":{"type":"object","x":' + b"[" * depth + b"]" * depth + b"}}]}")


@pytest.mark.parametrize("depth", [300, 1000])
@pytest.mark.parametrize("path, provider_type, models", [
    ("/v1/messages", "anthropic", {"claude-*": "renamed-model"}),   # renaming re-encodes the body
    ("/v1/messages", "openai", {}),                                # translation re-encodes it
    ("/v1/messages/count_tokens", "openai", {}),                   # the local estimate encodes it
])
def test_a_body_nested_too_deep_to_re_encode_is_a_400(fake_backend, tmp_path: Path, depth: int, path: str,
                                                     provider_type: str, models: dict) -> None:
    service, backend = only_primary(fake_backend, tmp_path, provider_type=provider_type, models=models)
    response = service.client.post(path, data=nested(depth), content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "nests too deeply" in response.get_json()["error"]["message"]
    assert backend.requests_to("/v1/messages", "/chat/completions") == []
    assert service.leftover_state() == {}


def test_a_deep_body_forwarded_byte_for_byte_still_works(fake_backend, tmp_path: Path) -> None:
    service, _ = only_primary(fake_backend, tmp_path)
    response = service.client.post("/v1/messages", data=nested(300), content_type="application/json")
    assert response.status_code == 200


def test_a_deep_body_on_the_openai_front_door_is_a_400(fake_backend, tmp_path: Path) -> None:
    service, _ = only_primary(fake_backend, tmp_path)
    body = (b'{"model":"claude-test-1","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",'
            b'"function":{"name":"f","parameters":{"x":' + b"[" * 400 + b"]" * 400 + b"}}}]}")
    response = service.client.post("/v1/chat/completions", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nests too deeply" in response.get_json()["error"]["message"]


def test_a_half_open_trial_is_released_whatever_ends_the_attempt(fake_backend, tmp_path: Path) -> None:
    # The circuit opens after one failure; the next request is the half-open trial. It ends
    # in a 400 of the load balancer's own (the body cannot be re-encoded): the trial slot must
    # be free again, or the provider would be out of rotation until a restart.
    service, backend = only_primary(fake_backend, tmp_path, models={"claude-*": "renamed-model"},
                                    routing={"cooldown": 0, "max_cooldown": 0, "failure_threshold": 1})
    backend.queue(anthropic_error(500))
    assert service.client.post("/v1/messages", json=BODY).status_code == 500
    assert service.health()["primary"]["circuit"] == "half_open"
    assert service.client.post("/v1/messages", data=nested(300), content_type="application/json").status_code == 400
    assert service.leftover_state() == {}
    backend.queue(anthropic_message("back"))
    response = service.client.post("/v1/messages", json=BODY)
    assert response.status_code == 200 and response.get_json()["content"][0]["text"] == "back"


# --- local faults are the load balancer's, not the provider's ---------------------------------------------

def test_running_out_of_file_descriptors_is_a_503_that_blames_no_provider(
        fake_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service, backend = only_primary(fake_backend, tmp_path)

    def no_descriptors_left(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    # Where urllib3 opens a provider connection: the socket call fails as under a low ulimit -n.
    monkeypatch.setattr("urllib3.util.connection.create_connection", no_descriptors_left)
    response = service.client.post("/v1/messages", json=BODY)
    monkeypatch.undo()
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert "load balancer's fault" in error["message"] and "too many open files" in error["message"]
    assert response.headers["retry-after"] == "1"
    health = service.health()["primary"]
    assert (health["state"], health["failures"], health["in_flight"]) == ("healthy", 0, 0)
    assert service.client.post("/v1/messages", json=BODY).status_code == 200


def test_metrics_that_cannot_be_written_do_not_fail_the_request(
        fake_backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = only_primary(fake_backend, tmp_path)
    metrics = service.app.extensions["loadbalancer"].metrics

    def no_descriptors_left(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(metrics, "observe_request", no_descriptors_left)
    assert service.client.post("/v1/messages", json=BODY).status_code == 200
    stream = service.client.post("/v1/messages", json={**BODY, "stream": True})
    assert check_anthropic_stream(stream.get_data()).text == "Hello"
    assert service.health()["primary"]["failures"] == 0


def test_a_gunicorn_worker_out_of_file_descriptors_answers_503_and_blames_no_provider(
        fake_backend, lb: Callable[..., LoadBalancerProcess]) -> None:
    # The worker's soft limit is lowered below every descriptor it holds, with the client's
    # connection already open: the connection to the provider (and the metrics files) fail
    # with EMFILE, as under systemd's default LimitNOFILE with many open streams. (A limit of
    # the count it holds would not do: a new descriptor takes the lowest free number, and a
    # file the worker closes meanwhile leaves one below that count.)
    backend = fake_backend()
    service = lb(providers_config(anthropic_provider("primary", backend.url)), workers=1)
    children = Path(f"/proc/{service.pid}/task/{service.pid}/children")
    if not children.exists():
        pytest.skip("this kernel does not list a process's children in /proc")
    worker = int(children.read_text().split()[0])
    session = requests.Session()
    assert session.get(f"{service.url}/health", timeout=5).status_code == 200
    soft, hard = resource.prlimit(worker, resource.RLIMIT_NOFILE)
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (STANDARD_STREAMS, hard))  # descriptors held stay open
    try:
        response = session.post(f"{service.url}/v1/messages", json=BODY, timeout=10)
    finally:
        resource.prlimit(worker, resource.RLIMIT_NOFILE, (soft, hard))
    assert response.status_code == 503, response.text
    assert "load balancer's fault" in response.json()["error"]["message"]
    health = {entry["name"]: entry for entry in session.get(f"{service.url}/health", timeout=5).json()["providers"]}
    assert (health["primary"]["state"], health["primary"]["failures"], health["primary"]["in_flight"]) == \
        ("healthy", 0, 0)
    assert session.post(f"{service.url}/v1/messages", json=BODY, timeout=10).status_code == 200
    assert len(backend.requests_to("/v1/messages")) == 1  # only the second request reached the provider
