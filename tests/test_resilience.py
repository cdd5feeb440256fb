"""Fault injection against the real service: what the client gets for every upstream failure.

Each test runs gunicorn (gevent workers, the repo's gunicorn.conf.py) in front of fake
backends on 127.0.0.1. "primary" is tried first and misbehaves; "secondary" answers. A test
checks the client's answer and that no request was lost (every client request got an answer).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import pytest
import requests

from support.fake_backend import (
    FakeBackend, anthropic_error, anthropic_message, anthropic_stream, closed_port, encode_sse, drop, garbage, hang, slow_first_byte, status,
)
from support.fault_behaviours import EndlessStream, RandomFailures, iter_events, read_events
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config

pytestmark = pytest.mark.integration

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
# Short timeouts so hangs and stalls are detected in a fraction of a second.
FAST_TIMEOUT = {"connect": 1, "read": 1, "idle": 0.5}
CLIENT_TIMEOUT = 15


def post(lb: LoadBalancerProcess, body: dict[str, Any] | None = None, **options: Any) -> requests.Response:
    """POST a Messages request to the load balancer."""
    return requests.post(f"{lb.url}/v1/messages", json=body or BODY, timeout=CLIENT_TIMEOUT, **options)


def post_stream(lb: LoadBalancerProcess, body: dict[str, Any] | None = None) -> requests.Response:
    """POST a streaming Messages request; the body is read by the caller."""
    return post(lb, {**(body or BODY), "stream": True}, stream=True)


def text_of(events: list[dict[str, Any]]) -> str:
    """The text the client saw in a stream."""
    return "".join(event["delta"].get("text", "") for event in events if event["type"] == "content_block_delta")


@pytest.fixture
def pair(fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]):
    """Factory: (lb, primary, secondary) with primary tried first; routing overrides as keywords."""
    def start(primary_url: str | None = None, timeout: dict | None = None, **routing: Any):
        primary, secondary = fake_backend(), fake_backend()
        return lb(pair_config(primary_url or primary.url, secondary.url, timeout, **routing)), primary, secondary
    return start


def pair_config(primary_url: str, secondary_url: str, timeout: dict | None = None, **routing: Any) -> dict:
    """providers.json for primary (priority 1) and secondary (priority 2), fast timeouts, no affinity."""
    timeouts = dict(timeout or FAST_TIMEOUT)
    return providers_config(
        anthropic_provider("primary", primary_url, priority=1, timeout=timeouts),
        anthropic_provider("secondary", secondary_url, priority=2, timeout=timeouts),
        routing={"affinity": False, "cooldown": 0.05, "max_cooldown": 0.2, **routing})


@pytest.fixture(scope="module")
def shared_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPair]:
    """One gunicorn and two backends for the many single-fault tests (starting one each is slow)."""
    primary, secondary = FakeBackend().start(), FakeBackend().start()
    process = LoadBalancerProcess(pair_config(primary.url, secondary.url),
                                  workdir=tmp_path_factory.mktemp("shared-lb")).start()
    yield SharedPair(process, primary, secondary)
    process.stop()
    primary.stop()
    secondary.stop()


@dataclass(frozen=True)
class SharedPair:
    """The shared load balancer and its two backends."""

    lb: LoadBalancerProcess
    primary: FakeBackend
    secondary: FakeBackend


@pytest.fixture
def fresh(shared_pair: SharedPair) -> SharedPair:
    """The shared pair once the primary answers again, with no recorded requests."""
    for _ in range(20):
        time.sleep(0.1)  # longer than the cooldown a single earlier failure caused
        if post(shared_pair.lb).headers.get("x-lb-provider") == "primary":
            break
    else:
        raise AssertionError("the primary never came back after the previous test")
    shared_pair.primary.clear_requests()
    shared_pair.secondary.clear_requests()
    return shared_pair


# --- non-stream faults: the client gets the secondary's answer ------------------------

FAULTS_BEFORE_ANSWER = {
    "hang": hang(5),
    "slow first byte past the read timeout": slow_first_byte(3),
    "drop without answer": drop(),
    "500": anthropic_error(500),
    "502 html": status(502, body=b"<html>bad gateway</html>", content_type="text/html"),
    "503": anthropic_error(503),
    "529 overloaded": anthropic_error(529),
    "429 with retry-after": anthropic_error(429, headers={"retry-after": "1"}),
    "garbage body": garbage(),
    "empty 200": status(200, body=b""),
    "stream dropped before content": anthropic_stream(break_after=1),
}


@pytest.mark.parametrize("fault", FAULTS_BEFORE_ANSWER.values(), ids=FAULTS_BEFORE_ANSWER.keys())
def test_a_fault_before_the_answer_fails_over_to_the_next_provider(fresh: SharedPair, fault) -> None:
    lb, primary, secondary = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(fault)
    response = post(lb)
    assert response.status_code == 200, response.text
    assert response.headers["x-lb-provider"] == "secondary"
    assert response.json()["content"][0]["text"] == "Hello"
    assert len(primary.requests_to("/v1/messages")) == 1
    assert len(secondary.requests_to("/v1/messages")) == 1


def test_refused_connection_fails_over_at_once(pair) -> None:
    lb, _, secondary = pair(primary_url=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    response = post(lb)
    assert response.status_code == 200
    assert response.headers["x-lb-provider"] == "secondary"
    assert time.monotonic() - started < 1.0
    assert len(secondary.requests_to("/v1/messages")) == 1


def test_slow_first_byte_within_the_read_timeout_is_waited_for(fresh: SharedPair) -> None:
    lb, primary, secondary = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(slow_first_byte(0.4))
    response = post(lb)
    assert response.status_code == 200
    assert response.headers["x-lb-provider"] == "primary"
    assert secondary.requests_to("/v1/messages") == []


def test_a_client_error_is_passed_through_not_failed_over(fresh: SharedPair) -> None:
    lb, primary, secondary = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(anthropic_error(400, message="messages: field required"))
    response = post(lb)
    assert response.status_code == 400
    assert "field required" in response.json()["error"]["message"]
    assert secondary.requests_to("/v1/messages") == []


def test_retry_after_keeps_the_provider_out_for_that_long(pair) -> None:
    lb, primary, secondary = pair(cooldown=0.1)
    primary.queue(anthropic_error(429, headers={"retry-after": "1"}))
    assert post(lb).headers["x-lb-provider"] == "secondary"
    # The base cooldown (0.1 s) is long over; the provider's own retry-after (1 s) is not.
    time.sleep(0.3)
    assert post(lb).headers["x-lb-provider"] == "secondary"
    assert len(primary.requests_to("/v1/messages")) == 1
    time.sleep(1.0)
    assert post(lb).headers["x-lb-provider"] == "primary"


def test_retry_after_as_an_http_date_is_honoured(pair) -> None:
    lb, primary, _ = pair(cooldown=0.1)
    in_two_seconds = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    primary.queue(anthropic_error(529, headers={"retry-after": in_two_seconds}))
    assert post(lb).headers["x-lb-provider"] == "secondary"
    time.sleep(0.3)
    assert post(lb).headers["x-lb-provider"] == "secondary"
    assert len(primary.requests_to("/v1/messages")) == 1


# --- every provider down -------------------------------------------------------------

def test_when_every_provider_cools_down_past_the_wait_the_client_gets_529_with_retry_after(
        fake_backend, lb) -> None:
    only = fake_backend()
    only.default = anthropic_error(500)
    process = lb(providers_config(anthropic_provider("only", only.url, timeout=FAST_TIMEOUT),
                                  routing={"cooldown": 5, "max_cooldown": 5, "wait_for_cooldown": 0.5}))
    first = post(process)
    assert first.status_code == 500
    assert int(first.headers["retry-after"]) >= 1
    second = post(process)
    assert second.status_code == 529
    assert second.json()["error"]["type"] == "overloaded_error"
    assert 4 <= int(second.headers["retry-after"]) <= 6
    assert len(only.requests_to("/v1/messages")) == 1


def test_a_request_waits_for_a_provider_that_comes_back_within_wait_for_cooldown(fake_backend, lb) -> None:
    only = fake_backend()
    process = lb(providers_config(anthropic_provider("only", only.url, timeout=FAST_TIMEOUT),
                                  routing={"cooldown": 0.4, "max_cooldown": 0.4, "wait_for_cooldown": 2}))
    only.queue(anthropic_error(503))
    only.queue(anthropic_error(503))
    started = time.monotonic()
    response = post(process)
    assert response.status_code == 200, response.text
    assert len(only.requests_to("/v1/messages")) == 3
    assert time.monotonic() - started >= 0.7  # two cooldowns were waited out, not skipped


def test_a_transient_failure_of_the_only_provider_is_retried_with_backoff(fake_backend, lb) -> None:
    only = fake_backend()
    process = lb(providers_config(anthropic_provider("only", only.url, timeout=FAST_TIMEOUT),
                                  routing={"cooldown": 0.05, "max_cooldown": 0.05, "wait_for_cooldown": 1}))
    only.queue(drop())
    response = post(process)
    assert response.status_code == 200, response.text
    assert len(only.requests_to("/v1/messages")) == 2


def test_attempts_are_bounded_by_max_attempts(fake_backend, lb) -> None:
    only = fake_backend()
    only.default = anthropic_error(500)
    process = lb(providers_config(anthropic_provider("only", only.url, timeout=FAST_TIMEOUT),
                                  routing={"cooldown": 0.05, "max_cooldown": 0.05, "wait_for_cooldown": 1,
                                           "max_attempts": 3}))
    response = post(process)
    assert response.status_code == 500
    assert "retry-after" in response.headers
    assert len(only.requests_to("/v1/messages")) == 3


# --- bursts under concurrency: no request lost ---------------------------------------

@pytest.mark.parametrize("code", [500, 529])
def test_a_burst_of_errors_under_concurrency_loses_no_request(pair, code: int) -> None:
    lb, primary, secondary = pair(cooldown=0.05, max_cooldown=0.2)
    for _ in range(15):
        primary.queue(anthropic_error(code))
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: post(lb).status_code, range(48)))
    assert statuses == [200] * 48
    answered = len(primary.requests_to("/v1/messages")) + len(secondary.requests_to("/v1/messages"))
    assert answered >= 48


def test_random_failures_of_every_kind_lose_no_request(pair) -> None:
    lb, primary, secondary = pair(cooldown=0.05, max_cooldown=0.2)
    primary.default = RandomFailures(0.4, [anthropic_error(500), anthropic_error(529), drop(), garbage(),
                                           anthropic_stream(break_after=1), hang(3)])

    def one(number: int) -> str:
        if number % 2:
            return "".join(text_of(read_events(post_stream(lb))))
        return post(lb).json()["content"][0]["text"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(40)))
    assert answers == ["Hello"] * 40


# --- streams --------------------------------------------------------------------------

def test_a_stream_dropped_before_content_fails_over_invisibly(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(anthropic_stream(break_after=2))  # message_start and ping, then the connection drops
    response = post_stream(lb)
    events = read_events(response)
    assert response.headers["x-lb-provider"] == "secondary"
    assert [event["type"] for event in events].count("message_start") == 1
    assert text_of(events) == "Hello"
    assert events[-1]["type"] == "message_stop"


def test_a_stream_stalled_before_content_fails_over_after_the_idle_timeout(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(anthropic_stream(stall_after=1, stall_seconds=5))
    started = time.monotonic()
    response = post_stream(lb)
    events = read_events(response)
    assert response.headers["x-lb-provider"] == "secondary"
    assert text_of(events) == "Hello"
    assert time.monotonic() - started < 3.0  # the idle timeout (0.5 s), not the stall (5 s)


def test_a_stream_that_started_is_held_to_the_idle_timeout_not_the_first_byte_wait(pair) -> None:
    # Once the body has begun, silence means a stall after `idle` seconds, even before the
    # first content event; the long `read` wait is only for the first byte.
    lb, primary, _ = pair(timeout={"connect": 1, "read": 20, "idle": 0.5})
    primary.queue(anthropic_stream(stall_after=1, stall_seconds=10))
    started = time.monotonic()
    response = post_stream(lb)
    events = read_events(response)
    assert response.headers["x-lb-provider"] == "secondary"
    assert text_of(events) == "Hello"
    assert time.monotonic() - started < 5.0  # the idle timeout (0.5 s), not the read timeout (20 s)


def test_a_stream_whose_first_byte_never_comes_fails_over(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(anthropic_stream(first_delay=5))  # headers at once, then silence
    response = post_stream(lb)
    assert response.headers["x-lb-provider"] == "secondary"
    assert text_of(read_events(response)) == "Hello"


def test_a_stream_dropped_after_content_ends_cleanly_with_an_error_event(fresh: SharedPair) -> None:
    lb, primary, secondary = fresh.lb, fresh.primary, fresh.secondary
    # message_start, ping, block start, first delta: then the connection drops.
    primary.queue(anthropic_stream(("Hel", "lo", " world"), break_after=4))
    response = post_stream(lb)
    events = read_events(response)
    assert response.status_code == 200
    types = [event["type"] for event in events]
    assert types == ["message_start", "ping", "content_block_start", "content_block_delta",
                     "content_block_stop", "error"]
    assert events[-1]["error"]["type"] == "api_error"
    assert text_of(events) == "Hel"
    assert secondary.requests_to("/v1/messages") == []  # content was sent: no silent restart
    lb.wait_for_log("stream_error=")


def test_a_stream_stalled_after_content_is_cut_at_the_idle_timeout(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary
    primary.queue(anthropic_stream(("Hel", "lo"), stall_after=4, stall_seconds=10))
    started = time.monotonic()
    events = read_events(post_stream(lb))
    elapsed = time.monotonic() - started
    assert [event["type"] for event in events][-2:] == ["content_block_stop", "error"]
    assert "stalled" in events[-1]["error"]["message"]
    assert elapsed < 3.0  # idle timeout 0.5 s, far below the 10 s stall and the 1 s read timeout x 3


def test_an_error_event_after_content_reaches_the_client_as_an_error_event(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary

    def overloaded_mid_stream(exchange) -> None:
        exchange.start_stream()
        for event in anthropic_stream(("Hel",)).events("claude-test-1")[:4]:
            exchange.write_chunk(encode_sse(event))
        exchange.write_chunk(encode_sse({"type": "error",
                                         "error": {"type": "overloaded_error", "message": "Overloaded"}}))
        exchange.end_stream()

    primary.queue(overloaded_mid_stream)
    events = read_events(post_stream(lb))
    assert [event["type"] for event in events][-2:] == ["content_block_stop", "error"]
    assert events[-1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_nothing_reaches_the_client_before_the_first_content_event(fresh: SharedPair) -> None:
    def content_after_a_pause(exchange) -> None:
        events = [encode_sse(event) for event in anthropic_stream().events("claude-test-1")]
        exchange.start_stream()
        exchange.write_chunk(events[0] + events[1])  # message_start and ping
        exchange.wait(0.4)  # below the idle timeout (0.5 s)
        for frame in events[2:]:
            exchange.write_chunk(frame)
        exchange.end_stream()

    fresh.primary.queue(content_after_a_pause)
    started = time.monotonic()
    response = post_stream(fresh.lb)
    headers_after = time.monotonic() - started
    events = read_events(response)
    assert headers_after >= 0.35  # the status line was held until content_block_start
    assert response.headers["x-lb-provider"] == "primary"
    assert [event["type"] for event in events][:3] == ["message_start", "ping", "content_block_start"]
    assert text_of(events) == "Hello"


# --- client disconnects --------------------------------------------------------------

def test_a_client_disconnect_closes_the_upstream_within_a_second(fresh: SharedPair) -> None:
    lb, primary, _ = fresh.lb, fresh.primary, fresh.secondary
    endless = EndlessStream()
    primary.queue(endless)
    response = post_stream(lb)
    events = iter_events(response)
    assert next(events)["type"] == "message_start"
    assert next(events)["type"] == "content_block_start"
    response.close()
    gone_at = time.monotonic()
    assert endless.closed.wait(3), "the upstream kept generating after the client went away"
    assert endless.closed_at - gone_at < 1.0


# --- gunicorn graceful reload --------------------------------------------------------

def test_hup_to_the_master_loses_no_request_in_flight(fake_backend, lb) -> None:
    backend = fake_backend()

    def slow_answer(exchange) -> None:
        if not exchange.wait(0.3):
            streamed = exchange.request.json.get("stream") is True
            (anthropic_stream(("a", "b", "c", "d"), delay=0.1) if streamed else anthropic_message("abcd"))(exchange)

    backend.default = slow_answer
    process = lb(providers_config(anthropic_provider("only", backend.url)), workers=2)
    results: list[str] = []
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            for _ in range(4):
                if number % 2:
                    results.append(text_of(read_events(post_stream(process))))
                else:
                    response = post(process, {**BODY, "stream": False})
                    response.raise_for_status()
                    results.append(response.json()["content"][0]["text"])
        except (requests.RequestException, AssertionError, ValueError) as err:
            failures.append(err)

    workers = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    process.reload()
    time.sleep(0.8)
    process.reload()
    for worker in workers:
        worker.join(30)
    assert failures == []
    assert results == ["abcd"] * 32
    assert "Hang up" in process.log_text() or "Handling signal: hup" in process.log_text()
