"""The Search Console connector against the sandbox's real HTTP API: settings, paging, faults."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta
from urllib.parse import quote

import pyarrow as pa
import pytest

from connectors.gsc import QUERIES_SCHEMA, TOTALS_SCHEMA, GSCClient, GSCConfig, GSCConfigError
from connectors.http import ApiError, RetryPolicy
from connectors.sandbox.brand import PLANTED, SANDBOX_GSC_SITE_URL
from connectors.sandbox.gsc_api import throttle_body

DAY = date(2026, 2, 4)  # a Wednesday with no planted event
TODAY = date(2026, 11, 21)  # the connectors sandbox's pinned "today"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=1.0, max_total_seconds=20.0)
BRANDED = re.compile(r"nort\w*\s?wi?n?d|north\s?wind", re.IGNORECASE)


def _table(pages, schema) -> pa.Table:
    return pa.Table.from_batches([p.batch for p in pages], schema=schema)


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "site, expected",
    [
        ("sc-domain:Example.com", "sc-domain:example.com"),
        ("https://www.example.com/", "https://www.example.com/"),
        ("http://example.com/blog/", "http://example.com/blog/"),
    ],
)
def test_both_property_forms_are_accepted(service_account_info, site, expected):
    assert GSCConfig(site_url=site, credentials_info=service_account_info).site_url == expected


@pytest.mark.parametrize(
    "site, hint",
    [
        ("", "GSC_SITE_URL is not set"),
        ("https://www.example.com", "lacks the trailing slash"),
        ("example.com", "neither a Domain nor a URL-prefix property"),
        ("sc-domain:https://example.com", "not a Domain property"),
    ],
)
def test_a_malformed_site_is_refused_before_any_request(sandbox, service_account_info, site, hint):
    before = len(sandbox.requests_to("/gsc/"))
    with pytest.raises(GSCConfigError) as caught:
        GSCConfig(site_url=site, credentials_info=service_account_info)
    message = str(caught.value)
    assert hint in message and "GSC_SITE_URL" in message
    assert (
        "sc-domain:example.com" in message and "https://www.example.com/" in message
    )  # both forms explained
    assert len(sandbox.requests_to("/gsc/")) == before


def test_settings_from_the_environment_name_what_to_fix(tmp_path, service_account_info):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(service_account_info))
    env = {"GSC_SITE_URL": "sc-domain:northwind-analytics.com", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    config = GSCConfig.from_env(env)
    assert config.base_url == "https://searchconsole.googleapis.com" and config.row_limit == 25_000
    with pytest.raises(GSCConfigError, match="GSC_ROW_LIMIT=25001 is out of range"):
        GSCConfig.from_env({**env, "GSC_ROW_LIMIT": "25001"})
    with pytest.raises(GSCConfigError, match="GOOGLE_APPLICATION_CREDENTIALS is not set"):
        GSCConfig.from_env({"GSC_SITE_URL": "sc-domain:northwind-analytics.com"})
    with pytest.raises(GSCConfigError, match="GSC_BASE_URL"):
        GSCConfig.from_env({**env, "GSC_BASE_URL": "searchconsole.googleapis.com"})


def test_a_key_file_with_a_token_uri_override_reaches_the_sandbox(sandbox, key_file):
    config = GSCConfig(
        site_url=SANDBOX_GSC_SITE_URL,
        credentials_file=key_file,
        base_url=f"{sandbox.base_url}/gsc",
        token_uri=sandbox.google_token_uri,
        retry_policy=FAST,
    )
    with GSCClient(config) as client:
        assert _table(client.totals(DAY), TOTALS_SCHEMA).num_rows == 1


# --- data -----------------------------------------------------------------------------------------


def test_paging_across_several_pages_returns_every_row_once(sandbox, make_gsc):
    whole = _table(make_gsc().queries(DAY), QUERIES_SCHEMA)
    before = len(sandbox.requests_to("searchAnalytics"))
    pages = list(make_gsc(row_limit=200).queries(DAY))
    assert len(pages) == -(-whole.num_rows // 200) + (whole.num_rows % 200 == 0)
    assert [p.start_row for p in pages] == [200 * i for i in range(len(pages))]
    paged = _table(pages, QUERIES_SCHEMA)
    assert paged.schema == QUERIES_SCHEMA
    assert sorted(paged.to_pylist(), key=repr) == sorted(whole.to_pylist(), key=repr)
    sent = [json.loads(r.body) for r in sandbox.requests_to("searchAnalytics")[before:]]
    assert [b["startRow"] for b in sent] == [p.start_row for p in pages]
    assert all(b["rowLimit"] == 200 and b["dataState"] == "FINAL" for b in sent)
    assert sent[0]["dimensions"] == ["DATE", "QUERY", "PAGE", "DEVICE", "COUNTRY"]


def test_rows_are_typed_and_consistent(make_gsc):
    rows = _table(make_gsc().queries(DAY), QUERIES_SCHEMA).to_pylist()
    assert len(rows) > 200
    for r in rows:
        assert r["date"] == DAY and r["device"] in ("DESKTOP", "MOBILE", "TABLET")
        assert 0 <= r["clicks"] <= r["impressions"] and r["position"] >= 1
        assert r["ctr"] == pytest.approx(r["clicks"] / r["impressions"])


def test_anonymized_clicks_are_positive(make_gsc):
    client = make_gsc()
    for day in (DAY, DAY + timedelta(days=3), DAY + timedelta(days=5)):
        query_clicks = pa.compute.sum(_table(client.queries(day), QUERIES_SCHEMA)["clicks"]).as_py()
        total = _table(client.totals(day), TOTALS_SCHEMA).to_pylist()
        assert len(total) == 1 and total[0]["date"] == day
        anonymized = total[0]["clicks"] - query_clicks
        assert anonymized > 0 and 0.10 <= anonymized / total[0]["clicks"] <= 0.30


def test_days_not_final_yet_have_no_rows(make_gsc):
    client = make_gsc()
    assert _table(client.queries(TODAY - timedelta(days=2)), QUERIES_SCHEMA).num_rows == 0
    assert _table(client.totals(TODAY - timedelta(days=3)), TOTALS_SCHEMA).num_rows == 1


def test_planted_branded_lift_is_measurable_from_raw_rows(make_gsc):
    client = make_gsc()
    start = PLANTED.meta_flight_start

    def branded_per_day(first: date, last: date) -> float:
        body = {"startDate": first.isoformat(), "endDate": last.isoformat(), "dimensions": ["DATE", "QUERY"]}
        schema = pa.schema([QUERIES_SCHEMA.field(n) for n in ("date", "query")] + list(TOTALS_SCHEMA)[1:])
        rows = _table(client.pages(body, schema), schema).to_pylist()
        return sum(r["clicks"] for r in rows if BRANDED.search(r["query"])) / ((last - first).days + 1)

    before = branded_per_day(start - timedelta(days=28), start - timedelta(days=1))
    during = branded_per_day(start, PLANTED.meta_flight_end + timedelta(days=7))
    assert 0.25 <= during / before - 1 <= 0.45


# --- faults ---------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_and_loaded(sandbox, make_gsc, caplog):
    expected = _table(make_gsc().totals(DAY), TOTALS_SCHEMA)
    sandbox.inject_fault("searchAnalytics", 429, times=2, headers={"Retry-After": "0.05"})
    with caplog.at_level(logging.WARNING):
        assert _table(make_gsc().totals(DAY), TOTALS_SCHEMA) == expected
    assert "HTTP 429" in caplog.text and "in 0.1s" in caplog.text  # the header's 0.05 s, not a backoff


def test_googles_throttle_form_is_retried_after_its_retry_delay(sandbox, make_gsc, caplog):
    expected = _table(make_gsc().totals(DAY), TOTALS_SCHEMA)
    sandbox.inject_fault("searchAnalytics", 403, times=1, body=throttle_body("0.3s"))
    sandbox.inject_fault("searchAnalytics", 429, times=1)  # RESOURCE_EXHAUSTED, rateLimitExceeded
    with caplog.at_level(logging.WARNING):
        assert _table(make_gsc().totals(DAY), TOTALS_SCHEMA) == expected
    assert "HTTP 403" in caplog.text and "in 0.3s" in caplog.text
    assert "User Rate Limit Exceeded" in caplog.text and "HTTP 429" in caplog.text


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_and_loaded(sandbox, make_gsc, status):
    expected = _table(make_gsc().queries(DAY), QUERIES_SCHEMA)
    sandbox.inject_fault("searchAnalytics", status, times=2)
    assert _table(make_gsc().queries(DAY), QUERIES_SCHEMA) == expected


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_a_dropped_connection_or_truncated_body_is_retried(sandbox, make_gsc, kind):
    expected = _table(make_gsc(row_limit=300).queries(DAY), QUERIES_SCHEMA)
    sandbox.inject_fault("searchAnalytics", 200, times=1, after=1, kind=kind)  # the second page
    assert _table(make_gsc(row_limit=300).queries(DAY), QUERIES_SCHEMA) == expected


def test_a_response_slower_than_the_timeout_is_retried(sandbox, make_gsc, caplog):
    expected = _table(make_gsc().totals(DAY), TOTALS_SCHEMA)
    sandbox.inject_fault("searchAnalytics", 200, times=1, kind="slow", delay=1.5)
    with caplog.at_level(logging.WARNING):
        assert _table(make_gsc(timeout_seconds=0.5).totals(DAY), TOTALS_SCHEMA) == expected
    assert "timeout" in caplog.text


def test_an_expired_token_is_refreshed_and_the_request_resent(sandbox, make_gsc):
    client = make_gsc()
    expected = _table(client.totals(DAY), TOTALS_SCHEMA)
    grants = len(sandbox.requests_to("/google/token"))
    sandbox.tokens.revoke_all()  # the token the client holds is now unknown: 401
    assert _table(client.totals(DAY), TOTALS_SCHEMA) == expected
    assert len(sandbox.requests_to("/google/token")) == grants + 1


def test_a_401_that_persists_is_refreshed_twice_then_reported(sandbox, make_gsc):
    client = make_gsc()
    list(client.totals(DAY))  # holds a token
    grants = len(sandbox.requests_to("/google/token"))
    asked = len(sandbox.requests_to("searchAnalytics"))
    sandbox.inject_fault("searchAnalytics", 401, times=None)
    with pytest.raises(ApiError) as caught:
        list(client.totals(DAY))
    assert caught.value.status == 401
    # the request, then two refreshes each followed by the request again; a 401 is not retried further
    assert len(sandbox.requests_to("searchAnalytics")) == asked + 3
    assert len(sandbox.requests_to("/google/token")) == grants + 2


def test_a_renamed_field_fails_naming_the_field(sandbox, make_gsc, caplog):
    def rename(body):
        return {
            **body,
            "rows": [{("click" if k == "clicks" else k): v for k, v in r.items()} for r in body["rows"]],
        }

    sandbox.inject_fault("searchAnalytics", 200, times=1, kind="transform", transform=rename)
    with caplog.at_level(logging.WARNING), pytest.raises(ApiError) as caught:
        list(make_gsc().queries(DAY))
    assert "'clicks'" in str(caught.value) and caught.value.source == "gsc"
    assert "'click'" in caplog.text  # the unknown new name is reported too


def test_an_extra_field_is_tolerated_with_a_warning(sandbox, make_gsc, caplog):
    expected = _table(make_gsc().queries(DAY), QUERIES_SCHEMA)

    def extra(body):
        rows = [{**r, "searchAppearance": "VIDEO"} for r in body["rows"]]
        return {**body, "rows": rows, "kind": "webmasters#searchAnalytics"}

    sandbox.inject_fault("searchAnalytics", 200, times=1, kind="transform", transform=extra)
    with caplog.at_level(logging.WARNING):
        assert _table(make_gsc().queries(DAY), QUERIES_SCHEMA) == expected
    assert "'kind'" in caplog.text and "'searchAppearance'" in caplog.text


def test_after_the_last_attempt_the_error_names_source_endpoint_status_and_message(sandbox, make_gsc, caplog):
    client = make_gsc(retry_policy=FAST)
    list(client.totals(DAY))  # a token is issued and held
    tokens = sandbox.tokens.issued()
    assert tokens
    sandbox.inject_fault("searchAnalytics", 503, times=None)
    with caplog.at_level(logging.DEBUG), pytest.raises(ApiError) as caught:
        list(client.totals(DAY))
    error = caught.value
    assert error.source == "gsc" and error.status == 503 and error.attempts == FAST.max_attempts
    text = str(error)
    assert "searchAnalytics/query" in text and "sc-domain%3Anorthwind-analytics.com" in text
    assert "The service is currently unavailable" in text and "UNAVAILABLE" in text
    for token in tokens:
        assert token not in text and token not in caplog.text


def test_permission_denied_fails_at_once_with_googles_message(sandbox, make_gsc):
    # A site no other test asks for: the module's sandbox is shared, and a late request of an
    # earlier test (a slow fault answered after its client gave up) must not count as a retry here.
    site = "sc-domain:permission-denied.example.com"
    with pytest.raises(ApiError) as caught:
        list(make_gsc(site_url=site).totals(DAY))
    assert caught.value.status == 403 and caught.value.attempts == 1
    assert f"does not have sufficient permission for site '{site}'" in str(caught.value)
    sent = sandbox.requests_to(f"/sites/{quote(site, safe='')}/searchAnalytics")
    assert [(r.method, r.status) for r in sent] == [("POST", 403)]


def test_ranges_grow_past_days_without_rows_and_every_day_comes_out(sandbox, make_gsc):
    # Search Console's history of the sandbox site begins weeks after 2025-07-01: the first range
    # (a week) answers no rows, so the next is RANGE_GROWTH times as long, then the rest fits one
    first, last = date(2025, 7, 1), date(2025, 10, 31)
    seen = len(sandbox.requests_to("searchAnalytics"))
    days = list(make_gsc().queries_days(first, last))
    assert [d for d, _ in days] == [first + timedelta(days=k) for k in range((last - first).days + 1)]
    assert days[0][1].num_rows == 0 and days[-1][1].num_rows > 0
    for day, rows in days:
        assert rows.schema == QUERIES_SCHEMA and set(rows.column("date").to_pylist()) <= {day}
    ranges = [
        (b["startDate"], b["endDate"])
        for b in (json.loads(r.body) for r in sandbox.requests_to("searchAnalytics")[seen:])
        # (a request of an earlier test may be recorded late: only this range's first pages)
        if b.get("startRow", 0) == 0 and "2025-07-01" <= b["startDate"] <= b["endDate"] <= "2025-10-31"
    ]
    assert ranges == [
        ("2025-07-01", "2025-07-07"),
        ("2025-07-08", "2025-09-01"),
        ("2025-09-02", "2025-10-31"),
    ]
