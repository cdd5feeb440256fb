"""Operations against real gunicorn with several workers: metrics, probing, limits, logs, secrets."""
from __future__ import annotations

import http.client
import json
import time
from typing import Any, Callable

import pytest
import requests

from support.fake_backend import FakeBackend, closed_port
from support.lb_process import LoadBalancerProcess, anthropic_provider, free_port, providers_config

pytestmark = pytest.mark.integration

MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
CLIENT_KEY = "sk-client-ops-0123456789abcdef"
CLIENT = {"name": "ops-team", "key": CLIENT_KEY}
OPS_HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}


def post_message(service: LoadBalancerProcess, key: str = CLIENT_KEY, **headers: str) -> requests.Response:
    """One non-streaming Messages request with a client key."""
    return requests.post(f"{service.url}/v1/messages", json=MESSAGE, headers={"x-api-key": key, **headers},
                         timeout=10)


def metric_value(text: str, prefix: str) -> float:
    """The sum of the samples whose line starts with `prefix` (name and some labels)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_metrics_add_up_over_two_workers_and_no_key_leaks_anywhere(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    config = providers_config(anthropic_provider("down", f"http://127.0.0.1:{closed_port()}", priority=1),
                              anthropic_provider("up", backend.url, priority=2),
                              auth={"api_keys": [CLIENT]})
    service = lb(config, workers=2, env={"LOG_FORMAT": "json"})
    request_ids = {post_message(service).headers["x-request-id"] for _ in range(8)}
    assert len(request_ids) == 8
    for _ in range(4):  # whichever worker answers the scrape, it reports both workers' counts
        scraped = requests.get(f"{service.url}/metrics", headers=OPS_HEADERS, timeout=5).text
        assert metric_value(scraped, 'loadbalancer_requests_total{client="ops-team",model="claude-test",'
                                     'outcome="success",provider="up",status="200"}') == 8
        assert metric_value(scraped, 'loadbalancer_attempt_failures_total{provider="down"') >= 1
        assert metric_value(scraped, 'loadbalancer_time_to_first_token_seconds_count{provider="up",'
                                     'stream="false"}') == 8
    status = requests.get(f"{service.url}/status.json", headers=OPS_HEADERS, timeout=5).json()
    assert status["totals_scope"] == "all workers"
    assert {p["name"]: p["totals"]["requests"] for p in status["providers"]} == {"down": 0, "up": 8}

    service.wait_for_log(sorted(request_ids)[-1])
    lines = [json.loads(line) for line in service.log_text().splitlines()
             if line.startswith('{"time"') and '"request_id"' in line]
    assert request_ids <= {line["request_id"] for line in lines}
    assert all(line["client"] == "ops-team" for line in lines if line["request_id"] in request_ids)
    exposed = (service.log_text() + scraped + requests.get(f"{service.url}/health", timeout=5).text
               + json.dumps(status))
    for secret in (CLIENT_KEY, "sk-test-up", "sk-test-down"):
        assert secret not in exposed


def test_the_status_page_data_covers_every_worker(fake_backend: Callable[..., FakeBackend],
                                                 lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    service = lb(providers_config(anthropic_provider("up", backend.url), auth={"api_keys": [CLIENT]}), workers=2)
    request_ids = {post_message(service).headers["x-request-id"] for _ in range(8)}
    deadline = time.monotonic() + 10
    views = []
    while time.monotonic() < deadline:  # each worker publishes its share every 2 s
        views = [requests.get(f"{service.url}/status.json", headers=OPS_HEADERS, timeout=5).json()
                 for _ in range(4)]
        if all({row["request_id"] for row in view["recent"]} == request_ids for view in views):
            break
        time.sleep(0.5)
    for view in views:  # whichever worker answered, it showed all eight
        assert {row["request_id"] for row in view["recent"]} == request_ids
        assert sum(view["service_series"]["requests"]) == 8
        [provider] = view["providers"]
        assert sum(provider["series"]["requests"]) == 8 and sum(provider["series"]["errors"]) == 0
        assert all(row["status"] == 200 and row["client"] == "ops-team" for row in view["recent"])


def test_one_prober_for_all_workers_and_a_dead_provider_is_reported_unhealthy(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    config = providers_config(anthropic_provider("up", backend.url),
                              anthropic_provider("down", f"http://127.0.0.1:{closed_port()}"))
    config["health"] = {"interval": 0.5, "timeout": 1}
    service = lb(config, workers=3)
    started = time.monotonic()
    time.sleep(2.0)
    probes = len(backend.requests_to("/v1/models"))
    elapsed = time.monotonic() - started
    # One prober: about elapsed / interval probes. Three would make about three times as many.
    assert 2 <= probes <= elapsed / 0.5 + 2
    assert service.log_text().count("probes the providers") == 1
    for _ in range(6):
        report = requests.get(f"{service.url}/health", timeout=5).json()
        entries = {entry["name"]: entry for entry in report["providers"]}
        assert entries["down"]["state"] == "unhealthy" and entries["down"]["probe"]["reachable"] is False
        assert entries["up"]["state"] == "healthy" and entries["up"]["probe"]["auth_ok"] is True
        assert time.time() - entries["up"]["probe"]["checked_at"] < 3
        assert report["status"] == "degraded" and report["monitor"]["interval_s"] == 0.5


def test_rate_limit_holds_across_workers(fake_backend: Callable[..., FakeBackend],
                                        lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    config = providers_config(anthropic_provider("up", backend.url),
                              auth={"api_keys": [{**CLIENT, "requests_per_minute": 3}]})
    service = lb(config, workers=2)
    statuses = [post_message(service).status_code for _ in range(3)]
    refused = post_message(service)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(backend.requests_to("/v1/messages")) == 3


def test_oversized_headers_get_the_apps_json_413_not_gunicorns_text(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    service = lb(providers_config(anthropic_provider("up", backend.url), limits={"max_header_bytes": 8192}))
    reply = requests.post(f"{service.url}/v1/messages", json=MESSAGE, headers={"x-big": "a" * 20000}, timeout=5)
    assert reply.status_code == 413
    assert reply.json()["error"]["type"] == "request_too_large"
    assert backend.requests_to("/v1/messages") == []


def test_a_client_cannot_make_the_load_balancer_contact_a_url_of_its_choosing(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend, target = fake_backend(), fake_backend()
    service = lb(providers_config(anthropic_provider("up", backend.url)))
    elsewhere = f"127.0.0.1:{target.port}"
    body = {**MESSAGE, "base_url": target.url, "url": target.url, "metadata": {"user_id": target.url}}
    attempts = [
        ("POST", "/v1/messages", {"host": elsewhere}),
        ("POST", "/v1/messages", {"x-forwarded-host": elsewhere, "forwarded": f"host={elsewhere}"}),
        ("POST", f"http://{elsewhere}/v1/messages", {}),
        ("POST", f"//{elsewhere}/v1/messages", {}),
        ("POST", f"/v1/messages?base_url={target.url}", {"x-base-url": target.url}),
    ]
    for method, target_path, headers in attempts:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        connection.request(method, target_path, body=json.dumps(body),
                           headers={"content-type": "application/json", **headers})
        answer = connection.getresponse()
        answer.read()
        connection.close()
        assert answer.status < 500
    assert target.requests == []
    assert backend.requests_to("/v1/messages")


@pytest.mark.parametrize(("bind_host", "auth", "warned"), [
    ("0.0.0.0", {}, True),
    ("0.0.0.0", {"api_keys": [CLIENT]}, False),
    ("127.0.0.2", {}, False),
])
def test_binding_beyond_loopback_without_keys_logs_a_warning(
        lb: Callable[..., LoadBalancerProcess], bind_host: str, auth: dict[str, Any], warned: bool) -> None:
    sections = {"auth": auth} if auth else {}
    config = providers_config(anthropic_provider("up", f"http://127.0.0.1:{closed_port()}"), **sections)
    service = lb(config, extra_args=("-b", f"{bind_host}:{free_port()}"))
    text = service.wait_for_log("Booting worker")
    assert ("without any inbound API key" in text) is warned
