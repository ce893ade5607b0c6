"""A whole-table load may not shrink a snapshot table by more than a set share unless forced.

Users, channels and categories are replaced whole on every load. A source that answers with part of
its list (an edited export, a token that lost access to most channels, an API returning an empty
page) would otherwise empty a table of a thousand members silently, and every mart built on it. The
guard compares the incoming row count with the table's before the write and refuses a drop larger
than SNAPSHOT_MAX_SHRINK (default 0.5: half the rows); SNAPSHOT_ALLOW_SHRINK=1 lets a real drop
(members removed, a new workspace) through for the run it is set in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import duckdb

# The tables each load replaces whole with the source's current list.
SNAPSHOT_TABLES = frozenset(
    {"raw_slack.users", "raw_slack.channels", "raw_discourse.categories", "raw_discourse.users"}
)
DEFAULT_MAX_SHRINK = 0.5


class SnapshotShrinkError(RuntimeError):
    """A load would have removed more of a snapshot table than SNAPSHOT_MAX_SHRINK allows."""


def max_shrink(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    text = (env.get("SNAPSHOT_MAX_SHRINK") or "").strip()
    if not text:
        return DEFAULT_MAX_SHRINK
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValueError(
            f"SNAPSHOT_MAX_SHRINK={text!r} is not a share between 0 and 1 (0.5: a load may remove at "
            f"most half of a table's rows); unset it for {DEFAULT_MAX_SHRINK}."
        )
    return share


def shrink_allowed(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (env.get("SNAPSHOT_ALLOW_SHRINK") or "").strip().lower() in ("1", "true", "yes")


def check_shrink(conn: duckdb.DuckDBPyConnection, table: str, incoming_rows: int) -> None:
    """Raise SnapshotShrinkError when replacing snapshot `table` by `incoming_rows` rows would remove
    more than SNAPSHOT_MAX_SHRINK of its rows (and SNAPSHOT_ALLOW_SHRINK is not set)."""
    if table not in SNAPSHOT_TABLES or shrink_allowed():
        return
    try:
        existing = conn.execute(f"select count(*) from {table}").fetchone()[0]
    except duckdb.CatalogException:
        return  # the first load
    share = max_shrink()
    if existing == 0 or incoming_rows >= existing * (1 - share):
        return
    raise SnapshotShrinkError(
        f"Refused: this load would shrink {table} from {existing:,} to {incoming_rows:,} rows "
        f"({1 - incoming_rows / existing:.0%} fewer), more than SNAPSHOT_MAX_SHRINK={share:g} allows; the "
        "table is unchanged. A source answering with part of its list (an edited or partial export, a "
        "token that lost access) looks like this. If the drop is real (members or channels removed, "
        "another workspace), re-run once with SNAPSHOT_ALLOW_SHRINK=1."
    )
