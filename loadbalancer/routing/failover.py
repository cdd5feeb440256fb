"""`forward_to_provider`: the failover loop between the routes and the providers.

For one validated request it asks the balancer for an order of providers, tries them one
after another and returns the first good answer as a `ProxyResult` (status, headers,
bytes or a generator of bytes). Streams are held back until the provider produced its
first content event, so anything that fails before that fails over invisibly.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from loadbalancer.providers.base import FailureKind, MessageAnswer, Provider, UpstreamRequest
from loadbalancer.routing.affinity import affinity_key_for
from loadbalancer.routing.needs import RequestNeeds
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.errors import (AllProvidersFailed, InvalidRequest, NoProviderForModel, UpstreamError, UpstreamHTTPError)
from loadbalancer.client_request import MessagesRequest
from loadbalancer.request_record import RequestRecord
from loadbalancer.runtime import Runtime
from loadbalancer.sse import PING_FRAME
from loadbalancer.providers.stream_pipeline import UpstreamErrorEvent

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
RETRY_BACKOFF_BASE = 0.25  # seconds before the first retry round; doubles per round
COOLDOWN_END_JITTER = 0.05  # spreads requests that waited for the same cooldown to end


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
    needs = RequestNeeds.from_body(request.body, len(request.raw))
    affinity = affinity_key_for(request.body, client_headers) if routing.affinity else None
    deadline = time.monotonic() + routing.deadline
    tried: set[str] = set()
    skipped = {name for name, backend in runtime.providers.items() if count_tokens and not backend.counts_tokens}
    failures: list[tuple[ProviderConfig, UpstreamError]] = []
    rounds = 0
    while len(record.attempts) < routing.max_attempts and time.monotonic() < deadline:
        # Skipped inside plan(), so its head is the provider tried next (it may hold a trial).
        plan = balancer.plan(needs, affinity, exclude=tried | skipped)
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
    """One try at one provider: its answer, or an UpstreamError to fail over on."""
    balancer = runtime.balancer
    client = runtime.clients[provider.name]
    backend = runtime.providers[provider.name]
    attempt = record.start_attempt(provider.name)
    balancer.begin(provider.name)
    try:
        if count_tokens:
            upstream = backend.count_tokens_request(request, client_headers)
        else:
            upstream = backend.messages_request(request, client_headers)
        answer = client.post(upstream.url, upstream.body, upstream.headers, stream=request.stream)
        if request.stream:
            result = _open_stream(runtime, backend, request, record, answer, upstream)
        elif count_tokens:
            result = _json_result(provider, client.read_body(answer))
        else:
            body = client.read_body(answer)
            message = backend.decode_message(request, body, upstream)
            result = _message_result(provider, message, record)
    except UpstreamHTTPError as err:
        if backend.classify_error(err) is not FailureKind.CLIENT:
            _record_failure(balancer, attempt, provider, err)
            raise
        # The provider worked and says the request is wrong: the client gets that answer.
        balancer.released(provider.name)
        status, body = backend.error_answer(err)
        attempt.finish(f"{err.status} passed through")
        return ProxyResult(status, {"content-type": JSON_CONTENT_TYPE}, body, provider.name)
    except UpstreamError as err:
        _record_failure(balancer, attempt, provider, err)
        raise
    first_byte = time.monotonic() - attempt.started
    balancer.succeeded(provider.name, first_byte, affinity)
    attempt.finish("ok")
    record.first_byte_seconds = first_byte
    if backend.answers_in_client_dialect(request):
        result.dialect = "openai"
    return result


def _record_failure(balancer, attempt, provider: ProviderConfig, err: UpstreamError) -> None:
    balancer.failed(provider.name, err.message, err.retry_after)
    attempt.finish(err.reason)


def _message_result(provider: ProviderConfig, message: MessageAnswer, record: RequestRecord) -> ProxyResult:
    record.tool_call_stats.add(message.tool_call_stats)
    record.input_tokens, record.output_tokens = message.usage
    return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE}, message.body, provider.name)


def _json_result(provider: ProviderConfig, body: bytes) -> ProxyResult:
    return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE}, body, provider.name)


def _open_stream(runtime: Runtime, backend: Provider, request: MessagesRequest,
                 record: RequestRecord, answer, upstream: UpstreamRequest) -> ProxyResult:
    """Read the stream up to its first content frame; then hand the rest to a generator.

    Nothing can be sent before the first content, so this part reads in the request's own
    thread (bounded by the provider's read timeout): the reader thread that sends pings is
    only started once the stream is committed, which keeps it off the first event's path.
    """
    provider = backend.config
    pipeline = backend.stream_pipeline(request, upstream)
    held: list[bytes] = []
    has_content = False
    try:
        while not has_content and (chunk := answer.read_chunk()):
            # The body has started: from now on a silent provider has stalled after the
            # idle timeout, not after the (longer) wait allowed for its first byte.
            answer.set_read_timeout(provider.timeout.idle)
            frames = pipeline.feed(chunk)
            held.extend(frame.data for frame in frames)
            has_content = any(frame.content for frame in frames)
        if not has_content:
            held.extend(frame.data for frame in pipeline.end())
    except UpstreamError:
        answer.close()
        raise
    if not has_content:
        # The whole stream ended before any content (an empty answer is still an answer):
        # send it as one body, so the request is logged like any other.
        answer.close()
        record.tool_call_stats.add(pipeline.tool_call_stats)
        record.input_tokens, record.output_tokens = pipeline.usage.input_tokens, pipeline.usage.output_tokens
        return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE}, b"".join(held), provider.name)
    chunks = runtime.clients[provider.name].iter_chunks(
        answer, first_timeout=provider.timeout.idle, idle_timeout=provider.timeout.idle)
    body = _stream_rest(b"".join(held), chunks, pipeline, record)
    return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"},
                       body, provider.name)


def _stream_rest(first: bytes, chunks: Iterator[bytes | None], pipeline, record: RequestRecord) -> Iterator[bytes]:
    """The committed part of a stream: forward frames as they come, end cleanly on failure."""
    try:
        yield first
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
        record.tool_call_stats.add(pipeline.tool_call_stats)
        record.input_tokens = pipeline.usage.input_tokens
        record.output_tokens = pipeline.usage.output_tokens
        record.finish()


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
    statuses = [err.status for _, err in failures if err.status]
    status = statuses[-1] if statuses else 529
    if status not in (429, 500, 502, 503, 504, 529):
        status = 529 if status < 500 else 502
    details = "; ".join(f"{provider.name}: {_describe(runtime, provider, err)}" for provider, err in failures)
    return AllProvidersFailed(f"all providers failed for model {request.model!r}: {details}",
                              status=status, headers=headers)


def _describe(runtime: Runtime, provider: ProviderConfig, err: UpstreamError) -> str:
    if isinstance(err, UpstreamHTTPError):
        return runtime.providers[provider.name].describe_error(err)
    return err.message

