"""Shared fixtures: the Flask app and client for unit tests, fake backends and gunicorn for integration tests."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pytest
from hypothesis import settings

from support.fake_backend import FakeBackend, closed_port
from support.lb_process import LoadBalancerProcess, anthropic_provider, providers_config
from support.redis_server import RedisServer


# botocore's credential chain ends at the EC2 instance metadata service (169.254.169.254):
# no test may reach for it, in this process or in the gunicorn processes it starts.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# A developer's run draws new hypothesis examples every time, to find what no one thought of;
# CI (HYPOTHESIS_PROFILE=ci, set by .ci/run) draws the same ones on every clone, so whether a
# commit lands depends on the commit, not on the draw.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this suite uses."""
    config.addinivalue_line("markers", "integration: starts real processes (gunicorn, fake backends) on 127.0.0.1")


@pytest.fixture
def providers_file(tmp_path: Path) -> Callable[[Mapping[str, Any]], Path]:
    """Write a providers.json dict into tmp_path and return its path."""
    def write(data: Mapping[str, Any], name: str = "providers.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=2))
        return path
    return write


@pytest.fixture
def providers_data() -> dict[str, Any]:
    """The config the `app` fixture loads; override this fixture in a module to change it."""
    return providers_config(anthropic_provider("primary", f"http://127.0.0.1:{closed_port()}"))


@pytest.fixture
def app(providers_file: Callable[[Mapping[str, Any]], Path], providers_data: dict[str, Any]) -> Any:
    """The Flask app built by create_app() from a providers.json in tmp_path."""
    from app import create_app  # imported late: a missing or broken app.py fails only the tests that use it

    # No file-watcher thread: a unit test changes config by building a new app.
    return create_app({"PROVIDERS_FILE": str(providers_file(providers_data)), "DISABLE_CONFIG_WATCH": True})


@pytest.fixture
def client(app: Any) -> Any:
    """A Flask test client for `app`."""
    return app.test_client()


@pytest.fixture
def fake_backend() -> Iterator[Callable[..., FakeBackend]]:
    """Factory: make_backend(dialect="anthropic", ...) returns a started FakeBackend, stopped at teardown."""
    started: list[FakeBackend] = []

    def make_backend(**options: Any) -> FakeBackend:
        backend = FakeBackend(**options).start()
        started.append(backend)
        return backend

    yield make_backend
    for backend in started:
        backend.stop()


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Callable[..., LoadBalancerProcess]]:
    """Factory: start_lb(providers, env=None, workers=1, extra_args=()) returns a running gunicorn."""
    started: list[LoadBalancerProcess] = []

    def start_lb(providers: Mapping[str, Any] | Sequence[Mapping[str, Any]], **options: Any) -> LoadBalancerProcess:
        workdir = tmp_path / f"lb{len(started)}"
        process = LoadBalancerProcess(providers, workdir=workdir, **options)
        started.append(process)
        return process.start()

    yield start_lb
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session (tests keep apart by key prefix); skips without redis-server."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server this test may kill and restart (same port); skips without redis-server."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()
