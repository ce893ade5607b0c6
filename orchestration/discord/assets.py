"""The optional Discord asset `["discord", "messages"]`: each UTC day of the configured channels
lands in raw_discord.messages (a few days per transaction; the next days are fetched while one
is written, see orchestration/fetching.py). Built only when the source is
switched on (see `discord_enabled`), so the default demo stays lean. Replies and reactions arrive
after their day: the nightly run re-pulls the 7 days before yesterday.
"""

from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa

from connectors.discord import MESSAGES_SCHEMA
from orchestration.discord.resources import DiscordResource, discord_enabled, discord_resource_from_env
from orchestration.fetching import api_pool, load_days
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate
from orchestration.registry import raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

DISCORD_TRAILING_DAYS = 7
MESSAGES = raw_table("raw_discord.messages")
TABLE = MESSAGES.name


def build_discord_assets(partitions_def: dg.PartitionsDefinition, enabled: bool | None = None) -> list:
    if not (discord_enabled() if enabled is None else enabled):
        return []

    @dg.asset(
        key=["discord", "messages"],
        check_specs=[expectations_spec(["discord", "messages"])],
        description=(
            "Discord channel messages by UTC day (GET /channels/{id}/messages with after-snowflake paging): "
            "author, type (19 = reply), content, message_reference, reactions as JSON. "
            "Lands in raw_discord.messages."
        ),
        group_name="ingest_discord",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=api_pool("discord"),
        kinds={"python", "duckdb"},
    )
    def messages(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, discord: DiscordResource):
        yield from gated(context, lambda gate: _load(context, warehouse, gate, discord))

    def _load(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        gate: QualityGate,
        discord: DiscordResource,
    ) -> dg.MaterializeResult:
        days = days_in(context, trailing_days=DISCORD_TRAILING_DAYS)
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        run_id = context.run.run_id
        with discord.client() as client:
            channels = client.config.channel_ids

            def fetch_day(day: date) -> pa.Table:
                # Runs on a worker thread (orchestration/fetching.py) while the day before is written.
                batches = [b for channel in channels for b in client.messages(channel, day)]
                return MESSAGES.stamped(
                    pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA), loaded_at, run_id
                )

            total = load_days(
                context,
                warehouse,
                TABLE,
                days,
                fetch_day,
                source="discord",
                gate=gate,
                label="discord",
                unit="messages",
                log_every=7,
            )
        return dg.MaterializeResult(
            metadata={
                "days": len(days),
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "rows": total,
                "channels": len(channels),
                "table": TABLE,
            }
        )

    return [messages]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Discord's asset and resource as its plan says (orchestration/sources.py, `plan_defs`): none
    while it is off, as it is optional."""
    return plan_defs(
        plan, build_discord_assets(partitions_def, enabled=plan.loaded), discord_resource_from_env
    )
