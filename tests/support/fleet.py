"""Driving several workers and instances of the service: which worker answered, waits on /health."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, TypeVar

import requests

from support.lb_process import LoadBalancerProcess

T = TypeVar("T")
MESSAGE = {"model": "claude-test-1", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
CLIENT_TIMEOUT = 15.0
MAX_CONNECTIONS = 300  # fresh connections tried before giving up on reaching every worker
POLL_INTERVAL = 0.02


def post_message(session: requests.Session | Any, service: LoadBalancerProcess,
                 body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """POST /v1/messages on `session` (or the `requests` module: a connection of its own)."""
    return session.post(f"{service.url}/v1/messages", json=body or MESSAGE, headers=headers,
                        timeout=CLIENT_TIMEOUT)


def on_every_worker(service: LoadBalancerProcess, workers: int, action: Callable[[requests.Session], T],
                    each: int = 2) -> dict[int, list[T]]:
    """Run `action` on fresh connections until every one of `workers` worker processes ran it `each` times.

    A connection's first request (GET /) names the worker's pid; `action` then runs on the
    same keep-alive connection, so it is served by that worker.
    """
    done: dict[int, list[T]] = defaultdict(list)
    for _ in range(MAX_CONNECTIONS):
        with requests.Session() as session:
            pid = session.get(f"{service.url}/", timeout=CLIENT_TIMEOUT).json()["pid"]
            if len(done[pid]) < each:
                done[pid].append(action(session))
        if len(done) >= workers and all(len(results) >= each for results in done.values()):
            return dict(done)
    raise AssertionError(f"reached workers {sorted(done)} only, wanted {workers}")


def health(service: LoadBalancerProcess) -> dict[str, Any]:
    """GET /health."""
    return requests.get(f"{service.url}/health", timeout=CLIENT_TIMEOUT).json()


def provider_entry(service: LoadBalancerProcess, name: str) -> dict[str, Any]:
    """The /health entry of provider `name`."""
    return next(entry for entry in health(service)["providers"] if entry["name"] == name)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        time.sleep(POLL_INTERVAL)
