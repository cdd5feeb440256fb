"""Specification of balancer.py: provider order, cooldowns, circuit breaker, strategies, affinity.

The balancer runs here on the in-process MemoryStore with a fake clock; the same promises
across processes and instances are in test_state_store.py and test_shared_state.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

from loadbalancer.client_request import parse_messages_request
from loadbalancer.routing import affinity
from loadbalancer.routing.affinity import affinity_key_for
from loadbalancer.routing.balancer import Balancer
from loadbalancer.routing.needs import RequestNeeds
from loadbalancer.routing.state.memory import MemoryStore
from loadbalancer.settings.records import LimitsConfig


@dataclass(frozen=True)
class Caps:
    """Stand-in for config.Capabilities (only the fields the balancer reads)."""

    max_context_tokens: int | None = None
    max_output_tokens: int | None = None
    images: bool = True
    thinking: bool = True


@dataclass(frozen=True)
class Timeout:
    """Stand-in for config.Timeout."""

    connect: float = 5.0
    read: float = 25.0


@dataclass(frozen=True)
class Provider:
    """Stand-in for config.ProviderConfig (only the fields the balancer reads)."""

    name: str
    priority: int = 1
    weight: int = 1
    models: tuple[str, ...] = ("claude",)
    capabilities: Caps = field(default_factory=Caps)
    disabled_reason: str | None = None
    type: str = "anthropic"
    timeout: Timeout = field(default_factory=Timeout)

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def model_for(self, requested: str) -> str | None:
        return requested if requested in self.models else None


@dataclass(frozen=True)
class Routing:
    """Stand-in for config.RoutingConfig with the documented defaults."""

    strategy: str = "priority"
    affinity: bool = True
    affinity_ttl: float = 300.0
    max_attempts: int = 4
    deadline: float = 600.0
    cooldown: float = 10.0
    max_cooldown: float = 300.0
    failure_threshold: int = 3
    wait_for_cooldown: float = 15.0


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NoJitter(random.Random):
    """Random whose uniform() returns the midpoint, so cooldowns are exact; random() is scripted."""

    def __init__(self, draws: list[float] | None = None) -> None:
        super().__init__(0)
        self.draws = list(draws or [])

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2

    def random(self) -> float:
        return self.draws.pop(0) if self.draws else 0.99


NEEDS = RequestNeeds(model="claude")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(providers, clock=None, rng=None, store=None, **routing) -> Balancer:
    """Build a Balancer over stand-in providers with a fake clock and jitter-free random."""
    clock, rng = clock or FakeClock(), rng or NoJitter()
    return Balancer(providers, Routing(**routing), store=store or MemoryStore(clock=clock, rng=rng),
                    clock=clock, random=rng)


def names(plan) -> list[str]:
    return [p.name for p in plan]


def fail(balancer: Balancer, name: str, times: int = 1, retry_after: float | None = None) -> None:
    for _ in range(times):
        balancer.begin(name)
        balancer.failed(name, "HTTP 503", retry_after=retry_after)


def state_of(balancer: Balancer, name: str):
    return next(s for s in balancer.snapshot() if s.name == name)


# --- order and eligibility -------------------------------------------------------------------

def test_priority_groups_are_tried_in_ascending_order():
    balancer = make([Provider("backup", priority=2), Provider("main", priority=1),
                     Provider("last", priority=3)])
    assert names(balancer.plan(NEEDS)) == ["main", "backup", "last"]


def test_swrr_first_picks_split_exactly_by_weight():
    balancer = make([Provider("a", weight=3), Provider("b", weight=1)])
    firsts = Counter(balancer.plan(NEEDS)[0].name for _ in range(400))
    assert firsts == {"a": 300, "b": 100}


def test_swrr_interleaves_smoothly_like_nginx():
    balancer = make([Provider("a", weight=5), Provider("b"), Provider("c")])
    firsts = "".join(balancer.plan(NEEDS)[0].name for _ in range(14))
    assert firsts == "aabacaa" * 2


def test_rest_of_group_follows_then_next_priority_group():
    balancer = make([Provider("a", weight=3), Provider("b", weight=1), Provider("z", priority=2)],
                    max_attempts=10)
    plans = [names(balancer.plan(NEEDS)) for _ in range(4)]
    assert all(sorted(p[:2]) == ["a", "b"] and p[2] == "z" for p in plans)


@pytest.mark.parametrize("strategy", ["priority", "weighted", "least_busy", "latency"])
def test_each_provider_at_most_once_per_plan(strategy):
    providers = [Provider(f"p{i}", priority=i % 2, weight=i + 1) for i in range(6)]
    balancer = make(providers, strategy=strategy, max_attempts=10)
    for _ in range(50):
        plan = names(balancer.plan(NEEDS))
        assert len(plan) == len(set(plan)) == 6


def test_plan_is_capped_at_max_attempts():
    balancer = make([Provider(f"p{i}") for i in range(6)], max_attempts=2)
    assert len(balancer.plan(NEEDS)) == 2


def test_disabled_and_non_serving_providers_are_skipped():
    balancer = make([Provider("off", disabled_reason="no api key"),
                     Provider("other", models=("gpt",)), Provider("on")])
    assert names(balancer.plan(NEEDS)) == ["on"]
    assert names(balancer.serving("claude")) == ["on"]
    assert names(balancer.serving("gpt")) == ["other"]
    assert balancer.serving("nothing") == []


def test_the_providers_serving_a_model_are_kept_per_name_and_handed_out_as_copies(monkeypatch):
    from loadbalancer.routing import balancer as balancer_module

    balancer = make([Provider("other", models=("gpt",)), Provider("on")])
    first = balancer.serving("claude")
    first.clear()  # a caller's list is its own
    assert names(balancer.serving("claude")) == ["on"] and names(balancer.serving("gpt")) == ["other"]
    monkeypatch.setattr(balancer_module, "SERVING_MODELS_KEPT", 3)
    for number in range(10):  # client-chosen names: only so many are kept, answers stay right
        assert balancer.serving(f"gpt-{number}") == []
        assert len(balancer._serving_by_model) <= 3
    assert names(balancer.serving("gpt")) == ["other"] and names(balancer.serving("claude")) == ["on"]


@pytest.mark.parametrize("caps, needs, eligible", [
    (Caps(images=False), RequestNeeds("claude", has_images=True), False),
    (Caps(images=True), RequestNeeds("claude", has_images=True), True),
    (Caps(thinking=False), RequestNeeds("claude", wants_thinking=True), False),
    (Caps(thinking=False), RequestNeeds("claude"), True),
    (Caps(max_context_tokens=1000), RequestNeeds("claude", estimated_input_tokens=600, max_tokens=400), True),
    (Caps(max_context_tokens=1000), RequestNeeds("claude", estimated_input_tokens=601, max_tokens=400), False),
    (Caps(max_output_tokens=8192), RequestNeeds("claude", max_tokens=8192), True),
    (Caps(max_output_tokens=8192), RequestNeeds("claude", max_tokens=8193), False),
])
def test_capabilities_decide_eligibility(caps, needs, eligible):
    balancer = make([Provider("p", capabilities=caps)])
    assert names(balancer.plan(needs)) == (["p"] if eligible else [])
    assert balancer.seconds_until_available(needs) == (0.0 if eligible else None)


# --- cooldowns -------------------------------------------------------------------------------

def test_failed_provider_is_skipped_until_cooldown_passes(clock):
    balancer = make([Provider("a"), Provider("b", priority=2)], clock=clock)
    fail(balancer, "a")
    assert names(balancer.plan(NEEDS)) == ["b"]
    assert state_of(balancer, "a").state == "cooling_down"
    assert state_of(balancer, "a").cooldown_remaining == pytest.approx(10.0)
    clock.advance(9.9)
    assert names(balancer.plan(NEEDS)) == ["b"]
    clock.advance(0.2)
    assert names(balancer.plan(NEEDS)) == ["a", "b"]
    assert state_of(balancer, "a").state == "unhealthy"  # last request failed, no success since


def test_retry_after_longer_than_cooldown_is_honoured(clock):
    balancer = make([Provider("a")], clock=clock)
    fail(balancer, "a", retry_after=42.0)
    clock.advance(41.0)
    assert balancer.plan(NEEDS) == []
    assert balancer.seconds_until_available(NEEDS) == pytest.approx(1.0)
    clock.advance(1.0)
    assert names(balancer.plan(NEEDS)) == ["a"]


def test_cooldown_never_shrinks(clock):
    balancer = make([Provider("a")], clock=clock)
    fail(balancer, "a", retry_after=120.0)
    balancer.begin("a")
    balancer.failed("a", "429", retry_after=1.0)
    assert state_of(balancer, "a").cooldown_remaining == pytest.approx(120.0)


def test_cooldown_grows_exponentially_and_is_capped(clock):
    balancer = make([Provider("a")], clock=clock, failure_threshold=100, max_cooldown=60.0)
    seen = []
    for _ in range(5):
        fail(balancer, "a")
        seen.append(state_of(balancer, "a").cooldown_remaining)
        clock.advance(1000.0)
    assert seen == pytest.approx([10.0, 20.0, 40.0, 60.0, 60.0])


def test_jitter_stays_within_ten_percent(clock):
    for seed in range(20):
        balancer = make([Provider("a")], clock=clock, rng=random.Random(seed))
        fail(balancer, "a")
        assert 9.0 <= state_of(balancer, "a").cooldown_remaining <= 11.0


def test_success_resets_consecutive_failures(clock):
    balancer = make([Provider("a")], clock=clock)
    fail(balancer, "a", times=2)
    clock.advance(100.0)
    balancer.begin("a")
    balancer.succeeded("a", 0.5)
    snap = state_of(balancer, "a")
    assert (snap.consecutive_failures, snap.state, snap.failures, snap.requests) == (0, "healthy", 2, 3)
    fail(balancer, "a")
    assert state_of(balancer, "a").cooldown_remaining == pytest.approx(10.0)  # back to the base


# --- circuit breaker -------------------------------------------------------------------------

def open_circuit(balancer: Balancer, clock: FakeClock) -> None:
    """Three failures in a row, each after the previous cooldown, open the circuit."""
    for _ in range(3):
        fail(balancer, "a")
        clock.advance(1000.0)
    clock.advance(-1000.0)


def test_circuit_opens_after_threshold_and_lets_one_trial_through(clock):
    balancer = make([Provider("a"), Provider("b", priority=2)], clock=clock)
    open_circuit(balancer, clock)
    snap = state_of(balancer, "a")
    assert (snap.circuit, snap.state, snap.consecutive_failures) == ("open", "cooling_down", 3)
    assert names(balancer.plan(NEEDS)) == ["b"]
    clock.advance(snap.cooldown_remaining)
    assert state_of(balancer, "a").circuit == "half_open"
    assert names(balancer.plan(NEEDS)) == ["a", "b"]  # the single trial
    assert names(balancer.plan(NEEDS)) == ["b"]  # a concurrent request does not get it too
    balancer.begin("a")
    assert names(balancer.plan(NEEDS)) == ["b"]
    balancer.succeeded("a", 0.2)
    assert state_of(balancer, "a").circuit == "closed"
    assert names(balancer.plan(NEEDS)) == ["a", "b"]
    assert names(balancer.plan(NEEDS)) == ["a", "b"]


def test_failed_trial_reopens_with_longer_cooldown(clock):
    balancer = make([Provider("a")], clock=clock)
    open_circuit(balancer, clock)
    clock.advance(state_of(balancer, "a").cooldown_remaining)
    assert names(balancer.plan(NEEDS)) == ["a"]
    fail(balancer, "a")
    snap = state_of(balancer, "a")
    assert (snap.circuit, snap.cooldown_remaining) == ("open", pytest.approx(80.0))
    assert balancer.plan(NEEDS) == []


def test_an_abandoned_trial_lapses_after_connect_plus_read_timeout(clock):
    balancer = make([Provider("a")], clock=clock)  # timeouts 5 + 25 s
    open_circuit(balancer, clock)
    clock.advance(state_of(balancer, "a").cooldown_remaining)
    assert names(balancer.plan(NEEDS)) == ["a"]  # claimed, but the worker that holds it died
    assert balancer.plan(NEEDS) == []
    assert balancer.seconds_until_available(NEEDS) == pytest.approx(1.0)  # waiters re-check
    clock.advance(29.9)
    assert balancer.plan(NEEDS) == []
    clock.advance(0.1)
    assert names(balancer.plan(NEEDS)) == ["a"]


def test_a_released_trial_goes_to_the_next_request_at_once(clock):
    balancer = make([Provider("a"), Provider("b", priority=2)], clock=clock)
    open_circuit(balancer, clock)
    clock.advance(state_of(balancer, "a").cooldown_remaining)
    assert names(balancer.plan(NEEDS)) == ["a", "b"]
    balancer.begin("a")
    assert names(balancer.plan(NEEDS)) == ["b"]
    balancer.released("a")  # the client's own error: no verdict on the provider
    assert names(balancer.plan(NEEDS)) == ["a", "b"]
    assert state_of(balancer, "a").circuit == "half_open"


def test_two_balancers_on_one_store_share_one_trial(clock):
    store = MemoryStore(clock=clock, rng=NoJitter())
    first, second = (make([Provider("a"), Provider("b", priority=2)], clock=clock, store=store)
                     for _ in range(2))
    open_circuit(first, clock)
    clock.advance(state_of(second, "a").cooldown_remaining)
    assert names(second.plan(NEEDS)) == ["a", "b"]
    assert names(first.plan(NEEDS)) == ["b"]
    second.begin("a")
    second.succeeded("a", 0.1)
    assert names(first.plan(NEEDS)) == ["a", "b"]


def test_a_plan_skips_excluded_providers_before_claiming_a_trial(clock):
    balancer = make([Provider("a"), Provider("b", priority=2)], clock=clock)
    open_circuit(balancer, clock)
    clock.advance(state_of(balancer, "a").cooldown_remaining)
    assert names(balancer.plan(NEEDS, exclude={"a"})) == ["b"]
    assert names(balancer.plan(NEEDS)) == ["a", "b"]  # the trial was not taken by the first plan


# --- probes, availability --------------------------------------------------------------------

def test_unhealthy_probe_moves_provider_to_the_end_and_ok_restores_it():
    balancer = make([Provider("a"), Provider("b", priority=2)])
    balancer.probe_result("a", ok=False, latency_ms=None, error="connect refused")
    assert names(balancer.plan(NEEDS)) == ["b", "a"]
    snap = state_of(balancer, "a")
    assert (snap.state, snap.last_error, snap.last_error_at) == ("unhealthy", "connect refused", 1_700_000_000.0)
    balancer.probe_result("a", ok=True, latency_ms=120.0, error=None)
    assert names(balancer.plan(NEEDS)) == ["a", "b"]
    assert state_of(balancer, "a").latency_ms == pytest.approx(120.0)


def test_seconds_until_available_reports_the_first_to_return(clock):
    balancer = make([Provider("a"), Provider("b"), Provider("x", models=("gpt",))], clock=clock)
    fail(balancer, "a", retry_after=50.0)
    fail(balancer, "b", retry_after=20.0)
    assert balancer.plan(NEEDS) == []
    assert balancer.seconds_until_available(NEEDS) == pytest.approx(20.0)
    assert balancer.seconds_until_available(RequestNeeds("unknown-model")) is None
    assert balancer.seconds_until_available(RequestNeeds("gpt")) == 0.0


# --- strategies ------------------------------------------------------------------------------

def test_weighted_ignores_priority():
    balancer = make([Provider("a", priority=1), Provider("b", priority=9, weight=3)], strategy="weighted")
    firsts = Counter(balancer.plan(NEEDS)[0].name for _ in range(400))
    assert firsts == {"a": 100, "b": 300}


def test_least_busy_prefers_fewest_in_flight_then_priority():
    balancer = make([Provider("a"), Provider("b"), Provider("c", priority=2)], strategy="least_busy")
    balancer.begin("a")
    balancer.begin("a")
    balancer.begin("b")
    assert names(balancer.plan(NEEDS)) == ["c", "b", "a"]
    balancer.begin("c")
    assert names(balancer.plan(NEEDS)) == ["b", "c", "a"]
    balancer.released("a")
    balancer.released("a")
    assert names(balancer.plan(NEEDS)) == ["a", "b", "c"]
    assert state_of(balancer, "a").in_flight == 0


def test_latency_prefers_fastest_and_unmeasured():
    balancer = make([Provider("slow"), Provider("fast"), Provider("new")], strategy="latency")
    for name, seconds in [("slow", 2.0), ("fast", 0.3)]:
        balancer.begin(name)
        balancer.succeeded(name, seconds)
    assert names(balancer.plan(NEEDS)) == ["new", "fast", "slow"]


def test_latency_ewma_uses_alpha_0_3():
    balancer = make([Provider("a")])
    for seconds in (1.0, 2.0):
        balancer.begin("a")
        balancer.succeeded("a", seconds)
    assert state_of(balancer, "a").latency_ms == pytest.approx(1300.0)


def test_latency_exploration_swaps_first_two_with_probability_0_1():
    rng = NoJitter(draws=[0.5, 0.05, 0.2])
    balancer = make([Provider("slow"), Provider("fast")], strategy="latency", rng=rng)
    for name, seconds in [("slow", 2.0), ("fast", 0.3)]:
        balancer.begin(name)
        balancer.succeeded(name, seconds)
    assert [names(balancer.plan(NEEDS)) for _ in range(3)] == [
        ["fast", "slow"], ["slow", "fast"], ["fast", "slow"]]


def test_latency_exploration_rate_with_seeded_random():
    balancer = make([Provider("slow"), Provider("fast")], strategy="latency", rng=random.Random(7))
    for name, seconds in [("slow", 2.0), ("fast", 0.3)]:
        balancer.begin(name)
        balancer.succeeded(name, seconds)
    explored = sum(balancer.plan(NEEDS)[0].name == "slow" for _ in range(2000))
    assert 140 <= explored <= 260


# --- affinity --------------------------------------------------------------------------------

def homes(balancer: Balancer, keys) -> dict[str, str]:
    """Conversation key -> the provider its plan puts first."""
    return {key: balancer.plan(NEEDS, key)[0].name for key in keys}


KEYS = [f"conversation-{number}" for number in range(400)]


def test_a_conversation_always_gets_the_same_first_provider():
    balancer = make([Provider("a"), Provider("b"), Provider("c")])
    first = homes(balancer, KEYS)
    assert all(homes(balancer, KEYS) == first for _ in range(3))
    assert set(first.values()) == {"a", "b", "c"}  # and conversations are spread over all of them


def test_every_balancer_anywhere_agrees_on_a_conversation_s_provider():
    providers = [Provider("a"), Provider("b"), Provider("c")]
    here, elsewhere = make(providers), make(list(reversed(providers)), rng=random.Random(99))
    for _ in range(5):
        here.plan(NEEDS)  # a different round-robin position changes nothing
    assert homes(here, KEYS) == homes(elsewhere, KEYS)


def test_conversations_are_shared_by_weight():
    balancer = make([Provider("a", weight=3), Provider("b", weight=1)])
    counts = Counter(homes(balancer, [f"k{n}" for n in range(4000)]).values())
    assert 0.72 <= counts["a"] / 4000 <= 0.78


def test_only_the_conversations_of_a_provider_that_leaves_move(clock):
    balancer = make([Provider("a"), Provider("b"), Provider("c")], clock=clock)
    before = homes(balancer, KEYS)
    fail(balancer, "b", retry_after=60.0)
    during = homes(balancer, KEYS)
    assert {key: home for key, home in during.items() if before[key] != "b"} == \
        {key: home for key, home in before.items() if home != "b"}
    assert "b" not in during.values()
    clock.advance(61.0)
    assert homes(balancer, KEYS) == before  # back where their prompt cache is


def test_affinity_stays_within_the_best_priority_unless_weighted():
    providers = [Provider("a"), Provider("b"), Provider("backup", priority=2)]
    assert set(homes(make(providers), KEYS).values()) == {"a", "b"}
    assert set(homes(make(providers, strategy="weighted"), KEYS).values()) == {"a", "b", "backup"}


def test_affinity_is_off_when_routing_says_so():
    balancer = make([Provider("a"), Provider("b")], affinity=False)
    assert Counter(balancer.plan(NEEDS, "conv-1")[0].name for _ in range(10)) == {"a": 5, "b": 5}


def test_affinity_ignores_a_provider_a_probe_found_unhealthy():
    balancer = make([Provider("a"), Provider("b")])
    on_b = [key for key, home in homes(balancer, KEYS).items() if home == "b"]
    balancer.probe_result("b", ok=False, latency_ms=None, error="probe 500")
    assert {names(balancer.plan(NEEDS, key))[0] for key in on_b} == {"a"}


def test_the_rest_of_a_plan_follows_the_strategy():
    balancer = make([Provider("a"), Provider("b"), Provider("c", priority=2)])
    plan = names(balancer.plan(NEEDS, "conv"))
    assert plan[-1] == "c" and len(plan) == 3


# --- helpers ---------------------------------------------------------------------------------

BODY = {"model": "claude", "system": "be brief", "messages": [{"role": "user", "content": "hi"}]}


def test_affinity_key_precedence():
    def key(body=BODY, **headers):
        return affinity_key_for(body, {name.replace("_", "-"): value for name, value in headers.items()})

    with_user = {**BODY, "metadata": {"user_id": '{"session":"s1"}'}}
    assert key(with_user, x_claude_code_session_id="cc") == key(with_user)  # user_id first
    assert key(x_claude_code_session_id="cc", x_session_id="generic") == key(x_claude_code_session_id="cc")
    assert key(**{"X-Claude-Code-Session-Id": "cc"}) == key(x_claude_code_session_id="cc")
    assert key(**{"X-Session-Id": "generic"}) == key(x_session_id="generic")
    assert len({key(with_user), key(x_claude_code_session_id="cc"), key(x_session_id="generic"), key()}) == 4
    assert key({"model": "claude"}) is None
    assert key({"model": "claude", "messages": []}) is None
    assert key({"model": "claude", "messages": [{"role": "user", "content": [{"type": "image"}]}]}) is None


def test_an_affinity_key_is_a_fixed_size_digest_whatever_the_client_sends():
    huge = {**BODY, "metadata": {"user_id": "u" * (1 << 20)}}
    assert len(affinity_key_for(huge, {})) == 64
    assert len(affinity_key_for(BODY, {"x-session-id": "s" * 60000})) == 64
    assert "u" * 100 not in affinity_key_for(huge, {})


def test_affinity_key_falls_back_to_hash_of_system_and_first_user_message():
    block_form = {"system": [{"type": "text", "text": "be brief"}],
                  "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                               {"role": "assistant", "content": "hello"}]}
    key = affinity_key_for(BODY, {})
    assert key is not None and len(key) == 64
    assert affinity_key_for(block_form, {}) == key  # later turns do not change the key
    assert affinity_key_for({**BODY, "system": "be long"}, {}) != key


LONG_SYSTEM = [{"type": "text", "text": "You are a coding agent. " * 120, "cache_control": {"type": "ephemeral"}},
               {"type": "image"}, {"type": "text", "text": "Be brief \ud800 even here."}]


def first_turn_key(system, first_text: str) -> str:
    """The key as its definition says: the text of the system prompt and of the first user turn, hashed."""
    seed = "".join(block["text"] for block in system if "text" in block) if isinstance(system, list) else system
    return hashlib.sha256(f"first turn\x00{seed}\x00{first_text}".encode("utf-8", errors="surrogatepass")).hexdigest()


@pytest.mark.parametrize("system", [LONG_SYSTEM, "x" * 5000, "short one"])
def test_a_long_system_prompt_sent_again_gives_the_same_key_hashed_once(monkeypatch, system):
    monkeypatch.setattr(affinity, "_system_digests", {})
    expected = [first_turn_key(system, text) for text in ("first", "second", "first", "first")]
    hashed, sha256 = [], hashlib.sha256
    monkeypatch.setattr(affinity.hashlib, "sha256", lambda data: hashed.append(data) or sha256(data))
    keys = [affinity_key_for({"system": system, "messages": [{"role": "user", "content": text}]}, {})
            for text in ("first", "second", "first")]
    copy = json.loads(json.dumps(system))  # the same prompt, as another object: found by itself
    keys.append(affinity_key_for({"system": copy, "messages": [{"role": "user", "content": "first"}]}, {}))
    assert keys == expected
    assert len(hashed) == (2 if len(json.dumps(system)) > affinity.REMEMBERED_SYSTEM_FROM else 4)


def test_remembered_system_prompts_are_bounded_and_each_stays_its_own(monkeypatch):
    monkeypatch.setattr(affinity, "_system_digests", {})
    monkeypatch.setattr(affinity, "REMEMBERED_SYSTEMS_KEPT", 3)
    systems = [f"prompt {number} " * 500 for number in range(8)]
    for _ in range(2):
        for system in systems:
            body = {"system": system, "messages": [{"role": "user", "content": "hi"}]}
            assert affinity_key_for(body, {}) == first_turn_key(system, "hi")
    assert len(affinity._system_digests) == 3


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}


@pytest.mark.parametrize("extra, content, images, thinking", [
    ({}, "hi", False, False),
    ({}, [IMAGE], True, False),
    ({}, [{"type": "tool_result", "tool_use_id": "t1", "content": [IMAGE]}], True, False),
    ({}, [{"type": "tool_result", "tool_use_id": "t1", "content": "text only"}], False, False),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "hi", False, True),
    ({"thinking": {"type": "adaptive"}}, "hi", False, True),
    ({"thinking": {"type": "disabled"}}, "hi", False, False),
])
def test_request_needs_from_the_checked_request(extra, content, images, thinking):
    body = {"model": "claude", "max_tokens": 16000, **extra,
            "messages": [{"role": "user", "content": content}]}
    needs = RequestNeeds.from_request(parse_messages_request(json.dumps(body).encode(), LimitsConfig()))
    assert (needs.model, needs.max_tokens, needs.has_images, needs.wants_thinking) == (
        "claude", 16000, images, thinking)


def test_request_needs_estimates_tokens_from_the_body_size():
    def needs_of(content: str) -> RequestNeeds:
        body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": content}]}
        return RequestNeeds.from_request(parse_messages_request(json.dumps(body).encode(), LimitsConfig()))

    small, large = needs_of("x"), needs_of("x" * 4000)
    assert 0 < small.estimated_input_tokens < 30
    assert large.estimated_input_tokens - small.estimated_input_tokens == pytest.approx(1000, abs=1)


# --- concurrency and reload ------------------------------------------------------------------

def test_thread_safety_counts_stay_consistent():
    balancer = Balancer([Provider("a", weight=2), Provider("b"), Provider("c", priority=2)], Routing())
    per_thread = 300

    def worker() -> None:
        for i in range(per_thread):
            chosen = balancer.plan(NEEDS, affinity_key=f"k{i % 7}")[0].name
            balancer.begin(chosen)
            balancer.succeeded(chosen, 0.01)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snaps = balancer.snapshot()
    assert sum(s.requests for s in snaps) == 16 * per_thread
    assert all(s.in_flight == 0 and s.failures == 0 for s in snaps)


def test_carry_state_from_keeps_surviving_providers(clock):
    old = make([Provider("a"), Provider("gone")], clock=clock)
    fail(old, "a", retry_after=60.0)
    old.begin("a")  # still in flight on the old balancer
    old.begin("gone")
    old.succeeded("gone", 0.1)
    new = make([Provider("a"), Provider("fresh")], clock=clock, store=old.store)
    new.carry_state_from(old)
    a = state_of(new, "a")
    assert (a.state, a.failures, a.requests, a.in_flight) == ("cooling_down", 1, 2, 0)
    assert a.cooldown_remaining == pytest.approx(60.0)
    assert state_of(new, "fresh").state == "healthy"
    assert names(new.plan(NEEDS, "conv")) == ["fresh"]  # a cooling "a" is passed over
    new.released("a")  # a request begun before the reload ends here: no negative count
    assert state_of(new, "a").in_flight == 0


def test_snapshot_lists_disabled_providers_in_config_order():
    balancer = make([Provider("z"), Provider("off", disabled_reason="missing key"), Provider("a")])
    assert [(s.name, s.state, s.circuit) for s in balancer.snapshot()] == [
        ("z", "healthy", "closed"), ("off", "disabled", "closed"), ("a", "healthy", "closed")]


def test_unknown_provider_names_are_ignored():
    balancer = make([Provider("a")])
    for call in (lambda: balancer.begin("x"), lambda: balancer.failed("x", "err"),
                 lambda: balancer.succeeded("x", 0.1), lambda: balancer.released("x"),
                 lambda: balancer.probe_result("x", False, None, "err")):
        call()
    assert state_of(balancer, "a").requests == 0


class MaxJitter(NoJitter):
    """Random whose uniform() always returns the upper bound (+10% jitter)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_jitter_never_exceeds_max_cooldown(clock):
    balancer = make([Provider("a")], clock=clock, rng=MaxJitter(), max_cooldown=10.0)
    fail(balancer, "a")
    assert state_of(balancer, "a").cooldown_remaining == pytest.approx(10.0)


def test_running_trial_makes_waiters_recheck_soon(clock):
    balancer = make([Provider("a")], clock=clock)
    open_circuit(balancer, clock)
    clock.advance(state_of(balancer, "a").cooldown_remaining)
    balancer.plan(NEEDS)
    balancer.begin("a")
    assert balancer.plan(NEEDS) == []
    assert balancer.seconds_until_available(NEEDS) == pytest.approx(1.0)


def test_real_success_clears_an_unhealthy_probe_verdict():
    balancer = make([Provider("a"), Provider("b", priority=2)])
    balancer.probe_result("b", ok=False, latency_ms=None, error="probe timeout")
    balancer.begin("b")
    balancer.succeeded("b", 0.1)
    assert state_of(balancer, "b").state == "healthy"
    assert names(balancer.plan(NEEDS)) == ["a", "b"]


def test_failed_trial_reopens_even_if_a_reload_raised_the_threshold(clock):
    old = make([Provider("a")], clock=clock)
    open_circuit(old, clock)
    new = make([Provider("a")], clock=clock, failure_threshold=10, store=old.store)
    new.carry_state_from(old)
    clock.advance(state_of(new, "a").cooldown_remaining)
    assert names(new.plan(NEEDS)) == ["a"]
    fail(new, "a")
    assert state_of(new, "a").circuit == "open"


def test_failure_records_reason_and_wall_clock_time():
    balancer = make([Provider("a")])
    fail(balancer, "a")
    snap = state_of(balancer, "a")
    assert (snap.last_error, snap.last_error_at) == ("HTTP 503", 1_700_000_000.0)


def test_half_open_provider_behind_the_head_of_a_plan_keeps_its_trial_slot(clock):
    balancer = make([Provider("a"), Provider("z", priority=2)], clock=clock)
    for _ in range(3):
        fail(balancer, "z")
        clock.advance(1000.0)
    assert state_of(balancer, "z").circuit == "half_open"
    assert names(balancer.plan(NEEDS)) == ["a", "z"]
    assert names(balancer.plan(NEEDS)) == ["a", "z"]  # not held: "a" answers most requests
    fail(balancer, "a")
    assert names(balancer.plan(NEEDS)) == ["z"]  # the re-plan after a failure holds the trial
    assert balancer.plan(NEEDS) == []


def test_works_with_the_real_config_records(clock):
    config = pytest.importorskip("config")
    route = config.ModelRoute(pattern="claude-*", target="")
    providers = [
        config.ProviderConfig(name="main", type="anthropic", base_url="http://127.0.0.1:1", api_key="k",
                              models=(route,), weight=3),
        config.ProviderConfig(name="side", type="openai", base_url="http://127.0.0.1:2", api_key="k",
                              models=(route,), capabilities=config.Capabilities(images=False)),
        config.ProviderConfig(name="off", type="anthropic", base_url="http://127.0.0.1:3", api_key=None,
                              disabled_reason="no key"),
    ]
    balancer = Balancer(providers, config.RoutingConfig(), clock=clock, random=NoJitter())
    needs = RequestNeeds(model="claude-sonnet-4")
    assert Counter(balancer.plan(needs)[0].name for _ in range(8)) == {"main": 6, "side": 2}
    assert names(balancer.plan(RequestNeeds(model="claude-x", has_images=True))) == ["main"]
    assert balancer.plan(RequestNeeds(model="gpt-4o")) == []
    assert [s.state for s in balancer.snapshot()] == ["healthy", "healthy", "disabled"]
