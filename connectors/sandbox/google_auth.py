"""Google's OAuth 2.0 token endpoint for service accounts, as the sandbox imitates it.

`POST /google/token` takes the JWT-bearer grant that google-auth sends
(grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=<signed JWT>) and answers
`{"access_token", "expires_in": 3599, "token_type": "Bearer"}`. The sandbox checks the grant's
shape and claims but not the signature: its keys are throwaway ones made at call time.

Like Google, the APIs also take a service account's self-signed JWT as the bearer token, with no
token exchange (what Google's own client libraries send: google-auth's `jwt.Credentials`, or
service-account credentials with `always_use_jwt_access`): its `aud` is the API's service URL
(e.g. "https://analyticsdata.googleapis.com/"), or, without `aud`, a `scope` claim names a scope
that grants the API. Same checks as the grant: shape and claims, not the signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3599
SANDBOX_CLIENT_EMAIL = "sandbox@sandbox-project.iam.gserviceaccount.com"
# Google refuses a self-signed JWT that lives longer than an hour, and tolerates some clock skew.
MAX_JWT_LIFETIME_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300

ANALYTICS_DATA_API = "analyticsdata.googleapis.com"
SEARCH_CONSOLE_API = "searchconsole.googleapis.com"
# For each Google API the sandbox imitates, the OAuth scopes that grant it (a self-signed JWT
# without `aud` is accepted when its `scope` claim names one of them).
API_SCOPES: dict[str, frozenset[str]] = {
    ANALYTICS_DATA_API: frozenset(
        {
            "https://www.googleapis.com/auth/analytics.readonly",
            "https://www.googleapis.com/auth/analytics",
        }
    ),
    SEARCH_CONSOLE_API: frozenset(
        {
            "https://www.googleapis.com/auth/webmasters.readonly",
            "https://www.googleapis.com/auth/webmasters",
        }
    ),
}


_PROCESS_KEYS: dict[str, dict] = {}
_PROCESS_KEYS_LOCK = threading.Lock()


def shared_service_account_info(token_uri: str) -> dict:
    """The process's one throwaway key for the sandbox at `token_uri` (a copy): the sandbox mode of
    the Google resources uses it for every client, as a real deployment uses one key file, so a
    process makes one token grant, not one per client."""
    with _PROCESS_KEYS_LOCK:
        if token_uri not in _PROCESS_KEYS:
            _PROCESS_KEYS[token_uri] = google_service_account_info(token_uri)
        return dict(_PROCESS_KEYS[token_uri])


def google_service_account_info(token_uri: str) -> dict:
    """A throwaway service-account key (fresh RSA key) whose token_uri points at the sandbox.

    Usable with `google.oauth2.service_account.Credentials.from_service_account_info`.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return {
        "type": "service_account",
        "project_id": "sandbox-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": SANDBOX_CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": (
            "https://www.googleapis.com/robot/v1/metadata/x509/sandbox%40sandbox-project.iam.gserviceaccount.com"
        ),
        "universe_domain": "googleapis.com",
    }


class OAuthError(Exception):
    """An OAuth error answered as `{"error", "error_description"}` with HTTP 400."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def _b64json(part: str) -> dict:
    padded = part + "=" * (-len(part) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _is_service_account(email: object) -> bool:
    # name@project.iam.gserviceaccount.com, or the older number@developer.gserviceaccount.com
    return isinstance(email, str) and "@" in email and email.endswith("gserviceaccount.com")


def self_signed_jwt_grants(token: str, api: str) -> bool:
    """Whether Google would take `token`, a service account's self-signed JWT, for `api`.

    Args:
        token: the bearer token as sent.
        api: the API's service name (ANALYTICS_DATA_API, SEARCH_CONSOLE_API).
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, binascii.Error, UnicodeError):
        return False
    if header.get("alg") != "RS256":
        return False
    issuer = claims.get("iss")
    # A self-signed JWT is the account speaking for itself: issuer and subject are its e-mail.
    if not _is_service_account(issuer) or claims.get("sub", issuer) != issuer:
        return False
    issued, expires = claims.get("iat"), claims.get("exp")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (issued, expires)):
        return False
    now = time.time()
    if not (issued - CLOCK_SKEW_SECONDS <= now < expires + CLOCK_SKEW_SECONDS):
        return False
    if expires - issued > MAX_JWT_LIFETIME_SECONDS:
        return False
    audience = claims.get("aud")
    if audience is not None:
        audiences = audience if isinstance(audience, list) else [audience]
        return any(isinstance(a, str) and a.rstrip("/") == f"https://{api}" for a in audiences)
    scopes = str(claims.get("scope") or "").split()
    return any(scope in API_SCOPES.get(api, ()) for scope in scopes)


class TokenStore:
    """Issues opaque access tokens for JWT-bearer grants and remembers them until they expire."""

    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def grant(self, form: dict[str, list[str]]) -> dict:
        grant_type = (form.get("grant_type") or [""])[0]
        if grant_type != JWT_BEARER_GRANT:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = (form.get("assertion") or [""])[0]
        parts = assertion.split(".")
        if len(parts) != 3 or not all(parts):
            raise OAuthError("invalid_grant", "Invalid JWT: a JWT has three base64url parts.")
        try:
            header, claims = _b64json(parts[0]), _b64json(parts[1])
        except (ValueError, binascii.Error, UnicodeError):
            raise OAuthError(
                "invalid_grant", "Invalid JWT: header or claims are not base64url JSON."
            ) from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "Invalid JWT: the signing algorithm must be RS256.")
        for claim in ("iss", "aud", "exp", "iat"):
            if claim not in claims:
                raise OAuthError("invalid_grant", f"Invalid JWT: missing claim {claim}.")
        if "scope" not in claims and "target_audience" not in claims:
            raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        now = time.time()
        if not isinstance(claims["exp"], (int, float)) or claims["exp"] < now - 300:
            raise OAuthError(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + TOKEN_LIFETIME_SECONDS
        return {"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"}

    def is_valid(self, token: str, api: str = ANALYTICS_DATA_API) -> bool:
        """Whether `token` authorises a call to `api`: an access token issued here and not expired,
        or a self-signed JWT Google would take for that API (see `self_signed_jwt_grants`).

        `api` defaults to GA4's, whose route (in server.py) predates the other Google APIs.
        """
        with self._lock:
            expires = self._tokens.get(token)
        if expires is not None:
            return expires > time.time()
        return self_signed_jwt_grants(token, api)

    def issued(self) -> list[str]:
        """The tokens issued and not yet expired (tests use them to check nothing leaks them)."""
        now = time.time()
        with self._lock:
            return [t for t, exp in self._tokens.items() if exp > now]

    def revoke_all(self) -> None:
        """Forget every issued token (tests use it to force a refresh)."""
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
