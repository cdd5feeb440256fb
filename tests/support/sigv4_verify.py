"""SigV4 verification for the fake Bedrock: does an incoming request carry a valid signature?

The load balancer signs with botocore's `SigV4Auth(credentials, "bedrock", region)`, which
adds `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials only) and
`Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/bedrock/aws4_request,
SignedHeaders=a;b;c, Signature=HEX`.

Verification recomputes the signature with botocore from the same credentials: the
timestamp comes from `X-Amz-Date`, the headers are exactly those named in SignedHeaders,
and the path is the one sent on the wire (still percent-encoded: botocore encodes it once
more for the canonical request, as AWS does for every service but S3).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials, ReadOnlyCredentials

BEDROCK_SIGNING_NAME = "bedrock"
ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_MAX_SKEW = datetime.timedelta(minutes=5)  # AWS: "Signature expired" past 5 minutes
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AUTHORIZATION_PATTERN = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed_headers>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})$")

AnyCredentials = Union[Credentials, ReadOnlyCredentials]
HeaderPairs = Union[Mapping[str, str], Iterable[tuple[str, str]]]


class AuthorizationFormatError(ValueError):
    """An Authorization header that is not a SigV4 header."""


@dataclass(frozen=True, slots=True)
class SigV4Authorization:
    """The parts of a SigV4 Authorization header."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A request as a server received it; `raw_path` is still percent-encoded."""

    method: str
    raw_path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively, or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class SignatureVerdict:
    """The result of a check: truthy when the signature is valid, with the reason if not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def parse_authorization(value: str) -> SigV4Authorization:
    """Split a SigV4 Authorization header (raises AuthorizationFormatError)."""
    match = _AUTHORIZATION_PATTERN.match(value.strip())
    if match is None:
        raise AuthorizationFormatError(f"not a SigV4 Authorization header: {value[:60]!r}")
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthorizationFormatError(f"bad credential scope: {match['credential']!r}")
    access_key, date, region, service, _ = scope
    names = tuple(match["signed_headers"].split(";"))
    return SigV4Authorization(access_key, date, region, service, names, match["signature"])


def incoming_request(method: str, raw_path: str, query: str, headers: HeaderPairs,
                     body: bytes) -> IncomingRequest:
    """An IncomingRequest from plain parts (headers as a mapping or a list of pairs)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return IncomingRequest(method, raw_path, query, tuple(pairs), body)


def verify_signature(request: IncomingRequest, credentials: AnyCredentials, *, region: str,
                     service: str = BEDROCK_SIGNING_NAME,
                     now: datetime.datetime | None = None,
                     max_skew: datetime.timedelta = DEFAULT_MAX_SKEW) -> SignatureVerdict:
    """Whether `request` carries a valid SigV4 signature by these credentials."""
    try:
        authorization = parse_authorization(request.header("authorization") or "")
    except AuthorizationFormatError as err:
        return SignatureVerdict(False, str(err))
    problem = (_scope_problem(authorization, credentials, region, service)
               or _header_problem(request, authorization, credentials)
               or _time_problem(request, authorization, now, max_skew)
               or _payload_problem(request))
    if problem:
        return SignatureVerdict(False, problem)
    expected = _expected_signature(request, authorization, credentials, region, service)
    if not hmac.compare_digest(expected, authorization.signature):
        return SignatureVerdict(False, "signature does not match")
    return SignatureVerdict(True)


def _scope_problem(authorization: SigV4Authorization, credentials: AnyCredentials,
                   region: str, service: str) -> str:
    """What is wrong with the credential scope, or ''."""
    if not hmac.compare_digest(authorization.access_key, credentials.access_key):
        return "unknown access key"
    if authorization.region != region:
        return f"signed for region {authorization.region!r}, expected {region!r}"
    if authorization.service != service:
        return f"signed for service {authorization.service!r}, expected {service!r}"
    return ""


def _header_problem(request: IncomingRequest, authorization: SigV4Authorization,
                    credentials: AnyCredentials) -> str:
    """What is wrong with the signed header list, or ''."""
    for required in ("host", "x-amz-date"):
        if required not in authorization.signed_headers:
            return f"{required} is not a signed header"
    missing = [name for name in authorization.signed_headers if request.header(name) is None]
    if missing:
        return f"signed headers missing from the request: {', '.join(missing)}"
    token = credentials.token
    if token and not hmac.compare_digest(request.header("x-amz-security-token") or "", token):
        return "missing or wrong x-amz-security-token"
    if token and "x-amz-security-token" not in authorization.signed_headers:
        return "x-amz-security-token is not a signed header"
    return ""


def _time_problem(request: IncomingRequest, authorization: SigV4Authorization,
                  now: datetime.datetime | None, max_skew: datetime.timedelta) -> str:
    """What is wrong with X-Amz-Date, or ''."""
    amz_date = request.header("x-amz-date") or ""
    try:
        signed_at = datetime.datetime.strptime(amz_date, AMZ_DATE_FORMAT)
    except ValueError:
        return f"bad x-amz-date {amz_date!r}"
    if amz_date[:8] != authorization.date:
        return "x-amz-date and the credential scope disagree on the date"
    current = (now or datetime.datetime.now(datetime.timezone.utc)).replace(tzinfo=None)
    if abs(current - signed_at) > max_skew:
        return f"signature expired or from the future: {amz_date}"
    return ""


def _payload_problem(request: IncomingRequest) -> str:
    """What is wrong with an X-Amz-Content-SHA256 header, or ''."""
    declared = request.header("x-amz-content-sha256")
    if declared is None:
        return ""
    if declared == UNSIGNED_PAYLOAD:
        return "unsigned payloads are not accepted"
    if not hmac.compare_digest(declared, hashlib.sha256(request.body).hexdigest()):
        return "x-amz-content-sha256 does not match the body"
    return ""


class _ListedHeadersSigner(SigV4Auth):
    """SigV4Auth that signs exactly the headers a client listed in SignedHeaders."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 names: tuple[str, ...]) -> None:
        super().__init__(credentials, service, region)
        self._names = names

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        """Only the listed headers, whatever botocore's own blacklist says."""
        listed = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._names:
                listed[name.lower()] = value
        return listed


def _expected_signature(request: IncomingRequest, authorization: SigV4Authorization,
                        credentials: AnyCredentials, region: str, service: str) -> str:
    """The signature botocore computes for this request at its own X-Amz-Date."""
    host = request.header("host") or ""
    url = f"https://{host}{request.raw_path}" + (f"?{request.query}" if request.query else "")
    headers = HTTPHeaders()
    for name, value in request.headers:
        if name.lower() in authorization.signed_headers:
            headers.add_header(name.lower(), value)
    rebuilt = AWSRequest(method=request.method.upper(), url=url, headers=headers, data=request.body)
    rebuilt.context["timestamp"] = request.header("x-amz-date")
    signer = _ListedHeadersSigner(_as_credentials(credentials), service, region,
                                  authorization.signed_headers)
    canonical = signer.canonical_request(rebuilt)
    return signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)


def _as_credentials(credentials: AnyCredentials) -> Credentials:
    """botocore Credentials from Credentials or get_frozen_credentials()' tuple."""
    if isinstance(credentials, Credentials):
        return credentials
    return Credentials(credentials.access_key, credentials.secret_key, credentials.token)


def bearer_token_matches(authorization: str | None, expected_token: str) -> bool:
    """Whether `Authorization: Bearer TOKEN` carries the Bedrock API key (constant time)."""
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected_token)
