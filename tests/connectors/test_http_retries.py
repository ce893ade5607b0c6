"""The shared retry loop (connectors/http.py) with a scripted attempt function: no HTTP needed."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest

from connectors.errors import ConnectorConfigError
from connectors.http import (
    ApiError,
    RetryPolicy,
    TransientError,
    call_with_retries,
    parse_retry_after,
    redact,
    send,
)


class Script:
    """An attempt function that fails with the given errors, then returns "ok"."""

    def __init__(self, *failures: Exception):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _run(script, policy, waits=None, **kwargs):
    waits = [] if waits is None else waits
    return call_with_retries(
        script, source="test", endpoint="https://api.example/v1/thing", policy=policy, sleep=waits.append
    )


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.backoff(10_000) == 10.0  # no overflow on absurd retry numbers


def test_jitter_stays_within_its_fraction_and_under_the_cap():
    policy = RetryPolicy(base_delay=4.0, max_delay=5.0, jitter=0.25)
    firsts = [policy.backoff(1) for _ in range(500)]
    assert all(3.0 <= d <= 5.0 for d in firsts) and len(set(firsts)) > 100
    assert all(policy.backoff(3) <= 5.0 for _ in range(200))  # jitter never lifts a wait over the cap


def test_transient_failures_are_retried_with_backoff_waits():
    script = Script(TransientError(503, "busy"), TransientError(None, "reset"), TransientError(500, "oops"))
    waits: list[float] = []
    assert _run(script, RetryPolicy(base_delay=0.5, jitter=0.0), waits) == "ok"
    assert script.calls == 4 and waits == [0.5, 1.0, 2.0]


def test_a_wait_hint_replaces_the_backoff_but_is_capped_by_max_delay():
    waits: list[float] = []
    script = Script(TransientError(429, "slow down", wait=7.0), TransientError(429, "again", wait=500.0))
    _run(script, RetryPolicy(base_delay=0.1, max_delay=30.0, jitter=0.0), waits)
    assert waits == [7.0, 30.0]


def test_exhausted_attempts_raise_api_error_with_the_last_failure():
    script = Script(*[TransientError(503, f"unavailable {i}") for i in range(10)])
    with pytest.raises(ApiError) as caught:
        _run(script, RetryPolicy(max_attempts=3, base_delay=0.0, jitter=0.0))
    error = caught.value
    assert script.calls == 3
    assert (error.source, error.status, error.attempts) == ("test", 503, 3)
    assert (
        str(error) == "test: https://api.example/v1/thing failed after 3 attempts (HTTP 503): unavailable 2"
    )


def test_a_wait_past_the_time_budget_is_not_taken():
    waits: list[float] = []
    script = Script(TransientError(429, "quota", wait=2.0), TransientError(429, "quota", wait=50.0))
    with pytest.raises(ApiError) as caught:
        _run(script, RetryPolicy(max_total_seconds=20.0, max_delay=100.0), waits)
    assert waits == [2.0] and script.calls == 2
    assert "retry budget of 20s" in str(caught.value) and caught.value.status == 429


def test_the_budget_counts_real_time_spent_in_attempts():
    def slow_failure():
        time.sleep(0.15)
        raise TransientError(None, "no answer within 0.15s (timeout)")

    waits: list[float] = []
    with pytest.raises(ApiError) as caught:
        call_with_retries(
            slow_failure,
            source="test",
            endpoint="/x",
            policy=RetryPolicy(max_attempts=50, base_delay=0.01, jitter=0.0, max_total_seconds=0.4),
            sleep=waits.append,
        )
    assert caught.value.status is None and "no HTTP answer" in str(caught.value)
    assert 2 <= caught.value.attempts <= 3


def test_permanent_errors_pass_through_at_once():
    script = Script(ApiError("test", "/x", 404, "not found"))
    with pytest.raises(ApiError) as caught:
        _run(script, RetryPolicy())
    assert script.calls == 1 and caught.value.status == 404 and caught.value.attempts == 1


def test_retries_are_logged_without_secrets(caplog):
    caplog.set_level(logging.WARNING, logger="connectors.http")
    script = Script(TransientError(500, "saw Bearer abc.def-123 in access_token=sekrit"))
    _run(script, RetryPolicy(base_delay=0.0))
    assert "retry 1/5" in caplog.text and "HTTP 500" in caplog.text
    assert "abc.def-123" not in caplog.text and "sekrit" not in caplog.text


# --- Retry-After -------------------------------------------------------------------------------------


def test_retry_after_seconds():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad) is None


def test_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= parse_retry_after(future) <= 31
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert parse_retry_after(past) == 0.0
    unknown_zone = email.utils.formatdate(time.time() + 30).replace("+0000", "-0000")
    assert 27 <= parse_retry_after(unknown_zone) <= 31  # -0000 is UTC, not local time


# --- settings -----------------------------------------------------------------------------------------


def test_from_env_reads_the_shared_settings():
    policy = RetryPolicy.from_env({"HTTP_MAX_ATTEMPTS": "3", "HTTP_MAX_RETRY_SECONDS": "12.5"})
    assert (policy.max_attempts, policy.max_total_seconds) == (3, 12.5)
    assert RetryPolicy.from_env({}) == RetryPolicy()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HTTP_MAX_ATTEMPTS": "many"}, "HTTP_MAX_ATTEMPTS='many' is not a number"),
        ({"HTTP_MAX_ATTEMPTS": "0"}, "HTTP_MAX_ATTEMPTS='0' must be at least 1"),
        ({"HTTP_MAX_RETRY_SECONDS": "0.5"}, "HTTP_MAX_RETRY_SECONDS='0.5' must be at least 1"),
        ({"HTTP_MAX_RETRY_SECONDS": "x"}, "HTTP_MAX_RETRY_SECONDS='x' is not a number"),
    ],
)
def test_from_env_names_the_bad_setting(env, expected):
    with pytest.raises(ConnectorConfigError) as caught:
        RetryPolicy.from_env(env)
    assert expected in str(caught.value)


def test_a_policy_rejects_nonsense():
    with pytest.raises(ConnectorConfigError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConnectorConfigError, match="jitter"):
        RetryPolicy(jitter=2.0)


# --- redact -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer ya29.a0AfH6SMBx-secret_value", "a0AfH6SMBx-secret_value"),
        ("bearer abcDEF123.xyz", "abcDEF123.xyz"),
        ("token xoxb-1234-5678-AbCdEfGh", "xoxb-1234-5678-AbCdEfGh"),
        ("refresh xoxe-1-abcdef", "xoxe-1-abcdef"),
        ("GET /me?access_token=EAAGm0PX4ZCpsBAabc&fields=id", "EAAGm0PX4ZCpsBAabc"),
        ("user token EAAGm0PX4ZCpsBAxyz expired", "EAAGm0PX4ZCpsBAxyz"),
        ('{"access_token": "s3cr3t", "expires_in": 3599}', "s3cr3t"),
        ("api_key=k-123&x=1", "k-123"),
        ("Bot MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.Gabcde.xyz", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQIBADANBg"),
    ],
)
def test_redact_removes_tokens(text, secret):
    assert secret not in redact(text)
    assert "redacted" in redact(text)


def test_redact_keeps_ordinary_words():
    text = "the bot is not in channel C123; monkey=3; token count 5"
    assert redact(text) == text


def test_api_errors_redact_message_and_endpoint():
    error = ApiError("meta", "https://graph/act_1/insights?access_token=EAAsecret", 400, "bad EAAsecret2")
    assert "EAAsecret" not in str(error) and "EAAsecret2" not in error.message


# --- send() and json_body() against the sandbox's wire faults -----------------------------------------


def _get(sandbox, timeout: float = 5.0):
    from connectors.http import ApiSession

    with ApiSession(pool_size=1) as session:
        return send(session, "GET", f"{sandbox.base_url}/healthz", timeout=timeout)


def test_a_dropped_connection_is_transient(sandbox):
    sandbox.inject_fault("/healthz", 200, kind="drop")
    with pytest.raises(TransientError) as caught:
        _get(sandbox)
    assert caught.value.status is None and "connection failed" in caught.value.message
    assert _get(sandbox).json() == {"status": "ok"}  # the fault was used up


def test_a_truncated_body_is_transient(sandbox):
    sandbox.inject_fault("/healthz", 200, kind="truncate")
    with pytest.raises(TransientError) as caught:
        _get(sandbox)
    assert caught.value.status is None


def test_a_slow_answer_past_the_timeout_is_transient(sandbox):
    sandbox.inject_fault("/healthz", 200, kind="slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        _get(sandbox, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert "timeout" in caught.value.message


def test_a_transformed_body_and_after(sandbox):
    from connectors.http import json_body

    sandbox.inject_fault("/healthz", 200, kind="transform", transform=lambda p: {**p, "extra": 1}, after=1)
    assert json_body(_get(sandbox)) == {"status": "ok"}  # the first passes
    assert json_body(_get(sandbox)) == {"status": "ok", "extra": 1}


def test_a_garbled_200_body_is_transient(sandbox):
    from connectors.http import json_body

    sandbox.inject_fault("/healthz", 200, body='{"status": "o')
    with pytest.raises(TransientError) as caught:
        json_body(_get(sandbox))
    assert caught.value.status == 200 and "truncated or malformed" in caught.value.message


def test_retryable_statuses_carry_the_retry_after_hint(sandbox):
    from connectors.http import raise_for_transient_status

    sandbox.inject_fault("/healthz", 429, headers={"Retry-After": "2"})
    response = _get(sandbox)
    with pytest.raises(TransientError) as caught:
        raise_for_transient_status(response, "throttled")
    assert (caught.value.status, caught.value.wait) == (429, 2.0)
    raise_for_transient_status(_get(sandbox), "fine")  # a 200 passes
