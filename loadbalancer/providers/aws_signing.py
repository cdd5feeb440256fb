"""SigV4 signing of Bedrock requests with botocore's own signer, and the credentials it uses.

The only module that imports botocore, and it is imported only when a `bedrock` provider
signs with AWS credentials: a deployment without one never loads botocore. No botocore
*client* is ever made (that would load 28 MB of service models and retry on its own); only
`SigV4Auth` and the credential chain are used. botocore's errors become
`UpstreamCredentialsError` here, and only here.
"""

from __future__ import annotations

import threading
from typing import Mapping

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from loadbalancer.errors import UpstreamCredentialsError

# The signing name is "bedrock" although the host is bedrock-runtime.REGION.amazonaws.com.
SIGNING_NAME = "bedrock"
# Headers the HTTP client may add or rewrite after signing; a signed one would then mismatch.
UNSIGNED_HEADERS = frozenset({"connection", "user-agent", "accept-encoding", "content-length",
                              "transfer-encoding", "expect", "authorization"})


class AwsSigner:
    """Signs requests for one provider: explicit keys, a named profile, or botocore's chain."""

    def __init__(self, provider: str, region: str, *, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 profile: str | None = None) -> None:
        self._provider = provider
        self._region = region
        self._profile = profile
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._last_used: tuple[str, ...] = ()  # the secret key and token last signed with
        if access_key_id is not None and secret_access_key is not None:
            self._credentials = Credentials(access_key_id, secret_access_key, session_token or None)
        # Resolved now, once per process, so the secrets are known to secret_values() from the
        # start; a chain that finds nothing yet is asked again when a request needs it.
        try:
            self._frozen()
        except UpstreamCredentialsError:
            pass

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> dict[str, str]:
        """The headers plus X-Amz-Date, Authorization (and the session token), signed now.

        :raises UpstreamCredentialsError: no credentials could be found or refreshed.
        """
        frozen = self._frozen()
        to_sign = {name: value for name, value in headers.items() if name.lower() not in UNSIGNED_HEADERS}
        request = AWSRequest(method=method, url=url, headers=to_sign, data=body or b"")
        SigV4Auth(Credentials(frozen.access_key, frozen.secret_key, frozen.token),
                  SIGNING_NAME, self._region).add_auth(request)
        return {**headers, **dict(request.headers.items())}

    def secret_values(self) -> tuple[str, ...]:
        """The secret key and session token last signed with (refreshed ones replace them)."""
        return self._last_used

    def _frozen(self):
        """One consistent (key, secret, token) triple; refreshable credentials refresh here."""
        try:
            frozen = self._resolved().get_frozen_credentials()
        except (BotoCoreError, ClientError) as err:
            raise UpstreamCredentialsError(
                self._provider, f"AWS credentials could not be refreshed ({type(err).__name__})") from err
        self._last_used = tuple(value for value in (frozen.secret_key, frozen.token) if value)
        return frozen

    def _resolved(self) -> Credentials:
        """The credentials, looked up through botocore's chain the first time."""
        if self._credentials is not None:
            return self._credentials
        with self._lock:
            if self._credentials is None:
                self._credentials = self._look_up()
            return self._credentials

    def _look_up(self) -> Credentials:
        """botocore's chain: environment, shared files (the profile), SSO, container, instance."""
        try:
            credentials = botocore.session.Session(profile=self._profile).get_credentials()
        except (BotoCoreError, ClientError) as err:
            raise UpstreamCredentialsError(
                self._provider, f"AWS credentials could not be loaded ({type(err).__name__})") from err
        if credentials is None:
            raise UpstreamCredentialsError(
                self._provider, "no AWS credentials found (environment, profile, container or instance role)")
        return credentials
