"""The gunicorn worker class the service runs: gunicorn's gevent worker, guarded against slow clients.

    gunicorn -k loadbalancer.serving.worker.LoadBalancerWorker ...   (gunicorn.conf.py's default)

What it adds to `gunicorn.workers.ggevent.GeventWorker`:
- every client socket is a `ClientConnection`, so headers, bodies and idle keep-alive each
  have a time limit (a client that stops sending no longer holds a connection for good);
- when all `worker_connections` are in use, a new client takes the place of a kept-alive
  connection that is idle, or gets a JSON 503 with `retry-after` at once, instead of waiting
  in the listen backlog with no answer;
- on SIGTERM (stop, or the old workers of a HUP), idle keep-alive connections are closed at
  once, so the worker exits as soon as the requests and streams in flight are done;
- gunicorn's own refusals (431, 414, 400, ...) are Anthropic-format JSON.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

from loadbalancer.errors import ClientTimeout
from loadbalancer.serving.connection import ClientConnection, ClientTimeouts
from loadbalancer.serving.raw_answers import answer_for, json_error_bytes, send_and_close

MIN_OVERFLOW_RESERVE = 16
FULL_WARNING_INTERVAL = 10.0
DISCARD_CHUNK = 65536
MAX_DISCARDED_BODY = 1024 * 1024  # an unread body larger than this is not worth reading: close instead
FULL_MESSAGE = "the load balancer has no free connection right now; retry shortly"


def overflow_reserve(connection_limit: int) -> int:
    """Connections accepted above the limit only to be answered 503 (about a tenth of it)."""
    return max(MIN_OVERFLOW_RESERVE, connection_limit // 10)


class LoadBalancerWorker(GeventWorker):
    """gunicorn's gevent worker with client time limits, a 503 when full and JSON refusals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_limit = self.cfg.worker_connections
        # gevent's pool stops accepting when it is full, which leaves new clients in the backlog
        # with no answer: a pool a little larger lets the worker accept them and say 503.
        self.worker_connections = self.connection_limit + overflow_reserve(self.connection_limit)
        self.client_timeouts = ClientTimeouts.from_environ(os.environ, float(self.cfg.keepalive))
        self._connections: set[ClientConnection] = set()
        self._refused_while_full = 0
        self._next_full_warning = 0.0

    def timeout_ctx(self) -> contextlib.AbstractContextManager:
        """No timer around the parser: every read of a `ClientConnection` carries its own."""
        return contextlib.nullcontext()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one client connection, or answer 503 when every connection is in use."""
        if len(self._connections) >= self.connection_limit and not self._reclaim_idle_connection():
            self._answer_full(client)
            return
        connection = ClientConnection(client, self.client_timeouts, lambda: self.alive)
        self._connections.add(connection)
        try:
            super().handle(listener, connection, addr)
        finally:
            self._connections.discard(connection)

    def handle_request(self, listener_name: Any, req: Any, sock: ClientConnection, addr: Any) -> None:
        """One request: the body limits apply until the answer is sent."""
        sock.start_request(req)
        try:
            super().handle_request(listener_name, req, sock, addr)
            _discard_unread_body(req)
        finally:
            sock.finish_request()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer a request gunicorn refused, or a failure outside the app, with JSON."""
        answer = answer_for(exc)
        if answer is None:
            self.log.exception("error outside the app while serving a connection")
            status, message = 500, "internal error in the load balancer's HTTP server; see its log"
        else:
            status, message = answer
            ip = addr[0] if isinstance(addr, tuple) and addr else "unix socket"
            self.log.warning("refused a request from %s with %d: %s", ip, status, message)
        send_and_close(getattr(client, "raw_socket", client), json_error_bytes(status, message))

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: stop, and end the kept-alive connections that wait for nothing."""
        super().handle_exit(sig, frame)
        gevent.spawn(self._close_idle_connections)  # out of the signal handler, as gunicorn does for quit

    def _close_idle_connections(self) -> None:
        closed = sum(1 for connection in list(self._connections) if connection.close_if_idle())
        if closed:
            self.log.info("worker %s stopping: closed %d idle keep-alive connections", self.pid, closed)

    def _reclaim_idle_connection(self) -> bool:
        """Make room by ending one idle kept-alive connection; True when one was ended."""
        for connection in self._connections:
            if connection.is_idle and connection.close_if_idle():
                self._connections.discard(connection)
                return True
        return False

    def _answer_full(self, client: Any) -> None:
        self._refused_while_full += 1
        now = time.monotonic()
        if now >= self._next_full_warning:
            self._next_full_warning = now + FULL_WARNING_INTERVAL
            self.log.warning("worker %s is full (%d connections in use): new clients get 503 "
                             "(%d so far)", self.pid, len(self._connections), self._refused_while_full)
        send_and_close(client, json_error_bytes(503, FULL_MESSAGE, {"retry-after": "1"}))


def _discard_unread_body(req: Any) -> None:
    """Read what the app left of the body, so the next request starts at its own first byte.

    :raises StopIteration: the rest is too large or too slow to read; gunicorn closes instead.
    """
    discarded = 0
    try:
        while chunk := req.body.read(DISCARD_CHUNK):
            discarded += len(chunk)
            if discarded > MAX_DISCARDED_BODY:
                raise StopIteration()
    except ClientTimeout:
        raise StopIteration() from None
