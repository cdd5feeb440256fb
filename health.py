"""Health of every backend: cheap probes, and the report `/health` answers with.

A probe asks a provider's models endpoint (no tokens spent) with the provider's key, and
tells apart "unreachable", "key refused" and "fine". Real traffic feeds the same states
through the balancer. Nothing here ever includes a key or a full URL with credentials.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from urllib.parse import urlsplit

from loadbalancer.errors import UpstreamError, UpstreamHTTPError
from loadbalancer.ops.health_monitor import ProbeResult
from loadbalancer.providers.base import Provider, first_concrete_model
from loadbalancer.providers.http_client import ProviderClient
from loadbalancer.runtime import Runtime

MAX_PROBE_THREADS = 8
MAX_MODELS_SHOWN = 50  # /health stays readable; /v1/models lists them all


def probe_provider(client: ProviderClient, provider: Provider, timeout: float) -> ProbeResult:
    """Ask the provider's cheap probe (the model listing, or an opt-in 1-token completion) and classify the outcome."""
    config = provider.config
    started = time.monotonic()
    paid_model = first_concrete_model(config) if config.health_paid_probe else None
    try:
        # Inside the try: building a probe may itself fail (a cloud provider's credentials).
        probe = provider.probe_request(paid_model)
        if probe.method == "GET":
            answer = client.get(probe.url, probe.headers, timeout=timeout)
        else:
            answer = client.post(probe.url, probe.body, probe.headers, stream=False, timeout=timeout)
        body = client.read_body(answer)
    except UpstreamHTTPError as err:
        # Only a 2xx is usable: a models endpoint answering 404 or 500 proves nothing about the
        # key, so auth stays unknown unless the provider refused it outright.
        latency = (time.monotonic() - started) * 1000
        auth_refused = err.status in (401, 403)
        return ProbeResult(config.name, True, False if auth_refused else None, round(latency, 1), (),
                           f"HTTP {err.status}" + (" (key refused)" if auth_refused else ""), time.time())
    except UpstreamError as err:
        return ProbeResult(config.name, False, None, None, (), err.message, time.time())
    latency = (time.monotonic() - started) * 1000
    models = (paid_model,) if paid_model is not None else provider.probe_models(body)
    return ProbeResult(config.name, True, True, round(latency, 1), models, None, time.time())


def probe_listings(runtime: Runtime, names: list[str]) -> dict[str, ProbeResult]:
    """Probe these providers' model listings now, in parallel (for `/v1/models`)."""
    timeout = runtime.config.health.timeout
    with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(names))) as pool:
        results = pool.map(lambda name: probe_provider(runtime.clients[name], runtime.providers[name], timeout), names)
        return {result.name: result for result in results}


def probe_all(runtime: Runtime) -> list[ProbeResult]:
    """Probe every enabled provider in parallel and feed the results to the balancer."""
    names = list(runtime.clients)
    if not names:
        return []
    timeout = runtime.config.health.timeout
    with ThreadPoolExecutor(max_workers=min(MAX_PROBE_THREADS, len(names))) as pool:
        results = list(pool.map(
            lambda name: probe_provider(runtime.clients[name], runtime.providers[name], timeout), names))
    for result in results:
        runtime.balancer.probe_result(result.name, result.usable, result.latency_ms, result.error)
    return results


def _probe_entry(result: ProbeResult) -> dict:
    """A probe result as /health shows it: without its name, and at most MAX_MODELS_SHOWN models."""
    entry = {key: value for key, value in asdict(result).items() if key != "name"}
    if len(result.models) > MAX_MODELS_SHOWN:
        entry["models"] = list(result.models[:MAX_MODELS_SHOWN])
        entry["models_total"] = len(result.models)
    return entry


def health_report(runtime: Runtime, *, probes: dict[str, ProbeResult] | None = None) -> dict:
    """The `/health` body: overall status ("down" when no provider is usable) and one entry per provider."""
    probes = dict(probes or {})
    snapshots = {snapshot.name: snapshot for snapshot in runtime.balancer.snapshot()}
    providers = []
    for provider in runtime.config.providers:
        snapshot = snapshots[provider.name]
        entry = {
            "name": provider.name, "type": provider.type, "host": urlsplit(provider.base_url).hostname,
            "state": snapshot.state, "circuit": snapshot.circuit,
            "last_error": snapshot.last_error, "last_error_at": snapshot.last_error_at,
            "latency_ms": None if snapshot.latency_ms is None else round(snapshot.latency_ms, 1),
            "consecutive_failures": snapshot.consecutive_failures,
            "cooldown_remaining_s": round(snapshot.cooldown_remaining, 1),
            "cooldown_reason": snapshot.cooldown_reason,
            "in_flight": snapshot.in_flight, "requests": snapshot.requests, "failures": snapshot.failures,
            "priority": provider.priority, "weight": provider.weight,
            "models": [route.pattern for route in provider.models] or ["*"],
        }
        if not provider.enabled:
            entry["disabled_reason"] = provider.disabled_reason
        if provider.name in probes:
            entry["probe"] = _probe_entry(probes[provider.name])
        providers.append(entry)
    usable = [entry for entry in providers if entry["state"] == "healthy"]
    enabled = [entry for entry in providers if entry["state"] != "disabled"]
    if usable and len(usable) == len(enabled):
        status = "ok"
    elif usable:
        status = "degraded"
    else:
        status = "down"
    return {"status": status, "config": runtime.config.source, "state": state_report(runtime),
            "providers": providers}


def state_report(runtime: Runtime) -> dict:
    """Where provider state is shared and whether it is reachable (`"status": "degraded"` when not)."""
    shared = runtime.store.status()
    return {"backend": shared.backend, "shared_with": shared.shared_with,
            "status": "degraded" if shared.degraded else "ok", "detail": shared.detail}


def probe_table(runtime: Runtime, results: list[ProbeResult]) -> tuple[list[str], bool]:
    """The `flask probe` table, and whether every enabled provider is usable (2xx, key accepted)."""
    by_name = {result.name: result for result in results}
    lines = [f"{'provider':20} {'reachable':9} {'auth':5} {'latency_ms':>10}  {'usable':6}  models / error"]
    all_usable = bool(results)
    for provider in runtime.config.providers:
        result = by_name.get(provider.name)
        if result is None:
            lines.append(f"{provider.name:20} {'-':9} {'-':5} {'-':>10}  {'-':6}  "
                         f"disabled: {provider.disabled_reason}")
            continue
        all_usable = all_usable and result.usable
        detail = result.error or ", ".join(result.models[:5]) or "-"
        auth = {True: "ok", False: "no", None: "-"}[result.auth_ok]
        latency = "-" if result.latency_ms is None else f"{result.latency_ms:.0f}"
        lines.append(f"{provider.name:20} {'yes' if result.reachable else 'no':9} {auth:5} {latency:>10}  "
                     f"{'yes' if result.usable else 'no':6}  {detail}")
    return lines, all_usable
