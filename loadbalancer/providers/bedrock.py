"""`"type": "bedrock"`: Claude on Amazon Bedrock (InvokeModel and its response stream).

The Messages body goes to `/model/{modelId}/invoke` (or `/invoke-with-response-stream`)
without `model` and `stream`, with `anthropic_version: bedrock-2023-05-31` and the client's
`anthropic-beta` header as the body's `anthropic_beta` list. Every request is signed with
SigV4 (`aws_signing`, service `bedrock`) unless the provider has a Bedrock API key, sent as
a bearer token. Answers are Anthropic messages; streams are AWS event streams unwrapped by
`bedrock_stream` into Anthropic events. Pure apart from signing: `http_client` sends.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote

import orjson

from loadbalancer.client_request import MessagesRequest
from loadbalancer.errors import UpstreamBadResponse, UpstreamHTTPError
from loadbalancer.providers.anthropic import decode_anthropic_message, tool_call_rewriter
from loadbalancer.providers.base import (FailureKind, MessageAnswer, Provider, UpstreamRequest,
                                         first_concrete_model)
from loadbalancer.providers.bedrock_stream import BedrockError, BedrockStreamPipeline, error_from_response
from loadbalancer.providers.cloud_shared import (PROBE_BODY, cloud_body, optional_text, parse_betas, parse_count_tokens, parse_region,
                                                 requested_betas, require_probe_model, with_max_tokens)
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.settings.validation import Location, expect_str

ANTHROPIC_VERSION = "bedrock-2023-05-31"
JSON = "application/json"
# A cross-region inference profile (us., eu., apac., global., ...) names a foundation model
# that CountTokens only accepts bare: it refuses profile ids with a ValidationException.
_PROFILE_PREFIX = re.compile(r"^[a-z]+(?:-[a-z]+)?\.(?=anthropic\.)")
_CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True)
class BedrockOptions:
    """A bedrock provider's own keys; secrets are left out of repr."""

    region: str
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    count_tokens: bool = True
    betas: tuple[str, ...] | None = None  # None: every anthropic-beta value is passed on


class BedrockProvider(Provider):
    """Claude models on Amazon Bedrock Runtime."""

    type_name = "bedrock"
    option_keys = ("region", "profile", *_CREDENTIAL_KEYS, "count_tokens", "betas")
    credential_keys = ("api_key", *_CREDENTIAL_KEYS)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.options: BedrockOptions = config.options
        self._signer = None
        if not config.api_key:
            from loadbalancer.providers.aws_signing import AwsSigner  # botocore only when it signs

            options = self.options
            self._signer = AwsSigner(config.name, options.region, access_key_id=options.access_key_id,
                                     secret_access_key=options.secret_access_key,
                                     session_token=options.session_token, profile=options.profile)

    @property
    def counts_tokens(self) -> bool:  # type: ignore[override]  # per provider, not per type
        """CountTokens unless the provider's models lack it (`count_tokens: false`)."""
        return self.options.count_tokens

    # --- configuration -------------------------------------------------------------------

    @classmethod
    def parse_options(cls, entry: Mapping[str, Any], where: Location) -> BedrockOptions:
        """region (required), profile, explicit AWS keys, count_tokens, betas."""
        # Presence, not value, decides: an empty ${VAR} disables the provider instead.
        keys = {name: expect_str(entry[name], where.key(name)).strip() if name in entry else None
                for name in _CREDENTIAL_KEYS}
        if ("aws_access_key_id" in entry) != ("aws_secret_access_key" in entry):
            raise where.key("aws_secret_access_key").error(
                "aws_access_key_id and aws_secret_access_key go together")
        if "aws_session_token" in entry and "aws_access_key_id" not in entry:
            raise where.key("aws_session_token").error("needs aws_access_key_id and aws_secret_access_key")
        ways = [name for name in ("api_key", "profile", "aws_access_key_id") if name in entry]
        if len(ways) > 1:
            raise where.key(ways[1]).error(f"choose one way to authenticate: {' or '.join(ways)}")
        require_probe_model(entry, where)
        return BedrockOptions(
            region=parse_region(entry, where), profile=optional_text(entry, where, "profile"),
            access_key_id=keys["aws_access_key_id"], secret_access_key=keys["aws_secret_access_key"],
            session_token=keys["aws_session_token"], count_tokens=parse_count_tokens(entry, where),
            betas=parse_betas(entry, where))

    @classmethod
    def default_base_url(cls, options: BedrockOptions) -> str:
        """Bedrock Runtime in the provider's region."""
        return f"https://bedrock-runtime.{options.region}.amazonaws.com"

    # --- requests ------------------------------------------------------------------------

    def model_url(self, model: str, operation: str) -> str:
        """`/model/{id}/{operation}`; the id is encoded whole, `:` and the `/` of ARNs included."""
        return f"{self.config.base_url}/model/{quote(model, safe='')}/{operation}"

    def messages_request(self, request: MessagesRequest,
                         client_headers: Mapping[str, str]) -> UpstreamRequest:
        """InvokeModel, or InvokeModelWithResponseStream for a stream, signed now."""
        model = self.config.model_for(request.model) or request.model
        operation = "invoke-with-response-stream" if request.stream else "invoke"
        body = orjson.dumps(self._body(request.body, client_headers))
        return self._signed(self.model_url(model, operation), body, stream=request.stream)

    def count_tokens_request(self, request: MessagesRequest,
                             client_headers: Mapping[str, str]) -> UpstreamRequest:
        """CountTokens with the InvokeModel body (base64, as the API takes a blob)."""
        return self._count_tokens(self.config.model_for(request.model) or request.model, request.body,
                                  client_headers)

    def _count_tokens(self, model: str, body: Mapping[str, Any],
                      client_headers: Mapping[str, str]) -> UpstreamRequest:
        """CountTokens of one Messages body on the bare foundation model."""
        invoke_body = orjson.dumps(with_max_tokens(self._body(body, client_headers)))
        wrapped = {"input": {"invokeModel": {"body": base64.b64encode(invoke_body).decode("ascii")}}}
        return self._signed(self.model_url(_PROFILE_PREFIX.sub("", model), "count-tokens"),
                            orjson.dumps(wrapped), stream=False)

    def _body(self, body: Mapping[str, Any], client_headers: Mapping[str, str]) -> dict:
        """The Messages body as Bedrock takes it: no model or stream; betas in the body."""
        shaped = cloud_body(body, ANTHROPIC_VERSION, dropped=("model", "stream"))
        betas = requested_betas(client_headers, self.options.betas)
        if betas:
            earlier = shaped.get("anthropic_beta")
            shaped["anthropic_beta"] = list(dict.fromkeys([*(earlier if isinstance(earlier, list) else []),
                                                           *betas]))
        return shaped

    def _signed(self, url: str, body: bytes | None, *, stream: bool, method: str = "POST") -> UpstreamRequest:
        """Headers for Bedrock, authorised with the API key or a fresh SigV4 signature."""
        headers = {"content-type": JSON, "accept-encoding": "identity" if stream else "gzip, deflate"}
        # The stream's answer is event-stream framing; what it carries is asked for here.
        headers["x-amzn-bedrock-accept" if stream else "accept"] = JSON
        headers.update(self.config.headers)
        if self._signer is None:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        else:
            headers = self._signer.sign(method, url, headers, body)
        return UpstreamRequest(url, headers, body, method=method)

    # --- answers -------------------------------------------------------------------------

    def decode_message(self, request: MessagesRequest, body: bytes,
                       upstream: UpstreamRequest) -> MessageAnswer:
        """InvokeModel answers with an Anthropic message."""
        return decode_anthropic_message(self.config, request, body)

    def stream_pipeline(self, request: MessagesRequest, upstream: UpstreamRequest) -> BedrockStreamPipeline:
        """The event stream unwrapped into Anthropic events, then handled as Anthropic's."""
        return BedrockStreamPipeline(self.name, tool_call_rewriter(self.config, request))

    def count_tokens_answer(self, body: bytes) -> bytes:
        """`{"inputTokens": N}` as Anthropic's `{"input_tokens": N}`."""
        try:
            count = orjson.loads(body).get("inputTokens")
        except (orjson.JSONDecodeError, AttributeError):
            count = None
        if isinstance(count, bool) or not isinstance(count, int):
            raise UpstreamBadResponse(self.name, "CountTokens answer has no inputTokens")
        return orjson.dumps({"input_tokens": count})

    # --- errors --------------------------------------------------------------------------

    def bedrock_error(self, err: UpstreamHTTPError) -> BedrockError:
        """The error answer read the way botocore reads it (x-amzn-ErrorType first)."""
        return error_from_response(err.status or 502, err.headers, err.body)

    def classify_error(self, err: UpstreamHTTPError) -> FailureKind:
        """Refused credentials or permissions, throttling and faults fail over; the rest is the client's."""
        error = self.bedrock_error(err)
        if error.refuses_credentials:
            return FailureKind.AUTH
        return FailureKind.PROVIDER if error.retryable else FailureKind.CLIENT

    def error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """Bedrock's `{"message"}` and error code as an Anthropic error."""
        return err.status or 502, orjson.dumps(self.bedrock_error(err).anthropic_body())

    secrets_change = True  # the credentials last used for signing may have been refreshed

    def secret_values(self) -> tuple[str, ...]:
        """The API key or the AWS secret key and session token in use, and header values."""
        explicit = (self.options.secret_access_key or "", self.options.session_token or "")
        signer = self._signer.secret_values() if self._signer is not None else ()
        return tuple(dict.fromkeys(value for value in (*super().secret_values(), *explicit, *signer) if value))

    # --- health --------------------------------------------------------------------------

    def probe_request(self, paid_model: str | None = None) -> UpstreamRequest:
        """CountTokens on the first configured model (free; needs bedrock:CountTokens), a signed
        GET of `health.path`, or with `paid_probe` a 1-token InvokeModel."""
        if paid_model is not None:
            body = orjson.dumps(self._body({**PROBE_BODY, "max_tokens": 1}, {}))
            return self._signed(self.model_url(paid_model, "invoke"), body, stream=False)
        if self.config.health_path:
            return self._signed(f"{self.config.base_url}{self.config.health_path}", None,
                                stream=False, method="GET")
        return self._count_tokens(first_concrete_model(self.config) or "", PROBE_BODY, {})

    def probe_models(self, body: bytes) -> tuple[str, ...]:
        """The model the probe counted tokens on."""
        model = first_concrete_model(self.config)
        return (model,) if model else ()

