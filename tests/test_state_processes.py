"""The stores across real processes, across a Redis outage, and under gevent's monkey patching."""
from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadbalancer.routing.state import FailurePolicy
from loadbalancer.routing.state.embedded import EmbeddedStore
from test_state_store import eventually, make_store  # noqa: F401  (the fixture, reused)

TRIP_AT_ONCE = FailurePolicy(cooldown_seconds=0.05, max_cooldown_seconds=0.1, failure_threshold=1)
PROCESSES = 4
TESTS = Path(__file__).resolve().parent


def _claim(store, barrier, results, index: int) -> None:
    barrier.wait()
    results.put(store.claim_trial("p", f"proc-{index}", 10))


def _hammer_rate(store, barrier, results, key: str) -> None:
    barrier.wait()
    results.put(sum(store.hit_rate_limit(key, 10_000).allowed for _ in range(200)))


def run_children(target, *args) -> list:
    """Fork PROCESSES children running target(store, barrier, results, *args[1:], [index]); their results."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    extra = (lambda index: (index,)) if target is _claim else (lambda index: ())
    children = [context.Process(target=target, args=(args[0], barrier, results, *args[1:], *extra(index)))
                for index in range(PROCESSES)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=20)
    return [results.get(timeout=5) for _ in children]


def test_exactly_one_process_gets_the_half_open_trial(make_store) -> None:
    store = make_store()
    store.record_failure("p", "500", policy=TRIP_AT_ONCE)  # opened (and connected) before the fork
    time.sleep(0.12)
    grants = run_children(_claim, store)
    assert grants.count(True) == 1


def test_the_rate_limit_counts_every_request_of_every_process(make_store) -> None:
    store = make_store()
    key = f"client-{time.time_ns()}"
    store.hit_rate_limit(key, 10_000)  # opened before the fork
    counted = run_children(_hammer_rate, store, key)
    assert sum(counted) == PROCESSES * 200
    # 1 + 800 requests so far: a limit of 801 leaves no room, 803 leaves room for one more
    assert store.hit_rate_limit(key, 801).allowed is False
    assert store.hit_rate_limit(key, 803).allowed is True


def test_an_inherited_flock_descriptor_does_not_exclude_the_child(tmp_path: Path) -> None:
    """Why stores reopen their lock files after fork: parent and child share one lock."""
    descriptor = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    pid = os.fork()
    if pid == 0:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds: same open file
            os._exit(0)
        except BlockingIOError:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    os.close(descriptor)


def test_files_of_the_embedded_store_are_private_to_the_service_user(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "state")
    store.record_failure("p", "x")
    store.publish_probe_results(b"{}")
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "state").iterdir()}
    assert modes and set(modes.values()) == {0o600}
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    store.close()


class StateLog(logging.Handler):
    """Collects what loadbalancer.state logs (the app's logger does not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def count(self, fragment: str) -> int:
        return sum(fragment in line for line in self.lines)


@pytest.fixture
def state_log():
    handler = StateLog()
    logger = logging.getLogger("loadbalancer.state")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


class CountingScript:
    """Wraps a registered Lua script and counts the calls that reach it."""

    def __init__(self, script) -> None:
        self.script, self.calls = script, 0

    def __call__(self, **kwargs):
        self.calls += 1
        return self.script(**kwargs)


def test_request_path_calls_time_out_after_50_ms_and_nothing_retries(tmp_path: Path) -> None:
    from loadbalancer.routing.state.redis_link import client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    store = RedisStore(client_factory("redis://:secret@127.0.0.1:1/0"), "timeouts")
    store.snapshot()  # opens the clients (nothing listens: it starts degraded)
    request, background = store.link.client, store.link.background
    assert [client.connection_pool.connection_kwargs["socket_timeout"] for client in (request, background)] == [0.05, 0.5]
    assert request.connection_pool.connection_kwargs["socket_connect_timeout"] == 0.05
    assert request.get_retry().get_retries() == background.get_retry().get_retries() == 0
    store.close()


def test_redis_down_serves_local_state_logs_once_then_recovers(private_redis, state_log) -> None:
    from loadbalancer.routing.state.redis_link import RETRY_SECONDS, client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    store = RedisStore(client_factory(private_redis.url), "failover", where="redis://127.0.0.1")
    store.start()
    store.record_failure("a", "before the outage", retry_after=60)
    private_redis.kill()
    shared = store.record_failure("b", "during the outage", retry_after=30)
    assert shared.cooldown_reason == "during the outage"  # applied locally
    snapshot = store.snapshot()
    assert snapshot.get("a").shared.cooldown_reason == "before the outage"  # the last shared copy
    assert snapshot.get("b").shared.cooldown_until > time.time() + 25
    assert store.status().degraded and "unreachable" in store.status().detail
    counting = store._scripts["RATE_LIMIT"] = CountingScript(store._scripts["RATE_LIMIT"])
    assert all(store.hit_rate_limit("k", 2).allowed for _ in range(2))  # counted per process meanwhile
    assert store.hit_rate_limit("k", 2).allowed is False
    assert counting.calls == 0  # while marked down, no request waits on Redis
    assert state_log.count("unreachable") == 1

    private_redis.start()  # an empty Redis comes back on the same port
    eventually(lambda: not store.is_down, timeout=RETRY_SECONDS * 4)
    assert not store.status().degraded
    store.record_failure("c", "after the outage")
    assert store.snapshot().get("c").shared.cooldown_reason == "after the outage"
    assert store.snapshot().get("b").shared.cooldown_until > time.time() + 20  # still honoured
    store.hit_rate_limit("k", 2)
    assert counting.calls == 1  # shared again
    assert state_log.count("unreachable") == 1 and state_log.count("reachable again") == 1
    store.close()


class WritesDuringTheRead:
    """A Redis client whose state read is overtaken by a write of our own, as a request can."""

    def __init__(self, client, write) -> None:
        self.client, self.write = client, write

    def hgetall(self, key):
        before_the_write = self.client.hgetall(key)
        self.write()
        return before_the_write


def test_a_re_read_that_began_before_an_own_write_does_not_undo_it(private_redis) -> None:
    from loadbalancer.routing.state.redis_link import client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    store = RedisStore(client_factory(private_redis.url), "race")
    store.snapshot()  # opens the clients; no background thread: the test drives the re-reads
    store._refresh(WritesDuringTheRead(store.link.background,
                                       lambda: store.record_failure("a", "written during the read", retry_after=60)))
    assert store.snapshot().get("a").shared.cooldown_reason == "written during the read"
    assert store._remote_version[0] == "stale"  # so the thread's next version check re-reads
    store._refresh(store.link.background)  # a read that began after the write carries it
    assert isinstance(store._remote_version, int) and store._own_writes == {}
    assert store.snapshot().get("a").shared.cooldown_reason == "written during the read"
    store.close()


def test_every_stale_copy_is_a_new_version_so_the_snapshot_shows_each_own_write(private_redis) -> None:
    from loadbalancer.routing.state.redis_link import client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    ours, other = (RedisStore(client_factory(private_redis.url), "stale") for _ in range(2))
    ours.snapshot()
    other.record_failure("b", "another instance wrote first")
    ours.record_failure("a", "ours, after it")  # not the next version we knew of: the copy is stale
    assert ours.snapshot().get("a").shared.cooldown_reason == "ours, after it"
    # A re-read of that same Redis version, overtaken by another write of ours, is stale again.
    ours._refresh(WritesDuringTheRead(ours.link.background, lambda: ours.record_failure("c", "during the read")))
    snapshot = ours.snapshot()
    assert [snapshot.get(name).shared.cooldown_reason for name in "abc"] == [
        "ours, after it", "another instance wrote first", "during the read"]
    ours.close(), other.close()


def test_a_hung_redis_costs_one_timeout_then_nothing_until_it_answers_again(private_redis, state_log) -> None:
    from loadbalancer.routing.state.redis_link import RETRY_SECONDS, client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    store = RedisStore(client_factory(private_redis.url), "hung")
    store.start()
    private_redis.pause()
    shared = store.record_failure("a", "while hung", retry_after=30)  # one 50 ms timeout, then local
    assert shared.cooldown_reason == "while hung" and store.status().degraded
    counting = store._scripts["FAILURE"] = CountingScript(store._scripts["FAILURE"])
    store.record_failure("b", "still hung")
    assert counting.calls == 0 and state_log.count("unreachable") == 1
    private_redis.resume()
    eventually(lambda: not store.is_down, timeout=RETRY_SECONDS * 4)
    store.record_failure("c", "answered")
    assert counting.calls == 1
    store.close()


def test_starting_without_redis_works_on_local_state(tmp_path: Path) -> None:
    from loadbalancer.routing.state.redis_link import client_factory
    from loadbalancer.routing.state.redis_store import RedisStore

    store = RedisStore(client_factory(f"unix://{tmp_path / 'nothing.sock'}"), "absent")
    store.record_failure("a", "x", retry_after=5)
    assert store.snapshot().get("a").shared.cooldown_until > time.time()
    assert store.status().degraded
    store.close()


RUNNER = ("from gevent import monkey; monkey.patch_all()\n"
          "import sys, pytest\n"
          "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))\n")


@pytest.mark.skipif(os.environ.get("STATE_TESTS_UNDER_GEVENT") == "1", reason="already under gevent")
def test_the_same_promises_hold_under_gevent_monkey_patching() -> None:
    files = [str(TESTS / "test_state_store.py"), f"{__file__}"]
    completed = subprocess.run([sys.executable, "-c", RUNNER, *files], capture_output=True, text=True,
                               timeout=300, cwd=TESTS.parent,
                               env={**os.environ, "STATE_TESTS_UNDER_GEVENT": "1"})
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert " passed" in completed.stdout and " skipped" not in completed.stdout.replace("1 skipped", "")
