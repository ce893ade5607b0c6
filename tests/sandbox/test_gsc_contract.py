"""The sandbox's Search Console API keeps Google's contract, and its data has the brand's shape.

Responses are validated against the schemas of the Search Console discovery document (as derived
into tests/contracts/gsc.json) with the discovery -> JSON Schema converter of conftest.py
(validate_discovery). The planted effects
are measured from the raw rows with the test's own reading of "branded", not the generator's list.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote

import google.auth.transport.requests
import jsonschema
import pytest
import requests
from google.oauth2 import service_account

from connectors.sandbox.brand import PLANTED

SITE = "sc-domain:northwind-analytics.com"
WEEKDAY = date(2026, 2, 4)  # a Wednesday with no planted event
BRANDED = re.compile(r"nort\w*\s?wi?n?d|north\s?wind", re.IGNORECASE)
QUERY_DIMENSIONS = ["DATE", "QUERY", "PAGE", "DEVICE", "COUNTRY"]


class RawGSC:
    def __init__(self, sandbox, token: str):
        self.sandbox = sandbox
        self.token = token
        self.http = requests.Session()

    def post(self, body: object, site: str = SITE, token: str | None = None) -> requests.Response:
        url = f"{self.sandbox.base_url}/gsc/webmasters/v3/sites/{quote(site, safe='')}/searchAnalytics/query"
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        return self.http.post(url, json=body, headers=headers, timeout=30)

    def rows(self, start: date, end: date, dimensions: list[str], **extra) -> list[dict]:
        out, start_row = [], 0
        while True:
            body = {
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "dimensions": dimensions,
                "rowLimit": 25000,
                "startRow": start_row,
                **extra,
            }
            response = self.post(body)
            assert response.status_code == 200, response.text
            page = response.json().get("rows", [])
            out += page
            if len(page) < 25000:
                return out
            start_row += 25000


@pytest.fixture(scope="module")
def gsc(sandbox, service_account_info) -> RawGSC:
    credentials = service_account.Credentials.from_service_account_info(
        service_account_info, scopes=["https://www.googleapis.com/auth/webmasters.readonly"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    return RawGSC(sandbox, credentials.token)


@pytest.fixture(scope="module")
def discovery(contract) -> dict:
    return contract("gsc")


def test_query_rows_match_the_discovery_schema(gsc, discovery, validate_discovery):
    body = {
        "startDate": WEEKDAY.isoformat(),
        "endDate": WEEKDAY.isoformat(),
        "dimensions": QUERY_DIMENSIONS,
        "type": "WEB",
        "dataState": "FINAL",
        "rowLimit": 100,
        "startRow": 0,
    }
    validate_discovery(discovery, "SearchAnalyticsQueryRequest", body)
    response = gsc.post(body)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    payload = response.json()
    validate_discovery(discovery, "SearchAnalyticsQueryResponse", payload)
    assert payload["responseAggregationType"] == "BY_PAGE"
    assert len(payload["rows"]) == 100
    for row in payload["rows"]:
        day, query, page, device, country = row["keys"]
        assert day == "2026-02-04" and query == query.strip()
        assert page.startswith("https://www.northwind-analytics.com/")
        assert device in ("DESKTOP", "MOBILE", "TABLET")
        assert re.fullmatch(r"[a-z]{3}", country)
        assert 0 <= row["clicks"] <= row["impressions"] and row["impressions"] > 0
        assert row["ctr"] == pytest.approx(row["clicks"] / row["impressions"])
        assert row["position"] >= 1.0
    clicks = [r["clicks"] for r in payload["rows"]]
    assert clicks == sorted(clicks, reverse=True)


def test_lower_case_enums_are_accepted_like_google(gsc, discovery, validate_discovery):
    body = {"startDate": "2026-02-04", "endDate": "2026-02-04", "dimensions": ["date"], "dataState": "final"}
    payload = gsc.post(body).json()
    validate_discovery(discovery, "SearchAnalyticsQueryResponse", payload)
    assert payload["responseAggregationType"] == "BY_PROPERTY"
    assert [r["keys"] for r in payload["rows"]] == [["2026-02-04"]]


def test_converter_rejects_rows_that_break_the_contract(discovery, validate_discovery):
    for bad in ({"rows": [{"clicks": "3"}]}, {"rows": [{"keys": "a"}]}, {"rowz": []}):
        with pytest.raises(jsonschema.ValidationError):
            validate_discovery(discovery, "SearchAnalyticsQueryResponse", bad)


def test_totals_exceed_query_rows_by_the_anonymized_clicks(gsc):
    days = [WEEKDAY + timedelta(days=i) for i in range(14)]
    totals = {r["keys"][0]: r["clicks"] for r in gsc.rows(days[0], days[-1], ["date"])}
    by_day: dict[str, float] = {}
    for r in gsc.rows(days[0], days[-1], QUERY_DIMENSIONS):
        by_day[r["keys"][0]] = by_day.get(r["keys"][0], 0) + r["clicks"]
    assert set(totals) == set(by_day) == {d.isoformat() for d in days}
    shares = [(totals[d] - by_day[d]) / totals[d] for d in totals]
    assert all(0.10 <= s <= 0.30 for s in shares), shares
    assert 0.15 <= sum(shares) / len(shares) <= 0.25


def test_branded_clicks_rise_during_the_meta_flight_and_the_week_after(gsc):
    # docs/metrics.md §2 mart_campaign_halo: before = 28 days before flight start, during = start .. end + 7.
    start = PLANTED.meta_flight_start
    before = (start - timedelta(days=28), start - timedelta(days=1))
    during = (start, PLANTED.meta_flight_end + timedelta(days=7))

    def branded_per_day(window):
        rows = gsc.rows(*window, ["QUERY"])
        return sum(r["clicks"] for r in rows if BRANDED.search(r["keys"][0])) / (
            (window[1] - window[0]).days + 1
        )

    lift = branded_per_day(during) / branded_per_day(before) - 1
    assert 0.25 <= lift <= 0.45, lift


def test_branded_queries_include_misspellings_and_a_non_branded_long_tail(gsc):
    queries = {r["keys"][0] for r in gsc.rows(WEEKDAY - timedelta(days=27), WEEKDAY, ["QUERY"])}
    branded = {q for q in queries if BRANDED.search(q)}
    assert {"northwind analytics", "northwind pricing", "northwind-analytics login"} <= branded
    assert any(not q.startswith("northwind") for q in branded)  # misspellings such as "nortwind analytics"
    assert {"dark social attribution", "how to measure dark social"} <= queries
    assert len(queries - branded) >= 50


def test_weekends_have_fewer_clicks_and_traffic_grows(gsc):
    weeks = gsc.rows(date(2026, 1, 5), date(2026, 2, 1), ["DATE"])
    by_weekday = {}
    for r in weeks:
        by_weekday.setdefault(date.fromisoformat(r["keys"][0]).weekday(), []).append(r["clicks"])
    weekday = sum(sum(by_weekday[d]) for d in range(5)) / 20
    weekend = sum(sum(by_weekday[d]) for d in (5, 6)) / 8
    assert weekend < 0.7 * weekday

    def month(first):
        return sum(r["clicks"] for r in gsc.rows(first, first + timedelta(days=27), ["DATE"]))

    assert 1.2 <= month(date(2026, 10, 5)) / month(date(2025, 10, 6)) <= 1.6  # ~ +40% a year


def test_final_data_lags_and_all_data_flags_the_first_incomplete_date(gsc, today):
    last_final = today - timedelta(days=3)
    rows = gsc.rows(last_final - timedelta(days=1), today, ["DATE"])
    assert {r["keys"][0] for r in rows} == {
        (last_final - timedelta(days=1)).isoformat(),
        last_final.isoformat(),
    }
    body = {
        "startDate": (today - timedelta(days=6)).isoformat(),
        "endDate": today.isoformat(),
        "dimensions": ["DATE"],
        "dataState": "ALL",
    }
    payload = gsc.post(body).json()
    assert payload["metadata"] == {"firstIncompleteDate": (today - timedelta(days=2)).isoformat()}
    served = {r["keys"][0] for r in payload["rows"]}
    assert served == {(today - timedelta(days=i)).isoformat() for i in range(1, 7)}
    assert "metadata" not in gsc.post({**body, "dataState": "FINAL"}).json()


def test_days_outside_the_history_are_absent(gsc, today):
    assert gsc.rows(date(2025, 6, 1), date(2025, 6, 30), ["DATE"]) == []  # before the brand's data
    assert gsc.rows(today - timedelta(days=520), today - timedelta(days=490), ["DATE"]) == []  # > 16 months


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"rowLimit": 25001}, 400, "rowLimit"),
        ({"startRow": -1}, 400, "startRow"),
        ({"dimensions": ["DATE", "BROWSER"]}, 400, "dimensions"),
        ({"startDate": "2026/02/04"}, 400, "startDate"),
        ({"endDate": "2026-01-01"}, 400, "after endDate"),
        ({"dataState": "PARTIAL"}, 400, "dataState"),
        ({"rowsLimit": 10}, 400, 'Unknown name "rowsLimit"'),
    ],
)
def test_invalid_requests_get_googles_error_body(gsc, change, status, message):
    body = {"startDate": "2026-02-04", "endDate": "2026-02-04", "dimensions": ["DATE"], **change}
    response = gsc.post(body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]
    assert error["errors"][0]["reason"] == "invalid"


def test_unknown_site_is_forbidden_and_missing_token_unauthenticated(gsc):
    body = {"startDate": "2026-02-04", "endDate": "2026-02-04"}
    forbidden = gsc.post(body, site="sc-domain:example.com")
    assert forbidden.status_code == 403
    assert "sufficient permission for site 'sc-domain:example.com'" in forbidden.json()["error"]["message"]
    for token in ("", "ya29.not-issued-by-the-sandbox"):
        response = gsc.post(body, token=token)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    prefix = gsc.post({**body, "dimensions": ["PAGE"]}, site="https://www.northwind-analytics.com/")
    assert prefix.status_code == 200 and prefix.json()["rows"]


def test_dimension_filters_narrow_the_rows(gsc):
    body = {
        "startDate": "2026-02-04",
        "endDate": "2026-02-04",
        "dimensions": ["QUERY", "DEVICE"],
        "dimensionFilterGroups": [
            {"filters": [{"dimension": "QUERY", "operator": "CONTAINS", "expression": "Northwind"}]},
            {"filters": [{"dimension": "DEVICE", "operator": "EQUALS", "expression": "mobile"}]},
        ],
    }
    rows = gsc.post(body).json()["rows"]
    assert rows and all("northwind" in r["keys"][0] and r["keys"][1] == "MOBILE" for r in rows)


def test_same_seed_and_date_give_the_same_rows(sandbox):
    from connectors.sandbox.gsc import generate_day

    generate_day.cache_clear()
    first = generate_day(sandbox.seed, "small", WEEKDAY)
    generate_day.cache_clear()
    assert generate_day(sandbox.seed, "small", WEEKDAY) == first
    assert generate_day(sandbox.seed + 1, "small", WEEKDAY) != first
