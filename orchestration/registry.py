"""The raw tables, one entry each: the single place a raw table's identity is declared.

An entry says what the ingestion asset writes and how the rest of the project knows the table:

- name `raw_<source>.<stream>` (the asset key is `[source, stream]`);
- Arrow schema: the connector's columns, then the load stamp (`stamp`: the source's id columns,
  `_loaded_at`, `_run_id`), in the order the asset appends them (`RawTable.stamped`);
- `key`: the grain, unique within a batch;
- `date_column`: the day a row belongs to, which a load replaces whole; None for a table replaced
  whole on each run (a snapshot such as Slack's users);
- `freshness_lag_days`: how many days behind yesterday the last loaded day may be before the
  freshness check warns (the source's publication lag plus slack); None: no freshness check;
- `sandbox`: how the rows an earlier sandbox run left are told apart from real ones.

Derived from it: the empty tables created for sources that are not loaded and the sandbox-rows
check (orchestration/sources.py), the keys, column types and date column of the quality suites
(orchestration/quality/suites.py), the freshness checks, and each asset's stamp. The dbt sources
(dbt_project/models/staging/*/_*__sources.yml) are checked against it by
tests/orchestration/test_registry.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from connectors import discord, discourse, ga4, gsc, meta, slack
from connectors.sandbox.brand import (
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_GSC_SITE_URL,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
)
from orchestration.warehouse import stamped

LOAD_STAMP = (pa.field("_loaded_at", pa.timestamp("us")), pa.field("_run_id", pa.string()))


@dataclass(frozen=True)
class SandboxRule:
    """The rows a sandbox run wrote: `predicate` (one `?`) holds for them with `value`.

    `setting` holds the real id; a real source configured with the sandbox's own id is the test
    harness pointing a "real" connector at the sandbox, so its rows are what was asked for.
    """

    predicate: str
    value: str
    setting: str | None = None


@dataclass(frozen=True)
class RawTable:
    source: str
    stream: str
    columns: pa.Schema
    stamp: tuple[pa.Field, ...]
    key: tuple[str, ...]
    date_column: str | None = "date"
    freshness_lag_days: int | None = None
    sandbox: SandboxRule | None = None

    @property
    def name(self) -> str:
        return f"raw_{self.source}.{self.stream}"

    @property
    def asset_key(self) -> tuple[str, str]:
        return (self.source, self.stream)

    @property
    def schema(self) -> pa.Schema:
        """Every column as the asset writes it: the connector's, then the stamp."""
        return pa.schema([*self.columns, *self.stamp])

    @property
    def daily(self) -> bool:
        return self.date_column is not None

    def stamped(self, table: pa.Table, *values: object) -> pa.Table:
        """`table` (the connector's columns) with the stamp appended, one value per stamp field."""
        return stamped(table, zip(self.stamp, values, strict=True))


def _stamp(*source_fields: pa.Field) -> tuple[pa.Field, ...]:
    return (*source_fields, *LOAD_STAMP)


_GA4_STAMP = _stamp(
    pa.field("_property_id", pa.string()),
    pa.field("_subject_to_thresholding", pa.bool_()),
    pa.field("_data_loss_from_other_row", pa.bool_()),
)
_GSC_STAMP = _stamp(pa.field("_site_url", pa.string()))
_SLACK_STAMP = _stamp(pa.field("_source", pa.string()))
_FORUM_STAMP = _stamp(pa.field("_forum_url", pa.string()))

_GA4_SANDBOX = SandboxRule("_property_id = ?", SANDBOX_GA4_PROPERTY_ID, "GA4_PROPERTY_ID")
_GSC_SANDBOX = SandboxRule("_site_url = ?", SANDBOX_GSC_SITE_URL, "GSC_SITE_URL")
_SLACK_SANDBOX = SandboxRule("_source = ?", "sandbox")
# the sandbox's forum is served on loopback under /discourse
_FORUM_SANDBOX = SandboxRule("_forum_url like ?", "http://127.0.0.1:%/discourse", "DISCOURSE_URL")

_GA4_DIMENSIONS = (
    "session_source",
    "session_medium",
    "session_campaign_name",
    "landing_page_plus_query_string",
)

TABLES: tuple[RawTable, ...] = (
    RawTable(
        "ga4",
        "sessions_daily",
        ga4.SESSIONS_SCHEMA,
        _GA4_STAMP,
        key=("date", *_GA4_DIMENSIONS, "device_category"),
        freshness_lag_days=1,
        sandbox=_GA4_SANDBOX,
    ),
    RawTable(
        "ga4",
        "leads_daily",
        ga4.LEADS_SCHEMA,
        _GA4_STAMP,
        key=("date", "how_heard", *_GA4_DIMENSIONS),
        freshness_lag_days=2,
        sandbox=_GA4_SANDBOX,
    ),
    RawTable(
        "gsc",
        "queries_daily",
        gsc.QUERIES_SCHEMA,
        _GSC_STAMP,
        key=("date", "query", "page", "device", "country"),
        freshness_lag_days=4,  # Search Console finalises a day after ~3 days
        sandbox=_GSC_SANDBOX,
    ),
    RawTable(
        "gsc",
        "totals_daily",
        gsc.TOTALS_SCHEMA,
        _GSC_STAMP,
        key=("date",),
        freshness_lag_days=4,
        sandbox=_GSC_SANDBOX,
    ),
    RawTable(
        "meta",
        "ad_insights_daily",
        meta.INSIGHTS_SCHEMA,
        _stamp(pa.field("_account_id", pa.string())),
        key=("date", "ad_id"),
        freshness_lag_days=1,
        sandbox=SandboxRule("_account_id = ?", SANDBOX_META_AD_ACCOUNT_ID, "META_AD_ACCOUNT_ID"),
    ),
    RawTable(
        "meta",
        "pixel_events_hourly",
        meta.PIXEL_SCHEMA,
        _stamp(pa.field("_pixel_id", pa.string())),
        key=("hour_start", "event"),
        freshness_lag_days=1,
        sandbox=SandboxRule("_pixel_id = ?", SANDBOX_META_PIXEL_ID, "META_PIXEL_ID"),
    ),
    RawTable(
        "slack",
        "channels",
        slack.CHANNELS_SCHEMA,
        _SLACK_STAMP,
        key=("channel_id",),
        date_column=None,
        sandbox=_SLACK_SANDBOX,
    ),
    RawTable(
        "slack",
        "users",
        slack.USERS_SCHEMA,
        _SLACK_STAMP,
        key=("user_id",),
        date_column=None,
        sandbox=_SLACK_SANDBOX,
    ),
    RawTable(
        "slack",
        "messages",
        slack.MESSAGES_SCHEMA,
        _SLACK_STAMP,
        key=("channel_id", "ts"),
        freshness_lag_days=3,  # quiet weekends are normal in a community
        sandbox=_SLACK_SANDBOX,
    ),
    RawTable(
        "discourse",
        "categories",
        discourse.CATEGORIES_SCHEMA,
        _FORUM_STAMP,
        key=("category_id",),
        date_column=None,
        sandbox=_FORUM_SANDBOX,
    ),
    RawTable(
        "discourse",
        "topics",
        discourse.TOPICS_SCHEMA,
        _FORUM_STAMP,
        key=("topic_id",),
        freshness_lag_days=7,
        sandbox=_FORUM_SANDBOX,
    ),
    RawTable(
        "discourse",
        "posts",
        discourse.POSTS_SCHEMA,
        _FORUM_STAMP,
        key=("post_id",),
        freshness_lag_days=3,
        sandbox=_FORUM_SANDBOX,
    ),
    RawTable(
        "discourse",
        "post_likes",
        discourse.POST_LIKES_SCHEMA,
        _FORUM_STAMP,
        key=("post_id", "user_id"),
        sandbox=_FORUM_SANDBOX,
    ),
    RawTable(
        "discourse",
        "users",
        discourse.USERS_SCHEMA,
        _FORUM_STAMP,
        key=("user_id",),
        date_column=None,
        sandbox=_FORUM_SANDBOX,
    ),
    # The sandbox's Discord rows carry no id of their own; Discord is only ever served by the
    # sandbox when asked (orchestration/sources.py), so no rule is needed.
    RawTable(
        "discord",
        "messages",
        discord.MESSAGES_SCHEMA,
        LOAD_STAMP,
        key=("message_id",),
        freshness_lag_days=3,
    ),
)

BY_NAME: dict[str, RawTable] = {table.name: table for table in TABLES}


def raw_table(name: str) -> RawTable:
    """The entry of `raw_<source>.<stream>`; KeyError names the tables there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"{name} is not a raw table of orchestration/registry.py; known: {', '.join(BY_NAME)}"
        ) from None


def tables_of(source: str) -> list[RawTable]:
    return [table for table in TABLES if table.source == source]


def source_names() -> Iterable[str]:
    return dict.fromkeys(table.source for table in TABLES)
