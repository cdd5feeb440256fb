"""Prometheus metrics: what every finished request and every provider state adds up to.

Under gunicorn every worker is its own process, so prometheus-client runs in multiprocess
mode: `gunicorn.conf.py` points `PROMETHEUS_MULTIPROC_DIR` at an empty directory before any
process imports prometheus_client, each worker writes its samples there, and `/metrics`
merges them (a dead worker's files are folded into aggregates: `metrics_files.py`). Without that variable (unit tests, `flask run`) metrics are per process.
Labels carry provider, model and client *names*; never a key.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Callable

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest)

from loadbalancer.ops.metrics_files import LockedMultiProcessCollector
from loadbalancer.routing.balancer import ProviderSnapshot
from loadbalancer.routing.state import StoreStatus
from loadbalancer.request_record import RequestRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NO_LABEL = "-"
OTHER_MODEL = "other"  # models no provider serves: client-chosen strings must not explode cardinality
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
PROVIDER_STATES = ("healthy", "unhealthy", "cooling_down", "disabled")
CIRCUIT_STATES = ("closed", "open", "half_open")
TOOL_CALL_RESULTS = ("parsed", "repaired", "rejected")
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
# Labelled series a request's counting finds again by their values; the labels are names from
# the configuration and fixed words, so this is never reached but by a misconfiguration.
LABELLED_KEPT = 4096


def multiprocess_dir() -> str | None:
    """The shared samples directory when running under gunicorn's multiprocess setup."""
    directory = os.environ.get(MULTIPROC_ENV)
    return directory if directory and os.path.isdir(directory) else None


def request_outcome(record: RequestRecord) -> str:
    """One word for how a request ended, for the `outcome` label."""
    if record.stream_error:
        return "stream_error"
    if record.status == 429:
        return "rate_limited"
    if 200 <= record.status < 400:
        return "success"
    if record.status < 500 and record.provider is not None:
        return "provider_rejected"  # the provider answered a client error, passed through
    if record.status < 500:
        return "client_error"
    return "failed"


class Metrics:
    """The load balancer's metric families, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._labelled_series: dict[tuple, object] = {}
        self._define_traffic(self.registry)
        self._define_provider_gauges(self.registry)
        self._define_service_gauges(self.registry)

    def _define_traffic(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("loadbalancer_requests", "Finished client requests.",
                                ["provider", "model", "status", "outcome", "client"], registry=registry)
        self.attempts = Counter("loadbalancer_attempts", "Tries at a provider, by how they ended.",
                                ["provider", "outcome"], registry=registry)
        self.attempt_failures = Counter(
            "loadbalancer_attempt_failures",
            "Failed tries at a provider, by reason (the request moved on to the next one, or gave up).",
            ["provider", "reason"], registry=registry)
        self.latency = Histogram("loadbalancer_request_duration_seconds",
                                 "Whole-request latency (to the last byte of a stream).",
                                 ["provider"], buckets=LATENCY_BUCKETS, registry=registry)
        self.first_token = Histogram(
            "loadbalancer_time_to_first_token_seconds",
            "From the request's arrival to the first content the client got: a stream's first "
            "content event, or the whole answer of a non-stream request.",
            ["provider", "stream"], buckets=FIRST_TOKEN_BUCKETS, registry=registry)
        self.tokens = Counter("loadbalancer_tokens", "Tokens reported by providers (cache reads and "
                              "writes apart from the other input tokens, as Anthropic counts them).",
                              ["provider", "model", "direction"], registry=registry)
        self.tool_calls = Counter("loadbalancer_text_tool_calls", "Text tool calls seen in answers.",
                                  ["provider", "result"], registry=registry)

    def _define_provider_gauges(self, registry: CollectorRegistry) -> None:
        latest = {"registry": registry, "multiprocess_mode": "livemostrecent"}
        self.provider_up = Gauge("loadbalancer_provider_up", "1 when the provider takes traffic.",
                                 ["provider"], **latest)
        self.shared_state_up = Gauge("loadbalancer_shared_state_up",
                                     "1 when the shared provider state (state directory or Redis) is "
                                     "reachable, 0 while this instance serves on local state.",
                                     ["backend"], **latest)
        self.provider_state = Gauge("loadbalancer_provider_state",
                                    "1 for the provider's current state, 0 for the others.",
                                    ["provider", "state"], **latest)
        self.provider_circuit = Gauge("loadbalancer_provider_circuit_state",
                                      "1 for the provider's circuit breaker state, 0 for the others.",
                                      ["provider", "state"], **latest)
        self.provider_cooldown = Gauge("loadbalancer_provider_cooldown_remaining_seconds",
                                       "Seconds until the provider takes traffic again (0: it does).",
                                       ["provider"], registry=registry, multiprocess_mode="livemax")
        self.provider_in_flight = Gauge("loadbalancer_provider_in_flight",
                                        "Requests waiting for the provider's answer (up to its first "
                                        "content), summed over every worker.",
                                        ["provider"], registry=registry, multiprocess_mode="livesum")

    def _define_service_gauges(self, registry: CollectorRegistry) -> None:
        self.reload_success = Gauge("loadbalancer_config_last_reload_success",
                                    "1 when the last load of providers.json succeeded, 0 when the "
                                    "file was rejected (the running configuration is older).",
                                    registry=registry, multiprocess_mode="livemin")
        self.reload_timestamp = Gauge("loadbalancer_config_last_reload_timestamp_seconds",
                                      "When the running configuration was loaded (Unix time).",
                                      registry=registry, multiprocess_mode="livemax")
        self.build_info = Gauge("loadbalancer_build_info", "Always 1: the labels name the running build.",
                                ["revision", "python"], registry=registry, multiprocess_mode="livemax")

    def observe_request(self, record: RequestRecord, model_is_known: Callable[[str], bool]) -> None:
        """Count one finished request (called through `LoadBalancerState.request_observers`)."""
        provider = record.provider or NO_LABEL
        model = record.model if record.model and model_is_known(record.model) else (
            OTHER_MODEL if record.model else NO_LABEL)
        series = self._series
        series(self.requests, provider, model, str(record.status), request_outcome(record),
               record.client or NO_LABEL).inc()
        for attempt in record.attempts:
            series(self.attempts, attempt.provider, attempt.outcome).inc()
            if attempt.failed:
                series(self.attempt_failures, attempt.provider, attempt.outcome).inc()
        if record.attempts:
            series(self.latency, provider).observe(record.latency_seconds or record.elapsed_seconds)
        if record.first_token_seconds is not None:
            series(self.first_token, provider, "true" if record.stream else "false").observe(
                record.first_token_seconds)
        for direction, count in (("input", record.input_tokens), ("output", record.output_tokens),
                                 ("cache_read", record.cache_read_tokens),
                                 ("cache_write", record.cache_write_tokens)):
            if count:
                series(self.tokens, provider, model, direction).inc(count)
        stats = record.tool_call_stats
        for result in TOOL_CALL_RESULTS:
            count = getattr(stats, result)
            if count:
                series(self.tool_calls, provider, result).inc(count)

    def _series(self, metric, *label_values: str):
        """`metric.labels(*label_values)`, the same series, found again without its ~2 µs of checks.

        prometheus-client checks and converts the values and takes a lock on every `labels()`
        call; a request makes five or six of them.
        """
        key = (metric, label_values)
        found = self._labelled_series.get(key)
        if found is None:
            if len(self._labelled_series) >= LABELLED_KEPT:
                self._labelled_series.clear()
            found = self._labelled_series[key] = metric.labels(*label_values)
        return found

    def set_provider_states(self, snapshots: list[ProviderSnapshot]) -> None:
        """Publish this worker's view of each provider as gauges."""
        for snapshot in snapshots:
            self.provider_up.labels(snapshot.name).set(1 if snapshot.state == "healthy" else 0)
            for state in PROVIDER_STATES:
                self.provider_state.labels(snapshot.name, state).set(1 if snapshot.state == state else 0)
            for state in CIRCUIT_STATES:
                self.provider_circuit.labels(snapshot.name, state).set(1 if snapshot.circuit == state else 0)
            self.provider_cooldown.labels(snapshot.name).set(round(snapshot.cooldown_remaining, 3))
            self.provider_in_flight.labels(snapshot.name).set(snapshot.in_flight)

    def config_loaded(self, success: bool, when: float) -> None:
        """Note a load of providers.json: at start, and on every reload attempt."""
        self.reload_success.set(1 if success else 0)
        if success:
            self.reload_timestamp.set(when)

    def set_build(self, revision: str, python: str) -> None:
        """Name the running build in `loadbalancer_build_info`."""
        self.build_info.labels(revision, python).set(1)

    def set_shared_state(self, status: StoreStatus) -> None:
        """Publish whether the shared state backend is reachable."""
        self.shared_state_up.labels(status.backend).set(0 if status.degraded else 1)

    def collecting_registry(self) -> CollectorRegistry:
        """The registry to read: every worker's samples merged, or this process's own."""
        directory = multiprocess_dir()
        if directory is None:
            return self.registry
        merged = CollectorRegistry()
        LockedMultiProcessCollector(merged, path=directory)
        return merged

    def exposition(self) -> bytes:
        """The Prometheus text format for `/metrics`."""
        return generate_latest(self.collecting_registry())

    def provider_totals(self) -> dict[str, dict[str, float]]:
        """Per provider since start: requests answered, failed attempts, text tool calls; all workers."""
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for family in self.collecting_registry().collect():
            for sample in family.samples:
                provider = sample.labels.get("provider")
                if provider is None or provider == NO_LABEL:
                    continue
                if sample.name == "loadbalancer_requests_total":
                    totals[provider]["requests"] += sample.value
                elif sample.name == "loadbalancer_attempt_failures_total":
                    totals[provider]["failed_attempts"] += sample.value
                elif sample.name == "loadbalancer_text_tool_calls_total":
                    totals[provider]["tool_calls_" + sample.labels["result"]] += sample.value
        return {provider: dict(values) for provider, values in totals.items()}
