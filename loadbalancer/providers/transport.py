"""The transport adapter under every provider's session: requests' own, less per-call work no provider needs.

requests' `HTTPAdapter` looks the connection pool up for every request (the URL parsed for
proxies and again for the pool key, then the pool manager's keyed lookup), parses the URL
twice more to find the path it sends when there is no proxy, and copies every answer's
cookies into a jar. A provider is reached without proxies, at the few origins its
configuration names, and the cookies it sets are never read (`ProviderClient` calls the
adapter directly, so no session jar exists to keep them). The pool lookup and the cookies
were ~13 % of an upstream call measured in-process. Everything else, `send` included (where
the `responses` library mocks), is requests' own.

Below the adapter the pools are urllib3's with some of its steps made cheaper: whether a
kept-alive connection was closed by the provider is asked of the operating system directly,
an answer's headers are read without the email package into the one dict urllib3 and requests
then share (`http_response`), and the request's head is written in one pass, a small body in
the same write (`http_request`).
"""

from __future__ import annotations

import http.client
import logging
from typing import NamedTuple

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPConnectionPool, HTTPHeaderDict, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HeaderParsingError
from urllib3.response import HTTPResponse
from urllib3.util.response import assert_header_parsing

from loadbalancer.providers.http_request import ONE_WRITE_BODY_BYTES, header_lines, takes_plain_framing
from loadbalancer.providers.http_response import ProviderHTTPResponse, closed_by_peer, urllib3_fields

# A provider talks to one or two origins (its API, a token endpoint); the bound only keeps a
# misconfiguration from growing the table.
MAX_REMEMBERED_ORIGINS = 16
log = logging.getLogger("loadbalancer")


class AnswerOptions(NamedTuple):
    """How to read the answer to the request just sent (the fields of urllib3's own record of it)."""

    request_method: str
    request_url: str
    preload_content: bool
    decode_content: bool
    enforce_content_length: bool


def origin_of(url: str) -> str:
    """`scheme://host:port` of an absolute URL: everything before the path."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


class _CheaperSteps:
    """What a provider connection does differently from urllib3's: the liveness check, writing the
    request and reading the answer's headers. Each step does what urllib3's does (and raises what
    it raises), with less work."""

    response_class = ProviderHTTPResponse

    @property
    def is_connected(self) -> bool:
        return self.sock is not None and not closed_by_peer(self.sock)

    def request(self, method: str, url: str, body=None, headers=None, *, chunked: bool = False,
                preload_content: bool = True, decode_content: bool = True,
                enforce_content_length: bool = True) -> None:
        """urllib3's `request`; a bytes body with its Content-Length has its head written in one pass."""
        names = takes_plain_framing(body, headers, chunked)
        if names is None:
            return super().request(method, url, body=body, headers=headers, chunked=chunked,
                                   preload_content=preload_content, decode_content=decode_content,
                                   enforce_content_length=enforce_content_length)
        if self.sock is not None:
            self.sock.settimeout(self.timeout)  # a reused connection: the new request's wait
        # Kept before anything is sent, as urllib3 keeps them: an answer can come even when
        # sending the body fails.
        self._response_options = AnswerOptions(
            request_method=method, request_url=url, preload_content=preload_content,
            decode_content=decode_content, enforce_content_length=enforce_content_length)
        self.putrequest(method, url, skip_accept_encoding="accept-encoding" in names, skip_host="host" in names)
        self._buffer.extend(header_lines(headers, names))
        self.endheaders(message_body=body)

    def _send_output(self, message_body=None, encode_chunked: bool = False) -> None:
        """http.client's, with a small bytes body sent in the same write as the head."""
        if message_body.__class__ is bytes and not encode_chunked and len(message_body) <= ONE_WRITE_BODY_BYTES:
            self._buffer.extend((b"", message_body))
            message = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked=encode_chunked)

    def getresponse(self) -> HTTPResponse:
        """urllib3's `getresponse`, handing on the headers the answer read instead of copying them."""
        options = self._response_options
        if options is None:
            raise http.client.ResponseNotReady()
        self._response_options = None
        self.sock.settimeout(self.timeout)  # the read timeout, set by the pool after sending
        shutdown = getattr(self.sock, "shutdown", None)  # kept before the answer owns the socket
        answer = http.client.HTTPConnection.getresponse(self)
        if getattr(answer, "read_by_email_package", True):  # only an unusual block can have defects
            try:
                assert_header_parsing(answer.msg)
            except (HeaderParsingError, TypeError) as err:
                # The host only: a request URL can carry a key in its query (the log filter
                # scrubs configured secrets anyway).
                log.warning("an answer from %s had headers that did not parse: %s", self.host, err)
        fields = getattr(answer, "fields", None)
        if not isinstance(fields, HTTPHeaderDict):  # an answer class of another kind: urllib3's reading
            fields = urllib3_fields(answer.msg)
        return HTTPResponse(
            body=answer, headers=fields, status=answer.status, version=answer.version,
            version_string=getattr(self, "_http_vsn_str", "HTTP/?"), reason=answer.reason,
            preload_content=options.preload_content, decode_content=options.decode_content,
            original_response=answer, enforce_content_length=options.enforce_content_length,
            request_method=options.request_method, request_url=options.request_url, sock_shutdown=shutdown)


class ProviderHTTPConnection(_CheaperSteps, HTTPConnection):
    """urllib3's connection, with the cheaper steps."""


class ProviderHTTPSConnection(_CheaperSteps, HTTPSConnection):
    """urllib3's TLS connection, with the cheaper steps."""


class ProviderHTTPPool(HTTPConnectionPool):
    ConnectionCls = ProviderHTTPConnection


class ProviderHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = ProviderHTTPSConnection


class ProviderAdapter(HTTPAdapter):
    """An `HTTPAdapter` that remembers each origin's pool, takes the path as it is and keeps no cookies."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._pools: dict[tuple[str, object], HTTPConnectionPool] = {}

    def init_poolmanager(self, *args, **options) -> None:
        """requests' pool manager, making pools of the connection classes above."""
        super().init_poolmanager(*args, **options)
        self.poolmanager.pool_classes_by_scheme = {"http": ProviderHTTPPool, "https": ProviderHTTPSPool}

    def get_connection_with_tls_context(self, request: PreparedRequest, verify, proxies=None,
                                        cert=None) -> HTTPConnectionPool:
        """The origin's pool, looked up once; proxies or client certificates take requests' own way."""
        if proxies or cert or not isinstance(request.url, str):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        key = (origin_of(request.url), verify)
        pool = self._pools.get(key)
        # The pool manager closes pools it evicts (and all of them on close()): ask it again then.
        if pool is None or pool.pool is None:
            if len(self._pools) >= MAX_REMEMBERED_ORIGINS:
                self._pools.clear()
            pool = self._pools[key] = super().get_connection_with_tls_context(request, verify, proxies, cert)
        return pool

    def request_url(self, request: PreparedRequest, proxies) -> str:
        """The path the pool sends: requests' own, without parsing the URL twice more to find no proxy."""
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url  # what requests sends without a proxy (tests compare the two)

    def build_response(self, req: PreparedRequest, resp) -> Response:
        """requests' response, without copying the provider's cookies into a jar nobody reads."""
        response = Response()
        response.status_code = getattr(resp, "status", None)
        # urllib3's header dict is case-insensitive and joins repeated names as requests' does:
        # it is used as it is rather than copied (a mocked answer's headers may be anything).
        headers = getattr(resp, "headers", {})
        response.headers = headers if isinstance(headers, HTTPHeaderDict) else CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        response.request = req
        response.connection = self
        return response

    def close(self) -> None:
        """Close every pool (requests' own), and forget them."""
        self._pools.clear()
        super().close()
