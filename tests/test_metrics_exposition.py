"""/metrics from the real service: valid for Prometheus (promtool when installed), label values
without spaces, and the gauges an operator alerts on, summed or taken over every worker."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any, Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from loadbalancer.ops.build_info import git_revision
from support.fake_backend import FakeBackend, anthropic_error, anthropic_stream, closed_port
from support.lb_process import REPO_ROOT, LoadBalancerProcess, anthropic_provider, iter_sse, providers_config

pytestmark = pytest.mark.integration

OPS_KEY = "sk-ops-metrics-0123456789"
CLIENT_KEY = "sk-client-metrics-0123456789"
AUTH = {"api_keys": [{"name": "g3", "key": CLIENT_KEY}], "ops_keys": [OPS_KEY]}
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
WAIT_SECONDS = 10.0


def scrape(service: LoadBalancerProcess) -> str:
    reply = requests.get(f"{service.url}/metrics", headers={"authorization": f"Bearer {OPS_KEY}"}, timeout=5)
    assert reply.status_code == 200
    return reply.text


def samples(text: str) -> list[Any]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text: str, name: str, **labels: str) -> float | None:
    found = [sample.value for sample in samples(text)
             if sample.name == name and all(sample.labels.get(key) == item for key, item in labels.items())]
    return sum(found) if found else None


def wait_for(service: LoadBalancerProcess, check: Callable[[str], bool]) -> str:
    """Scrape until `check` holds (workers publish their gauges every 2 s)."""
    deadline = time.monotonic() + WAIT_SECONDS
    text = scrape(service)
    while not check(text) and time.monotonic() < deadline:
        time.sleep(0.2)
        text = scrape(service)
    assert check(text), text
    return text


def post(service: LoadBalancerProcess, **body: Any) -> requests.Response:
    return requests.post(f"{service.url}/v1/messages", json={**MESSAGE, **body},
                         headers={"x-api-key": CLIENT_KEY}, timeout=10)


def test_the_exposition_is_valid_and_its_label_values_have_no_spaces(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    config = providers_config(anthropic_provider("down", f"http://127.0.0.1:{closed_port()}", priority=1),
                              anthropic_provider("up", backend.url, priority=2), auth=AUTH)
    service = lb(config, workers=2)
    assert post(service).status_code == 200
    backend.queue(anthropic_error(404, "not_found_error", "no such model"))
    assert post(service).status_code == 404
    text = wait_for(service, lambda text: value(text, "loadbalancer_attempts_total",
                                                outcome="404_passed_through") == 1)
    for sample in samples(text):
        for label, item in sample.labels.items():
            assert " " not in item, (sample.name, label, item)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does): parsed with "
                    "prometheus_client only")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_provider_gauges_reload_status_and_build_info(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    config = providers_config(anthropic_provider("down", f"http://127.0.0.1:{closed_port()}", priority=1),
                              anthropic_provider("up", backend.url, priority=2), auth=AUTH,
                              routing={"cooldown": 60, "max_cooldown": 120})
    started = time.time()
    service = lb(config, workers=2, env={"LB_CONFIG_POLL_SECONDS": "0.1"})
    assert post(service).headers["x-lb-provider"] == "up"
    text = wait_for(service, lambda text: (value(text, "loadbalancer_provider_cooldown_remaining_seconds",
                                                 provider="down") or 0) > 30)
    assert value(text, "loadbalancer_provider_circuit_state", provider="down", state="closed") == 1
    assert value(text, "loadbalancer_provider_circuit_state", provider="down", state="open") == 0
    assert value(text, "loadbalancer_provider_cooldown_remaining_seconds", provider="up") == 0
    assert value(text, "loadbalancer_config_last_reload_success") == 1
    assert value(text, "loadbalancer_config_last_reload_timestamp_seconds") >= started - 1
    assert value(text, "loadbalancer_build_info", revision=git_revision(REPO_ROOT)) == 1

    # A request waiting for its provider's first content counts as in flight there, whichever
    # worker holds it (after the first content a stream no longer blocks the provider's slot).
    backend.queue(anthropic_stream(["a", "b"], first_delay=4.0))

    def stream() -> None:
        with requests.post(f"{service.url}/v1/messages", json={**MESSAGE, "stream": True},
                           headers={"x-api-key": CLIENT_KEY}, stream=True, timeout=20) as reply:
            list(iter_sse(reply))

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        wait_for(service, lambda text: value(text, "loadbalancer_provider_in_flight", provider="up") == 1)
    finally:
        reader.join(30)
    wait_for(service, lambda text: value(text, "loadbalancer_provider_in_flight", provider="up") == 0)

    broken = dict(config, routing={"strategy": "fastest"})
    service.rewrite_config(broken)
    service.wait_for_log("config reload rejected")
    wait_for(service, lambda text: value(text, "loadbalancer_config_last_reload_success") == 0)
