"""The provider interface: what every provider type implements, and the records it returns.

A provider type is one module with one `Provider` subclass, listed once in `registry`. The
failover loop, the health probe and the routes speak to every backend only through this
interface; none of them compares `provider.type`. A `Provider` is built once per configured
provider (and kept across reloads while its configuration is unchanged), so a type may keep
state of its own, such as a cached access token.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

import orjson

from loadbalancer.client_request import MessagesRequest
from loadbalancer.errors import UpstreamBadResponse, UpstreamHTTPError, error_body, error_type_for
from loadbalancer.request_record import AnswerUsage
from loadbalancer.sse import FrameTooLarge
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.settings.validation import Location
from loadbalancer.toolcalls.rewrite import ToolCallStats

if TYPE_CHECKING:
    from loadbalancer.providers.stream_pipeline import StreamPipeline
    from loadbalancer.translation.tool_names import ToolNameMap

MAX_MODELS_LISTED = 1000  # what a listing probe keeps: enough for OpenRouter's catalogue
# A provider answering these refused the load balancer's own credentials, never the client's.
AUTH_FAILURE_STATUSES = frozenset({401, 403})
# What decoding or translating an answer of unexpected shape raises (FrameTooLarge is a
# ValueError): each means the provider's answer is bad, not that the service is broken.
UNREADABLE_ANSWER_ERRORS = (AttributeError, TypeError, KeyError, ValueError, IndexError, RecursionError)
log = logging.getLogger("loadbalancer")


@dataclass(frozen=True)
class UpstreamRequest:
    """What to send to one provider for one attempt (or one probe)."""

    url: str
    headers: dict[str, str]
    body: bytes | None
    tool_names: ToolNameMap | None = None
    method: str = "POST"


@dataclass(frozen=True)
class MessageAnswer:
    """A complete (non-stream) answer in the Anthropic dialect."""

    body: bytes
    tool_call_stats: ToolCallStats
    usage: AnswerUsage  # tokens, cache use and stop reason, for the log line and metrics


class FailureKind(Enum):
    """What an error answer says about whom to blame, and so what the failover loop does."""

    CLIENT = "client"      # the request is wrong: the client gets the answer, no failover
    PROVIDER = "provider"  # the provider failed: cool it down and try the next one
    AUTH = "auth"          # the provider refused the load balancer's credentials: fail over


class Provider(ABC):
    """One configured backend of one provider type."""

    type_name: ClassVar[str]                      # the `type` in providers.json
    base_url_suffixes: ClassVar[tuple[str, ...]] = ()  # endpoint suffixes users paste; removed
    counts_tokens: ClassVar[bool] = False         # False: count_tokens is estimated locally
    secrets_change: ClassVar[bool] = False        # True: secret_values() differs over time (tokens)
    option_keys: ClassVar[tuple[str, ...]] = ()   # providers.json keys only this type has
    # Keys whose ${VAR} coming out empty disables the provider, as an unset one does.
    credential_keys: ClassVar[tuple[str, ...]] = ("api_key",)

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    # --- configuration -------------------------------------------------------------------

    @classmethod
    def parse_options(cls, entry: Mapping[str, Any], where: Location) -> Any:
        """The type's own keys of one providers.json entry (${VAR} already replaced), checked,
        as a frozen dataclass kept in `ProviderConfig.options`; None for types without any.

        :raises ConfigError: a key of this type is missing, malformed or contradicts another.
        """
        return None

    @classmethod
    def default_base_url(cls, options: Any) -> str | None:
        """The endpoint used when `base_url` is left out; None makes `base_url` required."""
        return None

    @property
    def name(self) -> str:
        """The provider's configured name."""
        return self.config.name

    # --- requests ------------------------------------------------------------------------

    @abstractmethod
    def messages_request(self, request: MessagesRequest,
                         client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The URL, headers and body of a Messages request (stream or not) at this provider."""

    def count_tokens_request(self, request: MessagesRequest,
                             client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The token-counting request; only types with `counts_tokens` implement it."""
        raise NotImplementedError(f"provider type {self.type_name} has no count_tokens endpoint")

    def count_tokens_answer(self, body: bytes) -> bytes:
        """A 2xx token-counting answer as Anthropic's `{"input_tokens": N}`."""
        return body

    def builds_body_for(self, model: str) -> bool:
        """Whether a Messages body for `model` is built whole here (translated or re-wrapped),
        rather than forwarded as the client's bytes; it decides only how the body is read."""
        return True

    def answers_in_client_dialect(self, request: MessagesRequest) -> bool:
        """Whether the provider's answer goes to the client as it is (no translation at all)."""
        return False

    # --- answers -------------------------------------------------------------------------

    @abstractmethod
    def decode_message(self, request: MessagesRequest, body: bytes,
                       upstream: UpstreamRequest) -> MessageAnswer:
        """A 2xx non-stream answer as an Anthropic message (text tool calls rewritten).

        :raises UpstreamBadResponse: the body is not a valid answer of this provider type.
        """

    @abstractmethod
    def stream_pipeline(self, request: MessagesRequest, upstream: UpstreamRequest) -> StreamPipeline:
        """The pipeline that turns this provider's stream into frames for the client."""

    # --- errors --------------------------------------------------------------------------

    def classify_error(self, err: UpstreamHTTPError) -> FailureKind:
        """Whom an error answer blames: the client's request (passed on), the provider's
        credentials or the provider itself (both fail over).

        A redirect is the provider's fault too: an API never redirects a well-formed request,
        and a client must never be sent elsewhere by a provider's answer.
        """
        if err.status in AUTH_FAILURE_STATUSES:
            return FailureKind.AUTH
        if err.retryable or (err.status is not None and err.status < 400):
            return FailureKind.PROVIDER
        return FailureKind.CLIENT

    def secret_values(self) -> tuple[str, ...]:
        """Every secret this provider holds (keys, header values, tokens), to be scrubbed from
        anything that leaves the service; types with credentials of their own add theirs."""
        values = [self.config.api_key or ""] + [value for _, value in self.config.headers]
        return tuple(value for value in values if value)

    @abstractmethod
    def error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """The status and Anthropic-format body that pass a provider's error on to the client."""

    def describe_error(self, err: UpstreamHTTPError) -> str:
        """A short description of an error answer for logs and all-failed errors."""
        _, body = self.safe_error_answer(err)
        try:
            message = str(orjson.loads(body)["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = ""
        return f"HTTP {err.status}" + (f" ({message[:200]})" if message else "")

    def safe_error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """`error_answer`, or a plain error of the same status when the body defeats it."""
        try:
            return self.error_answer(err)
        except UNREADABLE_ANSWER_ERRORS:
            status = err.status if err.status and err.status >= 400 else 502
            message = f"provider {self.name} answered HTTP {err.status} with a body that could not be read"
            return status, orjson.dumps(error_body(error_type_for(status), message))

    # --- health --------------------------------------------------------------------------

    @abstractmethod
    def probe_request(self, paid_model: str | None = None) -> UpstreamRequest:
        """A cheap health probe: the model listing, or a 1-token completion of `paid_model`."""

    def probe_models(self, body: bytes) -> tuple[str, ...]:
        """Model ids from the answer to a listing probe (`{"data": [{"id": ...}]}`)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ()
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return ()
        ids = [item.get("id") for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
        return tuple(ids[:MAX_MODELS_LISTED])


def decode_answer_object(provider: str, body: bytes) -> dict:
    """A 2xx body as a JSON object.

    :raises UpstreamBadResponse: it is not JSON, or not an object.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise UpstreamBadResponse(provider, "answered 2xx with a body that is not JSON") from err
    if not isinstance(data, dict):
        raise UpstreamBadResponse(provider, "answered 2xx with JSON that is not an object")
    return data


@contextmanager
def reading_answer_of(provider: str) -> Iterator[None]:
    """Anything unexpected while reading a provider's answer makes it a bad response (failover).

    Only the exception's type goes into the message: its text may quote the answer.
    """
    try:
        yield
    except FrameTooLarge as err:
        raise UpstreamBadResponse(provider, str(err)) from err
    except UNREADABLE_ANSWER_ERRORS as err:
        log.warning("provider %s sent an answer that could not be read", provider, exc_info=True)
        raise UpstreamBadResponse(provider, f"answer could not be read ({type(err).__name__})") from err


def first_concrete_model(config: ProviderConfig) -> str | None:
    """The first provider model name the configuration spells out (for probes); None if only globs."""
    for route in config.models:
        if not route.is_glob:
            return route.resolve(route.pattern)
        if route.target not in ("", "*"):
            return route.target
    return None


def paid_probe_body(model: str) -> bytes:
    """The smallest completion both dialects accept: one token, one short user turn."""
    return orjson.dumps({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]})


def int_or_zero(value: object) -> int:
    """A token count from a provider's usage object; 0 for anything that is not an int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
