"""The community marts end to end, on the sandbox: privacy, and the planted facts recovered.

One real refresh (Dagster job, sandbox APIs -> raw -> dbt -> serving snapshot) of the assets the
community marts need (GA4 sessions, Slack, Discourse; not Search Console or Meta), over a FIXED
35-day window (2025-07-29 .. 2025-09-01), so the figures do not depend on the day the tests run.
In that window the shared page is posted on 2025-08-05 and 2025-08-26 (the second has its 28-day
baseline inside the window; connectors/sandbox/brand.py, items c and g). The snapshot is published
with the serving asset's own function: the sources' freshness checks (rightly) fail on a window
that ended long ago and would hold the serving asset back.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import brand, community
from orchestration.dbt.member_hash import SANDBOX_DEMO_KEY, MissingMemberHashKey, member_hash_key
from orchestration.jobs import range_tags
from orchestration.serving.assets import publish_snapshot
from orchestration.settings import PROJECT_ROOT, Settings

WINDOW_START = date(2025, 7, 29)
WINDOW_END = date(2025, 9, 1)
SEED = 42
SCALE = "small"
MARTS = (
    "dim_community_spaces",
    "dim_community_members",
    "fct_community_activity",
    "mart_community_health_weekly",
    "mart_member_engagement",
    "mart_community_interests_weekly",
    "mart_community_referrals",
    "mart_partner_referrals",
    "mart_content_channel_fit",
    "mart_dark_social_content",
)
SHARED_PAGE = brand.PLANTED.shared_page


@pytest.fixture(scope="module")
def built(tmp_path_factory, monkeypatch_module):
    import yaml

    from orchestration.definitions import build_definitions

    for name in (
        "MEMBER_HASH_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_EXPORT_PATH",
        "DISCOURSE_URL",
        "DISCOURSE_API_KEY",
        "DISCORD_BOT_TOKEN",
    ):
        monkeypatch_module.delenv(name, raising=False)
    tmp_path = tmp_path_factory.mktemp("community")
    settings = Settings(
        warehouse_path=tmp_path / "warehouse.duckdb",
        serving_path=tmp_path / "serving" / "marts.duckdb",
        history_start=WINDOW_START,
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=True,
    )
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    # plus the GA4 marts: dbt's indirect selection runs the singular tests that read them
    marts = [
        dg.AssetKey(["marts", name]) for name in (*MARTS, "mart_dark_social_daily", "mart_attribution_gap")
    ]
    selection = dg.AssetSelection.assets(*marts).upstream().resolve(graph)
    job = defs.resolve_job_def("refresh_warehouse")
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=range_tags(WINDOW_START.isoformat(), WINDOW_END.isoformat()),
            asset_selection=sorted(selection),
            raise_on_error=False,
        )
        failures = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failures == []
        failed_checks = [
            e.asset_check_evaluation_data.check_name
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and not e.asset_check_evaluation_data.passed
            # the raw layer's freshness and volume checks judge a window that ended long ago
            and e.asset_check_evaluation_data.asset_key.path[0] in ("staging", "intermediate", "marts")
        ]
        assert failed_checks == []
        publish_snapshot(str(settings.warehouse_path), settings.serving_path, result.run_id)
    return settings


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _rows(path: Path, sql: str, params=(), read_only: bool = True):
    # dbt run in this process keeps its read-write connection to the file open: join it with the
    # same configuration (read_only=False) rather than a read-only one, which DuckDB refuses
    with duckdb.connect(str(path), read_only=read_only) as conn:
        return conn.execute(sql, list(params)).fetchall()


def _key(platform: str, user_id: str) -> str:
    return hmac.new(SANDBOX_DEMO_KEY.encode(), f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()


# --- privacy -------------------------------------------------------------------------------------


def _personal_values(warehouse: Path) -> set[str]:
    """E-mails, names and handles of every member, as the raw layer holds them (lower-cased)."""
    values: set[str] = set()
    for sql in (
        "select email, name, real_name, display_name from raw_slack.users",
        "select email, username, name from raw_discourse.users",
    ):
        for row in _rows(warehouse, sql):
            values.update(v.strip().lower() for v in row if v and len(v.strip()) >= 4)
    return values


def _hits(db: Path, schema: str | None, needles: set[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every column value of every table that contains a needle."""
    hits = []
    with duckdb.connect(str(db), read_only=True) as conn:
        conn.execute("create temp table needles (needle varchar)")
        conn.executemany("insert into needles values (?)", [[n] for n in sorted(needles)])
        where = "table_schema = ?" if schema else "table_schema = 'main'"
        columns = conn.execute(
            f"select table_schema, table_name, column_name from information_schema.columns where {where} "
            "and table_catalog = current_database()",
            [schema] if schema else [],
        ).fetchall()
        for table_schema, table, column in columns:
            found = conn.execute(
                f'select distinct needle from "{table_schema}"."{table}", needles '
                f'where contains(lower(cast("{column}" as varchar)), needle)'
            ).fetchall()
            hits.extend((table, column, n[0]) for n in found)
    return hits


def test_no_email_name_handle_or_key_reaches_a_mart_or_the_snapshot(built):
    needles = _personal_values(built.warehouse_path)
    assert len(needles) > 300, "the raw users should hold the members' e-mails, names and handles"
    needles.add(SANDBOX_DEMO_KEY.lower())
    assert _hits(built.warehouse_path, "marts", needles) == []
    assert _hits(built.serving_path, None, needles) == []
    published = {r[0] for r in _rows(built.serving_path, "select table_name from information_schema.tables")}
    assert set(MARTS) <= published


def test_the_key_is_not_in_dbt_artifacts_or_logs():
    dbt_dir = PROJECT_ROOT / "dbt_project"
    for path in [*(dbt_dir / "target").rglob("*.json"), *(dbt_dir / "logs").rglob("*.log")]:
        assert SANDBOX_DEMO_KEY not in path.read_text(errors="ignore"), path


def test_member_key_is_the_hmac_of_platform_and_user_id(built):
    advocate = community.member(SEED, SCALE, brand.COMMUNITY_ADVOCATE_PERSON_IDS[0])
    expected = _key("slack", advocate.user_id("slack"))
    rows = _rows(
        built.serving_path, "select platform from dim_community_members where member_key = ?", [expected]
    )
    assert rows == [("slack",)]


def test_real_community_credentials_without_a_key_stop_with_the_fix():
    assert member_hash_key({}) == SANDBOX_DEMO_KEY
    assert member_hash_key({"MEMBER_HASH_KEY": "s3cret", "SLACK_BOT_TOKEN": "xoxb-1"}) == "s3cret"
    with pytest.raises(MissingMemberHashKey, match="MEMBER_HASH_KEY is not set.*SLACK_EXPORT_PATH"):
        member_hash_key({"SLACK_EXPORT_PATH": "/tmp/export.zip"})


# --- truth: what the sandbox planted ---------------------------------------------------------------


def test_planted_advocates_are_level_1(built):
    keys = []
    for pid in brand.COMMUNITY_ADVOCATE_PERSON_IDS:
        m = community.member(SEED, SCALE, pid)
        keys += [_key(p, m.user_id(p)) for p in ("slack", "discourse") if p in m.platforms]
    rows = _rows(
        built.serving_path,
        "select member_key, level, love, reach, is_advocate_candidate from mart_member_engagement "
        "where member_key in (select unnest(?))",
        [keys],
    )
    assert len(rows) == len(keys) == 9
    assert all(
        level == "1_advocate" and love >= 20 and reach >= 5 and cand for _, level, love, reach, cand in rows
    )
    employees = _rows(
        built.serving_path,
        "select count(*) from mart_member_engagement where is_employee and is_advocate_candidate",
    )
    assert employees == [(0,)]


def test_the_shared_page_shows_a_positive_share_lift(built):
    rows = _rows(
        built.serving_path,
        "select share_date, shares, share_lift from mart_community_referrals "
        "where landing_path = ? and share_lift is not null order by share_date",
        [SHARED_PAGE],
    )
    assert [r[0] for r in rows] == [date(2025, 8, 26)]
    assert all(shares >= 5 and lift > 1.0 for _, shares, lift in rows), rows


def test_the_shared_page_ranks_first_in_share_weeks(built):
    rows = _rows(
        built.serving_path,
        "select week_start, dark_rank, community_shares from mart_dark_social_content "
        "where landing_path = ? order by week_start",
        [SHARED_PAGE],
    )
    share_weeks = {date(2025, 8, 4), date(2025, 8, 25)}
    assert {brand.PLANTED.share_date_for(d + timedelta(days=1)) for d in share_weeks} == {
        d + timedelta(days=1) for d in share_weeks
    }
    full_weeks = [r for r in rows if WINDOW_START <= r[0] and r[0] + timedelta(days=6) <= WINDOW_END]
    assert [r[0] for r in full_weeks] == [
        date(2025, 8, 4),
        date(2025, 8, 11),
        date(2025, 8, 18),
        date(2025, 8, 25),
    ]
    for week, rank, shares in full_weeks:
        if week in share_weeks:
            assert rank == 1 and shares >= 5, (week, rank, shares)
        else:
            assert rank > 1 and shares == 0, (week, rank, shares)


# --- the real Slack export sample ------------------------------------------------------------------

SAMPLE = Path("/work/shared/samples/slack-export/testarchive.zip")
SAMPLE_DAYS = [
    date(2016, 1, 15),
    date(2016, 1, 16),
    date(2016, 1, 17),
    date(2016, 2, 7),
    date(2016, 2, 8),
    date(2016, 2, 9),
    date(2016, 3, 17),
    date(2016, 3, 25),
    date(2016, 3, 26),
    date(2016, 3, 27),
    date(2016, 3, 28),
    date(2016, 3, 29),
]
EMPTY_DISCOURSE = """
create schema if not exists raw_discourse;
create table raw_discourse.posts (date date, post_id bigint, topic_id bigint, post_number bigint,
    reply_to_post_number bigint, user_id bigint, username varchar, created_at timestamptz,
    updated_at timestamptz, cooked varchar, raw varchar, like_count bigint, reads bigint,
    post_type bigint, action_code varchar, hidden boolean, deleted_at timestamptz,
    _forum_url varchar, _loaded_at timestamp, _run_id varchar);
create table raw_discourse.post_likes (date date, post_id bigint, user_id bigint,
    created_at timestamptz, _forum_url varchar, _loaded_at timestamp, _run_id varchar);
create table raw_discourse.topics (date date, topic_id bigint, category_id bigint, title varchar,
    created_at timestamptz, last_posted_at timestamptz, posts_count bigint, reply_count bigint,
    like_count bigint, views bigint, user_id bigint, archetype varchar, closed boolean,
    archived boolean, _forum_url varchar, _loaded_at timestamp, _run_id varchar);
create table raw_discourse.categories (category_id bigint, name varchar, slug varchar,
    parent_category_id bigint, read_restricted boolean, _forum_url varchar, _loaded_at timestamp,
    _run_id varchar);
create table raw_discourse.users (user_id bigint, username varchar, name varchar, email varchar,
    email_domain varchar, admin boolean, moderator boolean, trust_level bigint,
    created_at timestamptz, last_seen_at timestamptz, staged boolean, _forum_url varchar,
    _loaded_at timestamp, _run_id varchar);
"""


@pytest.fixture(scope="module")
def export_built(tmp_path_factory):
    """The sample export loaded by the Slack assets in export mode, then the community dbt models."""
    from dbt.cli.main import dbtRunner

    from orchestration.partitions import daily_partitions
    from orchestration.slack.assets import build_slack_assets
    from orchestration.slack.resources import SlackResource
    from orchestration.warehouse import DuckDBWarehouse

    if not SAMPLE.exists():
        pytest.skip("the shared sample export is not on this machine")
    tmp = tmp_path_factory.mktemp("slack_export")
    settings = Settings(
        warehouse_path=tmp / "warehouse.duckdb",
        serving_path=tmp / "serving" / "marts.duckdb",
        history_start=SAMPLE_DAYS[0],
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=True,
    )
    assets = build_slack_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        "slack": SlackResource(export_path=str(SAMPLE)),
    }
    for day in SAMPLE_DAYS:
        assert dg.materialize(list(assets), partition_key=day.isoformat(), resources=resources).success
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute(EMPTY_DISCOURSE)
    # a real export: the orchestration demands a key of our own
    environ = {"SLACK_EXPORT_PATH": str(SAMPLE), "MEMBER_HASH_KEY": "export-test-key"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_PATH", str(settings.warehouse_path))
        mp.setenv("MEMBER_HASH_KEY", member_hash_key(environ))
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        dbt_dir = PROJECT_ROOT / "dbt_project"
        result = dbtRunner().invoke(
            [
                "build",
                "--select",
                "+fct_community_activity +dim_community_members +mart_community_health_weekly "
                "+mart_member_engagement +mart_community_interests_weekly",
                "--exclude",
                "test_type:unit",
                "--project-dir",
                str(dbt_dir),
                "--profiles-dir",
                str(dbt_dir),
                "--target-path",
                str(tmp / "target"),
                "--log-path",
                str(tmp / "logs"),
            ]
        )
    assert result.success
    return settings.warehouse_path


def test_the_slack_export_sample_flows_to_the_marts_with_the_hand_counts(export_built):
    # By hand from the zip (see tests/connectors/test_slack_export.py): 2 channels, 4 users (no
    # e-mails, no bots), 158 messages: 94 bot_message, 8 channel_join, 3 bot_add (excluded), 49
    # plain messages + 3 file_share by users = 52 member messages (the file_comment has no user),
    # no threads, and 1 reaction (botman by U0BMYT2FL on a bot message) = 53 activities. Their
    # ISO weeks: 2016-01-11 9, 02-01 2, 02-08 6, 03-14 12, 03-21 20, 03-28 4 (+1 reaction, -1
    # file_comment) messages.
    path = export_built

    def _rows(path, sql, params=()):
        return _module_rows(path, sql, params, read_only=False)

    assert _rows(
        path, "select count(*), count(*) filter (where platform = 'slack') from marts.dim_community_spaces"
    ) == [(2, 2)]
    assert _rows(
        path,
        "select count(*), count(*) filter (where is_employee or is_bot) from marts.dim_community_members",
    ) == [(4, 0)]
    by_type = dict(_rows(path, "select activity_type, count(*) from marts.fct_community_activity group by 1"))
    assert by_type == {"message": 52, "reaction": 1}
    assert _rows(path, "select sum(len(brand_links)) from marts.fct_community_activity") == [(0,)]
    weekly = _rows(
        path,
        "select week_start, activities from marts.mart_community_health_weekly "
        "where community = 'all' order by 1",
    )
    assert weekly == [
        (date(2016, 1, 11), 9),
        (date(2016, 2, 1), 2),
        (date(2016, 2, 8), 6),
        (date(2016, 3, 14), 12),
        (date(2016, 3, 21), 19),
        (date(2016, 3, 28), 5),
    ]
    engaged = _rows(path, "select count(*), sum(activities) from marts.mart_member_engagement")
    assert engaged[0][0] == 4
    expected_key = hmac.new(b"export-test-key", b"slack:U0BMQB6JE", hashlib.sha256).hexdigest()
    assert _rows(
        path, "select count(*) from marts.dim_community_members where member_key = ?", [expected_key]
    ) == [(1,)]


_module_rows = _rows
