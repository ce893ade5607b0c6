"""The GA4 connector survives every fault the sandbox can inject, or fails clearly.

Transient faults (429 + Retry-After, 5xx, a dropped connection, a truncated or garbled body, a
response slower than the timeout) are retried and the day loads; permanent ones (4xx, a changed
response shape) fail at once with a message naming the property, endpoint, status and field.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import pyarrow as pa
import pytest

from connectors.ga4 import SESSIONS_SCHEMA, GA4Error
from connectors.http import ApiError, RetryPolicy

DAY = date(2026, 2, 4)  # ~300 sessions rows at small scale
RUN_REPORT = ":runReport"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=2.0, max_total_seconds=10.0, jitter=0.0)


def _statuses(sandbox, since: int) -> list[int]:
    return [r.status for r in list(sandbox.requests_to(RUN_REPORT))[since:]]


def _load(client) -> pa.Table:
    return pa.Table.from_batches([p.batch for p in client.sessions(DAY)], schema=SESSIONS_SCHEMA)


@pytest.fixture
def expected_rows(make_client) -> int:
    return _load(make_client()).num_rows


# --- transient faults: retried and loaded -------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_and_loaded(sandbox, make_client, expected_rows):
    client = make_client(retry_policy=RetryPolicy(base_delay=0.01, jitter=0.0))
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    table = _load(client)
    elapsed = time.monotonic() - started
    assert table.num_rows == expected_rows
    assert _statuses(sandbox, seen) == [429, 200]
    assert elapsed >= 1.0  # the API's hint, not the 0.01 s backoff


def test_500_then_503_are_retried_and_loaded(sandbox, make_client, expected_rows):
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 500)
    sandbox.inject_fault(RUN_REPORT, 503)
    assert _load(make_client(retry_policy=FAST)).num_rows == expected_rows
    assert _statuses(sandbox, seen) == [500, 503, 200]


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_a_cut_connection_is_retried_and_loaded(sandbox, make_client, expected_rows, kind):
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 200, kind=kind)
    assert _load(make_client(retry_policy=FAST)).num_rows == expected_rows
    assert len(_statuses(sandbox, seen)) == 2


def test_a_garbled_json_body_is_retried_and_loaded(sandbox, make_client, expected_rows):
    sandbox.inject_fault(RUN_REPORT, 200, body='{"dimensionHeaders": [{"name": "date"}], "rows": [')
    assert _load(make_client(retry_policy=FAST)).num_rows == expected_rows


def test_a_response_slower_than_the_timeout_is_retried_and_loaded(sandbox, make_client, expected_rows):
    client = make_client(timeout_seconds=0.5, retry_policy=FAST)
    list(client.sessions(DAY))  # the token first, so the slow fault meets runReport
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 200, kind="slow", delay=2.0)
    started = time.monotonic()
    assert _load(client).num_rows == expected_rows
    assert time.monotonic() - started < 2.0  # it gave up on the slow answer, not waited for it
    assert len(_statuses(sandbox, seen)) >= 1


def test_a_401_on_a_later_page_refreshes_the_token_and_loads(sandbox, make_client, expected_rows):
    client = make_client(page_size=100, retry_policy=FAST)
    list(client.sessions(DAY))
    tokens_before = len(sandbox.requests_to("/google/token"))
    sandbox.inject_fault(RUN_REPORT, 401, after=1)
    assert _load(client).num_rows == expected_rows
    assert len(sandbox.requests_to("/google/token")) == tokens_before + 1


# --- failures for good ----------------------------------------------------------------------------------


def test_exhausted_retries_name_property_endpoint_status_and_message(sandbox, make_client):
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, jitter=0.0, max_total_seconds=10.0)
    client = make_client(retry_policy=policy)
    list(client.sessions(DAY))
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 503, times=None)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    error = caught.value
    assert isinstance(error, ApiError) and error.source == "ga4"
    assert (error.status, error.google_status, error.attempts) == (503, "UNAVAILABLE", 3)
    assert len(_statuses(sandbox, seen)) == 3
    text = str(error)
    for part in (
        "property 412345678",
        client.endpoint,
        "HTTP 503",
        "after 3 attempts",
        "currently unavailable",
    ):
        assert part in text


def test_the_retry_budget_bounds_the_total_time(sandbox, make_client):
    policy = RetryPolicy(max_attempts=100, base_delay=0.2, jitter=0.0, max_total_seconds=1.0)
    client = make_client(retry_policy=policy)
    list(client.sessions(DAY))
    sandbox.inject_fault(RUN_REPORT, 500, times=None)
    started = time.monotonic()
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    assert time.monotonic() - started <= 1.0 + 0.5  # the budget plus one fast attempt
    assert caught.value.attempts < 100 and "retry budget of 1s" in str(caught.value)
    assert caught.value.status == 500


@pytest.mark.parametrize("status", [400, 403, 404])
def test_permanent_errors_fail_at_once(sandbox, make_client, status):
    client = make_client(retry_policy=FAST)
    list(client.sessions(DAY))
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, status, times=None)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    assert caught.value.status == status and caught.value.attempts == 1
    assert _statuses(sandbox, seen) == [status]


# --- the response shape -----------------------------------------------------------------------------------


def _rename_row_field(payload):
    for row in payload.get("rows", []):
        row["metricValuez"] = row.pop("metricValues")
    return payload


def _drop_dimension_header(payload):
    if "dimensionHeaders" in payload:
        del payload["dimensionHeaders"][2]
    return payload


def _drop_rows_key(payload):
    payload.pop("rows", None)
    return payload


def _row_count_as_text(payload):
    if "rowCount" in payload:
        payload["rowCount"] = "about three hundred"
    return payload


def _drop_value(payload):
    for row in payload.get("rows", []):
        row["dimensionValues"][1] = {"stringValue": row["dimensionValues"][1]["value"]}
    return payload


@pytest.mark.parametrize(
    ("transform", "named"),
    [
        (_rename_row_field, "rows[].metricValues"),
        (_drop_dimension_header, "missing sessionMedium"),
        (_drop_rows_key, "required field rows"),
        (_row_count_as_text, "rowCount"),
        (_drop_value, "rows[].dimensionValues[].value"),
    ],
)
def test_a_changed_response_fails_naming_the_field(sandbox, make_client, transform, named):
    client = make_client(retry_policy=FAST)
    list(client.sessions(DAY))
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 200, kind="transform", transform=transform)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    text = str(caught.value)
    assert "the API response changed" in text and named in text
    assert "property 412345678" in text
    assert len(_statuses(sandbox, seen)) == 1  # not retried: the next answer would be the same


def _add_fields(payload):
    if "rows" in payload:
        payload["samplingMetadatas"] = [{"samplesReadCount": "1"}]
        for row in payload["rows"]:
            row["rowLabel"] = "x"
    return payload


def test_extra_fields_are_tolerated_with_one_warning_each(sandbox, make_client, expected_rows, caplog):
    client = make_client(page_size=100, retry_policy=FAST)
    sandbox.inject_fault(RUN_REPORT, 200, kind="transform", transform=_add_fields, times=None)
    caplog.set_level(logging.WARNING, logger="connectors.ga4")
    table = _load(client)
    list(client.sessions(DAY))  # a second day's worth of pages: still one warning per field
    assert table.num_rows == expected_rows
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "samplingMetadatas" in w]) == 1
    assert len([w for w in warnings if "rows[].rowLabel" in w]) == 1
    assert len(warnings) == 2


# --- secrets ---------------------------------------------------------------------------------------------


def test_no_token_or_key_in_any_error_or_log_line(sandbox, make_client, service_account_info, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(retry_policy=FAST)
    list(client.sessions(DAY))
    token = sandbox.tokens.issued()[-1]
    echo = {
        "error": {
            "code": 503,
            "status": "UNAVAILABLE",
            "message": f"backend saw Authorization: Bearer {token} and access_token={token} ({token})",
        }
    }
    errors = []
    sandbox.inject_fault(RUN_REPORT, 503, body=echo, times=None)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    errors.append(caught.value)
    sandbox.clear_faults()
    sandbox.inject_fault(RUN_REPORT, 200, body=f'{{"echo": "{token}", "truncated', times=None)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    errors.append(caught.value)
    sandbox.clear_faults()
    sandbox.inject_fault(RUN_REPORT, 400, body=service_account_info["private_key"])
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    errors.append(caught.value)

    issued = sandbox.tokens.issued()
    assert token in issued
    key_body = service_account_info["private_key"].splitlines()[1]
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [caplog.text, repr(client.config)]
    for text in texts:
        assert not any(t in text for t in issued)
        assert "PRIVATE KEY" not in text and key_body not in text
    assert "backend saw Authorization: Bearer [redacted]" in str(errors[0])


@pytest.mark.parametrize("body", [b"null", b"  null\n", b"[]"])
def test_an_answer_that_is_not_an_object_fails_clearly(sandbox, make_client, body):
    # pyarrow's JSON reader crashed the whole process on a body starting with null (SIGSEGV): the
    # connector must not hand it such a body, and must say what it got instead.
    client = make_client(retry_policy=FAST)
    sandbox.inject_fault(RUN_REPORT, 200, kind="transform", transform=lambda payload: body)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    assert "the API response changed" in str(caught.value) and "property 412345678" in str(caught.value)
