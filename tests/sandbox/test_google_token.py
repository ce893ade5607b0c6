"""The sandbox's Google OAuth token endpoint accepts google-auth's JWT-bearer grant, and only that."""

from __future__ import annotations

import base64
import json
import time

import google.auth.transport.requests
import requests
from google.oauth2 import service_account

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _assertion(**claims) -> str:
    now = int(time.time())
    payload = {
        "iss": "sandbox@sandbox-project.iam.gserviceaccount.com",
        "aud": "x",
        "iat": now,
        "exp": now + 3600,
        "scope": "https://www.googleapis.com/auth/analytics.readonly",
        **claims,
    }
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(payload)}.c2lnbmF0dXJl"


def test_google_auth_service_account_gets_a_bearer_token(sandbox, service_account_info):
    before = len(sandbox.requests_to("/google/token"))
    credentials = service_account.Credentials.from_service_account_info(
        service_account_info, scopes=["https://www.googleapis.com/auth/analytics.readonly"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.valid and credentials.token.startswith("ya29.")
    assert credentials.token in sandbox.tokens.issued()
    assert len(sandbox.requests_to("/google/token")) == before + 1
    assert service_account_info["client_email"] == "sandbox@sandbox-project.iam.gserviceaccount.com"
    assert service_account_info["token_uri"] == sandbox.google_token_uri


def test_token_response_has_googles_fields(sandbox):
    response = requests.post(
        sandbox.google_token_uri, data={"grant_type": JWT_BEARER, "assertion": _assertion()}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (3599, "Bearer")
    again = requests.post(
        sandbox.google_token_uri, data={"grant_type": JWT_BEARER, "assertion": _assertion()}
    )
    assert again.json()["access_token"] != body["access_token"]  # random, opaque


def test_wrong_grants_are_refused_with_oauth_errors(sandbox):
    cases = [
        ({"grant_type": "client_credentials", "assertion": _assertion()}, "unsupported_grant_type"),
        ({"grant_type": JWT_BEARER, "assertion": "not-a-jwt"}, "invalid_grant"),
        ({"grant_type": JWT_BEARER, "assertion": "a.b.c"}, "invalid_grant"),
        ({"grant_type": JWT_BEARER, "assertion": _assertion(exp=int(time.time()) - 3600)}, "invalid_grant"),
        ({"grant_type": JWT_BEARER}, "invalid_grant"),
    ]
    issued = len(sandbox.tokens.issued())
    for form, error in cases:
        response = requests.post(sandbox.google_token_uri, data=form)
        assert response.status_code == 400
        assert response.json()["error"] == error, form
        assert response.json()["error_description"]
    assert len(sandbox.tokens.issued()) == issued


def test_ensure_sandbox_is_one_process_wide_server(monkeypatch):
    from connectors.sandbox import ensure_sandbox

    monkeypatch.setenv("SANDBOX_SCALE", "small")
    first = ensure_sandbox()
    assert ensure_sandbox() is first and first.running
    assert first.scale in ("small", "demo", "large")  # the first caller in this process chose it
    assert requests.get(first.base_url + "/healthz", timeout=10).json() == {"status": "ok"}
