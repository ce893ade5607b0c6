"""Ingest benchmark: our connectors vs the JSON parse-only ceiling vs dlt's rest_api source.

    python -m bench.ingest [--scale large] [--days 365] [--sources ga4,...] [--dlt-days 30]
    python -m bench.ingest --quick          # small scale, 14 days, < 1 minute

Not a test. The sandbox runs in its own process (`python -m connectors.sandbox serve --port 0`),
so its data generation does not share our GIL; every measurement runs in a fresh child process
(spawned), which reports its rows, wall and CPU seconds and peak RSS (VmHWM).

Per source:
- ours: the connector's pages -> the asset's day table -> the assets' batches of days
  (DayBatches, replace_days) into a temporary DuckDB file (the code path the Dagster assets run),
  for `--days` days and for 7.
- parse-only: the same HTTP response bodies fetched first and stored as raw bytes on disk, then
  only `json.loads` timed; and, for a connector that decodes with something else (GA4, GSC: pyarrow's
  JSON reader), that decoder alone on the same bodies (the `dec` columns).
- dlt: dlt's rest_api source loading the same endpoints into DuckDB (`--dlt-days` days).

Rates are rows per CPU second of the measuring process (all its threads, DuckDB's included): the
sandbox is a Python process that generates data more slowly than a real API serves it, so wall
time would measure the sandbox. Wall-clock rates are printed too.

Add a source: write its three functions (ours, fetch_bodies, dlt_source) and append a
`SourceSpec` to SOURCES.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

SHORT_DAYS = 7


@dataclass(frozen=True)
class Target:
    """Where the sandbox is and the days to load."""

    base_url: str
    key_file: str
    days: tuple[str, ...]  # ISO dates, oldest first
    workdir: str


@dataclass(frozen=True)
class SourceSpec:
    """One source in the benchmark.

    ours(target, db_path) -> rows committed to DuckDB through the connector and replace_days.
    fetch_bodies(target, out_dir) -> the raw HTTP response bodies written to out_dir (one file each).
    dlt_source(target) -> (a dlt source loading the same endpoints, dataset name).
    rows_in(payload) -> the rows in one parsed body; None when fetch_bodies records the bodies of a
        connector run and returns the rows that run made (the parse-only rate is then over those).
    modules: imported before the clock starts (import time is not load time).
    lag_days: the window ends this many days before yesterday.
    decoder: "module:function" the connector decodes a body with, when not json.loads; the
        parse-only run times it too, so ours is also compared with a ceiling on its own decoder.
    """

    name: str
    ours: Callable[[Target, str], int]
    fetch_bodies: Callable[[Target, str], None]
    dlt_source: Callable[[Target], tuple[object, str]]
    rows_in: Callable[[object], int] | None
    modules: tuple[str, ...] = ()
    lag_days: int = 0  # the newest days the API has no (final) data for yet
    # the dlt tables whose rows count (the same records as ours); default: every top-level table
    # (nested tables such as messages__reactions are parts of a record, not rows of their own)
    dlt_tables: tuple[str, ...] = ()
    decoder: str = ""


# --- shared by GA4 and Search Console: day tables per stream, paged POST bodies ------------------------


def _load_day_streams(client, db_path: str, days: tuple[str, ...], streams, day_table) -> int:
    """The day assets' loop: per day and stream (fetch, schema, table name), the connector's rows
    made into the asset's day table by day_table(rows, schema), written in the assets' batches of
    days (orchestration.fetching.DayBatches, each batch through replace_days)."""
    from orchestration.fetching import DayBatches
    from orchestration.quality.gate import QualityGate
    from orchestration.warehouse import connect_warehouse

    conn = connect_warehouse(db_path)  # as the assets' DuckDBWarehouse.connect()
    try:
        gate = QualityGate()  # every batch checked before it is written, as the assets do
        batches = {table_name: DayBatches(conn, table_name, gate=gate) for _, _, table_name in streams}
        for text in days:
            day = date.fromisoformat(text)
            for fetch, schema, table_name in streams:
                batches[table_name].add(day, day_table(fetch(client, day), schema))
        for batch in batches.values():
            batch.flush()
    finally:
        conn.close()
    return sum(batch.rows_written for batch in batches.values())


class _DaySink:
    """Where a connector run's day tables go: the assets' DayBatches on `conn`, or, with conn None
    (the run that records response bodies), only their row count."""

    def __init__(self, conn, table_name: str):
        from orchestration.fetching import DayBatches
        from orchestration.quality.gate import QualityGate

        self._batches = None if conn is None else DayBatches(conn, table_name, gate=QualityGate())
        self._counted = 0

    def add(self, day: date, table) -> None:
        self.add_days([day], table)

    def add_days(self, days: list[date], table) -> None:
        if self._batches is None:
            self._counted += table.num_rows
        else:
            self._batches.add_days(days, table)

    def close(self) -> int:
        """Write what is held; the rows written (or counted)."""
        if self._batches is None:
            return self._counted
        self._batches.flush()
        return self._batches.rows_written


def _record_posts(client, out_dir: str, bodies, page_body, last_page, **post) -> None:
    """POST each body to the client's endpoint page by page (page_body(body, page) -> the page's
    JSON body) until last_page(payload, page), writing every response body to out_dir."""
    from connectors.http import send

    n = 0
    for body in bodies:
        page = 0
        while True:
            response = send(
                client._session, "POST", client.endpoint, json=page_body(body, page), timeout=120, **post
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"{client.endpoint}: HTTP {response.status_code} {response.content[:200]!r}"
                )
            Path(out_dir, f"{n:06d}.json").write_bytes(response.content)
            n += 1
            if last_page(json.loads(response.content), page):
                break
            page += 1


# --- GA4 -------------------------------------------------------------------------------------------


def _ga4_client(target: Target):
    from connectors.ga4 import GA4Client, GA4Config
    from connectors.sandbox.brand import SANDBOX_GA4_PROPERTY_ID

    return GA4Client(
        GA4Config(
            property_id=SANDBOX_GA4_PROPERTY_ID,
            credentials_file=target.key_file,
            base_url=f"{target.base_url}/ga4",
        )
    )


def _ga4_bodies(day: str) -> list[tuple[str, dict]]:
    from connectors.ga4 import SESSIONS_DIMENSIONS, SESSIONS_METRICS

    ranges = [{"startDate": day, "endDate": day}]
    leads_dims = ["date", "customEvent:how_heard", "sessionSource", "sessionMedium"]
    leads_dims += ["sessionCampaignName", "landingPagePlusQueryString"]
    return [
        (
            "sessions_daily",
            {
                "dateRanges": ranges,
                "dimensions": [{"name": n} for n in SESSIONS_DIMENSIONS],
                "metrics": [{"name": n} for n in SESSIONS_METRICS],
            },
        ),
        (
            "leads_daily",
            {
                "dateRanges": ranges,
                "dimensions": [{"name": n} for n in leads_dims],
                "metrics": [{"name": "keyEvents"}],
                "dimensionFilter": {
                    "filter": {
                        "fieldName": "eventName",
                        "stringFilter": {"matchType": "EXACT", "value": "generate_lead"},
                    }
                },
            },
        ),
    ]


def ga4_ours(target: Target, db_path: str) -> int:
    from connectors.ga4 import LEADS_SCHEMA, SESSIONS_SCHEMA, GA4Client
    from orchestration.ga4.assets import _day_table

    streams = (
        (GA4Client.sessions, SESSIONS_SCHEMA, "raw_ga4.sessions_daily"),
        (GA4Client.leads, LEADS_SCHEMA, "raw_ga4.leads_daily"),
    )
    stamp = {
        "property_id": "bench",
        "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "run_id": "bench",
    }
    with _ga4_client(target) as client:
        return _load_day_streams(
            client, db_path, target.days, streams, lambda rows, schema: _day_table(rows, schema, stamp)[0]
        )


def ga4_fetch_bodies(target: Target, out_dir: str) -> None:
    with _ga4_client(target) as client:
        limit = client.config.page_size
        _record_posts(
            client,
            out_dir,
            [body for day in target.days for _, body in _ga4_bodies(day)],
            lambda body, page: {**body, "limit": str(limit), "offset": str(page * limit)},
            # the next offset reaches rowCount
            lambda payload, page: (page + 1) * limit >= int(payload.get("rowCount") or 0),
            params={"prettyPrint": "false"},  # as the connector asks
        )


def ga4_dlt_source(target: Target):
    """rest_api, one POST per day and stream: the JSON body names the day (a parent resource's
    field), OffsetPaginator writes limit/offset into the body and stops at rowCount."""
    import dlt
    from dlt.sources.rest_api import rest_api_source
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from connectors.ga4 import SCOPE
    from connectors.sandbox.brand import SANDBOX_GA4_PROPERTY_ID

    credentials = service_account.Credentials.from_service_account_file(target.key_file, scopes=[SCOPE])
    credentials.refresh(Request())

    @dlt.resource(selected=False)
    def days():
        yield [{"day": day} for day in target.days]

    def flatten(dimensions: list[str], metrics: list[tuple[str, type]]):
        def row_to_record(row: dict) -> dict:
            record = {name: v["value"] for name, v in zip(dimensions, row["dimensionValues"], strict=True)}
            for (name, kind), v in zip(metrics, row["metricValues"], strict=True):
                record[name] = kind(v["value"])
            return record

        return row_to_record

    resources = []
    for name, body in _ga4_bodies("{resources.days.day}"):
        dims = [d["name"].replace("customEvent:", "") for d in body["dimensions"]]
        mets = [(m["name"], float if m["name"] == "keyEvents" else int) for m in body["metrics"]]
        resources.append(
            {
                "name": name,
                "endpoint": {
                    "path": f"properties/{SANDBOX_GA4_PROPERTY_ID}:runReport",
                    "method": "POST",
                    "json": {**body, "limit": 100_000, "offset": 0},
                    "data_selector": "rows",
                    "paginator": {
                        "type": "offset",
                        "limit": 100_000,
                        "offset_body_path": "offset",
                        "limit_body_path": "limit",
                        "total_path": "rowCount",
                    },
                },
                "processing_steps": [{"map": flatten(dims, mets)}],
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{target.base_url}/ga4/v1beta/",
                "auth": {"type": "bearer", "token": credentials.token},
            },
            "resources": [days, *resources],
        }
    )
    return source, "raw_ga4"


def _ga4_rows(payload) -> int:
    return len(payload.get("rows") or [])


# --- Search Console ------------------------------------------------------------------------------------


def _gsc_client(target: Target):
    from connectors.gsc import GSCClient, GSCConfig
    from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL

    return GSCClient(
        GSCConfig(
            site_url=SANDBOX_GSC_SITE_URL,
            credentials_file=target.key_file,
            base_url=f"{target.base_url}/gsc",
        )
    )


def _gsc_bodies(day: str) -> list[tuple[str, dict]]:
    from connectors.gsc import QUERIES_DIMENSIONS

    common = {"startDate": day, "endDate": day, "type": "WEB", "dataState": "FINAL"}
    return [
        ("queries_daily", {**common, "dimensions": [d.upper() for d in QUERIES_DIMENSIONS]}),
        ("totals_daily", {**common, "dimensions": ["DATE"]}),
    ]


def gsc_ours(target: Target, db_path: str) -> int:
    from connectors.gsc import QUERIES_SCHEMA, TOTALS_SCHEMA, GSCClient
    from orchestration.gsc.assets import _day_table

    streams = (
        (GSCClient.queries, QUERIES_SCHEMA, "raw_gsc.queries_daily"),
        (GSCClient.totals, TOTALS_SCHEMA, "raw_gsc.totals_daily"),
    )
    with _gsc_client(target) as client:
        stamp = {
            "site_url": client.config.site_url,
            "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_id": "bench",
        }
        return _load_day_streams(
            client, db_path, target.days, streams, lambda rows, schema: _day_table(rows, schema, stamp)
        )


def gsc_fetch_bodies(target: Target, out_dir: str) -> None:
    with _gsc_client(target) as client:
        limit = client.config.row_limit
        _record_posts(
            client,
            out_dir,
            [body for day in target.days for _, body in _gsc_bodies(day)],
            lambda body, page: {**body, "rowLimit": limit, "startRow": page * limit},
            # a short page is the last
            lambda payload, page: len(payload.get("rows") or []) < limit,
        )


def gsc_dlt_source(target: Target):
    """rest_api, one POST per day and query: startRow/rowLimit paged in the JSON body."""
    import dlt
    from dlt.sources.rest_api import rest_api_source
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from connectors.gsc import METRICS, SCOPE
    from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL

    credentials = service_account.Credentials.from_service_account_file(target.key_file, scopes=[SCOPE])
    credentials.refresh(Request())

    @dlt.resource(selected=False)
    def days():
        yield [{"day": day} for day in target.days]

    def flatten(dimensions: list[str]):
        def row_to_record(row: dict) -> dict:
            record = dict(zip(dimensions, row["keys"], strict=True))
            for name in METRICS:
                record[name] = row[name]
            return record

        return row_to_record

    site = quote(SANDBOX_GSC_SITE_URL, safe="")
    resources = []
    for name, body in _gsc_bodies("{resources.days.day}"):
        resources.append(
            {
                "name": name,
                "endpoint": {
                    "path": f"webmasters/v3/sites/{site}/searchAnalytics/query",
                    "method": "POST",
                    "json": {**body, "rowLimit": 25_000, "startRow": 0},
                    "data_selector": "rows",
                    "paginator": {
                        "type": "offset",
                        "limit": 25_000,
                        "offset_body_path": "startRow",
                        "limit_body_path": "rowLimit",
                        "total_path": None,
                        "stop_after_empty_page": True,
                    },
                },
                "processing_steps": [{"map": flatten([d.lower() for d in body["dimensions"]])}],
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{target.base_url}/gsc/",
                "auth": {"type": "bearer", "token": credentials.token},
            },
            "resources": [days, *resources],
        }
    )
    return source, "raw_gsc"


# --- shared by the sources below: record the connector's own response bodies --------------------------


class _BodyRecorder:
    """A requests response hook writing every response body to out_dir, one file each: the parse-only
    column then parses exactly the bodies the connector fetched for its rows."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.n = 0

    def __call__(self, response, *args, **kwargs):
        Path(self.out_dir, f"{self.n:06d}.json").write_bytes(response.content)
        self.n += 1
        return response

    def attach(self, session) -> None:
        session.hooks["response"].append(self)


def _connector_runs(
    make_client: Callable[[Target], Any], load: Callable[[Target, Any, Any], int]
) -> tuple[Callable[[Target, str], int], Callable[[Target, str], int]]:
    """A source's ours and fetch_bodies from its client and its load(target, client, conn), which
    commits through replace_days on conn, or with conn None only counts the rows it would commit."""

    def ours(target: Target, db_path: str) -> int:
        from orchestration.warehouse import connect_warehouse

        with make_client(target) as client:
            conn = connect_warehouse(db_path)  # as the assets' DuckDBWarehouse.connect()
            try:
                return load(target, client, conn)
            finally:
                conn.close()

    def fetch_bodies(target: Target, out_dir: str) -> int:
        with make_client(target) as client:
            _BodyRecorder(out_dir).attach(client._session)
            return load(target, client, None)

    return ours, fetch_bodies


# --- Meta (insights + pixel) -------------------------------------------------------------------------


def _meta_client(target: Target):
    from connectors.meta import MetaClient, MetaConfig
    from connectors.sandbox.brand import (
        SANDBOX_META_ACCESS_TOKEN,
        SANDBOX_META_AD_ACCOUNT_ID,
        SANDBOX_META_PIXEL_ID,
    )

    return MetaClient(
        MetaConfig(
            access_token=SANDBOX_META_ACCESS_TOKEN,
            ad_account_id=SANDBOX_META_AD_ACCOUNT_ID,
            pixel_id=SANDBOX_META_PIXEL_ID,
            base_url=f"{target.base_url}/meta",
            async_poll_seconds=0.01,
        ),
        sleep=time.sleep,
    )


def _meta_load(target: Target, client, conn) -> int:
    """The assets' code (orchestration/meta/assets.py load_insights + load_pixel_events): insights
    per day (sync) up to async_min_days, else async reports of ASYNC_CHUNK_DAYS; pixel per day."""
    from orchestration.meta.assets import (
        ASYNC_CHUNK_DAYS,
        INSIGHTS,
        INSIGHTS_TABLE,
        PIXEL,
        PIXEL_TABLE,
        _check_days,
        _chunks,
        _stamped,
    )

    days = [date.fromisoformat(d) for d in target.days]
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    stamp = (client.config.ad_account_id, loaded_at, "bench")
    use_async = len(days) > client.config.async_min_days
    groups = list(_chunks(days, ASYNC_CHUNK_DAYS)) if use_async else [[d] for d in days]
    insights = _DaySink(conn, INSIGHTS_TABLE)  # the insights asset holds a report's days together
    for group in groups:
        table = _stamped(client.insights(group[0], group[-1]), INSIGHTS, stamp)
        _check_days(table, group, INSIGHTS_TABLE)
        insights.add_days(group, table)
    stamp = (client.config.pixel_id, loaded_at, "bench")
    pixel = _DaySink(conn, PIXEL_TABLE)  # the pixel asset writes its days in batches (load_days)
    for day in days:
        table = _stamped(client.pixel_events(day), PIXEL, stamp)
        _check_days(table, [day], PIXEL_TABLE)
        pixel.add(day, table)
    return insights.close() + pixel.close()


meta_ours, meta_fetch_bodies = _connector_runs(_meta_client, _meta_load)


def meta_dlt_source(target: Target):
    """rest_api: per day (a parent resource's field) GET insights (level=ad, time_increment=1) and
    pixel stats, following `paging.next` (json_link paginator). Pixel buckets hold a `data` list:
    dlt loads it as a nested table (pixel_stats__data); the row count includes both tables."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    from connectors.meta import INSIGHTS_FIELDS
    from connectors.sandbox.brand import (
        SANDBOX_META_ACCESS_TOKEN,
        SANDBOX_META_AD_ACCOUNT_ID,
        SANDBOX_META_PIXEL_ID,
    )

    @dlt.resource(selected=False)
    def days():
        rows = []
        for day in target.days:
            start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
            rows.append(
                {
                    "day": day,
                    "time_range": json.dumps({"since": day, "until": day}),
                    "start": str(int(start.timestamp())),
                    "end": str(int((start + timedelta(days=1)).timestamp())),
                }
            )
        yield rows

    paging = {"type": "json_link", "next_url_path": "paging.next"}
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{target.base_url}/meta/v25.0/",
                "auth": {"type": "bearer", "token": SANDBOX_META_ACCESS_TOKEN},
            },
            "resources": [
                days,
                {
                    "name": "ad_insights_daily",
                    "endpoint": {
                        "path": f"act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
                        "params": {
                            "level": "ad",
                            "time_increment": "1",
                            "time_range": "{resources.days.time_range}",
                            "fields": ",".join(INSIGHTS_FIELDS),
                            "limit": "500",
                        },
                        "data_selector": "data",
                        "paginator": paging,
                    },
                },
                {
                    "name": "pixel_stats",
                    "endpoint": {
                        "path": f"{SANDBOX_META_PIXEL_ID}/stats",
                        "params": {
                            "aggregation": "event",
                            "start_time": "{resources.days.start}",
                            "end_time": "{resources.days.end}",
                            "limit": "100",
                        },
                        "data_selector": "data",
                        "paginator": paging,
                    },
                },
            ],
        }
    )
    return source, "raw_meta"


# --- Slack (messages of every channel, per day) ------------------------------------------------------


def _slack_client(target: Target):
    from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
    from connectors.slack import SlackClient, SlackConfig

    return SlackClient(SlackConfig(token=SANDBOX_SLACK_BOT_TOKEN, base_url=f"{target.base_url}/slack"))


def _slack_load(target: Target, client, conn) -> int:
    """The messages asset's API path (orchestration/slack/assets.py), without the thread rescan of
    earlier days: channel ids once, then per day every channel's history and threads, written in
    the asset's batches of days."""
    import pyarrow as pa

    from connectors.slack import MESSAGES_SCHEMA
    from orchestration.slack.assets import _stamp

    channel_ids = client.channel_ids()
    sink = _DaySink(conn, "raw_slack.messages")
    for text in target.days:
        day = date.fromisoformat(text)
        table = pa.Table.from_batches(list(client.messages(day, channel_ids)), schema=MESSAGES_SCHEMA)
        sink.add(day, _stamp(table, "api", "bench"))
    return sink.close()


slack_ours, slack_fetch_bodies = _connector_runs(_slack_client, _slack_load)


def slack_dlt_source(target: Target):
    """rest_api for conversations.history: a parent resource (plain dlt resource, one
    conversations.list call) yields channel x day, the child GETs history with oldest/latest and a
    `cursor` paginator on response_metadata.next_cursor. Threads: rest_api cannot fan out only the
    messages with replies (a child resource requests once per parent record), so replies are a dlt
    transformer on history using dlt's RESTClient with the same cursor paginator."""
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
    from dlt.sources.rest_api import rest_api_resources

    from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
    from connectors.slack import day_bounds

    base = f"{target.base_url}/slack/"
    auth = BearerTokenAuth(SANDBOX_SLACK_BOT_TOKEN)

    def cursor():
        return JSONResponseCursorPaginator(cursor_path="response_metadata.next_cursor", cursor_param="cursor")

    @dlt.resource(selected=False)
    def channel_days():
        client = RESTClient(base_url=base, auth=auth, paginator=cursor(), data_selector="channels")
        channels = [
            c["id"]
            for page in client.paginate(
                "conversations.list", params={"types": "public_channel,private_channel", "limit": 200}
            )
            for c in page
        ]
        out = []
        for day in target.days:
            oldest, latest = day_bounds(date.fromisoformat(day))
            out += [{"channel": c, "oldest": oldest, "latest": latest} for c in channels]
        yield out

    history = rest_api_resources(
        {
            "client": {"base_url": base, "auth": {"type": "bearer", "token": SANDBOX_SLACK_BOT_TOKEN}},
            "resources": [
                channel_days,
                {
                    "name": "messages",
                    "include_from_parent": ["channel"],
                    "endpoint": {
                        "path": "conversations.history",
                        "params": {
                            "channel": "{resources.channel_days.channel}",
                            "oldest": "{resources.channel_days.oldest}",
                            "latest": "{resources.channel_days.latest}",
                            "inclusive": "false",
                            "limit": 200,
                        },
                        "data_selector": "messages",
                        "paginator": {
                            "type": "cursor",
                            "cursor_path": "response_metadata.next_cursor",
                            "cursor_param": "cursor",
                        },
                    },
                },
            ],
        }
    )
    messages = next(r for r in history if r.name == "messages")

    @dlt.transformer(data_from=messages, name="replies")
    def replies(items):
        client = RESTClient(base_url=base, auth=auth, paginator=cursor(), data_selector="messages")
        for m in items if isinstance(items, list) else [items]:
            if int(m.get("reply_count") or 0) > 0:
                channel = m["_channel_days_channel"]
                for page in client.paginate(
                    "conversations.replies", params={"channel": channel, "ts": m["ts"], "limit": 200}
                ):
                    yield [{**r, "channel": channel} for r in page if r["ts"] != m["ts"]]

    @dlt.source(name="slack")
    def source():
        return [messages, replies]

    return source(), "raw_slack"


# --- Discourse (daily activity: topics, posts, likes) ------------------------------------------------


def _discourse_client(target: Target):
    from connectors.discourse import DiscourseClient, DiscourseConfig
    from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY

    return DiscourseClient(
        DiscourseConfig(url=f"{target.base_url}/discourse", api_key=SANDBOX_DISCOURSE_API_KEY)
    )


def _discourse_load(target: Target, client, conn) -> int:
    """The discourse_activity asset's loop (orchestration/discourse/assets.py), newest month first
    as the asset goes."""
    from orchestration.discourse.assets import DAILY_TABLES, _stamp

    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    sinks = {table_name: _DaySink(conn, table_name) for table_name in DAILY_TABLES.values()}
    for activity in client.activity([date.fromisoformat(d) for d in target.days]):
        for name, table_name in DAILY_TABLES.items():
            table = _stamp(getattr(activity, name), loaded_at, "bench", client.config.url)
            sinks[table_name].add(activity.day, table)
    return sum(sink.close() for sink in sinks.values())


discourse_ours, discourse_fetch_bodies = _connector_runs(_discourse_client, _discourse_load)


def discourse_dlt_source(target: Target):
    """A dlt resource with dlt's RESTClient, not rest_api: /latest.json paged by `page` until a page
    ends before the window (rest_api's page_number paginator cannot stop on a date), then per topic
    /t/{id}.json + /t/{id}/posts.json?post_ids[]=... for the ids the first page left out, then
    /post_action_users.json for posts with likes. Rows: the window's topics, posts and likes."""
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient

    from connectors.discourse import LATEST_PER_PAGE, LIKE, POST_IDS_PER_REQUEST, parse_time
    from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY

    first = datetime.fromisoformat(target.days[0]).replace(tzinfo=timezone.utc)
    end = datetime.fromisoformat(target.days[-1]).replace(tzinfo=timezone.utc) + timedelta(days=1)
    client = RESTClient(
        base_url=f"{target.base_url}/discourse",
        headers={"Api-Key": SANDBOX_DISCOURSE_API_KEY, "Api-Username": "system"},
    )

    def in_window(text) -> bool:
        moment = parse_time(text)
        return moment is not None and first <= moment < end

    @dlt.resource(selected=False)
    def active_topics():
        page = 0
        while True:
            answer = client.get(
                "/latest.json", params={"order": "activity", "per_page": LATEST_PER_PAGE, "page": page}
            ).json()
            topics = answer["topic_list"]["topics"]
            yield [
                t for t in topics if parse_time(t["created_at"]) < end and parse_time(t["bumped_at"]) >= first
            ]
            if not topics or not answer["topic_list"].get("more_topics_url"):
                break
            if parse_time(topics[-1]["bumped_at"]) < first:
                break
            page += 1

    @dlt.transformer(data_from=active_topics)
    def activity(summaries):
        for summary in summaries:
            topic = client.get(f"/t/{summary['id']}.json").json()
            posts = list(topic["post_stream"]["posts"])
            seen = {p["id"] for p in posts}
            missing = [i for i in topic["post_stream"]["stream"] if i not in seen]
            for n in range(0, len(missing), POST_IDS_PER_REQUEST):
                page = client.get(
                    f"/t/{summary['id']}/posts.json",
                    params={"post_ids[]": missing[n : n + POST_IDS_PER_REQUEST]},
                ).json()
                posts += page["post_stream"]["posts"]
            if in_window(topic["created_at"]):
                record = {k: v for k, v in topic.items() if k not in ("post_stream", "details")}
                yield dlt.mark.with_table_name(record, "topics")
            for post in posts:
                if not in_window(post["created_at"]):
                    continue
                yield dlt.mark.with_table_name(post, "posts")
                liked = any(a.get("id") == LIKE for a in post.get("actions_summary") or [])
                if post.get("like_count") or liked:
                    users = client.get(
                        "/post_action_users.json",
                        params={"id": post["id"], "post_action_type_id": LIKE, "limit": 200},
                    ).json()["post_action_users"]
                    likes = [
                        {"post_id": post["id"], "user_id": u["id"], "created_at": u.get("created_at")}
                        for u in users
                    ]
                    if likes:
                        yield dlt.mark.with_table_name(likes, "post_likes")

    @dlt.source(name="discourse")
    def source():
        return [active_topics, activity]

    return source(), "raw_discourse"


SOURCES: list[SourceSpec] = [
    SourceSpec(
        "ga4",
        ga4_ours,
        ga4_fetch_bodies,
        ga4_dlt_source,
        _ga4_rows,
        modules=("duckdb", "connectors.ga4", "orchestration.ga4.assets", "orchestration.warehouse"),
        decoder="connectors.ga4:_decode_page",
    ),
    SourceSpec(
        "gsc",
        gsc_ours,
        gsc_fetch_bodies,
        gsc_dlt_source,
        _ga4_rows,  # the same "rows" list
        modules=("duckdb", "connectors.gsc", "orchestration.gsc.assets", "orchestration.warehouse"),
        lag_days=3,  # Search Console finalises a day after ~3 days (GSC_FINAL_LAG_DAYS)
        decoder="connectors.gsc:_decode_page",
    ),
    SourceSpec(
        "meta",
        meta_ours,
        meta_fetch_bodies,
        meta_dlt_source,
        None,  # fetch_bodies counts the rows the bodies make
        modules=("duckdb", "connectors.meta", "orchestration.meta.assets", "orchestration.warehouse"),
        dlt_tables=("ad_insights_daily", "pixel_stats__data"),  # pixel: one row per hour x event
    ),
    SourceSpec(
        "slack",
        slack_ours,
        slack_fetch_bodies,
        slack_dlt_source,
        None,
        modules=("duckdb", "connectors.slack", "orchestration.slack.assets", "orchestration.warehouse"),
    ),
    SourceSpec(
        "discourse",
        discourse_ours,
        discourse_fetch_bodies,
        discourse_dlt_source,
        None,
        modules=(
            "duckdb",
            "connectors.discourse",
            "orchestration.discourse.assets",
            "orchestration.warehouse",
        ),
    ),
]


# --- measurements (each in a fresh child process) ----------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _spec(name: str) -> SourceSpec:
    return next(s for s in SOURCES if s.name == name)


def _measure_ours(name: str, target: Target) -> dict:
    import importlib

    spec = _spec(name)
    for module in spec.modules:
        importlib.import_module(module)
    # One day first, into another file: lazy imports and first-call set-up are not throughput.
    warm = Path(tempfile.mkdtemp(dir=target.workdir))
    first_day = Target(target.base_url, target.key_file, target.days[:1], target.workdir)
    spec.ours(first_day, str(warm / "w.duckdb"))
    db = Path(tempfile.mkdtemp(dir=target.workdir)) / "ours.duckdb"
    wall, cpu = time.perf_counter(), _cpu()
    rows = spec.ours(target, str(db))
    return {
        "rows": rows,
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "rss_mb": _peak_rss_mb(),
    }


def _measure_parse(name: str, target: Target) -> dict:
    import importlib
    import json as stdlib_json

    spec = _spec(name)
    decode = None
    if spec.decoder:
        module, function = spec.decoder.split(":")
        decode = getattr(importlib.import_module(module), function)
    out = tempfile.mkdtemp(dir=target.workdir)
    produced = spec.fetch_bodies(target, out)
    rows, seconds, decoder_seconds, size, calls = 0, 0.0, 0.0, 0, 0
    for path in sorted(Path(out).iterdir()):
        calls += 1  # one body per HTTP call
        raw = path.read_bytes()
        size += len(raw)
        started = time.process_time()
        payload = stdlib_json.loads(raw)
        seconds += time.process_time() - started
        if spec.rows_in is not None:
            rows += spec.rows_in(payload)
        del payload
        if decode is not None:
            started = time.process_time()
            decoded = decode(raw)
            decoder_seconds += time.process_time() - started
            del decoded
        del raw
        path.unlink()
    if spec.rows_in is None:  # the bodies were recorded from a connector run that made `produced` rows
        rows = produced
    return {
        "rows": rows,
        "cpu": seconds,
        "bytes": size,
        "calls": calls,
        # the connector's own decoder, or json.loads when that is what it uses
        "decoder_cpu": decoder_seconds if decode is not None else seconds,
        "decoder": spec.decoder or "json.loads",
    }


def _measure_dlt(name: str, target: Target) -> dict:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import itertools

    import dlt
    import requests

    # dlt's HTTP calls, counted where every one passes (its client sessions are requests.Session)
    counter, send = itertools.count(), requests.Session.send

    def counted(self, *args, **kwargs):
        next(counter)
        return send(self, *args, **kwargs)

    work = Path(tempfile.mkdtemp(dir=target.workdir))
    source, dataset = _spec(name).dlt_source(target)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{name}",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name=dataset,
    )
    requests.Session.send = counted
    try:
        wall, cpu = time.perf_counter(), _cpu()
        pipeline.run(source)
        elapsed, used = time.perf_counter() - wall, _cpu() - cpu
    finally:
        requests.Session.send = send
    counts = pipeline.last_trace.last_normalize_info.row_counts
    wanted = _spec(name).dlt_tables
    rows = sum(
        n
        for table, n in counts.items()
        if (table in wanted if wanted else not table.startswith("_dlt") and "__" not in table)
    )
    return {"rows": rows, "wall": elapsed, "cpu": used, "rss_mb": _peak_rss_mb(), "calls": next(counter)}


def _in_child(function: Callable[..., dict], *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(function, args)


# --- the sandbox process -------------------------------------------------------------------------------


class SandboxProcess:
    """`python -m connectors.sandbox serve --port 0` in a child process; its URL from its output."""

    def __init__(self, scale: str, workdir: str):
        self.key_file = str(Path(workdir) / "sandbox-key.json")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connectors.sandbox", "serve", "--scale", scale, "--port", "0"]
            + ["--credentials-file", self.key_file],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            match = re.search(r"serving at (http://\S+)", line)
            if match:
                self.base_url = match.group(1)
            if line.startswith("Press Ctrl-C") or time.monotonic() > deadline:
                break
        if not self.base_url:
            self.stop()
            raise RuntimeError("the sandbox did not print its URL")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- main ---------------------------------------------------------------------------------------------


def _window(n: int, lag_days: int = 0) -> tuple[str, ...]:
    # the sandbox serves up to yesterday (UTC)
    last = datetime.now(timezone.utc).date() - timedelta(days=1 + lag_days)
    return tuple((last - timedelta(days=n - 1 - i)).isoformat() for i in range(n))


def _runs(result: dict) -> str:
    """ "(runs: 4.1, 5.0 s CPU)" when measured more than once."""
    runs = result.get("cpu_all") or []
    return f" (runs: {', '.join(f'{c:.1f}' for c in runs)} s CPU)" if len(runs) > 1 else ""


def _best(runs: list[dict]) -> dict:
    """The run with the least CPU, with every run's CPU seconds (`cpu_all`) and the highest peak
    RSS of them (memory is judged by the worst run, speed by the least disturbed one)."""
    best = dict(min(runs, key=lambda run: run["cpu"]))
    best["cpu_all"] = [run["cpu"] for run in runs]
    best["rss_mb"] = max(run["rss_mb"] for run in runs)
    return best


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="large", help="sandbox scale (default: large)")
    parser.add_argument("--days", type=int, default=365, help="the long window in days (default: 365)")
    parser.add_argument("--dlt-days", type=int, help="days dlt loads (default: min(days, 30))")
    parser.add_argument("--sources", default=",".join(s.name for s in SOURCES), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="small scale, 14 days: under a minute")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure ours (the long window) and dlt this many times, alternating, and rate each by "
        "its least CPU (default: 1); the machine's speed drifts by tens of percent within minutes",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.days = "small", 14
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    unknown = [n for n in names if n not in {s.name for s in SOURCES}]
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(s.name for s in SOURCES)}")
    dlt_days = args.dlt_days or min(args.days, 30)
    if not args.no_dlt:
        try:
            import dlt  # noqa: F401
        except ImportError:
            print("dlt is not installed (pip install 'dlt[duckdb]'); skipping dlt", file=sys.stderr)
            args.no_dlt = True

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
        sandbox = SandboxProcess(args.scale, workdir)
        print(f"sandbox (scale {args.scale}) at {sandbox.base_url}", flush=True)
        try:
            for name in names:
                spec = _spec(name)

                def target(n: int, lag: int = spec.lag_days) -> Target:
                    return Target(sandbox.base_url, sandbox.key_file, _window(n, lag), workdir)

                print(f"{name}: ours {SHORT_DAYS} days...", flush=True)
                short = _in_child(_measure_ours, name, target(SHORT_DAYS))
                longs, dlts = [], []
                for attempt in range(1, max(1, args.repeat) + 1):
                    print(f"{name}: ours {args.days} days ({attempt}/{args.repeat})...", flush=True)
                    longs.append(_in_child(_measure_ours, name, target(args.days)))
                    if not args.no_dlt:
                        print(f"{name}: dlt {dlt_days} days ({attempt}/{args.repeat})...", flush=True)
                        dlts.append(_in_child(_measure_dlt, name, target(dlt_days)))
                print(f"{name}: parse-only {args.days} days...", flush=True)
                parse = _in_child(_measure_parse, name, target(args.days))
                results.append((name, short, _best(longs), parse, _best(dlts) if dlts else None))
        finally:
            sandbox.stop()

    header = (
        f"{'source':<8} {'days':>5} {'rows':>10} {'ours r/s':>10} {'parse r/s':>10} {'ours/parse':>10} "
        f"{'dec r/s':>10} {'ours/dec':>8} "
        f"{'dlt r/s':>9} {'ours/dlt':>9} {'RSS 7d':>8} {f'RSS {args.days}d':>9} {'RSS ratio':>9}"
    )
    print()
    print(f"scale {args.scale}; rates are rows per CPU second of the loading process")
    print(header)
    print("-" * len(header))
    for name, short, long, parse, dlt_result in results:
        ours = _rate(long["rows"], long["cpu"])
        ceiling = _rate(parse["rows"], parse["cpu"])
        decoder = _rate(parse["rows"], parse["decoder_cpu"])
        dlt_rate = _rate(dlt_result["rows"], dlt_result["cpu"]) if dlt_result else float("nan")
        print(
            f"{name:<8} {args.days:>5} {long['rows']:>10,} {ours:>10,.0f} {ceiling:>10,.0f} "
            f"{ours / ceiling:>10.2f} {decoder:>10,.0f} {ours / decoder:>8.2f} "
            f"{dlt_rate:>9,.0f} {ours / dlt_rate:>9.1f} "
            f"{short['rss_mb']:>6.0f}MB {long['rss_mb']:>7.0f}MB {long['rss_mb'] / short['rss_mb']:>9.2f}"
        )
    print("targets: ours/parse >= 0.5, ours/dlt >= 20, RSS ratio <= 1.5")
    print("parse = json.loads alone; dec = the connector's own decoder alone (json.loads unless named below)")
    print()
    print("per HTTP call (a source that makes many small calls is bound by their cost, not by parsing):")
    calls_header = (
        f"{'source':<8} {'calls':>8} {'rows/call':>9} {'ours us':>8} {'parse us':>8} "
        f"{f'dlt calls ({dlt_days}d)':>15} {'dlt us':>8} {'dlt/ours':>8}"
    )
    print(calls_header)
    print("-" * len(calls_header))
    for name, _, long, parse, dlt_result in results:
        calls = parse["calls"]
        per_call = long["cpu"] / calls * 1e6 if calls else float("nan")
        dlt_calls = dlt_result.get("calls", 0) if dlt_result else 0
        dlt_per_call = dlt_result["cpu"] / dlt_calls * 1e6 if dlt_calls else float("nan")
        print(
            f"{name:<8} {calls:>8,} {long['rows'] / max(calls, 1):>9.1f} {per_call:>8,.0f} "
            f"{parse['cpu'] / max(calls, 1) * 1e6:>8,.0f} {dlt_calls:>15,} {dlt_per_call:>8,.0f} "
            f"{dlt_per_call / per_call:>8.1f}"
        )
    print("us = CPU microseconds per call, everything the process did divided by its calls")
    for name, _, long, parse, dlt_result in results:
        line = (
            f"{name}: ours {long['rows']:,} rows in {long['wall']:.1f}s wall / {long['cpu']:.1f}s CPU"
            f"{_runs(long)} "
            f"({_rate(long['rows'], long['wall']):,.0f} rows/s wall); parse-only {parse['rows']:,} rows, "
            f"{parse['bytes'] / 1e6:,.0f} MB in {parse['cpu']:.1f}s"
        )
        if parse["decoder"] != "json.loads":
            line += f" ({parse['decoder']}: {parse['decoder_cpu']:.1f}s)"
        if dlt_result:
            line += (
                f"; dlt {dlt_result['rows']:,} rows ({dlt_days} days) in {dlt_result['wall']:.1f}s wall / "
                f"{dlt_result['cpu']:.1f}s CPU{_runs(dlt_result)}, peak RSS {dlt_result['rss_mb']:.0f}MB"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
