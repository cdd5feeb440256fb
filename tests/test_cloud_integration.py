"""One Claude model from three capacity pools: Anthropic, Bedrock and Vertex, behind real gunicorn.

The anthropic SDK asks for `claude-sonnet-4-5`; an Anthropic fake, a fake Bedrock (SigV4
checked, event streams) and a fake Vertex (its own token endpoint) serve it, tried in that
order. Failures before the first content fail over between the clouds without the client
seeing them; afterwards the provider that answered is named in `x-lb-provider`. Every
secret (AWS secret key and session token, the service account's private key, the access
tokens Vertex issued, API keys) is looked for in everything the service lets out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import anthropic
import pytest
import requests
from botocore.credentials import Credentials

from support.fake_backend import COUNT_TOKENS_PATH, FakeBackend, anthropic_error, anthropic_stream
from support.fake_bedrock import FakeBedrock, bedrock_error, bedrock_stream
from support.fake_vertex import FakeVertex, google_error
from support.lb_process import TEST_TIMEOUT, LoadBalancerProcess, anthropic_provider, providers_config
from support.service_rig import CLIENT_TIMEOUT, anthropic_sdk, openai_sdk, provider_states, wait_until_rested
from support.sse_validation import check_anthropic_stream

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
AWS = Credentials("ASIAINTEGRATIONTEST", "integration-secret-key/abcdEXAMPLE", "integration-session-token-xyz")
MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Clouds:
    """The load balancer and its three pools."""

    lb: LoadBalancerProcess
    anthropic: FakeBackend
    bedrock: FakeBedrock
    vertex: FakeVertex
    key_file: Path

    def reset(self) -> None:
        """Wait out cooldowns; forget what each fake recorded."""
        wait_until_rested(self.lb)
        for fake in (self.anthropic, self.bedrock, self.vertex):
            fake.clear_requests()

    def secrets(self) -> list[str]:
        """Every secret the service holds, the tokens Vertex issued so far included."""
        private_key = json.loads(self.key_file.read_text())["private_key"]
        key_lines = [line for line in private_key.splitlines() if line and "PRIVATE KEY" not in line]
        return [AWS.secret_key, AWS.token, "sk-test-anthropic", private_key, *key_lines[:3],
                *self.vertex.issued]


@pytest.fixture(scope="module")
def clouds_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    """anthropic (priority 1) → bedrock (2) → vertex (3), all serving claude-sonnet-4-5."""
    anthropic_fake, bedrock, vertex = FakeBackend().start(), FakeBedrock(credentials=AWS).start(), FakeVertex().start()
    workdir = tmp_path_factory.mktemp("clouds")
    key_file = vertex.write_key_file(workdir)
    config = providers_config(
        anthropic_provider("anthropic", anthropic_fake.url, priority=1, models={MODEL: "*"}),
        {"name": "bedrock", "type": "bedrock", "region": "us-east-1", "base_url": bedrock.url, "priority": 2,
         "aws_access_key_id": "${TEST_AWS_KEY_ID}", "aws_secret_access_key": "${TEST_AWS_SECRET}",
         "aws_session_token": "${TEST_AWS_TOKEN}", "models": {MODEL: BEDROCK_MODEL}, "timeout": TEST_TIMEOUT},
        {"name": "vertex", "type": "vertex", "project": vertex.project, "region": vertex.region,
         "base_url": vertex.url, "credentials_file": str(key_file), "priority": 3,
         "models": {MODEL: VERTEX_MODEL}, "timeout": TEST_TIMEOUT},
        routing={"affinity": False, "cooldown": 0.1, "max_cooldown": 0.3, "wait_for_cooldown": 0})
    env = {"TEST_AWS_KEY_ID": AWS.access_key, "TEST_AWS_SECRET": AWS.secret_key, "TEST_AWS_TOKEN": AWS.token}
    lb = LoadBalancerProcess(config, env=env, workdir=workdir / "lb").start()
    yield Clouds(lb, anthropic_fake, bedrock, vertex, key_file)
    lb.stop()
    for fake in (anthropic_fake, bedrock, vertex):
        fake.stop()


@pytest.fixture
def clouds(clouds_rig: Clouds) -> Clouds:
    """The rig with fresh recordings and nothing cooling down."""
    clouds_rig.reset()
    return clouds_rig


def sdk_message(clouds: Clouds) -> Any:
    """One non-stream message through the anthropic SDK, with the raw response for its headers."""
    raw = anthropic_sdk(clouds.lb).messages.with_raw_response.create(model=MODEL, max_tokens=32, messages=MESSAGES)
    return raw.headers.get("x-lb-provider"), raw.parse()


def sdk_stream(clouds: Clouds) -> tuple[str | None, str]:
    """One streamed message through the anthropic SDK: the provider and the text."""
    client = anthropic_sdk(clouds.lb)
    with client.messages.with_streaming_response.create(model=MODEL, max_tokens=32, messages=MESSAGES,
                                                        stream=True) as response:
        provider = response.headers.get("x-lb-provider")
        stream = check_anthropic_stream(response.read())
    return provider, stream.text


# --- failover between the pools ---------------------------------------------------------

def test_non_stream_fails_over_anthropic_then_bedrock_to_vertex_invisibly(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_error(429, "ThrottlingException", "Too many requests"))
    provider, message = sdk_message(clouds)
    assert provider == "vertex" and message.content[0].text == "Hello" and message.model == VERTEX_MODEL
    assert [len(clouds.anthropic.requests), len(clouds.bedrock.requests)] == [1, 1]


def test_non_stream_from_bedrock_when_anthropic_is_overloaded(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    provider, message = sdk_message(clouds)
    assert provider == "bedrock" and message.content[0].text == "Hello"
    assert clouds.bedrock.rejections == [] and clouds.bedrock.requests[-1].path.endswith("%3A0/invoke")


def test_stream_fails_over_before_first_content_through_every_pool(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_stream(break_after=1))  # message_start, then the connection drops
    clouds.bedrock.queue(bedrock_stream(exception_after=1, exception="throttlingException"))
    provider, text = sdk_stream(clouds)
    assert (provider, text) == ("vertex", "Hello")
    assert len(clouds.bedrock.requests) == 1 and clouds.bedrock.rejections == []


def test_a_bedrock_stream_reaches_the_sdk_as_an_anthropic_stream(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(503))
    clouds.bedrock.queue(bedrock_stream(("Hel", "lo", " from", " Bedrock"), frames_per_chunk=3))
    provider, text = sdk_stream(clouds)
    assert (provider, text) == ("bedrock", "Hello from Bedrock")


def test_an_openai_client_streams_from_bedrock_and_vertex(clouds: Clouds) -> None:
    for pool in ("bedrock", "vertex"):
        clouds.reset()
        clouds.anthropic.queue(anthropic_error(529))
        if pool == "vertex":
            clouds.bedrock.queue(bedrock_stream(exception_after=0, exception="serviceUnavailableException"))
        raw = openai_sdk(clouds.lb).chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES,
                                                                              stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
        assert (raw.headers["x-lb-provider"], text) == (pool, "Hello")


def test_a_bedrock_exception_after_content_ends_the_stream_cleanly(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_stream(("one", "two", "three"), exception_after=5,
                                        exception="modelStreamErrorException"))
    response = requests.post(clouds.lb.url + "/v1/messages", timeout=CLIENT_TIMEOUT, json={
        "model": MODEL, "max_tokens": 32, "messages": MESSAGES, "stream": True})
    stream = check_anthropic_stream(response.content, allow_error=True)
    assert stream.text == "onetwo" and stream.error["type"] == "api_error"
    assert "ModelStreamErrorException" in stream.error["message"]
    assert [event["type"] for event in stream.events[-2:]] == ["content_block_stop", "error"]


def test_a_validation_error_from_bedrock_is_the_clients_and_not_retried(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_error(400, "ValidationException", "messages: text content blocks must be non-empty"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk_message(clouds)
    assert caught.value.body["error"] == {"type": "invalid_request_error",
                                          "message": "ValidationException: messages: text content blocks must be non-empty"}
    assert [request for request in clouds.vertex.requests if ":" in request.path] == []


def test_refused_aws_credentials_fail_over_to_vertex(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_error(403, "AccessDeniedException", "not authorized to perform bedrock:InvokeModel"))
    provider, _ = sdk_message(clouds)
    assert provider == "vertex"
    assert "403" in provider_states(clouds.lb)["bedrock"]["last_error"]


def test_a_vertex_quota_error_fails_over_back_to_an_earlier_pool(clouds_rig: Clouds) -> None:
    clouds = clouds_rig
    clouds.reset()
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_error(503, "ServiceUnavailableException"))
    clouds.vertex.queue(google_error(429, "Quota exceeded", wrapped=True))
    response = requests.post(clouds.lb.url + "/v1/messages", timeout=CLIENT_TIMEOUT,
                             json={"model": MODEL, "max_tokens": 8, "messages": MESSAGES})
    assert response.status_code == 429 and response.headers["retry-after"]
    message = response.json()["error"]["message"]
    assert "bedrock: HTTP 503" in message and "vertex: HTTP 429 (RESOURCE_EXHAUSTED: Quota exceeded)" in message


def test_count_tokens_through_bedrock_count_tokens(clouds: Clouds) -> None:
    clouds.anthropic.queue_for(COUNT_TOKENS_PATH, anthropic_error(529))
    counted = anthropic_sdk(clouds.lb).messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens == 42
    assert clouds.bedrock.requests[-1].path == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"


# --- what operations see ----------------------------------------------------------------

def test_health_metrics_and_status_show_the_cloud_providers_like_any_other(clouds: Clouds) -> None:
    clouds.anthropic.queue(anthropic_error(529))
    sdk_message(clouds)
    report = requests.get(clouds.lb.url + "/health?probe=1", timeout=CLIENT_TIMEOUT).json()
    entries = {entry["name"]: entry for entry in report["providers"]}
    assert {name: entry["type"] for name, entry in entries.items()} == {
        "anthropic": "anthropic", "bedrock": "bedrock", "vertex": "vertex"}
    assert entries["bedrock"]["probe"]["models"] == [BEDROCK_MODEL] and entries["bedrock"]["probe"]["auth_ok"]
    assert entries["vertex"]["probe"]["models"] == [VERTEX_MODEL] and entries["vertex"]["probe"]["auth_ok"]
    assert entries["bedrock"]["host"] == "127.0.0.1"
    metrics = requests.get(clouds.lb.url + "/metrics", timeout=CLIENT_TIMEOUT).text
    assert 'provider="bedrock"' in metrics and 'provider="vertex"' in metrics
    status = requests.get(clouds.lb.url + "/status.json", timeout=CLIENT_TIMEOUT).json()
    assert {provider["name"] for provider in status["providers"]} == {"anthropic", "bedrock", "vertex"}


def test_no_secret_appears_in_answers_logs_health_metrics_or_status(clouds: Clouds) -> None:
    exposed = []
    clouds.anthropic.queue(anthropic_error(529))
    clouds.bedrock.queue(bedrock_error(403, "UnrecognizedClientException", "The security token is invalid"))
    exposed.append(requests.post(clouds.lb.url + "/v1/messages", timeout=CLIENT_TIMEOUT, json={
        "model": MODEL, "max_tokens": 8, "messages": MESSAGES}).text)
    clouds.reset()
    clouds.anthropic.queue(anthropic_error(529))
    exposed.append(requests.post(clouds.lb.url + "/v1/messages", timeout=CLIENT_TIMEOUT, json={
        "model": MODEL, "max_tokens": 8, "messages": MESSAGES, "stream": True}).text)
    for path in ("/health?probe=1", "/health", "/metrics", "/status.json", "/"):
        exposed.append(requests.get(clouds.lb.url + path, timeout=CLIENT_TIMEOUT).text)
    exposed.append(clouds.lb.log_text())
    assert clouds.vertex.issued, "the vertex provider was never asked for a token"
    everything = "\n".join(exposed)
    leaked = [secret[:12] for secret in clouds.secrets() if secret in everything]
    assert leaked == []
