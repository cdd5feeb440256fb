"""`"type": "vertex"`: Claude on Google Vertex AI (rawPredict and streamRawPredict).

The Messages body goes to `.../publishers/anthropic/models/{model}:rawPredict` (or
`:streamRawPredict`) without `model`, with `anthropic_version: vertex-2023-10-16`; `stream`
stays in the body and `anthropic-beta` stays a header. Answers and streams are Anthropic's
own, so the Anthropic stream pipeline serves. Errors come Anthropic-shaped or Google-shaped
(`{"error": {"code", "message", "status"}}`, from streams wrapped in an array). Requests
carry a Google access token from `google_token`. Pure apart from that token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import orjson

from loadbalancer.client_request import MessagesRequest
from loadbalancer.errors import UpstreamHTTPError, error_body, error_type_for
from loadbalancer.providers.anthropic import decode_anthropic_message, tool_call_rewriter
from loadbalancer.providers.base import (FailureKind, MessageAnswer, Provider, UpstreamRequest,
                                         first_concrete_model)
from loadbalancer.providers.cloud_shared import (BETA_HEADER, PROBE_BODY, cloud_body, optional_text,
                                                 parse_betas, parse_region, requested_betas,
                                                 require_probe_model)
from loadbalancer.providers.stream_pipeline import AnthropicStreamPipeline
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.settings.validation import Location

ANTHROPIC_VERSION = "vertex-2023-10-16"
GLOBAL_REGION = "global"
JSON = "application/json"
COUNT_TOKENS_MODEL = "count-tokens"  # the literal model segment of Vertex's counting endpoint
ERROR_SNIPPET_LENGTH = 300
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]*$")  # ids, numbers and domain:project ids


@dataclass(frozen=True)
class VertexOptions:
    """A vertex provider's own keys (the key file is a path; its contents are never kept here)."""

    project: str
    region: str
    credentials_file: str | None = None  # None: Application Default Credentials
    betas: tuple[str, ...] | None = None  # None: every anthropic-beta value is passed on


class VertexProvider(Provider):
    """Claude models on Google Vertex AI."""

    type_name = "vertex"
    counts_tokens = True
    option_keys = ("project", "region", "credentials_file", "betas")
    credential_keys = ("credentials_file",)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        from loadbalancer.providers.google_token import GoogleTokenSource  # google-auth only when used

        self.options: VertexOptions = config.options
        self._tokens = GoogleTokenSource(config.name, self.options.credentials_file, config.timeout.connect)

    # --- configuration -------------------------------------------------------------------

    @classmethod
    def parse_options(cls, entry: Mapping[str, Any], where: Location) -> VertexOptions:
        """project and region (required), credentials_file (else ADC), betas."""
        if str(entry.get("api_key", "")).strip():
            raise where.key("api_key").error(
                "a vertex provider authenticates with credentials_file or Application Default Credentials")
        project = optional_text(entry, where, "project")
        if project is None or not _PROJECT.match(project):
            raise where.key("project").error(f"required: a Google Cloud project id, got {project!r}")
        require_probe_model(entry, where)
        return VertexOptions(project=project, region=parse_region(entry, where),
                             credentials_file=optional_text(entry, where, "credentials_file"),
                             betas=parse_betas(entry, where))

    @classmethod
    def default_base_url(cls, options: VertexOptions) -> str:
        """The regional endpoint, or the global one for region `global`."""
        if options.region == GLOBAL_REGION:
            return "https://aiplatform.googleapis.com"
        return f"https://{options.region}-aiplatform.googleapis.com"

    # --- requests ------------------------------------------------------------------------

    def model_url(self, model: str, method: str) -> str:
        """`{base}/v1/projects/P/locations/R/publishers/anthropic/models/{model}:{method}`."""
        options = self.options
        return (f"{self.config.base_url}/v1/projects/{options.project}/locations/{options.region}"
                f"/publishers/anthropic/models/{quote(model, safe='@')}:{method}")

    def messages_request(self, request: MessagesRequest,
                         client_headers: Mapping[str, str]) -> UpstreamRequest:
        """rawPredict, or streamRawPredict for a stream (which keeps `stream` in the body)."""
        model = self.config.model_for(request.model) or request.model
        body = cloud_body(request.body, ANTHROPIC_VERSION, dropped=("model",))
        method = "streamRawPredict" if request.stream else "rawPredict"
        return UpstreamRequest(self.model_url(model, method), self._headers(client_headers, request.stream),
                               orjson.dumps(body))

    def count_tokens_request(self, request: MessagesRequest,
                             client_headers: Mapping[str, str]) -> UpstreamRequest:
        """count-tokens:rawPredict, where the model stays in the body."""
        model = self.config.model_for(request.model) or request.model
        body = {**cloud_body(request.body, ANTHROPIC_VERSION, dropped=("stream",)), "model": model}
        return UpstreamRequest(self.model_url(COUNT_TOKENS_MODEL, "rawPredict"),
                               self._headers(client_headers, False), orjson.dumps(body))

    def _headers(self, client_headers: Mapping[str, str], stream: bool) -> dict[str, str]:
        """The access token, the betas let through, and the provider's own headers."""
        headers = {"content-type": JSON, "accept": "text/event-stream" if stream else JSON,
                   "accept-encoding": "identity" if stream else "gzip, deflate"}
        betas = requested_betas(client_headers, self.options.betas)
        if betas:
            headers[BETA_HEADER] = ",".join(betas)
        headers.update(self.config.headers)
        headers["authorization"] = f"Bearer {self._tokens.access_token()}"
        return headers

    # --- answers -------------------------------------------------------------------------

    def decode_message(self, request: MessagesRequest, body: bytes,
                       upstream: UpstreamRequest) -> MessageAnswer:
        """rawPredict answers with an Anthropic message."""
        return decode_anthropic_message(self.config, request, body)

    def stream_pipeline(self, request: MessagesRequest, upstream: UpstreamRequest) -> AnthropicStreamPipeline:
        """streamRawPredict sends Anthropic's own SSE stream."""
        return AnthropicStreamPipeline(self.name, tool_call_rewriter(self.config, request))

    # --- errors --------------------------------------------------------------------------

    def classify_error(self, err: UpstreamHTTPError) -> FailureKind:
        """A refused token or permission fails over; so do 429/5xx; the rest is the client's."""
        if err.status in (401, 403):
            return FailureKind.AUTH
        return FailureKind.PROVIDER if err.retryable else FailureKind.CLIENT

    def error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """An Anthropic error as it came; Google's error JSON turned into one."""
        status = err.status or 502
        return status, orjson.dumps(google_error_to_anthropic(self.name, status, err.body))

    secrets_change = True  # the access token is refreshed before it expires

    def secret_values(self) -> tuple[str, ...]:
        """The key file's secrets, the current access token, and header values."""
        return (*super().secret_values(), *self._tokens.secret_values())

    # --- health --------------------------------------------------------------------------

    def probe_request(self, paid_model: str | None = None) -> UpstreamRequest:
        """count-tokens on the first configured model (free), a GET of `health.path`, or with
        `paid_probe` a 1-token rawPredict."""
        if paid_model is not None:
            body = cloud_body({**PROBE_BODY, "max_tokens": 1}, ANTHROPIC_VERSION, dropped=())
            return UpstreamRequest(self.model_url(paid_model, "rawPredict"), self._headers({}, False),
                                   orjson.dumps(body))
        if self.config.health_path:
            return UpstreamRequest(f"{self.config.base_url}{self.config.health_path}",
                                   self._headers({}, False), None, method="GET")
        model = first_concrete_model(self.config) or ""
        body = {**cloud_body(PROBE_BODY, ANTHROPIC_VERSION, dropped=()), "model": model}
        return UpstreamRequest(self.model_url(COUNT_TOKENS_MODEL, "rawPredict"), self._headers({}, False),
                               orjson.dumps(body))

    def probe_models(self, body: bytes) -> tuple[str, ...]:
        """The model the probe counted tokens on."""
        model = first_concrete_model(self.config)
        return (model,) if model else ()


def google_error_to_anthropic(provider: str, status: int, body: bytes) -> dict:
    """An error body as Anthropic's: kept when it is one, else from Google's `error` object
    (also inside a JSON array, as streamRawPredict sends it), else wrapped."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and data.get("type") == "error" and isinstance(data.get("error"), dict):
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        state = str(error.get("status") or "").strip()
        message = str(error["message"])
        return error_body(error_type_for(status), f"{state}: {message}" if state else message)
    snippet = body[:ERROR_SNIPPET_LENGTH].decode("utf-8", "replace").strip()
    return error_body(error_type_for(status),
                      f"provider {provider} answered HTTP {status}" + (f": {snippet}" if snippet else ""))
