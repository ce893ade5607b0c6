"""Data-quality gates: each bad-data mode of the sandbox is refused or flagged; BI keeps its snapshot.

One good load of 12 days of the streams under test publishes a snapshot; each test then drives one
mode through a real Dagster run of the affected raw asset plus the serving publish, and asserts
that the batch was refused or flagged, that the check says why, and that the snapshot is untouched.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
import yaml

from connectors.sandbox import ensure_sandbox
from orchestration.dbt.assets import dbt_models
from orchestration.definitions import build_definitions, source_assets, source_resources
from orchestration.jobs import range_tags
from orchestration.partitions import daily_partitions
from orchestration.quality.checks import build_freshness_checks
from orchestration.serving.assets import build_serving_asset, upstream_check_keys
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import DuckDBWarehouse

DAYS = 12
SERVING = dg.AssetKey(["serving", "marts_snapshot"])
GSC_QUERIES = dg.AssetKey(["gsc", "queries_daily"])
GA4_SESSIONS = dg.AssetKey(["ga4", "sessions_daily"])
META_INSIGHTS = dg.AssetKey(["meta", "ad_insights_daily"])
MART_KEYS = [key for key in dbt_models.keys if dbt_models.group_names_by_key.get(key) == "marts"]


@pytest.fixture(scope="module")
def good(tmp_path_factory, settings_for):
    """A 12-day warehouse and a published snapshot from one good refresh."""
    settings = settings_for(tmp_path_factory.mktemp("quality"), days=DAYS)
    defs = build_definitions(settings)
    partitions = daily_partitions(settings)
    keys = defs.resolve_job_def("refresh_warehouse").partitions_def.get_partition_keys()
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        # Probe runs define only the assets under test (the dbt graph alone takes seconds to
        # resolve), with the serving asset built exactly as the definitions build it.
        serving = defs.resolve_assets_def(SERVING)
        gate_keys = upstream_check_keys(MART_KEYS, [*source_assets(partitions), dbt_models])
        wanted = {GA4_SESSIONS, GSC_QUERIES, META_INSIGHTS}
        streams = [
            a for a in source_assets(partitions) if isinstance(a, dg.AssetsDefinition) and a.keys & wanted
        ]
        parts = {
            "assets": [*streams, build_serving_asset(MART_KEYS, settings.serving_path, gate_keys)],
            "asset_checks": build_freshness_checks(streams),
            "resources": {
                "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
                **source_resources(),
            },
        }
        assert serving.keys == parts["assets"][-1].keys
        assert {
            dg.AssetCheckKey(GSC_QUERIES, "queries_daily_expectations"),
            dg.AssetCheckKey(GA4_SESSIONS, "sessions_daily_expectations"),
        } <= set(gate_keys)
        good = {"settings": settings, "parts": parts, "instance": instance, "keys": keys}
        loaded = run(good, [GA4_SESSIONS, GSC_QUERIES, META_INSIGHTS], tags=range_tags(keys[0], keys[-1]))
        assert loaded.success
        # The dbt project is the end-to-end test's business (minutes); a stand-in mart built from
        # the raw rows gives the publish something real to copy, through the real serving asset.
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            conn.execute("create schema if not exists marts")
            conn.execute(
                "create table marts.mart_search_daily as select date, sum(clicks) as clicks, "
                "sum(impressions) as impressions from raw_gsc.queries_daily group by date"
            )
        assert run(good, [SERVING]).success
        yield good


@pytest.fixture
def sandbox():
    server = ensure_sandbox()
    server.clear_faults()
    yield server
    server.clear_faults()


def run(good, selection, partition_key: str | None = None, tags=None) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("quality_probe", selection=selection)
    defs = dg.Definitions(**good["parts"], jobs=[job])
    return defs.resolve_job_def("quality_probe").execute_in_process(
        instance=good["instance"], partition_key=partition_key, tags=tags, raise_on_error=False
    )


def snapshot_state(good) -> tuple[str, str]:
    """The snapshot's run id and a digest of every table's contents."""
    with duckdb.connect(str(good["settings"].serving_path), read_only=True) as conn:
        run_id = conn.execute("select run_id from _snapshot_info").fetchone()[0]
        digest = hashlib.sha256()
        tables = [
            r[0]
            for r in conn.execute("select table_name from information_schema.tables order by 1").fetchall()
        ]
        for table in tables:
            if table == "_snapshot_info":
                continue
            rows = conn.execute(f"select * from {table} order by all").fetchall()
            digest.update(f"{table}:{rows!r}".encode())
    return run_id, digest.hexdigest()


def day_rows(good, table: str, day: str) -> tuple[int, set[str]]:
    with duckdb.connect(str(good["settings"].warehouse_path), read_only=True) as conn:
        n, runs = conn.execute(
            f"select count(*), list(distinct _run_id) from {table} where date = ?", [day]
        ).fetchone()
    return n, set(runs or [])


def check_result(result: dg.ExecuteInProcessResult, name: str):
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert found, f"no evaluation of {name}"
    return found[-1]


def gsc_query_rows(change):
    """A transform of Search Console answers that changes only the query rows (5 keys), not totals."""

    def transform(payload):
        rows = payload.get("rows") or []
        if rows and len(rows[0].get("keys", [])) == 5:
            payload = copy.deepcopy(payload)
            payload["rows"] = change(payload["rows"])
        return payload

    return transform


def ga4_session_rows(change):
    def transform(payload):
        names = [h.get("name") for h in payload.get("dimensionHeaders", [])]
        if "deviceCategory" in names:
            payload = copy.deepcopy(payload)
            payload["rows"] = change(payload.get("rows") or [])
            payload["rowCount"] = len(payload["rows"])
        return payload

    return transform


def assert_refused(good, sandbox, asset, table, day, transform, path, check_name, expectation, words):
    before_snapshot = snapshot_state(good)
    before_day = day_rows(good, table, day)
    assert before_day[0] > 0
    sandbox.inject_fault(path, 200, times=None, kind="transform", transform=transform)
    result = run(good, [asset, SERVING], partition_key=day)
    assert not result.success
    # Nothing downstream ran: the publish was skipped in this run.
    assert SERVING not in {e.asset_key for e in result.get_asset_materialization_events()}
    evaluation = check_result(result, check_name)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["expectation"].value == expectation
    for word in words:
        assert word in evaluation.description, evaluation.description
    # The batch was not committed: the day keeps the rows of the good run, and BI its snapshot.
    assert day_rows(good, table, day) == before_day
    assert snapshot_state(good) == before_snapshot
    return evaluation


def test_a_failed_gate_keeps_the_snapshot_until_a_good_run_across_runs(good, sandbox):
    day = good["keys"][-4]
    before = snapshot_state(good)
    sandbox.inject_fault(
        "searchAnalytics",
        200,
        times=None,
        kind="transform",
        transform=gsc_query_rows(lambda rows: [{**rows[0], "clicks": -3}, *rows[1:]]),
    )
    assert not run(good, [GSC_QUERIES, SERVING], partition_key=day).success
    sandbox.clear_faults()

    # A later run of the publish alone still refuses: Dagster's blocking covers one run only.
    refused = run(good, [SERVING])
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert "queries_daily_expectations" in message and "clicks" in message
    assert snapshot_state(good) == before

    # The source is fixed and the day re-run: the check passes and the publish goes through.
    fixed = run(good, [GSC_QUERIES, SERVING], partition_key=day)
    assert fixed.success
    assert check_result(fixed, "queries_daily_expectations").passed
    assert snapshot_state(good)[0] == fixed.run_id


def test_null_keys_are_refused(good, sandbox):
    def null_query(rows):
        rows[1]["keys"][1] = None
        return rows

    evaluation = assert_refused(
        good,
        sandbox,
        GSC_QUERIES,
        "raw_gsc.queries_daily",
        good["keys"][-4],
        gsc_query_rows(null_query),
        "searchAnalytics",
        "queries_daily_expectations",
        "expect_column_values_to_not_be_null",
        ["query"],
    )
    assert evaluation.metadata["bad_rows"].value == 1


def test_negative_clicks_are_refused(good, sandbox):
    evaluation = assert_refused(
        good,
        sandbox,
        GSC_QUERIES,
        "raw_gsc.queries_daily",
        good["keys"][-4],
        gsc_query_rows(lambda rows: [{**rows[0], "clicks": -7}, *rows[1:]]),
        "searchAnalytics",
        "queries_daily_expectations",
        "expect_column_values_to_be_between",
        ["clicks"],
    )
    assert evaluation.metadata["samples"].value == ["-7"]


def test_duplicate_rows_are_refused(good, sandbox):
    evaluation = assert_refused(
        good,
        sandbox,
        GSC_QUERIES,
        "raw_gsc.queries_daily",
        good["keys"][-4],
        gsc_query_rows(lambda rows: rows + copy.deepcopy(rows[:2])),
        "searchAnalytics",
        "queries_daily_expectations",
        "expect_compound_columns_to_be_unique",
        ["duplicate keys"],
    )
    assert evaluation.metadata["bad_rows"].value == 4  # both copies of each duplicated row


def test_dates_outside_the_partition_are_refused(good, sandbox):
    day = good["keys"][-4]
    stray = (date.fromisoformat(day) - timedelta(days=30)).isoformat()

    def move(rows):
        rows[0]["keys"][0] = stray
        return rows

    evaluation = assert_refused(
        good,
        sandbox,
        GSC_QUERIES,
        "raw_gsc.queries_daily",
        day,
        gsc_query_rows(move),
        "searchAnalytics",
        "queries_daily_expectations",
        "expect_column_values_to_be_in_set",
        ["outside the partition"],
    )
    assert evaluation.metadata["samples"].value == [stray]


def test_a_renamed_column_is_refused(good, sandbox):
    def rename(rows):
        return [{("clickCount" if k == "clicks" else k): v for k, v in row.items()} for row in rows]

    evaluation = assert_refused(
        good,
        sandbox,
        GSC_QUERIES,
        "raw_gsc.queries_daily",
        good["keys"][-4],
        gsc_query_rows(rename),
        "searchAnalytics",
        "queries_daily_expectations",
        "api_answer_matches_contract",
        ["'clicks'"],
    )
    assert "clicks" in evaluation.metadata["detail"].value


def test_a_missing_day_is_refused(good, sandbox):
    evaluation = assert_refused(
        good,
        sandbox,
        GA4_SESSIONS,
        "raw_ga4.sessions_daily",
        good["keys"][-1],
        ga4_session_rows(lambda rows: []),
        ":runReport",
        "sessions_daily_expectations",
        "expect_table_row_count_to_be_between",
        ["missing day", "0 rows"],
    )
    assert evaluation.metadata["bad_rows"].value == 0


def test_a_volume_collapse_is_refused(good, sandbox):
    assert_refused(
        good,
        sandbox,
        GA4_SESSIONS,
        "raw_ga4.sessions_daily",
        good["keys"][-1],
        ga4_session_rows(lambda rows: rows[: max(1, len(rows) // 10)]),
        ":runReport",
        "sessions_daily_expectations",
        "expect_table_row_count_to_be_between",
        ["volume collapse", "trailing median"],
    )


def test_a_stale_source_warns_without_blocking(good):
    # No loads for days: the last 5 days of Meta insights never arrived.
    with duckdb.connect(str(good["settings"].warehouse_path)) as conn:
        conn.execute(
            "delete from raw_meta.ad_insights_daily where date > ?", [date.today() - timedelta(days=6)]
        )
    before = snapshot_state(good)
    result = run(
        good, dg.AssetSelection.checks(dg.AssetCheckKey(META_INSIGHTS, "ad_insights_daily_freshness"))
    )
    assert result.success
    evaluation = check_result(result, "ad_insights_daily_freshness")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "stale" in evaluation.description and evaluation.metadata["days_behind"].value == 5
    assert snapshot_state(good) == before
