"""The HTTP endpoints. Views stay thin: validate, authenticate, delegate, answer.

Every answer, errors included, is JSON (or an SSE stream) that carries `x-request-id` and,
when a provider answered, `x-lb-provider`.
"""

from __future__ import annotations

import logging
import os

import orjson
from flask import Blueprint, Response, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException

import health
from loadbalancer.client_request import estimate_input_tokens, header_lines_size, parse_messages_request
from loadbalancer.errors import (InvalidRequest, LoadBalancerError, MethodNotAllowed, NoProviderForModel, NotFound,
                                 RequestTooLarge)
from loadbalancer.frontdoors.chat_completions import forward_chat_completion, openai_error_response_body
from loadbalancer.frontdoors.responses import forward_response, responses_error_response_body
from loadbalancer.ops import client_access, model_catalog, status_page
from loadbalancer.ops.metrics import METRICS_CONTENT_TYPE
from loadbalancer.request_record import USER_AGENT_LIMIT, RequestRecord, new_request_id, request_id_for
from loadbalancer.routing.failover import ProxyResult, forward_to_provider

log = logging.getLogger("loadbalancer")
bp = Blueprint("loadbalancer", __name__)

ENDPOINTS = [
    "POST /v1/messages (also POST / and POST /v1): the Anthropic Messages API",
    "POST /v1/messages/count_tokens",
    "POST /v1/chat/completions (also POST /chat/completions): the OpenAI Chat Completions API",
    "POST /v1/responses (also POST /responses): the OpenAI Responses API, stateless (Codex CLI)",
    "GET /v1/models (and GET /v1/models/{id})",
    "GET /health (503 when no provider is usable; ?probe=1 probes live, with a key when keys are set)",
    "GET /healthz (liveness), GET /readyz (readiness: a provider is usable)",
    "GET /metrics",
    "GET /status.json (and GET / from a browser: the status page)",
]
_JSON_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


def json_response(status: int, payload: dict | list | bytes, headers: dict | None = None) -> Response:
    """A JSON answer with the request's tracing headers."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = Response(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def runtime():
    """The configuration this request uses from start to end (taken once, then kept on g)."""
    found = g.get("runtime")  # one lookup through the proxy (~1 µs each; asked ~8 times a request)
    if found is None:
        found = g.runtime = current_app.extensions["loadbalancer"].holder.current
    return found


def _record() -> RequestRecord:
    record = g.get("record")
    if record is None:
        client_request = request._get_current_object()  # the request itself: one proxy lookup, not five
        record = g.record = RequestRecord(
            request_id=g.request_id, method=client_request.method, path=client_request.path,
            client_addr=client_request.remote_addr,
            user_agent=client_request.user_agent.string[:USER_AGENT_LIMIT] or None,
            on_finish=current_app.extensions["loadbalancer"].observe_request)
    return record


@bp.before_app_request
def _begin_request() -> None:
    g.request_id = request_id_for(request.headers.get("x-request-id"))
    _check_header_size()


def _check_header_size() -> None:
    """Refuse oversized headers with a JSON 413 (gunicorn's own limits sit above this one)."""
    limit = runtime().config.limits.max_header_bytes
    size = header_lines_size(request.environ)
    if size > limit:
        raise RequestTooLarge(f"request headers are {size} bytes; the limit is {limit} bytes")


@bp.after_app_request
def _tracing_headers(response: Response) -> Response:
    response.headers["x-request-id"] = g.get("request_id") or new_request_id()
    provider = g.get("provider")
    if provider:
        response.headers["x-lb-provider"] = provider
    record = g.get("record")
    if record is not None:
        record.status = response.status_code
        if not response.is_streamed:
            record.finish()
    return response


@bp.after_app_request
def _scrub_secrets(response: Response) -> Response:
    """The one place answers lose every configured secret, whatever a provider wrote into them.

    A provider's 2xx answer is its content and is passed on unread; errors, streams' error
    events, /health, /metrics and the status data are scrubbed (see loadbalancer/secrets.py).
    """
    scrubber = runtime().scrubber
    if response.is_streamed:
        response.response = scrubber.stream(response.response)
    elif not (g.get("provider") and response.status_code < 300):
        body = response.get_data()
        clean = scrubber.body(body, response.content_type)
        if clean is not body:
            response.set_data(clean)
    return response


def _authenticate(record: RequestRecord | None = None) -> str | None:
    """The calling client's name (recorded before its rate limit is checked)."""
    client = client_access.identify_client(runtime().config.auth, request.headers)
    if record is not None and client is not None:
        record.client = client.name
    client_access.check_rate_limit(client, current_app.extensions["loadbalancer"].rate_limiter)
    return None if client is None else client.name


def _read_body() -> bytes:
    """The raw body, with the configured size limit and a content-type check."""
    limits = runtime().config.limits
    client_request = request._get_current_object()  # the request itself: one proxy lookup, not seven
    length = client_request.content_length
    if length is not None and length > limits.max_body_bytes:
        raise RequestTooLarge(f"request body is {length} bytes; the limit is {limits.max_body_bytes} bytes")
    mimetype = client_request.mimetype
    if mimetype and mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise LoadBalancerError(f"content-type {mimetype!r} is not supported; send application/json",
                                status=415)
    if length is not None:
        # Exactly the announced length, straight from the WSGI input: werkzeug's readall grows
        # a bytearray 64 KiB at a time and copies it into bytes once more (a fifth of the CPU
        # of a 1 MB request).
        body = client_request.environ["wsgi.input"].read(length)
        if len(body) < length:
            raise InvalidRequest(f"request body ended after {len(body)} of its {length} bytes")
        return body
    # A chunked body announces no length: read at most one byte past the limit of the
    # running configuration (it may have been reloaded) to tell "too large" apart.
    client_request.max_content_length = limits.max_body_bytes + 1
    body = client_request.get_data(cache=False)
    if len(body) > limits.max_body_bytes:
        raise RequestTooLarge(f"request body is larger than the limit of {limits.max_body_bytes} bytes")
    return body


def _send(result: ProxyResult, record: RequestRecord) -> Response:
    g.provider = result.provider
    record.status = result.status
    if isinstance(result.body, bytes):
        return Response(result.body, status=result.status, headers=result.headers)
    response = Response(result.body, status=result.status, headers=result.headers)
    response.headers["x-accel-buffering"] = "no"  # nginx in front must not buffer the stream
    return response


@bp.post("/")
@bp.post("/v1")
@bp.post("/v1/")
@bp.post("/v1/messages")
def messages() -> Response:
    """The Anthropic Messages API (stream or not, decided by the body)."""
    record = _record()
    _authenticate(record)
    current = runtime()
    parsed = parse_messages_request(_read_body(), current.config.limits, builds_body=current.builds_body_for)
    record.model, record.stream = parsed.model, parsed.stream
    return _send(forward_to_provider(current, parsed, request.headers, record), record)


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Token counting, answered by a provider that serves the model."""
    record = _record()
    _authenticate(record)
    parsed = parse_messages_request(_read_body(), runtime().config.limits, count_tokens=True,
                                    builds_body=runtime().builds_body_for)
    record.model = parsed.model
    serving = runtime().balancer.serving(parsed.model)
    if serving and not any(runtime().providers[provider.name].counts_tokens for provider in serving):
        # OpenAI-compatible servers have no counting endpoint; an estimate beats an error
        # for clients (Claude Code) that only use the count to plan context.
        g.provider = serving[0].name
        return json_response(200, {"input_tokens": estimate_input_tokens(parsed.body)},
                             {"x-lb-estimated": "true"})
    result = forward_to_provider(runtime(), parsed, request.headers, record, count_tokens=True)
    return _send(result, record)


@bp.post("/v1/chat/completions")
@bp.post("/chat/completions")
def chat_completions() -> Response:
    """The OpenAI Chat Completions API, served from the same providers."""
    g.dialect = "openai"
    record = _record()
    _authenticate(record)
    result = forward_chat_completion(runtime(), _read_body(), request.headers, record)
    return _send(result, record)


@bp.post("/v1/responses")
@bp.post("/responses")
def responses() -> Response:
    """The OpenAI Responses API (Codex CLI), served from the same providers."""
    g.dialect = "responses"
    record = _record()
    _authenticate(record)
    return _send(forward_response(runtime(), _read_body(), request.headers, record), record)


@bp.get("/v1/models")
@bp.get("/models")
def models() -> Response:
    """Every model some provider serves, in Anthropic's paged list (OpenAI's list for OpenAI clients)."""
    _authenticate()
    listed = _listed_models()
    if _wants_openai_dialect():
        return json_response(200, {"object": "list", "data": [model_catalog.openai_model(m) for m in listed]})
    return json_response(200, model_catalog.anthropic_page(listed, request.args))


@bp.get("/v1/models/<path:model_id>")
@bp.get("/models/<path:model_id>")
def model_view(model_id: str) -> Response:
    """One model and the providers that serve it; 404 when none does."""
    _authenticate()
    openai_client = _wants_openai_dialect()
    found = model_catalog.served_model(runtime().config, _listed_models(), model_id)
    if found is None:
        raise NoProviderForModel(f"no provider serves model {model_id!r}; GET /v1/models lists the models")
    return json_response(200, model_catalog.openai_model(found) if openai_client
                         else model_catalog.anthropic_model(found))


def _listed_models() -> list[model_catalog.ListedModel]:
    """The models of the current configuration, with what the providers reported."""
    state = current_app.extensions["loadbalancer"]
    reported = state.model_catalog.reported_models(runtime(), state.monitor.results())
    return model_catalog.list_models(runtime().config, reported)


def _wants_openai_dialect() -> bool:
    """OpenAI clients send a Bearer token and no anthropic-version header (their errors too)."""
    wanted = ("anthropic-version" not in request.headers
              and request.headers.get("authorization", "").lower().startswith("bearer "))
    if wanted:
        g.dialect = "openai"
    return wanted


@bp.get("/health")
def health_view() -> Response:
    """Provider states (and live probes with ?probe=1); 503 when none is usable; never a secret."""
    monitor = current_app.extensions["loadbalancer"].monitor
    if request.args.get("probe") in ("1", "true", "yes"):
        _authorize_operations()  # probes cost the provider's credit (paid probes a completion)
        probes = monitor.probe_now()
    else:
        probes = monitor.results()
    report = health.health_report(runtime(), probes=probes)
    report["monitor"] = monitor.describe()
    return json_response(503 if report["status"] == "down" else 200, report)


@bp.get("/healthz")
def liveness() -> Response:
    """Liveness: the process answers (whatever the providers do)."""
    return json_response(200, {"status": "alive"})


@bp.get("/readyz")
def readiness() -> Response:
    """Readiness: at least one provider is usable; 503 otherwise."""
    report = health.health_report(runtime(), probes=current_app.extensions["loadbalancer"].monitor.results())
    usable = [entry["name"] for entry in report["providers"] if entry["state"] == "healthy"]
    return json_response(200 if usable else 503,
                         {"status": "ready" if usable else "not_ready", "usable_providers": usable})


def _authorize_operations() -> None:
    """Operations endpoints take a client or operations key whenever keys are configured."""
    client_access.authorize_operations(runtime().config.auth, request.headers)


@bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus metrics, merged over every worker."""
    _authorize_operations()
    state = current_app.extensions["loadbalancer"]
    state.metrics.set_provider_states(runtime().balancer.snapshot())
    state.metrics.set_shared_state(runtime().store.status())
    return Response(state.metrics.exposition(), status=200, content_type=METRICS_CONTENT_TYPE)


@bp.get("/status.json")
def status_json() -> Response:
    """What the status page shows: provider states, probes, charts' data, recent requests."""
    _authorize_operations()
    return json_response(200, _status_view().as_json())


def _status_view() -> status_page.StatusView:
    # Scrubbed before drawing: in HTML a secret would be written in a form (&amp;...) that the
    # answer's own scrub does not look for.
    state = current_app.extensions["loadbalancer"]
    report = runtime().scrubber.json_value(health.health_report(runtime(), probes=state.monitor.results()))
    return status_page.build_view(report, state.monitor, state.metrics, state.timeline,
                                  status_filter=request.args.get("status"))


@bp.get("/")
def index() -> Response:
    """The status page for browsers; a short JSON description of the service for curl users."""
    if status_page.prefers_html(request.accept_mimetypes):
        _authorize_operations()
        refresh = status_page.refresh_seconds(request.args.get("refresh"))
        return Response(render_template("status.html", view=_status_view(), refresh=refresh),
                        content_type="text/html; charset=utf-8",
                        headers={"vary": "Accept", "cache-control": "no-store"})
    return json_response(200, {"service": "anthropic-loadbalancer", "endpoints": ENDPOINTS,
                               "providers": [p.name for p in runtime().config.providers],
                               "pid": os.getpid()}, {"vary": "Accept"})


@bp.app_errorhandler(LoadBalancerError)
def _load_balancer_error(err: LoadBalancerError) -> Response:
    record = g.get("record")
    if record is not None:
        record.error = err.message
    if g.get("dialect") == "openai":
        return json_response(err.status, openai_error_response_body(err), err.headers)
    if g.get("dialect") == "responses":
        return json_response(err.status, responses_error_response_body(err), err.headers)
    return json_response(err.status, err.body(), err.headers)


@bp.app_errorhandler(HTTPException)
def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    if status == 404:
        return _load_balancer_error(NotFound(
            f"no endpoint at {request.method} {request.path}; endpoints: " + "; ".join(ENDPOINTS)))
    if status == 405:
        return _load_balancer_error(MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}; endpoints: " + "; ".join(ENDPOINTS)))
    if status == 413:
        return _load_balancer_error(RequestTooLarge("request body too large"))
    return _load_balancer_error(LoadBalancerError(err.description or err.name, status=status))


@bp.app_errorhandler(Exception)
def _unexpected_error(err: Exception) -> Response:
    log.exception("unexpected error in request %s", g.get("request_id"))
    return _load_balancer_error(LoadBalancerError("internal error in the load balancer; "
                                                  f"see its log for request {g.get('request_id')}"))
