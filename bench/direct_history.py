"""A benchmark history's largest raw tables written straight from the sandbox's generators.

A large year is 23.6 M Search Console rows, 3.5 M GA4 rows and 650,000 Slack messages; served
through the sandbox's HTTP API (which pages and re-aggregates each day's rows per call, and answers
one conversations.replies call per Slack thread) it takes hours here, and the history is not what
bench.nightly measures: the nights are. So GA4, Search Console and Slack's messages
(`DIRECT_ASSETS`) are generated in worker processes by the sandbox's own generators
(connectors/sandbox/ga4.py, gsc.py, community.py), shaped as the sandbox's API and the connectors
shape them (GA4's rows grouped by the requested dimensions, Search Console's daily totals from the
sums the API returns, Slack's messages made by the sandbox's message objects and the connector's
`message_row`), stamped as the assets stamp them and written by the warehouse's own write path:
`replace_days` a week at a time, which swaps the days in and records them in the ledger of loaded
days in one transaction. The other assets (Meta: one report a year; Slack's channels and users;
Discourse; Discord when configured) still load through their APIs in the history run.

The rows equal what the API path writes for the same days (tests/bench/test_direct_history.py
compares them with the rows the assets loaded from the sandbox), so a night that re-pulls a day
through HTTP finds the same content.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from connectors.ga4 import LEADS_SCHEMA, SESSIONS_SCHEMA
from connectors.gsc import QUERIES_SCHEMA, TOTALS_SCHEMA
from connectors.sandbox.brand import (
    COMMUNITY_START_DATE,
    DEFAULT_SEED,
    GSC_FINAL_LAG_DAYS,
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_GSC_SITE_URL,
    SANDBOX_START_DATE,
)
from connectors.sandbox.discourse_api import PREFIX as DISCOURSE_PREFIX

GA4_SESSIONS, GA4_LEADS = "raw_ga4.sessions_daily", "raw_ga4.leads_daily"
GSC_QUERIES, GSC_TOTALS = "raw_gsc.queries_daily", "raw_gsc.totals_daily"
SLACK_MESSAGES = "raw_slack.messages"
DISCOURSE_DAILY = ("raw_discourse.posts", "raw_discourse.topics", "raw_discourse.post_likes")
# The assets whose tables this module writes: the history run leaves them out. A source named alone
# is every asset of it.
DIRECT_ASSETS = (
    ("ga4",),
    ("gsc",),
    ("slack", "messages"),
    *(("discourse", t.split(".")[1]) for t in DISCOURSE_DAILY),
)
PART_TABLES = {
    "ga4": (GA4_SESSIONS, GA4_LEADS),
    "gsc": (GSC_QUERIES, GSC_TOTALS),
    "slack": (SLACK_MESSAGES,),
    "discourse": DISCOURSE_DAILY,
}
DIRECT_TABLES = tuple(name for tables in PART_TABLES.values() for name in tables)
# Slack's sandbox workspace stamps its rows as the sandbox's (orchestration/slack/resources.py).
SLACK_SOURCE = "sandbox"
# Days per transaction, as the loading assets write their large tables (orchestration/fetching.py).
WRITE_DAYS = 7
WRITE_MEMORY_LIMIT = "1GB"

_SESSIONS_KEYS = [f.name for f in SESSIONS_SCHEMA][1:6]
_SESSIONS_METRICS = [f.name for f in SESSIONS_SCHEMA][6:]


def _ga4_tables(seed: int, scale: str, day: date) -> tuple[pa.Table, pa.Table, bool, bool]:
    from connectors.sandbox import ga4

    generated = ga4.generate_day(seed, scale, day, "sessions")
    # The API groups the generated rows by the requested dimensions (two traffic classes can share
    # a source, medium, campaign, page and device) and sums the metrics.
    grouped: dict[tuple, list[int]] = {}
    for r in generated.rows:
        acc = grouped.get(r[:5])
        if acc is None:
            grouped[r[:5]] = list(r[5:10])
        else:
            for j in range(5):
                acc[j] += r[5 + j]
    keys = list(grouped)
    values = list(grouped.values())
    columns = {"date": pa.array([day] * len(keys), pa.date32())}
    for j, name in enumerate(_SESSIONS_KEYS):
        columns[name] = pa.array([k[j] for k in keys], pa.string())
    for j, name in enumerate(_SESSIONS_METRICS):
        columns[name] = pa.array([v[j] for v in values], SESSIONS_SCHEMA.field(name).type)
    sessions = pa.table(columns, schema=SESSIONS_SCHEMA)

    leads_rows = ga4.generate_day(seed, scale, day, "leads")  # already one row per key
    leads = pa.table(
        {
            "date": pa.array([day] * len(leads_rows), pa.date32()),
            **{
                name: pa.array([r[j] for r in leads_rows], pa.string())
                for j, name in enumerate([f.name for f in LEADS_SCHEMA][1:6])
            },
            "leads": pa.array([float(r[5]) for r in leads_rows], pa.float64()),
        },
        schema=LEADS_SCHEMA,
    )
    return sessions, leads, generated.subject_to_thresholding, generated.data_loss_from_other_row


def _gsc_tables(seed: int, scale: str, day: date) -> tuple[pa.Table, pa.Table]:
    from connectors.sandbox import gsc

    rows = gsc.generate_day(seed, scale, day).rows
    # As the API answers the connector's query (date x query x page x device x country): one row per
    # generated row; ctr and position from its sums (impressions x position / impressions).
    impressions = [r[5] for r in rows]
    queries = pa.table(
        {
            "date": pa.array([day] * len(rows), pa.date32()),
            "query": pa.array([r[0] for r in rows], pa.string()),
            "page": pa.array([r[1] for r in rows], pa.string()),
            "device": pa.array([r[2] for r in rows], pa.string()),
            "country": pa.array([r[3] for r in rows], pa.string()),
            "clicks": pa.array([r[4] for r in rows], pa.int64()),
            "impressions": pa.array(impressions, pa.int64()),
            "ctr": pa.array([r[4] / r[5] for r in rows], pa.float64()),
            "position": pa.array([(0.0 + r[5] * r[7]) / r[5] for r in rows], pa.float64()),
        },
        schema=QUERIES_SCHEMA,
    )
    clicks, shown, weighted, has_rows = gsc.day_sums(seed, scale, day)
    totals = pa.table(
        {
            "date": pa.array([day] if has_rows else [], pa.date32()),
            "clicks": pa.array([clicks] if has_rows else [], pa.int64()),
            "impressions": pa.array([shown] if has_rows else [], pa.int64()),
            "ctr": pa.array([clicks / shown] if has_rows else [], pa.float64()),
            "position": pa.array([weighted / shown] if has_rows else [], pa.float64()),
        },
        schema=TOTALS_SCHEMA,
    )
    return queries, totals


def _slack_messages(seed: int, scale: str, day: date, today: date) -> pa.Table:
    """A day's raw_slack.messages rows as the Slack asset loads them from the API on `today`: each
    channel's top-level messages of the day (conversations.history), then the replies to its parents
    (conversations.replies) visible before `today`, dated with their parent's day. The messages are
    the sandbox's own message objects, made into rows by the connector's `message_row`."""
    from connectors.sandbox import community, slack_api
    from connectors.slack import MESSAGES_SCHEMA, message_row

    cutoff = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)
    rows: list[dict] = []
    if day >= COMMUNITY_START_DATE and day < today:
        for thread in community.threads_started_on(seed, scale, "slack", day):
            root = thread[0]
            replies = [p for p in thread[1:] if p.created_at < cutoff]
            rows.append(message_row(slack_api.message_object(seed, scale, root, replies), root.space_id))
            for reply in replies:
                row = message_row(slack_api.message_object(seed, scale, reply), root.space_id)
                row["thread_ts"] = row["thread_ts"] or root.post_id
                row["date"] = day
                rows.append(row)
    return pa.Table.from_pylist(rows, schema=MESSAGES_SCHEMA)


@functools.cache
def _discourse_likers(seed: int, scale: str, today: date) -> dict[int, list[dict]]:
    """{post id: its likers, oldest like first}, as the connector reads them from the authors'
    streams of likes received (/user_actions.json?filter=2)."""
    from connectors.sandbox import discourse_api

    likes: dict[int, list[tuple]] = {}
    for stream in discourse_api.likes_in_streams(seed, scale, today, discourse_api.WAS_LIKED).values():
        for moment, post_id, liker in stream:
            likes.setdefault(post_id, []).append((moment, liker))
    return {post_id: [{"id": liker} for _, liker in sorted(found)] for post_id, found in likes.items()}


def _discourse_tables(seed: int, scale: str, day: date, today: date) -> tuple[pa.Table, pa.Table, pa.Table]:
    """A day's raw_discourse posts, topics and post_likes as the Discourse asset loads them on
    `today`: the topics created that day (their /latest summaries), the posts created that day (as
    /posts.json lists them) and the likers of its liked posts, made into rows by the connector's
    `summary_topic_row` and `day_activity`."""
    from connectors.discourse import day_activity, summary_topic_row
    from connectors.sandbox import discourse_api

    summaries, posts = discourse_api.day_objects(seed, scale, today, day) if day < today else ([], [])
    topics = [row for row in map(summary_topic_row, summaries) if row is not None]
    liked = [p for p in posts if p["actions_summary"]]  # the posts whose like count is not given
    likers = _discourse_likers(seed, scale, today)
    activity = day_activity(day, topics, posts, {int(p["id"]): likers.get(int(p["id"]), []) for p in liked})
    return activity.posts, activity.topics, activity.post_likes


def generated_day(seed: int, scale: str, day: date, parts: frozenset[str], today: date) -> dict:
    """One day's tables of `parts` ("ga4", "gsc", "slack"), before the load stamp (a worker's task)."""
    out: dict = {"day": day}
    if "ga4" in parts:
        out["ga4"] = _ga4_tables(seed, scale, day)
    if "gsc" in parts:
        out["gsc"] = _gsc_tables(seed, scale, day)
    if "slack" in parts:
        out["slack"] = _slack_messages(seed, scale, day, today)
    if "discourse" in parts:
        out["discourse"] = _discourse_tables(seed, scale, day, today)
    return out


def _stamp_ga4(table: pa.Table, thresholded: bool, other_row: bool, loaded_at, run_id: str) -> pa.Table:
    from orchestration.registry import raw_table

    return raw_table(GA4_SESSIONS).stamped(
        table, SANDBOX_GA4_PROPERTY_ID, thresholded, other_row, loaded_at, run_id
    )


def _loaded(conn, first: date, last: date) -> dict[date, set[str]]:
    """The tables of each day of `first`..`last` the ledger of loaded days holds."""
    from orchestration.ledger import loaded_days

    out: dict[date, set[str]] = {day: set() for day in _days(first, last)}
    for name in DIRECT_TABLES:
        for day in loaded_days(conn, name, first, last):
            out[day].add(name)
    return out


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _in_order(pool, tasks: list[tuple]) -> Iterator[dict]:
    # imap keeps the days in order while the workers run ahead of the writer
    yield from pool.imap(_generated_day_task, tasks, chunksize=1)


def _generated_day_task(task: tuple) -> dict:
    return generated_day(*task)


def load_direct(
    warehouse_path: str,
    first: date,
    last: date,
    scale: str,
    seed: int = DEFAULT_SEED,
    workers: int = 2,
    today: date | None = None,
    forum_url: str | None = None,
    parts: tuple[str, ...] = tuple(PART_TABLES),
    rewrite: bool = False,
) -> dict:
    """Write the raw tables of `parts` (PART_TABLES: GA4's, Search Console's, Slack's messages,
    Discourse's) for `first`..`last` into `warehouse_path`, as the sandbox answers on `today`.

    `today` defaults to the day after `last`: the warehouse as the night that loaded `last` (its
    "yesterday") leaves it, Slack's threads with the replies posted before that night and Discourse's
    posts with the likes given before it. So the bench's next night, a day later, finds the threads
    and likes of one day grown, as a real night after a night does (written as of a later day, the
    history would already hold what that night is meant to fetch). `rewrite` writes the days again
    even when the ledger has them (a history written as of another day brought in line). Search
    Console's days the sandbox does not call final yet (within GSC_FINAL_LAG_DAYS of `today`) are
    not written, as the Search Console asset leaves them. Returns rows per table and the seconds
    it took.
    """
    from orchestration.registry import raw_table
    from orchestration.warehouse import connect_warehouse, replace_days

    # the Discourse asset stamps its rows with the forum's address (the sandbox's, in sandbox mode)
    forum_url = forum_url or os.environ.get("SANDBOX_URL", "").rstrip("/") + DISCOURSE_PREFIX
    started = time.monotonic()
    today = today or last + timedelta(days=1)
    last_final = today - timedelta(days=GSC_FINAL_LAG_DAYS)
    days = [d for d in _days(first, last) if d >= SANDBOX_START_DATE]
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    run_id = str(uuid.uuid4())
    gsc_queries, gsc_totals = raw_table(GSC_QUERIES), raw_table(GSC_TOTALS)
    slack_messages = raw_table(SLACK_MESSAGES)
    rows = dict.fromkeys(DIRECT_TABLES, 0)
    pending: dict[str, tuple[list[date], list[pa.Table]]] = {name: ([], []) for name in rows}

    conn = connect_warehouse(warehouse_path)
    # The loading assets cap DuckDB's cache at 64 MB (orchestration/warehouse.py): right for a day a
    # call, but a week of large Search Console days (~500k rows) then spills to disk; this writer
    # is alone on its file.
    conn.execute(f"set memory_limit = '{WRITE_MEMORY_LIMIT}'")
    # Days already written (an interrupted build resumed): every table of the day in the ledger.
    done = {day: set() for day in _days(first, last)} if rewrite else _loaded(conn, first, last)

    def flush(name: str) -> None:
        batch_days, tables = pending[name]
        if batch_days:
            rows[name] += replace_days(conn, name, batch_days, pa.concat_tables(tables))
            pending[name] = ([], [])

    def add(name: str, day: date, table: pa.Table) -> None:
        pending[name][0].append(day)
        pending[name][1].append(table)
        if len(pending[name][0]) >= WRITE_DAYS:
            flush(name)

    # A day's parts not written yet (an interrupted build resumed, or a cache from before Slack
    # was written here); Search Console's days the sandbox does not call final are left out.
    tasks = []
    for day in days:
        parts = {
            part
            for part, tables in PART_TABLES.items()
            if part in parts and not set(tables) <= done[day] and (part != "gsc" or day <= last_final)
        }
        if parts:
            tasks.append((seed, scale, day, frozenset(parts), today))
    try:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for out in _in_order(pool, tasks):
                day = out["day"]
                if "ga4" in out:
                    sessions, leads, thresholded, other_row = out["ga4"]
                    add(GA4_SESSIONS, day, _stamp_ga4(sessions, thresholded, other_row, loaded_at, run_id))
                    # the leads report carries the sessions report's thresholding flag of the day
                    add(GA4_LEADS, day, _stamp_ga4(leads, thresholded, False, loaded_at, run_id))
                if "gsc" in out:
                    queries, totals = out["gsc"]
                    add(
                        GSC_QUERIES,
                        day,
                        gsc_queries.stamped(queries, SANDBOX_GSC_SITE_URL, loaded_at, run_id),
                    )
                    add(GSC_TOTALS, day, gsc_totals.stamped(totals, SANDBOX_GSC_SITE_URL, loaded_at, run_id))
                if "slack" in out:
                    add(
                        SLACK_MESSAGES,
                        day,
                        slack_messages.stamped(out["slack"], SLACK_SOURCE, loaded_at, run_id),
                    )
                if "discourse" in out:
                    for name, table in zip(DISCOURSE_DAILY, out["discourse"], strict=True):
                        # every Discourse table carries the same stamp (orchestration/registry.py)
                        add(name, day, raw_table(name).stamped(table, forum_url, loaded_at, run_id))
            # The workers end on their own before the with-block's terminate(), which ends them by
            # SIGTERM: a process that ignores SIGTERM (pytest-xdist's workers here) passes that on to
            # the spawned workers, and terminate() then waits for them forever.
            pool.close()
            pool.join()
        for name in rows:
            flush(name)
        conn.execute("checkpoint")
    finally:
        conn.close()
    return {
        "rows": rows,
        "seconds": time.monotonic() - started,
        "days": len(days),
        "days_written": len(tasks),
        "tables": list(DIRECT_TABLES),
    }
