"""Google access tokens for Vertex AI: google-auth's credentials, one cached token per process.

The only module that imports google-auth, and it is imported only when a `vertex` provider
is configured. The credentials come from a key file (`credentials_file`: a service account's key, or
gcloud's authorized-user file) or Application Default Credentials. The token is kept and
refreshed by the first request that finds it about to expire (google-auth counts it expired
3 min 45 s early), under a lock, so concurrent requests (threads or greenlets) wait for that
one refresh instead of each fetching a token. google-auth's errors become
`UpstreamCredentialsError` here, and only here.
"""

from __future__ import annotations

import functools
import json
import threading

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import requests
from google.oauth2 import service_account

from loadbalancer.errors import UpstreamCredentialsError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_READ_TIMEOUT = 30.0  # google-auth's own default is 120 s
ERROR_DETAIL_LENGTH = 200
# Fields of a credentials file that are secrets (service account, authorized user).
_SECRET_FIELDS = ("private_key", "refresh_token", "client_secret")
_GOOGLE_AUTH_ERRORS = (google.auth.exceptions.GoogleAuthError, ValueError, OSError)


class GoogleTokenSource:
    """The access token of one provider's Google credentials, refreshed before it expires."""

    def __init__(self, provider: str, credentials_file: str | None, connect_timeout: float) -> None:
        self._provider = provider
        self._credentials_file = credentials_file
        self._lock = threading.Lock()
        self._file_secrets: tuple[str, ...] = ()
        self._credentials = None
        session = requests.Session()
        session.trust_env = False  # like the provider client: no proxies from the environment
        self._request = functools.partial(google.auth.transport.requests.Request(session),
                                          timeout=(connect_timeout, TOKEN_READ_TIMEOUT))
        if credentials_file is not None:
            # A key file is read now, so its private key is known to secret_values() from the
            # start; ADC may probe the metadata server, so it waits for the first request.
            try:
                self._loaded()
            except UpstreamCredentialsError:
                pass

    def access_token(self) -> str:
        """A token valid for a few more minutes at least.

        :raises UpstreamCredentialsError: the credentials cannot be loaded or refreshed.
        """
        credentials = self._credentials
        if credentials is not None and credentials.valid:
            return credentials.token
        with self._lock:
            credentials = self._loaded()
            if not credentials.valid:  # another request may have refreshed it meanwhile
                self._refresh(credentials)
            return credentials.token

    def secret_values(self) -> tuple[str, ...]:
        """The key file's secrets and the current access token."""
        token = getattr(self._credentials, "token", None)
        return tuple(value for value in (*self._file_secrets, token) if value)

    def _refresh(self, credentials) -> None:
        try:
            credentials.refresh(self._request)
        except _GOOGLE_AUTH_ERRORS as err:
            raise UpstreamCredentialsError(
                self._provider, f"Google token refresh failed: {_describe(err)}") from err

    def _loaded(self):
        """The credentials, loaded the first time (under the lock when called from access_token)."""
        if self._credentials is None:
            try:
                self._credentials = self._load()
            except _GOOGLE_AUTH_ERRORS as err:
                raise UpstreamCredentialsError(
                    self._provider, f"Google credentials could not be loaded: {_describe(err)}") from err
        return self._credentials

    def _load(self):
        if self._credentials_file is None:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE], request=self._request)
            return credentials
        with open(self._credentials_file, encoding="utf-8") as file:
            info = json.load(file)
        if not isinstance(info, dict):
            raise ValueError("the credentials file is not a JSON object")
        self._file_secrets = tuple(str(info[name]) for name in _SECRET_FIELDS if info.get(name))
        # Only the two kinds a key file for this service should be: a file of another kind
        # (external account, impersonation) could make google-auth run commands or fetch URLs.
        if info.get("type") == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        if info.get("type") == "authorized_user":
            return google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        raise ValueError(f"credentials file of type {info.get('type')!r}: expected service_account or authorized_user")


def _describe(err: Exception) -> str:
    """The error's kind and first words: google-auth's messages carry no secrets, but can be long."""
    detail = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    return f"{type(err).__name__}: {detail[:ERROR_DETAIL_LENGTH]}"
