"""One expectation suite per raw stream, declared as data.

Each entry says what a batch of that table must look like before it is committed:

- `columns`: the columns checked for presence and Arrow type: the key, the date column and the
  stamp of the table's entry in orchestration/registry.py, plus the ones a suite names (types from
  the registry's schema).
- `keys`: the grain (the registry's `key`): no two rows of a batch share these values (a batch is
  one or more whole days, so "unique within the partition"). `not_null`: columns that may never be
  empty (the keys unless a suite says otherwise).
- `ranges`: column -> (min, max), either bound None; `pairs`: (a, b) meaning a >= b on every row.
- `date_column` (the registry's): rows must fall on the days the batch replaces (None: a snapshot).
- `volume`: each day's row count against the median of the loaded days in the 28 days before it:
  below `fail_below` x median the batch is refused, below `warn_below` x median it is loaded with a
  warning. Skipped (with a note) while fewer than `min_history_days` days are loaded. A source that
  publishes a day late (Search Console finalises after ~3 days) lists `empty_ok_days`: an empty day
  that recent is "not published yet", not a collapse. None: no volume check (community streams
  are too small and bursty per day for a median to mean anything).

Change a threshold here; the asset checks and the README read it from here.
"""

from __future__ import annotations

from typing import Any

from orchestration.registry import TABLES, raw_table

# Real days dip to ~40 % of the trailing median (weekends, a campaign ending: measured over 500
# days of the sandbox brand's GA4 sessions and Meta ads), so a warning below 50 % would cry wolf
# every Saturday; 30 % warns on what a normal week never does, 20 % refuses the day.
VOLUME_DEFAULTS: dict[str, Any] = {
    "fail_below": 0.2,
    "warn_below": 0.3,
    "lookback_days": 28,
    "min_history_days": 7,
    "empty_ok_days": 0,
}


def _suite(
    table_name: str,
    columns: tuple[str, ...] | None = (),
    not_null: tuple[str, ...] | None = None,
    ranges: dict[str, tuple[Any, Any]] | None = None,
    pairs: list[tuple[str, str]] | None = None,
    volume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A suite whose key, date column, stamp columns and column types come from the table's entry in
    orchestration/registry.py; `columns` adds the other columns to check (None: every column the
    connector returns), `not_null` defaults to the key."""
    table = raw_table(table_name)
    columns = table.columns.names if columns is None else columns
    date = (table.date_column,) if table.date_column else ()
    names = dict.fromkeys([*date, *table.key, *columns, *(field.name for field in table.stamp)])
    return {
        "columns": {name: str(table.schema.field(name).type) for name in names},
        "keys": list(table.key),
        "not_null": list(table.key if not_null is None else not_null),
        "ranges": ranges or {},
        "pairs": pairs or [],
        "date_column": table.date_column,
        "volume": volume,
    }


_GSC_MEASURES = ("clicks", "impressions", "ctr", "position")
_GSC_RANGES = {"clicks": (0, None), "impressions": (0, None), "ctr": (0, 1), "position": (1, None)}

SUITES: dict[str, dict[str, Any]] = {
    "raw_ga4.sessions_daily": _suite(
        "raw_ga4.sessions_daily",
        columns=("sessions", "engaged_sessions", "key_events", "total_users", "new_users"),
        ranges={
            "sessions": (0, None),
            "engaged_sessions": (0, None),
            "key_events": (0, None),
            "total_users": (0, None),
            "new_users": (0, None),
        },
        pairs=[("sessions", "engaged_sessions")],
        volume={},
    ),
    "raw_ga4.leads_daily": _suite(
        "raw_ga4.leads_daily",
        columns=("leads",),
        not_null=("date", "session_source", "session_medium"),
        ranges={"leads": (0, None)},
        # A small brand has a handful of leads a day: too few rows for a median to judge.
    ),
    "raw_gsc.queries_daily": _suite(
        "raw_gsc.queries_daily",
        columns=_GSC_MEASURES,
        ranges=_GSC_RANGES,
        pairs=[("impressions", "clicks")],
        volume={"empty_ok_days": 4},
    ),
    # one row a day, no volume check: presence is the freshness check's job
    "raw_gsc.totals_daily": _suite(
        "raw_gsc.totals_daily", columns=_GSC_MEASURES, ranges=_GSC_RANGES, pairs=[("impressions", "clicks")]
    ),
    "raw_meta.ad_insights_daily": _suite(
        "raw_meta.ad_insights_daily",
        columns=None,
        not_null=("date", "campaign_id", "adset_id", "ad_id"),
        ranges={
            "spend": (0, None),
            "impressions": (0, None),
            "reach": (0, None),
            "clicks": (0, None),
            "inline_link_clicks": (0, None),
        },
        pairs=[("impressions", "reach"), ("clicks", "inline_link_clicks")],
        volume={},
    ),
    "raw_meta.pixel_events_hourly": _suite(
        "raw_meta.pixel_events_hourly",
        columns=("count",),
        not_null=("date", "hour_start", "event"),
        ranges={"count": (0, None)},
        volume={},
    ),
    # Community streams are too small and bursty per day for a volume median.
    "raw_slack.messages": _suite(
        "raw_slack.messages",
        columns=("thread_ts", "user_id", "reply_count", "files_count"),
        not_null=("date", "channel_id", "ts"),
        ranges={"reply_count": (0, None), "files_count": (0, None)},
    ),
    "raw_slack.channels": _suite("raw_slack.channels", columns=("name",)),
    "raw_slack.users": _suite("raw_slack.users", columns=("is_bot",)),
    "raw_discourse.topics": _suite(
        "raw_discourse.topics",
        columns=("created_at", "posts_count", "reply_count", "like_count", "views"),
        not_null=("date", "topic_id", "created_at"),
        ranges={
            "posts_count": (0, None),
            "reply_count": (0, None),
            "like_count": (0, None),
            "views": (0, None),
        },
    ),
    "raw_discourse.posts": _suite(
        "raw_discourse.posts",
        columns=("topic_id", "post_number", "created_at", "like_count"),
        not_null=("date", "post_id", "topic_id", "created_at"),
        ranges={"post_number": (1, None), "like_count": (0, None)},
    ),
    "raw_discourse.post_likes": _suite("raw_discourse.post_likes", not_null=("date", "post_id", "user_id")),
    "raw_discourse.categories": _suite("raw_discourse.categories", columns=("name",)),
    "raw_discourse.users": _suite("raw_discourse.users", columns=("username",)),
    "raw_discord.messages": _suite(
        "raw_discord.messages",
        columns=("channel_id", "timestamp", "type"),
        not_null=("date", "channel_id", "message_id"),
    ),
}

# How many days behind yesterday a raw table's last loaded day may be before its freshness check
# warns: each table's `freshness_lag_days` in orchestration/registry.py.
FRESHNESS_MAX_LAG_DAYS: dict[str, int] = {
    table.name: table.freshness_lag_days for table in TABLES if table.freshness_lag_days is not None
}


def suite_for(table_name: str) -> dict[str, Any] | None:
    return SUITES.get(table_name)
