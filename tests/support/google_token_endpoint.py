"""A fake Google OAuth token endpoint: test service accounts and JWT-bearer grant checks.

google-auth's service-account credentials refresh by POSTing to the key file's `token_uri`
a form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`, where JWT is
RS256-signed with the key file's private key and carries `iss` (client_email), `scope`
(space-separated), `aud`, `iat` and `exp` (iat + 3600). Since google-auth-library-python
PR #784 (2021) `aud` is always `https://oauth2.googleapis.com/token`, even when `token_uri`
points elsewhere (2.63.0 does this); older versions sent the token_uri itself, so a fake
endpoint should accept both.
The answer is `{"access_token", "expires_in", "token_type": "Bearer"}`; a refusal is
HTTP 400 `{"error": "invalid_grant", "error_description": ...}`.

Pure apart from writing the key file: the fake Vertex (fake_vertex.py) calls `answer_token_request`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
TOKEN_LIFETIME_SECONDS = 3600
MAX_ASSERTION_LIFETIME_SECONDS = 3600  # Google refuses assertions valid for over an hour
DEFAULT_CLOCK_SKEW_SECONDS = 60
TEST_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
DEFAULT_CLIENT_EMAIL = "lb-test@test-project.iam.gserviceaccount.com"
DEFAULT_PROJECT_ID = "test-project"


class AssertionRejected(ValueError):
    """A JWT-bearer assertion that a token endpoint must refuse."""


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """What the token endpoint answers: an HTTP status and a JSON body."""

    status: int
    body: dict


def generate_test_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key for one test run (never a real service account's)."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=TEST_KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """The private key as the unencrypted PKCS#8 PEM a key file carries."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def public_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The public half, as PEM, for verifying assertions."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def service_account_info(key: rsa.RSAPrivateKey, token_uri: str, *,
                         client_email: str = DEFAULT_CLIENT_EMAIL,
                         project_id: str = DEFAULT_PROJECT_ID) -> dict:
    """A service-account key file's fields, with token_uri pointing at a fake endpoint."""
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_key_pem(key),
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10 ** 20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }


def write_service_account_file(path: Path, info: dict) -> Path:
    """Write a key file readable by its owner only; return its path."""
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return path


def verify_assertion(assertion: str, public_key: bytes, *, issuer: str,
                     audiences: tuple[str, ...], required_scope: str = CLOUD_PLATFORM_SCOPE,
                     now: float | None = None,
                     clock_skew: int = DEFAULT_CLOCK_SKEW_SECONDS) -> dict:
    """The assertion's claims if it is valid for this issuer; raises AssertionRejected."""
    header, claims = _verified_parts(assertion, public_key)
    if header.get("alg") != "RS256":
        raise AssertionRejected(f"unsupported alg {header.get('alg')!r}")
    if claims.get("iss") != issuer:
        raise AssertionRejected(f"wrong issuer {claims.get('iss')!r}")
    if claims.get("aud") not in audiences:
        raise AssertionRejected(f"wrong audience {claims.get('aud')!r}")
    if required_scope not in str(claims.get("scope", "")).split():
        raise AssertionRejected(f"scope {required_scope} not requested")
    _check_times(claims, time.time() if now is None else now, clock_skew)
    return claims


def _verified_parts(assertion: str, public_key: bytes) -> tuple[dict, dict]:
    """Header and claims of a compact JWS whose RS256 signature checks out."""
    try:
        header_part, claims_part, signature_part = assertion.split(".")
        signature = _b64url_decode(signature_part)
        header = json.loads(_b64url_decode(header_part))
        claims = json.loads(_b64url_decode(claims_part))
    except (ValueError, binascii.Error) as err:
        raise AssertionRejected("assertion is not a compact JWT") from err
    verifier = serialization.load_pem_public_key(public_key)
    try:
        verifier.verify(signature, f"{header_part}.{claims_part}".encode("ascii"),
                        padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as err:
        raise AssertionRejected("signature does not verify") from err
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRejected("JWT header and claims must be objects")
    return header, claims


def _check_times(claims: dict, now: float, clock_skew: int) -> None:
    """iat/exp present, not expired, not from the future, lifetime at most an hour."""
    issued_at, expires_at = claims.get("iat"), claims.get("exp")
    if not isinstance(issued_at, int) or not isinstance(expires_at, int):
        raise AssertionRejected("iat and exp must be integers")
    if issued_at > now + clock_skew:
        raise AssertionRejected("assertion issued in the future")
    if expires_at < now - clock_skew:
        raise AssertionRejected("assertion expired")
    if expires_at - issued_at > MAX_ASSERTION_LIFETIME_SECONDS:
        raise AssertionRejected("assertion lifetime exceeds one hour")


def _b64url_decode(part: str) -> bytes:
    """base64url without padding, as JWTs use it."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def token_response(access_token: str, expires_in: int = TOKEN_LIFETIME_SECONDS) -> dict:
    """The JSON Google's token endpoint answers on success."""
    return {"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}


def answer_token_request(content_type: str, body: bytes, public_key: bytes, *, issuer: str,
                         audiences: tuple[str, ...], access_token: str | None = None,
                         now: float | None = None) -> TokenAnswer:
    """The token endpoint's answer to one POST: 200 with a token, or 400 invalid_grant."""
    if content_type.split(";")[0].strip().lower() != FORM_CONTENT_TYPE:
        return _refusal("invalid_request", f"expected {FORM_CONTENT_TYPE}")
    form = urllib.parse.parse_qs(body.decode("ascii", "replace"))
    if form.get("grant_type") != [JWT_BEARER_GRANT_TYPE]:
        return _refusal("unsupported_grant_type", f"grant_type must be {JWT_BEARER_GRANT_TYPE}")
    assertions = form.get("assertion", [])
    if len(assertions) != 1:
        return _refusal("invalid_request", "exactly one assertion is required")
    try:
        verify_assertion(assertions[0], public_key, issuer=issuer, audiences=audiences, now=now)
    except AssertionRejected as err:
        return _refusal("invalid_grant", f"Invalid JWT: {err}")
    issued = access_token or f"ya29.test-{secrets.token_urlsafe(24)}"
    return TokenAnswer(200, token_response(issued))


def _refusal(error: str, description: str) -> TokenAnswer:
    """An OAuth error answer, as Google sends it (HTTP 400)."""
    return TokenAnswer(400, {"error": error, "error_description": description})
