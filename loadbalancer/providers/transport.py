"""The transport adapter under every provider's session: requests' own, less per-call work no provider needs.

requests' `HTTPAdapter` looks the connection pool up for every request (the URL parsed for
proxies and again for the pool key, then the pool manager's keyed lookup) and copies every
answer's cookies into a jar. A provider is reached without proxies, at the few origins its
configuration names, and the cookies it sets are never read (`ProviderClient` calls the
adapter directly, so no session jar exists to keep them). Both steps were ~13 % of an
upstream call measured in-process. Everything else, `send` included (where the `responses`
library mocks), is requests' own.

Below the adapter the pools are urllib3's with two of its steps made cheaper (see
`http_response`): whether a kept-alive connection was closed by the provider is asked of the
operating system directly, and an answer's headers are read without the email package.
"""

from __future__ import annotations

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from loadbalancer.providers.http_response import ProviderHTTPResponse, closed_by_peer

# A provider talks to one or two origins (its API, a token endpoint); the bound only keeps a
# misconfiguration from growing the table.
MAX_REMEMBERED_ORIGINS = 16


def origin_of(url: str) -> str:
    """`scheme://host:port` of an absolute URL: everything before the path."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


class _CheaperSteps:
    """What a provider connection does differently from urllib3's: the liveness check and header reading."""

    response_class = ProviderHTTPResponse

    @property
    def is_connected(self) -> bool:
        return self.sock is not None and not closed_by_peer(self.sock)


class ProviderHTTPConnection(_CheaperSteps, HTTPConnection):
    """urllib3's connection, with the cheaper steps."""


class ProviderHTTPSConnection(_CheaperSteps, HTTPSConnection):
    """urllib3's TLS connection, with the cheaper steps."""


class ProviderHTTPPool(HTTPConnectionPool):
    ConnectionCls = ProviderHTTPConnection


class ProviderHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = ProviderHTTPSConnection


class ProviderAdapter(HTTPAdapter):
    """An `HTTPAdapter` that remembers each origin's pool and keeps no cookies."""

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

    def build_response(self, req: PreparedRequest, resp) -> Response:
        """requests' response, without copying the provider's cookies into a jar nobody reads."""
        response = Response()
        response.status_code = getattr(resp, "status", None)
        response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
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
