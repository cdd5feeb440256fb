"""A fake Amazon Bedrock Runtime on 127.0.0.1 that checks what the real service checks.

Every request must carry a SigV4 signature that botocore, recomputing it from the same
credentials over the raw path as received, agrees with (or the provider's API key as a
bearer token); a wrong one is refused with 403 InvalidSignatureException, as AWS does. Bodies
are checked like Bedrock checks them (anthropic_version, no model, no stream). Streams are
real AWS event-stream frames with valid CRCs carrying base64 Anthropic events, and may end
with an exception message.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import unquote

from botocore.credentials import Credentials

from loadbalancer.providers.aws_eventstream import encode_message

from .fake_backend import MESSAGES_QUEUE, Exchange, FakeBackend, RecordedRequest
from .fake_behaviours import AnthropicMessage, AnthropicStream, Behaviour
from .sigv4_verify import bearer_token_matches, incoming_request, verify_signature

ANTHROPIC_VERSION = "bedrock-2023-05-31"
COUNT_TOKENS_QUEUE = "count-tokens"
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"
_MODEL_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<operation>invoke|invoke-with-response-stream|count-tokens)$")
_PROFILE_ID = re.compile(r"^[a-z]+(-[a-z]+)?\.anthropic\.")
DEFAULT_CREDENTIALS = Credentials("AKIDFAKEBEDROCK", "fake-bedrock-secret-key/EXAMPLEKEY")


def model_operation(path: str) -> tuple[str, str] | None:
    """(model id decoded, operation) of a Bedrock path, or None."""
    match = _MODEL_PATH.match(path)
    return (unquote(match["model"]), match["operation"]) if match else None


def encode_chunk(event: dict, padding: str = "abcdefgh") -> bytes:
    """A `chunk` frame carrying one Anthropic event, as Bedrock sends it."""
    envelope = {"bytes": base64.b64encode(json.dumps(event).encode()).decode("ascii"), "p": padding}
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(envelope).encode())


def encode_exception(exception_type: str, message: str) -> bytes:
    """An in-stream exception frame, e.g. `throttlingException`."""
    headers = {":exception-type": exception_type, ":content-type": "application/json",
               ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def bedrock_error(status: int, code: str, message: str = "fake bedrock error") -> Behaviour:
    """A Bedrock error answer: the code in x-amzn-ErrorType, `{"message"}` in the body."""
    def answer(exchange: Exchange) -> None:
        headers = [("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                   ("x-amzn-RequestId", "fake-request-id")]
        exchange.send_json(status, {"message": message}, headers)
    return answer


@dataclass(frozen=True)
class BedrockMessage:
    """A 200 InvokeModel answer (an Anthropic message; the model comes from the path)."""

    message: AnthropicMessage = field(default_factory=AnthropicMessage)

    def __call__(self, exchange: Exchange) -> None:
        model = model_operation(exchange.request.path)[0]
        body = self.message.build(model)
        exchange.send_json(200, {**body, "id": body["id"].replace("msg_", "msg_bdrk_")})


@dataclass(frozen=True)
class BedrockStream:
    """A 200 InvokeModelWithResponseStream answer: one event-stream frame per Anthropic event.

    exception_after=N: after N events send `exception` (an `:exception-type`) and end;
    break_after=N: close the connection after N frames; frames_per_chunk: frames written together.
    """

    stream: AnthropicStream = field(default_factory=AnthropicStream)
    exception_after: int | None = None
    exception: str = "throttlingException"
    break_after: int | None = None
    frames_per_chunk: int = 1

    def __call__(self, exchange: Exchange) -> None:
        events = self.stream.events(model_operation(exchange.request.path)[0])
        events[-1] = {**events[-1], "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 10, "outputTokenCount": 5, "invocationLatency": 12, "firstByteLatency": 3}}
        frames = [encode_chunk(event) for event in events]
        if self.exception_after is not None:
            frames = frames[:self.exception_after] + [encode_exception(self.exception, "fake in-stream failure")]
        self._play(exchange, frames[:self.break_after] if self.break_after is not None else frames)

    def _play(self, exchange: Exchange, frames: Sequence[bytes]) -> None:
        exchange.start_stream(200, EVENT_STREAM_TYPE, [("X-Amzn-Bedrock-Content-Type", "application/json")])
        for start in range(0, len(frames), self.frames_per_chunk):
            if start and exchange.wait(self.stream.delay):
                return
            exchange.write_chunk(b"".join(frames[start:start + self.frames_per_chunk]))
        if self.break_after is not None:
            exchange.abort()
        else:
            exchange.end_stream()


def bedrock_stream(text_chunks: Sequence[str] = ("Hel", "lo"), **options: Any) -> BedrockStream:
    """A Bedrock stream of these text deltas; options are BedrockStream's fields and `delay`."""
    delay = options.pop("delay", 0.0)
    return BedrockStream(AnthropicStream(text_chunks=tuple(text_chunks), delay=delay), **options)


@dataclass(frozen=True)
class BedrockAutoReply:
    """The default: a stream or a message, as the path asks."""

    def __call__(self, exchange: Exchange) -> None:
        streaming = model_operation(exchange.request.path)[1] == "invoke-with-response-stream"
        (BedrockStream() if streaming else BedrockMessage())(exchange)


@dataclass(frozen=True)
class BedrockCountTokens:
    """CountTokens: `{"inputTokens": N}`; inference-profile ids are refused, as Bedrock does."""

    input_tokens: int = 42

    def __call__(self, exchange: Exchange) -> None:
        if _PROFILE_ID.match(model_operation(exchange.request.path)[0]):
            return bedrock_error(400, "ValidationException", "The provided model doesn't support counting tokens")(exchange)
        exchange.send_json(200, {"inputTokens": self.input_tokens})


class FakeBedrock(FakeBackend):
    """Bedrock Runtime: SigV4 (or API key) and body checks first, then scripted answers."""

    def __init__(self, credentials: Credentials = DEFAULT_CREDENTIALS, region: str = "us-east-1",
                 api_key: str | None = None, input_tokens: int = 42) -> None:
        super().__init__(dialect="anthropic", models=())
        self.credentials = credentials
        self.region = region
        self.api_key = api_key
        self.rejections: list[str] = []
        self.known_betas: frozenset[str] | None = None  # set: other anthropic_beta values are refused
        self.default = BedrockAutoReply()
        self._path_defaults = {COUNT_TOKENS_QUEUE: BedrockCountTokens(input_tokens)}

    def queue_count_tokens(self, *behaviours: Behaviour) -> None:
        """Answer the next CountTokens requests with these."""
        self.queue_for(COUNT_TOKENS_QUEUE, *behaviours)

    @staticmethod
    def _queue_key(path: str) -> str:
        found = model_operation(path)
        if found is None:
            return path
        return COUNT_TOKENS_QUEUE if found[1] == "count-tokens" else MESSAGES_QUEUE

    def _record_and_pick(self, request: RecordedRequest) -> Behaviour:
        refusal = self._refusal(request)
        if refusal is None:
            return super()._record_and_pick(request)
        self.rejections.append(refusal[2])
        self._record(request)
        return bedrock_error(*refusal)

    def _refusal(self, request: RecordedRequest) -> tuple[int, str, str] | None:
        """(status, code, message) for a request Bedrock would refuse, or None."""
        if self.api_key is not None:
            if not bearer_token_matches(request.headers.get("authorization"), self.api_key):
                return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
        else:
            verdict = verify_signature(incoming_request(request.method, request.path, request.query,
                                                        request.headers.items(), request.body),
                                       self.credentials, region=self.region)
            if not verdict:
                return 403, "InvalidSignatureException", f"The request signature we calculated does not match: {verdict.reason}"
        found = model_operation(request.path)
        if found is None:
            return 404, "UnknownOperationException", f"no operation at {request.path}"
        problem = body_problem(request.body, found[1], self.known_betas)
        return (400, "ValidationException", problem) if problem else None


def body_problem(raw: bytes, operation: str, known_betas: frozenset[str] | None = None) -> str:
    """What Bedrock's validation would refuse in a body, or ''."""
    try:
        body = json.loads(raw)
        if operation == "count-tokens":
            body = json.loads(base64.b64decode(body["input"]["invokeModel"]["body"], validate=True))
    except (ValueError, KeyError, TypeError):
        return "Malformed input request, please reformat your input and try again."
    if not isinstance(body, dict):
        return "Malformed input request: expected an object"
    if body.get("anthropic_version") != ANTHROPIC_VERSION:
        return f"anthropic_version must be {ANTHROPIC_VERSION}"
    for extraneous in ("model", "stream"):
        if extraneous in body:
            return f"extraneous key [{extraneous}] is not permitted"
    if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
        return "max_tokens and messages are required"
    betas = body.get("anthropic_beta", [])
    if not isinstance(betas, list) or not all(isinstance(beta, str) for beta in betas):
        return "anthropic_beta must be a list of strings"
    if known_betas is not None and not set(betas) <= known_betas:
        return "invalid beta flag"
    return ""
