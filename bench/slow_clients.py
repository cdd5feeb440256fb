"""Slow clients against the service: the issue's 4,300 half-open requests, before and after.

    .venv/bin/python bench/slow_clients.py [--half-open 4300] [--normal 20] [--give-up 90]

Runs gunicorn twice in front of a fake backend on 127.0.0.1 (nothing leaves the machine),
2 workers x 2,000 connections: once with gunicorn's own gevent worker (`-k gevent`, the
before), once with the project's worker (loadbalancer/serving/worker.py). Each time it opens
the half-open requests (half stop inside their headers, half inside their body), then sends
the normal requests at once, and prints how many were answered and served within 10 s (the
first ones wait in the listen backlog while the workers accept the attack), how quickly a
few more are answered once it is accepted, and how long until a normal request (retried
every second, as a client honouring `retry-after: 1` would) was served again.
"""
from __future__ import annotations

import argparse
import resource
import socket
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.fake_backend import FakeBackend  # noqa: E402
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config  # noqa: E402
from support.raw_http import PARTIAL_HEADERS  # noqa: E402

ANSWER_WINDOW = 10.0  # the measure: served within 10 s
CONNECT_TIMEOUT = 2.0
BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "bench"}]}
HALF_BODY = PARTIAL_HEADERS + b"content-length: 1000\r\n\r\n" + b'{"model": "claude'
LATER_PROBE_AT = 5.0  # seconds after the attack began: accepted by then, no time limit run out yet
LATER_PROBES = 5
VARIANTS = (("gunicorn's gevent worker (before)", ("-k", "gevent")), ("the project's worker (after)", ()))


@dataclass(frozen=True)
class Outcome:
    """One normal request: its status (None: no answer in the window) and its time."""

    status: int | None
    seconds: float


@dataclass(frozen=True)
class RunResult:
    """What one variant did under the attack."""

    name: str
    opened: int
    outcomes: list[Outcome]
    later: list[Outcome]  # normal requests once the attack was accepted (before any time limit ran out)
    recovered_after: float | None  # seconds from the attack until a normal request was served


def open_half_requests(port: int, count: int) -> list[socket.socket]:
    """Connections that send part of a request and then nothing: half in the headers, half in the body."""
    sockets = []
    for number in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
            sock.sendall(PARTIAL_HEADERS if number % 2 else HALF_BODY)
        except OSError:
            continue  # the backlog is full: this one never got in
        sockets.append(sock)
    return sockets


def normal_request(url: str) -> Outcome:
    """One Messages request with the issue's 10-second patience."""
    started = time.monotonic()
    try:
        status = requests.post(f"{url}/v1/messages", json=BODY, timeout=ANSWER_WINDOW).status_code
    except requests.RequestException:
        status = None
    return Outcome(status, time.monotonic() - started)


def wait_until_served(url: str, attack_start: float, give_up: float) -> float | None:
    """Seconds from the attack until a normal request got a 200; None after `give_up` seconds."""
    while time.monotonic() - attack_start < give_up:
        if normal_request(url).status == 200:
            return time.monotonic() - attack_start
        time.sleep(1.0)
    return None


def run_variant(name: str, extra_args: tuple[str, ...], options: argparse.Namespace, backend: FakeBackend,
                workdir: Path) -> RunResult:
    """Start gunicorn, attack it, measure, stop it."""
    env = {"LB_WORKER_CONNECTIONS": str(options.connections)}
    with LoadBalancerProcess(providers_config(anthropic_provider("primary", backend.url)), env=env,
                             workers=options.workers, extra_args=extra_args, workdir=workdir,
                             startup_timeout=30) as lb:
        attack_start = time.monotonic()
        sockets = open_half_requests(lb.port, options.half_open)
        try:
            outcomes = concurrent_requests(lb.url, options.normal)
            time.sleep(max(0.0, attack_start + LATER_PROBE_AT - time.monotonic()))
            later = concurrent_requests(lb.url, LATER_PROBES)
            recovered = wait_until_served(lb.url, attack_start, options.give_up)
        finally:
            for sock in sockets:
                sock.close()
    return RunResult(name, len(sockets), outcomes, later, recovered)


def concurrent_requests(url: str, count: int) -> list[Outcome]:
    """`count` normal requests sent at once."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: normal_request(url), range(count)))


def median_answer(outcomes: list[Outcome]) -> str:
    """The median time of the answered requests, with their statuses."""
    answered = [outcome for outcome in outcomes if outcome.status is not None]
    if not answered:
        return f"no answer ({len(outcomes)} of {len(outcomes)})"
    statuses = ", ".join(f"{count} x {status}" for status, count in
                         sorted(Counter(outcome.status for outcome in answered).items()))
    return f"{statistics.median(o.seconds for o in answered) * 1000:.0f} ms ({statuses})"


def describe(result: RunResult, options: argparse.Namespace) -> str:
    """One table row."""
    answered = [outcome for outcome in result.outcomes if outcome.status is not None]
    served = sum(1 for outcome in answered if outcome.status == 200)
    refused = sum(1 for outcome in answered if outcome.status == 503)
    median = median_answer(result.outcomes)
    recovered = f"{result.recovered_after:.1f} s" if result.recovered_after is not None else \
        f"not within {options.give_up:g} s"
    return (f"| {result.name} | {result.opened} | {len(answered)}/{options.normal} | {served} | {refused} "
            f"| {median} | {median_answer(result.later)} | {recovered} |")


def main() -> int:
    """Run both variants and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-open", type=int, default=4300)
    parser.add_argument("--normal", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2000, help="LB_WORKER_CONNECTIONS")
    parser.add_argument("--give-up", type=float, default=90.0, help="seconds to wait for a normal request to be served")
    options = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds every half-open socket
    rows = []
    with FakeBackend() as backend:
        for number, (name, extra_args) in enumerate(VARIANTS):
            result = run_variant(name, extra_args, options, backend, Path(f"/tmp/lb-bench-slow-{number}"))
            rows.append(describe(result, options))
            print(rows[-1], flush=True)
    print(f"\n{options.half_open} half-open requests (half in headers, half in body) against {options.workers} "
          f"workers x {options.connections} connections, then {options.normal} normal requests at once:\n")
    print("| worker | half-open opened | normal answered within 10 s | served (200) | 503 | median answer "
          f"| {LATER_PROBES} more, {LATER_PROBE_AT:g} s after the attack began | normal request served again after |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
