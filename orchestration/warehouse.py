"""The DuckDB warehouse: one file, one writer, days replaced whole.

Every write goes through `replace_days`, which swaps a day's rows inside one transaction, so a
re-run is idempotent and a failure leaves the day's previous rows untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

# Steps that write the warehouse share this pool; the instance limits it to one (dagster.yaml).
WAREHOUSE_POOL = "duckdb_warehouse"


class DuckDBWarehouse(dg.ConfigurableResource):
    """The working DuckDB file that ingestion and dbt write (BI tools read the serving snapshot)."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            raise RuntimeError(
                f"Could not open the warehouse {self.path}: {exc}. DuckDB allows one writing process "
                "per file; close other sessions on it (a duckdb CLI, a notebook, a second Dagster run) "
                "and try again. BI tools should open the serving snapshot instead."
            ) from exc
        try:
            yield conn
        finally:
            conn.close()


def replace_days(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    days: Iterable[date],
    rows: pa.Table,
    date_column: str = "date",
) -> int:
    """Replace every row of `days` in `table` by `rows`, in one transaction.

    Args:
        conn: an open read-write connection.
        table: `schema.table`; created from the Arrow schema on first use.
        days: the days this batch covers (a day with no rows is emptied).
        rows: the new rows; every row's `date_column` must be one of `days`.

    Returns:
        The number of rows inserted.
    """
    days = sorted(set(days))
    conn.register("incoming_rows", rows)
    try:
        _ensure_table(conn, table)
        conn.execute("begin transaction")
        try:
            # The range predicate lets DuckDB skip row groups by their min/max before the list test.
            conn.execute(
                f"delete from {table} where {date_column} between ? and ? "
                f"and {date_column} in (select unnest(?::date[]))",
                [days[0], days[-1], days],
            )
            conn.execute(f"insert into {table} by name select * from incoming_rows")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    finally:
        conn.unregister("incoming_rows")
    return rows.num_rows


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> int:
    """Replace the whole of `table` by `rows` in one transaction (unpartitioned snapshots).

    Returns:
        The number of rows written.
    """
    schema = table.split(".")[0]
    conn.register("incoming_rows", rows)
    try:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute("begin transaction")
        try:
            conn.execute(f"create or replace table {table} as select * from incoming_rows")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    finally:
        conn.unregister("incoming_rows")
    return rows.num_rows


def _ensure_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create `table` from the registered `incoming_rows` the first time it is written."""
    schema, name = table.split(".")
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()[0]
    if not exists:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(f"create table {table} as select * from incoming_rows limit 0")
