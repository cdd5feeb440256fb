"""What sharing provider state costs per request, and how fast a cooldown reaches the others.

    .venv/bin/python bench/shared_state.py [--seconds 3] [--rounds 3] [--trials 200]

Prints three tables (copy them into bench/RESULTS.md's notes):

1. Per request, in process: the balancer's own calls for one successful request (plan,
   begin, succeeded, as forward_to_provider makes them) on 8 providers, with the memory store
   (no sharing), the embedded store and the Redis store; and the same plus a client's
   requests-per-minute check. Under gevent's monkey patching, as the workers run.
2. Scenario 1 end to end: sequential small requests through gunicorn (2 gevent workers) in
   front of nginx, with the embedded store and with Redis; wrk with one connection.
3. Propagation: process A records a failure with a new reason; process B reads its snapshot
   every 100 µs and notes when it sees it. Embedded (two workers of one instance) and Redis
   (two instances). Both processes are on this machine: one clock.

Needs nginx, wrk and redis-server (Debian: apt-get install -y nginx-light wrk redis-server).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scenarios  # noqa: E402
from clients import run_wrk  # noqa: E402
from procs import WorkerSettings, free_port, start_load_balancer, start_nginx, stop  # noqa: E402
from run import providers_config  # noqa: E402

from loadbalancer.routing.balancer import Balancer  # noqa: E402
from loadbalancer.routing.needs import RequestNeeds  # noqa: E402
from loadbalancer.routing.state.embedded import EmbeddedStore  # noqa: E402
from loadbalancer.routing.state.memory import MemoryStore  # noqa: E402
from loadbalancer.routing.state.redis_link import client_factory  # noqa: E402
from loadbalancer.routing.state.redis_store import RedisStore  # noqa: E402
from loadbalancer.settings.records import ProviderConfig, RoutingConfig  # noqa: E402

PROVIDERS = [ProviderConfig(name=f"provider-{n}", type="anthropic", base_url="http://127.0.0.1:1", api_key="k")
             for n in range(8)]
NEEDS = RequestNeeds(model="claude-bench")
CALLS = 20_000
WARM_UP_CALLS = 5_000
POLL_SECONDS = 0.0001


def start_redis(port: int):
    """A private redis-server on 127.0.0.1 (tests/support's, which the suite uses too)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.redis_server import RedisServer
    return RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")), port).start()


def make_store(kind: str, directory: str, redis_url: str, prefix: str):
    """A store of `kind` on `directory` (embedded) or `prefix` (Redis), started."""
    if kind == "memory":
        store = MemoryStore()
    elif kind == "embedded":
        store = EmbeddedStore(directory)
    else:
        store = RedisStore(client_factory(redis_url), prefix)
    store.start()
    return store


def percentiles(samples: list[float]) -> str:
    """p50 / p99 of microsecond samples."""
    ordered = sorted(samples)
    return f"{statistics.median(ordered):.1f} / {ordered[int(0.99 * (len(ordered) - 1))]:.1f} µs"


def per_request_cost(redis_url: str) -> list[tuple[str, str, str]]:
    """Table 1: (store, one request, one request with a rate-limit check)."""
    rows = []
    for kind in ("memory", "embedded", "redis"):
        store = make_store(kind, tempfile.mkdtemp(prefix="bench-state-"), redis_url, f"bench-{time.time_ns()}")
        balancer = Balancer(PROVIDERS, RoutingConfig(), store=store)
        time.sleep(0.3)  # the maintenance greenlet has published once

        def one_request(rate_limited: bool, number: int) -> float:
            started = time.perf_counter()
            if rate_limited:
                store.hit_rate_limit("bench-client", 10 ** 9)
            head = balancer.plan(NEEDS, f"conversation-{number % 50}")[0].name
            balancer.begin(head)
            balancer.succeeded(head, 0.01)
            elapsed = (time.perf_counter() - started) * 1e6
            time.sleep(0)  # let the other greenlets run, as in a worker
            return elapsed

        for number in range(WARM_UP_CALLS):  # caches, branch predictors, the allocator
            one_request(False, number)
        plain = [one_request(False, n) for n in range(CALLS)]
        limited = [one_request(True, n) for n in range(CALLS // 4)]
        rows.append((kind, percentiles(plain), percentiles(limited)))
        store.close()
    return rows


def end_to_end_s1(redis_url: str, seconds: float, rounds: int) -> list[tuple[str, str, str]]:
    """Table 2: (mode, median p50, median p99) of sequential requests, and the upstream alone.

    Both services run at once and the rounds alternate between them, so a neighbour's load
    on this shared machine falls on both alike.
    """
    rundir = Path(tempfile.mkdtemp(prefix="bench-s1-"))
    nginx_port = free_port()
    nginx = start_nginx(rundir, nginx_port)
    body = scenarios.FIXTURES / "request.json"
    model = scenarios.ANTHROPIC.json_model
    services = {}
    try:
        for mode in ("embedded", "redis"):
            config = providers_config(nginx_port, free_port())
            if mode == "redis":
                config["state"] = {"redis_url": redis_url, "prefix": f"bench-s1-{time.time_ns()}"}
            providers_file = rundir / f"providers-{mode}.json"
            providers_file.write_text(json.dumps(config))
            services[mode] = start_load_balancer(rundir, providers_file, WorkerSettings("gevent", workers=2))
        urls = {"upstream directly": f"http://127.0.0.1:{nginx_port}{scenarios.ANTHROPIC.json_path}",
                **{f"through the load balancer, {mode}": f"http://127.0.0.1:{service.port}/v1/messages"
                   for mode, service in services.items()}}
        for url in urls.values():
            run_wrk(url, body, model, connections=1, threads=1, seconds=1)  # warm-up
        results: dict[str, list] = {label: [] for label in urls}
        for _ in range(rounds):
            for label, url in urls.items():
                results[label].append(run_wrk(url, body, model, connections=1, threads=1, seconds=seconds))
        return [(label, *_medians(runs)) for label, runs in results.items()]
    finally:
        for service in services.values():
            stop(service.process)
        stop(nginx)


def _medians(results) -> tuple[str, str]:
    return (f"{statistics.median(r.p50_ms for r in results):.3f} ms",
            f"{statistics.median(r.p99_ms for r in results):.3f} ms")


def _writer(kind, directory, redis_url, prefix, started_at, ready, seen, trials) -> None:
    store = make_store(kind, directory, redis_url, prefix)
    ready.wait()
    for trial in range(trials):
        time.sleep(random.uniform(0.005, 0.02))
        seen.clear()
        started_at.value = time.time()
        store.record_failure("p", f"trial-{trial}", retry_after=1)
        seen.wait(5)
    store.close()


def _reader(kind, directory, redis_url, prefix, started_at, ready, seen, trials, results) -> None:
    store = make_store(kind, directory, redis_url, prefix)
    time.sleep(0.3)
    ready.wait()
    delays = []
    for trial in range(trials):
        expected, deadline = f"trial-{trial}", time.monotonic() + 5
        while store.snapshot().get("p").shared.cooldown_reason != expected and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        delays.append((time.time() - started_at.value) * 1000)
        seen.set()
    store.close()
    results.put(delays)


def propagation(redis_url: str, trials: int) -> list[tuple[str, str]]:
    """Table 3: (backend, p50 / p99 / max milliseconds from A's write to B's sighting)."""
    context = multiprocessing.get_context("fork")
    rows = []
    for kind in ("embedded", "redis"):
        shared = (kind, tempfile.mkdtemp(prefix="bench-prop-"), redis_url, f"bench-prop-{time.time_ns()}")
        started_at, ready, seen, results = (context.Value("d", 0.0), context.Barrier(2), context.Event(),
                                            context.Queue())
        processes = [context.Process(target=_writer, args=(*shared, started_at, ready, seen, trials)),
                     context.Process(target=_reader, args=(*shared, started_at, ready, seen, trials, results))]
        for process in processes:
            process.start()
        delays = sorted(results.get(timeout=trials * 6))
        for process in processes:
            process.join(10)
        rows.append((kind, f"{statistics.median(delays):.2f} / {delays[int(0.99 * (len(delays) - 1))]:.2f} / "
                           f"{delays[-1]:.2f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="each wrk run of table 2")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per mode (medians are shown)")
    parser.add_argument("--trials", type=int, default=200, help="cooldowns propagated per backend")
    options = parser.parse_args()
    redis = start_redis(free_port())
    try:
        print("| store | one request p50 / p99 | with a requests-per-minute check |\n|---|---|---|")
        for row in per_request_cost(redis.url):
            print("| " + " | ".join(row) + " |")
        print("\n| scenario 1, sequential | p50 | p99 |\n|---|---|---|")
        for row in end_to_end_s1(redis.url, options.seconds, options.rounds):
            print("| " + " | ".join(row) + " |")
        print("\n| a cooldown reaches the other process | p50 / p99 / max |\n|---|---|")
        for row in propagation(redis.url, options.trials):
            print("| " + " | ".join(row) + " |")
    finally:
        redis.kill()


if __name__ == "__main__":
    main()
