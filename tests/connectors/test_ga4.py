"""The GA4 connector against the sandbox on loopback: paging, parsing, auth, errors, settings."""

from __future__ import annotations

import json
import logging
import math
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pyarrow as pa
import pytest

from connectors.ga4 import (
    LEADS_SCHEMA,
    SESSIONS_SCHEMA,
    GA4Client,
    GA4Config,
    GA4ConfigError,
    GA4Error,
    ReportPage,
)
from connectors.http import RetryPolicy
from connectors.sandbox import SANDBOX_START_DATE, google_service_account_info
from connectors.sandbox.ga4 import quality_flags

DAY = date(2026, 2, 4)  # a Wednesday, no planted event: ~300 sessions rows at small scale
RUN_REPORT = ":runReport"
# Errors that persist through retries (transient faults retried and survived: test_ga4_faults.py).
NO_WAIT = RetryPolicy(max_attempts=2, base_delay=0.01, jitter=0.0)


def _bodies(sandbox, since: int) -> list[dict]:
    return [json.loads(r.body) for r in list(sandbox.requests_to(RUN_REPORT))[since:]]


# --- paging -----------------------------------------------------------------------------------------


def test_sessions_page_through_every_row_once(sandbox, make_client):
    client = make_client(page_size=50)
    seen = len(sandbox.requests_to(RUN_REPORT))
    pages = list(client.sessions(DAY))

    row_count = pages[0].row_count
    assert row_count > 150  # more than three pages
    assert len(pages) == math.ceil(row_count / 50)
    assert [p.batch.num_rows for p in pages[:-1]] == [50] * (len(pages) - 1)
    assert sum(p.batch.num_rows for p in pages) == row_count
    assert [p.offset for p in pages] == [50 * i for i in range(len(pages))]
    table = pa.Table.from_batches([p.batch for p in pages])
    keys = set(zip(*(table.column(c).to_pylist() for c in SESSIONS_SCHEMA.names[:6]), strict=True))
    assert len(keys) == row_count  # no duplicates, no gaps

    bodies = _bodies(sandbox, seen)
    assert [(b["limit"], b["offset"]) for b in bodies] == [("50", str(50 * i)) for i in range(len(pages))]


def test_pages_are_streamed_one_request_at_a_time(sandbox, make_client):
    client = make_client(page_size=100)
    seen = len(sandbox.requests_to(RUN_REPORT))
    pages = client.sessions(DAY)
    first = next(pages)
    assert isinstance(first, ReportPage) and first.batch.num_rows == 100
    assert len(sandbox.requests_to(RUN_REPORT)) == seen + 1  # the next page is not fetched yet
    rest = list(pages)
    assert len(sandbox.requests_to(RUN_REPORT)) == seen + 1 + len(rest)


def test_requests_keep_the_discovery_contract(sandbox, make_client, contract):
    import jsonschema

    doc = contract("ga4")
    request_schema = doc["schemas"]["RunReportRequest"]["properties"]
    seen = len(sandbox.requests_to(RUN_REPORT))
    client = make_client()
    list(client.sessions(DAY))
    list(client.leads(DAY))
    for body in _bodies(sandbox, seen):
        assert set(body) <= set(request_schema)
        jsonschema.validate(body["limit"], {"type": "string", "pattern": "^[0-9]+$"})
        jsonschema.validate(body["offset"], {"type": "string", "pattern": "^[0-9]+$"})
        assert body["dateRanges"] == [{"startDate": "2026-02-04", "endDate": "2026-02-04"}]


# --- parsing ----------------------------------------------------------------------------------------


def test_sessions_batches_have_the_schema_and_typed_values(sandbox, make_client):
    pages = list(make_client().sessions(DAY))
    assert len(pages) == 1
    batch = pages[0].batch
    assert batch.schema == SESSIONS_SCHEMA
    rows = batch.to_pylist()
    assert {r["date"] for r in rows} == {DAY}
    assert {r["device_category"] for r in rows} == {"desktop", "mobile", "tablet"}
    for r in rows:
        assert r["sessions"] >= r["engaged_sessions"] >= 0
        assert r["sessions"] >= r["total_users"] >= r["new_users"] >= 0
        assert isinstance(r["key_events"], float) and r["key_events"].is_integer()
    top = rows[0]
    assert (top["session_source"], top["session_medium"], top["landing_page_plus_query_string"]) == (
        "google",
        "organic",
        "/",
    )
    assert not pages[0].subject_to_thresholding and not pages[0].data_loss_from_other_row


def test_parsed_values_equal_the_wire_values(sandbox, make_client):
    # The same day read raw: the connector's columns must carry exactly the served numbers.
    client = make_client(page_size=40)
    raw = []
    for page in client.pages(
        {
            "dateRanges": [{"startDate": "2026-02-04", "endDate": "2026-02-04"}],
            "dimensions": [{"name": "sessionSource"}, {"name": "deviceCategory"}],
            "metrics": [{"name": "sessions"}, {"name": "keyEvents"}],
        }
    ):
        raw.append(page.batch)
    generic = pa.Table.from_batches(raw)
    assert generic.schema.names == ["session_source", "device_category", "sessions", "key_events"]
    assert generic.schema.field("sessions").type == pa.int64()
    assert generic.schema.field("key_events").type == pa.float64()  # GA4 types keyEvents TYPE_FLOAT
    full = pa.Table.from_batches([p.batch for p in client.sessions(DAY)])
    assert sum(generic.column("sessions").to_pylist()) == sum(full.column("sessions").to_pylist())
    assert sum(generic.column("key_events").to_pylist()) == sum(full.column("key_events").to_pylist())


def test_pages_decoded_in_arrow_equal_the_json_decoding(make_client, monkeypatch):
    import connectors.ga4 as ga4

    decoded = []
    arrow = ga4._decode_page

    def spy(content):
        page = arrow(content)
        decoded.append(page is not None)
        return page

    monkeypatch.setattr(ga4, "_decode_page", spy)
    client = make_client(page_size=120)
    fast = [(p.batch, p.row_count, p.subject_to_thresholding) for p in client.sessions(DAY)]
    fast += [(p.batch, p.row_count, p.subject_to_thresholding) for p in client.leads(DAY)]
    assert decoded and all(decoded)  # every page took the Arrow path...
    monkeypatch.setattr(ga4, "_decode_page", lambda content: None)
    slow = [(p.batch, p.row_count, p.subject_to_thresholding) for p in client.sessions(DAY)]
    slow += [(p.batch, p.row_count, p.subject_to_thresholding) for p in client.leads(DAY)]
    assert len(fast) == len(slow) > 2
    for (fast_batch, *fast_rest), (slow_batch, *slow_rest) in zip(fast, slow, strict=True):
        assert fast_batch.equals(slow_batch) and fast_rest == slow_rest  # ...and equals json's


def test_a_pretty_printed_answer_decodes_like_a_compact_one():
    from connectors.ga4 import _decode_page

    answer = {
        "dimensionHeaders": [{"name": "date"}],
        "metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"}],
        "rows": [
            {"dimensionValues": [{"value": "20260204"}], "metricValues": [{"value": str(n)}]}
            for n in range(3)
        ],
        "rowCount": 3,
        "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC", "dataLossFromOtherRow": True},
        "kind": "analyticsData#runReport",
    }
    compact = _decode_page(json.dumps(answer, separators=(",", ":")).encode())
    pretty = _decode_page(json.dumps(answer, indent=2).encode())
    assert compact["rows"].equals(pretty["rows"]) and compact["rows"].to_pylist() == answer["rows"]
    assert {k: v for k, v in pretty.items() if k != "rows"} == {
        k: v for k, v in compact.items() if k != "rows"
    }
    assert compact["metadata"]["dataLossFromOtherRow"] is True and compact["rowCount"] == 3
    # Anything but a plain page of rows is left to json (which diagnoses it): None.
    assert _decode_page(json.dumps({**answer, "rows": []}).encode()) is None
    assert _decode_page(json.dumps({k: v for k, v in answer.items() if k != "rowCount"}).encode()) is None
    assert _decode_page(json.dumps({**answer, "rowCount": "3"}).encode()) is None
    odd_row = {**answer["rows"][0], "rowLabel": "x"}
    assert _decode_page(json.dumps({**answer, "rows": [odd_row]}).encode()) is None
    assert _decode_page(json.dumps(answer).encode()[:-40]) is None
    assert _decode_page(json.dumps(answer).encode().replace(b"20260204", b"2026\xff0204")) is None


def test_requests_ask_for_a_compact_answer(sandbox, make_client):
    seen = len(sandbox.requests_to(RUN_REPORT))
    list(make_client().sessions(DAY))
    assert all(
        r.path.endswith(":runReport?prettyPrint=false") for r in sandbox.requests_to(RUN_REPORT)[seen:]
    )


def test_leads_batches_have_the_schema_and_match_the_key_events(sandbox, make_client):
    assert quality_flags(42, DAY) == (False, False)
    client = make_client()
    leads = pa.Table.from_batches([p.batch for p in client.leads(DAY)])
    sessions = pa.Table.from_batches([p.batch for p in client.sessions(DAY)])
    assert leads.schema == LEADS_SCHEMA
    assert leads.num_rows > 3
    assert set(leads.column("date").to_pylist()) == {DAY}
    assert min(leads.column("leads").to_pylist()) >= 1.0
    assert "(not set)" in leads.column("how_heard").to_pylist()
    assert sum(leads.column("leads").to_pylist()) == sum(sessions.column("key_events").to_pylist())


def test_flags_of_thresholded_and_folded_days_reach_the_pages(make_client):
    days = [
        date.fromordinal(n) for n in range(SANDBOX_START_DATE.toordinal(), date(2026, 11, 21).toordinal())
    ]
    thresholded = next(d for d in days if quality_flags(42, d) == (True, False))
    folded = next(d for d in days if quality_flags(42, d)[1])
    client = make_client()
    pages = list(client.sessions(thresholded))
    assert all(p.subject_to_thresholding and not p.data_loss_from_other_row for p in pages)
    pages = list(client.sessions(folded))
    assert all(p.data_loss_from_other_row for p in pages)
    rows = pa.Table.from_batches([p.batch for p in pages]).to_pylist()
    other = [r for r in rows if r["session_source"] == "(other)"]
    assert len(other) == 1 and other[0]["date"] == folded


def _day_table(client, day: date) -> pa.Table:
    return pa.Table.from_batches([p.batch for p in client.sessions(day)], schema=SESSIONS_SCHEMA)


def test_a_range_report_splits_into_the_days_the_one_day_reports_give(sandbox, make_client):
    days = [
        date.fromordinal(n) for n in range(SANDBOX_START_DATE.toordinal(), date(2026, 11, 21).toordinal())
    ]
    folded = next(d for d in days if quality_flags(42, d) == (False, True))
    first, last = folded - timedelta(days=2), folded + timedelta(days=2)
    assert not any(quality_flags(42, first + timedelta(days=k))[0] for k in range(5))
    client = make_client(page_size=150)  # pages end inside days
    seen = len(sandbox.requests_to(RUN_REPORT))
    got = list(client.sessions_days(first, last))
    ranged = len(sandbox.requests_to(RUN_REPORT)) - seen
    assert [d.day for d in got] == [first + timedelta(days=k) for k in range(5)]
    rows = sum(d.table.num_rows for d in got)
    assert ranged == math.ceil(rows / 150)  # the pages of the rows, whatever day they hold
    for day in got:
        assert day.table.sort_by("session_source").equals(
            _day_table(client, day.day).sort_by("session_source")
        )
        # the report's "(other)" flag goes to the day holding the "(other)" row only
        assert (day.data_loss_from_other_row, day.subject_to_thresholding) == (day.day == folded, False)


def test_a_thresholded_range_report_flags_every_day_of_the_range(make_client):
    days = [
        date.fromordinal(n) for n in range(SANDBOX_START_DATE.toordinal(), date(2026, 11, 21).toordinal())
    ]
    thresholded = next(d for d in days if quality_flags(42, d) == (True, False))
    got = list(make_client().sessions_days(thresholded - timedelta(days=1), thresholded + timedelta(days=1)))
    # GA4 says so of the report, not of a day
    assert [d.subject_to_thresholding for d in got] == [True, True, True]
    assert all(d.table.num_rows > 0 for d in got)


def test_days_of_a_range_without_rows_come_out_empty(make_client):
    got = list(make_client().leads_days(date(2025, 6, 28), SANDBOX_START_DATE))
    assert [d.day for d in got] == [
        date(2025, 6, 28),
        date(2025, 6, 29),
        date(2025, 6, 30),
        SANDBOX_START_DATE,
    ]
    assert [d.table.num_rows > 0 for d in got] == [False, False, False, True]
    assert all(d.table.schema == LEADS_SCHEMA for d in got)


def test_days_before_the_start_return_no_rows(make_client):
    client = make_client()
    for report, schema in ((client.sessions, SESSIONS_SCHEMA), (client.leads, LEADS_SCHEMA)):
        pages = list(report(date(2025, 6, 30)))
        assert len(pages) == 1
        assert pages[0].row_count == 0 and pages[0].batch.num_rows == 0
        assert pages[0].batch.schema == schema
    assert list(client.sessions(SANDBOX_START_DATE))[0].row_count > 50


# --- auth ---------------------------------------------------------------------------------------------


def test_a_401_refreshes_the_token_and_the_load_succeeds(sandbox, make_client):
    client = make_client()
    assert list(client.sessions(DAY))[0].row_count > 0
    tokens_before = len(sandbox.requests_to("/google/token"))
    seen = len(sandbox.requests_to(RUN_REPORT))
    sandbox.inject_fault(RUN_REPORT, 401)

    pages = list(client.sessions(DAY))

    assert pages[0].batch.num_rows == pages[0].row_count > 0
    assert len(sandbox.requests_to("/google/token")) == tokens_before + 1
    assert [r.status for r in list(sandbox.requests_to(RUN_REPORT))[seen:]] == [401, 200]


def test_clients_and_threads_of_one_key_share_one_token_grant(sandbox, make_client):
    key = google_service_account_info(sandbox.google_token_uri)
    grants = len(sandbox.requests_to("/google/token"))
    clients = [make_client(credentials_info=key) for _ in range(3)]
    # three clients, four threads, none holding a token yet: one grant between them
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda c: list(c.sessions(DAY))[0].row_count, clients + clients[:1]))
    assert len(set(counts)) == 1 and counts[0] > 0
    assert len(sandbox.requests_to("/google/token")) == grants + 1


def test_a_401_that_persists_raises_unauthenticated(sandbox, make_client):
    client = make_client()
    sandbox.inject_fault(RUN_REPORT, 401, times=None)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    assert caught.value.status == 401 and caught.value.google_status == "UNAUTHENTICATED"


def test_token_uri_override_points_a_google_key_at_the_sandbox(sandbox, key_file):
    env = {
        "GA4_PROPERTY_ID": "properties/412345678",
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "GA4_BASE_URL": sandbox.ga4_base_url,
        "GA4_TOKEN_URI": sandbox.google_token_uri,
        "GA4_PAGE_SIZE": "500",
    }
    config = GA4Config.from_env(env)
    assert (config.property_id, config.page_size) == ("412345678", 500)
    with GA4Client(config) as client:
        assert list(client.sessions(DAY))[0].row_count > 0


def test_a_refused_token_request_raises_ga4_error(sandbox, make_client):
    sandbox.inject_fault(
        "/google/token", 400, body={"error": "invalid_grant", "error_description": "Invalid JWT"}
    )
    # a key this process has no token for yet (the module's key has one, shared by its clients)
    fresh_key = google_service_account_info(sandbox.google_token_uri)
    with pytest.raises(GA4Error) as caught:
        list(make_client(credentials_info=fresh_key).sessions(DAY))
    assert caught.value.status == 401
    assert "could not get an access token" in str(caught.value) and "invalid_grant" in str(caught.value)


# --- errors -------------------------------------------------------------------------------------------


def test_a_bad_request_raises_ga4_error_with_googles_message(make_client):
    client = make_client()
    body = {
        "dateRanges": [{"startDate": "2026-02-04", "endDate": "2026-02-04"}],
        "dimensions": [{"name": "landingPage"}, {"name": "sessionSauce"}],
        "metrics": [{"name": "sessions"}],
    }
    with pytest.raises(GA4Error) as caught:
        list(client.pages(body))
    error = caught.value
    assert (error.status, error.google_status, error.property_id) == (400, "INVALID_ARGUMENT", "412345678")
    assert error.message.startswith("Field sessionSauce is not a valid dimension.")
    text = str(error)
    for part in ("412345678", "400", "INVALID_ARGUMENT", "sessionSauce is not a valid dimension"):
        assert part in text


def test_permission_denied_names_property_status_and_message(sandbox, make_client):
    sandbox.inject_fault(RUN_REPORT, 403)
    with pytest.raises(GA4Error) as caught:
        list(make_client().sessions(DAY))
    text = str(caught.value)
    assert "property 412345678" in text and "HTTP 403 PERMISSION_DENIED" in text
    assert "does not have sufficient permissions" in text


def test_a_failure_on_a_later_page_stops_the_stream_after_the_pages_it_gave(sandbox, make_client):
    sandbox.inject_fault(RUN_REPORT, 500, after=2, times=None)
    received = []
    with pytest.raises(GA4Error) as caught:
        for page in make_client(page_size=50, retry_policy=NO_WAIT).sessions(DAY):
            received.append(page.offset)
    assert received == [0, 50]
    assert (caught.value.status, caught.value.google_status) == (500, "INTERNAL")


def test_a_non_json_error_falls_back_to_truncated_text(sandbox, make_client):
    sandbox.inject_fault(
        RUN_REPORT, 503, body="<html>" + "upstream unavailable " * 50 + "</html>", times=None
    )
    with pytest.raises(GA4Error) as caught:
        list(make_client(retry_policy=NO_WAIT).sessions(DAY))
    assert caught.value.status == 503 and caught.value.google_status is None
    assert caught.value.message.startswith("<html>upstream unavailable") and len(caught.value.message) <= 303


def test_rate_limit_errors_carry_googles_status_and_retry_after(sandbox, make_client):
    sandbox.inject(RUN_REPORT, 429, headers={"Retry-After": "7"}, times=None)
    with pytest.raises(GA4Error) as caught:
        list(make_client(retry_policy=RetryPolicy(max_attempts=1)).sessions(DAY))
    error = caught.value
    assert (error.status, error.google_status, error.retry_after) == (429, "RESOURCE_EXHAUSTED", 7.0)
    assert "Exhausted property tokens" in error.message


def test_tokens_never_appear_in_errors_or_logs(sandbox, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client()
    list(client.sessions(DAY))
    token = sandbox.tokens.issued()[-1]
    sandbox.inject_fault(
        RUN_REPORT,
        403,
        body={
            "error": {
                "code": 403,
                "status": "PERMISSION_DENIED",
                "message": f"Token Bearer {token} lacks access ({token})",
            }
        },
    )
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    issued = sandbox.tokens.issued()
    assert issued
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(client.config)):
        assert not any(t in text for t in issued)
        assert "PRIVATE KEY" not in text
    assert "lacks access" in str(caught.value)


def test_an_unreachable_api_raises_ga4_error_without_status(make_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{closed_port}", retry_policy=NO_WAIT)
    with pytest.raises(GA4Error) as caught:
        list(client.sessions(DAY))
    assert caught.value.status is None and "connection failed: ConnectionRefusedError" in str(caught.value)


# --- settings -----------------------------------------------------------------------------------------


def _env(key_file, **overrides) -> dict:
    return {"GA4_PROPERTY_ID": "412345678", "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), **overrides}


def test_a_measurement_id_is_explained(key_file):
    with pytest.raises(GA4ConfigError) as caught:
        GA4Config.from_env(_env(key_file, GA4_PROPERTY_ID="G-1AB2CD3EF4"))
    text = str(caught.value)
    assert "GA4_PROPERTY_ID='G-1AB2CD3EF4' is a Measurement ID" in text
    assert "web data stream" in text and "GA4 Admin > Property settings" in text
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"GA4_PROPERTY_ID": ""}, "GA4_PROPERTY_ID is not set"),
        ({"GA4_PROPERTY_ID": "412-345"}, "GA4_PROPERTY_ID='412-345' is not a GA4 Property ID"),
        ({"GA4_PAGE_SIZE": "0"}, "GA4_PAGE_SIZE=0 is out of range; use 1..250000"),
        ({"GA4_PAGE_SIZE": "250001"}, "GA4_PAGE_SIZE=250001 is out of range"),
        ({"GA4_PAGE_SIZE": "lots"}, "GA4_PAGE_SIZE='lots' is not a whole number"),
        ({"GA4_TIMEOUT_SECONDS": "-1"}, "GA4_TIMEOUT_SECONDS"),
        (
            {"GA4_BASE_URL": "analyticsdata.googleapis.com"},
            "GA4_BASE_URL='analyticsdata.googleapis.com' is not",
        ),
        ({"GA4_HOW_HEARD_PARAMETER": "how heard"}, "GA4_HOW_HEARD_PARAMETER='how heard'"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(key_file, overrides, expected):
    with pytest.raises(GA4ConfigError, match=None) as caught:
        GA4Config.from_env(_env(key_file, **overrides))
    assert expected in str(caught.value)


def test_missing_credentials_name_google_application_credentials(key_file, tmp_path):
    env = _env(key_file)
    del env["GOOGLE_APPLICATION_CREDENTIALS"]
    with pytest.raises(GA4ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS is not set"):
        GA4Config.from_env(env)
    missing = tmp_path / "nope.json"
    with pytest.raises(GA4ConfigError) as caught:
        GA4Config.from_env(_env(missing))
    assert f"GOOGLE_APPLICATION_CREDENTIALS='{missing}' does not exist" in str(caught.value)
    user_creds = tmp_path / "adc.json"
    user_creds.write_text(json.dumps({"type": "authorized_user", "refresh_token": "x"}))
    with pytest.raises(GA4ConfigError, match="type 'authorized_user', not a service-account key"):
        GA4Client(GA4Config.from_env(_env(user_creds)))


def test_settings_are_checked_before_any_request(sandbox, key_file):
    before = len(sandbox.requests)
    with pytest.raises(GA4ConfigError):
        GA4Config.from_env(_env(key_file, GA4_PROPERTY_ID="G-XYZ", GA4_BASE_URL=sandbox.ga4_base_url))
    assert len(sandbox.requests) == before


def test_defaults(key_file):
    config = GA4Config.from_env(_env(key_file))
    assert config.base_url == GA4Config.DEFAULT_BASE_URL == "https://analyticsdata.googleapis.com"
    assert (config.page_size, config.timeout_seconds, config.token_uri) == (250_000, 60.0, None)
    assert (config.how_heard_parameter, config.lead_event) == ("how_heard", "generate_lead")
