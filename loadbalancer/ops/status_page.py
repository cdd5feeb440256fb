"""The status page a browser gets at `GET /`, and the JSON of the same view (`/status.json`).

The server draws the whole page (`templates/status.html`, charts as inline SVG from
`ops.charts`); a few lines of script fetch it again every few seconds and swap the content.
curl and API clients keep getting JSON from `GET /`: only a client that prefers `text/html`
over JSON gets the page. All times are UTC and carry their date.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from werkzeug.datastructures import MIMEAccept

from loadbalancer.ops.charts import Slot, bar_chart, format_seconds, line_chart
from loadbalancer.ops.health_monitor import HealthMonitor
from loadbalancer.ops.metrics import Metrics, multiprocess_dir
from loadbalancer.ops.timeline import MINUTES, SECONDS_PER_MINUTE, SERVICE, MinuteCounts, Timeline

DEFAULT_REFRESH_SECONDS = 5
MIN_REFRESH_SECONDS = 1
MAX_REFRESH_SECONDS = 300
RECENT_SHOWN = 50
P95 = 0.95
COUNTER_NAMES = ("requests", "failed_attempts", "tool_calls_parsed", "tool_calls_repaired", "tool_calls_rejected")
STATUS_FILTERS: dict[str, Callable[[dict], bool]] = {
    "all": lambda entry: True,
    "errors": lambda entry: bool(entry.get("error")),
    "2xx": lambda entry: 200 <= (entry.get("status") or 0) < 300,
    "4xx": lambda entry: 400 <= (entry.get("status") or 0) < 500,
    "5xx": lambda entry: (entry.get("status") or 0) >= 500,
}


def prefers_html(accept: MIMEAccept) -> bool:
    """True when the client ranks text/html above JSON (browsers do; curl and SDKs do not)."""
    if not accept["text/html"]:
        return False  # `*/*` alone means "anything", and anything is JSON here
    return accept.best_match(["application/json", "text/html"]) == "text/html"


def refresh_seconds(requested: str | None) -> int:
    """The page's polling period: `?refresh=N` within sane bounds, else the default."""
    if requested is None or not requested.isdigit():
        return DEFAULT_REFRESH_SECONDS
    return max(MIN_REFRESH_SECONDS, min(MAX_REFRESH_SECONDS, int(requested)))


def utc_text(epoch: float | None, *, zone: bool = True) -> str:
    """"2025-06-01 12:00:05 UTC" (or without the zone, where a heading names it)."""
    if not epoch:
        return "-"
    text = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text} UTC" if zone else text


@dataclass
class ProviderView:
    """One provider's card."""

    name: str
    type: str
    host: str | None
    state: str
    state_text: str
    circuit: str
    in_flight: int
    latency_text: str
    probe_text: str
    probe_ok: bool | None
    last_error: str | None
    last_error_at: str
    totals: dict[str, int]
    series: dict[str, list]
    requests_chart: str = field(repr=False, default="")
    latency_chart: str = field(repr=False, default="")


@dataclass
class StatusView:
    """Everything the page shows, built once per request."""

    status: str
    generated_at: float
    generated_at_text: str
    monitor_text: str
    totals_scope: str
    providers: list[ProviderView]
    service_series: dict[str, list]
    recent: list[dict]
    status_filter: str
    filters: tuple[str, ...] = tuple(STATUS_FILTERS)
    service_requests_chart: str = field(repr=False, default="")
    service_latency_chart: str = field(repr=False, default="")

    def as_json(self) -> dict:
        """The view without its drawings, for `/status.json`."""
        data = asdict(self)
        for name in ("service_requests_chart", "service_latency_chart", "filters"):
            data.pop(name)
        for provider in data["providers"]:
            provider.pop("requests_chart")
            provider.pop("latency_chart")
        return {"service": "anthropic-loadbalancer", **data}


def build_view(report: dict, monitor: HealthMonitor, metrics: Metrics, timeline: Timeline, *,
               status_filter: str | None = None, now: float | None = None) -> StatusView:
    """The page's view from the `/health` report, the counters and every worker's timeline.

    :param report: the `/health` report (`health.health_report`).
    """
    now = time.time() if now is None else now
    minutes, recent = timeline.merged()
    first_minute = int(now // SECONDS_PER_MINUTE) - MINUTES + 1
    totals = metrics.provider_totals()
    chosen = status_filter if status_filter in STATUS_FILTERS else "all"
    shown = [_recent_row(entry) for entry in recent if STATUS_FILTERS[chosen](entry)][:RECENT_SHOWN]
    service_slots = _slots(minutes.get(SERVICE, {}), first_minute)
    return StatusView(
        status=report["status"], generated_at=now, generated_at_text=utc_text(now),
        monitor_text=_monitor_text(monitor.describe()),
        totals_scope="all workers" if multiprocess_dir() else "this process",
        providers=[_provider_view(entry, totals.get(entry["name"], {}),
                                  _slots(minutes.get(entry["name"], {}), first_minute))
                   for entry in report["providers"]],
        service_series=_series(service_slots), recent=shown, status_filter=chosen,
        service_requests_chart=bar_chart("requests per minute, last hour", service_slots, "requests"),
        service_latency_chart=line_chart("p95 time to first token per minute, last hour", service_slots),
    )


def _slots(minutes: dict[int, MinuteCounts], first_minute: int) -> list[Slot]:
    """One slot per minute of the last hour, oldest first."""
    slots = []
    for minute in range(first_minute, first_minute + MINUTES):
        counts = minutes.get(minute, MinuteCounts())
        label = datetime.fromtimestamp(minute * SECONDS_PER_MINUTE, tz=timezone.utc).strftime("%H:%M UTC")
        slots.append(Slot(label, counts.requests, counts.errors, counts.percentile(P95)))
    return slots


def _series(slots: list[Slot]) -> dict[str, list]:
    return {"requests": [slot.total for slot in slots], "errors": [slot.errors for slot in slots],
            "p95_first_token_s": [slot.seconds for slot in slots]}


def _provider_view(entry: dict, counts: dict[str, float], slots: list[Slot]) -> ProviderView:
    """A provider's card from its `/health` entry, its counters and its last hour."""
    probe = entry.get("probe")
    probe_text, probe_ok = _probe_text(probe)
    latency = entry.get("latency_ms")
    return ProviderView(
        name=entry["name"], type=entry["type"], host=entry.get("host"), state=entry["state"],
        state_text=_state_text(entry), circuit=entry["circuit"].replace("_", "-"),
        in_flight=entry["in_flight"], latency_text="-" if latency is None else f"{latency:.0f} ms",
        probe_text=probe_text, probe_ok=probe_ok,
        last_error=entry.get("disabled_reason") or entry.get("last_error"),
        last_error_at=utc_text(entry.get("last_error_at")),
        totals={name: int(counts.get(name, 0)) for name in COUNTER_NAMES},
        series=_series(slots),
        requests_chart=bar_chart(f"{entry['name']}: attempts per minute, last hour", slots, "attempts"),
        latency_chart=line_chart(f"{entry['name']}: p95 time to first token, last hour", slots),
    )


def _state_text(entry: dict) -> str:
    """"healthy", "cooling down, 12 s left", "unhealthy" or "disabled"."""
    if entry["state"] == "cooling_down":
        return f"cooling down, {max(1, round(entry['cooldown_remaining_s']))} s left"
    return entry["state"].replace("_", " ")


def _probe_text(probe: dict | None) -> tuple[str, bool | None]:
    """What the last health probe found, and whether that counts as usable (2xx, key accepted)."""
    if not probe:
        return "not probed yet", None
    usable = probe["reachable"] and probe.get("auth_ok") is True and not probe.get("error")
    if usable:
        verdict = "ok"
    elif not probe["reachable"]:
        verdict = f"unreachable ({probe.get('error') or 'no answer'})"
    else:
        verdict = probe.get("error") or "key refused"
    latency = probe.get("latency_ms")
    parts = [verdict] + ([f"{latency:.0f} ms"] if latency is not None else []) + [utc_text(probe.get("checked_at"))]
    return " · ".join(parts), usable


def _monitor_text(monitor: dict) -> str:
    if not monitor["enabled"]:
        return "background health probes are off (health.interval is 0)"
    return (f"health probes every {monitor['interval_s']:g} s, last at "
            f"{utc_text(monitor.get('last_checked_at'))}")


def _recent_row(entry: dict) -> dict:
    """One row of the request table, formatted."""
    tried = entry.get("tried") or []
    return {
        **entry,
        "time_text": utc_text(entry.get("time"), zone=False),
        "who": entry.get("client") or entry.get("client_addr") or "-",
        "tried_text": ", ".join(f"{item['provider']} {item['outcome']} {item['ms']} ms" for item in tried
                                if isinstance(item, dict)) or "-",
        "latency_text": format_seconds((entry.get("latency_ms") or 0) / 1000),
        "first_token_text": format_seconds(None if entry.get("first_token_ms") is None
                                           else entry["first_token_ms"] / 1000),
        "tokens_text": f"{entry.get('input_tokens') or 0} in · {entry.get('output_tokens') or 0} out",
    }
