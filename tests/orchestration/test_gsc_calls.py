"""How many calls a Search Console load makes, per method: one token grant for the process, one
query for a range's totals, the query rows in ranges (the first of a week, then sized from its rows)
paged by startRow, and one question for the run about the days not final yet, on a sandbox of
its own (so the token grant is this test's)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import pytest

from connectors.gsc import FIRST_RANGE_DAYS
from orchestration.gsc.assets import build_gsc_assets
from orchestration.gsc.resources import GSCResource
from orchestration.settings import Settings
from tests.orchestration.range_load import load_range

# the sandbox's today is pinned (conftest PINNED_TODAY, 2026-06-20): days up to 2026-06-17 are final
FIRST = date(2026, 5, 26)
QUERY, TOKEN = "searchAnalytics", "/google/token"


@pytest.fixture
def sandbox(pinned_sandbox):
    return pinned_sandbox


def _load(tmp_path, row_limit: int, first: date, last: date, nightly: bool = False) -> Settings:
    resources = {"gsc": GSCResource(row_limit=row_limit)}
    return load_range(tmp_path, build_gsc_assets, resources, first, last, FIRST - timedelta(days=5), nightly)


def _bodies(sandbox) -> list[dict]:
    return [json.loads(r.body) for r in sandbox.requests_to(QUERY)]


def _rows(settings: Settings, table: str, first: date, last: date) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(
            f"select count(*) from raw_gsc.{table} where date between ? and ?", [first, last]
        ).fetchone()[0]


def _pages(rows: int, row_limit: int) -> int:
    return rows // row_limit + 1  # the last page is the first short one (empty when rows fill pages)


def test_a_week_costs_one_token_one_totals_query_and_the_pages_of_its_rows(sandbox, tmp_path):
    last = FIRST + timedelta(days=6)
    settings = _load(tmp_path, 25_000, FIRST, last)
    bodies = _bodies(sandbox)
    assert len(sandbox.requests_to(TOKEN)) == 1
    assert _rows(settings, "queries_daily", FIRST, last) < 25_000  # one page holds the week
    # one query per table over the whole week, final data, the API's largest page; no question
    # about final days (every day answered rows)
    assert sorted((b["startDate"], b["endDate"], len(b["dimensions"]), b["rowLimit"]) for b in bodies) == [
        ("2026-05-26", "2026-06-01", 1, 25_000),
        ("2026-05-26", "2026-06-01", 5, 25_000),
    ]
    assert {b["dataState"] for b in bodies} == {"FINAL"}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        assert conn.execute("select count(distinct date) from raw_gsc.queries_daily").fetchone()[0] == 7
        assert conn.execute("select count(*) from raw_gsc.totals_daily").fetchone()[0] == 7


def test_small_pages_cost_exactly_the_pages_of_each_range(sandbox, tmp_path):
    last = FIRST + timedelta(days=19)
    settings = _load(tmp_path, 300, FIRST, last)
    split = FIRST + timedelta(days=FIRST_RANGE_DAYS)
    first_week = _rows(settings, "queries_daily", FIRST, split - timedelta(days=1))
    rest = _rows(settings, "queries_daily", split, last)
    assert first_week > 300 and rest > 300
    queries = [b for b in _bodies(sandbox) if len(b["dimensions"]) == 5]
    # the first range is a week; its rows a day size the next, which holds the 13 days left
    ranges = sorted({(b["startDate"], b["endDate"]) for b in queries})
    assert ranges == [
        (FIRST.isoformat(), (split - timedelta(days=1)).isoformat()),
        (split.isoformat(), last.isoformat()),
    ]
    assert len(queries) == _pages(first_week, 300) + _pages(rest, 300)
    totals = [b for b in _bodies(sandbox) if len(b["dimensions"]) == 1]
    assert [(b["startDate"], b["endDate"], b["startRow"]) for b in totals] == [
        (FIRST.isoformat(), last.isoformat(), 0)
    ]
    assert len(sandbox.requests_to(TOKEN)) == 1


def test_a_nightly_run_asks_once_which_days_are_not_final(sandbox, tmp_path):
    settings = _load(tmp_path, 25_000, FIRST, date(2026, 6, 19), nightly=True)
    bodies = _bodies(sandbox)
    # yesterday and the 4 days before, in one query per table; 06-18 and 06-19 answer no final rows
    assert sorted((b["startDate"], b["endDate"], b["dataState"]) for b in bodies) == [
        ("2026-06-15", "2026-06-19", "FINAL"),
        ("2026-06-15", "2026-06-19", "FINAL"),
        ("2026-06-18", "2026-06-19", "ALL"),  # one question for the run, both tables
    ]
    assert len(sandbox.requests_to(TOKEN)) == 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        loaded = conn.execute("select distinct date::varchar from raw_gsc.totals_daily order by 1").fetchall()
    assert [d for (d,) in loaded] == ["2026-06-15", "2026-06-16", "2026-06-17"]
