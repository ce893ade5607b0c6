"""How many calls a Meta load makes, per method: a backfill's insights in one async report (a POST,
the two status polls a report run needs, its pages of 5,000 rows), a nightly run's in one
synchronous call, and the pixel's hours in pages of 100 per month, on a sandbox of its own."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date, timedelta

import duckdb
import pytest

from orchestration.meta.assets import PIXEL_CHUNK_DAYS, build_meta_assets
from orchestration.meta.resources import MetaResource
from orchestration.settings import Settings
from tests.orchestration.range_load import load_range

FIRST, LAST = date(2026, 5, 17), date(2026, 6, 15)  # 30 days


@pytest.fixture
def sandbox(pinned_sandbox):
    return pinned_sandbox


def _load(tmp_path, nightly: bool = False) -> Settings:
    # the defaults: pages of 5,000 insights rows, the async report beyond 8 days
    resources = {"meta": MetaResource()}
    return load_range(tmp_path, build_meta_assets, resources, FIRST, LAST, FIRST - timedelta(days=5), nightly)


def _calls(sandbox) -> Counter:
    """Calls to Meta by method and path, ids as {id}."""
    return Counter(
        f"{r.method} " + re.sub(r"/(act_)?\d+", "/{id}", r.path.split("?")[0]).split("/", 3)[-1]
        for r in sandbox.requests_to("/meta/")
    )


def _one(settings: Settings, sql: str) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _pixel_pages(settings: Settings, first: date, last: date, chunk_days: int) -> int:
    pages, start = 0, first
    while start <= last:
        end = min(last, start + timedelta(days=chunk_days - 1))
        hours = _one(
            settings,
            f"select count(distinct hour_start) from raw_meta.pixel_events_hourly "
            f"where date between '{start}' and '{end}'",
        )
        pages += max(1, math.ceil(hours / 100))
        start = end + timedelta(days=1)
    return pages


def test_a_month_costs_one_async_report_and_the_pages_of_its_hours(sandbox, tmp_path):
    settings = _load(tmp_path)
    insights = _one(settings, "select count(*) from raw_meta.ad_insights_daily")
    assert 0 < insights <= 5000  # one page of results
    assert dict(_calls(sandbox)) == {
        "POST {id}/insights": 1,  # one report for the 30 days
        "GET {id}": 2,  # "Job Running", then "Job Completed"
        "GET {id}/insights": 1,
        "GET {id}/stats": _pixel_pages(settings, FIRST, LAST, PIXEL_CHUNK_DAYS),
    }
    assert _one(settings, "select count(distinct date) from raw_meta.pixel_events_hourly") == 30


def test_the_nightly_run_costs_one_insights_call_and_the_pages_of_its_hours(sandbox, tmp_path):
    settings = _load(tmp_path, nightly=True)
    first = LAST - timedelta(days=7)  # yesterday and the 7 days of the attribution window
    assert _one(settings, "select min(date) from raw_meta.ad_insights_daily") == first
    assert dict(_calls(sandbox)) == {
        "GET {id}/insights": 1,
        "GET {id}/stats": _pixel_pages(settings, first, LAST, PIXEL_CHUNK_DAYS),
    }
