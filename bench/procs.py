"""Processes of a benchmark run: start and stop them, read their CPU time and memory.

Every figure about the load balancer comes from /proc: CPU is utime+stime of the gunicorn
master and all its workers; memory is the PSS (or RSS) summed over the same processes.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    """Return once something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


def start_nginx(rundir: Path, port: int) -> subprocess.Popen:
    """nginx serving the canned answers in bench/fixtures on `port`."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (rundir / name).mkdir(parents=True, exist_ok=True)
    conf = (BENCH / "nginx.conf.template").read_text()
    conf = (conf.replace("@PORT@", str(port)).replace("@FIXTURES@", str(BENCH / "fixtures"))
            .replace("@RUNDIR@", str(rundir)))
    path = rundir / "nginx.conf"
    path.write_text(conf)
    process = subprocess.Popen(["nginx", "-c", str(path), "-p", str(rundir)],
                               stdout=subprocess.DEVNULL, stderr=open(rundir / "nginx.out", "wb"))
    wait_for_port(port)
    return process


def start_slow_upstream(rundir: Path, port: int) -> subprocess.Popen:
    """The asyncio upstream whose stream events are spaced in time."""
    process = subprocess.Popen([sys.executable, str(BENCH / "slow_upstream.py"), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=open(rundir / "slow_upstream.log", "wb"))
    wait_for_port(port)
    return process


@dataclass(frozen=True)
class WorkerSettings:
    """The gunicorn worker choice under test."""

    worker_class: str = "gevent"
    workers: int = 2
    threads: int = 64
    worker_connections: int = 2000

    def describe(self) -> str:
        """Short label for tables."""
        if self.worker_class == "gevent":
            return f"gevent, {self.workers} workers x {self.worker_connections} connections"
        return f"gthread, {self.workers} workers x {self.threads} threads"


@dataclass
class Service:
    """A running load balancer: its process and how long it took to become ready."""

    process: subprocess.Popen
    port: int
    ready_seconds: float

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        return [self.process.pid, *children_of(self.process.pid)]


def start_load_balancer(rundir: Path, providers_file: Path, settings: WorkerSettings) -> Service:
    """gunicorn as operators run it; ready means GET / answered 200."""
    port = free_port()
    env = {**os.environ, "PROVIDERS_FILE": str(providers_file), **_worker_environment(settings)}
    log = open(rundir / f"gunicorn-{settings.worker_class}.log", "ab")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
         "app:create_app()"], cwd=REPO, env=env, stdout=log, stderr=log)
    deadline = started + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log.name}")
        if _answers(port) and len(children_of(process.pid)) >= settings.workers:
            return Service(process, port, time.monotonic() - started)
        time.sleep(0.01)
    stop(process)
    raise RuntimeError(f"gunicorn not ready after {START_TIMEOUT:g}s; see {log.name}")


def start_floor(rundir: Path, upstream_url: str, settings: WorkerSettings) -> Service:
    """bench/floor_app.py under gunicorn as the load balancer runs (gunicorn.conf.py, the same workers)."""
    port = free_port()
    env = {**os.environ, **_worker_environment(settings), "FLOOR_UPSTREAM": upstream_url}
    log = open(rundir / "gunicorn-floor.log", "ab")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "--pythonpath", f"{REPO},{BENCH}",
         "-b", f"127.0.0.1:{port}", "floor_app:create_app()"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port)
        deadline = time.monotonic() + START_TIMEOUT
        while len(children_of(process.pid)) < settings.workers and time.monotonic() < deadline:
            time.sleep(0.01)
    except BaseException:
        stop(process)
        raise
    return Service(process, port, time.monotonic() - started)


def _worker_environment(settings: WorkerSettings) -> dict[str, str]:
    """What gunicorn.conf.py reads to choose the workers (it monkey-patches for gevent only)."""
    return {"LB_WORKER_CLASS": settings.worker_class, "LB_WORKERS": str(settings.workers),
            "LB_THREADS": str(settings.threads), "LB_WORKER_CONNECTIONS": str(settings.worker_connections)}


def _answers(port: int) -> bool:
    """Whether GET / answers 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def children_of(pid: int) -> list[int]:
    """Direct children of a process."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return children


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of these processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited: its time is gone with it
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks / CLOCK_TICKS


def memory_bytes(pids: list[int]) -> tuple[int, int]:
    """(PSS, RSS) summed over these processes, in bytes."""
    pss = rss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name == "Pss":
                pss += int(value.split()[0]) * 1024
            elif name == "Rss":
                rss += int(value.split()[0]) * 1024
    return pss, rss
