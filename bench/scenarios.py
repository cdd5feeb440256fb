"""The benchmark scenarios: each measures the upstream directly and through the load balancer.

Every function returns table rows; a figure is always a difference or a ratio between the
two measured in the same run, and the service's CPU comes from /proc, not from a client.
"""

from __future__ import annotations

import json
import resource
import statistics
from dataclasses import dataclass
from pathlib import Path

from clients import WrkResult, first_event_difference, run_wrk
from long_streams import OPENING_BURST_SECONDS, StreamsResult, run_streams
from procs import Service, cpu_seconds

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MESSAGES_PATH = "/v1/messages"
STREAM_EVENTS = 60
CONCURRENT_CONNECTIONS = 32
WRK_THREADS = 2
MIB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    scenario: str
    direct: str
    through: str
    added: str
    service_cpu: str
    goal: str = ""


@dataclass(frozen=True)
class Dialect:
    """One upstream dialect: the LB's model names and nginx's paths for JSON and SSE answers."""

    label: str
    json_model: str
    stream_model: str
    json_path: str
    stream_path: str


ANTHROPIC = Dialect("Anthropic passthrough", "bench-a-json", "bench-a-sse",
                    "/anthropic/v1/messages", "/anthropic-sse/v1/messages")
OPENAI = Dialect("OpenAI translation", "bench-o-json", "bench-o-sse",
                 "/openai/chat/completions", "/openai-sse/chat/completions")


@dataclass(frozen=True)
class Bench:
    """What every scenario needs: ports, request bodies, durations."""

    nginx_port: int
    slow_port: int
    slow_pid: int
    rundir: Path
    seconds: float
    rounds: int
    first_event_samples: int

    def body_file(self, *, stream: bool, tools: bool = False) -> Path:
        """The canned request body (model left as "MODEL" for wrk to fill in)."""
        source = FIXTURES / ("request_tools.json" if tools else "request.json")
        if not stream:
            return source
        target = self.rundir / f"stream-{source.name}"
        if not target.exists():
            target.write_text(json.dumps({**json.loads(source.read_text()), "stream": True}))
        return target

    def body_bytes(self, model: str, *, stream: bool) -> bytes:
        """The request body with its model filled in."""
        return self.body_file(stream=stream).read_bytes().replace(b'"MODEL"', json.dumps(model).encode())

    def direct_url(self, path: str) -> str:
        """A URL on the nginx upstream."""
        return f"http://127.0.0.1:{self.nginx_port}{path}"


def lb_url(service: Service) -> str:
    """The load balancer's Messages API URL."""
    return f"http://127.0.0.1:{service.port}{MESSAGES_PATH}"


def measured_wrk(service: Service, url: str, body: Path, model: str, *, connections: int,
                 seconds: float) -> tuple[WrkResult, float]:
    """A wrk run and the service CPU seconds it cost."""
    before = cpu_seconds(service.pids())
    result = run_wrk(url, body, model, connections=connections,
                     threads=min(WRK_THREADS, connections), seconds=seconds)
    return result, cpu_seconds(service.pids()) - before


def sequential(bench: Bench, service: Service, dialect: Dialect, goal: str) -> list[Row]:
    """Scenario 1/4: one connection, non-stream; added median and p99 latency."""
    body = bench.body_file(stream=False)
    direct_p50, direct_p99, lb_p50, lb_p99, cpu_per_request = [], [], [], [], []
    round_seconds = max(1.0, bench.seconds / bench.rounds)
    for _ in range(bench.rounds):
        direct = run_wrk(bench.direct_url(dialect.json_path), body, dialect.json_model,
                         connections=1, threads=1, seconds=round_seconds)
        through, cpu = measured_wrk(service, lb_url(service), body, dialect.json_model,
                                    connections=1, seconds=round_seconds)
        _check(through, "sequential")
        direct_p50.append(direct.p50_ms)
        direct_p99.append(direct.p99_ms)
        lb_p50.append(through.p50_ms)
        lb_p99.append(through.p99_ms)
        cpu_per_request.append(cpu * 1000 / through.requests)
    median = statistics.median
    cpu = f"{median(cpu_per_request):.2f} ms/req"
    return [
        Row(f"1 sequential, {dialect.label}: median", f"{median(direct_p50):.3f} ms",
            f"{median(lb_p50):.3f} ms", f"+{median(lb_p50) - median(direct_p50):.3f} ms", cpu, goal),
        Row(f"1 sequential, {dialect.label}: p99", f"{median(direct_p99):.3f} ms",
            f"{median(lb_p99):.3f} ms", f"+{median(lb_p99) - median(direct_p99):.3f} ms", cpu),
    ]


def concurrent(bench: Bench, service: Service, dialect: Dialect, goal: str) -> list[Row]:
    """Scenario 2/4: 32 connections, non-stream; requests/s and service CPU per request."""
    body = bench.body_file(stream=False)
    direct = run_wrk(bench.direct_url(dialect.json_path), body, dialect.json_model,
                     connections=CONCURRENT_CONNECTIONS, threads=WRK_THREADS, seconds=bench.seconds)
    through, cpu = measured_wrk(service, lb_url(service), body, dialect.json_model,
                                connections=CONCURRENT_CONNECTIONS, seconds=bench.seconds)
    _check(through, "concurrent")
    return [Row(f"2 {CONCURRENT_CONNECTIONS} connections, {dialect.label}", f"{direct.per_second:,.0f} req/s",
                f"{through.per_second:,.0f} req/s", f"x{through.per_second / direct.per_second:.3f}",
                f"{cpu * 1000 / through.requests:.2f} ms/req", goal)]


def streams(bench: Bench, service: Service, dialect: Dialect, goal: str) -> list[Row]:
    """Scenario 3/4: streams of 60 events; added time to first event, requests/s, CPU per event."""
    body = bench.body_bytes(dialect.stream_model, stream=True)
    added = []
    for _ in range(bench.rounds):
        direct_ms, lb_ms, added_ms = first_event_difference(
            (bench.nginx_port, dialect.stream_path, body), (service.port, MESSAGES_PATH, body),
            bench.first_event_samples)
        added.append((direct_ms, lb_ms, added_ms))
    direct_ms, lb_ms, added_ms = sorted(added, key=lambda item: item[2])[len(added) // 2]
    body_file = bench.body_file(stream=True)
    direct = run_wrk(bench.direct_url(dialect.stream_path), body_file, dialect.stream_model,
                     connections=CONCURRENT_CONNECTIONS, threads=WRK_THREADS, seconds=bench.seconds)
    through, cpu = measured_wrk(service, lb_url(service), body_file, dialect.stream_model,
                                connections=CONCURRENT_CONNECTIONS, seconds=bench.seconds)
    _check(through, "streams")
    per_event_us = cpu * 1e6 / (through.requests * STREAM_EVENTS)
    return [
        Row(f"3 stream, {dialect.label}: first event (sequential)", f"{direct_ms:.3f} ms", f"{lb_ms:.3f} ms",
            f"+{added_ms:.3f} ms", "", goal),
        Row(f"3 stream x{STREAM_EVENTS} events, {CONCURRENT_CONNECTIONS} connections, {dialect.label}",
            f"{direct.per_second:,.0f} req/s", f"{through.per_second:,.0f} req/s",
            f"x{through.per_second / direct.per_second:.3f}",
            f"{per_event_us:.1f} µs/event ({cpu * 1000 / through.requests:.2f} ms/stream)"),
    ]


def streamed_text_bytes() -> int:
    """Bytes of text in the canned Anthropic stream's text deltas."""
    total = 0
    for line in (FIXTURES / "anthropic_stream.sse").read_text().splitlines():
        if line.startswith("data: ") and "text_delta" in line:
            total += len(json.loads(line[6:])["delta"]["text"].encode())
    return total


def toolcall_parsing(bench: Bench, service: Service) -> list[Row]:
    """Scenario 6: CPU per KB of streamed text, with tools (parser on) minus without (parser off).

    The two runs alternate round by round so that load from elsewhere hits both alike.
    """
    totals = {False: [0, 0.0], True: [0, 0.0]}  # tools? -> [requests, CPU seconds]
    round_seconds = max(1.0, bench.seconds / bench.rounds)
    for _ in range(bench.rounds):
        for tools in (False, True):
            result, cpu = measured_wrk(service, lb_url(service), bench.body_file(stream=True, tools=tools),
                                       ANTHROPIC.stream_model, connections=4, seconds=round_seconds)
            _check(result, "tool-call parsing")
            totals[tools][0] += result.requests
            totals[tools][1] += cpu
    plain_ms = totals[False][1] * 1000 / totals[False][0]
    parsed_ms = totals[True][1] * 1000 / totals[True][0]
    kilobytes = streamed_text_bytes() / 1024
    return [Row("6 text tool-call parsing (stream, 4 connections)",
                f"no tools: {plain_ms:.2f} ms/stream", f"with tools: {parsed_ms:.2f} ms/stream",
                f"+{(parsed_ms - plain_ms) / kilobytes:.3f} ms/KB",
                f"{kilobytes:.2f} KB text per stream")]


@dataclass(frozen=True)
class LongStreamsRun:
    """Scenario 5 at one count: the client's view, and what it cost whom (CPU seconds)."""

    count: int
    result: StreamsResult
    peak_pss: int
    peak_rss: int
    service_cpu: float
    upstream_cpu: float
    client_cpu: float


def long_streams(bench: Bench, service: Service | None, counts: tuple[int, ...],
                 sample_memory) -> list[LongStreamsRun]:
    """Scenario 5: N paced streams at once (straight to the upstream when service is None)."""
    port = service.port if service is not None else bench.slow_port
    runs = []
    for count in counts:
        service_before = cpu_seconds(service.pids()) if service else 0.0
        upstream_before = cpu_seconds([bench.slow_pid])
        client_before = _own_cpu_seconds()
        result, (pss, rss) = sample_memory(service, lambda: run_streams(port, count))
        runs.append(LongStreamsRun(
            count, result, pss, rss, (cpu_seconds(service.pids()) - service_before) if service else 0.0,
            cpu_seconds([bench.slow_pid]) - upstream_before, _own_cpu_seconds() - client_before))
    return runs


def _own_cpu_seconds() -> float:
    """CPU used by this process, which is the scenario 5 client."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def long_stream_rows(label: str, direct: list[LongStreamsRun], through: list[LongStreamsRun],
                     goal: str) -> list[Row]:
    """Rows for scenario 5: delays directly and through the LB, completion, CPU and memory."""
    rows = []
    for base, run in zip(direct, through):
        lb = run.result
        per_event = run.service_cpu * 1e6 / lb.events if lb.events else float("nan")
        errors = f"; errors: {'; '.join(lb.errors)[:120]}" if lb.errors else ""
        rows.append(Row(
            f"5 {run.count} long streams ({label})",
            f"p50 {base.result.p50_ms:.1f} / p99 {base.result.p99_ms:.1f} / max {base.result.max_ms:.1f} ms"
            f" (after {OPENING_BURST_SECONDS:g} s: p99 {base.result.steady_p99_ms:.1f})",
            f"{lb.completed}/{run.count} done; p50 {lb.p50_ms:.1f} / p99 {lb.p99_ms:.1f} / max {lb.max_ms:.1f} ms"
            f" (p99 after the first {OPENING_BURST_SECONDS:g} s: {lb.steady_p99_ms:.1f} ms)",
            f"p99 +{lb.p99_ms - base.result.p99_ms:.1f} ms",
            f"PSS {run.peak_pss / MIB:.0f} MiB, RSS {run.peak_rss / MIB:.0f} MiB; {per_event:.0f} µs/event; "
            f"upstream {run.upstream_cpu:.1f} s, client {run.client_cpu:.1f} s CPU{errors}",
            goal))
    return rows


def _check(result: WrkResult, what: str) -> None:
    """A scenario whose requests failed measures nothing: stop loudly."""
    if result.errors or not result.requests:
        raise RuntimeError(f"{what}: {result.errors} of {result.requests} requests failed through the LB")
