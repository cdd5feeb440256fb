"""Providers are reached over TLS through the same connection classes: verified, kept alive, replaced when closed.

A local HTTPS server with a certificate made for the test (its own CA file is what the
client verifies against).
"""
from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loadbalancer.providers.http_client import _prepare
from loadbalancer.providers.http_response import ProviderHTTPResponse
from loadbalancer.providers.transport import ProviderAdapter

pytestmark = pytest.mark.integration


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class JsonHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections: set = set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.connections.add(self.client_address)
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        if self.path == "/close":
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path):
    cert_file, key_file = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    JsonHandler.connections = set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert_file)
    server.shutdown()
    server.server_close()


def post(adapter: ProviderAdapter, url: str, verify) -> requests.Response:
    return adapter.send(_prepare("POST", url, {"content-type": "application/json"}, b"{}"),
                        stream=False, timeout=(2, 5), verify=verify, cert=None, proxies={})


def test_a_tls_provider_is_verified_kept_alive_and_reconnected_after_it_closes(tls_server) -> None:
    url, ca_file = tls_server
    adapter = ProviderAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    try:
        assert post(adapter, f"{url}/v1/messages", ca_file).json() == {"ok": True}  # read: back to the pool
        second = post(adapter, f"{url}/v1/messages", ca_file)
        assert second.json() == {"ok": True}
        assert isinstance(second.raw._original_response, ProviderHTTPResponse)
        assert len(JsonHandler.connections) == 1  # the TLS connection was reused
        assert post(adapter, f"{url}/close", ca_file).json() == {"ok": True}
        assert post(adapter, f"{url}/v1/messages", ca_file).json() == {"ok": True}
        assert len(JsonHandler.connections) == 2  # closed by the server, then replaced
    finally:
        adapter.close()


def test_a_certificate_the_client_does_not_trust_is_refused(tls_server) -> None:
    url, _ = tls_server
    adapter = ProviderAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    try:
        with pytest.raises(requests.exceptions.SSLError):
            post(adapter, f"{url}/v1/messages", True)  # the system's CAs do not include the test's
    finally:
        adapter.close()
