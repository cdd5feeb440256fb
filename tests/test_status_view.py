"""The status page's data, without a browser: every worker's last hour merged, bounded files,
p95 from the per-minute histogram, charts that escape what they show, the request filter."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from loadbalancer.ops.charts import Slot, bar_chart, line_chart
from loadbalancer.ops.timeline import (MINUTES, RECENT_PER_WORKER, SERVICE, MinuteCounts, Timeline)
from loadbalancer.request_record import RequestRecord

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def finished(status: int = 200, attempts: tuple[tuple[str, str], ...] = (("a", "ok"),),
             first_token: float | None = 0.4) -> RequestRecord:
    record = RequestRecord(request_id=f"req_{time.monotonic_ns()}", method="POST", path="/v1/messages",
                           model="claude-test", status=status, first_token_seconds=first_token)
    for provider, outcome in attempts:
        record.start_attempt(provider).finish(outcome)
    return record


def test_two_workers_timelines_merge_into_one_view(tmp_path: Path) -> None:
    clock = Clock()
    first, second = Timeline(tmp_path, clock), Timeline(tmp_path, clock)
    first.observe(finished(attempts=(("a", "529"), ("b", "ok"))))
    second.observe(finished())
    second.observe(finished(status=400, attempts=(("a", "400_passed_through"),), first_token=None))
    first.flush()
    second.flush()
    minutes, recent = first.merged()
    minute = int(NOW // 60)
    assert (minutes["a"][minute].requests, minutes["a"][minute].errors) == (3, 1)
    assert (minutes["b"][minute].requests, minutes["b"][minute].errors) == (1, 0)
    assert (minutes[SERVICE][minute].requests, minutes[SERVICE][minute].errors) == (3, 0)
    assert len(recent) == 3 and [row["status"] for row in recent].count(400) == 1
    assert sum(minutes[SERVICE][minute].latency) == 2  # the 400 has no first token


def test_minutes_older_than_an_hour_and_files_of_long_gone_workers_disappear(tmp_path: Path) -> None:
    clock = Clock()
    timeline = Timeline(tmp_path, clock)
    timeline.observe(finished())
    timeline.flush()
    gone = tmp_path / "12345-1.json"
    gone.write_text(json.dumps({"updated_at": NOW - 2 * 3600, "recent": [],
                                "minutes": {"a": {str(int(NOW // 60) - 120): [5, 0, [0] * 20]}}}))
    clock.now += MINUTES * 60 + 60
    timeline.observe(finished(attempts=(("c", "ok"),)))
    timeline.flush()
    minutes, _ = timeline.merged()
    assert "a" not in minutes and not gone.exists()
    assert list(minutes["c"]) == [int(clock.now // 60)]


def test_each_worker_keeps_a_bounded_number_of_recent_requests(tmp_path: Path) -> None:
    timeline = Timeline(tmp_path, Clock())
    for _ in range(RECENT_PER_WORKER + 50):
        timeline.observe(finished())
    _, recent = timeline.merged()
    assert len(recent) == RECENT_PER_WORKER


def test_a_garbled_file_of_another_worker_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "1-1.json").write_text("{half a file")
    (tmp_path / "2-2.json").write_text(json.dumps({"updated_at": NOW, "minutes": {"a": {"x": "nonsense"}},
                                                   "recent": ["x"]}))
    timeline = Timeline(tmp_path, Clock())
    timeline.observe(finished())
    minutes, recent = timeline.merged()
    assert len(recent) == 1 and list(minutes["a"].values())[0].requests == 1


@pytest.mark.parametrize(("latencies", "p95"), [
    ([0.04] * 100, pytest.approx(0.025 + 0.025 * 0.95)),  # inside the (25 ms, 50 ms] bucket
    ([0.4] * 95 + [10.0] * 5, pytest.approx(0.5, abs=0.001)),
    ([1000.0], 300),  # beyond the last bound: that bound is all that is known
])
def test_p95_is_interpolated_in_the_histogram(latencies: list[float], p95: object) -> None:
    counts = MinuteCounts()
    for seconds in latencies:
        counts.observe_latency(seconds)
    assert counts.percentile(0.95) == p95
    assert MinuteCounts().percentile(0.95) is None


def test_charts_escape_their_labels_and_show_errors_in_red() -> None:
    slots = [Slot("12:00 UTC", 0)] * 58 + [Slot("<b>12:58</b>", 4, 1, 0.5), Slot("12:59 UTC", 2, 0, None)]
    bars = bar_chart("alpha & <beta>", slots, "attempts")
    assert "<b>" not in bars and "&lt;b&gt;12:58&lt;/b&gt;: 4 attempts, 1 errors" in bars
    assert bars.count('class="errors"') == 1 and "alpha &amp; &lt;beta&gt;" in bars
    line = line_chart("p95", slots)
    assert line.count("<circle") == 1 and "p95 500 ms" in line
    assert "no requests in the last hour" in bar_chart("empty", [Slot("x")] * 60, "attempts")
