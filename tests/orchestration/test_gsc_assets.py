"""The Search Console assets land each day in raw_gsc.* through the sandbox's real HTTP API."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from connectors.gsc import QUERIES_SCHEMA
from connectors.sandbox import ensure_sandbox
from orchestration.gsc.assets import build_gsc_assets
from orchestration.gsc.resources import GSCResource
from orchestration.jobs import range_tags
from orchestration.partitions import NIGHTLY_TAG, daily_partitions, history_tags
from orchestration.warehouse import DuckDBWarehouse

# Search Console serves final data up to yesterday - 2: this day is final.
DAY = (date.today() - timedelta(days=4)).isoformat()


@pytest.fixture
def setup(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=10)
    queries, totals = build_gsc_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        # A small page forces several pages per day.
        "gsc": GSCResource(row_limit=300),
    }
    yield settings, queries, totals, resources
    ensure_sandbox().clear_faults()


def _rows(path, sql):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _expected_rows(day: str) -> int:
    with GSCResource(row_limit=300).client() as client:
        pages = list(client.queries(date.fromisoformat(day)))
    assert len(pages) > 1, "the small brand should need several 300-row pages per day"
    return pa.Table.from_batches([p.batch for p in pages], schema=QUERIES_SCHEMA).num_rows


def test_partition_lands_every_row_of_the_day_with_load_metadata(setup):
    settings, queries, totals, resources = setup
    result = dg.materialize([queries, totals], partition_key=DAY, resources=resources)
    assert result.success
    (count, days, run_ids, site, loaded) = _rows(
        settings.warehouse_path,
        "select count(*), count(distinct date), count(distinct _run_id), any_value(_site_url), "
        "count(_loaded_at) from raw_gsc.queries_daily",
    )[0]
    assert count == _expected_rows(DAY)
    assert days == 1 and run_ids == 1 and loaded == count
    assert site == "sc-domain:northwind-analytics.com"
    materialization = result.asset_materializations_for_node(queries.op.name)[0]
    assert materialization.metadata["rows"].value == count
    (total_clicks, query_clicks) = _rows(
        settings.warehouse_path,
        "select (select clicks from raw_gsc.totals_daily), (select sum(clicks) from raw_gsc.queries_daily)",
    )[0]
    assert total_clicks > query_clicks > 0  # the anonymized clicks


def test_rerunning_a_partition_replaces_the_day_without_duplicates(setup):
    settings, queries, _, resources = setup
    first = dg.materialize([queries], partition_key=DAY, resources=resources)
    sql = "select * exclude (_loaded_at, _run_id) from raw_gsc.queries_daily order by all"
    before = _rows(settings.warehouse_path, sql)
    second = dg.materialize([queries], partition_key=DAY, resources=resources)
    assert _rows(settings.warehouse_path, sql) == before and len(before) > 0
    dupes = _rows(
        settings.warehouse_path,
        "select count(*) from (select date, query, page, device, country, count(*) n "
        "from raw_gsc.queries_daily group by all having n > 1)",
    )[0][0]
    assert dupes == 0
    run_ids = _rows(settings.warehouse_path, "select distinct _run_id from raw_gsc.queries_daily")
    assert run_ids == [(second.run_id,)] and second.run_id != first.run_id


def test_a_failed_load_keeps_the_day_already_loaded(setup):
    settings, queries, _, resources = setup
    assert dg.materialize([queries], partition_key=DAY, resources=resources).success
    sql = "select count(*), sum(clicks) from raw_gsc.queries_daily"
    good = _rows(settings.warehouse_path, sql)[0]
    # The second page of the re-run fails for good: nothing of the half-fetched day may replace the rows.
    ensure_sandbox().inject_fault("searchAnalytics", 400, times=1, after=1)
    result = dg.materialize([queries], partition_key=DAY, resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "gsc" in message and "400" in message
    assert _rows(settings.warehouse_path, sql)[0] == good


def test_a_missing_field_fails_the_partition_naming_it_and_keeps_the_day(setup):
    settings, _, totals, resources = setup
    assert dg.materialize([totals], partition_key=DAY, resources=resources).success
    good = _rows(settings.warehouse_path, "select * exclude (_loaded_at, _run_id) from raw_gsc.totals_daily")

    def drop_impressions(body):
        return {**body, "rows": [{k: v for k, v in r.items() if k != "impressions"} for r in body["rows"]]}

    ensure_sandbox().inject_fault(
        "searchAnalytics", 200, times=1, kind="transform", transform=drop_impressions
    )
    result = dg.materialize([totals], partition_key=DAY, resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "'impressions'" in str(failure.event_specific_data.error)
    after = _rows(settings.warehouse_path, "select * exclude (_loaded_at, _run_id) from raw_gsc.totals_daily")
    assert after == good


def test_a_range_run_loads_each_day_once_and_days_not_final_stay_empty(setup):
    settings, queries, totals, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    job = dg.Definitions(
        assets=[queries, totals], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    result = job.execute_in_process(tags=range_tags(partitions[-5], partitions[-1]))
    assert result.success
    loaded = _rows(settings.warehouse_path, "select date::varchar from raw_gsc.totals_daily order by 1")
    # Yesterday and the day before are not final yet: Search Console answers no rows for them.
    assert [d for (d,) in loaded] == partitions[-5:-2]
    per_day = _rows(
        settings.warehouse_path, "select count(distinct date), count(*) from raw_gsc.queries_daily"
    )[0]
    assert per_day[0] == 3 and per_day[1] > 0


def test_a_nightly_run_reloads_only_the_days_search_console_revises(setup):
    settings, _, totals, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    job = dg.Definitions(
        assets=[totals], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    before = len(ensure_sandbox().requests_to("searchAnalytics"))
    result = job.execute_in_process(tags={**range_tags(partitions[-8], partitions[-1]), NIGHTLY_TAG: "true"})
    assert result.success
    # Yesterday and the 4 days before: one request for all of them (their totals fit one page),
    # and one asking Search Console which of the days that answered no final rows it is still
    # collecting.
    bodies = [json.loads(r.body) for r in ensure_sandbox().requests_to("searchAnalytics")[before:]]
    assert [(b["startDate"], b["endDate"], b["dataState"]) for b in bodies] == [
        (partitions[-5], partitions[-1], "FINAL"),
        (partitions[-2], partitions[-1], "ALL"),
    ]
    days = _rows(settings.warehouse_path, "select date::varchar from raw_gsc.totals_daily order by 1")
    assert [d for (d,) in days] == partitions[-5:-2]


def test_a_day_search_console_has_not_finalised_is_not_loaded_and_says_so(setup):
    settings, queries, totals, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    job = dg.Definitions(
        assets=[totals], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    before = len(ensure_sandbox().requests_to("searchAnalytics"))
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(instance=instance, tags=range_tags(partitions[-4], partitions[-1]))
    assert result.success
    # The sandbox, as Search Console, finalises a day 3 days after: yesterday and the day before
    # are still being collected (metadata.firstIncompleteDate), the two days before them final.
    not_final, final = partitions[-2:], partitions[-4:-2]
    bodies = [json.loads(r.body) for r in ensure_sandbox().requests_to("searchAnalytics")[before:]]
    asked = [b for b in bodies if b["dataState"] == "ALL"]
    # One question for the run, over the days from the first that answered no final rows.
    assert [(b["startDate"], b["endDate"]) for b in asked] == [(not_final[0], not_final[1])]
    loaded = _rows(
        settings.warehouse_path, "select date::varchar, clicks from raw_gsc.totals_daily order by 1"
    )
    assert [d for d, _ in loaded] == final and all(clicks > 0 for _, clicks in loaded)
    by_partition = {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(totals.op.name)
    }
    assert set(by_partition) == set(partitions[-4:])
    for day in not_final:
        assert by_partition[day]["final"] is False and by_partition[day]["loaded"] is False
    for day in final:
        assert "final" not in by_partition[day]
    run_meta = by_partition[final[0]]
    assert run_meta["not_final_days"] == 2 and run_meta["final_days"] == 2
    assert run_meta["not_final"] == ", ".join(not_final)
    # the last day's entry (not final) still carries the run's rows, which the summary prints
    assert by_partition[not_final[-1]]["rows"] == run_meta["rows"] == len(loaded)
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("2 day(s) not final" in m and f"{not_final[0]}..{not_final[1]}" in m for m in logged)


def test_in_a_history_load_the_days_not_final_are_missing_from_the_ledger_and_the_coverage(setup):
    settings, _, _, resources = setup
    (_, totals) = build_gsc_assets(None)  # as `make backfill` builds them for a long range
    yesterday = date.fromisoformat(daily_partitions(settings).get_partition_keys()[-1])
    first = yesterday - timedelta(days=3)
    result = dg.materialize([totals], resources=resources, tags=history_tags(first, yesterday))
    assert result.success
    (materialization,) = result.asset_materializations_for_node(totals.op.name)
    assert materialization.partition is None
    meta = {k: v.value for k, v in materialization.metadata.items()}
    not_final = f"{yesterday - timedelta(days=1)}, {yesterday}"
    assert meta["not_final"] == not_final and meta["final_days"] == 2
    ledger = _rows(
        settings.warehouse_path,
        "select day::varchar from ledger.loaded_days where table_name = 'raw_gsc.totals_daily' order by 1",
    )
    assert [d for (d,) in ledger] == [str(first), str(first + timedelta(days=1))]
    # The coverage the UI shows counts the days not final as missing, never as loaded.
    assert meta["history_missing"].endswith(f"{yesterday - timedelta(days=1)}..{yesterday}")
    assert meta["history_days_loaded"] == 2
