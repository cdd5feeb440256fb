"""`"type": "bedrock"`: configuration, requests as Bedrock takes them, SigV4 as AWS checks it.

The fake Bedrock (support/fake_bedrock.py) recomputes every signature with botocore from
the same credentials over the raw path it received, and refuses a wrong one; so these tests
fail when the load balancer signs the wrong thing, not only when it signs nothing.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.credentials import Credentials

import health
from config import ConfigError, parse_config
from loadbalancer.errors import UpstreamCredentialsError, UpstreamHTTPError
from loadbalancer.providers.base import FailureKind
from loadbalancer.providers.http_client import ProviderClient
from support.fake_bedrock import DEFAULT_CREDENTIALS, FakeBedrock, bedrock_error
from support.lb_process import REPO_ROOT
from support.provider_calls import BODY, provider_of, request_of, send

PROFILE_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
TEMPORARY = Credentials("ASIAFAKETEMPORARY", "temporary-secret-value", "session-token-value-123")


def bedrock_entry(url: str | None = None, credentials: Credentials = DEFAULT_CREDENTIALS, **overrides: Any) -> dict:
    """A providers.json entry for a bedrock provider with explicit keys."""
    entry = {"name": "bedrock", "type": "bedrock", "region": "us-east-1",
             "aws_access_key_id": credentials.access_key, "aws_secret_access_key": credentials.secret_key,
             "models": {"claude-sonnet-4-5": PROFILE_ID, "claude-arn": ARN}}
    if credentials.token:
        entry["aws_session_token"] = credentials.token
    if url is not None:
        entry["base_url"] = url
    return {**entry, **overrides}


@pytest.fixture
def bedrock() -> Iterator[FakeBedrock]:
    """A fake Bedrock that knows DEFAULT_CREDENTIALS."""
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """botocore's chain sees nothing of this machine's AWS setup: only files under tmp_path."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    return tmp_path


# --- configuration ----------------------------------------------------------------------

def test_the_endpoint_defaults_to_the_regions_bedrock_runtime() -> None:
    provider = provider_of(bedrock_entry(region="eu-central-1"))
    assert provider.config.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert provider.options.region == "eu-central-1"


def test_no_secret_in_the_repr_of_the_configuration() -> None:
    provider = provider_of(bedrock_entry(credentials=TEMPORARY))
    text = repr(provider.config)
    assert TEMPORARY.secret_key not in text and TEMPORARY.token not in text
    assert "us-east-1" in text


@pytest.mark.parametrize("change, path, fragment", [
    ({"region": None}, "providers[0].region", "required"),
    ({"region": "us east"}, "providers[0].region", "not a region"),
    ({"aws_secret_access_key": None}, "providers[0].aws_secret_access_key", "go together"),
    ({"api_key": "bedrock-api-key"}, "providers[0].aws_access_key_id", "one way"),
    ({"profile": "dev"}, "providers[0].aws_access_key_id", "one way"),
    ({"models": {"claude-*": "*"}}, "providers[0].models", "name at least one model"),
    ({"project": "p"}, "providers[0].project", "unknown key"),
    ({"betas": "context-1m"}, "providers[0].betas", "an array"),
    ({"count_tokens": "no"}, "providers[0].count_tokens", "true or false"),
])
def test_bad_keys_are_named_with_their_place(change: dict, path: str, fragment: str) -> None:
    entry = {key: value for key, value in {**bedrock_entry(), **change}.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [entry]}, "providers.json", {})
    assert caught.value.json_path == path and fragment in caught.value.problem


@pytest.mark.parametrize("environ, reason", [
    ({}, "AWS_SECRET is not set"),
    ({"AWS_SECRET": ""}, "AWS_SECRET is empty"),
])
def test_a_secret_from_an_unset_or_empty_variable_disables_the_provider(environ: dict, reason: str) -> None:
    entry = bedrock_entry(aws_secret_access_key="${AWS_SECRET}")
    (config,) = parse_config({"providers": [entry]}, "providers.json", environ).providers
    assert config.disabled_reason == f"environment variable {reason}"


def test_openai_keys_stay_unknown_to_other_types() -> None:
    entry = {"name": "a", "type": "anthropic", "base_url": "https://api.anthropic.com", "region": "us-east-1"}
    with pytest.raises(ConfigError, match="unknown key 'region'"):
        parse_config({"providers": [entry]}, "providers.json", {})


# --- what is sent -----------------------------------------------------------------------

@pytest.mark.parametrize("model, path", [
    ("claude-sonnet-4-5", "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"),
    ("claude-arn", "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile"
                   "%2Fabc123/invoke"),
])
def test_the_model_id_is_encoded_whole_into_the_path(bedrock: FakeBedrock, model: str, path: str) -> None:
    provider = provider_of(bedrock_entry(bedrock.url))
    send(provider, provider.messages_request(request_of({**BODY, "model": model}), {}))
    assert bedrock.requests[-1].path == path
    assert bedrock.rejections == []


def test_the_body_has_bedrocks_version_no_model_or_stream_and_the_betas(bedrock: FakeBedrock) -> None:
    provider = provider_of(bedrock_entry(bedrock.url))
    upstream = provider.messages_request(request_of({**BODY, "system": "be brief"}, stream=True),
                                         {"Anthropic-Beta": "context-1m-2025-08-07, interleaved-thinking-2025-05-14"})
    assert upstream.url.endswith("/invoke-with-response-stream")
    assert json.loads(upstream.body) == {"max_tokens": 16, "messages": BODY["messages"], "system": "be brief",
                                         "anthropic_version": "bedrock-2023-05-31",
                                         "anthropic_beta": ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]}
    assert upstream.headers["x-amzn-bedrock-accept"] == "application/json" and "accept" not in upstream.headers
    assert "anthropic-beta" not in {name.lower() for name in upstream.headers}


def test_betas_outside_the_providers_list_are_left_out(bedrock: FakeBedrock) -> None:
    bedrock.known_betas = frozenset({"context-1m-2025-08-07"})
    provider = provider_of(bedrock_entry(bedrock.url, betas=["context-1m-*"]))
    upstream = provider.messages_request(request_of(), {"anthropic-beta": "claude-code-20250219,context-1m-2025-08-07"})
    assert json.loads(upstream.body)["anthropic_beta"] == ["context-1m-2025-08-07"]
    send(provider, upstream)
    unfiltered = provider_of(bedrock_entry(bedrock.url))
    with pytest.raises(UpstreamHTTPError) as caught:
        send(unfiltered, unfiltered.messages_request(request_of(), {"anthropic-beta": "claude-code-20250219"}))
    assert unfiltered.classify_error(caught.value) is FailureKind.CLIENT
    assert unfiltered.error_answer(caught.value) == (400, json.dumps(
        {"type": "error", "error": {"type": "invalid_request_error", "message": "ValidationException: invalid beta flag"}},
        separators=(",", ":")).encode())


@pytest.mark.parametrize("credentials", [DEFAULT_CREDENTIALS, TEMPORARY], ids=["long-term", "temporary"])
def test_the_fake_accepts_the_signature_of_every_request(credentials: Credentials) -> None:
    with FakeBedrock(credentials=credentials) as fake:
        provider = provider_of(bedrock_entry(fake.url, credentials))
        send(provider, provider.messages_request(request_of(), {}))
        send(provider, provider.count_tokens_request(request_of(count_tokens=True), {}))
        assert fake.rejections == []
        assert fake.requests[0].headers["authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/")
        assert "/us-east-1/bedrock/aws4_request" in fake.requests[0].headers["authorization"]


@pytest.mark.parametrize("tamper", ["body", "path", "secret"])
def test_a_wrong_signature_is_refused_and_blames_the_credentials(bedrock: FakeBedrock, tamper: str) -> None:
    wrong = Credentials(DEFAULT_CREDENTIALS.access_key, "not-the-secret") if tamper == "secret" else DEFAULT_CREDENTIALS
    provider = provider_of(bedrock_entry(bedrock.url, wrong))
    upstream = provider.messages_request(request_of(), {})
    if tamper == "body":
        upstream = type(upstream)(upstream.url, upstream.headers, upstream.body.replace(b"hi", b"ho"))
    if tamper == "path":
        upstream = type(upstream)(upstream.url.replace("%3A0", "%3A1"), upstream.headers, upstream.body)
    with pytest.raises(UpstreamHTTPError) as caught:
        send(provider, upstream)
    assert caught.value.status == 403 and bedrock.rejections
    assert provider.classify_error(caught.value) is FailureKind.AUTH


def test_an_api_key_goes_as_a_bearer_token_without_signing() -> None:
    with FakeBedrock(api_key="bedrock-api-key-123") as fake:
        entry = {key: value for key, value in bedrock_entry(fake.url).items() if not key.startswith("aws_")}
        provider = provider_of({**entry, "api_key": "bedrock-api-key-123"})
        send(provider, provider.messages_request(request_of(), {}))
        headers = fake.requests[-1].headers
        assert headers["authorization"] == "Bearer bedrock-api-key-123" and "x-amz-date" not in headers
        assert "bedrock-api-key-123" in provider.secret_values()


def test_a_named_profile_from_the_shared_credentials_file_signs(bedrock: FakeBedrock,
                                                                no_aws_environment: Path) -> None:
    (no_aws_environment / "credentials").write_text(
        f"[lb]\naws_access_key_id = {DEFAULT_CREDENTIALS.access_key}\n"
        f"aws_secret_access_key = {DEFAULT_CREDENTIALS.secret_key}\n")
    entry = {key: value for key, value in bedrock_entry(bedrock.url, profile="lb").items()
             if not key.startswith("aws_")}
    provider = provider_of(entry)
    send(provider, provider.messages_request(request_of(), {}))
    assert bedrock.rejections == []
    assert DEFAULT_CREDENTIALS.secret_key in provider.secret_values()


def test_without_credentials_anywhere_the_attempt_fails_with_a_credentials_error(no_aws_environment: Path) -> None:
    entry = {key: value for key, value in bedrock_entry().items() if not key.startswith("aws_")}
    provider = provider_of(entry)
    with pytest.raises(UpstreamCredentialsError, match="no AWS credentials found"):
        provider.messages_request(request_of(), {})


def test_the_environment_chain_is_used_and_its_secret_is_known(bedrock: FakeBedrock, no_aws_environment: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEMPORARY.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEMPORARY.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TEMPORARY.token)
    bedrock.credentials = TEMPORARY
    provider = provider_of({key: value for key, value in bedrock_entry(bedrock.url).items()
                            if not key.startswith("aws_")})
    send(provider, provider.messages_request(request_of(), {}))
    assert bedrock.rejections == []
    assert {TEMPORARY.secret_key, TEMPORARY.token} <= set(provider.secret_values())


# --- counting, errors, probes -----------------------------------------------------------

def test_count_tokens_asks_the_bare_model_with_a_base64_invoke_body(bedrock: FakeBedrock) -> None:
    provider = provider_of(bedrock_entry(bedrock.url))
    thinking = {**BODY, "thinking": {"type": "enabled", "budget_tokens": 4000}}
    upstream = provider.count_tokens_request(request_of(thinking, count_tokens=True), {})
    assert "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens" in upstream.url
    inner = json.loads(base64.b64decode(json.loads(upstream.body)["input"]["invokeModel"]["body"]))
    assert inner["anthropic_version"] == "bedrock-2023-05-31" and inner["max_tokens"] > 4000
    assert "model" not in inner
    assert json.loads(provider.count_tokens_answer(send(provider, upstream))) == {"input_tokens": 42}


def test_count_tokens_can_be_left_to_the_estimate() -> None:
    assert provider_of(bedrock_entry()).counts_tokens
    assert not provider_of(bedrock_entry(count_tokens=False)).counts_tokens


@pytest.mark.parametrize("status, code, kind", [
    (429, "ThrottlingException", FailureKind.PROVIDER),
    (503, "ServiceUnavailableException", FailureKind.PROVIDER),
    (429, "ModelNotReadyException", FailureKind.PROVIDER),
    (408, "ModelTimeoutException", FailureKind.PROVIDER),
    (400, "ValidationException", FailureKind.CLIENT),
    (403, "AccessDeniedException", FailureKind.AUTH),
    (403, "ExpiredTokenException", FailureKind.AUTH),
])
def test_errors_are_blamed_per_the_failover_policy(bedrock: FakeBedrock, status: int, code: str,
                                                   kind: FailureKind) -> None:
    bedrock.queue(bedrock_error(status, code, "details"))
    provider = provider_of(bedrock_entry(bedrock.url))
    with pytest.raises(UpstreamHTTPError) as caught:
        send(provider, provider.messages_request(request_of(), {}))
    assert provider.classify_error(caught.value) is kind
    answered_status, body = provider.error_answer(caught.value)
    assert answered_status == status and json.loads(body)["error"]["message"] == f"{code}: details"


def test_the_free_probe_counts_tokens_on_the_first_model(bedrock: FakeBedrock) -> None:
    provider = provider_of(bedrock_entry(bedrock.url))
    result = health.probe_provider(ProviderClient(provider.config), provider, timeout=5)
    assert (result.reachable, result.auth_ok, result.models) == (True, True, (PROFILE_ID,))
    assert bedrock.requests[-1].path.endswith("/count-tokens") and bedrock.rejections == []


def test_a_probe_with_refused_credentials_says_so() -> None:
    with FakeBedrock() as fake:
        provider = provider_of(bedrock_entry(fake.url, Credentials(DEFAULT_CREDENTIALS.access_key, "wrong")))
        result = health.probe_provider(ProviderClient(provider.config), provider, timeout=5)
    assert (result.reachable, result.auth_ok) == (True, False)


def test_without_a_cloud_provider_neither_botocore_nor_google_auth_is_imported(tmp_path: Path) -> None:
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps({"providers": [
        {"name": "a", "type": "anthropic", "base_url": "https://api.anthropic.com", "api_key": "k"}]}))
    script = ("import sys; from app import create_app; "
              f"create_app({{'PROVIDERS_FILE': {str(providers)!r}, 'DISABLE_CONFIG_WATCH': True}}); "
              "print(sorted(m for m in sys.modules if m.startswith(('botocore', 'google'))))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
