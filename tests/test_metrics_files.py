"""A dead worker's metrics files are folded into aggregates: totals stay exact, files stay few.

Unit tests let real prometheus_client processes (small subprocesses in multiprocess mode)
write their files, then merge them as gunicorn's master does in `child_exit`. The
integration test kills workers of a real gunicorn again and again between requests.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from loadbalancer.ops.metrics_files import SUMMED_TYPES, LockedMultiProcessCollector, merge_dead_worker
from support.fake_backend import FakeBackend
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CLIENT_TIMEOUT = 15.0
RESPAWN_TIMEOUT = 15.0

# What one worker process does: count, observe, set a live gauge; its pid is printed.
WORKER_SCRIPT = """
import os, sys
from prometheus_client import Counter, Gauge, Histogram
requests_total = Counter("demo_requests", "d", ["provider"])
latency = Histogram("demo_seconds", "d", buckets=(0.5, 1.0))
up = Gauge("demo_up", "d", multiprocess_mode="livemostrecent")
count = int(sys.argv[1])
requests_total.labels("a").inc(count)
requests_total.labels("b").inc(1)
for _ in range(count):
    latency.observe(0.7)
up.set(1)
print(os.getpid())
"""


def run_worker(directory: Path, count: int) -> int:
    """One process writing its samples into `directory`, as a gunicorn worker does; its pid."""
    result = subprocess.run([sys.executable, "-c", WORKER_SCRIPT, str(count)], check=True, capture_output=True,
                            text=True, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    return int(result.stdout)


def samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics would show, keyed by name and labels."""
    registry = CollectorRegistry()
    LockedMultiProcessCollector(registry, path=str(directory))
    text = generate_latest(registry).decode()
    return {(item.name, tuple(sorted(item.labels.items()))): item.value
            for family in text_string_to_metric_families(text) for item in family.samples}


def metric_files(directory: Path) -> list[str]:
    """The files prometheus_client reads."""
    return sorted(path.name for path in directory.glob("*.db"))


def test_merging_dead_workers_keeps_every_total_and_leaves_one_file_per_type(tmp_path: Path) -> None:
    pids = [run_worker(tmp_path, count) for count in (3, 5, 7)]
    before = samples(tmp_path)
    assert before[("demo_requests_total", (("provider", "a"),))] == 15
    for pid in pids[:2]:
        merge_dead_worker(str(tmp_path), pid)
    after = samples(tmp_path)
    gauges = {key for key in before if key[0] == "demo_up"}
    # The dead workers' live gauge is gone (as mark_process_dead did before); nothing else moved.
    assert {key: value for key, value in before.items() if key not in gauges} == \
           {key: value for key, value in after.items() if key not in gauges}
    assert after[("demo_seconds_count", ())] == 15
    assert after[("demo_seconds_bucket", (("le", "1.0"),))] == 15
    assert metric_files(tmp_path) == sorted(
        [f"counter_{pids[2]}.db", f"histogram_{pids[2]}.db", f"gauge_livemostrecent_{pids[2]}.db",
         "counter_aggregate.db", "histogram_aggregate.db"])


def test_many_worker_deaths_leave_a_bounded_number_of_files(tmp_path: Path) -> None:
    for _ in range(6):
        merge_dead_worker(str(tmp_path), run_worker(tmp_path, 2))
    assert metric_files(tmp_path) == ["counter_aggregate.db", "histogram_aggregate.db"]
    totals = samples(tmp_path)
    assert totals[("demo_requests_total", (("provider", "a"),))] == 12
    assert totals[("demo_requests_total", (("provider", "b"),))] == 6


def test_merging_a_worker_that_wrote_nothing_changes_nothing(tmp_path: Path) -> None:
    merge_dead_worker(str(tmp_path), 999_999)
    assert metric_files(tmp_path) == []


# --- through gunicorn: workers killed between requests -----------------------------------------

def worker_pids(master: int) -> set[int]:
    """The gunicorn master's child processes."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def wait_for_replacement(lb: LoadBalancerProcess, dead: int, workers: int) -> None:
    """Block until gunicorn runs `workers` workers again, none of them `dead`, and answers."""
    deadline = time.monotonic() + RESPAWN_TIMEOUT
    while time.monotonic() < deadline:
        pids = worker_pids(lb.pid)
        if len(pids) == workers and dead not in pids:
            requests.get(f"{lb.url}/health", timeout=CLIENT_TIMEOUT).raise_for_status()
            return
        time.sleep(0.05)
    raise TimeoutError(f"gunicorn did not replace worker {dead}:\n{lb.log_tail()}")


def scraped_total(lb: LoadBalancerProcess, name: str) -> float:
    """The sum of every sample called `name` in /metrics."""
    text = requests.get(f"{lb.url}/metrics", timeout=CLIENT_TIMEOUT).text
    return sum(item.value for family in text_string_to_metric_families(text)
               for item in family.samples if item.name == name)


@pytest.mark.integration
def test_killed_workers_lose_no_count_and_leave_no_files_behind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with FakeBackend() as backend, LoadBalancerProcess(
            providers_config(anthropic_provider("primary", backend.url)), workers=2,
            env={"LB_STATE_DIR": str(state)}, workdir=tmp_path / "lb") as lb:
        sent = 0
        for _ in range(8):
            for _ in range(4):
                response = requests.post(f"{lb.url}/v1/messages", json=BODY, timeout=CLIENT_TIMEOUT)
                assert response.status_code == 200
                sent += 1
            victim = min(worker_pids(lb.pid))
            os.kill(victim, signal.SIGKILL)
            wait_for_replacement(lb, victim, workers=2)
        assert scraped_total(lb, "loadbalancer_requests_total") == sent
        assert scraped_total(lb, "loadbalancer_request_duration_seconds_count") == sent
        files = metric_files(state / "prometheus")
        # Live workers keep their own files (a counter, a histogram, one gauge file per multiprocess
        # mode); of the eight dead ones only one aggregate per type is left.
        live = {str(pid) for pid in worker_pids(lb.pid)}
        owners = {name[:-len(".db")].rsplit("_", 1)[1] for name in files}
        assert owners <= live | {"aggregate"}, files
        assert sum(1 for name in files if "aggregate" in name) <= len(SUMMED_TYPES), files
        assert "counter_aggregate.db" in files
