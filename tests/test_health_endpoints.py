"""Health codes an orchestrator understands, live probes that cannot spend credit, and the
operations endpoints behind a key whenever keys are configured."""
from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest
import requests

from health import ProbeResult
from loadbalancer.ops.health_monitor import HealthMonitor, encode_results
from support.fake_backend import FakeBackend, closed_port
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config
from test_health_monitor import Clock, CountingProbe, make_monitor

CLIENT_KEY = "sk-client-health-0123456789"
OPS_KEY = "sk-ops-health-0123456789"
AUTH = {"api_keys": [{"name": "g3", "key": CLIENT_KEY}], "ops_keys": [{"name": "prometheus", "key": OPS_KEY}]}
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def make_client(providers_file: Callable[..., Path], data: Mapping[str, Any]) -> Any:
    """A test client of an app on `data` (no background threads)."""
    from app import create_app

    app = create_app({"PROVIDERS_FILE": str(providers_file(data)), "DISABLE_CONFIG_WATCH": True,
                      "DISABLE_HEALTH_MONITOR": True})
    return app.test_client()


def publish(monitor: HealthMonitor, results: list[ProbeResult]) -> None:
    """Results as a prober would have published them in the shared state."""
    monitor._holder.current.store.publish_probe_results(encode_results(results))


def basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()}


def test_health_is_200_while_a_provider_is_usable_and_liveness_always(providers_file: Callable[..., Path]) -> None:
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1")))
    assert client.get("/health").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "alive"}
    assert client.get("/readyz").get_json() == {"status": "ready", "usable_providers": ["p"]}


def test_health_and_readiness_are_503_when_every_provider_is_disabled(providers_file: Callable[..., Path]) -> None:
    entry = anthropic_provider("p", "http://127.0.0.1:1", api_key="${LB_TEST_UNSET_KEY}")
    client = make_client(providers_file, providers_config(entry))
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json()["status"] == "down"
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").get_json() == {"status": "not_ready", "usable_providers": []}
    assert client.get("/healthz").status_code == 200


def test_health_is_503_once_the_only_provider_failed(providers_file: Callable[..., Path]) -> None:
    entry = anthropic_provider("p", f"http://127.0.0.1:{closed_port()}")
    client = make_client(providers_file, providers_config(entry, routing={"cooldown": 30, "max_cooldown": 60}))
    assert client.post("/v1/messages", json=MESSAGE).status_code == 529
    report = client.get("/health")
    assert report.status_code == 503 and report.get_json()["providers"][0]["state"] == "cooling_down"
    assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("path", ["/metrics", "/status.json", "/health?probe=1"])
def test_operations_endpoints_need_a_client_or_operations_key_when_keys_are_set(
        providers_file: Callable[..., Path], path: str) -> None:
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1"), auth=AUTH))
    refused = client.get(path)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["type"] == "authentication_error"
    assert refused.headers["www-authenticate"].startswith("Basic realm=")
    assert client.get(path, headers={"x-api-key": "wrong"}).status_code == 401
    for headers in ({"authorization": f"Bearer {OPS_KEY}"}, {"x-api-key": CLIENT_KEY}, basic(OPS_KEY)):
        assert client.get(path, headers=headers).status_code != 401, headers


def test_the_status_page_asks_a_browser_for_a_key_and_plain_health_stays_open(
        providers_file: Callable[..., Path]) -> None:
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1"), auth=AUTH))
    html = {"accept": "text/html"}
    assert client.get("/", headers=html).status_code == 401
    page = client.get("/", headers={**html, **basic(OPS_KEY)})
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    for path in ("/health", "/healthz", "/readyz"):
        assert client.get(path).status_code == 200  # load balancers and orchestrators send no key


def test_an_operations_key_is_no_client_key(providers_file: Callable[..., Path]) -> None:
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1"), auth=AUTH))
    reply = client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": OPS_KEY})
    assert reply.status_code == 401


def test_without_keys_the_operations_endpoints_stay_open(providers_file: Callable[..., Path]) -> None:
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1")))
    assert client.get("/metrics").status_code == 200 and client.get("/status.json").status_code == 200


def test_live_probes_run_once_per_interval_whichever_worker_is_asked(tmp_path: Path) -> None:
    probe = CountingProbe()
    workers = [make_monitor(tmp_path, probe, Clock(), interval=10) for _ in range(2)]
    first = workers[0].probe_now()
    second = workers[1].probe_now()
    assert probe.calls == 1
    assert set(first) == set(second) == {"a", "b"} and second["a"].checked_at == first["a"].checked_at
    stale = time.time() - 11
    publish(workers[1], [ProbeResult(name, True, True, 1.0, (), None, stale) for name in "ab"])
    workers[1].probe_now()
    assert probe.calls == 2


def test_with_the_monitor_off_live_probes_still_wait_30_seconds(tmp_path: Path) -> None:
    probe = CountingProbe()
    monitor = make_monitor(tmp_path, probe, Clock(), interval=0)
    assert monitor.live_probe_interval == 30
    for _ in range(3):
        monitor.probe_now()
    assert probe.calls == 1
    publish(monitor, [ProbeResult(name, True, True, 1.0, (), None, time.time() - 31) for name in "ab"])
    monitor.probe_now()
    assert probe.calls == 2


@pytest.mark.integration
def test_hammering_live_probes_spends_one_paid_probe(fake_backend: Callable[..., FakeBackend],
                                                     lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    entry = anthropic_provider("paid", backend.url, models=["claude-test"], health={"paid_probe": True})
    service = lb(providers_config(entry, auth=AUTH), workers=2)
    assert requests.get(f"{service.url}/health?probe=1", timeout=10).status_code == 401
    for _ in range(6):
        report = requests.get(f"{service.url}/health?probe=1", headers={"x-api-key": OPS_KEY}, timeout=10)
        assert report.status_code == 200 and report.json()["providers"][0]["probe"]["models"] == ["claude-test"]
    assert len(backend.requests_to("/v1/messages")) == 1


def test_a_secret_a_provider_echoed_never_reaches_the_status_page(providers_file: Callable[..., Path]) -> None:
    key = 'sk-echo&<"secret">0123456789'  # HTML would write it as sk-echo&amp;&lt;&#34;...
    client = make_client(providers_file, providers_config(anthropic_provider("p", "http://127.0.0.1:1", api_key=key)))
    monitor = client.application.extensions["loadbalancer"].monitor
    publish(monitor, [ProbeResult("p", True, None, 3.0, (), f"HTTP 500: bad key {key}", time.time())])
    monitor.load_results()
    page = client.get("/", headers={"accept": "text/html"}).get_data(as_text=True)
    data = client.get("/status.json").get_data(as_text=True)
    assert "bad key [redacted]" in data and "bad key [redacted]" in page
    for text in (page, data):
        assert "0123456789" not in text
