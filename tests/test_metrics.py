"""Prometheus metrics: what one finished request adds, provider gauges, and `/metrics` itself."""
from __future__ import annotations

from typing import Any

import pytest
import responses
from prometheus_client.parser import text_string_to_metric_families

from loadbalancer.routing.balancer import ProviderSnapshot
from loadbalancer.ops import metrics as metrics_module
from loadbalancer.ops.metrics import Metrics, request_outcome
from loadbalancer.request_record import RequestRecord
from support.lb_process import anthropic_provider, providers_config
from loadbalancer.toolcalls.rewrite import ToolCallStats

PROVIDER_URL = "http://127.0.0.1:1"


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of one sample in the exposition, or None when it is absent."""
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for item in family.samples:
            if item.name == name and all(item.labels.get(key) == value for key, value in labels.items()):
                return item.value
    return None


def finished_record(outcomes: list[tuple[str, str]], status: int = 200, **fields: Any) -> RequestRecord:
    """A request record whose attempts ended as `outcomes` [(provider, outcome), ...]."""
    record = RequestRecord(request_id="req_test", method="POST", path="/v1/messages",
                           model="claude-test", status=status, **fields)
    for provider, outcome in outcomes:
        record.start_attempt(provider).finish(outcome)
    return record


@pytest.mark.parametrize(("status", "outcomes", "stream_error", "expected"), [
    (200, [("a", "ok")], None, "success"),
    (200, [("a", "ok")], "provider stalled", "stream_error"),
    (400, [], None, "client_error"),
    (400, [("a", "400_passed_through")], None, "provider_rejected"),
    (429, [], None, "rate_limited"),
    (529, [("a", "connect_error")], None, "failed"),
])
def test_request_outcome_names_how_the_request_ended(status: int, outcomes: list[tuple[str, str]],
                                                     stream_error: str | None, expected: str) -> None:
    record = finished_record(outcomes, status=status, stream_error=stream_error)
    assert request_outcome(record) == expected


def test_a_request_after_failover_counts_request_failed_attempt_latency_tokens_and_tool_calls() -> None:
    metrics = Metrics()
    record = finished_record([("a", "connect_error"), ("b", "ok")], client="alice", stream=True,
                             input_tokens=12, output_tokens=7, cache_read_tokens=100, cache_write_tokens=20,
                             first_token_seconds=0.3,
                             tool_call_stats=ToolCallStats(parsed=2, repaired=1, rejected=1))
    metrics.observe_request(record, model_is_known=lambda model: True)
    assert sample(metrics, "loadbalancer_requests_total", provider="b", model="claude-test",
                  status="200", outcome="success", client="alice") == 1
    assert sample(metrics, "loadbalancer_attempt_failures_total", provider="a", reason="connect_error") == 1
    assert sample(metrics, "loadbalancer_attempt_failures_total", provider="b") is None
    assert sample(metrics, "loadbalancer_attempts_total", provider="b", outcome="ok") == 1
    assert sample(metrics, "loadbalancer_tokens_total", provider="b", direction="input") == 12
    assert sample(metrics, "loadbalancer_tokens_total", provider="b", direction="output") == 7
    assert sample(metrics, "loadbalancer_tokens_total", provider="b", direction="cache_read") == 100
    assert sample(metrics, "loadbalancer_tokens_total", provider="b", direction="cache_write") == 20
    assert sample(metrics, "loadbalancer_time_to_first_token_seconds_count", provider="b", stream="true") == 1
    assert sample(metrics, "loadbalancer_time_to_first_token_seconds_sum", provider="b") == pytest.approx(0.3)
    assert sample(metrics, "loadbalancer_request_duration_seconds_count", provider="b") == 1
    for result, count in (("parsed", 2), ("repaired", 1), ("rejected", 1)):
        assert sample(metrics, "loadbalancer_text_tool_calls_total", provider="b", result=result) == count


def test_series_found_again_by_their_labels_count_like_prometheus_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "LABELLED_KEPT", 3)  # forgotten and found again several times
    metrics = Metrics()
    clients = ["alice", "bob", "alice", "carol", "alice", "bob"]
    for client in clients:
        metrics.observe_request(finished_record([("a", "ok")], client=client, input_tokens=5),
                                model_is_known=lambda model: True)
    for client in set(clients):
        assert sample(metrics, "loadbalancer_requests_total", provider="a", client=client) == clients.count(client)
        assert metrics._series(metrics.requests, "a", "claude-test", "200", "success", client) is \
            metrics.requests.labels("a", "claude-test", "200", "success", client)
    assert sample(metrics, "loadbalancer_tokens_total", provider="a", direction="input") == 5 * len(clients)
    assert sample(metrics, "loadbalancer_request_duration_seconds_count", provider="a") == len(clients)
    assert len(metrics._labelled_series) <= 3


def test_models_no_provider_serves_share_one_label() -> None:
    metrics = Metrics()
    for model in ("made-up-1", "made-up-2"):
        record = finished_record([], status=503)
        record.model = model
        metrics.observe_request(record, model_is_known=lambda name: False)
    assert sample(metrics, "loadbalancer_requests_total", model="other", status="503") == 2


def test_provider_gauges_show_exactly_one_state_per_provider() -> None:
    metrics = Metrics()
    snapshot = ProviderSnapshot(name="a", state="cooling_down", circuit="open", last_error="x",
                                last_error_at=None, latency_ms=None, consecutive_failures=3,
                                cooldown_remaining=4.0, in_flight=0, requests=3, failures=3)
    metrics.set_provider_states([snapshot])
    assert sample(metrics, "loadbalancer_provider_up", provider="a") == 0
    assert sample(metrics, "loadbalancer_provider_state", provider="a", state="cooling_down") == 1
    assert sample(metrics, "loadbalancer_provider_state", provider="a", state="healthy") == 0


def test_provider_totals_sum_requests_failed_attempts_and_tool_calls_per_provider() -> None:
    metrics = Metrics()
    for _ in range(2):
        record = finished_record([("a", "529"), ("b", "ok")], tool_call_stats=ToolCallStats(parsed=1))
        metrics.observe_request(record, model_is_known=lambda model: True)
    totals = metrics.provider_totals()
    assert totals["b"]["requests"] == 2 and totals["b"]["tool_calls_parsed"] == 2
    assert totals["a"]["failed_attempts"] == 2 and "requests" not in totals["a"]


@pytest.fixture
def providers_data() -> dict[str, Any]:
    """One provider at a URL `responses` answers for, and a named client key."""
    return providers_config(anthropic_provider("primary", PROVIDER_URL),
                            auth={"api_keys": [{"name": "alice", "key": "sk-client-alice-secret"}]})


def test_metrics_endpoint_counts_a_proxied_request_and_shows_no_key(client: Any) -> None:
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
              "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
              "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2}}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{PROVIDER_URL}/v1/messages", json=answer)
        reply = client.post("/v1/messages", headers={"x-api-key": "sk-client-alice-secret"},
                            json={"model": "claude-test", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "hello"}]})
    assert reply.status_code == 200
    scraped = client.get("/metrics", headers={"authorization": "Bearer sk-client-alice-secret"})
    assert scraped.status_code == 200 and scraped.content_type.startswith("text/plain")
    text = scraped.get_data(as_text=True)
    assert ('loadbalancer_requests_total{client="alice",model="claude-test",outcome="success",'
            'provider="primary",status="200"} 1.0') in text
    assert 'loadbalancer_tokens_total{direction="output",model="claude-test",provider="primary"} 2.0' in text
    assert 'loadbalancer_provider_up{provider="primary"} 1.0' in text
    assert "sk-client-alice-secret" not in text and "sk-test-primary" not in text
