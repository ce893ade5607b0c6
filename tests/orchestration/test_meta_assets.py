"""The Meta assets land each day in raw_meta.* through the sandbox's Marketing API on loopback."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import ensure_sandbox
from connectors.sandbox.meta import insights_day, pixel_day
from orchestration.jobs import range_tags
from orchestration.meta.assets import build_meta_assets
from orchestration.meta.resources import MetaResource
from orchestration.partitions import NIGHTLY_TAG, daily_partitions
from orchestration.warehouse import DuckDBWarehouse

DAY = (date.today() - timedelta(days=2)).isoformat()


@pytest.fixture
def setup(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=12)
    insights, pixel = build_meta_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        # A small page forces several pages per day.
        "meta": MetaResource(page_size=5),
    }
    yield settings, insights, pixel, resources
    ensure_sandbox().clear_faults()


def _rows(path, sql):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _expected(day: str) -> tuple[int, int]:
    sandbox = ensure_sandbox()
    d = date.fromisoformat(day)
    insights = len(insights_day(sandbox.seed, sandbox.scale, d))
    pixel = sum(len(events) for _, events in pixel_day(sandbox.seed, sandbox.scale, d))
    return insights, pixel


def test_partition_lands_with_load_metadata(setup):
    settings, insights, pixel, resources = setup
    result = dg.materialize([insights, pixel], partition_key=DAY, resources=resources)
    assert result.success
    n_insights, n_pixel = _expected(DAY)
    ((count, days, account, runs, loaded),) = _rows(
        settings.warehouse_path,
        "select count(*), count(distinct date), any_value(_account_id), count(distinct _run_id), "
        "count(_loaded_at) from raw_meta.ad_insights_daily",
    )
    assert count == n_insights > 0 and days == 1 and account == "1234567890" and runs == 1 and loaded == count
    ((count, pixel_id, hours),) = _rows(
        settings.warehouse_path,
        "select count(*), any_value(_pixel_id), count(distinct hour_start) from raw_meta.pixel_events_hourly",
    )
    assert count == n_pixel and pixel_id == "987654321" and hours > 12
    materialization = result.asset_materializations_for_node(insights.op.name)[0]
    assert materialization.metadata["rows"].value == n_insights


def test_rerunning_a_partition_is_idempotent(setup):
    settings, insights, pixel, resources = setup
    query = "select * exclude (_loaded_at, _run_id) from raw_meta.ad_insights_daily order by all"
    dg.materialize([insights, pixel], partition_key=DAY, resources=resources)
    before = _rows(settings.warehouse_path, query)
    dg.materialize([insights, pixel], partition_key=DAY, resources=resources)
    after = _rows(settings.warehouse_path, query)
    assert before == after and len(after) > 0
    dupes = _rows(
        settings.warehouse_path,
        "select count(*) from (select date, ad_id from raw_meta.ad_insights_daily "
        "group by all having count(*) > 1) union all select count(*) from "
        "(select hour_start, event from raw_meta.pixel_events_hourly "
        "group by all having count(*) > 1)",
    )
    assert dupes == [(0,), (0,)]


def test_failed_load_keeps_the_day_and_names_the_field(setup):
    settings, insights, _, resources = setup
    resources = {**resources, "meta": MetaResource(page_size=2)}  # several pages on the day
    first = dg.materialize([insights], partition_key=DAY, resources=resources)
    query = "select *, from raw_meta.ad_insights_daily order by all"
    before = _rows(settings.warehouse_path, query)

    def drop_spend(payload):
        for row in payload.get("data", []):
            row.pop("spend", None)
        return payload

    # The second page of the day loses a required field.
    ensure_sandbox().inject_fault("/insights", 200, kind="transform", transform=drop_spend, after=1)
    result = dg.materialize([insights], partition_key=DAY, resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "required field 'spend'" in str(failure.event_specific_data.error)
    assert _rows(settings.warehouse_path, query) == before
    assert {
        r
        for (r,) in _rows(settings.warehouse_path, "select distinct _run_id from raw_meta.ad_insights_daily")
    } == {first.run_id}


def test_a_long_range_loads_in_one_run_through_the_async_report(setup):
    settings, insights, _, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    first, last = partitions[-10], partitions[-1]
    sandbox = ensure_sandbox()
    posts_before = len([r for r in sandbox.requests_to("/insights") if r.method == "POST"])
    job = dg.Definitions(
        assets=[insights], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    result = job.execute_in_process(tags=range_tags(first, last))
    assert result.success
    per_day = _rows(
        settings.warehouse_path,
        "select date::varchar, count(*) from raw_meta.ad_insights_daily group by 1 order by 1",
    )
    assert per_day == [(d, _expected(d)[0]) for d in partitions[-10:]]
    posts = [r for r in sandbox.requests_to("/insights") if r.method == "POST"]
    assert len(posts) == posts_before + 1


def test_nightly_run_repulls_the_seven_trailing_days(setup):
    settings, insights, _, resources = setup
    partitions = daily_partitions(settings).get_partition_keys()
    job = dg.Definitions(
        assets=[insights], jobs=[dg.define_asset_job("load")], resources=resources
    ).resolve_job_def("load")
    result = job.execute_in_process(tags={**range_tags(partitions[0], partitions[-1]), NIGHTLY_TAG: "true"})
    assert result.success
    days = _rows(
        settings.warehouse_path, "select distinct date::varchar from raw_meta.ad_insights_daily order by 1"
    )
    assert [d for (d,) in days] == partitions[-8:]


def test_a_rejected_token_fails_without_the_token_in_any_event(setup, dagster_instance):
    settings, insights, _, resources = setup
    secret = "EAAGnotavalidtoken0123456789abcdef"
    bad = MetaResource(
        access_token=secret, ad_account_id="act_1234567890", base_url=f"{ensure_sandbox().base_url}/meta"
    )
    result = dg.materialize(
        [insights],
        partition_key=DAY,
        resources={**resources, "meta": bad},
        instance=dagster_instance,
        raise_on_error=False,
    )
    assert not result.success
    events = dagster_instance.all_logs(result.run_id)
    text = "\n".join(str(e) for e in events)
    assert "code 190" in text and "long-lived token" in text
    assert secret not in text
