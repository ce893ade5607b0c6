"""The warehouse's ledger of loaded days (orchestration/ledger.py): written with the rows, in their
transaction, and read back as each daily asset's history coverage."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pytest

from orchestration.ledger import LEDGER, coverage, describe_spans, loaded_days
from orchestration.warehouse import replace_days

DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(6)]


def _rows(days_and_counts: list[tuple[date, int]]) -> pa.Table:
    dates = [d for d, n in days_and_counts for _ in range(n)]
    return pa.table({"date": pa.array(dates, pa.date32()), "value": pa.array(range(len(dates)), pa.int64())})


def test_each_day_swapped_in_is_recorded_with_its_rows_an_empty_day_with_zero(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_days(conn, "raw_test.values", DAYS[:3], _rows([(DAYS[0], 2), (DAYS[2], 5)]))
    got = conn.execute(f"select day, rows from {LEDGER} order by day").fetchall()
    assert got == [(DAYS[0], 2), (DAYS[1], 0), (DAYS[2], 5)]
    # A re-load replaces the day's ledger row, never adds a second one.
    replace_days(conn, "raw_test.values", [DAYS[2]], _rows([(DAYS[2], 1)]))
    got = conn.execute(f"select day, rows from {LEDGER} order by day").fetchall()
    assert got == [(DAYS[0], 2), (DAYS[1], 0), (DAYS[2], 1)]


def test_a_failed_write_records_no_day_and_keeps_the_ledger_as_it_was(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_days(conn, "raw_test.values", DAYS[:2], _rows([(DAYS[0], 1), (DAYS[1], 1)]))
    # A value that does not fit the table's column fails the insert inside the transaction.
    bad = pa.table({"date": pa.array([DAYS[1], DAYS[3]], pa.date32()), "value": pa.array(["x", "y"])})
    with pytest.raises(duckdb.Error):
        replace_days(conn, "raw_test.values", [DAYS[1], DAYS[3]], bad)
    assert loaded_days(conn, "raw_test.values", DAYS[0], DAYS[-1]) == {DAYS[0], DAYS[1]}
    assert conn.execute(f"select rows from {LEDGER} where day = ?", [DAYS[1]]).fetchone() == (1,)


def test_coverage_counts_the_days_loaded_of_the_history_and_names_the_missing_spans(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert coverage(conn, "raw_test.values", DAYS[0], DAYS[-1])["history_days_loaded"] == 0  # no ledger yet
    replace_days(conn, "raw_test.values", [DAYS[0], DAYS[3]], _rows([(DAYS[0], 1)]))
    replace_days(conn, "raw_other.values", DAYS, _rows([(d, 1) for d in DAYS]))  # another table's days
    assert coverage(conn, "raw_test.values", DAYS[0], DAYS[-1]) == {
        "history": "2026-03-01..2026-03-06",
        "history_days_loaded": 2,
        "history_days_missing": 4,
        "history_missing": "2026-03-02..2026-03-03, 2026-03-05..2026-03-06",
    }


def test_missing_days_read_as_spans_and_a_long_list_is_cut():
    days = [date(2026, 1, 1) + timedelta(days=2 * i) for i in range(8)]
    assert describe_spans([]) == "none"
    assert describe_spans(days[:2]) == "2026-01-01, 2026-01-03"
    assert describe_spans(days) == (
        "2026-01-01, 2026-01-03, 2026-01-05, 2026-01-07, 2026-01-09 and 3 more spans"
    )


def test_a_backfill_keeps_daily_partitions_only_within_the_run_history_retention():
    """Unset, BACKFILL_DAILY_PARTITIONS_MAX_DAYS is DAGSTER_RETENTION_DAYS: a longer backfill's
    per-day events would be deleted by retention anyway, so it runs as a history load."""
    from orchestration.partitions import backfill_max_days
    from orchestration.settings import SettingsError

    assert backfill_max_days({}) == 30  # the retention's default
    assert backfill_max_days({"DAGSTER_RETENTION_DAYS": "90"}) == 90
    assert backfill_max_days({"DAGSTER_RETENTION_DAYS": "90", "BACKFILL_DAILY_PARTITIONS_MAX_DAYS": "7"}) == 7
    assert backfill_max_days({"BACKFILL_DAILY_PARTITIONS_MAX_DAYS": "0"}) == 0
    with pytest.raises(SettingsError, match="DAGSTER_RETENTION_DAYS"):
        backfill_max_days({"DAGSTER_RETENTION_DAYS": "soon"})
