"""Agent-sized scenarios: a 270 KB (and a 1 MB) mid-session turn instead of a 651-byte request.

Same method as scenarios.py: wrk against nginx directly and through the load balancer in
the same run; figures are differences, and the service's CPU comes from /proc.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from agent_body import agent_body
from clients import run_wrk
from procs import Service, WorkerSettings, start_floor, stop
from scenarios import ANTHROPIC, OPENAI, Bench, Dialect, Row, _check, lb_url, measured_wrk

AGENT_SIZES = (("270 KB", 270_000), ("1 MB", 1_000_000))
STREAM_CONNECTIONS = 4
FLOOR_WARM_UP_SECONDS = 1.0


def agent_body_file(bench: Bench, target_bytes: int, *, stream: bool) -> Path:
    """The agent-sized body with "MODEL" for wrk to fill in, written once per run."""
    path = bench.rundir / f"agent-{target_bytes}-{'stream' if stream else 'json'}.json"
    if not path.exists():
        path.write_bytes(agent_body(target_bytes, model="MODEL", stream=stream))
    return path


def _sequential_pair(bench: Bench, service: Service, body: Path, direct_path: str,
                     model: str) -> tuple[float, float, float]:
    """Median p50 direct and through, and median service CPU per request, at one connection."""
    direct_p50, through_p50, cpu_per_request = [], [], []
    round_seconds = max(1.0, bench.seconds / bench.rounds)
    for _ in range(bench.rounds):
        direct = run_wrk(bench.direct_url(direct_path), body, model, connections=1, threads=1,
                         seconds=round_seconds)
        through, cpu = measured_wrk(service, lb_url(service), body, model, connections=1,
                                    seconds=round_seconds)
        _check(through, "agent-sized sequential")
        direct_p50.append(direct.p50_ms)
        through_p50.append(through.p50_ms)
        cpu_per_request.append(cpu * 1000 / through.requests)
    median = statistics.median
    return median(direct_p50), median(through_p50), median(cpu_per_request)


def agent_sequential(bench: Bench, service: Service, dialect: Dialect, *, stream: bool,
                     sizes=AGENT_SIZES, goals: dict[str, str] | None = None) -> list[Row]:
    """One connection: added p50 and CPU per request for each body size."""
    rows = []
    for label, size in sizes:
        body = agent_body_file(bench, size, stream=stream)
        path = dialect.stream_path if stream else dialect.json_path
        model = dialect.stream_model if stream else dialect.json_model
        direct, through, cpu = _sequential_pair(bench, service, body, path, model)
        kind = "stream" if stream else "non-stream"
        rows.append(Row(f"A {label} {kind}, {dialect.label}: median", f"{direct:.3f} ms",
                        f"{through:.3f} ms", f"+{through - direct:.3f} ms", f"{cpu:.2f} ms/req",
                        (goals or {}).get(label, "")))
    return rows


def agent_stream_throughput(bench: Bench, service: Service, dialect: Dialect) -> list[Row]:
    """Streams of the 270 KB turn at four connections: requests per second both ways."""
    label, size = AGENT_SIZES[0]
    body = agent_body_file(bench, size, stream=True)
    direct = run_wrk(bench.direct_url(dialect.stream_path), body, dialect.stream_model,
                     connections=STREAM_CONNECTIONS, threads=2, seconds=bench.seconds)
    through, cpu = measured_wrk(service, lb_url(service), body, dialect.stream_model,
                                connections=STREAM_CONNECTIONS, seconds=bench.seconds)
    _check(through, "agent-sized streams")
    return [Row(f"A {label} stream, {STREAM_CONNECTIONS} connections, {dialect.label}",
                f"{direct.per_second:,.0f} req/s", f"{through.per_second:,.0f} req/s",
                f"x{through.per_second / direct.per_second:.3f}",
                f"{cpu * 1000 / through.requests:.2f} ms/req")]


def agent_rows(bench: Bench, service: Service) -> list[Row]:
    """Every agent-sized row, with the goals of the performance issue."""
    rows = agent_sequential(bench, service, ANTHROPIC, stream=False,
                            goals={"270 KB": "added ≤ 1.2 ms, CPU ≤ 1.2 ms", "1 MB": "added ≤ 3 ms"})
    rows += agent_sequential(bench, service, OPENAI, stream=False, sizes=AGENT_SIZES[:1])
    rows += agent_stream_throughput(bench, service, ANTHROPIC)
    rows += agent_sequential(bench, service, OPENAI, stream=True, sizes=AGENT_SIZES[:1],
                             goals={"270 KB": "added ≤ 2.5 ms"})
    return rows


def floor_rows(bench: Bench, settings: WorkerSettings) -> list[Row]:
    """The same stack forwarding only (bench/floor_app.py), for the small and the 270 KB body."""
    floor = start_floor(bench.rundir, bench.direct_url(ANTHROPIC.json_path), settings)
    rows = []
    try:
        # The load balancer has served every earlier row when its agent rows run: warm this up too.
        run_wrk(lb_url(floor), bench.body_file(stream=False), ANTHROPIC.json_model, connections=1, threads=1,
                seconds=FLOOR_WARM_UP_SECONDS)
        for label, body in (("small body", bench.body_file(stream=False)),
                            ("270 KB", agent_body_file(bench, AGENT_SIZES[0][1], stream=False))):
            direct, through, cpu = _sequential_pair(bench, floor, body, ANTHROPIC.json_path, ANTHROPIC.json_model)
            rows.append(Row(f"F {label} non-stream, stack only (Flask + gunicorn + requests, "
                            f"bench/floor_app.py): median", f"{direct:.3f} ms", f"{through:.3f} ms",
                            f"+{through - direct:.3f} ms", f"{cpu:.2f} ms/req", ""))
    finally:
        stop(floor.process)
    return rows
