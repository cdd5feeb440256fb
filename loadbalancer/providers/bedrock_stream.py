"""Bedrock's answers in Anthropic shapes: event-stream messages to events, errors to one record.

InvokeModelWithResponseStream sends AWS event-stream messages (see `aws_eventstream`):
- `:message-type: event`, `:event-type: chunk`: the payload is JSON `{"bytes": BASE64,
  "p": PADDING}`; BASE64 decodes to one Anthropic stream event exactly as the Messages API
  sends it (`message_stop` also carries `amazon-bedrock-invocationMetrics`, dropped here).
- `:message-type: exception`, `:exception-type: throttlingException` (etc.): the payload
  is `{"message": ...}`, and the stream is over.
- `:message-type: error`, with `:error-code` / `:error-message` headers: a generic failure.
Non-stream errors are HTTP statuses with `x-amzn-ErrorType: CodeName:namespace-url` and a
body `{"message": ...}` (sometimes `Message`, sometimes a `__type` field).

Pure: no network, no Flask. The statuses come from Bedrock's service model (botocore's
`bedrock-runtime/2023-09-30/service-2.json`), not from the event stream, which has none.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Mapping

import orjson

from loadbalancer.errors import UpstreamBadResponse, UpstreamStreamBroken, error_body, error_type_for
from loadbalancer.providers.aws_eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage
from loadbalancer.providers.stream_pipeline import AnthropicStreamPipeline, OutFrame, UpstreamErrorEvent
from loadbalancer.sse import SSEFrame
from loadbalancer.toolcalls.rewrite import ToolCallStreamRewriter

CHUNK_EVENT_TYPE = "chunk"
INVOCATION_METRICS_KEY = "amazon-bedrock-invocationMetrics"
ERROR_TYPE_HEADER = "x-amzn-errortype"
GENERIC_ERROR_STATUS = 500
_EVENT_TYPE = re.compile(r"^[a-z_]{1,64}$")  # an event type goes into an SSE line as it is

STATUS_BY_ERROR_CODE = {
    "validationException": 400,
    "serviceQuotaExceededException": 400,
    "incompleteSignatureException": 400,
    "accessDeniedException": 403,
    "unrecognizedClientException": 403,
    "invalidSignatureException": 403,
    "expiredTokenException": 403,
    "missingAuthenticationTokenException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "modelStreamErrorException": 424,
    "modelErrorException": 424,
    "throttlingException": 429,
    "modelNotReadyException": 429,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}
# Worth trying elsewhere: capacity, transient faults, a model that failed. serviceQuotaExceeded
# is a 400 but means "this account is out of quota", not "this request is wrong".
RETRYABLE_ERROR_CODES = frozenset({
    "throttlingException", "modelNotReadyException", "serviceQuotaExceededException",
    "internalServerException", "serviceUnavailableException", "modelTimeoutException",
    "modelStreamErrorException", "modelErrorException",
})
# AWS refused the load balancer's own credentials or their permissions: not the client's fault.
AUTH_ERROR_CODES = frozenset({
    "accessDeniedException", "unrecognizedClientException", "invalidSignatureException",
    "expiredTokenException", "missingAuthenticationTokenException", "incompleteSignatureException",
})
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Where the Anthropic error type differs from what the HTTP status alone would say.
_ANTHROPIC_TYPE_BY_CODE = {"serviceQuotaExceededException": "rate_limit_error",
                           "modelStreamErrorException": "api_error", "modelErrorException": "api_error"}


class MalformedChunk(EventStreamError):
    """A chunk message whose payload is not `{"bytes": base64 of an event}`."""


@dataclass(frozen=True, slots=True)
class BedrockError:
    """A Bedrock failure: its code (lowerCamel), message, HTTP status, and whom it blames."""

    code: str
    message: str
    status: int
    retryable: bool
    refuses_credentials: bool

    @property
    def anthropic_type(self) -> str:
        """The Anthropic error type a client should see."""
        return _ANTHROPIC_TYPE_BY_CODE.get(self.code) or error_type_for(self.status)

    def anthropic_body(self) -> dict:
        """The Anthropic error body (and `error` stream event) for this failure."""
        name = self.code[:1].upper() + self.code[1:]
        return error_body(self.anthropic_type, f"{name}: {self.message}" if self.message else name)


def normalize_error_code(raw: str) -> str:
    """`ThrottlingException:http://...` or `ns#ThrottlingException` -> `throttlingException`."""
    code = raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return code[:1].lower() + code[1:]


def bedrock_error(raw_code: str, message: str, status: int | None = None) -> BedrockError:
    """A BedrockError for a code, its status from the service model unless one is given."""
    code = normalize_error_code(raw_code)
    known = code in STATUS_BY_ERROR_CODE
    if status is None:
        status = STATUS_BY_ERROR_CODE.get(code, GENERIC_ERROR_STATUS)
    retryable = code in RETRYABLE_ERROR_CODES or (not known and status in RETRYABLE_STATUSES)
    refuses = code in AUTH_ERROR_CODES or (not known and status in (401, 403))
    return BedrockError(code, message, status, retryable, refuses)


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> BedrockError:
    """A non-stream HTTP error answer (status, headers, body) as a BedrockError."""
    lowered = {name.lower(): value for name, value in headers.items()}
    parsed = _json_object(body)
    raw_code = (lowered.get(ERROR_TYPE_HEADER) or str(parsed.get("__type") or parsed.get("code") or "")
                or f"http{status}")
    message = str(parsed.get("message", parsed.get("Message", "")))
    message = message or body[:300].decode("utf-8", "replace").strip()
    return bedrock_error(raw_code, message, status=status)


def decode_stream_message(message: EventStreamMessage) -> bytes | BedrockError | None:
    """The Anthropic event JSON a message carries, the failure it reports, or None to skip it.

    :raises MalformedChunk: a chunk whose payload is not `{"bytes": base64}`.
    """
    if message.message_type == "exception":
        return bedrock_error(message.exception_type or "unknownException",
                             _payload_message(message.payload))
    if message.message_type == "error":
        return bedrock_error(str(message.headers.get(":error-code", "internalServerException")),
                             str(message.headers.get(":error-message", "")))
    if message.event_type != CHUNK_EVENT_TYPE:
        return None
    try:
        return base64.b64decode(_json_object(message.payload)["bytes"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise MalformedChunk(f"chunk payload is not {{\"bytes\": base64}}: {message.payload[:80]!r}") from err


def _payload_message(payload: bytes) -> str:
    """The `message` (or `Message`) of an exception payload, or its text."""
    parsed = _json_object(payload)
    if parsed:
        return str(parsed.get("message", parsed.get("Message", "")))
    return payload[:300].decode("utf-8", "replace")


def _json_object(body: bytes) -> dict:
    """The body as a JSON object, or {} when it is not one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class BedrockStreamException(UpstreamErrorEvent):
    """Bedrock ended its stream with an exception message (throttlingException, ...)."""

    def __init__(self, provider: str, error: BedrockError) -> None:
        super().__init__(provider, error.anthropic_body()["error"], b"")
        self.retryable = error.retryable
        self.status = error.status


class BedrockStreamPipeline(AnthropicStreamPipeline):
    """A Bedrock event stream, unwrapped into the Anthropic events it carries and then handled
    exactly as an Anthropic provider's stream (first-content commit, tool-call rewriting)."""

    def __init__(self, provider: str, rewriter: ToolCallStreamRewriter | None = None) -> None:
        super().__init__(provider, rewriter)
        self._messages = EventStreamDecoder()
        self._failure: BedrockStreamException | None = None

    def feed(self, chunk: bytes) -> list[OutFrame]:
        """Frames for the client completed by this chunk of event-stream bytes.

        An exception message after events of the same chunk is raised on the next call, so
        the events before it reach the client before the stream is closed.
        """
        self._raise_failure()
        out: list[OutFrame] = []
        for item in self._decode(chunk):
            if isinstance(item, BedrockError):
                self._failure = BedrockStreamException(self.provider, item)
                break
            if item is not None:
                self._handle(self._as_frame(item), out)
        if not out:
            self._raise_failure()
        return out

    def end(self) -> list[OutFrame]:
        """The upstream ended: raises when it ended inside a message or before message_stop."""
        self._raise_failure()
        try:
            self._messages.finish()
        except EventStreamError as err:
            raise UpstreamStreamBroken(self.provider, f"event stream cut off: {err}") from err
        return super().end()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _decode(self, chunk: bytes) -> list[bytes | BedrockError | None]:
        """What each message completed by this chunk carries."""
        try:
            return [decode_stream_message(message) for message in self._messages.feed(chunk)]
        except EventStreamError as err:
            raise UpstreamBadResponse(self.provider, f"invalid event stream: {err}") from err

    def _as_frame(self, data: bytes) -> SSEFrame:
        """One carried event as the SSE frame an Anthropic provider would have sent."""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise UpstreamBadResponse(self.provider, "event-stream chunk is not JSON") from err
        event_type = event.get("type") if isinstance(event, dict) else None
        if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
            raise UpstreamBadResponse(self.provider, "event-stream chunk is not an Anthropic event")
        if INVOCATION_METRICS_KEY in event:
            # Bedrock's own accounting, not an Anthropic field: strict clients get the event clean.
            del event[INVOCATION_METRICS_KEY]
            data = orjson.dumps(event)
        name = event_type.encode()
        return SSEFrame(event_type, data, b"event: " + name + b"\ndata: " + data + b"\n\n")
