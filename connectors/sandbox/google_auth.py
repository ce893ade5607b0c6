"""Google's OAuth 2.0 token endpoint for service accounts, as the sandbox imitates it.

`POST /google/token` takes the JWT-bearer grant that google-auth sends
(grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=<signed JWT>) and answers
`{"access_token", "expires_in": 3599, "token_type": "Bearer"}`. The sandbox checks the grant's
shape and claims but not the signature: its keys are throwaway ones made at call time.
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

    def is_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > time.time()

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
