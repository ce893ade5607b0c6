"""Incremental marts equal a full rebuild of the same raw data, after a sequence of nights.

One warehouse (small sandbox brand, every source) is built by the job `refresh_warehouse` over
its history but the last two days, as `make demo` builds one. Then, through the same job: a late
correction of old days, night 1 and night 2 (the nightly tag: the trailing days re-pulled, one new
day). The correction: the GA4 assets' partition run of an old day, outside every night's window,
while the sandbox doubles every GA4 sessions metric; the Search Console totals of another old day
emptied and half the Slack messages of a third withdrawn, both by `replace_days`. Night 1's build
takes in all three with its nightly days: the incremental models find the changed old days by
their stamps, as they do after any load (the correction run builds nothing itself: a dbt build of
its own would take the same path, at ~16 s of CPU). Each other run builds the incremental models
from what it changed: night 1 re-pulls days the first build loaded, night 2 days night 1 loaded.
(No night runs before the correction: it would re-pull days the first build loaded, as night 1
does, and no assertion reads what it alone built; it cost ~10 s of CPU.)

The runs keep their history on Dagster's in-memory instance: the SQLite one opens its files anew
for each of a run's ~1,400 events (a third of the test process's time in a profile), and what is
checked here is the warehouse, not the run storage (the SQLite instance has its own tests). Nor
do they publish the serving snapshot or render the HTML report (the `serving` group, downstream
of the marts): nothing here reads them, and they have their own tests (test_serving_publish,
test_report_charts, test_report_browser). The snapshot's gate (no check failed at ERROR severity)
is asserted on each run's check evaluations instead. The first build and the nights load every
source and build every model; the last night runs every check of the job, the first build and
night 1 every check but the dbt data tests (411 of the job's 434 checks, ~8-10 s of CPU a run, in
dbt and in Dagster's events): the tests do not change what the models build, the last night tests
the warehouse the nights and the correction left, what the nights built is checked here against
the full rebuild, row by row, and the data tests of a first build (the same job, the same sandbox,
every source, every row) are test_end_to_end's (test_refresh_succeeds_and_every_dbt_check_passes,
on the session's 35-day `sandbox_refresh`).

Then a copy of the warehouse is rebuilt by `dbt run --full-refresh` and every mart, and every
incremental model (without its bookkeeping columns), is compared row by row with DuckDB's EXCEPT
ALL both ways. (Not `dbt build`: its data tests, ~6.5 s of CPU, are not what this module checks;
the last night ran them on every model.)
"""

from __future__ import annotations

import copy
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.brand import current_brand
from orchestration.dbt.assets import dbt_models
from orchestration.dbt.member_hash import MEMBER_HASH_KEY_ENV, member_hash_key
from orchestration.definitions import build_definitions
from orchestration.jobs import NIGHTLY_TRAILING_DAYS, range_tags
from orchestration.partitions import NIGHTLY_TAG
from orchestration.warehouse import replace_days

# Long enough that some days lie outside both the correction's window and the nights' windows:
# test_the_nights_rebuilt_only_their_window_of_the_daily_marts needs the corrected day (keys[2])
# plus 28 (the daily mart's trailing window) before the last day minus NIGHTLY_TRAILING_DAYS (7),
# so 39 days at least. A day costs little: the first build loads one in ~0.1 s of CPU (profile).
DAYS = 40
# Columns that say when or from which load a row was built, not what it holds: an incremental
# model keeps the stamps of the run that built each day, a full rebuild has its own.
BOOKKEEPING = {"built_at", "loaded_at", "sessions_built_at", "queries_built_at", "totals_loaded_at"}
# The snapshot and the HTML report, published at the end of each run: not what this module checks.
SERVING_GROUP = "serving"


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


def _tables(path: Path, schemas: tuple[str, ...]) -> dict[str, list[str]]:
    with duckdb.connect(str(path)) as conn:
        rows = conn.execute(
            "select table_schema || '.' || table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns where table_schema in ? and table_catalog = current_database() "
            "group by all",
            [list(schemas)],
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def nights(tmp_path_factory, settings_for, dbt_invoke) -> dict:
    from connectors.sandbox import ensure_sandbox

    tmp = tmp_path_factory.mktemp("incremental_marts")
    settings = settings_for(tmp, days=DAYS)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh_warehouse")
    keys = job.partitions_def.get_partition_keys()
    # every asset the job runs (their checks with them) but the snapshot and the report
    graph = defs.resolve_asset_graph()
    executable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_executable}
    selection = {key for key in executable if graph.get(key).group_name != SERVING_GROUP}
    refresh = job.get_subset(asset_selection=selection)
    # the same without the dbt data tests (the dbt assets' checks), for the first build and night 1
    dbt_tests = dbt_models.check_keys
    untested = job.get_subset(
        asset_selection=selection, asset_check_selection=graph.asset_check_keys - dbt_tests
    )
    # the GA4 assets and their checks, for the late correction of an old GA4 day
    ga4 = job.get_subset(
        asset_selection={key for key in executable if graph.get(key).group_name == "ingest_ga4"}
    )
    corrected_day, emptied_totals_day, thinned_slack_day = keys[2], keys[12], keys[5]

    def night(last: str, runs: dg.JobDefinition) -> None:
        first = (date.fromisoformat(last) - timedelta(days=NIGHTLY_TRAILING_DAYS)).isoformat()
        run(range_tags(first, last) | {NIGHTLY_TAG: "true"}, runs)

    def run(tags: dict, runs: dg.JobDefinition) -> None:
        result = runs.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
        assert result.success, f"run {tags} failed"
        # the snapshot's gate: no check failed at ERROR severity
        failed = [
            f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            for evaluation in result.get_asset_check_evaluations()
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ]
        assert failed == [], f"run {tags}: checks failed"

    with dg.DagsterInstance.ephemeral() as instance:
        run(range_tags(keys[0], keys[-3]), untested)
        sandbox = ensure_sandbox()
        sandbox.clear_faults()
        sandbox.inject_fault(":runReport", 200, times=None, kind="transform", transform=_doubled_sessions)
        try:
            run(range_tags(corrected_day, corrected_day), ga4)
        finally:
            sandbox.clear_faults()
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            # the members whose first activity in a space is on the day the correction thins
            firsts_on_thinned_day = conn.execute(
                "select member_key, space_id from marts.fct_community_member_firsts "
                "where first_activity_date = ?",
                [date.fromisoformat(thinned_slack_day)],
            ).fetchall()
            empty = conn.execute("select * from raw_gsc.totals_daily limit 0").fetch_arrow_table()
            replace_days(conn, "raw_gsc.totals_daily", [date.fromisoformat(emptied_totals_day)], empty)
            # a late correction of an old community day: every other Slack message of it withdrawn
            # (members may lose their first week; the weeks whose windows hold the day change)
            kept = conn.execute(
                "select * from raw_slack.messages where date = ? "
                "qualify row_number() over (order by ts) % 2 = 0",
                [date.fromisoformat(thinned_slack_day)],
            ).fetch_arrow_table()
            replace_days(conn, "raw_slack.messages", [date.fromisoformat(thinned_slack_day)], kept)
        night(keys[-2], untested)
        night(keys[-1], refresh)  # the last night tests what the nights built, as every night does

    full = tmp / "full" / "warehouse.duckdb"
    full.parent.mkdir()
    shutil.copy(settings.warehouse_path, full)
    dbt_invoke(
        ["run", "--full-refresh", "--vars", _brand_vars()],
        full.parent,
        full,
        **{MEMBER_HASH_KEY_ENV: member_hash_key()},
    )
    return {
        "incremental": settings.warehouse_path,
        "full": full,
        "corrected_day": date.fromisoformat(corrected_day),
        "emptied_totals_day": date.fromisoformat(emptied_totals_day),
        "thinned_slack_day": date.fromisoformat(thinned_slack_day),
        "firsts_on_thinned_day": firsts_on_thinned_day,
        "last_day": date.fromisoformat(keys[-1]),
    }


def _brand_vars() -> str:
    import json

    return json.dumps(current_brand().dbt_vars())


def _differences(incremental: Path, full: Path, table: str, columns: list[str]) -> tuple[int, int, int]:
    """(rows, rows only in the incremental build, rows only in the full rebuild), as multisets."""
    kept = ", ".join(f'"{c}"' for c in columns if c not in BOOKKEEPING)
    # Connected to the rebuilt file, the incremental one attached: dbt-duckdb keeps its connection
    # to the file it built last (the full rebuild) open in this process, and DuckDB refuses to
    # attach a file this process already has open.
    with duckdb.connect(str(full)) as conn:
        conn.execute(f"attach '{incremental}' as nightly (read_only)")
        rows = conn.execute(f"select count(*) from nightly.{table}").fetchone()[0]
        only_incremental = conn.execute(
            f"select count(*) from (select {kept} from nightly.{table} except all select {kept} from {table})"
        ).fetchone()[0]
        only_full = conn.execute(
            f"select count(*) from (select {kept} from {table} except all select {kept} from nightly.{table})"
        ).fetchone()[0]
        conn.execute("detach nightly")
    return rows, only_incremental, only_full


def test_every_mart_equals_a_full_rebuild_after_the_nights(nights):
    marts = _tables(nights["incremental"], ("marts",))
    assert marts == _tables(nights["full"], ("marts",))
    assert len(marts) >= 14
    differing = {}
    for table, columns in sorted(marts.items()):
        rows, only_incremental, only_full = _differences(
            nights["incremental"], nights["full"], table, columns
        )
        assert rows > 0, f"{table} is empty: the comparison would prove nothing"
        if only_incremental or only_full:
            differing[table] = (rows, only_incremental, only_full)
    assert differing == {}, "(rows, only incremental, only full rebuild) per differing mart"


def test_every_intermediate_model_equals_a_full_rebuild(nights):
    models = _tables(nights["incremental"], ("intermediate",))
    differing = {}
    for table, columns in sorted(models.items()):
        rows, only_incremental, only_full = _differences(
            nights["incremental"], nights["full"], table, columns
        )
        if only_incremental or only_full:
            differing[table] = (rows, only_incremental, only_full)
    assert differing == {}


def test_the_nights_rebuilt_only_their_window_of_the_daily_marts(nights):
    """The incremental daily marts kept the rows of days no night touched: built by the first run."""
    with duckdb.connect(str(nights["incremental"])) as conn:
        stamps = dict(
            conn.execute(
                'select "date", sessions_built_at from marts.mart_dark_social_daily order by 1'
            ).fetchall()
        )
        first_build = min(stamps.values())
        # a day after the correction's 28-day window and before the days the nights re-pulled
        # (GA4 re-pulls 3 days before the night's last): untouched since the first run
        untouched = nights["corrected_day"] + timedelta(days=28)
        assert untouched < nights["last_day"] - timedelta(days=NIGHTLY_TRAILING_DAYS)
        assert stamps[untouched] == first_build
        assert stamps[nights["corrected_day"]] > first_build
        assert stamps[nights["last_day"]] > first_build


def test_the_correction_reached_the_marts(nights):
    with duckdb.connect(str(nights["incremental"])) as conn:
        day = nights["corrected_day"]
        raw, mart = conn.execute(
            'select (select sum(sessions) from raw_ga4.sessions_daily where "date" = $1), '
            '(select total_sessions from marts.mart_dark_social_daily where "date" = $1)',
            [day],
        ).fetchone()
        totals_rows, anonymized = conn.execute(
            'select (select count(*) from raw_gsc.totals_daily where "date" = $1), '
            '(select anonymized_clicks from marts.mart_branded_search_daily where "date" = $1)',
            [nights["emptied_totals_day"]],
        ).fetchone()
    # the mart shows the doubled sessions of the corrected day (not the first load's half)
    assert raw == mart and raw > 0
    # a day without totals counts no anonymized clicks
    assert totals_rows == 0 and anonymized == 0


def test_the_nights_rebuilt_only_the_threads_they_changed(nights):
    """int_community_activities is incremental by thread: threads no night re-pulled keep the rows
    the first run built; the threads of the newest day were built by a night."""
    with duckdb.connect(str(nights["incremental"])) as conn:
        first_build, kept_threads, rebuilt_threads, newest_day_rows_from_first_build, newest_day_rows = (
            conn.execute(
                """
                with thread_builds as (
                    select thread_id, min(built_at) as built_at
                    from intermediate.int_community_activities
                    group by thread_id
                ),
                first_build as (select min(built_at) as built_at from thread_builds)
                select
                    (select built_at from first_build),
                    count(*) filter (where built_at = (select built_at from first_build)),
                    count(*) filter (where built_at > (select built_at from first_build)),
                    (
                        select count(*) from intermediate.int_community_activities
                        where cast(occurred_at as date) = $1
                            and built_at = (select built_at from first_build)
                    ),
                    (
                        select count(*) from intermediate.int_community_activities
                        where cast(occurred_at as date) = $1
                    )
                from thread_builds
                """,
                [nights["last_day"]],
            ).fetchone()
        )
    assert first_build is not None
    assert kept_threads > 0, "every thread was rebuilt: the model was not incremental"
    assert rebuilt_threads > 0, "no thread was rebuilt by the nights"
    assert newest_day_rows > 0 and newest_day_rows_from_first_build == 0


def test_the_last_night_rebuilt_only_the_weeks_whose_windows_it_changed(nights):
    """mart_community_health_weekly is incremental by week: the last night rebuilt the newest weeks
    (their windows hold the days it re-pulled) and kept the oldest ones; the weeks whose window
    holds the thinned Slack day were rebuilt after the first run."""
    with duckdb.connect(str(nights["incremental"])) as conn:
        builds = dict(
            conn.execute(
                "select week_start, max(built_at) from marts.mart_community_health_weekly "
                "group by 1 order by 1"
            ).fetchall()
        )
        # the first run's time: the threads no night changed keep it (the test above proves some do)
        first_run = conn.execute(
            "select min(built_at) from intermediate.int_community_activities"
        ).fetchone()[0]
    last_night = max(builds.values())
    newest_week = max(builds)
    oldest_week = min(builds)
    thinned_week = nights["thinned_slack_day"] - timedelta(days=nights["thinned_slack_day"].weekday())
    assert builds[newest_week] == last_night
    assert builds[oldest_week] < last_night, "the last night rebuilt every week: the mart was not incremental"
    assert builds[thinned_week] > first_run
    assert first_run < last_night


def test_the_correction_withdrew_some_members_first_activity(nights):
    """The thinned Slack day held some members' first activity in a channel, and the correction
    withdrew it: fct_community_member_firsts moved their first later, or dropped the pair (no
    activity left). With the equality above, the firsts moved as a full rebuild has them."""
    before = set(nights["firsts_on_thinned_day"])
    assert before, "no member's first activity was on the thinned day: the case is not exercised"
    with duckdb.connect(str(nights["incremental"])) as conn:
        after = dict(
            conn.execute(
                "select member_key || '|' || space_id, first_activity_date "
                "from marts.fct_community_member_firsts"
            ).fetchall()
        )
    moved = [pair for pair in before if after.get("|".join(pair)) != nights["thinned_slack_day"]]
    assert moved, "the correction moved no member's first activity"
    # and it moved them later (or away), never earlier: the day's other rows stayed
    assert all(
        after.get("|".join(pair)) is None or after["|".join(pair)] > nights["thinned_slack_day"]
        for pair in moved
    )
