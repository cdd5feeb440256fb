"""Every shared state backend keeps the same promises; a second store stands for another worker or instance.

The same tests run on the embedded store (one state directory) and on the Redis store (one
private redis-server, one key prefix per test), so the Lua scripts are checked to behave
like the Python transitions they mirror.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from loadbalancer.routing.state import FailurePolicy, ProviderStateStore
from loadbalancer.routing.state.embedded import MAX_PROVIDERS, EmbeddedStore
from loadbalancer.routing.state.memory import MemoryStore

FAST = FailurePolicy(cooldown_seconds=0.05, max_cooldown_seconds=0.1, failure_threshold=2)
_prefixes = itertools.count()
CONTRACT_TIMEOUT = 1.0


def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until `predicate()` holds (propagation to another store); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


@pytest.fixture(params=["embedded", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], ProviderStateStore]]:
    """A factory of stores that share one state (one directory, or one Redis prefix)."""
    stores: list[ProviderStateStore] = []
    prefix = f"test-{next(_prefixes)}-{time.time_ns()}"

    def make() -> ProviderStateStore:
        if request.param == "embedded":
            store: ProviderStateStore = EmbeddedStore(tmp_path)
        else:
            from loadbalancer.routing.state.redis_link import client_factory
            from loadbalancer.routing.state.redis_store import RedisStore
            # These tests are about what is shared, not about timeouts (test_state_processes.py
            # has those): a slow moment of this busy machine must not make Redis look down.
            url = request.getfixturevalue("shared_redis").url
            store = RedisStore(client_factory(url), prefix, request_timeout=CONTRACT_TIMEOUT)
        store.start()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def half_open(store: ProviderStateStore, name: str = "p") -> None:
    """Trip `name`'s circuit with FAST's two failures and wait out the cooldown."""
    for _ in range(2):
        store.record_failure(name, "500", policy=FAST)
    time.sleep(0.12)


def test_a_new_store_knows_no_provider_and_sees_it_clean(make_store) -> None:
    shared = make_store().snapshot().get("anthropic").shared
    assert shared.circuit(time.time()) == "closed"
    assert shared.seconds_until_available(time.time()) == 0.0


def test_a_cooldown_set_in_one_store_is_honoured_in_another(make_store) -> None:
    writer, reader = make_store(), make_store()
    reader.snapshot()
    writer.record_failure("anthropic", "429 rate limited", retry_after=30)
    eventually(lambda: reader.snapshot().get("anthropic").shared.cooldown_until > 0)
    shared = reader.snapshot().get("anthropic").shared
    assert 29 <= shared.seconds_until_available(time.time()) <= 31
    assert shared.cooldown_reason == "429 rate limited"


def test_the_snapshot_is_reused_while_nothing_changes(make_store) -> None:
    store = make_store()
    store.record_failure("a", "x")
    first = store.snapshot()
    assert store.snapshot() is first


def test_a_success_on_a_clean_provider_changes_nothing(make_store) -> None:
    store = make_store()
    store.record_failure("b", "x")
    store.record_success("b")  # a real change: failures reset
    before = store.snapshot()
    store.record_success("b")  # nothing to change: no write, same snapshot
    assert store.snapshot() is before
    assert before.get("b").shared.consecutive_failures == 0


def test_the_circuit_trips_then_exactly_one_trial_then_a_success_closes_it(make_store) -> None:
    stores = [make_store() for _ in range(3)]
    for _ in range(2):
        stores[0].record_failure("p", "500", policy=FAST)
    eventually(lambda: all(s.snapshot().get("p").shared.circuit_tripped for s in stores))
    assert stores[1].claim_trial("p", "early", 10) is False  # still open
    time.sleep(0.12)  # past the cooldown: half-open
    grants = [store.claim_trial("p", f"owner-{i}", 10) for i, store in enumerate(stores)]
    assert grants.count(True) == 1
    stores[grants.index(True)].record_success("p")
    eventually(lambda: stores[2].snapshot().get("p").shared.circuit(time.time()) == "closed")


def test_only_the_holder_releases_a_trial_and_then_it_can_be_claimed_again(make_store) -> None:
    first, second = make_store(), make_store()
    half_open(first)
    assert first.claim_trial("p", "one", 10) is True
    assert second.claim_trial("p", "two", 10) is False
    second.release_trial("p", "two")  # not the holder: no effect
    assert second.claim_trial("p", "two", 10) is False
    first.release_trial("p", "one")
    assert second.claim_trial("p", "two", 10) is True


def test_a_lapsed_trial_lease_frees_the_trial(make_store) -> None:
    first, second = make_store(), make_store()
    half_open(first)
    assert first.claim_trial("p", "dies", 0.05) is True
    time.sleep(0.08)
    assert second.claim_trial("p", "next", 10) is True


def test_a_failure_during_the_trial_reopens_the_circuit(make_store) -> None:
    store = make_store()
    half_open(store)
    assert store.claim_trial("p", "t", 10)
    shared = store.record_failure("p", "500 again", policy=FAST)
    assert shared.circuit(time.time()) == "open" and shared.trial_owner == ""


def test_the_rate_limit_is_shared(make_store) -> None:
    first, second = make_store(), make_store()
    key = f"client-{time.time_ns()}"
    allowed = [store.hit_rate_limit(key, 4).allowed for store in (first, second) * 3]
    assert allowed == [True] * 4 + [False] * 2
    assert second.hit_rate_limit(key, 4).retry_after >= 1


def test_one_prober_until_its_lease_lapses_or_it_gives_up(make_store) -> None:
    first, second = make_store(), make_store()
    assert first.claim_prober("first", 0.1) is True
    assert second.claim_prober("second", 0.1) is False
    assert first.claim_prober("first", 0.1) is True  # renewal
    time.sleep(0.15)
    assert second.claim_prober("second", 10) is True
    second.release_prober("first")  # not the holder: no effect
    assert first.claim_prober("first", 10) is False
    second.release_prober("second")
    assert first.claim_prober("first", 10) is True


def test_probe_results_reach_every_store(make_store) -> None:
    prober, other = make_store(), make_store()
    assert other.read_probe_results() is None
    prober.publish_probe_results(b'{"results": []}')
    assert other.read_probe_results() == b'{"results": []}'


def test_in_flight_and_latency_elsewhere_are_summed_over_the_other_reporters(make_store) -> None:
    first, second, third = make_store(), make_store(), make_store()
    first.add_in_flight("p", 2)
    second.add_in_flight("p", 1)
    second.record_latency("p", 0.100)
    third.record_latency("p", 0.300)
    eventually(lambda: first.snapshot().get("p").in_flight_elsewhere == 1
               and first.snapshot().get("p").reporters_elsewhere == 2)
    view = first.snapshot().get("p")
    assert view.latency_ms_elsewhere == pytest.approx(200.0)
    eventually(lambda: second.snapshot().get("p").in_flight_elsewhere == 2)


def test_status_names_the_backend_and_is_not_degraded(make_store) -> None:
    status = make_store().status()
    assert status.backend in ("embedded", "redis") and not status.degraded


def test_a_long_reason_is_clipped_to_a_fixed_size(make_store) -> None:
    store = make_store()
    shared = store.record_failure("p", "é" * 10_000)
    assert 0 < len(shared.cooldown_reason.encode()) <= 120


def test_the_embedded_store_reuses_the_slots_of_removed_providers(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    for number in range(MAX_PROVIDERS):
        store.record_failure(f"old-{number}", "x")
    store.retain(["new", "old-1"])
    store.record_failure("new", "fresh")
    snapshot = store.snapshot()
    assert snapshot.get("new").shared.cooldown_reason == "fresh"
    assert snapshot.get("old-1").shared.cooldown_reason == "x"
    assert "old-0" not in snapshot.providers
    store.close()


def test_the_memory_store_forgets_removed_providers() -> None:
    store = MemoryStore()
    store.record_failure("gone", "x", retry_after=60)
    store.retain(["kept"])
    assert store.snapshot().get("gone").shared.cooldown_until == 0.0


def test_the_redis_password_is_scrubbed_like_every_other_secret() -> None:
    from config import parse_config
    from loadbalancer.runtime import Runtime

    config = parse_config({"providers": [{"name": "a", "type": "anthropic", "base_url": "http://127.0.0.1:1"}],
                           "state": {"redis_url": "redis://:hunter2-redis@10.0.0.5:6379/0"}}, "test")
    runtime = Runtime.build(config)  # the memory store: nothing is contacted
    assert "hunter2-redis" not in runtime.scrubber.text("AUTH failed for hunter2-redis at 10.0.0.5")
    assert "hunter2" not in repr(config.state)
