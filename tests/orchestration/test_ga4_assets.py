"""The GA4 assets land each day in raw_ga4.* through the sandbox's real HTTP API."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import ensure_sandbox
from orchestration.ga4.assets import build_ga4_assets
from orchestration.ga4.resources import GA4Resource
from orchestration.jobs import range_tags
from orchestration.partitions import NIGHTLY_TAG, daily_partitions
from orchestration.warehouse import DuckDBWarehouse

DAY = (date.today() - timedelta(days=2)).isoformat()


@pytest.fixture
def setup(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=10)
    _, sessions, leads = build_ga4_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        # A small page forces several pages per day.
        "ga4": GA4Resource(page_size=50),
    }
    return settings, sessions, leads, resources


def _rows(path, sql, params=()):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, list(params)).fetchall()


def _expected_row_count(day: str) -> int:
    # Ask the sandbox directly through the connector for the day's rowCount.
    client = GA4Resource(page_size=50).client()
    pages = list(client.sessions(date.fromisoformat(day)))
    assert len(pages) > 1, "the small brand should need several 50-row pages per day"
    return pages[0].row_count


def test_partition_lands_every_row_of_the_day_with_load_metadata(setup):
    settings, sessions, _, resources = setup
    result = dg.materialize([sessions], partition_key=DAY, resources=resources)
    assert result.success
    expected = _expected_row_count(DAY)
    (count, days, run_ids, props, loaded) = _rows(
        settings.warehouse_path,
        "select count(*), count(distinct date), count(distinct _run_id), any_value(_property_id), "
        "count(_loaded_at) from raw_ga4.sessions_daily",
    )[0]
    assert count == expected
    assert days == 1 and run_ids == 1 and loaded == count
    assert props == "412345678"
    materialization = result.asset_materializations_for_node(sessions.op.name)[0]
    assert materialization.metadata["rows"].value == expected


def test_rerunning_a_partition_replaces_the_day_without_duplicates(setup):
    settings, sessions, _, resources = setup
    first = dg.materialize([sessions], partition_key=DAY, resources=resources)
    before = _rows(
        settings.warehouse_path,
        "select * exclude (_loaded_at, _run_id) from raw_ga4.sessions_daily order by all",
    )
    second = dg.materialize([sessions], partition_key=DAY, resources=resources)
    after = _rows(
        settings.warehouse_path,
        "select * exclude (_loaded_at, _run_id) from raw_ga4.sessions_daily order by all",
    )
    assert before == after and len(after) > 0
    dupes = _rows(
        settings.warehouse_path,
        "select count(*) from (select date, session_source, session_medium, session_campaign_name, "
        "landing_page_plus_query_string, device_category, count(*) n from raw_ga4.sessions_daily "
        "group by all having n > 1)",
    )[0][0]
    assert dupes == 0
    run_ids = _rows(settings.warehouse_path, "select distinct _run_id from raw_ga4.sessions_daily")
    assert run_ids == [(second.run_id,)] and second.run_id != first.run_id


def test_a_range_run_loads_each_day_once(setup):
    settings, sessions, leads, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    first, last = partitions[-3], partitions[-1]
    job = dg.Definitions(
        assets=[sessions, leads],
        jobs=[dg.define_asset_job("load")],
        resources=resources,
    ).resolve_job_def("load")
    result = job.execute_in_process(tags=range_tags(first, last))
    assert result.success
    per_day = _rows(
        settings.warehouse_path,
        "select date::varchar, count(*) from raw_ga4.sessions_daily group by 1 order by 1",
    )
    assert [d for d, _ in per_day] == partitions[-3:]
    assert all(n > 0 for _, n in per_day)
    leads_days = _rows(settings.warehouse_path, "select count(distinct date) from raw_ga4.leads_daily")[0][0]
    assert leads_days == 3


def test_a_failed_load_keeps_the_day_already_loaded(setup, monkeypatch):
    settings, sessions, _, resources = setup
    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "2")
    assert dg.materialize([sessions], partition_key=DAY, resources=resources).success
    good = _rows(settings.warehouse_path, "select count(*), sum(sessions) from raw_ga4.sessions_daily")[0]
    # The second page of the re-run fails: nothing of the half-fetched day may replace the good rows.
    sandbox = ensure_sandbox()
    # Every request after the first page fails, retries included.
    sandbox.inject_fault("runReport", status=500, times=None, after=1)
    try:
        result = dg.materialize([sessions], partition_key=DAY, resources=resources, raise_on_error=False)
    finally:
        sandbox.clear_faults()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "412345678" in message and "500" in message
    after = _rows(settings.warehouse_path, "select count(*), sum(sessions) from raw_ga4.sessions_daily")[0]
    assert after == good


def test_a_nightly_run_reloads_only_the_days_ga4_revises(setup):
    settings, sessions, _, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    # The nightly range spans the longest window of all sources; GA4 keeps yesterday + 3 days.
    first, last = partitions[-8], partitions[-1]
    job = dg.Definitions(
        assets=[sessions], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    result = job.execute_in_process(tags={**range_tags(first, last), NIGHTLY_TAG: "true"})
    assert result.success
    days = _rows(
        settings.warehouse_path, "select distinct date::varchar from raw_ga4.sessions_daily order by 1"
    )
    assert [d for (d,) in days] == partitions[-4:]
