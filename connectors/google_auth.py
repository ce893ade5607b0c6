"""Google service-account authorisation shared by the Google connectors (GA4, Search Console).

A connector hands a service-account key (parsed JSON) and one OAuth scope to
`authorized_session`; google-auth signs the JWT-bearer grant, and its `AuthorizedSession` (a
`requests` session) fetches a token before the first call and whenever it has expired, and
refreshes it and sends again on a 401.
Keys whose token endpoint is not Google's (the sandbox, a proxy) get credentials that skip
google-auth's extra lookups at Google.

One token per key and scope in a process: every client built from the same key (GA4's two
reports, their fetch threads) shares one credentials object, so the process makes one token grant
and the next only when that token expires (google-auth refreshes it then) or an API answers 401.
Threads that find no valid token at once wait for the one grant in flight rather than each
asking for its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from connectors.errors import ConnectorConfigError
from connectors.http import mount_pool, pool_size_from_env
from connectors.secrets import register_service_account_secrets


class SharedCredentials(service_account.Credentials):
    """Service-account credentials shared by the threads and clients of a process: one token grant
    at a time; a thread that waited for another's grant uses its token instead of asking again."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._grant_lock = threading.Lock()

    def refresh(self, request) -> None:
        stale = self.token  # the token this thread found missing, expired or refused (a 401)
        with self._grant_lock:
            if self.token != stale and self.valid:
                return  # another thread got a new one meanwhile
            super().refresh(request)


class PrivateEndpointCredentials(SharedCredentials):
    """Service-account credentials for a token endpoint that is not Google's (the sandbox, a proxy).

    Recent google-auth looks up the account's Regional Access Boundary at
    iamcredentials.googleapis.com after each token refresh; against a non-Google token endpoint
    that call can only fail (and would leave the machine), so it is skipped.
    """

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


def is_google_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


def checked_key_source(
    credentials_file: str | Path | None,
    credentials_info: Mapping[str, Any] | None,
    access_hint: str,
    error: Callable[[str], ConnectorConfigError] = ConnectorConfigError,
) -> Path | None:
    """Check that exactly one usable key source is given, before any request.

    Args:
        credentials_file: GOOGLE_APPLICATION_CREDENTIALS, or None when `credentials_info` is given.
        credentials_info: a parsed service-account key (the sandbox's), or None.
        access_hint: what the account needs access to, for the error message.
        error: the config error class of the calling connector.

    Returns:
        The key file's path (expanded), or None when the key was given as `credentials_info`.
    """
    if credentials_file is not None and credentials_info is not None:
        raise error("Give GOOGLE_APPLICATION_CREDENTIALS (credentials_file) or credentials_info, not both.")
    if credentials_info is not None:
        if not isinstance(credentials_info, Mapping) or credentials_info.get("type") != "service_account":
            raise error(
                "credentials_info must be a service-account key "
                '(a JSON object with "type": "service_account").'
            )
        return None
    if credentials_file is None or not str(credentials_file).strip():
        raise error(
            "GOOGLE_APPLICATION_CREDENTIALS is not set: point it to the JSON key file of a service "
            f"account, and give that account {access_hint}."
        )
    path = Path(credentials_file).expanduser()
    if not path.is_file():
        raise error(
            f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} does not exist or is not a file: point it "
            "to the service account's JSON key file (IAM & Admin > Service accounts > Keys in "
            "Google Cloud)."
        )
    return path


def read_service_account_file(
    path: str | Path,
    access_hint: str,
    error: Callable[[str], ConnectorConfigError] = ConnectorConfigError,
) -> dict:
    """The parsed service-account key at `path`.

    Args:
        path: GOOGLE_APPLICATION_CREDENTIALS.
        access_hint: what the account needs access to, for the error message
            (e.g. "Restricted access to the Search Console property").
        error: the config error class of the calling connector.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise error(
            f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} is not a readable JSON key file; "
            "download a service-account key (JSON) from IAM & Admin > Service accounts > Keys."
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else None
        raise error(
            f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} holds credentials of type {kind!r}, not a "
            f"service-account key; create a service account key (JSON) and give the account {access_hint}."
        )
    register_service_account_secrets(info)
    return info


# (key id, account, token endpoint, scope) -> the credentials every client of that key shares
_SHARED: dict[tuple[str, str, str, str], SharedCredentials] = {}
_SHARED_LOCK = threading.Lock()


def shared_credentials(info: Mapping[str, Any], scope: str) -> SharedCredentials:
    """The process's credentials for this key and scope, made on first use (see the module's
    docstring). Raises ValueError or KeyError when the key is incomplete or malformed."""
    token_uri = str(info.get("token_uri", ""))
    key = (str(info.get("private_key_id", "")), str(info.get("client_email", "")), token_uri, scope)
    with _SHARED_LOCK:
        credentials = _SHARED.get(key)
        if credentials is None or not key[0]:
            factory = SharedCredentials if is_google_host(token_uri) else PrivateEndpointCredentials
            credentials = factory.from_service_account_info(dict(info), scopes=[scope])
            if key[0]:  # a key without an id is not told apart from another: never shared
                _SHARED[key] = credentials
        return credentials


def authorized_session(
    info: Mapping[str, Any],
    scope: str,
    timeout_seconds: float,
    user_agent: str,
    error: Callable[[str], ConnectorConfigError] = ConnectorConfigError,
) -> AuthorizedSession:
    """A `requests` session that authorises every request with a token for `scope`: google-auth's
    AuthorizedSession (a 401 refreshes the token and sends again, twice at most), with a pool of
    FETCH_CONCURRENCY connections. The token is the process's one for this key and scope
    (`shared_credentials`).

    Raises `error` (a config error) when the key is incomplete or malformed.
    """
    try:
        credentials = shared_credentials(info, scope)
    except (ValueError, KeyError) as exc:
        raise error(
            "GOOGLE_APPLICATION_CREDENTIALS: the service-account key is incomplete or malformed "
            f"({type(exc).__name__}); download a new JSON key for the service account."
        ) from None
    session = AuthorizedSession(credentials, refresh_timeout=timeout_seconds)
    mount_pool(session, pool_size_from_env())
    session.headers["User-Agent"] = user_agent
    return session
