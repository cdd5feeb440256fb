"""The status page a browser gets at `GET /`, and the JSON summary it polls.

The page is one template with a little inline JavaScript (no build step); it fetches
`/status.json` every few seconds. curl and API clients keep getting JSON from `GET /`:
only a client that prefers `text/html` over JSON gets the page.
"""

from __future__ import annotations

import os
import time

from werkzeug.datastructures import MIMEAccept

from loadbalancer.ops.health_monitor import HealthMonitor
from loadbalancer.ops.metrics import Metrics, multiprocess_dir

DEFAULT_REFRESH_SECONDS = 5
MIN_REFRESH_SECONDS = 1
MAX_REFRESH_SECONDS = 300
COUNTER_NAMES = ("requests", "failovers", "tool_calls_parsed", "tool_calls_repaired", "tool_calls_rejected")


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


def status_summary(report: dict, monitor: HealthMonitor, metrics: Metrics) -> dict:
    """Provider states, last probes and per-provider counters for the page.

    :param report: the `/health` report (`health.health_report`) to extend.
    """
    totals = metrics.provider_totals()
    for entry in report["providers"]:
        counts = totals.get(entry["name"], {})
        entry["totals"] = {name: int(counts.get(name, 0)) for name in COUNTER_NAMES}
    return {
        "service": "anthropic-loadbalancer",
        "generated_at": time.time(),
        "status": report["status"],
        "states_from_worker": os.getpid(),  # states are shared; requests/failures are this worker's
        "totals_scope": "all workers" if multiprocess_dir() else "this process",
        "monitor": monitor.describe(),
        "providers": report["providers"],
    }
