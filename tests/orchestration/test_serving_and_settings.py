"""The serving snapshot is replaced whole or not at all; settings fail with the fix in the message."""

from __future__ import annotations

import re

import duckdb
import pytest

from orchestration.ga4.resources import ga4_resource_from_env
from orchestration.serving.assets import publish_snapshot
from orchestration.settings import Settings, SettingsError, bool_setting, float_setting, int_setting


def _warehouse_with_mart(path, rows):
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute("create or replace table marts.mart_example as select * from range(?) t(n)", [rows])


def test_publish_copies_every_mart_table_and_records_the_run(tmp_path):
    warehouse, serving = tmp_path / "w.duckdb", tmp_path / "serving" / "marts.duckdb"
    _warehouse_with_mart(warehouse, 5)
    published = publish_snapshot(str(warehouse), serving, run_id="run-1")
    assert published.counts == {"mart_example": 5}
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute("select sum(n) from mart_example").fetchone()[0] == 10
        assert conn.execute("select run_id from _snapshot_info").fetchone()[0] == "run-1"


def test_a_failed_publish_leaves_the_last_good_snapshot(tmp_path):
    warehouse, serving = tmp_path / "w.duckdb", tmp_path / "serving" / "marts.duckdb"
    _warehouse_with_mart(warehouse, 3)
    publish_snapshot(str(warehouse), serving, run_id="good")
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("drop table marts.mart_example")
    with pytest.raises(RuntimeError, match="No tables in schema 'marts'"):
        publish_snapshot(str(warehouse), serving, run_id="bad")
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute("select run_id from _snapshot_info").fetchone()[0] == "good"
        assert conn.execute("select count(*) from mart_example").fetchone()[0] == 3
    assert sorted(p.name for p in serving.parent.iterdir()) == ["marts.duckdb"]


def test_a_reader_holding_the_old_snapshot_does_not_block_publishing(tmp_path):
    warehouse, serving = tmp_path / "w.duckdb", tmp_path / "serving" / "marts.duckdb"
    _warehouse_with_mart(warehouse, 2)
    publish_snapshot(str(warehouse), serving, run_id="first")
    reader = duckdb.connect(str(serving), read_only=True)
    try:
        _warehouse_with_mart(warehouse, 7)
        publish_snapshot(str(warehouse), serving, run_id="second")
        # The open reader keeps its view of the old file until it reconnects.
        assert reader.execute("select count(*) from mart_example").fetchone()[0] == 2
    finally:
        reader.close()
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute("select count(*) from mart_example").fetchone()[0] == 7


def test_settings_resolve_relative_paths_against_the_project_root():
    settings = Settings.from_env({"WAREHOUSE_PATH": "data/x.duckdb"})
    assert settings.warehouse_path.is_absolute()
    assert settings.warehouse_path.parts[-2:] == ("data", "x.duckdb")
    assert settings.serving_path.name == "marts.duckdb"
    assert settings.history_start.isoformat() == "2025-07-01"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HISTORY_START_DATE": "01/07/2025"}, "HISTORY_START_DATE='01/07/2025' is not a date"),
        ({"NIGHTLY_TIMEZONE": "CEST"}, "Europe/Berlin"),
        ({"NIGHTLY_SCHEDULE_STATUS": "on"}, "'running' or 'stopped'"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(env, fragment):
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_number_settings_read_defaults_values_and_bounds():
    assert int_setting("X_PAGE_SIZE", 200, {}) == 200
    assert int_setting("X_PAGE_SIZE", 200, {"X_PAGE_SIZE": " 1_000 "}) == 1000
    assert float_setting("X_TIMEOUT_SECONDS", 30.0, {"X_TIMEOUT_SECONDS": "2.5"}) == 2.5
    assert bool_setting("X_ON", False, {"X_ON": "Yes"}) is True
    assert bool_setting("X_ON", True, {"X_ON": "0"}) is False
    assert bool_setting("X_ON", True, {"X_ON": ""}) is True


@pytest.mark.parametrize(
    ("read", "fragment"),
    [
        (
            lambda: int_setting("X_PAGE_SIZE", 200, {"X_PAGE_SIZE": "2.5"}),
            "X_PAGE_SIZE='2.5' is not a whole number",
        ),
        (
            lambda: int_setting("X_PAGE_SIZE", 200, {"X_PAGE_SIZE": "0"}, low=1),
            "X_PAGE_SIZE=0 is out of range",
        ),
        (
            lambda: float_setting("X_TIMEOUT_SECONDS", 30.0, {"X_TIMEOUT_SECONDS": "soon"}),
            "unset it to use 30.0",
        ),
        (lambda: bool_setting("X_ON", False, {"X_ON": "maybe"}), "X_ON='maybe' is not valid; use 1 or 0"),
    ],
)
def test_a_malformed_number_or_switch_names_the_setting_and_the_fix(read, fragment):
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        read()


def test_a_source_factory_reads_its_numbers_through_the_one_parser(monkeypatch):
    monkeypatch.setenv("GA4_PAGE_SIZE", "lots")
    with pytest.raises(SettingsError, match="GA4_PAGE_SIZE='lots' is not a whole number"):
        ga4_resource_from_env()
    monkeypatch.setenv("GA4_PAGE_SIZE", "5000")
    monkeypatch.setenv("GA4_TIMEOUT_SECONDS", "12.5")
    resource = ga4_resource_from_env(sandbox=True)
    assert (resource.page_size, resource.timeout_seconds, resource.uses_sandbox) == (5000, 12.5, True)


def test_report_path_defaults_beside_the_snapshot_and_follows_its_setting():
    assert Settings.from_env({}).report_path.parts[-3:] == ("data", "serving", "report.html")
    beside = Settings.from_env({"SERVING_PATH": "/srv/bi/marts.duckdb"}).report_path
    assert str(beside) == "/srv/bi/report.html"
    moved = Settings.from_env({"REPORT_PATH": "out/r.html"}).report_path
    assert moved.is_absolute() and moved.parts[-2:] == ("out", "r.html")


def test_publish_records_the_info_it_is_given_beside_the_run(tmp_path):
    warehouse, serving = tmp_path / "w.duckdb", tmp_path / "serving" / "marts.duckdb"
    _warehouse_with_mart(warehouse, 2)
    info = {"sources_loaded": "GA4 (sandbox)", "checks_passed": 41, "checks_total": 42}
    publish_snapshot(str(warehouse), serving, run_id="run-2", info=info)
    with duckdb.connect(str(serving), read_only=True) as conn:
        row = conn.execute(
            "select run_id, sources_loaded, checks_passed, checks_total from _snapshot_info"
        ).fetchone()
    assert row == ("run-2", "GA4 (sandbox)", 41, 42)
