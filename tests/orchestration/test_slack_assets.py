"""The Slack assets land raw_slack.* from the sandbox's Web API or from an export zip."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import community, ensure_sandbox
from connectors.sandbox.slack_export import write_export
from connectors.slack import ts_day
from orchestration.partitions import daily_partitions
from orchestration.slack.assets import build_slack_assets
from orchestration.slack.resources import SlackResource
from orchestration.warehouse import DuckDBWarehouse


def _weekday_on_or_before(day: date) -> date:
    return day - timedelta(days=max(0, day.weekday() - 4))


# A weekday two or more days ago: the sandbox's community is quiet at weekends (a small brand's
# Saturday may have fewer than the 10 messages these tests expect of a day), busy on weekdays.
DAY = _weekday_on_or_before(date.today() - timedelta(days=2))


@pytest.fixture
def setup(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=10)
    channels, users, messages = build_slack_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        "slack": SlackResource(page_size=50),
    }
    return settings, (channels, users, messages), resources


def _rows(path, sql, params=()):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql, list(params)).fetchall()


def test_a_partition_lands_channels_users_and_the_days_messages(setup):
    settings, assets, resources = setup
    result = dg.materialize(list(assets), partition_key=DAY.isoformat(), resources=resources)
    assert result.success
    path = settings.warehouse_path
    assert _rows(path, "select count(*) from raw_slack.channels")[0][0] == 7
    assert _rows(path, "select count(*) from raw_slack.users")[0][0] > 100
    n, days, dupes = _rows(
        path,
        "select count(*), count(distinct date), count(*) - count(distinct channel_id || ts) "
        "from raw_slack.messages",
    )[0]
    assert n > 10 and days == 1 and dupes == 0
    assert _rows(path, "select any_value(date), count(distinct _run_id) from raw_slack.messages")[0] == (
        DAY,
        1,
    )
    assert _rows(path, "select count(*) from raw_slack.messages where thread_ts <> ts")[0][0] > 0


def test_rerunning_is_idempotent(setup):
    settings, assets, resources = setup
    query = "select * exclude (_loaded_at, _run_id) from raw_slack.messages order by channel_id, ts"
    assert dg.materialize(list(assets), partition_key=DAY.isoformat(), resources=resources).success
    before = _rows(settings.warehouse_path, query)
    users_before = _rows(settings.warehouse_path, "select count(*) from raw_slack.users")
    assert dg.materialize(list(assets), partition_key=DAY.isoformat(), resources=resources).success
    assert _rows(settings.warehouse_path, query) == before and before
    assert _rows(settings.warehouse_path, "select count(*) from raw_slack.users") == users_before


def test_a_failed_load_keeps_the_day(setup, monkeypatch):
    settings, (_, _, messages), resources = setup
    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "2")
    assert dg.materialize([messages], partition_key=DAY.isoformat(), resources=resources).success
    good = _rows(settings.warehouse_path, "select count(*), max(ts) from raw_slack.messages")
    sandbox = ensure_sandbox()
    # the re-run asks no replies (no thread grew): its third channel's history fails
    sandbox.inject_fault("conversations.history", status=500, times=None, after=2)
    try:
        result = dg.materialize(
            [messages], partition_key=DAY.isoformat(), resources=resources, raise_on_error=False
        )
    finally:
        sandbox.clear_faults()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "conversations.history" in message and "500" in message and "xoxb-" not in message
    assert _rows(settings.warehouse_path, "select count(*), max(ts) from raw_slack.messages") == good


def test_an_export_path_loads_the_days_from_the_zip(setup, tmp_path):
    settings, assets, resources = setup
    path = write_export(tmp_path / "export.zip", 42, "small", DAY - timedelta(days=2), DAY)
    resources = {**resources, "slack": SlackResource(export_path=str(path))}
    result = dg.materialize(list(assets), partition_key=DAY.isoformat(), resources=resources)
    assert result.success
    rows = _rows(
        settings.warehouse_path,
        "select count(*), min(date), max(date), any_value(_source) from raw_slack.messages",
    )
    assert rows[0][0] > 10 and rows[0][1] == rows[0][2] == DAY and rows[0][3] == "export"
    assert _rows(settings.warehouse_path, "select count(*) from raw_slack.channels")[0][0] == 7


# --- the fewest calls: exact counts per method on a pinned sandbox --------------------------------

T1 = date(2026, 6, 12)  # the sandbox's "today" of the backfill
T2 = T1 + timedelta(days=2)  # ... and of the nightly run after it
T3 = T2 + timedelta(days=1)  # ... and of the night after that night


def _calls(server, method: str, since: int = 0) -> int:
    return len(server.requests_to(f"/slack/{method}")[since:])


def _expected_calls(server, today: date, days: list[date], loaded: dict | None) -> dict[str, int]:
    """The floor, from the sandbox's own data: users 1,000 a page; per channel one history page per
    200 parents (at least one); one replies call per parent with replies, when loaded, only for
    the parents whose latest reply is not the one loaded."""
    from connectors.sandbox import community
    from connectors.sandbox.slack_api import _top_level, users_on, visible_replies

    seed, scale = server.seed, server.scale
    history = replies = 0
    for space in community.spaces("slack"):
        parents = [p for d in days for p in _top_level(seed, scale, space.native_id, d)]
        history += max(1, -(-len(parents) // 200))
        for p in parents:
            visible = visible_replies(seed, scale, p.post_id, today)
            if visible and (
                loaded is None or loaded.get((space.native_id, p.post_id)) != visible[-1].post_id
            ):
                replies += 1
    users = -(-len(users_on(seed, scale, today)) // 1000)
    return {
        "conversations.list": 1,
        "users.list": users,
        "conversations.history": history,
        "conversations.replies": replies,
    }


@pytest.fixture
def pinned(monkeypatch):
    """A sandbox whose today is set by the test, the assets' SANDBOX_URL pointing at it."""
    from connectors.sandbox import SandboxServer

    servers = []

    def start(today: date):
        server = SandboxServer(seed=42, scale="small", today=today).start()
        servers.append(server)
        monkeypatch.setenv("SANDBOX_URL", server.base_url)
        return server

    yield start
    for server in servers:
        server.stop()


def _pinned_settings(path):
    from orchestration.settings import Settings

    return Settings(
        warehouse_path=path / "warehouse.duckdb",
        serving_path=path / "serving" / "marts.duckdb",
        history_start=date(2026, 5, 1),
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )


def _range_tags(first: date, last: date, nightly: bool = False) -> dict[str, str]:
    from orchestration.partitions import NIGHTLY_TAG

    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    return {**tags, NIGHTLY_TAG: "true"} if nightly else tags


def _message_rows(path) -> list[tuple]:
    return _rows(
        path, "select * exclude (_loaded_at, _run_id) from raw_slack.messages order by channel_id, ts"
    )


def _threads_grown(server, days: list[date], since: date, today: date) -> set[tuple[str, str]]:
    """The threads of `days` whose latest reply visible on `today` is not the one visible on
    `since` (a thread with no reply then included), from the sandbox's own posts."""
    from connectors.sandbox.slack_api import _top_level, visible_replies

    seed, scale = server.seed, server.scale
    grown = set()
    for space in community.spaces("slack"):
        for p in (p for d in days for p in _top_level(seed, scale, space.native_id, d)):
            now = visible_replies(seed, scale, p.post_id, today)
            then = visible_replies(seed, scale, p.post_id, since)
            if now and (not then or then[-1].post_id != now[-1].post_id):
                grown.add((space.native_id, p.post_id))
    return grown


def test_a_backfill_and_a_nightly_run_make_the_fewest_calls_per_method_and_the_rows_of_a_fresh_load(
    tmp_path, pinned
):
    settings = _pinned_settings(tmp_path)
    assets = build_slack_assets(daily_partitions(settings))
    warehouse = DuckDBWarehouse(path=str(settings.warehouse_path))
    resources = {"warehouse": warehouse, "slack": SlackResource()}
    backfill_days = [T1 - timedelta(days=10 - i) for i in range(10)]  # T1-10 .. T1-1

    server = pinned(T1)
    result = dg.materialize(
        list(assets), tags=_range_tags(backfill_days[0], backfill_days[-1]), resources=resources
    )
    assert result.success
    made = {
        m: _calls(server, m)
        for m in ("conversations.list", "users.list", "conversations.history", "conversations.replies")
    }
    assert made == _expected_calls(server, T1, backfill_days, None)
    assert made["conversations.replies"] > 10 and made["conversations.history"] == 7
    loaded = dict(
        ((c, ts), latest)
        for c, ts, latest in _rows(
            settings.warehouse_path,
            "select channel_id, ts, latest_reply from raw_slack.messages "
            "where ts = thread_ts and reply_count > 0",
        )
    )

    # the nightly run two days later: the last 8 days asked, the loaded days before them re-read
    # from the same history scan, replies only for threads that grew (and the two new days')
    server = pinned(T2)
    nightly_days = [T2 - timedelta(days=12 - i) for i in range(12)]  # T1-10 .. T2-1
    messages = assets[2]
    result = dg.materialize(
        [messages], tags=_range_tags(nightly_days[0], nightly_days[-1], nightly=True), resources=resources
    )
    assert result.success
    made = {
        m: _calls(server, m) for m in ("conversations.list", "conversations.history", "conversations.replies")
    }
    expected = _expected_calls(server, T2, nightly_days, loaded)
    assert made == {m: expected[m] for m in made}
    assert 0 < made["conversations.replies"] < sum(1 for _ in loaded)  # fewer than every thread again
    metadata = result.asset_materializations_for_node("slack__messages")[-1].metadata
    # the 8 days asked and the 4 loaded days before them re-read for their threads: 12 replaced,
    # and `rows` counts the rows of all 12
    assert metadata["asked_days"].value == 8 and metadata["rescanned_days"].value == 4
    assert metadata["days"].value == 12 and metadata["first_day"].value == nightly_days[0].isoformat()
    assert metadata["last_day"].value == nightly_days[-1].isoformat()
    assert (
        metadata["rows"].value
        == _rows(settings.warehouse_path, "select count(*) from raw_slack.messages")[0][0]
    )
    assert metadata["skipped_channels"].value == 0
    after_nightly = _message_rows(settings.warehouse_path)

    # a fresh load of the same days at T2 holds the same rows: the carried-over replies are right
    fresh = _pinned_settings(tmp_path / "fresh")
    fresh_resources = {"warehouse": DuckDBWarehouse(path=str(fresh.warehouse_path)), "slack": SlackResource()}
    assert dg.materialize(
        [messages], tags=_range_tags(nightly_days[0], nightly_days[-1]), resources=fresh_resources
    ).success
    assert after_nightly == _message_rows(fresh.warehouse_path) and after_nightly

    # the night after that night, a day later: conversations.replies exactly for the threads whose
    # latest reply moved during that day (the new day's threads with replies among them), by the
    # sandbox's own reply times, not by what the table holds
    server = pinned(T3)
    second_days = [T3 - timedelta(days=13 - i) for i in range(13)]  # T1-10 .. T3-1
    result = dg.materialize(
        [messages], tags=_range_tags(second_days[0], second_days[-1], nightly=True), resources=resources
    )
    assert result.success
    grown = _threads_grown(server, second_days, T2, T3)
    with_replies = _rows(
        settings.warehouse_path,
        "select count(*) from raw_slack.messages where ts = thread_ts and reply_count > 0",
    )[0][0]
    asked = {r.path.split("ts=")[1].split("&")[0] for r in server.requests_to("/slack/conversations.replies")}
    assert _calls(server, "conversations.replies") == len(grown) == len(asked)
    assert asked == {ts for _, ts in grown}
    assert 0 < len(grown) < with_replies / 3  # one day's growth, not every thread again
    assert any(ts_day(ts) == T3 - timedelta(days=1) for _, ts in grown)  # the new day's
    assert any(ts_day(ts) < T3 - timedelta(days=1) for _, ts in grown)  # and older ones
    assert (
        _calls(server, "conversations.history")
        == _expected_calls(server, T3, second_days, None)["conversations.history"]
    )


def test_a_channel_the_bot_left_is_skipped_with_a_count_in_the_metadata(tmp_path, pinned):
    settings = _pinned_settings(tmp_path)
    assets = build_slack_assets(daily_partitions(settings))
    resources = {"warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)), "slack": SlackResource()}
    server = pinned(T1)
    left = sorted(s.native_id for s in community.spaces("slack"))[0]
    server.slack_left_channels.add(left)
    days = [T1 - timedelta(days=5 - i) for i in range(5)]
    result = dg.materialize(list(assets), tags=_range_tags(days[0], days[-1]), resources=resources)
    assert result.success
    metadata = result.asset_materializations_for_node("slack__messages")[-1].metadata
    assert metadata["skipped_channels"].value == 1
    channels = {
        c for (c,) in _rows(settings.warehouse_path, "select distinct channel_id from raw_slack.messages")
    }
    assert left not in channels and len(channels) == 6
    assert _rows(settings.warehouse_path, "select count(*) from raw_slack.channels")[0][0] == 7


# --- a history load: the three assets as one step -------------------------------------------------


def _history_load(tmp_path, settings_for):
    """The history-load build over a 3-day export, and a run of it on that export or another."""
    from orchestration.partitions import history_tags

    settings = settings_for(tmp_path, days=10)
    first = DAY - timedelta(days=2)
    export = write_export(tmp_path / "export.zip", 42, "small", first, DAY)
    assets = build_slack_assets(None)
    warehouse = DuckDBWarehouse(path=str(settings.warehouse_path))

    def run(path, instance=None) -> dg.ExecuteInProcessResult:
        resources = {"warehouse": warehouse, "slack": SlackResource(export_path=str(path))}
        return dg.materialize(
            assets,
            tags=history_tags(first, DAY),
            resources=resources,
            raise_on_error=False,
            instance=instance,
        )

    return settings.warehouse_path, export, assets, run


def test_a_history_load_is_one_step_loading_and_checking_the_three_assets(tmp_path, settings_for):
    warehouse, export, assets, run = _history_load(tmp_path, settings_for)
    assert len(assets) == 1
    instance = dg.DagsterInstance.ephemeral()
    result = run(export, instance)
    assert result.success
    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert steps == ["slack_history"]  # one step: its events and the warehouse pool's claim once
    materialized = {
        m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("slack_history")
    }
    assert sorted(materialized) == ["channels", "messages", "users"]
    for name in materialized:
        table_rows = _rows(warehouse, f"select count(*) from raw_slack.{name}")[0][0]
        assert materialized[name]["rows"].value == table_rows > 0
    messages = materialized["messages"]
    assert (
        messages["days"].value == 3 and messages["first_day"].value == (DAY - timedelta(days=2)).isoformat()
    )
    assert messages["history_days_loaded"].value == 3  # the ledger's coverage, on the messages only
    assert "history_days_loaded" not in materialized["channels"]
    checks = {c.asset_key.path[-1]: c for c in result.get_asset_check_evaluations()}
    assert sorted(checks) == ["channels", "messages", "users"] and all(c.passed for c in checks.values())
    # no log line repeating what the materializations say: each would be one more event record
    records = instance.get_records_for_run(result.run_id, limit=1000).records
    assert [r.event_log_entry.user_message for r in records if r.event_log_entry.dagster_event is None] == []
    assert len(records) > 20  # the run's events are there to be read


def test_a_refused_asset_in_a_history_load_leaves_the_others_loaded_and_fails_the_step(
    tmp_path, settings_for
):
    import json
    import zipfile

    warehouse, export, _, run = _history_load(tmp_path, settings_for)
    assert run(export).success
    users_before = _rows(warehouse, "select count(*), sum(hash(u)) from raw_slack.users u")
    # a users.json of one user: shrinking the snapshot past SNAPSHOT_MAX_SHRINK is refused
    few = tmp_path / "few.zip"
    with zipfile.ZipFile(export) as src, zipfile.ZipFile(few, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, json.dumps(json.loads(data)[:1]) if name == "users.json" else data)

    result = run(few)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "slack_history" and "raw_slack.users from" in str(
        failure.event_specific_data.error
    )
    # the channels before the users and the messages after them loaded and were recorded, as in
    # steps of their own; the users' table is as it was
    recorded = {m.asset_key.path[-1] for m in result.asset_materializations_for_node("slack_history")}
    assert recorded == {"channels", "messages"}
    assert _rows(warehouse, "select count(*), sum(hash(u)) from raw_slack.users u") == users_before
    runs = _rows(warehouse, "select count(distinct _run_id) from raw_slack.messages")[0][0]
    assert (
        runs == 1
        and _rows(warehouse, "select any_value(_run_id) from raw_slack.messages")[0][0] == result.run_id
    )
