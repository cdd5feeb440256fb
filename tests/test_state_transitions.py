"""The pure transitions of the shared state: cooldowns, circuit, trial, rate limit, load."""

from __future__ import annotations

import pytest

from loadbalancer.routing.state.records import FailurePolicy, LoadEntry, ProviderShared
from loadbalancer.routing.state.transitions import (WindowCounts, after_claim_trial, after_failure,
                                                    after_release_trial, after_success, combine_load,
                                                    decide_rate)

POLICY = FailurePolicy(cooldown_seconds=5, max_cooldown_seconds=60, failure_threshold=3)


@pytest.mark.parametrize("failures_before, retry_after, expected_cooldown", [
    (0, None, 5), (1, None, 10), (2, None, 20), (5, None, 60),  # exponential, capped
    (5000, None, 60),  # a long outage does not overflow the exponent
    (0, 30, 30),  # retry-after longer than the backoff wins
    (0, 120, 120),  # ... even beyond max_cooldown: the provider said so
    (3, 1, 40),  # a short retry-after does not shorten the backoff
])
def test_failure_cooldown(failures_before, retry_after, expected_cooldown):
    state = ProviderShared(consecutive_failures=failures_before)
    new = after_failure(state, now=1000.0, reason="429", retry_after=retry_after, policy=POLICY, jitter=1.0)
    assert new.cooldown_until == pytest.approx(1000.0 + expected_cooldown)
    assert new.consecutive_failures == failures_before + 1
    assert new.cooldown_reason == "429"


def test_failure_never_shortens_an_existing_cooldown():
    state = ProviderShared(cooldown_until=2000.0)
    assert after_failure(state, now=1000.0, reason="x", retry_after=None, policy=POLICY,
                         jitter=1.0).cooldown_until == 2000.0


@pytest.mark.parametrize("failures_before, tripped", [(0, False), (1, False), (2, True), (7, True)])
def test_circuit_trips_at_threshold(failures_before, tripped):
    new = after_failure(ProviderShared(consecutive_failures=failures_before), now=0.0, reason="x",
                        retry_after=None, policy=POLICY, jitter=1.0)
    assert new.circuit_tripped is tripped


def test_failure_ends_a_trial():
    state = ProviderShared(circuit_tripped=True, trial_owner="a", trial_until=50.0, consecutive_failures=3)
    new = after_failure(state, now=10.0, reason="x", retry_after=None, policy=POLICY, jitter=1.0)
    assert (new.trial_owner, new.circuit(10.0)) == ("", "open")


def test_success_on_a_clean_provider_writes_nothing():
    assert after_success(ProviderShared()) is None


def test_success_closes_the_circuit():
    new = after_success(ProviderShared(consecutive_failures=4, circuit_tripped=True, trial_owner="a"))
    assert (new.consecutive_failures, new.circuit_tripped, new.trial_owner) == (0, False, "")


@pytest.mark.parametrize("state, now, granted, holder", [
    (ProviderShared(), 0.0, True, ""),  # closed: no trial needed
    (ProviderShared(circuit_tripped=True, cooldown_until=10.0), 5.0, False, ""),  # still open
    (ProviderShared(circuit_tripped=True, cooldown_until=10.0), 11.0, True, "me"),  # half-open
    (ProviderShared(circuit_tripped=True, trial_owner="other", trial_until=20.0), 11.0, False, "other"),
    (ProviderShared(circuit_tripped=True, trial_owner="other", trial_until=20.0), 21.0, True, "me"),  # lapsed
])
def test_claim_trial(state, now, granted, holder):
    ok, new = after_claim_trial(state, now=now, owner="me", lease_seconds=30.0)
    assert ok is granted
    assert (new or state).trial_owner == holder


def test_only_the_holder_releases_a_trial():
    state = ProviderShared(circuit_tripped=True, trial_owner="me", trial_until=99.0)
    assert after_release_trial(state, owner="other") is None
    assert after_release_trial(state, owner="me").trial_owner == ""


def test_rate_limit_window():
    counts = None
    decisions = []
    for _ in range(4):
        decision, counts = decide_rate(counts, 600.0, 3)  # at the start of a minute window
        decisions.append(decision.allowed)
    assert decisions == [True, True, True, False]
    refused, _ = decide_rate(counts, 600.0, 3)
    assert refused.retry_after >= 1


def test_rate_limit_previous_window_decays():
    # Half-way into window 10, the 3 requests of window 9 weigh 1.5: one more fits, two do not.
    first, counts = decide_rate(WindowCounts(9, 3, 0), 630.0, 3)
    second, _ = decide_rate(counts, 630.0, 3)
    assert (first.allowed, second.allowed) == (True, False)


def test_load_is_summed_and_latency_averaged_over_the_reporters_that_measured():
    reports = [{"p": LoadEntry(2, 100.0)}, {"p": LoadEntry(1, None), "q": LoadEntry(0, 50.0)},
               {"p": LoadEntry(-3, 300.0)}]  # a negative count (a reload's leftovers) counts as 0
    assert combine_load(reports) == {"p": (3, 200.0, 2), "q": (0, 50.0, 1)}
