"""Soak test: thousands of requests while one backend fails a third of its requests and
providers.json is rewritten every few seconds.

    .venv/bin/python bench/soak.py [--requests 3000] [--concurrency 32] [--seconds 240]

Starts two fake backends and gunicorn on 127.0.0.1 (nothing leaves the machine), sends
streaming and non-streaming Messages requests, and prints: total, succeeded, failed,
failovers, and the latency the failovers added (p50/p99 over requests that failed over,
minus the median of those that did not). Exit status 0 only when every request succeeded.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.fake_backend import FakeBackend, anthropic_error, anthropic_stream, drop, garbage  # noqa: E402
from support.fault_behaviours import RandomFailures, read_events  # noqa: E402
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config  # noqa: E402

FAILING_SHARE = 1 / 3
REWRITE_EVERY_SECONDS = 3.0
CLIENT_TIMEOUT = 30.0
BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "soak"}]}
TIMEOUT = {"connect": 2, "read": 5, "idle": 2}
ATTEMPT_PATTERN = re.compile(r"tried=(\S+)")


@dataclass(frozen=True)
class Outcome:
    """One client request: whether it succeeded and how long it took."""

    ok: bool
    seconds: float
    request_id: str | None
    error: str | None = None


def soak_config(flaky_url: str, steady_url: str, generation: int) -> dict:
    """providers.json for one rewrite: the weights move so every rewrite really changes something."""
    return providers_config(
        anthropic_provider("flaky", flaky_url, weight=1 + generation % 3, timeout=TIMEOUT),
        anthropic_provider("steady", steady_url, weight=2, timeout=TIMEOUT),
        routing={"strategy": "weighted", "affinity": False, "cooldown": 0.2, "max_cooldown": 2,
                 "wait_for_cooldown": 2, "deadline": 20})


def send_one(url: str, number: int) -> Outcome:
    """One request, every other one streamed; a stream must end in message_stop."""
    started = time.monotonic()
    stream = bool(number % 2)
    try:
        response = requests.post(f"{url}/v1/messages", json={**BODY, "stream": stream},
                                 timeout=CLIENT_TIMEOUT, stream=stream)
        request_id = response.headers.get("x-request-id")
        if response.status_code != 200:
            return Outcome(False, time.monotonic() - started, request_id, f"HTTP {response.status_code}")
        if stream:
            events = read_events(response)
            if not events or events[-1]["type"] != "message_stop":
                return Outcome(False, time.monotonic() - started, request_id, "stream did not finish")
        else:
            response.json()
        return Outcome(True, time.monotonic() - started, request_id)
    except (requests.RequestException, ValueError, AssertionError) as err:
        return Outcome(False, time.monotonic() - started, None, type(err).__name__)


def keep_rewriting(process: LoadBalancerProcess, flaky: FakeBackend, steady: FakeBackend,
                   stop: threading.Event) -> int:
    """Rewrite providers.json every few seconds until stopped; return how many rewrites."""
    generation = 0
    while not stop.wait(REWRITE_EVERY_SECONDS):
        generation += 1
        process.rewrite_config(soak_config(flaky.url, steady.url, generation))
    return generation


def failovers_by_request(log_text: str) -> dict[str, int]:
    """request_id -> failed attempts before the answer, from the access log lines."""
    counts = {}
    for line in log_text.splitlines():
        if "request_id=" not in line or "tried=" not in line:
            continue
        request_id = line.split("request_id=", 1)[1].split()[0]
        attempts = ATTEMPT_PATTERN.search(line).group(1).split(",")
        counts[request_id] = sum(1 for attempt in attempts if ":ok:" not in attempt)
    return counts


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(outcomes: list[Outcome], failovers: dict[str, int], rewrites: int, elapsed: float,
           flaky: RandomFailures) -> bool:
    """Print the summary; True when every request succeeded."""
    succeeded = [outcome for outcome in outcomes if outcome.ok]
    failed = [outcome for outcome in outcomes if not outcome.ok]
    with_failover = [o.seconds for o in succeeded if failovers.get(o.request_id or "", 0) > 0]
    without = [o.seconds for o in succeeded if failovers.get(o.request_id or "", 0) == 0]
    baseline = statistics.median(without) if without else 0.0
    added = [seconds - baseline for seconds in with_failover]
    print(f"total:      {len(outcomes)} requests in {elapsed:.1f}s ({len(outcomes) / elapsed:.0f}/s)")
    print(f"succeeded:  {len(succeeded)}")
    print(f"failed:     {len(failed)}")
    print(f"failovers:  {sum(failovers.values())} failed attempts, in {len(with_failover)} requests "
          f"(the flaky backend failed {flaky.failed} of {flaky.failed + flaky.answered})")
    print(f"config rewrites: {rewrites}")
    print(f"latency without failover: p50 {baseline * 1000:.0f} ms")
    print(f"added by failover: p50 {percentile(added, 0.5) * 1000:.0f} ms, p99 {percentile(added, 0.99) * 1000:.0f} ms")
    for outcome in failed[:10]:
        print(f"  failed: {outcome.request_id} {outcome.error}")
    return not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=240.0, help="stop sending after this long")
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()

    flaky_behaviour = RandomFailures(FAILING_SHARE, [anthropic_error(500), anthropic_error(529), drop(), garbage(),
                                                     anthropic_stream(break_after=1),
                                                     anthropic_error(429, headers={"retry-after": "1"})])
    with FakeBackend() as flaky, FakeBackend() as steady:
        flaky.default = flaky_behaviour
        with LoadBalancerProcess(soak_config(flaky.url, steady.url, 0), workers=options.workers,
                                 env={"LB_CONFIG_POLL_SECONDS": "0.5", "LOG_LEVEL": "info"}) as process:
            stop = threading.Event()
            rewrites: list[int] = []
            rewriter = threading.Thread(target=lambda: rewrites.append(keep_rewriting(process, flaky, steady, stop)))
            rewriter.start()
            give_up_at = time.monotonic() + options.seconds
            started = time.monotonic()
            with ThreadPoolExecutor(options.concurrency) as pool:
                outcomes = list(pool.map(
                    lambda n: send_one(process.url, n) if time.monotonic() < give_up_at
                    else Outcome(False, 0.0, None, "not sent: time limit"),
                    range(options.requests)))
            elapsed = time.monotonic() - started
            stop.set()
            rewriter.join()
            time.sleep(0.5)  # the last access lines reach the log
            log = process.log_text()
    reloads = log.count("config reloaded")
    print(f"reloads applied (all workers): {reloads}")
    all_ok = report(outcomes, failovers_by_request(log), rewrites[0] if rewrites else 0, elapsed, flaky_behaviour)
    print(json.dumps({"ok": all_ok}))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
