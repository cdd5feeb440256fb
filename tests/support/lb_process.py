"""The load balancer under test as a real gunicorn process, providers.json builders, and SSE readers."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
# Real credentials must never reach a process under test.
SCRUBBED_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_BEARER_TOKEN_BEDROCK", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                "GOOGLE_APPLICATION_CREDENTIALS",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
HEALTH_POLL_TIMEOUT = 0.5
POLL_INTERVAL = 0.05
LOG_TAIL_CHARS = 4000

TEST_TIMEOUT = {"connect": 2, "read": 10, "idle": 5}
# Short enough that a test never waits long for a provider to come back.
TEST_ROUTING = {"cooldown": 0.2, "max_cooldown": 1, "wait_for_cooldown": 0.5, "deadline": 30}
TEST_HEALTH = {"interval": 0}
# gunicorn.conf.py lets open streams finish for minutes on SIGTERM/SIGHUP; a test should not wait that long.
TEST_PROCESS_ENV = {"PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "LB_GRACEFUL_TIMEOUT": "3"}


class LoadBalancerStartError(RuntimeError):
    """gunicorn exited or never answered /health; the message carries the log tail."""


def anthropic_provider(name: str, url: str, **overrides: Any) -> dict[str, Any]:
    """A providers.json entry for an Anthropic-compatible backend at `url`, with test timeouts."""
    return {"name": name, "type": "anthropic", "base_url": url, "api_key": f"sk-test-{name}",
            "timeout": dict(TEST_TIMEOUT), **overrides}


def openai_provider(name: str, url: str, **overrides: Any) -> dict[str, Any]:
    """A providers.json entry for an OpenAI-compatible backend at `url`, with test timeouts."""
    return {"name": name, "type": "openai", "base_url": url, "api_key": f"sk-test-{name}",
            "timeout": dict(TEST_TIMEOUT), **overrides}


def providers_config(*providers: Mapping[str, Any], routing: Mapping[str, Any] | None = None,
                     **sections: Any) -> dict[str, Any]:
    """A whole providers.json: the entries, quick test routing, no background health probes."""
    return {"providers": [dict(provider) for provider in providers],
            "routing": {**TEST_ROUTING, **(routing or {})}, "health": dict(TEST_HEALTH), **sections}


def as_config(providers: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accept a whole config or a list of provider entries (wrapped by providers_config)."""
    if isinstance(providers, Mapping):
        return dict(providers)
    return providers_config(*providers)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON so a reader never sees half a file: temporary file, then os.replace."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoadBalancerProcess:
    """gunicorn running 'app:create_app()' with the repo's gunicorn.conf.py and a test providers.json."""

    def __init__(self, providers: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                 env: Mapping[str, str] | None = None, workers: int = 1, extra_args: Iterable[str] = (),
                 workdir: str | os.PathLike[str] | None = None, startup_timeout: float = STARTUP_TIMEOUT):
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="lb-test-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.providers_path = self.workdir / "providers.json"
        self.log_path = self.workdir / "gunicorn.log"
        self.port = free_port()
        self._config = as_config(providers)
        self._env = dict(env or {})
        self._workers = workers
        self._extra_args = tuple(extra_args)
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    @property
    def url(self) -> str:
        """Base URL clients use, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The gunicorn master's pid."""
        assert self._pid is not None, "LoadBalancerProcess was never started"
        return self._pid

    def command(self) -> list[str]:
        """The gunicorn command line."""
        return [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py"),
                "-b", f"127.0.0.1:{self.port}", "--workers", str(self._workers),
                *self._extra_args, "app:create_app()"]

    def environment(self) -> dict[str, str]:
        """os.environ without real keys or proxies, plus test settings, PROVIDERS_FILE and the test's env."""
        inherited = {name: value for name, value in os.environ.items() if name not in SCRUBBED_ENV}
        return {**inherited, **TEST_PROCESS_ENV, "PROVIDERS_FILE": str(self.providers_path), **self._env}

    def start(self) -> LoadBalancerProcess:
        """Write providers.json, launch gunicorn, and wait until /health answers.

        :raises LoadBalancerStartError: the process exited or stayed silent past the timeout.
        """
        write_json_atomically(self.providers_path, self._config)
        with open(self.log_path, "wb") as log:
            # A new session lets stop() kill the workers too if the master will not go.
            self._process = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=self.environment(),
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._pid = self._process.pid
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LoadBalancerStartError(
                    f"gunicorn exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                requests.get(f"{self.url}/health", timeout=HEALTH_POLL_TIMEOUT)
                return
            except requests.RequestException:
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise LoadBalancerStartError(f"no answer on {self.url}/health after {self._startup_timeout}s:\n"
                                     f"{self.log_tail()}")

    def log_text(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the log, for error messages."""
        return self.log_text()[-chars:]

    def wait_for_log(self, fragment: str, timeout: float = 5.0) -> str:
        """Block until `fragment` appears in the log; return the log or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if fragment in text:
                return text
            time.sleep(POLL_INTERVAL)
        raise TimeoutError(f"{fragment!r} not in the log after {timeout}s:\n{self.log_tail()}")

    def rewrite_config(self, providers: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Replace providers.json atomically (call reload() for gunicorn to notice)."""
        self._config = as_config(providers)
        write_json_atomically(self.providers_path, self._config)

    def reload(self) -> None:
        """Send SIGHUP to the master: gunicorn restarts its workers with the current file."""
        os.kill(self.pid, signal.SIGHUP)

    def stop(self) -> int | None:
        """SIGINT (gunicorn's quick shutdown: a test has nothing in flight worth waiting for),
        wait, then SIGKILL the whole process group; return the master's exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        self._kill_leftover_workers(process.pid)
        return process.returncode

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM (gunicorn's graceful stop) and wait up to `timeout`; the exit code, or None
        while it still runs (stop() then finishes it)."""
        assert self._process is not None, "LoadBalancerProcess is not running"
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @staticmethod
    def _kill_leftover_workers(group: int) -> None:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is already empty: the usual case after a clean shutdown

    def __enter__(self) -> LoadBalancerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def iter_sse(response: requests.Response) -> Iterator[tuple[str | None, str]]:
    """Yield (event name or None, data) per SSE frame as it arrives, reading like a strict client."""
    event = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, line[len("data: "):]
            event = None


def read_anthropic_events(response: requests.Response) -> list[dict[str, Any]]:
    """Decode a whole Anthropic stream; each frame's event name must equal its JSON type."""
    events = []
    for name, data in iter_sse(response):
        event = json.loads(data)
        if name != event.get("type"):
            raise AssertionError(f"frame named {name!r} carries an event of type {event.get('type')!r}")
        events.append(event)
    return events


def read_openai_chunks(response: requests.Response) -> list[Any]:
    """Decode a whole OpenAI stream into chunk dicts followed by the literal "[DONE]"."""
    return [data if data == "[DONE]" else json.loads(data) for _, data in iter_sse(response)]
