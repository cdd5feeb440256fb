"""The floor under the load balancer's figures: the same stack forwarding a body, and nothing else.

Flask behind gunicorn with the load balancer's gunicorn.conf.py (its worker class and body
reader) and a pooled `requests` adapter to the upstream: read the body, POST it, return the
answer. No routing, validation, failover, logging, metrics or secret scrubbing. What the load
balancer costs above this is its own work; what this costs above nginx is the stack the
project is built on.

    FLOOR_UPSTREAM=http://127.0.0.1:8080/anthropic/v1/messages \\
    gunicorn -c gunicorn.conf.py --pythonpath .,bench 'floor_app:create_app()'

(`bench/run.py` starts it so, after the agent-sized rows: the "F" rows of the table.)
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

UPSTREAM_TIMEOUT = (5, 60)  # connect, read (seconds)


def create_app() -> Flask:
    """The forwarding-only app; FLOOR_UPSTREAM names the URL every body goes to."""
    upstream = os.environ["FLOOR_UPSTREAM"]
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=64, max_retries=0)
    app = Flask(__name__)

    @app.post("/v1/messages")
    def forward() -> Response:
        body = request.environ["wsgi.input"].read(request.content_length or 0)
        outgoing = requests.PreparedRequest()
        outgoing.prepare(method="POST", url=upstream, data=body,
                         headers={"content-type": "application/json", "anthropic-version": "2023-06-01",
                                  "x-api-key": "bench-key"})
        answer = adapter.send(outgoing, stream=True, timeout=UPSTREAM_TIMEOUT)
        try:
            data = answer.raw.read()
        finally:
            answer.close()
        return Response(data, status=answer.status_code, content_type=answer.headers.get("content-type"))

    return app
