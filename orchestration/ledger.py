"""The warehouse's own record of the days each raw table holds: `ledger.loaded_days`.

One row per table and day loaded: the rows it holds (0 for a day loaded that had none) and when it
was loaded. `warehouse.replace_days` writes it in the same transaction as the day's rows, so a
refused or failed batch leaves no ledger row, and a day is in the ledger exactly when its rows are
in the table. A day that was not loaded (never fetched, a failed run, a Search Console day not
final yet, which orchestration/gsc does not write) has no row.

Why the warehouse and not Dagster's partition status: Dagster's per-day status is one event per
asset and day, which made a 4,206-day backfill spend over 90% of its time in bookkeeping (issue 16
point 5, bench/README.md), and the retention job (orchestration/retention.py) deletes those events
with their runs after DAGSTER_RETENTION_DAYS, after which the UI shows the history as missing
although it is loaded. The ledger is written by the load itself, lives as long as the data, and is
what every daily raw asset's metadata reports after a load (`coverage`: days loaded of the days
since HISTORY_START_DATE, and the missing ones), in the UI and in the commands' summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import duckdb

LEDGER = "ledger.loaded_days"
# The missing spans a metadata entry names before it says "and N more".
SHOWN_SPANS = 5


def ensure_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger if it does not exist (two no-op statements once it does)."""
    conn.execute("create schema if not exists ledger")
    conn.execute(
        f"create table if not exists {LEDGER} "
        "(table_name varchar, day date, rows bigint, loaded_at timestamp)"
    )


def record_days(
    conn: duckdb.DuckDBPyConnection, table: str, days: Sequence[date], date_column: str = "date"
) -> None:
    """Record `days` of `table` as loaded with the rows of the registered `incoming_rows` per day.

    Called inside the transaction that swaps the days in, after the insert; the ledger must exist
    (`ensure_ledger`, before the transaction).
    """
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    conn.execute(
        f"delete from {LEDGER} where table_name = ? and day in (select unnest(?::date[]))",
        [table, list(days)],
    )
    conn.execute(
        f"""
        insert into {LEDGER}
        with days_swapped as (select unnest(?::date[]) as day),
        rows_per_day as (select {date_column} as day, count(*) as n from incoming_rows group by 1)
        select ?, days_swapped.day, coalesce(rows_per_day.n, 0), ?
        from days_swapped left join rows_per_day using (day)
        """,
        [list(days), table, loaded_at],
    )


def loaded_days(conn: duckdb.DuckDBPyConnection, table: str, first: date, last: date) -> set[date]:
    """The days of `first`..`last` the ledger holds for `table` (none if there is no ledger yet)."""
    # Asked first, not caught: with no such table, DuckDB would look for a Python variable of its name.
    exists = conn.execute(
        "select count(*) from duckdb_tables() where schema_name = 'ledger' and table_name = 'loaded_days'"
    ).fetchone()[0]
    if not exists:
        return set()
    rows = conn.execute(
        f"select day from {LEDGER} where table_name = ? and day between ? and ?", [table, first, last]
    ).fetchall()
    return {day for (day,) in rows}


def _spans(days: Sequence[date]) -> list[tuple[date, date]]:
    spans: list[tuple[date, date]] = []
    for day in days:
        if spans and day == spans[-1][1] + timedelta(days=1):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def describe_spans(days: Sequence[date]) -> str:
    """Sorted days as spans: "2015-01-01..2015-03-31, 2019-02-02" (and "and N more spans")."""
    spans = _spans(sorted(days))
    text = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in spans[:SHOWN_SPANS])
    if len(spans) > SHOWN_SPANS:
        text += f" and {len(spans) - SHOWN_SPANS} more spans"
    return text or "none"


def coverage(conn: duckdb.DuckDBPyConnection, table: str, first: date, last: date) -> dict[str, object]:
    """What the ledger says of `table` over `first`..`last` (the history), as asset metadata."""
    total = max((last - first).days + 1, 0)
    have = loaded_days(conn, table, first, last)
    missing = [first + timedelta(days=i) for i in range(total) if first + timedelta(days=i) not in have]
    return {
        "history": f"{first}..{last}",
        "history_days_loaded": len(have),
        "history_days_missing": len(missing),
        "history_missing": describe_spans(missing),
    }


def history_span(environ=None) -> tuple[date, date]:
    """HISTORY_START_DATE .. yesterday in NIGHTLY_TIMEZONE: the days the warehouse should hold."""
    from zoneinfo import ZoneInfo

    from orchestration.settings import Settings

    settings = Settings.from_env(environ)
    yesterday = datetime.now(ZoneInfo(settings.nightly_timezone)).date() - timedelta(days=1)
    return settings.history_start, yesterday


def add_coverage(context, keys=None) -> None:
    """Put each daily raw asset's history coverage (`coverage`) on its materialization: of `keys`,
    or of every asset the step materializes.

    Runs after a successful load (orchestration/quality/checks.py, `gated`), so the UI and the
    commands' summaries show the days the warehouse holds, whatever the run's partitions were.
    """
    from orchestration.registry import BY_NAME

    try:
        warehouse = context.resources.warehouse
    except Exception:  # an asset without the warehouse resource: nothing to report
        return
    keys = context.selected_asset_keys if keys is None else keys
    tables = [(key, BY_NAME.get(f"raw_{key.path[-2]}.{key.path[-1]}")) for key in keys]
    tables = [(key, table) for key, table in tables if table is not None and table.daily]
    if not tables:
        return
    partitions = context.assets_def.partitions_def
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition) and partitions.get_last_partition_key():
        # the days the asset's partitions span, as the UI shows them
        first = date.fromisoformat(partitions.get_first_partition_key())
        last = date.fromisoformat(partitions.get_last_partition_key())
    else:
        first, last = history_span()
    with warehouse.connect() as conn:
        for key, table in tables:
            context.add_asset_metadata(coverage(conn, table.name, first, last), asset_key=key)
