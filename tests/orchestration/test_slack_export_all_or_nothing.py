"""All or nothing per input: a Slack export broken in any one file fails every Slack asset before
anything is written, naming the file inside the zip, the position and the fix; and a load that
would shrink a snapshot table by more than SNAPSHOT_MAX_SHRINK is refused unless forced."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox.slack_export import write_export
from orchestration.partitions import daily_partitions
from orchestration.slack.assets import build_slack_assets
from orchestration.slack.resources import SlackResource
from orchestration.warehouse import DuckDBWarehouse

DAY = date.today() - timedelta(days=2)
# What each table holds: the row count and a digest of every row, so any rewrite shows.
STATE = {
    table: f"select count(*), sum(hash(t)) from {table} t"
    for table in ("raw_slack.users", "raw_slack.channels", "raw_slack.messages")
}


def _state(warehouse: Path) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {table: conn.execute(sql).fetchone() for table, sql in STATE.items()}


def _rewritten(source: Path, target: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of the zip `source` with members replaced (bytes) or left out (None)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name in replace:
                if replace[name] is not None:
                    dst.writestr(name, replace[name])
            else:
                dst.writestr(name, src.read(name))
    return target


@pytest.fixture
def loaded(tmp_path, settings_for):
    """A warehouse holding a good export's channels, users and DAY's messages."""
    settings = settings_for(tmp_path, days=10)
    assets = build_slack_assets(daily_partitions(settings))
    export = write_export(tmp_path / "export.zip", 42, "small", DAY - timedelta(days=2), DAY)
    warehouse = DuckDBWarehouse(path=str(settings.warehouse_path))

    def run(path: Path) -> dg.ExecuteInProcessResult:
        resources = {"warehouse": warehouse, "slack": SlackResource(export_path=str(path))}
        return dg.materialize(
            assets, partition_key=DAY.isoformat(), resources=resources, raise_on_error=False
        )

    assert run(export).success
    good = _state(settings.warehouse_path)
    assert all(count > 0 for count, _ in good.values())
    return settings.warehouse_path, export, run, good


def _failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        e.step_key: str(e.event_specific_data.error)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }


def _day_file(export: Path) -> str:
    with zipfile.ZipFile(export) as zf:
        return next(n for n in zf.namelist() if n.endswith(f"{DAY - timedelta(days=1)}.json"))


@pytest.mark.parametrize("breakage", ["invalid channels.json", "missing users.json", "one corrupt day file"])
def test_a_broken_export_fails_naming_the_file_and_changes_no_table(loaded, tmp_path, breakage):
    warehouse, export, run, good = loaded
    if breakage == "invalid channels.json":
        member, replace, where = (
            "channels.json",
            {"channels.json": b'[{"id": "C1", "name": "general"},\n{"id": '},
            "line 2",
        )
    elif breakage == "missing users.json":
        member, replace, where = "users.json", {"users.json": None}, "no users.json"
    else:
        member = _day_file(export)
        with zipfile.ZipFile(export) as zf:
            text = zf.read(member).decode()
        replace, where = {member: text[: len(text) // 2].encode()}, "line "
    broken = _rewritten(export, tmp_path / "broken.zip", replace)

    result = run(broken)

    assert not result.success
    failures = _failures(result)
    # Every Slack asset refused the export, not only the one reading the broken file.
    assert set(failures) == {"slack__channels", "slack__users", "slack__messages"}, failures
    for message in failures.values():
        assert member in message and where in message and "broken.zip" in message
        assert "Download the export again" in message and "Nothing from this export was loaded" in message
    assert _state(warehouse) == good


def test_a_message_without_ts_names_the_file_and_the_item(loaded, tmp_path):
    warehouse, export, run, good = loaded
    member = _day_file(export)
    with zipfile.ZipFile(export) as zf:
        messages = json.loads(zf.read(member))
    messages[1].pop("ts")
    result = run(_rewritten(export, tmp_path / "broken.zip", {member: json.dumps(messages).encode()}))
    assert not result.success
    assert all(f"{member}, item 1 (0-based) has no ts" in m for m in _failures(result).values())
    assert _state(warehouse) == good


def test_a_load_shrinking_a_snapshot_table_past_the_limit_is_refused_unless_forced(
    loaded, tmp_path, monkeypatch
):
    warehouse, export, run, good = loaded
    with zipfile.ZipFile(export) as zf:
        users = json.loads(zf.read("users.json"))
    assert len(users) > 4
    few = _rewritten(export, tmp_path / "few.zip", {"users.json": json.dumps(users[:1]).encode()})

    result = run(few)
    assert not result.success
    message = _failures(result)["slack__users"]
    assert f"raw_slack.users from {len(users):,} to 1 rows" in message
    assert "SNAPSHOT_MAX_SHRINK=0.5" in message and "SNAPSHOT_ALLOW_SHRINK=1" in message
    assert _state(warehouse)["raw_slack.users"] == good["raw_slack.users"]

    monkeypatch.setenv("SNAPSHOT_ALLOW_SHRINK", "1")
    assert run(few).success
    assert _state(warehouse)["raw_slack.users"][0] == 1


def test_a_shrink_within_the_limit_loads(loaded, tmp_path, monkeypatch):
    warehouse, export, run, good = loaded
    with zipfile.ZipFile(export) as zf:
        users = json.loads(zf.read("users.json"))
    keep = len(users) - len(users) // 4
    monkeypatch.setenv("SNAPSHOT_MAX_SHRINK", "0.3")
    assert run(
        _rewritten(export, tmp_path / "most.zip", {"users.json": json.dumps(users[:keep]).encode()})
    ).success
    assert _state(warehouse)["raw_slack.users"][0] == keep
