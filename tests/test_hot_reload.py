"""providers.json changes without downtime: validated first, swapped atomically, logged without keys.

Unit tests drive `runtime.RuntimeHolder.reload` and `config_watch.ConfigWatcher.check_once`
with files in tmp_path; integration tests rewrite the file under a running gunicorn while
requests are in flight.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from config import load_config
from loadbalancer.ops.config_watch import ConfigWatcher
from loadbalancer.runtime import Runtime, RuntimeHolder
from loadbalancer.settings.validation import Location
from support.fake_backend import FakeBackend, anthropic_message, anthropic_stream, closed_port
from support.fault_behaviours import read_events
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config, write_json_atomically

BODY = {"model": "claude-test-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
SECRET = "sk-very-secret-value-0123456789"
POLL_ENV = {"LB_CONFIG_POLL_SECONDS": "0.1"}


def provider(name: str, **overrides: Any) -> dict[str, Any]:
    """A provider entry pointing at a closed port (unit tests send nothing)."""
    return anthropic_provider(name, f"http://127.0.0.1:{closed_port()}", **overrides)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Messages the 'loadbalancer' logger writes during the test."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("loadbalancer")
    handler = Collect(logging.DEBUG)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(previous_level)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A providers.json with providers a and b."""
    path = tmp_path / "providers.json"
    write_json_atomically(path, providers_config(provider("a", api_key=SECRET), provider("b")))
    return path


@pytest.fixture
def holder(config_path: Path) -> RuntimeHolder:
    """A holder built from config_path."""
    return RuntimeHolder(Runtime.build(load_config(config_path)), loader=load_config)


def rewrite(path: Path, data: Any) -> None:
    """Replace the file atomically and make sure its signature changes even within one mtime tick."""
    write_json_atomically(path, data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


# --- RuntimeHolder.reload --------------------------------------------------------------

def test_a_valid_change_is_applied_and_logged_by_provider(holder: RuntimeHolder, config_path: Path,
                                                          log_lines: list[str]) -> None:
    old = holder.current
    rewrite(config_path, providers_config(provider("a", api_key=SECRET + "-rotated", priority=5), provider("c")))
    assert holder.reload(str(config_path)) is True
    new = holder.current
    assert new is not old
    assert [p.name for p in new.config.providers] == ["a", "c"]
    # The old runtime is untouched: requests that took it before the swap finish on it.
    assert [p.name for p in old.config.providers] == ["a", "b"]
    line = next(line for line in log_lines if "config reloaded" in line)
    assert "provider added: c" in line
    assert "provider removed: b" in line
    assert "provider modified: a (" in line and "priority" in line and "api_key" in line
    assert SECRET not in "\n".join(log_lines)


def test_an_invalid_file_keeps_the_running_configuration_and_says_what_is_wrong(
        holder: RuntimeHolder, config_path: Path, log_lines: list[str]) -> None:
    old = holder.current
    broken = providers_config(provider("a", api_key=SECRET), provider("b", weight=0))
    rewrite(config_path, broken)
    assert holder.reload(str(config_path)) is False
    assert holder.current is old
    error = next(line for line in log_lines if "rejected" in line)
    assert "keeping the running configuration" in error
    assert "weight" in error and str(config_path) in error
    assert SECRET not in "\n".join(log_lines)


@pytest.mark.parametrize("content", ["", "{", '{"providers": []', "[]", '{"providers": "x"}'])
def test_half_written_or_wrong_json_is_rejected(holder: RuntimeHolder, config_path: Path, content: str) -> None:
    old = holder.current
    config_path.write_text(content)
    assert holder.reload(str(config_path)) is False
    assert holder.current is old


def test_a_missing_file_is_rejected(holder: RuntimeHolder, tmp_path: Path) -> None:
    old = holder.current
    assert holder.reload(str(tmp_path / "gone.json")) is False
    assert holder.current is old


def test_an_unchanged_file_is_not_a_reload(holder: RuntimeHolder, config_path: Path, log_lines: list[str]) -> None:
    old = holder.current
    rewrite(config_path, json.loads(config_path.read_text()))
    assert holder.reload(str(config_path)) is False
    assert holder.current is old
    assert not any("config reloaded" in line for line in log_lines)


def test_provider_state_and_unchanged_clients_survive_a_reload(holder: RuntimeHolder, config_path: Path) -> None:
    old = holder.current
    old.balancer.failed("b", "answered HTTP 529", retry_after=60)
    rewrite(config_path, providers_config(provider("a", api_key=SECRET, weight=3),
                                          json.loads(config_path.read_text())["providers"][1]))
    assert holder.reload(str(config_path)) is True
    new = holder.current
    state_of_b = next(s for s in new.balancer.snapshot() if s.name == "b")
    assert state_of_b.state == "cooling_down" and state_of_b.cooldown_remaining > 50
    assert new.clients["b"] is old.clients["b"]  # same provider config: pooled connections kept
    assert new.clients["a"] is not old.clients["a"]


def test_reloads_from_many_threads_leave_one_consistent_runtime(holder: RuntimeHolder, config_path: Path) -> None:
    rewrite(config_path, providers_config(provider("a"), provider("b"), provider("c")))
    with ThreadPoolExecutor(8) as pool:
        applied = list(pool.map(lambda _: holder.reload(str(config_path)), range(16)))
    assert applied.count(True) == 1
    assert [p.name for p in holder.current.config.providers] == ["a", "b", "c"]


# --- ConfigWatcher.check_once ----------------------------------------------------------

def test_the_watcher_reloads_only_when_the_file_changed(holder: RuntimeHolder, config_path: Path) -> None:
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=60)
    assert watcher.check_once() is False
    rewrite(config_path, providers_config(provider("a"), provider("b"), provider("c")))
    assert watcher.check_once() is True
    assert watcher.check_once() is False
    assert [p.name for p in holder.current.config.providers] == ["a", "b", "c"]


def test_the_watcher_skips_a_broken_file_then_applies_the_fixed_one(holder: RuntimeHolder,
                                                                     config_path: Path) -> None:
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=60)
    config_path.write_text('{"providers": [')
    assert watcher.check_once() is False
    assert [p.name for p in holder.current.config.providers] == ["a", "b"]
    rewrite(config_path, providers_config(provider("z")))
    assert watcher.check_once() is True
    assert [p.name for p in holder.current.config.providers] == ["z"]


class PermissionSwitch:
    """A loader that fails like load_config on a `chmod 000` file while `denied` is set.

    The suite runs as root in CI, and root reads a file whatever its mode: the denial is
    simulated where load_config would report it, so the file's signature never moves.
    """

    def __init__(self) -> None:
        self.denied = False
        self.calls = 0

    def __call__(self, path: str) -> Any:
        self.calls += 1
        if self.denied:
            raise Location(path).error("cannot read file: Permission denied")  # as read_json_file says it
        return load_config(path)


def test_a_file_that_becomes_readable_without_changing_is_still_loaded(config_path: Path,
                                                                      log_lines: list[str]) -> None:
    loader = PermissionSwitch()
    holder = RuntimeHolder(Runtime.build(load_config(config_path)), loader=loader)
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=60)
    loader.denied = True  # chmod 000, then the edit
    rewrite(config_path, providers_config(provider("edited")))
    assert watcher.check_once() is False
    assert watcher.check_once() is False  # still unreadable: tried again, not taken as read
    assert [p.name for p in holder.current.config.providers] == ["a", "b"]
    loader.denied = False  # chmod 644: mtime, size and inode stay as they are
    assert watcher.check_once() is True
    assert [p.name for p in holder.current.config.providers] == ["edited"]
    assert sum("config reload rejected" in line for line in log_lines) == 1  # said once, not every poll
    calls = loader.calls
    assert watcher.check_once() is False and loader.calls == calls  # loaded: no more reads


def test_a_broken_file_is_retried_until_it_loads_and_its_rejection_said_once(
        holder: RuntimeHolder, config_path: Path, log_lines: list[str]) -> None:
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=60)
    config_path.write_text('{"providers": [')
    for _ in range(3):
        assert watcher.check_once() is False
    assert sum("config reload rejected" in line for line in log_lines) == 1
    config_path.write_text('{"providers": []}')  # another broken version is said again
    assert watcher.check_once() is False
    assert sum("config reload rejected" in line for line in log_lines) == 2


def test_the_watcher_ignores_a_vanished_file(holder: RuntimeHolder, config_path: Path) -> None:
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=60)
    old = holder.current
    config_path.unlink()
    assert watcher.check_once() is False
    assert holder.current is old


def test_the_watcher_thread_applies_a_change_by_itself(holder: RuntimeHolder, config_path: Path) -> None:
    watcher = ConfigWatcher(str(config_path), holder, poll_seconds=0.05)
    watcher.start()
    try:
        rewrite(config_path, providers_config(provider("late")))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and holder.current.config.providers[0].name != "late":
            time.sleep(0.02)
        assert holder.current.config.providers[0].name == "late"
    finally:
        watcher.stop()


# --- through the real service ----------------------------------------------------------

def post(process: LoadBalancerProcess, stream: bool = False) -> requests.Response:
    """One Messages request, read whole."""
    response = requests.post(f"{process.url}/v1/messages", json={**BODY, "stream": stream}, timeout=15,
                             stream=stream)
    if stream:
        events = read_events(response)
        assert events[-1]["type"] == "message_stop", events[-1]
    return response


def test_rewriting_the_file_while_requests_run_loses_none_and_moves_traffic(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    old_backend, new_backend = fake_backend(), fake_backend()
    old_backend.default = _slow(0.05)
    new_backend.default = _slow(0.05)
    process = lb(providers_config(anthropic_provider("old", old_backend.url, api_key=SECRET)), env=POLL_ENV)
    stop = threading.Event()
    statuses: list[int] = []

    def client(number: int) -> None:
        while not stop.is_set():
            statuses.append(post(process, stream=bool(number % 2)).status_code)

    with ThreadPoolExecutor(6) as pool:
        for number in range(6):
            pool.submit(client, number)
        time.sleep(0.4)
        process.rewrite_config(providers_config(anthropic_provider("new", new_backend.url, api_key=SECRET)))
        process.wait_for_log("config reloaded")
        time.sleep(0.4)
        stop.set()
    assert statuses and set(statuses) == {200}
    served_before = len(old_backend.requests_to("/v1/messages"))
    assert served_before > 0 and len(new_backend.requests_to("/v1/messages")) > 0
    assert post(process).headers["x-lb-provider"] == "new"
    assert len(old_backend.requests_to("/v1/messages")) == served_before
    log = process.log_text()
    assert "provider added: new" in log and "provider removed: old" in log
    assert SECRET not in log


def test_an_invalid_file_under_the_running_service_is_logged_and_kept_out(
        fake_backend: Callable[..., FakeBackend], lb: Callable[..., LoadBalancerProcess]) -> None:
    backend = fake_backend()
    process = lb(providers_config(anthropic_provider("only", backend.url, api_key=SECRET)), env=POLL_ENV)
    broken = providers_config(anthropic_provider("only", backend.url, api_key=SECRET, priority="first"))
    process.rewrite_config(broken)
    log = process.wait_for_log("config reload rejected")
    assert "priority" in log and SECRET not in log
    assert post(process).status_code == 200
    assert post(process, stream=True).headers["x-lb-provider"] == "only"


def test_sighup_to_the_master_applies_the_new_file(fake_backend: Callable[..., FakeBackend],
                                                   lb: Callable[..., LoadBalancerProcess]) -> None:
    first, second = fake_backend(), fake_backend()
    # Polling off: only the HUP (gunicorn restarts its workers with the current file) applies it.
    process = lb(providers_config(anthropic_provider("first", first.url)), env={"LB_WATCH_CONFIG": "0"})
    process.rewrite_config(providers_config(anthropic_provider("second", second.url)))
    time.sleep(0.3)
    assert post(process).headers["x-lb-provider"] == "first"
    process.reload()
    # Old workers finish gracefully, so for a moment either generation may answer.
    recent: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and recent[-5:] != ["second"] * 5:
        recent.append(post(process).headers["x-lb-provider"])
        time.sleep(0.05)
    assert recent[-5:] == ["second"] * 5


def _slow(seconds: float) -> Callable[[Any], None]:
    """A behaviour that answers after `seconds`, a message or a stream as asked."""
    def answer(exchange: Any) -> None:
        if not exchange.wait(seconds):
            streamed = exchange.request.json.get("stream") is True
            (anthropic_stream(delay=0.02) if streamed else anthropic_message())(exchange)
    return answer
