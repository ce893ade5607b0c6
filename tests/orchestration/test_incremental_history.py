"""Day-incremental dbt models on a history, and the dark-social trend that history plants.

One warehouse holds four two-week windows of GA4 sessions spread over the sandbox brand's 17
months (small scale), loaded through the real asset into raw_ga4.sessions_daily and built with
`dbt build` of mart_dark_social_daily and everything upstream of it. Then, through the same paths:
one old day is reloaded with changed data (the sandbox answers with every metric doubled), one
day is emptied (`replace_days` with no rows), dbt runs again, dbt runs once more with nothing
loaded, and finally `dbt build --full-refresh`. The fixture records the state after each step;
the tests compare the states.

The same first build answers the truth test of planted effect a. (connectors/sandbox/brand.py):
the windows are where they are so that one short load spans the whole trend.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from connectors.ga4 import SESSIONS_SCHEMA
from connectors.sandbox import PLANTED, SANDBOX_START_DATE, ensure_sandbox
from orchestration.definitions import source_resources
from orchestration.ga4.assets import METADATA_FIELDS, build_ga4_assets
from orchestration.jobs import range_tags
from orchestration.partitions import daily_partitions
from orchestration.settings import Settings
from orchestration.warehouse import DuckDBWarehouse, replace_days

# Mondays; two weeks each, so every window has each weekday twice.
WINDOWS = (date(2025, 7, 7), date(2026, 1, 12), date(2026, 6, 1), date(2026, 11, 2))
WINDOW_DAYS = 14
RELOADED_DAY = date(2025, 7, 9)  # reloaded with every metric doubled
EMPTIED_DAY = date(2026, 6, 3)  # replaced by no rows
SELECTION = "+mart_dark_social_daily"
# After the first build the seeds and the staging view do not change: rebuild the rest.
REBUILT = "int_sessions_classified mart_dark_social_daily"
MODEL = "intermediate.int_sessions_classified"


def _loaded_days() -> list[date]:
    return [start + timedelta(days=i) for start in WINDOWS for i in range(WINDOW_DAYS)]


def _query(path: Path, sql: str, params=()) -> list[tuple]:
    # Not read_only: dbt-duckdb keeps its read-write connection to the file open in this process,
    # and DuckDB refuses a second connection to it with another configuration.
    with duckdb.connect(str(path)) as conn:
        return conn.execute(sql, list(params)).fetchall()


def _mart(path: Path) -> dict[date, dict]:
    with duckdb.connect(str(path)) as conn:
        # sessions_built_at says which run built the row (the mart is incremental too), not a figure
        cursor = conn.execute(
            "select * exclude (sessions_built_at) from marts.mart_dark_social_daily order by date"
        )
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _state(path: Path) -> dict:
    """What a build left: per day of the model, its rows' identity; the mart; the model's rows."""
    return {
        "days": {
            day: (rows, tuple(sorted(built_at)), sessions)
            for day, rows, built_at, sessions in _query(
                path,
                f"select session_date, count(*), list(distinct built_at), sum(sessions) from {MODEL} "
                "group by session_date",
            )
        },
        "mart": _mart(path),
        "rows": _query(
            path,
            f"select * exclude (built_at) from {MODEL} order by all",
        ),
    }


def _doubled_sessions(payload):
    """The GA4 sessions report with every metric of every row doubled (leads reports untouched)."""
    names = [h.get("name") for h in payload.get("dimensionHeaders", [])]
    if "deviceCategory" not in names:
        return payload
    payload = copy.deepcopy(payload)
    for row in payload.get("rows") or []:
        for value in row["metricValues"]:
            value["value"] = str(2 * int(value["value"]))
    return payload


@pytest.fixture(scope="module")
def history(tmp_path_factory, dbt_invoke) -> dict:
    tmp = tmp_path_factory.mktemp("incremental")
    settings = Settings(
        warehouse_path=tmp / "warehouse.duckdb",
        serving_path=tmp / "serving" / "marts.duckdb",
        history_start=WINDOWS[0],
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )
    _, sessions, _ = build_ga4_assets(daily_partitions(settings))
    job = dg.Definitions(
        assets=[sessions],
        jobs=[dg.define_asset_job("load_sessions")],
        resources={
            "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
            "ga4": source_resources()["ga4"],
        },
    ).resolve_job_def("load_sessions")
    for start in WINDOWS:
        end = start + timedelta(days=WINDOW_DAYS - 1)
        assert job.execute_in_process(tags=range_tags(start.isoformat(), end.isoformat())).success

    def build(selection: str = REBUILT, *extra: str) -> None:
        dbt_invoke(
            [
                "build",
                "--select",
                selection,
                # Only GA4 sessions are loaded: no test that reads a model outside the selection and
                # its upstream (the leads, the other marts).
                "--indirect-selection",
                "buildable",
                # Unit tests run in tests/dbt and the truth tests; keep this module fast.
                "--exclude",
                "test_type:unit",
                *extra,
            ],
            tmp,
            settings.warehouse_path,
        )

    path = settings.warehouse_path
    build(SELECTION)
    states = {"first": _state(path)}

    sandbox = ensure_sandbox()
    sandbox.clear_faults()
    sandbox.inject_fault(":runReport", 200, times=None, kind="transform", transform=_doubled_sessions)
    try:
        assert job.execute_in_process(partition_key=RELOADED_DAY.isoformat()).success
    finally:
        sandbox.clear_faults()
    empty = pa.Table.from_pylist([], schema=pa.schema([*SESSIONS_SCHEMA, *METADATA_FIELDS]))
    with duckdb.connect(str(path)) as conn:
        replace_days(conn, "raw_ga4.sessions_daily", [EMPTIED_DAY], empty)
    build()
    states["after_reload"] = _state(path)
    build()
    states["after_rerun"] = _state(path)
    build(REBUILT, "--full-refresh")
    states["full_refresh"] = _state(path)
    return states


def test_the_reloaded_day_is_rebuilt_and_the_mart_shows_the_change(history):
    first, after = history["first"], history["after_reload"]
    rows, built_at, sessions = after["days"][RELOADED_DAY]
    assert rows == first["days"][RELOADED_DAY][0]
    assert sessions == 2 * first["days"][RELOADED_DAY][2]
    assert built_at != first["days"][RELOADED_DAY][1]
    assert after["mart"][RELOADED_DAY]["total_sessions"] == 2 * first["mart"][RELOADED_DAY]["total_sessions"]


def test_untouched_days_keep_their_rows_from_the_first_build(history):
    first, after = history["first"], history["after_reload"]
    untouched = set(first["days"]) - {RELOADED_DAY, EMPTIED_DAY}
    assert len(untouched) == len(_loaded_days()) - 2
    # same rows, same sessions, built by the first run (not deleted and inserted again)
    assert {day: after["days"][day] for day in untouched} == {day: first["days"][day] for day in untouched}


def test_a_day_emptied_in_raw_leaves_the_model_and_the_mart(history):
    assert EMPTIED_DAY in history["first"]["days"]
    assert EMPTIED_DAY not in history["after_reload"]["days"]
    assert history["first"]["mart"][EMPTIED_DAY]["total_sessions"] > 0
    assert history["after_reload"]["mart"][EMPTIED_DAY]["total_sessions"] == 0


def test_a_rerun_with_nothing_loaded_changes_nothing(history):
    assert history["after_rerun"] == history["after_reload"]


def test_the_incremental_result_equals_a_full_refresh(history):
    incremental, full = history["after_rerun"], history["full_refresh"]
    assert full["rows"] == incremental["rows"]
    assert full["mart"] == incremental["mart"]
    # the full refresh rebuilt every day in one run
    assert len({built_at for _, built_at, _ in full["days"].values()}) == 1


def test_dark_social_share_recovers_the_planted_trend(history):
    """Planted effect a.: the dark share rises linearly by 0.10 over 507 days (~0.0002 a day).

    Days with planted effects c. (a shared page's x5 dark sessions) and d. (the campaign's
    deep-link lift) add dark sessions on purpose and are left out. Tolerances: the fitted slope
    within 25% of the planted one (at the small scale a day's share is noisy by ~3 points, which
    puts the slope's standard error at ~14% here), and each window's pooled share within 0.02 of
    the planted line.
    """
    mart = history["first"]["mart"]
    days = [day for day in _loaded_days() if PLANTED.share_date_for(day) is None and not PLANTED.in_halo(day)]
    assert len(days) >= 40
    x = [(day - SANDBOX_START_DATE).days for day in days]
    y = [mart[day]["dark_social_share"] for day in days]
    x_mean, y_mean = sum(x) / len(x), sum(y) / len(y)
    slope = sum((a - x_mean) * (b - y_mean) for a, b in zip(x, y, strict=True)) / sum(
        (a - x_mean) ** 2 for a in x
    )
    assert slope == pytest.approx(PLANTED.dark_share_slope_per_day, rel=0.25)

    pooled = []
    for start in WINDOWS:
        window = [day for day in days if start <= day < start + timedelta(days=WINDOW_DAYS)]
        dark = sum(mart[day]["dark_social_sessions"] for day in window)
        total = sum(mart[day]["total_sessions"] for day in window)
        planted = sum(PLANTED.dark_share_on(day) for day in window) / len(window)
        assert dark / total == pytest.approx(planted, abs=0.02), start
        pooled.append(dark / total)
    assert pooled == sorted(pooled), "the share rises from window to window"
