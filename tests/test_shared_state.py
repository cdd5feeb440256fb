"""One truth about providers across the workers of an instance (embedded) and across instances (Redis).

Real gunicorn processes in front of fake backends "a" (priority 1) and "b" (priority 2): a
cooldown, an open circuit or a client's rate window learned by one worker of one instance
is honoured by every worker of every instance; Redis may die and come back without a
request lost; a conversation lands on the same provider everywhere.
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any, Callable

import pytest
import requests

from support.fake_backend import FakeBackend, anthropic_error, slow_first_byte
from support.fleet import MESSAGE, health, on_every_worker, post_message, provider_entry, wait_for
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config
from support.redis_server import RedisServer

pytestmark = pytest.mark.integration

WORKERS = 2
RETRY_AFTER = 4  # seconds; long enough for every check below to run inside it
FRESHNESS = 0.1  # a change anywhere is honoured everywhere within this (the bound)
TRIAL_SECONDS = 3.0  # how long the half-open trial's answer takes
CLIENT = {"name": "ci", "key": "sk-client-ci", "requests_per_minute": 4}
_prefixes = itertools.count()


def config_for(a: FakeBackend, b: FakeBackend, redis: bool = False,
               routing: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """providers.json for a and b; with `redis`, sharing state through the URL in $LB_TEST_REDIS_URL."""
    config = providers_config(anthropic_provider("a", a.url, priority=1), anthropic_provider("b", b.url, priority=2),
                              routing=routing, **sections)
    if redis:
        # ${VAR} is allowed here like anywhere else: the URL may carry a password.
        config["state"] = {"redis_url": "${LB_TEST_REDIS_URL}", "prefix": f"test-{next(_prefixes)}-{time.time_ns()}"}
    return config


@pytest.fixture
def fleet(lb: Callable[..., LoadBalancerProcess], shared_redis: RedisServer):
    """Factory: `count` instances of `config` on the shared redis-server, each with WORKERS workers."""
    def start(config: dict[str, Any], count: int = 2, redis: RedisServer = shared_redis) -> list[LoadBalancerProcess]:
        return [lb(config, workers=WORKERS, env={"LB_TEST_REDIS_URL": redis.url}) for _ in range(count)]
    return start


def served_by(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-lb-provider"]


def messages_to(backend: FakeBackend) -> int:
    return len(backend.requests_to("/v1/messages"))


def assert_429_keeps_every_worker_off(first: LoadBalancerProcess, others: list[LoadBalancerProcess],
                                      a: FakeBackend) -> None:
    """A 429 with retry-after through `first`: every worker of every instance avoids a until it passes."""
    a.clear_requests()
    a.queue(anthropic_error(429, headers={"retry-after": str(RETRY_AFTER)}))
    assert served_by(post_message(requests, first)) == "b"
    time.sleep(FRESHNESS)
    for service in [first, *others]:
        answers = on_every_worker(service, WORKERS, lambda session: served_by(post_message(session, service)))
        assert [name for names in answers.values() for name in names] == ["b"] * WORKERS * 2
        entry = provider_entry(service, "a")
        assert entry["state"] == "cooling_down" and entry["cooldown_remaining_s"] > 1
        assert "429" in entry["cooldown_reason"]
    assert messages_to(a) == 1
    wait_for(lambda: provider_entry(first, "a")["state"] != "cooling_down", RETRY_AFTER + 2, "the end of retry-after")
    for service in [first, *others]:
        answers = on_every_worker(service, WORKERS, lambda session: served_by(post_message(session, service)), each=1)
        assert all(names == ["a"] for names in answers.values()), answers


def assert_one_trial_for_everyone(first: LoadBalancerProcess, others: list[LoadBalancerProcess],
                                  a: FakeBackend) -> None:
    """Two failures open a's circuit; once half-open, exactly one request in the fleet tries it."""
    for _ in range(2):
        a.queue(anthropic_error(529))
        assert served_by(post_message(requests, first)) == "b"
        wait_for(lambda: provider_entry(first, "a")["state"] != "cooling_down", 5, "the cooldown's end")
    a.default = slow_first_byte(TRIAL_SECONDS)
    trial: list[requests.Response] = []
    runner = threading.Thread(target=lambda: trial.append(post_message(requests, first)))
    runner.start()
    a.wait_for_requests(3)  # two failures and the trial
    for service in [first, *others]:
        answers = on_every_worker(service, WORKERS, lambda session: served_by(post_message(session, service)))
        assert all(names == ["b", "b"] for names in answers.values()), answers
        assert provider_entry(service, "a")["circuit"] == "half_open"
    runner.join(TRIAL_SECONDS + 10)
    assert served_by(trial[0]) == "a" and messages_to(a) == 3
    time.sleep(FRESHNESS)
    a.default = slow_first_byte(0)
    for service in [first, *others]:
        assert provider_entry(service, "a")["circuit"] == "closed"
        assert served_by(post_message(requests, service)) == "a"


# --- embedded: the workers of one instance ------------------------------------------------

def test_embedded_a_429_through_one_worker_keeps_every_worker_off_until_its_retry_after(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    a, b = fake_backend(), fake_backend()
    service = lb(config_for(a, b), workers=WORKERS)
    assert health(service)["state"]["backend"] == "embedded"
    assert_429_keeps_every_worker_off(service, [], a)


def test_embedded_one_half_open_trial_across_the_workers(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    a, b = fake_backend(), fake_backend()
    service = lb(config_for(a, b, routing={"failure_threshold": 2, "cooldown": 0.3, "max_cooldown": 0.3}),
                 workers=WORKERS)
    assert_one_trial_for_everyone(service, [], a)


# --- redis: several instances --------------------------------------------------------------

def test_redis_a_429_through_instance_a_keeps_every_worker_of_instance_b_off_until_its_retry_after(
        fake_backend: Callable[..., FakeBackend], fleet) -> None:
    a, b = fake_backend(), fake_backend()
    first, second = fleet(config_for(a, b, redis=True))
    report = health(second)
    assert report["state"] == {"backend": "redis", "shared_with": "every instance", "status": "ok",
                               "detail": report["state"]["detail"]}
    assert_429_keeps_every_worker_off(first, [second], a)


def test_redis_one_half_open_trial_across_the_fleet(fake_backend: Callable[..., FakeBackend], fleet) -> None:
    a, b = fake_backend(), fake_backend()
    first, second = fleet(config_for(a, b, redis=True,
                                     routing={"failure_threshold": 2, "cooldown": 0.3, "max_cooldown": 0.3}))
    assert_one_trial_for_everyone(first, [second], a)


def test_redis_a_clients_requests_per_minute_are_enforced_fleet_wide(
        fake_backend: Callable[..., FakeBackend], fleet) -> None:
    a, b = fake_backend(), fake_backend()
    first, second = fleet(config_for(a, b, redis=True, auth={"api_keys": [CLIENT]}))
    key = {"x-api-key": CLIENT["key"]}
    statuses = [post_message(requests, service, headers=key).status_code for service in (first, second) * 3]
    assert statuses == [200] * 4 + [429] * 2
    refused = post_message(requests, first, headers=key)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert messages_to(a) == 4


def test_redis_affinity_is_the_same_on_every_instance_and_worker(
        fake_backend: Callable[..., FakeBackend], fleet) -> None:
    backends = [fake_backend() for _ in range(3)]
    config = providers_config(*(anthropic_provider(name, backend.url) for name, backend in zip("xyz", backends)),
                              routing={"affinity": True, "strategy": "priority"})
    config["state"] = {"redis_url": "${LB_TEST_REDIS_URL}", "prefix": f"affinity-{time.time_ns()}"}
    instances = fleet(config, count=3)
    conversations = [{**MESSAGE, "metadata": {"user_id": f"user-{number}"}} for number in range(12)]
    homes = [[served_by(post_message(requests, service, body)) for body in conversations] for service in instances]
    assert homes[0] == homes[1] == homes[2]
    assert len(set(homes[0])) >= 2  # conversations are spread, each one stays put
    per_worker = on_every_worker(instances[1], WORKERS,
                                 lambda session: [served_by(post_message(session, instances[1], body))
                                                  for body in conversations], each=1)
    assert all(names == [homes[0]] for names in per_worker.values())


def test_redis_killed_and_restarted_mid_traffic_loses_no_request_and_sharing_resumes(
        fake_backend: Callable[..., FakeBackend], fleet, private_redis: RedisServer) -> None:
    a, b = fake_backend(), fake_backend()
    first, second = fleet(config_for(a, b, redis=True), redis=private_redis)
    statuses: list[int] = []
    stop = threading.Event()

    def traffic(service: LoadBalancerProcess) -> None:
        while not stop.is_set():
            statuses.append(post_message(requests, service).status_code)

    clients = [threading.Thread(target=traffic, args=(service,)) for service in (first, second) * 2]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        private_redis.kill()
        for service in (first, second):
            wait_for(lambda: every_worker_says(service, "degraded"), 10, "degraded in /health")
            assert metric(service, "loadbalancer_shared_state_up") == 0.0
        time.sleep(1.0)
        private_redis.start()  # empty, on the same port
        for service in (first, second):
            wait_for(lambda: every_worker_says(service, "ok"), 10, "every worker reconnected")
            assert metric(service, "loadbalancer_shared_state_up") == 1.0
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(20)
    assert len(statuses) > 20 and set(statuses) == {200}
    for service in (first, second):
        log = service.log_text()
        unreachable = len(re.findall(r"redis .* unreachable", log))
        assert 1 <= unreachable <= WORKERS and log.count("reachable again") == unreachable
        assert "Traceback" not in log
    assert_429_keeps_every_worker_off(first, [second], a)  # shared again


def every_worker_says(service: LoadBalancerProcess, status: str) -> bool:
    """Whether every worker's /health shows the shared state as `status` ("ok" or "degraded")."""
    said = on_every_worker(service, WORKERS, lambda session: session.get(
        f"{service.url}/health", timeout=5).json()["state"]["status"], each=1)
    return all(answers == [status] for answers in said.values())


def metric(service: LoadBalancerProcess, name: str) -> float:
    """The value of a gauge without labels other than backend, from /metrics."""
    text = requests.get(f"{service.url}/metrics", timeout=5).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]
    assert values, f"{name} not in /metrics"
    return min(values)


# --- affinity keeps nothing a client sends ---------------------------------------------------

def worker_rss_kib(service: LoadBalancerProcess) -> int:
    """Resident memory of the one worker that answers."""
    pid = requests.get(f"{service.url}/", timeout=5).json()["pid"]
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_300_requests_with_a_1_mib_user_id_do_not_grow_a_workers_memory(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    a, b = fake_backend(), fake_backend()
    service = lb(config_for(a, b, routing={"affinity": True}), workers=1)
    with requests.Session() as session:
        def send(count: int, offset: int) -> None:
            for number in range(offset, offset + count):
                body = {**MESSAGE, "metadata": {"user_id": f"{number:08d}" + "u" * (1 << 20)}}
                assert post_message(session, service, body).status_code == 200
                a.clear_requests()  # the fake backends keep what they got: not in this test
                b.clear_requests()

        send(30, 0)  # the allocator's arenas settle
        before = worker_rss_kib(service)
        send(300, 30)
        grown_mib = (worker_rss_kib(service) - before) / 1024
    # Stored verbatim, 300 keys of 1 MiB held ~300 MiB; digests and rendezvous hashing keep none.
    assert grown_mib < 40, f"worker memory grew {grown_mib:.0f} MiB"
