"""The sandbox's Meta Marketing API answers in the wire format of Meta's object specs (as derived
into tests/contracts/meta.json), and its data carries the planted Meta effects (spring flight,
pixel leads = 1.3 x insights leads)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
import requests

from connectors.meta import INSIGHTS_FIELDS
from connectors.sandbox.brand import (
    META_PIXEL_LEAD_RATIO,
    PLANTED,
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
)
from connectors.sandbox.meta import PIXEL_EVENTS, insights_action_totals, pixel_day
from connectors.sandbox.meta_api import throttle_fault

AUTH = {"Authorization": f"Bearer {SANDBOX_META_ACCESS_TOKEN}"}


@pytest.fixture(scope="module")
def specs(contract) -> dict[str, dict[str, str]]:
    """Contract name -> {field: type} for every Meta object spec."""
    return {
        name: {f["name"]: f["type"] for f in spec["fields"]}
        for name, spec in contract("meta")["objects"].items()
    }


@pytest.fixture(scope="module")
def insights_params(contract) -> set[str]:
    account = contract("meta")["objects"]["AdAccount"]
    edges = [a for a in account["apis"] if a.get("endpoint") == "insights"]
    return {p["name"] for api in edges for p in api["params"]}


def check(value, type_: str, specs: dict, where: str) -> None:
    """`value` has the contract type `type_` (Meta sends numbers of AdsInsights as strings)."""
    if type_.startswith("list<"):
        assert isinstance(value, list), f"{where}: expected a list"
        for i, item in enumerate(value):
            check(item, type_[5:-1], specs, f"{where}[{i}]")
    elif type_ in specs:
        assert isinstance(value, dict), f"{where}: expected a {type_} object"
        for key, item in value.items():
            assert key in specs[type_], f"{where}.{key} is not a field of {type_}"
            check(item, specs[type_][key], specs, f"{where}.{key}")
    elif type_ == "string":
        assert isinstance(value, str), f"{where}: expected a string, got {value!r}"
    elif type_ in ("int", "unsigned int"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an int"
    elif type_ == "bool":
        assert isinstance(value, bool), f"{where}: expected a bool"
    elif type_ == "datetime":
        assert isinstance(value, str)
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    else:
        raise AssertionError(f"{where}: contract type {type_} is not checked by this test")


def get(sandbox, path: str, token: str = SANDBOX_META_ACCESS_TOKEN, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{sandbox.base_url}/meta/v25.0{path}", params=params, headers=headers, timeout=10)


def insights_query(since: date, until: date, **extra) -> dict:
    return {
        "level": "ad",
        "time_increment": "1",
        "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
        "fields": ",".join(INSIGHTS_FIELDS),
        **extra,
    }


def test_the_connector_asks_only_for_contract_fields_and_params(specs, insights_params):
    assert set(INSIGHTS_FIELDS) <= set(specs["AdsInsights"])
    assert {"level", "time_increment", "time_range", "fields", "limit"} <= insights_params


def test_insights_rows_are_ads_insights_objects(sandbox, specs):
    response = get(
        sandbox,
        f"/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
        **insights_query(date(2026, 3, 9), date(2026, 3, 9), limit="500"),
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "paging"} and body["data"]
    for i, row in enumerate(body["data"]):
        check(row, "AdsInsights", specs, f"data[{i}]")
        assert set(INSIGHTS_FIELDS) - {"actions"} <= set(row)
        float(row["spend"]), int(row["impressions"]), int(row["reach"]), int(row["clicks"])
        assert row["date_start"] == row["date_stop"] == "2026-03-09"
    actions = {a["action_type"] for row in body["data"] for a in row["actions"]}
    assert {
        "link_click",
        "offsite_conversion.fb_pixel_lead",
        "offsite_conversion.fb_pixel_page_view",
    } <= actions
    assert "next" not in body["paging"] and "after" in body["paging"]["cursors"]


def test_paging_has_next_until_the_last_page_and_cursors_always(sandbox):
    query = insights_query(date(2026, 3, 9), date(2026, 3, 9), limit="4")
    url = f"{sandbox.base_url}/meta/v25.0/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights"
    seen, pages = [], 0
    response = requests.get(url, params=query, headers=AUTH, timeout=10).json()
    while True:
        pages += 1
        seen += response["data"]
        assert response["paging"]["cursors"]["after"]
        if "next" not in response["paging"]:
            break
        assert "access_token=" in response["paging"]["next"]  # as Meta does: clients must strip it
        response = requests.get(response["paging"]["next"], timeout=10).json()
    assert pages > 2 and len({r["ad_id"] for r in seen}) == len(seen)


def test_async_report_run_flow(sandbox, specs):
    base = f"{sandbox.base_url}/meta/v25.0"
    query = insights_query(date(2026, 3, 1), date(2026, 3, 20))
    started = requests.post(
        f"{base}/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights", data=query, headers=AUTH, timeout=10
    )
    assert started.status_code == 200
    run_id = started.json()["report_run_id"]
    statuses = []
    for _ in range(3):
        run = requests.get(f"{base}/{run_id}", headers=AUTH, timeout=10).json()
        check(run, "AdReportRun", specs, "report_run")
        statuses.append(run["async_status"])
    assert statuses == ["Job Running", "Job Completed", "Job Completed"]
    result = requests.get(
        f"{base}/{run_id}/insights", params={"limit": "1000"}, headers=AUTH, timeout=10
    ).json()
    dates = {r["date_start"] for r in result["data"]}
    assert len(dates) == 20


def test_pixel_stats_are_hourly_event_buckets(sandbox, specs):
    response = get(
        sandbox,
        f"/{SANDBOX_META_PIXEL_ID}/stats",
        aggregation="event",
        start_time="2026-03-09T00:00:00Z",
        end_time="2026-03-10T00:00:00Z",
        limit="100",
    )
    assert response.status_code == 200
    for i, bucket in enumerate(response.json()["data"]):
        check(bucket, "AdsPixelStatsResult", specs, f"data[{i}]")
        assert bucket["start_time"].startswith("2026-03-09T") and bucket["start_time"].endswith(":00:00+0000")
        assert {e["value"] for e in bucket["data"]} <= {e for e, _ in PIXEL_EVENTS}


def test_bad_token_is_code_190_and_throttle_form_is_meta_s(sandbox):
    response = get(
        sandbox,
        f"/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
        token="wrong",
        **insights_query(date(2026, 3, 9), date(2026, 3, 9)),
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == 190 and error["type"] == "OAuthException"
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    sandbox.inject_fault("/insights", **throttle_fault(code=17, minutes=3))
    response = get(
        sandbox,
        f"/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
        **insights_query(date(2026, 3, 9), date(2026, 3, 9)),
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == 17
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])
    assert usage[SANDBOX_META_AD_ACCOUNT_ID][0]["estimated_time_to_regain_access"] == 3


def test_spring_campaign_spends_exactly_during_its_flight(sandbox):
    since, until = PLANTED.meta_flight_start - timedelta(days=3), PLANTED.meta_flight_end + timedelta(days=3)
    url = f"{sandbox.base_url}/meta/v25.0/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights"
    rows = requests.get(
        url, params=insights_query(since, until, limit="5000"), headers=AUTH, timeout=30
    ).json()["data"]
    spring = [r for r in rows if r["campaign_name"] == PLANTED.meta_campaign_name]
    days = {date.fromisoformat(r["date_start"]) for r in spring}
    flight = {PLANTED.meta_flight_start + timedelta(days=i) for i in range(28)}
    assert days == flight and all(float(r["spend"]) > 0 for r in spring)
    assert {r["campaign_name"] for r in rows} >= {"Always-on retargeting", PLANTED.meta_campaign_name}
    assert len({r["adset_id"] for r in spring}) == 3


def test_pixel_counts_cover_insights_actions_and_leads_are_1_3x(sandbox):
    day, checked = date(2026, 2, 20), 0
    while day <= date(2026, 4, 10):
        paid = insights_action_totals(sandbox.seed, sandbox.scale, day)
        pixel: dict[str, int] = {}
        for _, events in pixel_day(sandbox.seed, sandbox.scale, day):
            for event, count in events:
                pixel[event] = pixel.get(event, 0) + count
        for event, action in PIXEL_EVENTS:
            assert pixel.get(event, 0) >= paid.get(action, 0), (day, event)
        leads = paid.get("offsite_conversion.fb_pixel_lead", 0)
        if leads >= 5:
            assert abs(pixel["Lead"] / leads - META_PIXEL_LEAD_RATIO) <= 0.1, (day, pixel["Lead"], leads)
            checked += 1
        day += timedelta(days=1)
    assert checked > 40
