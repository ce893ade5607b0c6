"""One expectation suite per raw stream, declared as data.

Each entry says what a batch of that table must look like before it is committed:

- `columns`: every column the loaders write, with its Arrow type (presence and type).
- `keys`: the grain: no two rows of a batch share these values (a batch is one or more whole days,
  so "unique within the partition"). `not_null`: columns that may never be empty (the keys).
- `ranges`: column -> (min, max), either bound None; `pairs`: (a, b) meaning a >= b on every row.
- `date_column`: rows must fall on the days the batch replaces (None: an unpartitioned snapshot).
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

_LOAD_STAMP = {"_loaded_at": "timestamp[us]", "_run_id": "string"}
_UTC = "timestamp[us, tz=UTC]"

GA4_SESSION_KEYS = [
    "date",
    "session_source",
    "session_medium",
    "session_campaign_name",
    "landing_page_plus_query_string",
    "device_category",
]
GSC_QUERY_KEYS = ["date", "query", "page", "device", "country"]

SUITES: dict[str, dict[str, Any]] = {
    "raw_ga4.sessions_daily": {
        "columns": {
            **{k: "string" for k in GA4_SESSION_KEYS},
            "date": "date32[day]",
            "sessions": "int64",
            "engaged_sessions": "int64",
            "key_events": "double",
            "total_users": "int64",
            "new_users": "int64",
            **_LOAD_STAMP,
        },
        "keys": GA4_SESSION_KEYS,
        "not_null": GA4_SESSION_KEYS,
        "ranges": {
            "sessions": (0, None),
            "engaged_sessions": (0, None),
            "key_events": (0, None),
            "total_users": (0, None),
            "new_users": (0, None),
        },
        "pairs": [("sessions", "engaged_sessions")],
        "date_column": "date",
        "volume": {},
    },
    "raw_ga4.leads_daily": {
        "columns": {
            "date": "date32[day]",
            "how_heard": "string",
            "session_source": "string",
            "session_medium": "string",
            "session_campaign_name": "string",
            "landing_page_plus_query_string": "string",
            "leads": "double",
            **_LOAD_STAMP,
        },
        "keys": [
            "date",
            "how_heard",
            "session_source",
            "session_medium",
            "session_campaign_name",
            "landing_page_plus_query_string",
        ],
        "not_null": ["date", "session_source", "session_medium"],
        "ranges": {"leads": (0, None)},
        "pairs": [],
        "date_column": "date",
        # A small brand has a handful of leads a day: too few rows for a median to judge.
        "volume": None,
    },
    "raw_gsc.queries_daily": {
        "columns": {
            **{k: "string" for k in GSC_QUERY_KEYS},
            "date": "date32[day]",
            "clicks": "int64",
            "impressions": "int64",
            "ctr": "double",
            "position": "double",
            "_site_url": "string",
            **_LOAD_STAMP,
        },
        "keys": GSC_QUERY_KEYS,
        "not_null": GSC_QUERY_KEYS,
        "ranges": {"clicks": (0, None), "impressions": (0, None), "ctr": (0, 1), "position": (1, None)},
        "pairs": [("impressions", "clicks")],
        "date_column": "date",
        "volume": {"empty_ok_days": 4},
    },
    "raw_gsc.totals_daily": {
        "columns": {
            "date": "date32[day]",
            "clicks": "int64",
            "impressions": "int64",
            "ctr": "double",
            "position": "double",
            "_site_url": "string",
            **_LOAD_STAMP,
        },
        "keys": ["date"],
        "not_null": ["date"],
        "ranges": {"clicks": (0, None), "impressions": (0, None), "ctr": (0, 1), "position": (1, None)},
        "pairs": [("impressions", "clicks")],
        "date_column": "date",
        "volume": None,  # one row a day: presence is the freshness check's job
    },
    "raw_meta.ad_insights_daily": {
        "columns": {
            "date": "date32[day]",
            "account_id": "string",
            "campaign_id": "string",
            "campaign_name": "string",
            "adset_id": "string",
            "adset_name": "string",
            "ad_id": "string",
            "ad_name": "string",
            "spend": "double",
            "impressions": "int64",
            "reach": "int64",
            "clicks": "int64",
            "inline_link_clicks": "int64",
            "actions": "string",
            "_account_id": "string",
            **_LOAD_STAMP,
        },
        "keys": ["date", "ad_id"],
        "not_null": ["date", "campaign_id", "adset_id", "ad_id"],
        "ranges": {
            "spend": (0, None),
            "impressions": (0, None),
            "reach": (0, None),
            "clicks": (0, None),
            "inline_link_clicks": (0, None),
        },
        "pairs": [("impressions", "reach"), ("clicks", "inline_link_clicks")],
        "date_column": "date",
        "volume": {},
    },
    "raw_meta.pixel_events_hourly": {
        "columns": {
            "date": "date32[day]",
            "hour_start": "timestamp[us]",
            "event": "string",
            "count": "int64",
            "_pixel_id": "string",
            **_LOAD_STAMP,
        },
        "keys": ["hour_start", "event"],
        "not_null": ["date", "hour_start", "event"],
        "ranges": {"count": (0, None)},
        "pairs": [],
        "date_column": "date",
        "volume": {},
    },
    "raw_slack.messages": {
        "columns": {
            "date": "date32[day]",
            "channel_id": "string",
            "ts": "string",
            "thread_ts": "string",
            "user_id": "string",
            "reply_count": "int64",
            "files_count": "int64",
            "_source": "string",
            **_LOAD_STAMP,
        },
        "keys": ["channel_id", "ts"],
        "not_null": ["date", "channel_id", "ts"],
        "ranges": {"reply_count": (0, None), "files_count": (0, None)},
        "pairs": [],
        "date_column": "date",
        "volume": None,
    },
    "raw_slack.channels": {
        "columns": {"channel_id": "string", "name": "string", "_source": "string", **_LOAD_STAMP},
        "keys": ["channel_id"],
        "not_null": ["channel_id"],
        "ranges": {},
        "pairs": [],
        "date_column": None,
        "volume": None,
    },
    "raw_slack.users": {
        "columns": {"user_id": "string", "is_bot": "bool", "_source": "string", **_LOAD_STAMP},
        "keys": ["user_id"],
        "not_null": ["user_id"],
        "ranges": {},
        "pairs": [],
        "date_column": None,
        "volume": None,
    },
    "raw_discourse.topics": {
        "columns": {
            "date": "date32[day]",
            "topic_id": "int64",
            "created_at": _UTC,
            "posts_count": "int64",
            "reply_count": "int64",
            "like_count": "int64",
            "views": "int64",
            "_forum_url": "string",
            **_LOAD_STAMP,
        },
        "keys": ["topic_id"],
        "not_null": ["date", "topic_id", "created_at"],
        "ranges": {
            "posts_count": (0, None),
            "reply_count": (0, None),
            "like_count": (0, None),
            "views": (0, None),
        },
        "pairs": [],
        "date_column": "date",
        "volume": None,
    },
    "raw_discourse.posts": {
        "columns": {
            "date": "date32[day]",
            "post_id": "int64",
            "topic_id": "int64",
            "post_number": "int64",
            "created_at": _UTC,
            "like_count": "int64",
            "_forum_url": "string",
            **_LOAD_STAMP,
        },
        "keys": ["post_id"],
        "not_null": ["date", "post_id", "topic_id", "created_at"],
        "ranges": {"post_number": (1, None), "like_count": (0, None)},
        "pairs": [],
        "date_column": "date",
        "volume": None,
    },
    "raw_discourse.post_likes": {
        "columns": {"date": "date32[day]", "post_id": "int64", "user_id": "int64", **_LOAD_STAMP},
        "keys": ["post_id", "user_id"],
        "not_null": ["date", "post_id", "user_id"],
        "ranges": {},
        "pairs": [],
        "date_column": "date",
        "volume": None,
    },
    "raw_discourse.categories": {
        "columns": {"category_id": "int64", "name": "string"},
        "keys": ["category_id"],
        "not_null": ["category_id"],
        "ranges": {},
        "pairs": [],
        "date_column": None,
        "volume": None,
    },
    "raw_discourse.users": {
        "columns": {"user_id": "int64", "username": "string"},
        "keys": ["user_id"],
        "not_null": ["user_id"],
        "ranges": {},
        "pairs": [],
        "date_column": None,
        "volume": None,
    },
    "raw_discord.messages": {
        "columns": {
            "date": "date32[day]",
            "channel_id": "string",
            "message_id": "string",
            "timestamp": _UTC,
            "type": "int64",
            **_LOAD_STAMP,
        },
        "keys": ["message_id"],
        "not_null": ["date", "channel_id", "message_id"],
        "ranges": {},
        "pairs": [],
        "date_column": "date",
        "volume": None,
    },
}

# How many days behind yesterday a raw table's last loaded day may be before its freshness
# check warns: the source's own publication lag plus a day of slack.
FRESHNESS_MAX_LAG_DAYS: dict[str, int] = {
    "raw_ga4.sessions_daily": 1,
    "raw_ga4.leads_daily": 2,
    "raw_gsc.queries_daily": 4,  # Search Console finalises a day after ~3 days
    "raw_gsc.totals_daily": 4,
    "raw_meta.ad_insights_daily": 1,
    "raw_meta.pixel_events_hourly": 1,
    "raw_slack.messages": 3,  # quiet weekends are normal in a community
    "raw_discourse.posts": 3,
    "raw_discourse.topics": 7,
    "raw_discord.messages": 3,
}


def suite_for(table_name: str) -> dict[str, Any] | None:
    return SUITES.get(table_name)
