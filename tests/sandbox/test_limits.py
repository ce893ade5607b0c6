"""The sandbox's published limits (connectors/sandbox/limits.py): past each, the API's own throttle
answer; within it, none; and the configured latency, all on a time-scaled clock."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import requests

from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, SandboxServer, google_service_account_info
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY
from connectors.sandbox.limits import SandboxLimits

TODAY = date(2026, 11, 21)


def _server(**limits) -> SandboxServer:
    return SandboxServer(seed=42, scale="small", today=TODAY, limits=SandboxLimits(**limits))


def test_limits_are_off_unless_asked():
    assert SandboxLimits.from_env({}).enabled is False
    on = SandboxLimits.from_env(
        {"SANDBOX_RATE_LIMITS": "on", "SANDBOX_TIME_SCALE": "30", "SANDBOX_LATENCY_MS": "150"}
    )
    assert (on.enabled, on.time_scale, on.latency_ms) == (True, 30.0, 150.0)
    with pytest.raises(ValueError, match="SANDBOX_TIME_SCALE"):
        SandboxLimits(time_scale=0)


def test_slack_tier2_answers_the_21st_call_of_a_minute_with_its_ratelimited_429():
    with _server(enabled=False, time_scale=2) as sandbox, requests.Session() as session:
        session.headers["Authorization"] = "Bearer xoxb-sandbox-token"
        session.get(f"{sandbox.base_url}/slack/users.list")  # data generated on the first call
        sandbox.limits.enabled = True
        answers = [session.get(f"{sandbox.base_url}/slack/users.list") for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [200] * 20
    last = answers[20]
    assert last.status_code == 429 and last.json() == {"ok": False, "error": "ratelimited"}
    # a minute on a 2x clock: at most 30 s to wait
    assert 0 < float(last.headers["Retry-After"]) <= 30


def test_discourse_answers_the_61st_call_of_a_minute_with_its_rate_limit_error():
    with _server(enabled=False, time_scale=2) as sandbox, requests.Session() as session:
        session.headers.update({"Api-Key": SANDBOX_DISCOURSE_API_KEY, "Api-Username": "system"})
        url = f"{sandbox.base_url}/discourse/categories.json"
        session.get(url)  # the forum's data is generated on the first call: not part of the minute
        sandbox.limits.enabled = True
        statuses = [session.get(url).status_code for _ in range(60)]
        refused = session.get(url)
    assert statuses == [200] * 60
    body = refused.json()
    assert refused.status_code == 429 and body["error_type"] == "rate_limit"
    assert 0 < body["extras"]["wait_seconds"] <= 30 and "Retry-After" in refused.headers


def test_discord_answers_past_50_a_second_with_a_global_429():
    with _server(enabled=True, time_scale=1) as sandbox, requests.Session() as session:
        session.headers["Authorization"] = "Bot whatever"
        answers = [session.get(f"{sandbox.base_url}/discord/channels/1/messages") for _ in range(51)]
    assert 429 not in [a.status_code for a in answers[:50]]
    assert answers[50].status_code == 429
    assert answers[50].json()["global"] is True and answers[50].headers["X-RateLimit-Global"] == "true"


def test_ga4_refuses_an_eleventh_concurrent_request_with_resource_exhausted():
    # each request holds its slot for 2 s: the 12 overlap even on a busy machine
    with _server(enabled=True, time_scale=1, latency_ms=2000) as sandbox:
        token = requests.post(
            sandbox.google_token_uri,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _assertion(sandbox),
            },
            timeout=10,
        ).json()["access_token"]
        url = f"{sandbox.ga4_base_url}/v1beta/properties/{SANDBOX_GA4_PROPERTY_ID}:runReport"
        body = {
            "dateRanges": [{"startDate": "2026-11-01", "endDate": "2026-11-01"}],
            "metrics": [{"name": "sessions"}],
        }
        statuses: list[int] = []
        bodies: list[dict] = []

        start = threading.Barrier(12)

        def call() -> None:
            start.wait()
            answer = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            statuses.append(answer.status_code)
            bodies.append(answer.json())

        workers = [threading.Thread(target=call) for _ in range(12)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(statuses) == [200] * 10 + [429] * 2
    refused = [b for b in bodies if "error" in b]
    assert all(b["error"]["status"] == "RESOURCE_EXHAUSTED" for b in refused)


def _assertion(sandbox) -> str:
    from google.auth import crypt, jwt

    info = google_service_account_info(sandbox.google_token_uri)
    now = int(time.time())
    payload = {
        "iss": info["client_email"],
        "scope": "https://www.googleapis.com/auth/analytics.readonly",
        "aud": sandbox.google_token_uri,
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(crypt.RSASigner.from_service_account_info(info), payload).decode()


def test_latency_is_added_on_the_scaled_clock():
    with _server(latency_ms=3000, time_scale=10) as sandbox:  # 3 s of API time: 0.3 s here
        started = time.monotonic()
        requests.get(f"{sandbox.base_url}/slack/users.list", timeout=10)
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.5
