"""`forward_to_provider`: the failover loop between the routes and the providers.

For one validated request it asks the balancer for an order of providers, tries them one
after another and returns the first good answer as a `ProxyResult` (status, headers,
bytes or a generator of bytes). Streams are held back until the provider produced its
first content event, so anything that fails before that fails over invisibly.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import orjson

from loadbalancer.providers.base import (FailureKind, MessageAnswer, Provider, UpstreamRequest,
                                         decode_answer_object, reading_answer_of)
from loadbalancer.routing.affinity import affinity_key_for
from loadbalancer.routing.needs import RequestNeeds
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.errors import (AllProvidersFailed, InvalidRequest, NoProviderForModel, UpstreamBadResponse,
                                 UpstreamError, UpstreamHTTPError, error_body)
from loadbalancer.client_request import MessagesRequest, reencoding_client_body
from loadbalancer.request_record import RequestRecord
from loadbalancer.runtime import Runtime
from loadbalancer.sse import PING_FRAME
from loadbalancer.providers.stream_pipeline import UpstreamErrorEvent

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
RETRY_BACKOFF_BASE = 0.25  # seconds before the first retry round; doubles per round
COOLDOWN_END_JITTER = 0.05  # spreads requests that waited for the same cooldown to end
AUTH_FAILED = "auth_failed"  # the outcome and /health reason of a provider that refused our key
NO_VERDICT_OUTCOME = "aborted"  # an attempt ended by something that blames no provider
# Statuses an all-failed answer keeps as the provider gave them: ones clients retry.
GATEWAY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


@dataclass
class ProxyResult:
    """What the route sends back: status, headers, and bytes or a stream of bytes."""

    status: int
    headers: dict[str, str]
    body: bytes | Iterator[bytes]
    provider: str | None = None
    dialect: str = "anthropic"   # "openai" when an OpenAI provider's answer passed through


def forward_to_provider(runtime: Runtime, request: MessagesRequest, client_headers: Mapping[str, str],
                        record: RequestRecord, *, count_tokens: bool = False,
                        sleep: Callable[[float], None] = time.sleep) -> ProxyResult:
    """Send `request` to the best provider that answers; fail over on retryable failures."""
    balancer = runtime.balancer
    routing = runtime.config.routing
    if not balancer.serving(request.model):
        raise NoProviderForModel(_no_provider_message(runtime, request.model))
    needs = RequestNeeds.from_request(request)
    if request.without_thinking is not None:
        needs = dataclasses.replace(needs, wants_thinking=False)
    affinity = None
    if routing.affinity:
        affinity = request.affinity_key or affinity_key_for(request.affinity_fields, client_headers)
    deadline = time.monotonic() + routing.deadline
    tried: set[str] = set()
    cannot_count = {name for name, backend in runtime.providers.items() if count_tokens and not backend.counts_tokens}
    failures: list[tuple[ProviderConfig, UpstreamError]] = []
    rounds = 0
    while len(record.attempts) < routing.max_attempts and time.monotonic() < deadline:
        plan = balancer.plan(needs, affinity, exclude=tried | cannot_count)
        if not plan:
            if not failures and balancer.seconds_until_available(needs) is None:
                # No provider's declared capabilities fit: retrying would never help, so no 529.
                raise InvalidRequest(_no_capable_provider_message(request, needs))
            wait = _wait_before_next_round(runtime, needs, deadline, rounds, retrying=bool(tried))
            if wait is None:
                break
            # Every capable provider was tried or is cooling down, but one comes back soon:
            # wait for it rather than failing a request that would succeed a moment later.
            sleep(wait)
            rounds += 1
            tried.clear()
            continue
        provider = plan[0]
        tried.add(provider.name)
        try:
            return _attempt(runtime, provider, request, client_headers, record, affinity, count_tokens)
        except UpstreamError as err:
            failures.append((provider, err))
    raise _all_failed(runtime, request, needs, failures)


def _wait_before_next_round(runtime: Runtime, needs: RequestNeeds, deadline: float, rounds: int, *,
                            retrying: bool) -> float | None:
    """Seconds to wait before trying the providers again; None when the request should give up."""
    routing = runtime.config.routing
    if rounds >= routing.max_attempts:
        return None  # bounds the loop when the plan stays empty (e.g. another request holds a trial)
    available_in = runtime.balancer.seconds_until_available(needs)
    if available_in is None:
        return None
    wait = available_in + random.uniform(0.0, COOLDOWN_END_JITTER)
    if retrying:
        # Exponential backoff with full jitter before the same providers are retried, so
        # the retries of many clients do not arrive in step.
        backoff_cap = min(routing.wait_for_cooldown, RETRY_BACKOFF_BASE * 2 ** rounds)
        wait = max(wait, random.uniform(0.0, backoff_cap))
    # A long retry-after or cooldown is past the wait allowed: answer now with retry-after.
    if wait > min(routing.wait_for_cooldown, deadline - time.monotonic()):
        return None
    return wait


def _attempt(runtime: Runtime, provider: ProviderConfig, request: MessagesRequest,
             client_headers: Mapping[str, str], record: RequestRecord, affinity: str | None,
             count_tokens: bool) -> ProxyResult:
    """One try at one provider: its answer, or an UpstreamError to fail over on.

    Whatever is raised, the provider is released in `finally`: an error that blames no
    provider (a client body that cannot be re-encoded, a local resource shortage, a bug)
    ends the attempt without a verdict, so no in_flight count or half-open trial is left.
    """
    balancer = runtime.balancer
    backend = runtime.providers[provider.name]
    if request.without_thinking is not None and not provider.capabilities.thinking:
        request = request.without_thinking
    attempt = record.start_attempt(provider.name)
    record.upstream_model = provider.model_for(request.model) or request.model
    balancer.begin(provider.name)
    settled = False
    try:
        try:
            result = _send_and_read(runtime, backend, request, client_headers, record, count_tokens)
        except (UpstreamHTTPError, UpstreamErrorEvent) as err:
            kind = _blame(backend, err)
            if kind is FailureKind.CLIENT:
                # The provider worked and says the request is wrong: the client gets that answer.
                balancer.released(provider.name)
                settled = True
                status, body = _answer_for_client(backend, err)
                attempt.finish_passed_through(status)
                return ProxyResult(status, {"content-type": JSON_CONTENT_TYPE}, body, provider.name)
            _record_failure(balancer, attempt, provider, err, kind)
            settled = True
            raise
        except UpstreamError as err:
            _record_failure(balancer, attempt, provider, err, FailureKind.PROVIDER)
            settled = True
            raise
        first_byte = time.monotonic() - attempt.started
        balancer.succeeded(provider.name, first_byte, affinity)
        settled = True
    finally:
        if not settled:
            balancer.released(provider.name)
            attempt.finish(NO_VERDICT_OUTCOME)
    attempt.finish("ok")
    record.first_token_seconds = record.elapsed_seconds  # a stream's first content, or the answer
    if backend.answers_in_client_dialect(request):
        result.dialect = "openai"
    return result


def _send_and_read(runtime: Runtime, backend: Provider, request: MessagesRequest,
                   client_headers: Mapping[str, str], record: RequestRecord, count_tokens: bool) -> ProxyResult:
    """Build the request, send it, and read the answer (a stream up to its first content)."""
    client = runtime.clients[backend.name]
    with reencoding_client_body():
        if count_tokens:
            upstream = backend.count_tokens_request(request, client_headers)
        else:
            upstream = backend.messages_request(request, client_headers)
    answer = client.post(upstream.url, upstream.body, upstream.headers, stream=request.stream)
    if request.stream:
        return _open_stream(runtime, backend, request, record, answer, upstream)
    body = client.read_body(answer)
    with reading_answer_of(backend.name):
        if count_tokens:
            return _count_result(backend, body)
        return _message_result(backend.config, backend.decode_message(request, body, upstream), record)


def _blame(backend: Provider, err: UpstreamHTTPError | UpstreamErrorEvent) -> FailureKind:
    """Whom a failure before content blames: the provider type decides for error answers."""
    if isinstance(err, UpstreamHTTPError):
        return backend.classify_error(err)
    return FailureKind.PROVIDER if err.retryable else FailureKind.CLIENT


def _answer_for_client(backend: Provider, err: UpstreamHTTPError | UpstreamErrorEvent) -> tuple[int, bytes]:
    """Status and Anthropic-format body of a failure that blames the client's request."""
    if isinstance(err, UpstreamHTTPError):
        return backend.safe_error_answer(err)
    # A stream that failed before any content for a reason that blames the request (a
    # Bedrock validationException, an invalid_request_error event).
    body = error_body(str(err.error.get("type") or "invalid_request_error"),
                      str(err.error.get("message") or err.message))
    return err.status or 400, orjson.dumps(body)


def _record_failure(balancer, attempt, provider: ProviderConfig, err: UpstreamError, kind: FailureKind) -> None:
    """Count a failure against the provider (cooldown, circuit); a refused key says so in /health."""
    reason = f"{AUTH_FAILED}: {err.message}" if kind is FailureKind.AUTH else err.message
    balancer.failed(provider.name, reason, err.retry_after)
    attempt.finish(AUTH_FAILED if kind is FailureKind.AUTH else err.reason)


def _message_result(provider: ProviderConfig, message: MessageAnswer, record: RequestRecord) -> ProxyResult:
    record.tool_call_stats.add(message.tool_call_stats)
    record.note_usage(message.usage)
    return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE}, message.body, provider.name)


def _count_result(backend: Provider, body: bytes) -> ProxyResult:
    """A token count in Anthropic's shape, passed on once it is known to be one."""
    body = backend.count_tokens_answer(body)
    count = decode_answer_object(backend.name, body).get("input_tokens")
    if isinstance(count, bool) or not isinstance(count, int):
        raise UpstreamBadResponse(backend.name, "token count answer has no integer input_tokens")
    return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE}, body, backend.name)


def _open_stream(runtime: Runtime, backend: Provider, request: MessagesRequest,
                 record: RequestRecord, answer, upstream: UpstreamRequest) -> ProxyResult:
    """Read the stream up to its first content frame; then hand the rest to a generator.

    Nothing can be sent before the first content, so this part reads in the request's own
    thread (each read bounded by the provider's `timeout.first_byte`): the reader thread that
    sends pings is only started once the stream is committed, which keeps it off the first
    event's path. Until then the upstream answer is closed here, whatever is raised.
    """
    provider = backend.config
    held: list[bytes] = []
    has_content = False
    committed = False
    try:
        with reading_answer_of(provider.name):
            pipeline = backend.stream_pipeline(request, upstream)
            while not has_content and (chunk := answer.read_chunk()):
                # The body has started: from now on a silent provider has stalled after the
                # idle timeout, not after the (longer) wait allowed for its first byte.
                answer.set_read_timeout(provider.timeout.idle)
                frames = pipeline.feed(chunk)
                held.extend(frame.data for frame in frames)
                has_content = any(frame.content for frame in frames)
            if not has_content:
                held.extend(frame.data for frame in pipeline.end())
        if not has_content:
            # The whole stream ended before any content (an empty answer is still an answer):
            # send it as one body, so the request is logged like any other.
            _record_stream_totals(record, pipeline)
            return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE}, b"".join(held), provider.name)
        chunks = runtime.clients[provider.name].iter_chunks(
            answer, first_timeout=provider.timeout.idle, idle_timeout=provider.timeout.idle)
        body = _stream_rest(b"".join(held), chunks, pipeline, record)
        committed = True
    finally:
        if not committed:
            answer.close()
    return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"},
                       body, provider.name)


def _stream_rest(first: bytes, chunks: Iterator[bytes | None], pipeline, record: RequestRecord) -> Iterator[bytes]:
    """The committed part of a stream: forward frames as they come, end cleanly on failure.

    Anything unexpected in the provider's frames ends the stream with an `error` event too:
    a client's stream is never just cut.
    """
    try:
        yield first
        try:
            with reading_answer_of(pipeline.provider):
                yield from _forward_frames(chunks, pipeline)
        except UpstreamErrorEvent as err:
            record.stream_error = err.message
            yield b"".join(pipeline.close_after_failure(
                str(err.error.get("type") or "api_error"), str(err.error.get("message") or err.message)))
        except UpstreamError as err:
            record.stream_error = err.message
            yield b"".join(pipeline.close_after_failure(
                "api_error", f"the provider's stream failed after content was sent: {err.message}"))
    finally:
        chunks.close()
        _record_stream_totals(record, pipeline)
        record.finish()


def _forward_frames(chunks: Iterator[bytes | None], pipeline) -> Iterator[bytes]:
    """Frames for the client as the provider's chunks arrive; pings while it is silent."""
    for chunk in chunks:
        if chunk is None:
            yield PING_FRAME
            continue
        frames = pipeline.feed(chunk)
        if frames:
            yield b"".join(frame.data for frame in frames)
    frames = pipeline.end()
    if frames:
        yield b"".join(frame.data for frame in frames)


def _record_stream_totals(record: RequestRecord, pipeline) -> None:
    record.tool_call_stats.add(pipeline.tool_call_stats)
    record.note_usage(pipeline.usage.as_answer_usage())


def _no_provider_message(runtime: Runtime, model: str) -> str:
    enabled = [provider for provider in runtime.config.providers if provider.enabled]
    if not enabled:
        return (f"no provider serves model {model!r}: every configured provider is disabled "
                "(see GET /health)")
    # Globs included: a file with only "claude-*" must still tell the client what to ask for.
    patterns = dict.fromkeys(route.pattern for provider in enabled for route in provider.models)
    listing = ", ".join(patterns) or "*"
    return f"no provider serves model {model!r}; configured models: {listing}"


def _no_capable_provider_message(request: MessagesRequest, needs: RequestNeeds) -> str:
    wants = ["images"] if needs.has_images else []
    wants += ["extended thinking"] if needs.wants_thinking else []
    wants += [f"max_tokens {needs.max_tokens}", f"about {needs.estimated_input_tokens} input tokens"]
    return (f"no provider for model {request.model!r} can take this request (it needs {', '.join(wants)}); "
            "see the providers' capabilities in providers.json")


def _all_failed(runtime: Runtime, request: MessagesRequest, needs: RequestNeeds,
                failures: list[tuple[ProviderConfig, UpstreamError]]) -> AllProvidersFailed:
    """The error when no attempt succeeded, with a status the clients retry."""
    wait = runtime.balancer.seconds_until_available(needs)
    headers = {"retry-after": str(max(1, math.ceil(wait)))} if wait else {"retry-after": "1"}
    if not failures:
        return AllProvidersFailed(
            f"every provider for model {request.model!r} is cooling down after recent failures; "
            f"retry after {headers['retry-after']}s", status=529, headers=headers)
    refused = [(provider, err) for provider, err in failures if _is_auth_failure(runtime, provider, err)]
    if len(refused) == len(failures):
        names = "; ".join(f"{provider.name}: {runtime.providers[provider.name].describe_error(err)}"
                          for provider, err in refused)
        return AllProvidersFailed(
            f"every provider for model {request.model!r} refused the load balancer's credentials: {names}; "
            "the provider keys in its configuration need fixing (your own key was accepted)",
            status=502, headers=headers)
    statuses = [err.status for provider, err in failures if err.status and (provider, err) not in refused]
    status = statuses[-1] if statuses else 529
    if status not in GATEWAY_STATUSES:
        status = 529 if 400 <= status < 500 else 502  # a redirect or an odd status is a bad gateway
    details = "; ".join(f"{provider.name}: {_describe(runtime, provider, err)}" for provider, err in failures)
    return AllProvidersFailed(f"all providers failed for model {request.model!r}: {details}",
                              status=status, headers=headers)


def _is_auth_failure(runtime: Runtime, provider: ProviderConfig, err: UpstreamError) -> bool:
    return (isinstance(err, UpstreamHTTPError)
            and runtime.providers[provider.name].classify_error(err) is FailureKind.AUTH)


def _describe(runtime: Runtime, provider: ProviderConfig, err: UpstreamError) -> str:
    if _is_auth_failure(runtime, provider, err):
        return "refused the key, " + runtime.providers[provider.name].describe_error(err)
    if isinstance(err, UpstreamHTTPError):
        return runtime.providers[provider.name].describe_error(err)
    return err.message

