"""The provider client: the only module that talks to backends over the network.

One pooled keep-alive `requests.Session` per provider. Every `requests`/`urllib3` error is
converted here, and only here, into the `errors.Upstream*` types with the provider attached.
"""

from __future__ import annotations

import email.utils
import errno
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Mapping

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from loadbalancer.providers.transport import ProviderAdapter
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.errors import (LocalResourceExhausted, UpstreamBadResponse, UpstreamConnectError,
                                 UpstreamError, UpstreamHTTPError, UpstreamStreamBroken, UpstreamTimeout)

DEFAULT_POOL_SIZE = 256
READ_CHUNK_BYTES = 64 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 64 * 1024 * 1024
PING_INTERVAL = 10.0
MIN_READ_WAIT = 0.001  # a socket timeout of 0 would mean "never wait", not "no time left"
READER_STOP_SECONDS = 1.0  # how long closing a stream waits for its reader thread to notice
READER_JOIN_STEP_SECONDS = 0.02

_STREAM_END = object()
# OS errors that say this process or machine is out of something, whoever it talks to.
LOCAL_RESOURCE_ERRNOS = {errno.EMFILE: "too many open files", errno.ENFILE: "too many open files in the system",
                         errno.ENOMEM: "out of memory", errno.ENOBUFS: "no buffer space"}
CAUSE_CHAIN_LIMIT = 32  # how many wrapped exceptions to look through for the OS error behind them


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `retry-after` header given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass
class UpstreamResponse:
    """An open 2xx answer from a provider; `close()` releases its connection."""

    provider: ProviderConfig
    response: requests.Response
    started_at: float
    deadline: float | None = None  # a non-stream answer must be complete by then (timeout.total)

    @property
    def headers(self) -> Mapping[str, str]:
        """The provider's response headers."""
        return self.response.headers

    def shut_down(self) -> None:
        """Cut an unfinished body: wakes a reader blocked in recv() and tells the provider to stop."""
        if not self.response.raw.isclosed():
            sock = getattr(getattr(self.response.raw, "connection", None), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already disconnected: nothing left to stop

    def read_chunk(self) -> bytes:
        """Whatever part of the body has arrived (read1 never waits to fill); b"" at its end.

        At the end urllib3 hands the connection back to the pool by itself.
        """
        return _read_chunk(self.response, self.provider.name)

    def set_read_timeout(self, seconds: float) -> None:
        """Wait at most `seconds` for each further read (the stream idle timeout)."""
        _set_socket_timeout(self.response, seconds)

    def close(self) -> None:
        """Release the connection (safe to call twice); an unfinished body is shut down first."""
        self.shut_down()
        self.response.close()


class ProviderClient:
    """Sends requests to one provider over its own pooled session."""

    def __init__(self, provider: ProviderConfig, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.provider = provider
        self.session = requests.Session()
        # Looking up proxy settings in the environment on every request is a known cost,
        # and a provider is always reached directly.
        self.session.trust_env = False
        self.adapter = ProviderAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)

    def close(self) -> None:
        """Close every pooled connection."""
        self.session.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
             stream: bool, timeout: float | None = None) -> UpstreamResponse:
        """POST and return the open 2xx answer; raise an UpstreamError otherwise.

        `timeout` replaces the provider's read timeout (health probes use their own).
        """
        return self._send("POST", url, headers, body=body, stream=stream, read_timeout=timeout)

    def get(self, url: str, headers: Mapping[str, str], timeout: float | None = None) -> UpstreamResponse:
        """GET (used by health probes) and return the open 2xx answer."""
        return self._send("GET", url, headers, stream=False, read_timeout=timeout)

    def _send(self, method: str, url: str, headers: Mapping[str, str], *, body: bytes | None = None,
              stream: bool, read_timeout: float | None = None) -> UpstreamResponse:
        timeout = self.provider.timeout
        started = time.monotonic()
        # A stream must start within first_byte; a whole non-stream answer must come within total.
        wait = read_timeout or (timeout.stream_start if stream else min(timeout.read, timeout.total))
        deadline = None if stream or read_timeout else started + timeout.total
        try:
            response = self.adapter.send(
                _prepare(method, url, headers, body), stream=True, verify=True, cert=None,
                proxies={}, timeout=(timeout.connect, wait))
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError) as err:
            if isinstance(err, requests.exceptions.ReadTimeout):
                raise UpstreamTimeout(self.provider.name, _no_answer(stream, wait)) from err
            local = _local_resource_shortage(err)
            if local is not None:
                raise LocalResourceExhausted(self.provider.name, local) from err
            raise UpstreamConnectError(self.provider.name, _describe_connect_error(err)) from err
        except requests.exceptions.Timeout as err:
            raise UpstreamTimeout(self.provider.name, _no_answer(stream, wait)) from err
        except requests.exceptions.RequestException as err:
            raise UpstreamConnectError(self.provider.name, f"request failed: {type(err).__name__}") from err
        if response.status_code >= 300:
            raise self._http_error(response)
        return UpstreamResponse(self.provider, response, started, deadline)

    def _http_error(self, response: requests.Response) -> UpstreamHTTPError:
        """Read a bounded error body and turn the answer into an UpstreamHTTPError."""
        try:
            body = read_bounded(response, MAX_ERROR_BODY_BYTES, self.provider.name)
        except UpstreamError:
            body = b""
        finally:
            response.close()
        status = response.status_code
        return UpstreamHTTPError(
            self.provider.name, f"answered HTTP {status}", status=status, body=body,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            content_type=response.headers.get("content-type"), headers=response.headers)

    def read_body(self, answer: UpstreamResponse) -> bytes:
        """The whole (non-stream) body of an answer, by its deadline when it has one; closes it."""
        try:
            return read_bounded(answer.response, MAX_ANSWER_BYTES, self.provider.name,
                                deadline=answer.deadline, read_timeout=self.provider.timeout.read)
        finally:
            answer.close()

    def iter_chunks(self, answer: UpstreamResponse, *, first_timeout: float,
                    idle_timeout: float, ping_interval: float = PING_INTERVAL) -> Iterator[bytes | None]:
        """Body chunks as they arrive; None when the provider was silent for ping_interval.

        A reader thread does the blocking reads so the caller can send keep-alive pings
        while the provider is silent, and can tell a stalled stream (idle timeout) from
        a slow one. Closing this generator closes the upstream connection.
        """
        chunks: queue.Queue = queue.Queue(maxsize=64)
        reader = threading.Thread(target=self._read_into, args=(answer, chunks), daemon=True)
        reader.start()
        deadline_gap = first_timeout
        silent_since = time.monotonic()
        try:
            while True:
                wait = min(ping_interval, max(0.0, silent_since + deadline_gap - time.monotonic()))
                try:
                    item = chunks.get(timeout=wait)
                except queue.Empty:
                    if time.monotonic() - silent_since >= deadline_gap:
                        raise UpstreamStreamBroken(
                            self.provider.name, f"stream stalled: no data for {deadline_gap:g}s") from None
                    yield None
                    continue
                if item is _STREAM_END:
                    return
                if isinstance(item, UpstreamError):
                    raise item
                silent_since = time.monotonic()
                deadline_gap = idle_timeout
                yield item
        finally:
            _stop_reader(answer, reader, chunks)

    def _read_into(self, answer: UpstreamResponse, chunks: queue.Queue) -> None:
        """Reader thread body: push chunks, then _STREAM_END or the error."""
        try:
            while chunk := answer.read_chunk():
                chunks.put(chunk)
            chunks.put(_STREAM_END)
        except UpstreamError as err:
            chunks.put(err)


def _stop_reader(answer: UpstreamResponse, reader: threading.Thread, chunks: queue.Queue) -> None:
    """Cut the connection, let the reader thread finish, then release the response.

    Closing the response while the reader is inside read1() fails under gevent ("reentrant
    call" on the buffered socket file) and races it under threads; shutting the socket down
    first makes the reader's read return at once.
    """
    answer.shut_down()
    give_up_at = time.monotonic() + READER_STOP_SECONDS
    while reader.is_alive() and time.monotonic() < give_up_at:
        _discard_queued(chunks)  # a reader blocked on a full queue must be able to finish
        reader.join(READER_JOIN_STEP_SECONDS)
    answer.close()


def _discard_queued(chunks: queue.Queue) -> None:
    """Empty the queue without waiting."""
    while True:
        try:
            chunks.get_nowait()
        except queue.Empty:
            return


def _prepare(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> requests.PreparedRequest:
    """A request ready for the transport, built directly.

    Session.request would merge session settings, cookies, proxies and hooks into every call
    and re-parse the URL; none of that applies to a provider (its URL was validated at start,
    it sets no cookies, it is reached without proxies). Going straight to the adapter (still
    the place `responses` mocks) cut the service CPU of a passthrough request by about 10%.
    """
    prepared = requests.PreparedRequest()
    prepared.method = method
    prepared.url = url
    prepared.headers = CaseInsensitiveDict(headers)
    if body is not None:
        prepared.body = body
        prepared.headers["content-length"] = str(len(body))
    return prepared


def _read_chunk(response: requests.Response, provider: str) -> bytes:
    """Whatever part of the body has arrived (read1 never waits to fill); b"" at its end."""
    try:
        return response.raw.read1(READ_CHUNK_BYTES)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as err:
        raise UpstreamStreamBroken(provider, "stream stalled (read timeout)") from err
    except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as err:
        # ValueError/AttributeError: the response was closed under the reader (client gone).
        raise UpstreamStreamBroken(provider, f"stream broke off: {type(err).__name__}") from err


def read_bounded(response: requests.Response, limit: int, provider: str, *, deadline: float | None = None,
                 read_timeout: float | None = None) -> bytes:
    """Read a whole body (decoded), failing when it exceeds `limit` bytes or its deadline.

    read1 returns whatever has arrived, so before each read the socket's wait can be cut to
    the time left: a provider that trickles its answer byte by byte cannot hold the request
    past the deadline (a plain read waits to fill its buffer, however long that takes).
    """
    parts = []
    size = 0
    try:
        while True:
            _wait_until(response, deadline, read_timeout, provider)
            chunk = response.raw.read1(READ_CHUNK_BYTES)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                raise UpstreamBadResponse(provider, f"answer larger than {limit} bytes")
            parts.append(chunk)
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as err:
        within = "timeout.total" if deadline is not None and time.monotonic() >= deadline else "the read timeout"
        raise UpstreamTimeout(provider, f"the answer was not complete within {within}") from err
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        raise UpstreamStreamBroken(provider, f"answer body broke off: {type(err).__name__}") from err


def _wait_until(response: requests.Response, deadline: float | None, read_timeout: float | None,
                provider: str) -> None:
    """Let the next read wait no longer than the deadline leaves (nor than the read timeout)."""
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise UpstreamTimeout(provider, "the answer was not complete within timeout.total")
    _set_socket_timeout(response, min(left, read_timeout or left))


def _set_socket_timeout(response: requests.Response, seconds: float) -> None:
    """Bound the next reads of an open response (no-op for mocked responses without a socket)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, MIN_READ_WAIT))


def _no_answer(stream: bool, wait: float) -> str:
    """Why a provider that said nothing was given up on."""
    limit = "timeout.first_byte" if stream else "the read timeout"
    return f"no answer within {limit} ({wait:g}s)"


def _local_resource_shortage(err: BaseException) -> str | None:
    """What this process ran out of, when an OS error of that kind is behind `err`.

    requests wraps urllib3's error, which wraps the OSError of the failed socket call; the
    chain is followed through causes, contexts, `reason` and arguments.
    """
    pending: list[object] = [err]
    seen: set[int] = set()
    while pending and len(seen) < CAUSE_CHAIN_LIMIT:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in LOCAL_RESOURCE_ERRNOS:
            return LOCAL_RESOURCE_ERRNOS[current.errno]
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None),
                        *current.args])
    return None


def _describe_connect_error(err: Exception) -> str:
    """A short, secret-free reason for a connection failure."""
    text = str(err)
    for marker, reason in (("Connection refused", "connection refused"),
                           ("Name or service not known", "host not found"),
                           ("nodename nor servname", "host not found"),
                           ("timed out", "connect timeout"),
                           ("SSLError", "TLS error"), ("CERTIFICATE", "TLS certificate error"),
                           ("RemoteDisconnected", "connection closed without an answer"),
                           ("Connection aborted", "connection closed without an answer"),
                           ("Connection reset", "connection reset")):
        if marker in text:
            return reason
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    return f"connection failed ({type(err).__name__})"
