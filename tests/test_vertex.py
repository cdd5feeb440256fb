"""`"type": "vertex"`: configuration, rawPredict requests, Google tokens and Google's errors.

The fake Vertex (support/fake_vertex.py) is also the service account's token endpoint: it
verifies the RS256-signed assertion google-auth sends and issues tokens the model endpoints
then require, so a token that is missing, forged, stale or fetched too often shows.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import health
from config import ConfigError, parse_config
from loadbalancer.errors import UpstreamCredentialsError, UpstreamHTTPError
from loadbalancer.providers.base import FailureKind
from loadbalancer.providers.http_client import ProviderClient
from support.fake_backend import anthropic_error
from support.fake_vertex import FakeVertex, google_error
from support.google_token_endpoint import generate_test_key, private_key_pem
from support.provider_calls import BODY, provider_of, request_of, send

MODEL = "claude-sonnet-4-5@20250929"


@pytest.fixture
def vertex(tmp_path: Path) -> Iterator[FakeVertex]:
    """A fake Vertex for test-project in us-east5, with its service-account key file."""
    with FakeVertex() as fake:
        fake.key_file = fake.write_key_file(tmp_path)
        yield fake


def vertex_entry(fake: FakeVertex | None = None, **overrides: Any) -> dict:
    """A providers.json entry for a vertex provider (pointing at the fake when given)."""
    entry = {"name": "vertex", "type": "vertex", "project": "test-project", "region": "us-east5",
             "models": {"claude-sonnet-4-5": MODEL}}
    if fake is not None:
        entry |= {"base_url": fake.url, "credentials_file": str(fake.key_file)}
    return {**entry, **overrides}


# --- configuration ----------------------------------------------------------------------

@pytest.mark.parametrize("region, base_url", [
    ("us-east5", "https://us-east5-aiplatform.googleapis.com"),
    ("europe-west1", "https://europe-west1-aiplatform.googleapis.com"),
    ("global", "https://aiplatform.googleapis.com"),
])
def test_the_endpoint_follows_the_region(region: str, base_url: str, tmp_path: Path) -> None:
    (config,) = parse_config({"providers": [vertex_entry(region=region)]}, "providers.json", {}).providers
    assert config.base_url == base_url


@pytest.mark.parametrize("change, path, fragment", [
    ({"project": None}, "providers[0].project", "required"),
    ({"region": None}, "providers[0].region", "required"),
    ({"api_key": "AIza-something"}, "providers[0].api_key", "credentials_file or Application Default"),
    ({"models": ["claude-*"]}, "providers[0].models", "name at least one model"),
    ({"aws_access_key_id": "AKID"}, "providers[0].aws_access_key_id", "unknown key"),
])
def test_bad_keys_are_named_with_their_place(change: dict, path: str, fragment: str) -> None:
    entry = {key: value for key, value in {**vertex_entry(), **change}.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [entry]}, "providers.json", {})
    assert caught.value.json_path == path and fragment in caught.value.problem


@pytest.mark.parametrize("environ, state", [({}, "not set"), ({"KEY_FILE": " "}, "empty")])
def test_a_key_file_from_an_unset_or_empty_variable_disables_the_provider(environ: dict, state: str) -> None:
    entry = vertex_entry(credentials_file="${KEY_FILE}")
    (config,) = parse_config({"providers": [entry]}, "providers.json", environ).providers
    assert config.disabled_reason == f"environment variable KEY_FILE is {state}"


# --- what is sent -----------------------------------------------------------------------

def test_raw_predict_gets_the_body_without_model_with_vertexs_version(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    upstream = provider.messages_request(request_of(), {"anthropic-beta": "context-1m-2025-08-07"})
    assert upstream.url == (f"{vertex.url}/v1/projects/test-project/locations/us-east5/publishers/anthropic"
                            f"/models/{MODEL}:rawPredict")
    assert json.loads(upstream.body) == {"max_tokens": 16, "messages": BODY["messages"],
                                         "anthropic_version": "vertex-2023-10-16"}
    assert upstream.headers["anthropic-beta"] == "context-1m-2025-08-07"
    answer = json.loads(send(provider, upstream))
    assert answer["type"] == "message" and answer["model"] == MODEL


def test_stream_raw_predict_keeps_stream_in_the_body(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    upstream = provider.messages_request(request_of(stream=True), {})
    assert upstream.url.endswith(":streamRawPredict") and json.loads(upstream.body)["stream"] is True
    assert b"event: message_stop" in send(provider, upstream, stream=True)


def test_count_tokens_keeps_the_model_in_the_body(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    upstream = provider.count_tokens_request(request_of(count_tokens=True), {})
    assert upstream.url.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert json.loads(upstream.body)["model"] == MODEL
    assert json.loads(provider.count_tokens_answer(send(provider, upstream))) == {"input_tokens": 42}


def test_betas_outside_the_providers_list_are_left_out(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex, betas=["context-1m-*", "interleaved-thinking-2025-05-14"]))
    headers = provider.messages_request(request_of(), {"anthropic-beta": "web-search-2025-03-05,context-1m-2025-08-07"}).headers
    assert headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert "anthropic-beta" not in provider.messages_request(request_of(), {"anthropic-beta": "files-api"}).headers


# --- the access token -------------------------------------------------------------------

def test_one_token_serves_many_requests(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    for _ in range(5):
        send(provider, provider.messages_request(request_of(), {}))
    assert vertex.grants == 1 and len(set(vertex.tokens_used)) == 1


def test_a_token_near_its_expiry_is_replaced_on_the_next_request(vertex: FakeVertex) -> None:
    # 200 s is inside google-auth's margin of 3 min 45 s: the token is due for refresh at once,
    # as an hour's token is 56 minutes later (no clock games: the token endpoint checks real time).
    vertex.token_lifetimes = [200]
    provider = provider_of(vertex_entry(vertex))
    for _ in range(3):
        send(provider, provider.messages_request(request_of(), {}))
    assert vertex.grants == 2
    first, second, third = vertex.tokens_used
    assert first != second == third


def test_concurrent_requests_wait_for_one_refresh(vertex: FakeVertex) -> None:
    vertex.token_delay = 0.3
    provider = provider_of(vertex_entry(vertex))
    start = threading.Barrier(12)
    tokens: list[str] = []

    def ask() -> None:
        start.wait()
        tokens.append(provider.messages_request(request_of(), {}).headers["authorization"])
    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert vertex.grants == 1 and len(set(tokens)) == 1 and len(tokens) == 12


def test_an_expired_token_is_refused_and_blames_the_credentials(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    send(provider, provider.messages_request(request_of(), {}))
    vertex.expire_tokens()
    with pytest.raises(UpstreamHTTPError) as caught:
        send(provider, provider.messages_request(request_of(), {}))
    assert caught.value.status == 401 and provider.classify_error(caught.value) is FailureKind.AUTH
    assert json.loads(provider.error_answer(caught.value)[1])["error"]["type"] == "authentication_error"


def test_a_key_the_token_endpoint_does_not_know_is_a_credentials_error(vertex: FakeVertex,
                                                                       tmp_path: Path) -> None:
    info = json.loads(vertex.key_file.read_text())
    info["private_key"] = private_key_pem(generate_test_key())
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(info))
    provider = provider_of(vertex_entry(vertex, credentials_file=str(forged)))
    with pytest.raises(UpstreamCredentialsError, match="invalid_grant") as caught:
        provider.messages_request(request_of(), {})
    assert "PRIVATE KEY" not in caught.value.message and vertex.grants == 0


def test_a_missing_key_file_fails_the_attempt_not_the_start(tmp_path: Path) -> None:
    provider = provider_of(vertex_entry(credentials_file=str(tmp_path / "missing.json")))
    with pytest.raises(UpstreamCredentialsError, match="could not be loaded"):
        provider.messages_request(request_of(), {})


def test_application_default_credentials_are_used_without_a_key_file(vertex: FakeVertex,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(vertex.key_file))
    entry = {key: value for key, value in vertex_entry(vertex).items() if key != "credentials_file"}
    provider = provider_of(entry)
    send(provider, provider.messages_request(request_of(), {}))
    assert vertex.grants == 1


def test_the_key_files_private_key_and_the_token_are_secrets(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    key = json.loads(vertex.key_file.read_text())["private_key"]
    assert key in provider.secret_values()
    token = provider.messages_request(request_of(), {}).headers["authorization"].split()[1]
    assert token in provider.secret_values()
    assert key not in repr(provider.config) and token not in repr(provider.config)


# --- errors and probes ------------------------------------------------------------------

@pytest.mark.parametrize("answer, status, kind, error_type, message", [
    (google_error(429, "Quota exceeded for aiplatform.googleapis.com"), 429, FailureKind.PROVIDER,
     "rate_limit_error", "RESOURCE_EXHAUSTED: Quota exceeded for aiplatform.googleapis.com"),
    (google_error(429, "Quota exceeded", wrapped=True), 429, FailureKind.PROVIDER, "rate_limit_error",
     "RESOURCE_EXHAUSTED: Quota exceeded"),
    (google_error(503, "The service is currently unavailable."), 503, FailureKind.PROVIDER,
     "overloaded_error", "UNAVAILABLE: The service is currently unavailable."),
    (google_error(400, "Project is not allowed to use Publisher Model"), 400, FailureKind.CLIENT,
     "invalid_request_error", "INVALID_ARGUMENT: Project is not allowed to use Publisher Model"),
    (google_error(403, "Permission denied on resource project"), 403, FailureKind.AUTH, "permission_error",
     "PERMISSION_DENIED: Permission denied on resource project"),
    (anthropic_error(400, message="prompt is too long"), 400, FailureKind.CLIENT, "invalid_request_error",
     "prompt is too long"),
    (anthropic_error(529), 529, FailureKind.PROVIDER, "overloaded_error", "fake backend error"),
])
def test_errors_become_anthropics_and_are_blamed_per_the_failover_policy(
        vertex: FakeVertex, answer: Any, status: int, kind: FailureKind, error_type: str, message: str) -> None:
    vertex.queue(answer)
    provider = provider_of(vertex_entry(vertex))
    with pytest.raises(UpstreamHTTPError) as caught:
        send(provider, provider.messages_request(request_of(), {}))
    assert provider.classify_error(caught.value) is kind
    answered, body = provider.error_answer(caught.value)
    assert answered == status
    assert json.loads(body) == {"type": "error", "error": {"type": error_type, "message": message}}


def test_the_free_probe_counts_tokens_on_the_first_model(vertex: FakeVertex) -> None:
    provider = provider_of(vertex_entry(vertex))
    result = health.probe_provider(ProviderClient(provider.config), provider, timeout=5)
    assert (result.reachable, result.auth_ok, result.models) == (True, True, (MODEL,))
    assert vertex.requests[-1].path.endswith("/models/count-tokens:rawPredict")


def test_a_probe_whose_token_cannot_be_had_reports_it_instead_of_raising(tmp_path: Path) -> None:
    provider = provider_of(vertex_entry(credentials_file=str(tmp_path / "missing.json")))
    result = health.probe_provider(ProviderClient(provider.config), provider, timeout=5)
    assert not result.usable and "could not be loaded" in result.error
