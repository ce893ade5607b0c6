"""Slack assets: daily ["slack","messages"] and whole-table ["slack","channels"], ["slack","users"].

Source: the Web API (or the sandbox) by default; a workspace export when SLACK_EXPORT_PATH is set
(the messages asset then loads the run's days from the zip).

messages: a day's rows are the channels' messages of that UTC day plus every reply to them (`date`
= the parent's day), swapped into raw_slack.messages day by day. Threads keep growing: the
nightly run re-pulls the last SLACK_TRAILING_DAYS days and the loaded days of the
SLACK_RESCAN_DAYS before them, from one conversations.history scan per channel over the whole
range; conversations.replies is asked only for parents whose latest_reply moved since they were
loaded (the table holds the loaded value), and the replies of the others are carried over. A
channel the bot is not in is skipped with a warning (`skipped_channels` in the metadata).
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.slack import CHANNELS_SCHEMA, MESSAGES_SCHEMA, USERS_SCHEMA
from orchestration.fetching import api_pool, load_days, write_days
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate, write_snapshot
from orchestration.registry import raw_table
from orchestration.slack.resources import SlackResource, slack_resource_from_env
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

SLACK_TRAILING_DAYS = 7
SLACK_RESCAN_DAYS = 30
MESSAGES = raw_table("raw_slack.messages")
# The load stamp every Slack table carries (orchestration/registry.py).
METADATA_FIELDS = list(MESSAGES.stamp)


def _stamp(table: pa.Table, source: str, run_id: str) -> pa.Table:
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    return MESSAGES.stamped(table, source, loaded_at, run_id)


def _loaded_threads(conn, first: date, last: date) -> dict[tuple[str, str], str | None]:
    """{(channel_id, thread_ts): latest_reply} of the parents with replies loaded first..last."""
    try:
        rows = conn.execute(
            "select channel_id, ts, latest_reply from raw_slack.messages "
            "where date between ? and ? and ts = thread_ts and reply_count > 0",
            [first, last],
        ).fetchall()
    except duckdb.CatalogException:  # the table does not exist yet
        return {}
    return {(channel_id, ts): latest_reply for channel_id, ts, latest_reply in rows}


def _channels_listed_by(conn, run_id: str) -> list[str]:
    """The channel ids raw_slack.channels got from run `run_id` (none: another run loaded it)."""
    try:
        rows = conn.execute(
            "select channel_id from raw_slack.channels where _run_id = ? order by channel_id", [run_id]
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [r[0] for r in rows]


def _loaded_replies(conn, day: date, threads: list[tuple[str, str]]) -> pa.Table:
    """The replies loaded for `threads` of `day` (the parents whose replies were not fetched again)."""
    columns = ", ".join(MESSAGES_SCHEMA.names)
    channels = [c for c, _ in threads]
    parents = [t for _, t in threads]
    table = conn.execute(
        f"select {columns} from raw_slack.messages as m "
        "join (select unnest(?::varchar[]) as channel_id, unnest(?::varchar[]) as thread_ts) as kept "
        "using (channel_id, thread_ts) where m.date = ? and m.ts <> m.thread_ts",
        [channels, parents, day],
    ).to_arrow_table()
    return table.cast(MESSAGES_SCHEMA)


CHANNELS_KEY = dg.AssetKey(["slack", "channels"])
USERS_KEY = dg.AssetKey(["slack", "users"])
MESSAGES_KEY = dg.AssetKey(["slack", "messages"])


def build_slack_assets(
    partitions_def: dg.PartitionsDefinition | None, one_step: bool = True
) -> list[dg.AssetsDefinition]:
    """The three assets; built without partitions (a history load, orchestration/partitions.py)
    and `one_step`, the same three assets and checks as one step (`slack_history`): a run's
    bookkeeping is mostly per step (its start and end events, its pool's slot claimed
    and freed), and a history load pays it once instead of three times (bench/README.md,
    "Bookkeeping benchmark"). `one_step=False` keeps three steps, for the benchmark's comparison.
    """
    common = dict(group_name="ingest_slack", pool=api_pool("slack"), kinds={"python", "duckdb"})

    @dg.asset(
        key=CHANNELS_KEY,
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
        # No log line: the materialization says the same, and each line is one more event record.
        return dg.MaterializeResult(
            asset_key=CHANNELS_KEY, metadata={"rows": n, "source": source, "table": "raw_slack.channels"}
        )

    @dg.asset(
        key=USERS_KEY,
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
        return dg.MaterializeResult(
            asset_key=USERS_KEY, metadata={"rows": n, "source": source, "table": "raw_slack.users"}
        )

    @dg.asset(
        key=MESSAGES_KEY,
        check_specs=[expectations_spec(["slack", "messages"])],
        description="Slack messages of each UTC day with every reply to them (conversations.history + "
        "conversations.replies, or the export's per-day files); date = the thread parent's day. "
        "Lands in raw_slack.messages, grain channel_id + ts.",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # No dependency on the channels asset: dbt's blocking tests of raw_slack.channels run in the
        # dbt step, so a dependency makes Dagster split dbt around this step (a test of the seeds
        # then runs before they are built). When the channels step ran first in this run, its
        # list is reused (one conversations.list a run); otherwise this step lists them itself.
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
        loaded, grown, skipped = days, [], []
        if source == "export":
            with slack.export() as export:
                batches = list(export.messages(days[0], days[-1]))
            rows = _stamp(pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA), source, run_id)
            with warehouse.connect() as conn:
                gate.check(MESSAGES.name, rows, days, conn)  # the whole export, before any write
                total = write_days(conn, MESSAGES.name, days, rows).rows_written
        else:
            total, loaded, grown, skipped = _load_from_api(context, warehouse, gate, slack, days, run_id)
        return dg.MaterializeResult(
            asset_key=MESSAGES_KEY,
            metadata={
                # Every day replaced, the re-scan window's included: `rows` counts all of them.
                "days": len(loaded),
                "first_day": loaded[0].isoformat(),
                "last_day": loaded[-1].isoformat(),
                "asked_days": len(days),
                "rescanned_days": len(loaded) - len(days),
                "grown_thread_days": len(grown),
                "rows": total,
                "skipped_channels": len(skipped),
                "source": source,
                "table": "raw_slack.messages",
            },
        )

    if partitions_def is not None or not one_step:
        return [channels, users, messages]

    loaders = {CHANNELS_KEY: _load_channels, USERS_KEY: _load_users, MESSAGES_KEY: _load_messages}
    three = (channels, users, messages)

    @dg.multi_asset(
        name="slack_history",
        specs=[spec for asset in three for spec in asset.specs],
        check_specs=[spec for asset in three for spec in asset.check_specs],
        can_subset=True,
        pool=api_pool("slack"),
        description="A history load of Slack's channels, users and messages in one step, in this "
        "order (the messages reuse the channel list).",
    )
    def slack_history(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, slack: SlackResource):
        failed: list[tuple[dg.AssetKey, Exception]] = []
        for key, load in loaders.items():
            if key not in context.selected_asset_keys:
                continue
            # Each asset gated and reported on its own, and a failure does not stop the others: what
            # three steps would load, check and record, this one does; then it fails with the error.
            try:
                yield from gated(
                    context, lambda gate, load=load: load(context, warehouse, gate, slack), [key]
                )
            except Exception as exc:  # noqa: BLE001 - raised below, once the other assets had their turn
                failed.append((key, exc))
        for key, exc in failed[1:]:
            context.log.error(f"{key.to_user_string()} failed too: {exc}")
        if failed:
            raise failed[0][1]

    return [slack_history]


def known_days(conn, first: date, before: date) -> set[date]:
    try:
        rows = conn.execute(
            "select distinct date from raw_slack.messages where date >= ? and date < ?", [first, before]
        ).fetchall()
    except duckdb.CatalogException:  # the table does not exist yet
        return set()
    return {r[0] for r in rows}


def _load_from_api(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    gate: QualityGate,
    slack: SlackResource,
    days: list[date],
    run_id: str,
) -> tuple[int, list[date], list[date], list[str]]:
    """The asked days, and the loaded days of the SLACK_RESCAN_DAYS before them, from one history
    scan per channel over the whole range (newest day first, as Slack pages it). Replies are
    fetched only for parents whose latest_reply differs from the one loaded (all of them on a first
    load); the replies of the others are carried over from the table, so every day is still
    replaced whole. Returns (rows written, every day replaced, oldest first, the earlier days among
    them whose threads grew, skipped channels)."""
    with slack.client() as client:
        with warehouse.connect() as conn:
            # the channels step of this run, if it ran first, listed them: conversations.list once
            channel_ids = _channels_listed_by(conn, run_id) or client.channel_ids()
            earlier = known_days(conn, days[0] - timedelta(days=SLACK_RESCAN_DAYS), days[0])
            loaded = _loaded_threads(conn, min(earlier | {days[0]}), days[-1])
        todo = sorted(set(days) | earlier, reverse=True)
        scan = client.scan(channel_ids, todo)
        asked = set(days)
        grown: set[date] = set()

        def fetch_day(day: date) -> pa.Table:
            # Runs on a worker thread (orchestration/fetching.py) while the days before are written.
            unchanged: list[tuple[str, str]] = []
            batches = list(client.messages(day, channel_ids, scan=scan, loaded=loaded, unchanged=unchanged))
            table = pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA)
            if day not in asked and pc.any(pc.not_equal(table["ts"], table["thread_ts"])).as_py():
                grown.add(day)  # a thread of an earlier day got replies since it was loaded
            if unchanged:
                # Opened for the read alone: the step holds the file only while it reads or writes,
                # so the other sources' steps can write while this one waits on Slack.
                with warehouse.connect() as reader:
                    table = pa.concat_tables([table, _loaded_replies(reader, day, unchanged)])
            return _stamp(table, slack.source, run_id)

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
    if scan.skipped:
        context.log.warning(
            f"Slack: {len(scan.skipped)} channel(s) skipped, the bot is not a member: "
            f"{', '.join(scan.skipped)}. Invite the bot to load them."
        )
    return total, todo[::-1], sorted(grown), scan.skipped


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Slack's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_slack_assets(partitions_def), slack_resource_from_env)
