"""No configured secret leaves the service, whatever a provider echoes back.

Fake providers quote the key (and the configured extra header) they were sent in every
shape they can: Anthropic and OpenAI JSON errors, plain text, HTML, error events inside a
stream. The in-process tests check every client answer plus /health, /metrics and the status
data; the gunicorn test runs a batch of such requests through the real service, in both log
formats, and greps every captured answer, the whole log, /health and /metrics for each secret.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import pytest
import requests

from support.fake_backend import FakeBackend
from support.hostile_behaviours import ECHO_SHAPES, EchoKey
from support.inprocess import build_service
from support.lb_process import LoadBalancerProcess, anthropic_provider, openai_provider, providers_config
from support.sse_validation import read_frames

pytestmark = pytest.mark.integration

CLIENT_KEY = "client-SECRET-key-0003"
HEADER_SECRET = "hdr-SECRET-value-0002"
# Quotes, a backslash, a slash and a non-ASCII letter: its JSON-escaped and URL-encoded forms differ.
SPECIAL_KEY = 'sk-"SECRET\\spécial/0004'
PROVIDER_KEYS = {"anthropic": "sk-ant-SECRET-key-0001", "openai": SPECIAL_KEY}
SECRETS = (CLIENT_KEY, HEADER_SECRET, *PROVIDER_KEYS.values())
STREAM_SHAPES = {"anthropic_stream_error", "openai_stream_error", "anthropic_error_event_before_content"}
BODY = {"model": "claude-test-1", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "claude-test-1", "messages": [{"role": "user", "content": "hi"}]}
ROUTING = {"affinity": False, "cooldown": 0, "max_cooldown": 0, "wait_for_cooldown": 0}


def forms_of(secret: str) -> set[str]:
    """How a secret could appear in captured text: raw, JSON-escaped (both ways), URL-encoded, repr."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
            quote(secret, safe=""), repr(secret)[1:-1]}


def leaks_in(text: str) -> list[str]:
    """Every written form of a configured secret found in `text`."""
    return sorted(form for secret in SECRETS for form in forms_of(secret) if form in text)


def echoing_provider(provider_type: str, url: str, **options: Any) -> dict[str, Any]:
    make = openai_provider if provider_type == "openai" else anthropic_provider
    return make(provider_type, url, api_key=PROVIDER_KEYS[provider_type],
                headers={"x-extra-secret": HEADER_SECRET}, **options)


def shapes_for(provider_type: str) -> list[str]:
    """The echo shapes a provider of this type can send (stream errors in its own dialect)."""
    foreign = "anthropic_" if provider_type == "openai" else "openai_stream"
    return [shape for shape in ECHO_SHAPES if not (shape in STREAM_SHAPES and shape.startswith(foreign))]


CASES = [(provider_type, shape, front, code)
         for provider_type in ("anthropic", "openai") for shape in shapes_for(provider_type)
         for front in ("anthropic", "openai") for code in ((200,) if shape in STREAM_SHAPES else (400, 401, 500))]


def send(client: Any, front: str, shape: str, stream: bool) -> Any:
    """The client's request: Messages or chat completions, with the client key."""
    path, body = ("/v1/chat/completions", CHAT) if front == "openai" else ("/v1/messages", BODY)
    return client.post(path, json={**body, "stream": stream}, headers={"x-api-key": CLIENT_KEY})


def assert_well_formed(raw: bytes, content_type: str) -> None:
    """A JSON answer, or SSE whose every data line is JSON (or [DONE])."""
    if content_type.startswith("text/event-stream"):
        for frame in read_frames(raw):
            assert frame.data == "[DONE]" or json.loads(frame.data) is not None
    else:
        assert isinstance(json.loads(raw), dict)


@pytest.mark.parametrize("provider_type, shape, front, code", CASES,
                         ids=[f"{t}-{s}-{f}-{c}" for t, s, f, c in CASES])
def test_no_secret_an_echoing_provider_sends_reaches_any_answer(
        fake_backend: Callable[..., FakeBackend], tmp_path: Path, provider_type: str, shape: str, front: str,
        code: int) -> None:
    backend = fake_backend(dialect=provider_type)
    backend.set_default(EchoKey(shape, code))
    service = build_service(tmp_path, echoing_provider(provider_type, backend.url), routing=ROUTING,
                            auth={"api_keys": [{"name": "tester", "key": CLIENT_KEY}]})
    for stream in (False, True) if shape not in STREAM_SHAPES else (True,):
        response = send(service.client, front, shape, stream)
        raw = response.get_data()
        assert not leaks_in(raw.decode("utf-8", "replace")), raw[:500]
        assert "[redacted]" in raw.decode("utf-8", "replace") or shape == "html", raw[:500]
        assert_well_formed(raw, response.headers["content-type"])
    exposed = "".join(service.client.get(path).get_data(as_text=True)
                      for path in ("/health", "/metrics", "/status.json"))
    assert not leaks_in(exposed)
    assert backend.requests, "the provider was asked"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_batch_of_echoing_providers_leaves_no_secret_in_answers_logs_health_or_metrics(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess], log_format: str) -> None:
    anthropic_backend, openai_backend = fake_backend(), fake_backend(dialect="openai")
    config = providers_config(echoing_provider("anthropic", anthropic_backend.url, priority=1),
                              echoing_provider("openai", openai_backend.url, priority=2),
                              routing=ROUTING, auth={"api_keys": [{"name": "tester", "key": CLIENT_KEY}]})
    service = lb(config, env={"LOG_FORMAT": log_format, "LOG_LEVEL": "DEBUG"})
    captured = []
    for provider_type, backend in (("anthropic", anthropic_backend), ("openai", openai_backend)):
        for shape in shapes_for(provider_type):
            for code in (200,) if shape in STREAM_SHAPES else (400, 401, 500):
                # Both providers echo: the request fails over from one to the other, and
                # the all-failed message quotes both.
                anthropic_backend.set_default(EchoKey(shape if provider_type == "anthropic" else "plain_text", code))
                openai_backend.set_default(EchoKey(shape if provider_type == "openai" else "openai_json", code))
                for front, stream in (("anthropic", False), ("anthropic", True), ("openai", False), ("openai", True)):
                    path, body = ("/v1/chat/completions", CHAT) if front == "openai" else ("/v1/messages", BODY)
                    response = requests.post(f"{service.url}{path}", json={**body, "stream": stream},
                                             headers={"x-api-key": CLIENT_KEY}, timeout=15)
                    captured.append(f"{response.status_code} {dict(response.headers)} {response.text}")
    assert len(captured) == 4 * sum(len([c for c in ((200,) if s in STREAM_SHAPES else (400, 401, 500))])
                                    for t in ("anthropic", "openai") for s in shapes_for(t))
    assert anthropic_backend.requests and openai_backend.requests
    captured.append(requests.get(f"{service.url}/health", timeout=5).text)
    captured.append(requests.get(f"{service.url}/metrics", timeout=5).text)
    captured.append(requests.get(f"{service.url}/status.json", timeout=5).text)
    service.stop()
    log = service.log_text()
    assert "[redacted]" in log  # the upstream texts did reach the log, scrubbed
    assert not leaks_in(log), [line for line in log.splitlines() if leaks_in(line)][:5]
    for text in captured:
        assert not leaks_in(text), text[:500]
