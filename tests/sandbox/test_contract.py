"""The sandbox's GA4 API keeps Google's contract, and its data has the brand's shape.

Responses are validated against the schemas of the GA4 Data API discovery document (as derived
into tests/contracts/ga4.json), converted to JSON Schema here; the data is read back over HTTP and
classified by the test's own docs/metrics.md §1 classifier (conftest.py), never by the generator's
labels.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import pytest

from connectors.sandbox import SANDBOX_START_DATE, SandboxServer
from connectors.sandbox.ga4 import _full_day, generate_day

REPO_ROOT = Path(__file__).resolve().parents[2]
WEEKDAY = date(2026, 2, 4)  # a Wednesday with no planted event


# --- discovery document (converted to JSON Schema by conftest.validate_discovery) ----------------------


@pytest.fixture(scope="module")
def discovery(contract) -> dict:
    return contract("ga4")


def test_converter_rejects_what_the_contract_forbids(discovery, validate_discovery):
    # The validator is only worth something if it can fail: wrong types, unknown fields, bad enums.
    good = {"metricHeaders": [{"name": "sessions", "type": "TYPE_INTEGER"}], "rowCount": 3}
    validate_discovery(discovery, "RunReportResponse", good)
    for bad in (
        {"rowCount": "3"},
        {"metricHeaders": [{"name": "sessions", "type": "TYPE_NUMBER"}]},
        {"rows": [{"metricValues": [{"value": 3}]}]},
        {"rowsCount": 3},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_discovery(discovery, "RunReportResponse", bad)
    with pytest.raises(jsonschema.ValidationError):
        # int64 travels as a string
        validate_discovery(discovery, "RunReportRequest", {"limit": 10, "dateRanges": []})


# --- responses keep the contract --------------------------------------------------------------------


def test_sessions_response_matches_the_discovery_schema(
    discovery, validate_discovery, ga4, make_sessions_body
):
    body = make_sessions_body(WEEKDAY, limit="100", offset="0")
    validate_discovery(discovery, "RunReportRequest", body)
    response = ga4.post(body)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    payload = response.json()
    validate_discovery(discovery, "RunReportResponse", payload)

    assert [h["name"] for h in payload["dimensionHeaders"]] == [d["name"] for d in body["dimensions"]]
    assert [(h["name"], h["type"]) for h in payload["metricHeaders"]] == [
        ("sessions", "TYPE_INTEGER"),
        ("engagedSessions", "TYPE_INTEGER"),
        ("keyEvents", "TYPE_FLOAT"),
        ("totalUsers", "TYPE_INTEGER"),
        ("newUsers", "TYPE_INTEGER"),
    ]
    assert payload["kind"] == "analyticsData#runReport"
    assert payload["metadata"] == {"currencyCode": "USD", "timeZone": "Etc/UTC"}  # false flags are omitted
    assert len(payload["rows"]) == 100 < payload["rowCount"]
    for row in payload["rows"]:
        assert len(row["dimensionValues"]) == 6 and len(row["metricValues"]) == 5
        assert row["dimensionValues"][0]["value"] == "20260204"
        assert all(isinstance(v["value"], str) for v in row["dimensionValues"] + row["metricValues"])
        assert all(v["value"].isdigit() for v in row["metricValues"])


def test_leads_response_matches_the_discovery_schema(discovery, validate_discovery, ga4, make_leads_body):
    body = make_leads_body(WEEKDAY)
    validate_discovery(discovery, "RunReportRequest", body)
    payload = ga4.report(body)
    validate_discovery(discovery, "RunReportResponse", payload)
    assert [h["name"] for h in payload["dimensionHeaders"]][1] == "customEvent:how_heard"
    assert payload["metricHeaders"] == [{"name": "keyEvents", "type": "TYPE_FLOAT"}]
    assert payload["rowCount"] == len(payload["rows"]) > 0
    answers = {r["dimensionValues"][1]["value"] for r in payload["rows"]}
    assert "(not set)" in answers and len(answers) >= 3


def test_error_response_matches_google_error_model(discovery, validate_discovery, ga4, make_sessions_body):
    body = make_sessions_body(WEEKDAY)
    body["dimensions"].append({"name": "sessionSauce"})
    response = ga4.post(body)
    assert response.status_code == 400
    error = response.json()["error"]
    # Google's JSON adds "status" to google.rpc.Status
    validate_discovery(discovery, "Status", error, strict=False)
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Field sessionSauce is not a valid dimension.")


def test_request_without_issued_token_is_unauthenticated(
    discovery, validate_discovery, ga4, make_sessions_body
):
    for token in ("", "ya29.not-issued-by-the-sandbox"):
        response = ga4.post(make_sessions_body(WEEKDAY), token=token)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        error = response.json()["error"]
        validate_discovery(discovery, "Status", error, strict=False)
        assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["metrics"].append({"name": "sessionz"}), "Field sessionz is not a valid metric."),
        (
            lambda b: b["dimensions"].append({"name": "customEvent:plan"}),
            "Field customEvent:plan is not a valid",
        ),
        (lambda b: b.pop("dateRanges"), "Must specify at least one dateRange."),
        (lambda b: b.update(limit="ten"), "Invalid value at 'limit' (TYPE_INT64)"),
        (lambda b: b.update(limit="-5"), "limit must be positive"),
        (lambda b: b.update(offset="-1"), "offset must be non-negative"),
        (lambda b: b.update(pageSize="10"), 'Unknown name "pageSize"'),
        (lambda b: b["dateRanges"][0].update(startDate="2026-02-30"), "Invalid startDate '2026-02-30'"),
        (lambda b: b["dateRanges"][0].update(startDate="2026-03-01"), "is after endDate"),
        (
            lambda b: b["dimensions"].append({"name": "customEvent:how_heard"}),
            "Please remove deviceCategory to make the request compatible.",
        ),
    ],
)
def test_invalid_requests_get_google_invalid_argument(ga4, make_sessions_body, change, message):
    body = make_sessions_body(WEEKDAY)
    change(body)
    response = ga4.post(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


def test_limit_and_offset_page_through_the_same_rows(ga4, make_sessions_body):
    everything = ga4.report(make_sessions_body(WEEKDAY))
    total = everything["rowCount"]
    pages, offset = [], 0
    while offset < total:
        payload = ga4.post(make_sessions_body(WEEKDAY, limit="70", offset=str(offset))).json()
        assert payload["rowCount"] == total
        pages += payload["rows"]
        offset += 70
    assert pages == everything["rows"]
    beyond = ga4.post(make_sessions_body(WEEKDAY, limit=70, offset=total)).json()  # ints are accepted too
    assert "rows" not in beyond and beyond["rowCount"] == total


def test_days_outside_the_history_return_no_rows(ga4, make_sessions_body, today):
    for day in (SANDBOX_START_DATE - timedelta(days=1), today, today + timedelta(days=30)):
        payload = ga4.report(make_sessions_body(day))
        assert "rows" not in payload and "rowCount" not in payload  # proto3 JSON omits empty and zero
        assert len(payload["dimensionHeaders"]) == 6 and payload["kind"] == "analyticsData#runReport"
    first = ga4.report(make_sessions_body(SANDBOX_START_DATE))
    assert first["rowCount"] > 50
    relative = ga4.report(make_sessions_body(today - timedelta(days=1)))
    named = ga4.post(
        {**make_sessions_body(today), "dateRanges": [{"startDate": "yesterday", "endDate": "yesterday"}]}
    )
    assert named.json()["rows"] == relative["rows"]


def test_dimension_subset_aggregates_the_full_rows(ga4, make_sessions_body, classify):
    rows = ga4.rows(make_sessions_body(WEEKDAY))
    by_device = ga4.rows(
        {
            "dateRanges": [{"startDate": "2026-02-04", "endDate": "2026-02-04"}],
            "dimensions": [{"name": "deviceCategory"}],
            "metrics": [{"name": "sessions"}],
        }
    )
    expected = Counter()
    for r in rows:
        expected[r["deviceCategory"]] += r["sessions"]
    assert {r["deviceCategory"]: r["sessions"] for r in by_device} == dict(expected)
    assert set(expected) == {"desktop", "mobile", "tablet"}


# --- determinism ------------------------------------------------------------------------------------


def _digest(seed: int, scale: str, day: date) -> str:
    generate_day.cache_clear()
    _full_day.cache_clear()
    rows = generate_day(seed, scale, day, "sessions").rows + generate_day(seed, scale, day, "leads")
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_same_seed_and_date_give_identical_rows_in_another_process():
    here = _digest(42, "small", WEEKDAY)
    # Another interpreter, another hash seed, and another day generated first: same rows.
    code = (
        "from datetime import date; import hashlib;"
        "from connectors.sandbox.ga4 import generate_day as g;"
        "g(42, 'small', date(2025, 9, 1), 'sessions');"
        f"d = date.fromisoformat('{WEEKDAY.isoformat()}');"
        "rows = g(42, 'small', d, 'sessions').rows + g(42, 'small', d, 'leads');"
        "print(hashlib.sha256(repr(rows).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert there.returncode == 0, there.stderr
    assert there.stdout.strip() == here


def test_different_seeds_give_different_days_of_the_same_brand():
    a = generate_day(42, "small", WEEKDAY, "sessions").rows
    b = generate_day(7, "small", WEEKDAY, "sessions").rows
    assert a != b
    total_a, total_b = sum(r[5] for r in a), sum(r[5] for r in b)
    assert abs(total_a - total_b) / total_a < 0.25  # same brand, other noise


# --- the generator's shape --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_weeks(ga4, make_sessions_body) -> list[dict]:
    """Raw rows of 2026-01-05 (a Monday) .. 2026-03-01: 8 full weeks without planted flights."""
    return ga4.rows(make_sessions_body(date(2026, 1, 5), date(2026, 3, 1)))


def _daily(rows: list[dict]) -> dict[str, int]:
    out = Counter()
    for r in rows:
        out[r["date"]] += r["sessions"]
    return out


def test_weekends_have_about_half_the_sessions_of_weekdays(eight_weeks):
    by_weekday: dict[int, list[int]] = {i: [] for i in range(7)}
    for day, sessions in _daily(eight_weeks).items():
        by_weekday[date(int(day[:4]), int(day[4:6]), int(day[6:])).weekday()].append(sessions)
    assert all(len(v) == 8 for v in by_weekday.values())
    weekday = statistics.mean(statistics.mean(by_weekday[i]) for i in range(5))
    assert 0.38 < statistics.mean(by_weekday[5]) / weekday < 0.52  # Saturday ~0.45
    assert 0.42 < statistics.mean(by_weekday[6]) / weekday < 0.58  # Sunday ~0.5


def test_traffic_grows_about_forty_percent_a_year(ga4, make_sessions_body, today):
    first = sum(
        _daily(ga4.rows(make_sessions_body(SANDBOX_START_DATE, SANDBOX_START_DATE + timedelta(27)))).values()
    )
    last_day = today - timedelta(days=1)
    last = sum(_daily(ga4.rows(make_sessions_body(last_day - timedelta(27), last_day))).values())
    years = (last_day - timedelta(13) - (SANDBOX_START_DATE + timedelta(14))).days / 365.25
    assert 0.85 * 1.4**years < last / first < 1.15 * 1.4**years


def test_every_traffic_class_and_its_driving_sources_are_present(eight_weeks, classify):
    sources = {(r["sessionSource"], r["sessionMedium"]) for r in eight_weeks}
    for needed in [
        ("google", "organic"),
        ("bing", "organic"),
        ("(direct)", "(none)"),
        ("l.facebook.com", "referral"),
        ("lm.facebook.com", "referral"),
        ("com.slack", "referral"),
        ("slack.com", "referral"),
        ("wa.me", "referral"),
        ("web.whatsapp.com", "referral"),
        ("teams.microsoft.com", "referral"),
        ("mail.google.com", "referral"),
        ("android-app://com.google.android.gm", "referral"),
        ("www.linkedin.com", "referral"),
        ("t.co", "referral"),
        ("news.ycombinator.com", "referral"),
        ("chatgpt.com", "referral"),
        ("perplexity.ai", "referral"),
        ("community.northwind-analytics.com", "referral"),
        ("dbt-community-slack", "partner"),
        ("facebook", "paid_social"),
        ("google", "cpc"),
        ("newsletter", "email"),
    ]:
        assert needed in sources, needed
    assert any(s != s.lower() for s, _ in sources), "an upper-case source variant"
    assert any(s.startswith("www.") for s, _ in sources)
    classes = Counter()
    for r in eight_weeks:
        classes[classify(r)] += r["sessions"]
    assert set(classes) == {
        "paid",
        "email_campaign",
        "partner_community",
        "community",
        "ai_assistant",
        "dark_social_messaging",
        "organic_search",
        "public_social",
        "dark_social_direct",
        "direct_typed",
        "referral",
    }
    campaigns = {
        r["sessionCampaignName"] for r in eight_weeks if r["sessionMedium"] in ("cpc", "paid_social")
    }
    assert {"Brand search", "Always-on retargeting"} <= campaigns
    landings = {r["landingPagePlusQueryString"] for r in eight_weeks}
    assert "(not set)" in landings and any("?utm_" in p for p in landings)
    assert any(p.startswith("/docs/") and p.count("/") >= 3 for p in landings)


def test_each_row_is_drawn_for_the_class_the_metrics_rules_give_it(classify):
    # The generator labels its rows internally; the rules of docs/metrics.md §1 must agree on every one.
    for day in (date(2025, 7, 15), WEEKDAY, date(2026, 3, 10)):
        for r in _full_day(42, "small", day):
            names = ["sessionSource", "sessionMedium", "sessionCampaignName", "landingPagePlusQueryString"]
            row = dict(zip(names, r[:4], strict=True))
            assert classify(row) == r[-1], r


def test_rows_are_consistent_and_sized_for_the_scale(eight_weeks):
    per_day = Counter(r["date"] for r in eight_weeks)
    weekdays = [n for d, n in per_day.items() if date(int(d[:4]), int(d[4:6]), int(d[6:])).weekday() < 5]
    assert 150 <= statistics.median(weekdays) <= 400
    for r in eight_weeks:
        assert 1 <= r["sessions"]
        assert 0 <= r["engagedSessions"] <= r["sessions"]
        assert 1 <= r["totalUsers"] <= r["sessions"]
        assert 0 <= r["newUsers"] <= r["totalUsers"]
        assert 0 <= r["keyEvents"] <= r["sessions"]
    sessions = sum(r["sessions"] for r in eight_weeks)
    assert 0.015 < sum(r["keyEvents"] for r in eight_weeks) / sessions < 0.035
    assert 0.5 < sum(r["engagedSessions"] for r in eight_weeks) / sessions < 0.75


def test_a_demo_day_generates_in_well_under_50_ms():
    timings = []
    for offset in range(3):
        day = date(2026, 5, 4) + timedelta(days=offset)
        generate_day.cache_clear()
        _full_day.cache_clear()
        start = time.perf_counter()
        rows = generate_day(42, "demo", day, "sessions").rows
        timings.append(time.perf_counter() - start)
        assert 800 <= len(rows) <= 2200
    assert min(timings) < 0.05, timings


def test_the_sandbox_serves_any_seed_and_scale_it_is_given():
    with SandboxServer(seed=3, scale="demo") as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert (server.seed, server.scale, server.ga4_base_url) == (3, "demo", server.base_url + "/ga4")
    with pytest.raises(ValueError, match="unknown sandbox scale 'huge'"):
        SandboxServer(scale="huge")


# --- planted effect a: the dark-social trend ----------------------------------------------------------


def test_dark_social_share_rises_over_the_history(ga4, make_sessions_body, classify, today):
    def share(start: date, end: date) -> float:
        daily_dark, daily_total = Counter(), Counter()
        for r in ga4.rows(make_sessions_body(start, end)):
            daily_total[r["date"]] += r["sessions"]
            if classify(r) in ("dark_social_messaging", "dark_social_direct"):
                daily_dark[r["date"]] += r["sessions"]
        assert len(daily_total) == 28
        return statistics.mean(daily_dark[d] / daily_total[d] for d in daily_total)

    last_day = today - timedelta(days=1)
    first = share(SANDBOX_START_DATE, SANDBOX_START_DATE + timedelta(days=27))
    last = share(last_day - timedelta(days=27), last_day)
    assert 0.17 < first < 0.25
    assert 0.27 < last < 0.34
    assert last - first >= 0.07


def test_a_history_load_generates_each_day_once_for_both_reports(ga4, make_sessions_body, make_leads_body):
    from connectors.sandbox import ga4 as generator
    from connectors.sandbox.ga4_api import _report_table

    first, last = date(2026, 1, 5), date(2026, 4, 14)  # 100 days: more than a small cache keeps
    generate_day.cache_clear()
    _full_day.cache_clear()
    _report_table.cache_clear()
    sessions = ga4.rows(make_sessions_body(first, last))
    leads = ga4.rows(make_leads_body(first, last))
    assert sessions and leads
    info = generator._FULL_DAY_CACHES["small"].cache_info()
    # the sessions report made the 100 days; the leads report found them made
    assert (info.misses, info.hits) == (100, 100)
