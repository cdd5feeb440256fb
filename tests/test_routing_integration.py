"""Routing through the real service: strategies, conversation affinity and capabilities.

One gunicorn worker, so the balancer's per-worker state (round-robin position, latency) is
the one every request sees; providers "a" and "b" are fake backends on 127.0.0.1.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable

import pytest
import requests

from support.fake_backend import FakeBackend, anthropic_error, slow_first_byte
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config
from support.service_rig import wait_until_rested

pytestmark = pytest.mark.integration

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


@pytest.fixture
def two(fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]):
    """Factory: (lb, a, b) for a routing section and per-provider overrides."""
    def start(routing: dict[str, Any], a: dict | None = None, b: dict | None = None):
        backend_a, backend_b = fake_backend(), fake_backend()
        config = providers_config(anthropic_provider("a", backend_a.url, **(a or {})),
                                  anthropic_provider("b", backend_b.url, **(b or {})),
                                  routing={"affinity": False, **routing})
        return lb(config), backend_a, backend_b
    return start


def served_by(process: LoadBalancerProcess, body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> str:
    """The provider that answered one request (asserting it succeeded)."""
    response = requests.post(f"{process.url}/v1/messages", json=body or BODY, headers=headers, timeout=15)
    assert response.status_code == 200, response.text
    return response.headers["x-lb-provider"]


def conversation(user_text: str, user_id: str | None = None, turns: int = 1) -> dict[str, Any]:
    """A Messages body of a conversation with `turns` user turns."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": user_text}]
    for turn in range(1, turns):
        messages += [{"role": "assistant", "content": f"answer {turn}"}, {"role": "user", "content": f"more {turn}"}]
    body: dict[str, Any] = {**BODY, "system": "You are a coding agent.", "messages": messages}
    if user_id:
        body["metadata"] = {"user_id": user_id}
    return body


# --- strategies ------------------------------------------------------------------------

def test_priority_sends_everything_to_the_lowest_priority_number(two) -> None:
    process, _, _ = two({"strategy": "priority"}, a={"priority": 2}, b={"priority": 1})
    assert Counter(served_by(process) for _ in range(10)) == {"b": 10}


def test_weighted_splits_by_weight_exactly_over_a_cycle(two) -> None:
    process, _, _ = two({"strategy": "weighted"}, a={"weight": 3}, b={"weight": 1})
    assert Counter(served_by(process) for _ in range(40)) == {"a": 30, "b": 10}


def test_least_busy_sends_the_next_request_to_the_idle_provider(two) -> None:
    # Priorities only break ties of equal load: idle, a is first; busy, it is passed over.
    process, a, _ = two({"strategy": "least_busy"}, a={"priority": 1}, b={"priority": 2})
    assert served_by(process) == "a"
    a.default = slow_first_byte(1.0)
    slow = threading.Thread(target=served_by, args=(process,))
    slow.start()
    a.wait_for_requests(2)
    assert served_by(process) == "b"  # a has one request in flight, b none
    slow.join(5)
    assert served_by(process) == "a"  # idle again


def test_latency_prefers_the_faster_provider_and_still_explores(two) -> None:
    process, a, b = two({"strategy": "latency"})
    a.default = slow_first_byte(0.1)
    counts = Counter(served_by(process) for _ in range(30))
    # a serves the first request (both unmeasured) and each exploration (p = 0.1 of the
    # other 29, about 3); 12 or more is a one-in-100,000 run, so it points to a real fault.
    assert counts["b"] >= 18
    # Once a is fast again an exploration request measures it, and it takes the traffic back.
    a.default = slow_first_byte(0)
    b.default = slow_first_byte(0.1)
    # a's stale slow figure keeps it second until an exploration (1 in 10) measures it again;
    # 150 requests miss that one run in ten million.
    recent: list[str] = []
    for _ in range(150):
        recent.append(served_by(process))
        if recent[-3:] == ["a", "a", "a"]:
            break
    assert recent[-3:] == ["a", "a", "a"], Counter(recent)
    after = [served_by(process) for _ in range(20)]
    assert after.count("a") >= 13  # exploration still sends about 1 in 10 to b


# --- affinity --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["user_id", "session header", "system prompt and first message"])
def test_a_conversation_sticks_to_one_provider_over_turns(two, kind: str) -> None:
    process, _, _ = two({"strategy": "weighted", "affinity": True})
    for number in range(4):
        body = conversation(f"task {number}", user_id=f"user-{number}" if kind == "user_id" else None)
        headers = {"x-claude-code-session-id": f"session-{number}"} if kind == "session header" else None
        providers = {served_by(process, conversation(f"task {number}", body.get("metadata", {}).get("user_id"),
                                                     turns), headers)
                     for turns in range(1, 6)}
        assert len(providers) == 1, f"conversation {number} moved between {providers}"


def test_without_affinity_the_same_conversation_is_spread(two) -> None:
    process, _, _ = two({"strategy": "weighted", "affinity": False})
    assert {served_by(process, conversation("task", turns=turns)) for turns in range(1, 5)} == {"a", "b"}


def test_a_conversation_moves_only_while_its_provider_is_out_and_then_comes_home(two) -> None:
    process, a, b = two({"strategy": "weighted", "affinity": True, "cooldown": 1, "max_cooldown": 1})
    body = conversation("refactor", user_id="user-x")
    home = served_by(process, body)
    backend = {"a": a, "b": b}[home]
    other = "b" if home == "a" else "a"
    backend.queue(anthropic_error(529))
    assert served_by(process, body) == other  # failover
    assert served_by(process, conversation("refactor", "user-x", 2)) == other  # while home cools down
    wait_until_rested(process)
    # Back where its prompt cache is; every instance makes the same choice without a table.
    assert [served_by(process, conversation("refactor", "user-x", turns)) for turns in (3, 4)] == [home] * 2


# --- capabilities ------------------------------------------------------------------------

CAPABILITY_CASES = {
    "image to a text-only provider": ({"images": False}, {**BODY, "messages": [
        {"role": "user", "content": [IMAGE, {"type": "text", "text": "what is this"}]}]}),
    "image inside a tool result": ({"images": False}, {**BODY, "messages": [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [IMAGE]}]}]}),
    "thinking": ({"thinking": False}, {**BODY, "max_tokens": 2048,
                                       "thinking": {"type": "enabled", "budget_tokens": 1024}}),
    "max output tokens": ({"max_output_tokens": 1000}, {**BODY, "max_tokens": 4000}),
    "context window": ({"max_context_tokens": 2000}, {**BODY, "messages": [
        {"role": "user", "content": "word " * 4000}]}),
}


@pytest.mark.parametrize("capabilities, body", CAPABILITY_CASES.values(), ids=CAPABILITY_CASES.keys())
def test_a_request_a_provider_cannot_serve_skips_it_up_front(two, capabilities: dict, body: dict) -> None:
    process, a, _ = two({"strategy": "priority"}, a={"priority": 1, "capabilities": capabilities},
                        b={"priority": 2})
    assert served_by(process, body) == "b"
    assert a.requests_to("/v1/messages") == []  # skipped, not failed over from
    assert served_by(process) == "a"  # an ordinary request still goes to a


def test_no_capable_provider_is_a_client_error_that_names_the_need(fake_backend, lb) -> None:
    backend = fake_backend()
    process = lb(providers_config(anthropic_provider("text-only", backend.url,
                                                     capabilities={"images": False})))
    body = {**BODY, "messages": [{"role": "user", "content": [IMAGE]}]}
    response = requests.post(f"{process.url}/v1/messages", json=body, timeout=15)
    assert response.status_code == 400, response.text
    assert "image" in response.json()["error"]["message"]
    assert backend.requests_to("/v1/messages") == []
