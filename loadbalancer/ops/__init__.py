"""Operations: metrics, the shared health monitor, the status page and the timeline behind it,
client keys and rate limits, the config watcher, logging (gunicorn's lines included).

May import: routing (to read the balancer), providers' records and the primitives; nothing in
the request path imports ops except `client_access` and `rate_limit`, which the routes call.
"""
