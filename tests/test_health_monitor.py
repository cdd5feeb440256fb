"""The shared health monitor (one prober, every worker informed), `/health` and `flask probe`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

from config import load_config, parse_config
from health import ProbeResult
from loadbalancer.ops.health_monitor import HealthMonitor, decode_results, encode_results
from loadbalancer.routing.state.embedded import EmbeddedStore
from loadbalancer.runtime import Runtime, RuntimeHolder
from support.fake_backend import FakeBackend, closed_port, hang
from support.lb_process import anthropic_provider, providers_config


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingProbe:
    """A probe that records its calls and reports `usable` for every provider."""

    def __init__(self, usable: bool = True) -> None:
        self.calls = 0
        self.usable = usable

    def __call__(self, runtime: Runtime) -> list[ProbeResult]:
        self.calls += 1
        return [ProbeResult(provider.name, self.usable, True if self.usable else None,
                            12.5 if self.usable else None, ("claude-test",),
                            None if self.usable else "connection refused", time.time())
                for provider in runtime.config.providers if provider.enabled]


def make_holder(directory: Path, interval: float = 10.0,
                wall_clock: Callable[[], float] = time.time) -> RuntimeHolder:
    """A runtime with providers a and b (never contacted: probes are fakes here) on the shared state in `directory`."""
    data = providers_config(anthropic_provider("a", "http://127.0.0.1:1"),
                            anthropic_provider("b", "http://127.0.0.1:2"))
    data["health"] = {"interval": interval, "timeout": 1}
    runtime = Runtime.build(parse_config(data, "test"),
                            open_store=lambda settings: EmbeddedStore(directory, clock=wall_clock))
    return RuntimeHolder(runtime, loader=load_config)


def make_monitor(directory: Path, probe: Callable[[Runtime], list[ProbeResult]], clock: Clock,
                 interval: float = 10.0) -> HealthMonitor:
    """A monitor on its own runtime and store (as a worker process would have)."""
    return HealthMonitor(make_holder(directory, interval), probe=probe, clock=clock)


def states(monitor_holder: RuntimeHolder) -> dict[str, str]:
    """Provider name -> state as the balancer sees it."""
    return {snapshot.name: snapshot.state for snapshot in monitor_holder.current.balancer.snapshot()}


def test_only_one_of_several_workers_probes_and_all_of_them_see_the_results(tmp_path: Path) -> None:
    clock, probe = Clock(), CountingProbe(usable=False)
    workers = [make_monitor(tmp_path, probe, clock) for _ in range(3)]
    for worker in workers:
        worker.tick()
    assert probe.calls == 1
    assert [worker.is_prober for worker in workers] == [True, False, False]
    for worker in workers:
        worker.tick()  # the first worker wrote its results after the others had looked
        assert set(worker.results()) == {"a", "b"}
        assert states(worker._holder) == {"a": "unhealthy", "b": "unhealthy"}
    for worker in workers:
        worker.stop()


def test_the_prober_probes_again_only_when_the_interval_has_passed(tmp_path: Path) -> None:
    clock, probe = Clock(), CountingProbe()
    monitor = make_monitor(tmp_path, probe, clock, interval=10)
    monitor.tick()
    clock.now += 9
    monitor.tick()
    assert probe.calls == 1
    clock.now += 1
    monitor.tick()
    assert probe.calls == 2
    monitor.stop()


def test_another_worker_takes_over_when_the_prober_goes_away(tmp_path: Path) -> None:
    clock, probe = Clock(), CountingProbe()
    first, second = make_monitor(tmp_path, probe, clock), make_monitor(tmp_path, probe, clock)
    first.tick()
    second.tick()
    assert not second.is_prober
    first.stop()  # gives the role up; a dead process's lease lapses after a few seconds
    second.tick()
    assert second.is_prober and probe.calls == 2
    second.stop()


def test_a_recovered_provider_is_healthy_again_after_the_next_probe(tmp_path: Path) -> None:
    clock, probe = Clock(), CountingProbe(usable=False)
    monitor = make_monitor(tmp_path, probe, clock, interval=5)
    monitor.tick()
    assert states(monitor._holder)["a"] == "unhealthy"
    probe.usable = True
    clock.now += 5
    monitor.tick()
    assert states(monitor._holder) == {"a": "healthy", "b": "healthy"}
    monitor.stop()


def test_interval_zero_disables_probing(tmp_path: Path) -> None:
    probe = CountingProbe()
    monitor = make_monitor(tmp_path, probe, Clock(), interval=0)
    monitor.tick()
    assert probe.calls == 0 and not monitor.is_prober
    assert monitor.describe()["enabled"] is False


def test_the_monitor_thread_probes_in_the_background(tmp_path: Path) -> None:
    probe = CountingProbe()
    monitor = HealthMonitor(make_holder(tmp_path, interval=0.05), probe=probe)
    monitor.start()
    try:
        deadline = time.monotonic() + 5
        while probe.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        monitor.stop()
    assert probe.calls >= 2 and set(monitor.results()) == {"a", "b"}


def test_results_survive_the_round_trip_and_garbage_is_ignored() -> None:
    result = ProbeResult("a", True, True, 3.0, ("m1", "m2"), None, 1234.5)
    assert decode_results(encode_results([result])) == {"a": result}
    assert decode_results(b"{not json") == {}
    assert decode_results(None) == {}
    assert decode_results(b'{"results": [{"name": "a", "unexpected": 1}]}') == {}


def test_a_prober_that_dies_is_replaced_once_its_lease_lapses(tmp_path: Path) -> None:
    clock, probe, later = Clock(), CountingProbe(), Clock()
    later.now = time.time()
    first = make_monitor(tmp_path, probe, clock)
    second = HealthMonitor(make_holder(tmp_path, wall_clock=later), probe=probe, clock=clock)
    first.tick()  # and then its process dies: it never renews the role
    later.now = time.time()
    second.tick()
    assert (first.is_prober, second.is_prober) == (True, False)
    later.now += 10  # past the dead prober's lease (3 ticks + the 1 s health timeout)
    second.tick()
    assert second.is_prober and probe.calls == 2


def test_health_answers_from_the_last_probe_and_says_when_it_was_taken(client: Any, app: Any) -> None:
    monitor = app.extensions["loadbalancer"].monitor
    store = app.extensions["loadbalancer"].holder.current.store
    store.publish_probe_results(encode_results([ProbeResult("primary", False, None, None, (),
                                                            "connection refused", 1700000000.0)]))
    monitor.load_results()
    started = time.monotonic()
    report = client.get("/health").get_json()
    assert time.monotonic() - started < 1.0
    entry = report["providers"][0]
    assert entry["probe"]["checked_at"] == 1700000000.0 and entry["probe"]["reachable"] is False
    assert entry["state"] == "unhealthy"
    assert report["monitor"]["last_checked_at"] == 1700000000.0


def run_probe(providers_file: Callable[..., Path], data: dict[str, Any]) -> Any:
    """`flask --app app probe` on `data`, through Flask's CLI runner."""
    from app import create_app

    app = create_app({"PROVIDERS_FILE": str(providers_file(data)), "DISABLE_CONFIG_WATCH": True,
                      "DISABLE_HEALTH_MONITOR": True})
    return app.test_cli_runner().invoke(args=["probe"])


@pytest.mark.integration
def test_probe_command_prints_a_table_and_exits_0_when_every_provider_is_usable(
        providers_file: Callable[..., Path], fake_backend: Callable[..., FakeBackend]) -> None:
    backend = fake_backend(models=["claude-alpha", "claude-beta"])
    result = run_probe(providers_file, providers_config(anthropic_provider("up", backend.url)))
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[:4] == ["provider", "reachable", "auth", "latency_ms"]
    assert row.split()[:3] == ["up", "yes", "ok"] and "claude-alpha, claude-beta" in row
    assert "sk-test-up" not in result.output
    assert [request.headers.get("x-api-key") for request in backend.requests] == ["sk-test-up"]


@pytest.mark.integration
def test_probe_command_exits_1_when_a_provider_is_down(providers_file: Callable[..., Path],
                                                       fake_backend: Callable[..., FakeBackend]) -> None:
    backend = fake_backend()
    data = providers_config(anthropic_provider("up", backend.url),
                            anthropic_provider("down", f"http://127.0.0.1:{closed_port()}"))
    result = run_probe(providers_file, data)
    assert result.exit_code == 1
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert rows["up"][1] == "yes" and rows["down"][1] == "no"


@pytest.mark.integration
@pytest.mark.parametrize(("health", "expected_paths"), [
    ({}, ["/v1/models"]),
    ({"paid_probe": True}, ["/v1/messages"]),
    ({"path": "/healthz"}, ["/healthz"]),
])
def test_probes_are_free_unless_the_provider_opts_in_to_a_one_token_completion(
        fake_backend: Callable[..., FakeBackend], health: dict, expected_paths: list[str]) -> None:
    from health import probe_all

    backend = fake_backend()
    entry = anthropic_provider("p", backend.url, models={"claude-test": "claude-upstream"},
                               health=health)
    runtime = Runtime.build(parse_config(providers_config(entry), "test"))
    [result] = probe_all(runtime)
    assert [request.path for request in backend.requests] == expected_paths
    if health.get("paid_probe"):
        assert backend.requests[0].json == {"model": "claude-upstream", "max_tokens": 1,
                                            "messages": [{"role": "user", "content": "ping"}]}
        assert result.usable and result.models == ("claude-upstream",)


@pytest.mark.integration
@pytest.mark.parametrize("health", [{}, {"paid_probe": True}])
def test_a_hanging_provider_fails_its_probe_within_the_health_timeout(
        fake_backend: Callable[..., FakeBackend], health: dict) -> None:
    from health import probe_all

    backend = fake_backend()
    backend.set_default(hang(5))
    backend.set_default_for("/v1/models", hang(5))
    entry = anthropic_provider("slow", backend.url, health=health, models=["claude-test"],
                               timeout={"connect": 2, "read": 30})
    data = {**providers_config(entry), "health": {"interval": 0, "timeout": 0.5}}
    runtime = Runtime.build(parse_config(data, "test"))
    started = time.monotonic()
    [result] = probe_all(runtime)
    assert time.monotonic() - started < 3  # the probe's own timeout, not the 30 s read timeout
    assert not result.usable
    assert backend.requests[0].path == ("/v1/messages" if health else "/v1/models")
