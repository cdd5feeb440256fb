"""anthropic-loadbalancer: everything below the four top-level modules.

The top level (`app.py`, `routes.py`, `config.py`, `health.py`) builds the app, serves the
endpoints, reads `providers.json` and probes backends; it calls into this package, never the
other way round. Inside, each layer imports only the layers below it:

    frontdoors/    other client APIs (Chat Completions) translated onto forward_to_provider
    routing/       the failover loop (forward_to_provider), the balancer and its state, request needs
    providers/     one module per provider type behind one interface; the HTTP client; stream pipelines
    translation/   Anthropic <-> OpenAI dialects, pure and named by direction
    toolcalls/     text tool calls: detectors by model family, argument repair, the streaming parser
    ops/           metrics, the health monitor, the status page, client keys and rate limits, logging
    primitives     errors.py, sse.py, settings/ (the validated configuration), client_request.py,
                   request_record.py, runtime.py

`ops/` sits beside `routing/`: it reads the balancer and the request records but nothing in
the request path imports it, except `client_access` and `rate_limit`, which the routes call.
"""
