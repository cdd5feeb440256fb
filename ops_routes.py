"""Operations endpoints and their wiring: `/metrics`, `/status.json`, the header-size cap.

`init_app(app)` gives the app its metrics, rate limiter and health monitor (all kept on the
`LoadBalancerState`), hooks metrics into every finished request and registers this blueprint.
"""

from __future__ import annotations

import orjson
from flask import Blueprint, Flask, Response, current_app, request

import health
from loadbalancer.ops import status_page
from loadbalancer.errors import RequestTooLarge
from loadbalancer.ops.health_monitor import HealthMonitor, state_directory
from loadbalancer.ops.metrics import METRICS_CONTENT_TYPE, Metrics
from loadbalancer.ops.rate_limit import RateLimiter
from loadbalancer.request_record import RequestRecord

bp = Blueprint("operations", __name__)

HEADER_LINE_OVERHEAD = 4  # ": " and CRLF per header line


def init_app(app: Flask, *, start_monitor: bool = True) -> None:
    """Attach metrics, rate limiting and the health monitor to `app`; register the endpoints."""
    state = app.extensions["loadbalancer"]
    directory = state_directory()
    state.metrics = Metrics()
    state.rate_limiter = RateLimiter(directory / "ratelimit")
    state.monitor = HealthMonitor(state.holder, directory, probe=health.probe_all)

    def record_metrics(record: RequestRecord) -> None:
        """Count the request; models no provider serves share one label."""
        balancer = state.holder.current.balancer
        state.metrics.observe_request(record, lambda model: bool(balancer.serving(model)))

    state.request_observers.append(record_metrics)
    if start_monitor:
        state.monitor.start()
    app.register_blueprint(bp)


def _state():
    return current_app.extensions["loadbalancer"]


@bp.before_app_request
def _check_header_size() -> None:
    """Refuse oversized headers with a JSON 413 (gunicorn's own limits sit above this one)."""
    limit = _state().holder.current.config.limits.max_header_bytes
    size = sum(len(name) + len(value) + HEADER_LINE_OVERHEAD for name, value in request.headers.items())
    if size > limit:
        raise RequestTooLarge(f"request headers are {size} bytes; the limit is {limit} bytes")


@bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus metrics, merged over every worker."""
    state = _state()
    state.metrics.set_provider_states(state.holder.current.balancer.snapshot())
    return Response(state.metrics.exposition(), status=200, content_type=METRICS_CONTENT_TYPE)


@bp.get("/status.json")
def status_json() -> Response:
    """What the status page shows: provider states, probes, request and tool-call counts."""
    state = _state()
    report = health.health_report(state.holder.current, probes=state.monitor.results())
    summary = status_page.status_summary(report, state.monitor, state.metrics)
    return Response(orjson.dumps(summary), status=200, content_type="application/json")
