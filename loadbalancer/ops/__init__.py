"""Operations: metrics, the shared health monitor, the status page, client keys and rate
limits, the config watcher, logging.

May import: routing (to read the balancer), providers' records and the primitives; nothing in
the request path imports ops except `client_access` and `rate_limit`, which the routes call.
"""
