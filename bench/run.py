"""The benchmark, in one command: `.venv/bin/python bench/run.py` (from the repository root).

Starts nginx (canned answers) and an asyncio paced upstream on 127.0.0.1, runs the load
balancer under gunicorn exactly as operators do, measures every scenario directly and
through the load balancer, prints one table and writes it to bench/RESULTS.md.
Needs `nginx` and `wrk` (Debian: apt-get install -y nginx-light wrk); installs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_scenarios  # noqa: E402  (bench/ is not a package; the path is set just above)
import scenarios  # noqa: E402
from procs import (REPO, Service, WorkerSettings, memory_bytes, start_load_balancer,  # noqa: E402
                   start_nginx, start_slow_upstream, stop, free_port)

RESULTS = REPO / "bench" / "RESULTS.md"
TOOLCALLS_BENCH = REPO / "bench" / "toolcalls.py"
GEVENT = WorkerSettings("gevent", workers=2, worker_connections=2000)
GTHREAD = WorkerSettings("gthread", workers=2, threads=1000)
LONG_STREAM_COUNTS = (100, 400, 1000)
MEMORY_SAMPLE_SECONDS = 0.5
STARTUP_SAMPLES = 3
# Everything from this heading on in RESULTS.md is written by hand and kept across runs.
NOTES_HEADING = "## Notes (kept across runs)"


def providers_config(nginx_port: int, slow_port: int) -> dict:
    """One provider per canned answer, chosen by model name; one for the paced upstream."""
    def provider(name: str, kind: str, base: str, model: str) -> dict:
        return {"name": name, "type": kind, "base_url": base, "api_key": "bench-key", "models": {model: "*"},
                "timeout": {"connect": 5, "read": 60, "idle": 60}}
    nginx = f"http://127.0.0.1:{nginx_port}"
    return {"providers": [
        provider("anthropic-json", "anthropic", f"{nginx}/anthropic", "bench-a-json"),
        provider("anthropic-sse", "anthropic", f"{nginx}/anthropic-sse", "bench-a-sse"),
        provider("openai-json", "openai", f"{nginx}/openai", "bench-o-json"),
        provider("openai-sse", "openai", f"{nginx}/openai-sse", "bench-o-sse"),
        provider("slow", "anthropic", f"http://127.0.0.1:{slow_port}", "slow-*"),
    ], "routing": {"affinity": False}}


def check_tools() -> None:
    """nginx and wrk must be installed; say how when they are not."""
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing: {', '.join(missing)}. Install with: apt-get install -y nginx-light wrk")


def sample_memory(service: Service | None, measure):
    """Run measure() while sampling the service's PSS and RSS; return its result and the peaks."""
    peaks = [0, 0]
    running = threading.Event()
    running.set()

    def sampler() -> None:
        while running.is_set():
            pss, rss = memory_bytes(service.pids())
            peaks[0], peaks[1] = max(peaks[0], pss), max(peaks[1], rss)
            time.sleep(MEMORY_SAMPLE_SECONDS)

    thread = threading.Thread(target=sampler, daemon=True) if service is not None else None
    if thread:
        thread.start()
    try:
        result = measure()
    finally:
        running.clear()
        if thread:
            thread.join()
    return result, tuple(peaks)


def startup_seconds(rundir: Path, providers_file: Path, settings: WorkerSettings) -> float:
    """Median time from exec to answering GET / with every worker up."""
    times = []
    for _ in range(STARTUP_SAMPLES):
        service = start_load_balancer(rundir, providers_file, settings)
        times.append(service.ready_seconds)
        stop(service.process)
    return sorted(times)[len(times) // 2]


def main_scenarios(bench: scenarios.Bench, service: Service, *, agent_only: bool = False) -> list[scenarios.Row]:
    """Scenarios 1-4, 6 and the agent-sized ones against one running service."""
    if agent_only:
        return agent_scenarios.agent_rows(bench, service)
    rows = []
    rows += scenarios.sequential(bench, service, scenarios.ANTHROPIC, "added median ≤ 1.5 ms")
    rows += scenarios.concurrent(bench, service, scenarios.ANTHROPIC, "CPU ≤ 1.2 ms/req")
    rows += scenarios.streams(bench, service, scenarios.ANTHROPIC, "added first event ≤ 2 ms")
    rows += scenarios.sequential(bench, service, scenarios.OPENAI, "added median ≤ 2.5 ms")
    rows += scenarios.concurrent(bench, service, scenarios.OPENAI, "")
    rows += scenarios.streams(bench, service, scenarios.OPENAI, "")
    rows += scenarios.toolcall_parsing(bench, service)
    rows += agent_scenarios.agent_rows(bench, service)
    return rows


def long_stream_comparison(bench: scenarios.Bench, providers_file: Path, counts: tuple[int, ...],
                           worker_settings: list[WorkerSettings]) -> list[scenarios.Row]:
    """Scenario 5 directly, then through the LB for each worker choice."""
    direct = scenarios.long_streams(bench, None, counts, sample_memory)
    rows = []
    for settings in worker_settings:
        service = start_load_balancer(bench.rundir, providers_file, settings)
        try:
            through = scenarios.long_streams(bench, service, counts, sample_memory)
        finally:
            stop(service.process)
        rows += scenarios.long_stream_rows(settings.describe(), direct, through,
                                           "all done, p99 ≤ 50 ms, ≤ 400 MiB")
    return rows


def render_table(rows: list[scenarios.Row]) -> str:
    """The results as one Markdown table."""
    lines = ["| scenario | upstream directly | through the load balancer | added | service CPU / memory | goal |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {row.scenario} | {row.direct} | {row.through} | {row.added} | {row.service_cpu} | {row.goal} |"
              for row in rows]
    return "\n".join(lines)


def machine_description() -> list[str]:
    """Machine, software and commit, for the record."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    return [f"- machine: {cpu}, {os.cpu_count()} CPUs, {memory_kb / 1024 / 1024:.1f} GiB, "
            f"{platform.system()} {platform.release()}",
            f"- commit: {commit}" + (" (with uncommitted changes in the checkout)" if dirty else ""),
            f"- software: Python {platform.python_version()}, {nginx}, {wrk}"]


def toolcalls_benchmark(limit_seconds: float) -> str:
    """The tool-call parser's own benchmark (bench/toolcalls.py), when it exists."""
    if not TOOLCALLS_BENCH.exists():
        return "bench/toolcalls.py not present in this checkout."
    try:
        completed = subprocess.run([sys.executable, str(TOOLCALLS_BENCH)], cwd=REPO, capture_output=True,
                                   text=True, timeout=limit_seconds)
    except subprocess.TimeoutExpired:
        return f"bench/toolcalls.py did not finish within {limit_seconds:g}s."
    return (completed.stdout.strip() or completed.stderr.strip()[-2000:]) or "no output"


def parse_arguments() -> argparse.Namespace:
    """Durations, repeats and which worker classes to run."""
    parser = argparse.ArgumentParser(description="Benchmark the load balancer against nginx and a paced upstream.")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of the latency measurements")
    parser.add_argument("--samples", type=int, default=200, help="first-event samples per round")
    parser.add_argument("--streams", default=",".join(map(str, LONG_STREAM_COUNTS)),
                        help="comma-separated counts of long streams (scenario 5)")
    parser.add_argument("--workers", choices=("gevent", "gthread", "both"), default="both",
                        help="worker classes to compare in scenario 5")
    parser.add_argument("--main-workers", choices=("gevent", "gthread"), default="gevent",
                        help="worker class for scenarios 1-4 and 6")
    parser.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--agent-only", action="store_true",
                        help="only the agent-sized scenarios (270 KB and 1 MB turns); implies --no-results")
    return parser.parse_args()


def main() -> None:
    """Run everything, print the table, keep it in RESULTS.md."""
    arguments = parse_arguments()
    check_tools()
    rundir = Path(tempfile.mkdtemp(prefix="lb-bench-"))
    nginx_port, slow_port = free_port(), free_port()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    nginx = start_nginx(rundir, nginx_port)
    slow = start_slow_upstream(rundir, slow_port)
    try:
        providers_file = rundir / "providers.json"
        providers_file.write_text(json.dumps(providers_config(nginx_port, slow_port)))
        bench = scenarios.Bench(nginx_port, slow_port, slow.pid, rundir, arguments.seconds, arguments.rounds,
                                arguments.samples)
        main_settings = GEVENT if arguments.main_workers == "gevent" else GTHREAD
        startup = startup_seconds(rundir, providers_file, main_settings)
        service = start_load_balancer(rundir, providers_file, main_settings)
        try:
            rows = main_scenarios(bench, service, agent_only=arguments.agent_only)
        finally:
            stop(service.process)
        rows += agent_scenarios.floor_rows(bench, main_settings)
        if arguments.agent_only:
            print(render_table(rows))
            return
        rows.append(scenarios.Row(f"start-up to ready ({main_settings.describe()})", "", f"{startup:.2f} s",
                                  "", "", "≤ 2 s"))
        choices = {"gevent": [GEVENT], "gthread": [GTHREAD], "both": [GEVENT, GTHREAD]}[arguments.workers]
        counts = tuple(int(count) for count in arguments.streams.split(",") if count)
        rows += long_stream_comparison(bench, providers_file, counts, choices)
    finally:
        stop(slow)
        stop(nginx)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    table = render_table(rows)
    print(table)
    if not arguments.no_results:
        write_results(table, arguments, main_settings, load_before, load_after, toolcalls_benchmark(300))
    shutil.rmtree(rundir, ignore_errors=True)


def write_results(table: str, arguments: argparse.Namespace, main_settings: WorkerSettings,
                  load_before: list[str], load_after: list[str], toolcalls: str) -> None:
    """Keep the latest table with the machine, the commit and the settings."""
    settings = (f"- settings: scenarios 1-4 and 6 with {main_settings.describe()}; wrk runs of {arguments.seconds:g} s, "
                f"latency rounds {arguments.rounds}, first-event samples {arguments.samples} per round; "
                f"scenario 5 one event every 250 ms for 10 s per stream")
    lines = ["# Benchmark results", "", f"Latest run: {time.strftime('%Y-%m-%d %H:%M %Z')}", "",
             *machine_description(), settings,
             f"- load average before / after: {' '.join(load_before)} / {' '.join(load_after)}", "",
             table, "", "## Tool-call parser (bench/toolcalls.py)", "", "```", toolcalls, "```", ""]
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    notes = previous[previous.index(NOTES_HEADING):] if NOTES_HEADING in previous else ""
    RESULTS.write_text("\n".join(lines) + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    main()
