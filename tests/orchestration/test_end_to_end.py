"""The spine end to end: GA4 API -> raw -> dbt staging -> mart -> serving snapshot, in one real run."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import duckdb
import pytest

from orchestration.jobs import range_tags
from orchestration.partitions import NIGHTLY_TAG

DAYS = 35


@pytest.fixture(scope="module")
def built(sandbox_refresh):
    """The session's one real refresh over the last 35 days (tests/conftest.py), on the in-memory
    instance with the pools of `make dev`'s. Read-only."""
    assert len(sandbox_refresh.keys) == DAYS
    return (
        sandbox_refresh.settings,
        sandbox_refresh.defs,
        sandbox_refresh.keys,
        sandbox_refresh.result,
    )


def test_refresh_succeeds_and_every_dbt_check_passes(built):
    _, _, _, result = built
    assert result.success
    checks = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(checks) >= 10, "dbt tests should surface as asset checks"
    failed = [c.check_name for c in checks if not c.passed]
    assert failed == []
    check_names = {c.check_name for c in checks}
    assert any("unique" in name for name in check_names)


def test_snapshot_has_a_dark_social_share_for_every_day(built):
    settings, _, keys, _ = built
    with duckdb.connect(str(settings.serving_path), read_only=True) as conn:
        rows = conn.execute(
            "select date::varchar, total_sessions, dark_social_sessions, dark_messaging_sessions, "
            "dark_social_share, dark_social_share_low from mart_dark_social_daily order by date"
        ).fetchall()
        info = conn.execute("select run_id, tables from _snapshot_info").fetchone()
    assert [r[0] for r in rows] == keys
    for _, total, dark, messaging, share, low in rows:
        assert total > 0
        assert 0 < messaging <= dark < total
        assert share == pytest.approx(dark / total)
        assert low == pytest.approx(messaging / total)
    assert "mart_dark_social_daily" in info[1]


def test_mart_sessions_reconcile_with_raw_ga4(built):
    settings, _, _, _ = built
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        raw = conn.execute("select sum(sessions) from raw_ga4.sessions_daily").fetchone()[0]
    with duckdb.connect(str(settings.serving_path), read_only=True) as conn:
        mart = conn.execute("select sum(total_sessions) from mart_dark_social_daily").fetchone()[0]
    assert raw == mart and raw > 0


def test_lineage_runs_from_the_api_to_the_snapshot(built):
    _, defs, _, _ = built
    graph = defs.resolve_asset_graph()

    def upstream(key: dg.AssetKey) -> set[dg.AssetKey]:
        return set(graph.get(key).parent_keys)

    sessions = dg.AssetKey(["ga4", "sessions_daily"])
    stg = dg.AssetKey(["staging", "stg_ga4__sessions"])
    mart = dg.AssetKey(["marts", "mart_dark_social_daily"])
    snapshot = dg.AssetKey(["serving", "marts_snapshot"])
    assert sessions in upstream(stg)
    assert mart in upstream(snapshot)
    ancestors, frontier = set(), {snapshot}
    while frontier:
        frontier = set().union(*(upstream(k) for k in frontier)) - ancestors
        ancestors |= frontier
    assert {dg.AssetKey(["ga4", "data_api"]), sessions, stg, mart} <= ancestors
    groups = {key: graph.get(key).group_name for key in (sessions, stg, mart, snapshot)}
    assert groups == {sessions: "ingest_ga4", stg: "staging", mart: "marts", snapshot: "serving"}


def test_nightly_schedule_covers_the_longest_trailing_window_and_marks_the_run(built):
    _, defs, _, _ = built
    schedule = defs.resolve_schedule_def("nightly_refresh")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.job_name == "refresh_warehouse"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    # Meta's 7-day attribution window is the longest; each asset trims to its own window.
    assert range_tags("2026-02-22", "2026-03-01").items() <= request.tags.items()
    assert request.tags[NIGHTLY_TAG] == "true"


def test_attribution_gap_recovers_the_planted_word_of_mouth_dark_funnel(built):
    from connectors.sandbox import PLANTED

    settings, _, _, _ = built
    with duckdb.connect(str(settings.serving_path), read_only=True) as conn:
        answered, hidden = conn.execute(
            """
            select
                sum(leads) filter (where self_reported_channel != 'no_answer'),
                sum(leads) filter (
                    where self_reported_channel in ('colleague_or_friend', 'online_community',
                        'slack_or_discord', 'podcast', 'event_or_meetup')
                    and tracked_traffic_class in ('direct_typed', 'dark_social_direct',
                        'organic_search', 'referral')
                )
            from mart_attribution_gap
            """
        ).fetchone()
    planted = PLANTED.word_of_mouth_share_of_answered * PLANTED.word_of_mouth_tracked_share
    assert answered > 50
    # 35 days of the small brand: a few hundred answered leads, so a few points of noise.
    assert hidden / answered == pytest.approx(planted, abs=0.06)


def test_the_run_log_holds_no_staff_e_mail_domain_and_no_staff_id(built, sandbox_refresh):
    """The brand file reaches dbt in its environment (DBT_BRAND_VARS), not as --vars: the dbt
    command line is logged, and every log line and event of a run is kept in Dagster's event log.
    (The sandbox's staff e-mail domain is also its website's, which the Search Console load names
    as its site: so the dbt step's entries are searched for it.)"""
    from orchestration.brand import SANDBOX_BRAND_FILE, load_brand

    _, _, _, result = built
    brand = load_brand(SANDBOX_BRAND_FILE)
    staff = [*brand.email_domains, *(i for ids in brand.staff_ids.values() for i in ids)]
    assert "northwind-analytics.com" in staff  # the sandbox brand's staff e-mail domain
    entries = sandbox_refresh.instance.all_logs(result.run_id)
    dbt_command = [e.user_message for e in entries if "Running dbt command" in e.user_message]
    assert dbt_command, "the dbt command is logged"
    assert "--vars" not in dbt_command[0]
    dbt_step = "\n".join(dg.serialize_value(e) for e in entries if e.step_key == "dbt_models")
    assert "Running dbt command" in dbt_step
    assert [value for value in staff if value in dbt_step] == []


def test_a_private_copy_of_the_refresh_takes_writes_and_the_shared_files_do_not_change(
    sandbox_refresh, sandbox_refresh_copy
):
    shared = sandbox_refresh.settings

    def sessions(path, table) -> int:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(f"select count(*) from {table}").fetchone()[0]

    before = sessions(shared.warehouse_path, "raw_ga4.sessions_daily")
    assert sessions(sandbox_refresh_copy.warehouse_path, "raw_ga4.sessions_daily") == before > 0
    assert sessions(sandbox_refresh_copy.serving_path, "mart_dark_social_daily") == DAYS
    with duckdb.connect(str(sandbox_refresh_copy.warehouse_path)) as conn:
        conn.execute("delete from raw_ga4.sessions_daily")
    assert sessions(sandbox_refresh_copy.warehouse_path, "raw_ga4.sessions_daily") == 0
    assert sessions(shared.warehouse_path, "raw_ga4.sessions_daily") == before
