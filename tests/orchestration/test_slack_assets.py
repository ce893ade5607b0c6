"""The Slack assets land raw_slack.* from the sandbox's Web API or from an export zip."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import ensure_sandbox
from connectors.sandbox.slack_export import write_export
from orchestration.partitions import daily_partitions
from orchestration.slack.assets import build_slack_assets
from orchestration.slack.resources import SlackResource
from orchestration.warehouse import DuckDBWarehouse

DAY = date.today() - timedelta(days=2)


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
