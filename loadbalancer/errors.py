"""The project's exception tree and the Anthropic error body.

Every failure a client can see is one of these types; `routes.py` has the single handler
that turns them into `{"type": "error", "error": {...}}` responses. `providers/http_client.py`
is the only place that converts `requests` exceptions into `UpstreamError`s (and a local
resource shortage into `LocalResourceExhausted`).
"""

from __future__ import annotations

from typing import Mapping

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Statuses a failed attempt moves on from; any other 4xx is the client's fault.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def error_type_for(status: int) -> str:
    """The Anthropic error type that goes with an HTTP status."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_body(error_type: str, message: str) -> dict:
    """An Anthropic-format error body."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


class LoadBalancerError(Exception):
    """An error answered to the client with `status` and an Anthropic error body."""

    status = 500
    code: str | None = None  # the OpenAI error code, for the OpenAI front doors

    def __init__(self, message: str, *, status: int | None = None,
                 error_type: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.error_type = error_type or error_type_for(self.status)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        """The JSON body of the answer."""
        return error_body(self.error_type, self.message)


class InvalidRequest(LoadBalancerError):
    """The request is malformed (400)."""

    status = 400


class AuthenticationFailed(LoadBalancerError):
    """No or wrong inbound API key (401)."""

    status = 401


class NotFound(LoadBalancerError):
    """No such endpoint (404)."""

    status = 404


class MethodNotAllowed(LoadBalancerError):
    """The endpoint exists but not for this method (405)."""

    status = 405


class RequestTooLarge(LoadBalancerError):
    """The body or headers exceed a configured limit (413)."""

    status = 413


class ClientTimeout(LoadBalancerError):
    """The client sent its request headers or body too slowly (408)."""

    status = 408


class RateLimited(LoadBalancerError):
    """A client key went over its requests-per-minute limit (429)."""

    status = 429


class NoProviderForModel(LoadBalancerError):
    """No configured provider serves the requested model (404, as Anthropic and OpenAI answer).

    Never a 5xx: the SDKs retry those, and no retry can make an unknown model known.
    """

    status = 404
    code = "model_not_found"


class AllProvidersFailed(LoadBalancerError):
    """Every eligible provider failed; the status is one the clients retry."""

    status = 529


class LocalResourceExhausted(LoadBalancerError):
    """The load balancer itself ran out of something (file descriptors, memory) while
    contacting a provider: its own fault, so no provider is blamed and the client may retry."""

    status = 503

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(
            f"the load balancer ran out of a local resource ({reason}) while connecting to provider "
            f"{provider}; this is the load balancer's fault, not the provider's; retry shortly",
            headers={"retry-after": "1"})
        self.provider = provider


class UpstreamError(Exception):
    """One attempt at one provider failed; `retryable` says whether to try the next."""

    retryable = True

    def __init__(self, provider: str, message: str, *, status: int | None = None,
                 body: bytes = b"", retry_after: float | None = None,
                 content_type: str | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.content_type = content_type

    @property
    def reason(self) -> str:
        """A short label for logs: the status, or the kind of network failure."""
        return str(self.status) if self.status is not None else self.kind

    kind = "error"


class UpstreamConnectError(UpstreamError):
    """The provider could not be reached (refused, DNS, TLS, connect timeout)."""

    kind = "connect_error"


class UpstreamTimeout(UpstreamError):
    """The provider accepted the connection but did not answer in time."""

    kind = "timeout"


class UpstreamStreamBroken(UpstreamError):
    """The provider's stream broke off or stalled."""

    kind = "stream_broken"


class UpstreamBadResponse(UpstreamError):
    """The provider answered 2xx with something that is not a valid answer."""

    kind = "bad_response"


class UpstreamCredentialsError(UpstreamError):
    """The load balancer could not get the credentials to sign or authorise a request
    (no AWS credentials found, a Google token refresh refused or unreachable)."""

    kind = "credentials_error"


class UpstreamHTTPError(UpstreamError):
    """The provider answered with an error status; `headers` are the answer's (some
    providers name the error in a header, e.g. AWS's x-amzn-ErrorType)."""

    kind = "http_error"

    def __init__(self, provider: str, message: str, *, headers: Mapping[str, str] | None = None,
                 **kwargs) -> None:
        super().__init__(provider, message, **kwargs)
        self.retryable = self.status in RETRYABLE_STATUSES
        self.headers = dict(headers or {})

    def header(self, name: str) -> str | None:
        """One header of the error answer, case-insensitively."""
        lowered = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == lowered), None)
