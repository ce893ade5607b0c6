"""Slack assets: daily ["slack","messages"] and whole-table ["slack","channels"], ["slack","users"].

Source: the Web API (or the sandbox) by default; a workspace export when SLACK_EXPORT_PATH is set
(the messages asset then loads the run's days from the zip).

messages: a day's rows are the channels' messages of that UTC day plus every reply to them (`date`
= the parent's day), swapped into raw_slack.messages in one transaction per day. Threads keep
growing: the nightly run re-pulls the last SLACK_TRAILING_DAYS days, and before that asks Slack
which parents of the SLACK_RESCAN_DAYS days before have a latest_reply newer than the one loaded;
those parents' days are re-pulled too.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pyarrow as pa

from connectors.slack import CHANNELS_SCHEMA, MESSAGES_SCHEMA, USERS_SCHEMA
from orchestration.fetching import load_days
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate, write_snapshot
from orchestration.registry import raw_table
from orchestration.slack.resources import SlackResource, slack_resource_from_env
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse, replace_days

SLACK_TRAILING_DAYS = 7
SLACK_RESCAN_DAYS = 30
MESSAGES = raw_table("raw_slack.messages")
# The load stamp every Slack table carries (orchestration/registry.py).
METADATA_FIELDS = list(MESSAGES.stamp)


def _stamp(table: pa.Table, source: str, run_id: str) -> pa.Table:
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    return MESSAGES.stamped(table, source, loaded_at, run_id)


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
    common = dict(group_name="ingest_slack", pool=WAREHOUSE_POOL, kinds={"python", "duckdb"})

    @dg.asset(
        key=["slack", "channels"],
        check_specs=[expectations_spec(["slack", "channels"])],
        description="Slack channels (public and private the bot is in; conversations.list or the export's "
        "channels.json/groups.json). Replaced whole in raw_slack.channels.",
        **common,
    )
    def channels(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        yield from gated(context, lambda gate: _load_channels(context, warehouse, gate, slack))

    def _load_channels(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gate: QualityGate, slack: SlackResource
    ):
        source = slack.source
        reader = slack.export() if source == "export" else slack.client()
        with reader:
            table = pa.Table.from_batches(list(reader.channels()), schema=CHANNELS_SCHEMA)
        with warehouse.connect() as conn:
            n = write_snapshot(conn, gate, "raw_slack.channels", _stamp(table, source, context.run.run_id))
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
        yield from gated(context, lambda gate: _load_users(context, warehouse, gate, slack))

    def _load_users(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gate: QualityGate, slack: SlackResource
    ):
        source = slack.source
        reader = slack.export() if source == "export" else slack.client()
        with reader:
            table = pa.Table.from_batches(list(reader.users()), schema=USERS_SCHEMA)
        with warehouse.connect() as conn:
            n = write_snapshot(conn, gate, "raw_slack.users", _stamp(table, source, context.run.run_id))
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
        yield from gated(context, lambda gate: _load_messages(context, warehouse, gate, slack))

    def _load_messages(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gate: QualityGate, slack: SlackResource
    ):
        source = slack.source
        days = days_in(context, trailing_days=SLACK_TRAILING_DAYS)
        run_id = context.run.run_id
        rescanned: list[date] = []
        if source == "export":
            with slack.export() as export:
                batches = list(export.messages(days[0], days[-1]))
            rows = _stamp(pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA), source, run_id)
            with warehouse.connect() as conn:
                gate.check(MESSAGES.name, rows, days, conn)
                total = replace_days(conn, MESSAGES.name, days, rows)
        else:
            with slack.client() as client:
                channel_ids = client.channel_ids()
                first = days[0] - timedelta(days=SLACK_RESCAN_DAYS)
                with warehouse.connect() as conn:
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
                    # Runs on a worker thread (orchestration/fetching.py) while the day before is written.
                    batches = list(client.messages(day, channel_ids))
                    return _stamp(pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA), source, run_id)

                total = load_days(
                    context,
                    warehouse,
                    MESSAGES.name,
                    todo,
                    fetch_day,
                    source="slack",
                    gate=gate,
                    log_every=14,
                )
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


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Slack's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_slack_assets(partitions_def), slack_resource_from_env)
