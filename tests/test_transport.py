"""The providers' transport adapter against a real server on 127.0.0.1.

`responses` replaces `HTTPAdapter.send` itself, so what `ProviderAdapter` changes (the pool
lookup, the response it builds) is only exercised over a real socket.
"""
from __future__ import annotations

from typing import Callable

import pytest

from loadbalancer.providers.http_response import ProviderHTTPResponse
from loadbalancer.providers.transport import (MAX_REMEMBERED_ORIGINS, ProviderAdapter, ProviderHTTPConnection,
                                              ProviderHTTPSConnection, origin_of)
from loadbalancer.providers.http_client import _prepare
from support.fake_backend import FakeBackend, status

pytestmark = pytest.mark.integration


@pytest.fixture
def adapter():
    made = ProviderAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    yield made
    made.close()


def answering(fake_backend: Callable[..., FakeBackend], path: str = "/v1/messages", **answer) -> FakeBackend:
    backend = fake_backend()
    backend.set_default_for(path, status(200, {"ok": 1}) if not answer else status(**answer))
    return backend


def send(adapter: ProviderAdapter, url: str):
    response = adapter.send(_prepare("POST", url, {"content-type": "application/json"}, b"{}"),
                            stream=False, timeout=(2, 5), verify=True, cert=None, proxies={})
    return response


@pytest.mark.parametrize("url, origin", [
    ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com"),
    ("http://127.0.0.1:8080/v1/messages?beta=true", "http://127.0.0.1:8080"),
    ("http://[::1]:9/x", "http://[::1]:9"),
    ("https://host?query=1", "https://host"),
])
def test_the_origin_is_everything_before_the_path(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_requests_to_one_origin_share_one_pool_and_one_connection(fake_backend, adapter) -> None:
    backend = answering(fake_backend)
    backend.set_default_for("/v1/messages/count_tokens", status(200, {"input_tokens": 3}))
    paths = ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages?beta=true"]
    answers = [send(adapter, f"{backend.url}{path}").json() for path in paths]  # each read before the next
    assert answers == [{"ok": 1}, {"input_tokens": 3}, {"ok": 1}]
    assert len({request.client_port for request in backend.requests}) == 1  # kept alive, reused
    assert len(adapter._pools) == 1 and len(adapter.poolmanager.pools) == 1


def test_a_pool_the_manager_closed_is_replaced(fake_backend, adapter) -> None:
    backend = answering(fake_backend)
    assert send(adapter, f"{backend.url}/v1/messages").status_code == 200
    adapter.poolmanager.clear()  # what eviction from its LRU does to a pool: closed
    assert send(adapter, f"{backend.url}/v1/messages").json() == {"ok": 1}


def test_the_answer_is_requests_own_without_the_cookies(fake_backend, adapter) -> None:
    backend = answering(fake_backend, code=429, json_body={"error": "slow down"}, headers={
        "set-cookie": "session=abc; Path=/", "retry-after": "7", "content-type": "application/json; charset=utf-8"})
    answer = send(adapter, f"{backend.url}/v1/messages")
    assert (answer.status_code, answer.headers["Retry-After"], answer.encoding) == (429, "7", "utf-8")
    assert answer.url == f"{backend.url}/v1/messages" and answer.reason and answer.json() == {"error": "slow down"}
    assert answer.headers["set-cookie"] == "session=abc; Path=/" and not answer.cookies
    assert answer.headers is answer.raw.headers  # urllib3's dict, read once, not copied again


def test_the_table_of_origins_stays_bounded(fake_backend, adapter) -> None:
    host_port = answering(fake_backend).url.split("://", 1)[1]
    for number in range(MAX_REMEMBERED_ORIGINS + 3):  # distinct origins (user info) on one server
        assert send(adapter, f"http://user{number}@{host_port}/v1/messages").status_code == 200
    assert len(adapter._pools) <= MAX_REMEMBERED_ORIGINS


def test_pools_make_the_connections_with_the_cheaper_liveness_check_and_header_reading(fake_backend, adapter) -> None:
    backend = answering(fake_backend)
    response = send(adapter, f"{backend.url}/v1/messages")
    assert response.json() == {"ok": 1} and response.headers["content-type"].startswith("application/json")
    (pool,) = adapter._pools.values()
    assert pool.ConnectionCls is ProviderHTTPConnection
    assert adapter.poolmanager.connection_from_url("https://api.example.com/").ConnectionCls is ProviderHTTPSConnection
    assert isinstance(response.raw._original_response, ProviderHTTPResponse)


@pytest.mark.parametrize("url", [
    "https://api.anthropic.com/v1/messages", "http://127.0.0.1:8080/v1/messages?beta=true",
    "https://host", "https://host?x=1", "https://host//v1//messages", "http://[::1]:9///a?b=c#frag",
    "https://user:secret@host/path;params?q=%20", "https://host/caf%C3%A9/x?y=z&y=w",
])
@pytest.mark.parametrize("proxies", [{}, None])
def test_the_path_sent_is_the_one_requests_sends_without_a_proxy(adapter, url: str, proxies) -> None:
    from requests.adapters import HTTPAdapter
    prepared = _prepare("POST", url, {}, b"{}")
    assert adapter.request_url(prepared, proxies) == HTTPAdapter.request_url(adapter, prepared, proxies)


def test_a_proxied_request_is_left_to_requests(adapter) -> None:
    prepared = _prepare("POST", "http://host/v1/messages?x=1", {}, b"{}")
    # requests sends a plain-HTTP request through a proxy with its absolute URL
    assert adapter.request_url(prepared, {"http": "http://proxy:3128"}) == "http://host/v1/messages?x=1"
