"""How many calls a GA4 load makes, per method: one token grant for the process and one runReport
per report over the whole range asked (more only where its rows fill more than one page), on a
sandbox of its own (so the token grant is this test's)."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import duckdb
import pytest

from orchestration.ga4.assets import build_ga4_assets
from orchestration.ga4.resources import GA4Resource
from orchestration.settings import Settings
from tests.orchestration.range_load import load_range

FIRST, LAST = date(2026, 6, 8), date(2026, 6, 14)  # 7 days
RUN_REPORT, TOKEN = ":runReport", "/google/token"


@pytest.fixture
def sandbox(pinned_sandbox):
    return pinned_sandbox


def _load(tmp_path, page_size: int, first: date, last: date, nightly: bool = False) -> Settings:
    resources = {"ga4": GA4Resource(page_size=page_size)}
    return load_range(tmp_path, build_ga4_assets, resources, first, last, FIRST - timedelta(days=5), nightly)


def _rows(settings: Settings, table: str, first: date, last: date) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(
            f"select count(*) from raw_ga4.{table} where date between ? and ?", [first, last]
        ).fetchone()[0]


def test_a_week_costs_one_token_and_one_report_per_table(sandbox, tmp_path):
    settings = _load(tmp_path, 250_000, FIRST, LAST)
    assert len(sandbox.requests_to(TOKEN)) == 1
    reports = [json.loads(r.body) for r in sandbox.requests_to(RUN_REPORT)]
    assert len(reports) == 2
    # each over the whole week, by date, in date order, in the API's largest page
    for body in reports:
        assert body["dateRanges"] == [{"startDate": "2026-06-08", "endDate": "2026-06-14"}]
        assert body["dimensions"][0] == {"name": "date"}
        assert body["orderBys"] == [{"dimension": {"dimensionName": "date"}}]
        assert (body["limit"], body["offset"], body["returnPropertyQuota"]) == ("250000", "0", True)
    assert _rows(settings, "sessions_daily", FIRST, LAST) > 1000  # one page held them all
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        days = conn.execute("select count(distinct date) from raw_ga4.sessions_daily").fetchone()[0]
    assert days == 7


def test_small_pages_cost_exactly_the_pages_the_rows_fill(sandbox, tmp_path):
    settings = _load(tmp_path, 500, FIRST, LAST)
    sessions = _rows(settings, "sessions_daily", FIRST, LAST)
    leads = _rows(settings, "leads_daily", FIRST, LAST)
    assert sessions > 1000 and leads > 0
    assert len(sandbox.requests_to(RUN_REPORT)) == math.ceil(sessions / 500) + math.ceil(leads / 500)
    assert len(sandbox.requests_to(TOKEN)) == 1  # the token is held for the whole run
    bodies = [json.loads(r.body) for r in sandbox.requests_to(RUN_REPORT)]
    offsets = [b["offset"] for b in bodies if "dimensionFilter" not in b]  # the sessions report's
    assert offsets == [str(500 * i) for i in range(math.ceil(sessions / 500))]


def test_the_nightly_run_asks_one_report_per_table_for_its_trailing_days(sandbox, tmp_path):
    _load(tmp_path, 250_000, FIRST, LAST, nightly=True)
    reports = [json.loads(r.body) for r in sandbox.requests_to(RUN_REPORT)]
    # yesterday and the 3 days GA4 still revises
    assert [b["dateRanges"] for b in reports] == [[{"startDate": "2026-06-11", "endDate": "2026-06-14"}]] * 2
    assert len(sandbox.requests_to(TOKEN)) == 1
