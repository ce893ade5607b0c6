"""Slack assets: daily ["slack","messages"] and whole-table ["slack","channels"], ["slack","users"].

Source: the Web API (or the sandbox) by default; a workspace export when SLACK_EXPORT_PATH is set
(the messages asset then loads the run's days from the zip).

messages: a day's rows are the channels' messages of that UTC day plus every reply to them (`date`
= the parent's day), swapped into raw_slack.messages in one transaction per day. Threads keep
growing: the nightly run re-pulls the last SLACK_TRAILING_DAYS days, and before that asks Slack
which parents of the SLACK_RESCAN_DAYS days before have a latest_reply newer than the one loaded;
those parents' days are re-pulled too.
"""

import warnings
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pyarrow as pa

from connectors.slack import CHANNELS_SCHEMA, MESSAGES_SCHEMA, USERS_SCHEMA
from orchestration.fetching import DayBatches, prefetched
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.slack.resources import SlackResource
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse, replace_days, replace_table, stamped

SLACK_TRAILING_DAYS = 7
SLACK_RESCAN_DAYS = 30
METADATA_FIELDS = [
    pa.field("_source", pa.string()),
    pa.field("_loaded_at", pa.timestamp("us")),
    pa.field("_run_id", pa.string()),
]


def _stamp(table: pa.Table, source: str, run_id: str) -> pa.Table:
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    return stamped(table, zip(METADATA_FIELDS, (source, loaded_at, run_id), strict=True))


def _known_threads(conn, first: date, last: date) -> dict[str, str | None]:
    try:
        rows = conn.execute(
            "select thread_ts, max(latest_reply) from raw_slack.messages "
            "where date between ? and ? and ts = thread_ts group by thread_ts",
            [first, last],
        ).fetchall()
    except Exception:  # the table does not exist yet
        return {}
    return dict(rows)


def build_slack_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
    common = dict(group_name="ingest_slack", pool=WAREHOUSE_POOL, kinds={"python", "duckdb"})

    @dg.asset(
        key=["slack", "channels"],
        check_specs=[expectations_spec(["slack", "channels"])],
        description="Slack channels (public and private the bot is in; conversations.list or the export's "
        "channels.json/groups.json). Replaced whole in raw_slack.channels.",
        **common,
    )
    def channels(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        yield from gated(context, lambda: _load_channels(context, warehouse, slack))

    def _load_channels(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        source = slack.source
        reader = slack.export() if source == "export" else slack.client()
        with reader:
            table = pa.Table.from_batches(list(reader.channels()), schema=CHANNELS_SCHEMA)
        with warehouse.connect() as conn:
            n = replace_table(conn, "raw_slack.channels", _stamp(table, source, context.run.run_id))
        context.log.info(f"raw_slack.channels: {n} channels from {source}")
        return dg.MaterializeResult(metadata={"rows": n, "source": source, "table": "raw_slack.channels"})

    @dg.asset(
        key=["slack", "users"],
        check_specs=[expectations_spec(["slack", "users"])],
        description="Slack users (users.list or the export's users.json), e-mail and its domain included "
        "for staging. Replaced whole in raw_slack.users.",
        **common,
    )
    def users(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        yield from gated(context, lambda: _load_users(context, warehouse, slack))

    def _load_users(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        source = slack.source
        reader = slack.export() if source == "export" else slack.client()
        with reader:
            table = pa.Table.from_batches(list(reader.users()), schema=USERS_SCHEMA)
        with warehouse.connect() as conn:
            n = replace_table(conn, "raw_slack.users", _stamp(table, source, context.run.run_id))
        context.log.info(f"raw_slack.users: {n} users from {source}")
        return dg.MaterializeResult(metadata={"rows": n, "source": source, "table": "raw_slack.users"})

    @dg.asset(
        key=["slack", "messages"],
        check_specs=[expectations_spec(["slack", "messages"])],
        description="Slack messages of each UTC day with every reply to them (conversations.history + "
        "conversations.replies, or the export's per-day files); date = the thread parent's day. "
        "Lands in raw_slack.messages, grain channel_id + ts.",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        **common,
    )
    def messages(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        yield from gated(context, lambda: _load_messages(context, warehouse, slack))

    def _load_messages(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        source = slack.source
        days = days_in(context, trailing_days=SLACK_TRAILING_DAYS)
        run_id = context.run.run_id
        total, rescanned = 0, []
        with warehouse.connect() as conn:
            if source == "export":
                with slack.export() as export:
                    batches = list(export.messages(days[0], days[-1]))
                table = pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA)
                total = replace_days(conn, "raw_slack.messages", days, _stamp(table, source, run_id))
            else:
                with slack.client() as client:
                    channel_ids = client.channel_ids()
                    first = days[0] - timedelta(days=SLACK_RESCAN_DAYS)
                    known = _known_threads(conn, first, days[0] - timedelta(days=1))
                    if known:
                        stale = client.parents_to_rescan(
                            channel_ids, first, days[0] - timedelta(days=1), known
                        )
                        rescanned = sorted(
                            {r.day for r in stale if r.day in known_days(conn, first, days[0])}
                        )
                    todo = sorted(set(days) | set(rescanned))
                    client.plan(todo)  # a history scan per channel and month, not per day

                    def fetch_day(day: date) -> pa.Table:
                        # Runs on a worker thread (orchestration/fetching.py) while the day before
                        # is written.
                        batches = list(client.messages(day, channel_ids))
                        return _stamp(pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA), source, run_id)

                    batches = DayBatches(conn, "raw_slack.messages")
                    with prefetched(todo, fetch_day, source="slack") as fetched:
                        for i, (day, table) in enumerate(fetched, start=1):
                            batches.add(day, table)
                            if i % 14 == 0 and i < len(todo):
                                context.log.info(
                                    f"raw_slack.messages: {i}/{len(todo)} days loaded, "
                                    f"{batches.rows_written:,} rows so far"
                                )
                    batches.flush()
                    total = batches.rows_written
                    context.log.info(f"raw_slack.messages: {len(todo)} days loaded, {total:,} rows")
        return dg.MaterializeResult(
            metadata={
                "days": len(days),
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "rescanned_days": len(rescanned),
                "rows": total,
                "source": source,
                "table": "raw_slack.messages",
            }
        )

    return [channels, users, messages]


def known_days(conn, first: date, before: date) -> set[date]:
    rows = conn.execute(
        "select distinct date from raw_slack.messages where date >= ? and date < ?", [first, before]
    ).fetchall()
    return {r[0] for r in rows}
