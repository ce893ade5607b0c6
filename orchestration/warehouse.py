"""The DuckDB warehouse: one file, one writer, days replaced whole.

Every write goes through `replace_days`, which swaps a day's rows inside one transaction, so a
re-run is idempotent and a failure leaves the day's previous rows untouched; the same transaction
records the days in the warehouse's ledger of loaded days (orchestration/ledger.py). Storage only
writes: a batch is validated before it gets here, by the quality gate the caller holds
(orchestration/quality/gate.py, called by the day loop in orchestration/fetching.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from orchestration.ledger import ensure_ledger, record_days
from orchestration.snapshot_guard import check_shrink
from orchestration.warehouse_io import open_waiting_for_lock, transaction

# Steps that hold the warehouse for long (dbt's build, the serving snapshot's copy) share this pool;
# the instance limits it to one (dagster.yaml). The source loads are not in it: they hold the file
# only while they write a batch of days (`HeldConnection`), so several sources wait on their APIs
# at once and take turns at the file through its lock (orchestration/warehouse_io.py).
WAREHOUSE_POOL = "duckdb_warehouse"

# DuckDB keeps every block it reads or writes cached up to memory_limit (default: 80 % of RAM), so
# a loading process grew with the file it wrote: 281 -> 431 MB peak RSS over a year of GA4 days.
# Loading needs little (a day's insert, the gate's 28-day volume query). With a limit the cache
# stops growing once full; at 64 MB a year of large-scale days loads with the same CPU as at 128 MB
# and ~50 MB less RSS (GA4 492 -> 440 MB, Discourse 469 -> 412, Search Console 30 d 707 -> 664;
# bench/README.md, "Speed changes"). A day far above a row group (a 1M-row GA4 day) spills to disk
# and loads ~2x slower.
LOADING_MEMORY_LIMIT = "64MB"

# DuckDB shares one database per file among a process's connections. A thread opening the file
# while another closes its last connection failed ("Unique file handle conflict: ... already
# attached"): the closing database still held the file. So a process opens and closes the
# warehouse one connection at a time (a step's day loop and Slack's readers on fetch threads).
_OPEN_OR_CLOSE = threading.Lock()


def stamped(table: pa.Table, stamps: Iterable[tuple[pa.Field, object]]) -> pa.Table:
    """`table` with a column per (field, value) appended, every row holding that value: the load's
    stamps on a raw table (`_loaded_at`, `_run_id`, the source's id).

    Built by repeating one scalar, not from a Python list per row (a list of a day's 11k
    `_loaded_at` datetimes took ~5 ms to convert; the repeat ~0.05 ms).
    """
    n = table.num_rows
    for field, value in stamps:
        table = table.append_column(field, pa.repeat(pa.scalar(value, field.type), n))
    return table


class DuckDBWarehouse(dg.ConfigurableResource):
    """The working DuckDB file that ingestion and dbt write (BI tools read the serving snapshot)."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False):
        conn = connect_warehouse(self.path, read_only)
        try:
            yield conn
        finally:
            close_warehouse(conn)

    def held(self) -> HeldConnection:
        """A connection opened when a write needs it and released in between (`HeldConnection`)."""
        return HeldConnection(self.path)


class HeldConnection:
    """A warehouse connection a load opens when it writes and closes while it waits on its API.

        with warehouse.held() as held:
            ...                       # fetching: the file is free for other processes
            replace_days(held.get(), ...)  # opened (waiting for the lock, bounded) if closed
            held.release()            # about to wait on the API again: let others write

    DuckDB allows one writing process per file; a source whose step kept its connection for the
    whole loop made every other source's step wait for all of its API waits. Opening costs ~30-60
    ms on a 860 MB warehouse and closing after a write ~110-180 ms (its checkpoint), so the day
    loop releases only when the next batch is not ready soon (orchestration/fetching.py).
    Not thread-safe: one thread (the step's) uses it.
    """

    def __init__(self, path: str):
        self.path = path
        self.opened = 0  # how many times the file was opened (for tests and benchmarks)
        self._conn: duckdb.DuckDBPyConnection | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def get(self) -> duckdb.DuckDBPyConnection:
        """The open connection, opened first if it was released (`connect_warehouse`).

        Raises:
            WarehouseLockedError: another process held the file past WAREHOUSE_LOCK_WAIT_SECONDS.
        """
        if self._conn is None:
            self._conn = connect_warehouse(self.path)
            self.opened += 1
        return self._conn

    def release(self) -> None:
        """Close the connection (if open): the file's lock is free until the next `get`."""
        conn, self._conn = self._conn, None
        if conn is not None:
            close_warehouse(conn)

    def __enter__(self) -> HeldConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def connect_warehouse(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file as the loading steps use it (the caller closes it).

    Raises:
        WarehouseLockedError: another process held the file longer than WAREHOUSE_LOCK_WAIT_SECONDS;
            the message names it.
        WarehouseError: the file cannot be opened for another reason (permissions, disk), named.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with _OPEN_OR_CLOSE:
        conn = open_waiting_for_lock(path, read_only)
    conn.execute(f"set memory_limit = '{LOADING_MEMORY_LIMIT}'")
    return conn


def close_warehouse(conn: duckdb.DuckDBPyConnection) -> None:
    """Close a connection `connect_warehouse` opened (never while another thread opens one)."""
    with _OPEN_OR_CLOSE:
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
        rows: the new rows (validated by the caller's gate); every row's `date_column` must be one
            of `days`.

    Returns:
        The number of rows inserted.
    """
    days = sorted(set(days))
    with _single_threaded(conn, rows.num_rows):
        conn.register("incoming_rows", rows)
        try:
            _swap_days(conn, table, days, date_column)
        finally:
            conn.unregister("incoming_rows")
    return rows.num_rows


# DuckDB parallelises an insert by row group (122,880 rows): a smaller batch (a day of any source)
# gains nothing from more threads and pays for their coordination. One thread cut the CPU of
# replace_days by ~40% on GA4 day batches of ~11k rows (bench/README.md, "Speed changes").
_SINGLE_THREAD_MAX_ROWS = 122_880


@contextmanager
def _single_threaded(conn: duckdb.DuckDBPyConnection, n_rows: int):
    """Run the block with DuckDB's `threads` at 1 for a batch under a row group, then restore it."""
    if n_rows >= _SINGLE_THREAD_MAX_ROWS:
        yield
        return
    previous = int(conn.execute("select current_setting('threads')").fetchone()[0])
    if previous == 1:
        yield
        return
    conn.execute("set threads = 1")
    try:
        yield
    finally:
        conn.execute(f"set threads = {previous}")


def _swap_days(conn: duckdb.DuckDBPyConnection, table: str, days: list[date], date_column: str) -> None:
    """Delete `days` from `table` and insert the registered `incoming_rows`, in one transaction."""
    _ensure_table(conn, table)
    ensure_ledger(conn)
    with transaction(conn, f"{table} for {days[0]}..{days[-1]}"):
        # The range predicate lets DuckDB skip row groups by their min/max before the list test.
        conn.execute(
            f"delete from {table} where {date_column} between ? and ? "
            f"and {date_column} in (select unnest(?::date[]))",
            [days[0], days[-1], days],
        )
        conn.execute(f"insert into {table} by name select * from incoming_rows")
        record_days(conn, table, days, date_column)  # the ledger: in the same transaction as the rows


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> int:
    """Replace the whole of `table` by `rows` in one transaction (unpartitioned snapshots).

    A snapshot table (users, channels, categories) is not shrunk by more than SNAPSHOT_MAX_SHRINK
    (orchestration/snapshot_guard.py).

    Returns:
        The number of rows written.
    """
    check_shrink(conn, table, rows.num_rows)
    schema = table.split(".")[0]
    conn.register("incoming_rows", rows)
    try:
        conn.execute(f"create schema if not exists {schema}")
        with transaction(conn, table):
            conn.execute(f"create or replace table {table} as select * from incoming_rows")
    finally:
        conn.unregister("incoming_rows")
    return rows.num_rows


def _ensure_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create `table` from the registered `incoming_rows` the first time it is written."""
    # Two no-op statements (~1 ms) rather than an information_schema lookup (~6 ms a call).
    conn.execute(f"create schema if not exists {table.split('.')[0]}")
    conn.execute(f"create table if not exists {table} as select * from incoming_rows limit 0")
