"""A fake Google Vertex AI (Claude's rawPredict endpoints) with its own OAuth token endpoint.

`/token` is the service account's `token_uri`: it verifies the RS256-signed JWT-bearer
assertion with the key's public half (issuer, audience, scope, lifetime) and issues an access
token. The model endpoints accept only a token it issued and that has not expired, check the
project, region and body as Vertex does (anthropic_version, no model, stream on
streamRawPredict), and answer in Anthropic's dialect; errors come in Google's JSON.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fake_backend import MESSAGES_QUEUE, Exchange, FakeBackend, RecordedRequest
from .fake_behaviours import AnthropicMessage, AnthropicStream, Behaviour, CountTokens
from .google_token_endpoint import (DEFAULT_CLIENT_EMAIL, GOOGLE_TOKEN_AUDIENCE, TOKEN_LIFETIME_SECONDS,
                                    answer_token_request, generate_test_key, public_key_pem,
                                    service_account_info, write_service_account_file)

ANTHROPIC_VERSION = "vertex-2023-10-16"
TOKEN_PATH = "/token"
COUNT_TOKENS_QUEUE = "count-tokens"
_MODEL_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
                         r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<method>rawPredict|streamRawPredict)$")
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def google_error(code: int, message: str = "fake vertex error", *, wrapped: bool = False) -> Behaviour:
    """Google's error JSON (`[{...}]` as streamRawPredict sends it when `wrapped`)."""
    def answer(exchange: Exchange) -> None:
        error = {"error": {"code": code, "message": message, "status": GOOGLE_STATUS.get(code, "UNKNOWN")}}
        exchange.send_json(code, [error] if wrapped else error)
    return answer


def model_call(path: str) -> tuple[str, str, str, str] | None:
    """(project, region, model, method) of a Vertex model path, or None."""
    match = _MODEL_PATH.match(path)
    return (match["project"], match["region"], match["model"], match["method"]) if match else None


@dataclass(frozen=True)
class VertexAutoReply:
    """The default: Anthropic's stream or message, the model taken from the path."""

    def __call__(self, exchange: Exchange) -> None:
        _, _, model, method = model_call(exchange.request.path)
        (AnthropicStream(model=model) if method == "streamRawPredict" else AnthropicMessage(model=model))(exchange)


class FakeVertex(FakeBackend):
    """Vertex AI for one project and region, and the token endpoint of its service account."""

    def __init__(self, project: str = "test-project", region: str = "us-east5", input_tokens: int = 42) -> None:
        super().__init__(dialect="anthropic", models=())
        self.project = project
        self.region = region
        self.key = generate_test_key()
        self.token_lifetimes: list[int] = []  # expires_in of the next tokens issued (then the default)
        self.issued: dict[str, float] = {}  # access token -> when it expires
        self.tokens_used: list[str] = []
        self.grants = 0
        self.token_delay = 0.0  # seconds the token endpoint takes to answer
        self._token_lock = threading.Lock()
        self.default = VertexAutoReply()
        self._path_defaults = {COUNT_TOKENS_QUEUE: CountTokens(input_tokens)}

    def write_key_file(self, directory: Path) -> Path:
        """A service-account key file whose token_uri is this fake's /token."""
        info = service_account_info(self.key, f"{self.url}{TOKEN_PATH}", project_id=self.project)
        return write_service_account_file(directory / "service-account.json", info)

    def queue_count_tokens(self, *behaviours: Behaviour) -> None:
        """Answer the next count-tokens requests with these."""
        self.queue_for(COUNT_TOKENS_QUEUE, *behaviours)

    def expire_tokens(self) -> None:
        """Make every token issued so far expired, as if its hour had passed."""
        with self._token_lock:
            self.issued = dict.fromkeys(self.issued, 0.0)

    @staticmethod
    def _queue_key(path: str) -> str:
        found = model_call(path)
        if found is None:
            return path
        return COUNT_TOKENS_QUEUE if found[2] == "count-tokens" else MESSAGES_QUEUE

    def _record_and_pick(self, request: RecordedRequest) -> Behaviour:
        if request.path == TOKEN_PATH:
            self._record(request)
            return self._answer_token_request
        refusal = self._refusal(request)
        if refusal is None:
            return super()._record_and_pick(request)
        self._record(request)
        return google_error(*refusal)

    def _answer_token_request(self, exchange: Exchange) -> None:
        request = exchange.request
        exchange.wait(self.token_delay)
        with self._token_lock:
            lifetime = self.token_lifetimes.pop(0) if self.token_lifetimes else TOKEN_LIFETIME_SECONDS
            token = f"ya29.fake-{secrets.token_urlsafe(16)}"
            answer = answer_token_request(request.headers.get("content-type", ""), request.body,
                                          public_key_pem(self.key), issuer=DEFAULT_CLIENT_EMAIL,
                                          audiences=(GOOGLE_TOKEN_AUDIENCE, f"{self.url}{TOKEN_PATH}"),
                                          access_token=token)
            if answer.status == 200:
                self.grants += 1
                self.issued[token] = time.time() + lifetime
                answer.body["expires_in"] = lifetime
        exchange.send_json(answer.status, answer.body)

    def _refusal(self, request: RecordedRequest) -> tuple[int, str] | None:
        """(status, message) for a request Vertex would refuse, or None."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        with self._token_lock:
            expires_at = self.issued.get(token.strip()) if scheme.lower() == "bearer" else None
            self.tokens_used.append(token.strip())
        if expires_at is None or expires_at <= time.time():
            return 401, ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
                         "login cookie or other valid authentication credential.")
        found = model_call(request.path)
        if found is None:
            return 404, f"The requested URL {request.path} was not found on this server."
        project, region, model, method = found
        if (project, region) != (self.project, self.region):
            return 403, f"Permission denied on resource project {project} in {region}."
        problem = body_problem(request.json, model, method)
        return (400, problem) if problem else None


def body_problem(body: Any, model: str, method: str) -> str:
    """What Vertex would refuse in a rawPredict body, or ''."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    if body.get("anthropic_version") != ANTHROPIC_VERSION:
        return f"anthropic_version: must be {ANTHROPIC_VERSION}"
    if model == "count-tokens":
        return "" if isinstance(body.get("model"), str) else "model: required for count-tokens"
    if "model" in body:
        return "model: Extra inputs are not permitted (the model is in the URL)"
    if (method == "streamRawPredict") != (body.get("stream") is True):
        return f"{method} needs stream {'true' if method == 'streamRawPredict' else 'absent or false'}"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    return ""
