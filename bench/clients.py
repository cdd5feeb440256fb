"""Load generators: wrk for throughput and latency, a raw-socket client for first events.

wrk is C and not the bottleneck; the raw-socket client is Python, so its figures are only
ever used as a difference between the upstream directly and the load balancer.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH / "wrk" / "post.lua"
RECV_BYTES = 65536
SOCKET_TIMEOUT = 10.0


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured: counts and exact latency percentiles (milliseconds)."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(url: str, body_file: Path, model: str, *, connections: int, threads: int,
            seconds: float) -> WrkResult:
    """POST the body to url for `seconds` (whole seconds: wrk takes no fractions); raises when wrk fails."""
    env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_MODEL": model}
    command = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), url]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON "):])
            return WrkResult(data["requests"], data["seconds"], data["errors"],
                             data["p50_us"] / 1000, data["p99_us"] / 1000)
    raise RuntimeError(f"wrk printed no result: {completed.stdout} {completed.stderr}")


class RawClient:
    """One keep-alive HTTP/1.1 connection that times the first SSE event of each answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def first_event_seconds(self, path: str, body: bytes) -> float:
        """POST; seconds until the first complete SSE frame arrived; reads the whole answer."""
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"content-type: application/json\r\nanthropic-version: 2023-06-01\r\n"
                f"x-api-key: bench\r\ncontent-length: {len(body)}\r\n\r\n").encode()
        started = time.perf_counter()
        self.sock.sendall(head + body)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self._recv()
        headers, _, rest = buffer.partition(b"\r\n\r\n")
        if not headers.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answer was not 200: {headers[:200]!r} {rest[:300]!r}")
        first_event = None
        body_reader = _BodyReader(headers, rest)
        while not body_reader.done:
            if first_event is None and body_reader.has_frame():
                first_event = time.perf_counter() - started
            if body_reader.done:
                break
            body_reader.add(self._recv())
        if first_event is None and body_reader.has_frame():
            first_event = time.perf_counter() - started
        if first_event is None:
            raise RuntimeError("the answer carried no SSE frame")
        return first_event

    def _recv(self) -> bytes:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            raise RuntimeError("connection closed by the server")
        return data


class _BodyReader:
    """Just enough HTTP/1.1 framing (content-length or chunked) to find a body's end."""

    def __init__(self, headers: bytes, first: bytes) -> None:
        lowered = headers.lower()
        self.chunked = b"transfer-encoding: chunked" in lowered
        self.length = None
        for line in lowered.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                self.length = int(line.split(b":", 1)[1])
        self.raw = b""
        self.done = False
        self.add(first)

    def add(self, data: bytes) -> None:
        """More bytes of the body arrived."""
        self.raw += data
        if self.chunked:
            self.done = self.raw.endswith(b"0\r\n\r\n") and _chunked_complete(self.raw)
        else:
            self.done = self.length is not None and len(self.raw) >= self.length

    def has_frame(self) -> bool:
        """Whether a complete SSE frame (blank-line terminated) has arrived."""
        return b"\n\n" in self.raw


def _chunked_complete(raw: bytes) -> bool:
    """Whether a chunked body ends here with its zero-size chunk."""
    position = 0
    while True:
        line_end = raw.find(b"\r\n", position)
        if line_end < 0:
            return False
        size = int(raw[position:line_end].split(b";")[0], 16)
        if size == 0:
            return True
        position = line_end + 2 + size + 2
        if position > len(raw):
            return False


def first_event_difference(direct: tuple[int, str, bytes], through: tuple[int, str, bytes],
                           count: int) -> tuple[float, float, float]:
    """Median first-event time directly and through the LB, and the added median (ms).

    Requests alternate between the two so that drift in machine load hits both alike.
    """
    direct_client, lb_client = RawClient(direct[0]), RawClient(through[0])
    direct_times, lb_times = [], []
    try:
        for _ in range(count):
            direct_times.append(direct_client.first_event_seconds(direct[1], direct[2]))
            lb_times.append(lb_client.first_event_seconds(through[1], through[2]))
    finally:
        direct_client.close()
        lb_client.close()
    direct_ms = statistics.median(direct_times) * 1000
    lb_ms = statistics.median(lb_times) * 1000
    return direct_ms, lb_ms, lb_ms - direct_ms
