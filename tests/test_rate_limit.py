"""Per-client requests-per-minute limits: the sliding window, the shared state, and the 429."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config import ClientKey
from loadbalancer.errors import RateLimited
from loadbalancer.ops.rate_limit import RateLimiter
from loadbalancer.routing.state.embedded import EmbeddedStore
from loadbalancer.routing.state.transitions import WindowCounts, decide_rate
from support.fake_backend import closed_port
from support.lb_process import anthropic_provider, providers_config


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Decision:
    """decide_rate's verdict and counts in one object, as these tables read them."""

    def __init__(self, counts: WindowCounts | None, now: float, limit: int) -> None:
        verdict, self.counts = decide_rate(counts, now, limit)
        self.allowed, self.retry_after = verdict.allowed, verdict.retry_after


decide = Decision


def limiter_on(directory: Path, clock: Clock) -> RateLimiter:
    """A limiter counting in an embedded store in `directory` (as one worker would)."""
    store = EmbeddedStore(directory, clock=clock)
    return RateLimiter(lambda: store)


@pytest.mark.parametrize(("counts", "now", "limit", "allowed"), [
    (None, 600.0, 1, True),                                  # first request ever
    (WindowCounts(10, 4, 0), 600.0, 5, True),                # 4 + 1 fits in 5
    (WindowCounts(10, 5, 0), 600.0, 5, False),               # window full
    (WindowCounts(9, 10, 0), 600.0, 10, False),              # last minute's 10 weigh fully as this one starts
    (WindowCounts(9, 10, 0), 630.0, 10, True),               # half-way through they weigh 5: room again
    (WindowCounts(9, 10, 0), 660.0, 10, True),               # two windows later everything is forgotten
    (WindowCounts(10, 3, 10), 630.0, 10, True),              # 10 * 0.5 + 3 + 1 = 9 <= 10
    (WindowCounts(10, 5, 10), 630.0, 10, False),             # 10 * 0.5 + 5 + 1 = 11 > 10
])
def test_decide_follows_the_sliding_window_estimate(counts: WindowCounts | None, now: float,
                                                     limit: int, allowed: bool) -> None:
    assert decide(counts, now, limit).allowed is allowed


def test_decide_counts_only_admitted_requests() -> None:
    admitted = decide(WindowCounts(10, 1, 0), 600.0, 5)
    refused = decide(WindowCounts(10, 5, 0), 600.0, 5)
    assert admitted.counts == WindowCounts(10, 2, 0)
    assert refused.counts == WindowCounts(10, 5, 0)


@pytest.mark.parametrize(("counts", "now", "limit"), [
    (WindowCounts(10, 5, 0), 600.0, 5),
    (WindowCounts(10, 5, 0), 659.5, 5),
    (WindowCounts(10, 5, 10), 630.0, 10),
    (WindowCounts(10, 0, 3), 612.0, 1),
    (WindowCounts(10, 20, 20), 645.0, 3),
])
def test_retry_after_is_the_first_whole_second_with_room(counts: WindowCounts, now: float, limit: int) -> None:
    refused = decide(counts, now, limit)
    assert not refused.allowed and refused.retry_after >= 1
    assert decide(refused.counts, now + refused.retry_after, limit).allowed
    if refused.retry_after > 1:
        assert not decide(refused.counts, now + refused.retry_after - 1, limit).allowed


def test_limiter_refuses_the_request_over_the_limit_with_retry_after(tmp_path: Path) -> None:
    limiter = limiter_on(tmp_path, Clock(6000.0))
    client = ClientKey(name="alice", key="sk-alice", requests_per_minute=3)
    for _ in range(3):
        limiter.check(client)
    with pytest.raises(RateLimited) as refused:
        limiter.check(client)
    assert refused.value.status == 429
    assert refused.value.error_type == "rate_limit_error"
    # Next minute, the full previous minute must decay to 2 of 3 before one more fits: 60 s + 20 s.
    assert int(refused.value.headers["retry-after"]) == 80
    assert "alice" in refused.value.message and "sk-alice" not in refused.value.message


def test_limiters_sharing_a_directory_share_the_count(tmp_path: Path) -> None:
    clock = Clock(6000.0)
    workers = [limiter_on(tmp_path, clock), limiter_on(tmp_path, clock)]
    client = ClientKey(name="bob", key="sk-bob", requests_per_minute=2)
    workers[0].check(client)
    workers[1].check(client)
    with pytest.raises(RateLimited):
        workers[0].check(client)


def test_clients_are_counted_apart_and_their_names_never_reach_the_state(tmp_path: Path) -> None:
    limiter = limiter_on(tmp_path, Clock(6000.0))
    for _ in range(3):
        limiter.check(ClientKey(name="free", key="sk-free"))  # no limit: never counted
    for name in ("carol", "dave"):
        limiter.check(ClientKey(name=name, key=f"sk-{name}", requests_per_minute=1))
    with pytest.raises(RateLimited):
        limiter.check(ClientKey(name="carol", key="sk-carol", requests_per_minute=1))
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"carol" not in stored and b"dave" not in stored and b"sk-" not in stored


def test_a_full_window_is_forgotten_once_it_slides_out(tmp_path: Path) -> None:
    clock = Clock(6000.0)
    limiter = limiter_on(tmp_path, clock)
    client = ClientKey(name="erin", key="sk-erin", requests_per_minute=1)
    limiter.check(client)
    clock.now += 119
    with pytest.raises(RateLimited):
        limiter.check(client)  # a sliver of the last minute still weighs
    clock.now += 1
    limiter.check(client)


@pytest.fixture
def providers_data() -> dict[str, Any]:
    """Two clients: one limited to 2 requests a minute, one unlimited."""
    return providers_config(
        anthropic_provider("primary", f"http://127.0.0.1:{closed_port()}"),
        auth={"api_keys": [{"name": "limited", "key": "sk-client-limited", "requests_per_minute": 2},
                           {"name": "open", "key": "sk-client-open"}]})


def test_app_answers_429_with_retry_after_once_a_client_key_is_over_its_limit(client: Any) -> None:
    limited = {"x-api-key": "sk-client-limited"}
    assert [client.get("/v1/models", headers=limited).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/v1/models", headers=limited)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 120  # a full minute, then the decay of the last one
    assert client.get("/v1/models", headers={"x-api-key": "sk-client-open"}).status_code == 200
    assert client.get("/v1/models", headers={"x-api-key": "wrong"}).status_code == 401
