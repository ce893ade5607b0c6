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
    schema = table.split(".")[0]
    days = sorted(set(days))
    conn.register("incoming_rows", rows)
    try:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(f"create table if not exists {table} as select * from incoming_rows limit 0")
        conn.execute("begin transaction")
        try:
            conn.execute(f"delete from {table} where {date_column} in (select unnest(?::date[]))", [days])
            conn.execute(f"insert into {table} by name select * from incoming_rows")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    finally:
        conn.unregister("incoming_rows")
    return rows.num_rows
