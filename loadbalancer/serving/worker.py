"""The gunicorn worker class the service runs: gunicorn's gevent worker, guarded against slow clients.

    gunicorn -k loadbalancer.serving.worker.LoadBalancerWorker ...   (gunicorn.conf.py's default)

What it adds to `gunicorn.workers.ggevent.GeventWorker`:
- every client socket is a `ClientConnection`, so headers, bodies and idle keep-alive each
  have a time limit (a client that stops sending no longer holds a connection for good);
- when all `worker_connections` are in use and clients are left waiting to be accepted,
  kept-alive connections that are idle make room for them, or else they get a JSON 503 with
  `retry-after` within a quarter of a second, instead of waiting in the backlog unanswered;
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
import gevent.socket
from gevent import select
from gevent.pool import Pool
from gunicorn.workers.ggevent import GeventWorker

from loadbalancer.errors import ClientTimeout
from loadbalancer.serving.connection import ClientConnection, ClientTimeouts
from loadbalancer.serving.request_body import LengthBody
from loadbalancer.serving.raw_answers import answer_for, json_error_bytes, send_and_close

FULL_CHECK_SECONDS = 0.25  # how long a client waits in the backlog of a full service before its 503
REFUSALS_IN_FLIGHT = 64  # 503 answers being written at once, per worker
FULL_WARNING_INTERVAL = 10.0
DISCARD_CHUNK = 65536
MAX_DISCARDED_BODY = 1024 * 1024  # an unread body larger than this is not worth reading: close instead
FULL_MESSAGE = "the load balancer has no free connection right now; retry shortly"
# A real client sent its request at once and closes after the 503; a flood that never closes
# must not hold the refusals for long.
FULL_LINGER_SECONDS = 0.25


class LoadBalancerWorker(GeventWorker):
    """gunicorn's gevent worker with client time limits, a 503 when full and JSON refusals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_limit = self.cfg.worker_connections
        self.client_timeouts = ClientTimeouts.from_environ(os.environ, float(self.cfg.keepalive))
        self._connections: set[ClientConnection] = set()
        self._refusals = Pool(REFUSALS_IN_FLIGHT)
        self._refused_while_full = 0
        self._next_full_warning = 0.0

    def run(self) -> None:
        """gunicorn's gevent loop, with a watch on clients left waiting while this worker is full."""
        if not self.cfg.is_ssl:  # a 503 written here would be plain text on a TLS connection
            gevent.spawn(self._answer_clients_waiting_while_full)
        super().run()

    def timeout_ctx(self) -> contextlib.AbstractContextManager:
        """No timer around the parser: every read of a `ClientConnection` carries its own."""
        return contextlib.nullcontext()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one client connection with the time limits of `ClientConnection`."""
        connection = ClientConnection(client, self.client_timeouts, lambda: self.alive)
        self._connections.add(connection)
        try:
            super().handle(listener, connection, addr)
        finally:
            self._connections.discard(connection)

    def handle_request(self, listener_name: Any, req: Any, sock: ClientConnection, addr: Any) -> None:
        """One request: the body limits apply until the answer is sent."""
        sock.start_request(req)
        LengthBody.replacing(req, sock)
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

    def _close_idle_connections(self) -> int:
        closed = sum(1 for connection in list(self._connections) if connection.close_if_idle())
        if closed and not self.alive:
            self.log.info("worker %s stopping: closed %d idle keep-alive connections", self.pid, closed)
        return closed

    def _answer_clients_waiting_while_full(self) -> None:
        """While every connection is in use, make room or answer 503 to whoever waits to be accepted.

        A full worker stops accepting (gevent's pool), so a worker with room takes new
        clients first; what is still waiting at the next check found every worker full.
        """
        while self.alive:
            gevent.sleep(FULL_CHECK_SECONDS)
            if len(self._connections) < self.connection_limit:
                continue
            for listener in self.sockets:
                if not _has_waiting_client(listener):
                    continue
                if self._close_idle_connections():
                    continue  # the freed connections take the waiting clients
                self._refuse_waiting_clients(listener)

    def _refuse_waiting_clients(self, listener: Any) -> None:
        while not self._refusals.full():
            client = _accept_waiting_client(listener)
            if client is None:
                return
            self._refusals.spawn(self._answer_full, client)

    def _answer_full(self, client: Any) -> None:
        self._refused_while_full += 1
        now = time.monotonic()
        if now >= self._next_full_warning:
            self._next_full_warning = now + FULL_WARNING_INTERVAL
            self.log.warning("worker %s is full (%d connections in use): waiting clients get 503 "
                             "(%d so far)", self.pid, len(self._connections), self._refused_while_full)
        send_and_close(client, json_error_bytes(503, FULL_MESSAGE, {"retry-after": "1"}), FULL_LINGER_SECONDS)


def _has_waiting_client(listener: Any) -> bool:
    """True when a connection waits in the listen backlog."""
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def _accept_waiting_client(listener: Any) -> Any:
    """A waiting connection, or None when there is none (another worker may have taken it).

    Accepts without waiting the way gevent's own StreamServer does (`_accept` on the
    non-blocking listening socket); `accept()` would wait for the next client instead.
    """
    try:
        fd, _address = listener._accept()
    except BlockingIOError:
        return None
    return gevent.socket.socket(listener.family, listener.type, listener.proto, fileno=fd)


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
