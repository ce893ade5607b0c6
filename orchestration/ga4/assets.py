"""Daily GA4 assets: `["ga4", "sessions_daily"]` and `["ga4", "leads_daily"]` land in raw_ga4.*.

A run asks GA4 for one report over all its days (date dimension, pages of up to 250,000 rows) and
splits it into days as the pages arrive (connectors/ga4.py, `report_days`); each day is stamped
with load metadata and its table's days are swapped in by day, a batch per transaction
(orchestration/fetching.py). A backfill runs as one run over a range of days (single-run policy),
so loading a year costs one Dagster run start and one report per table, not 365.
"""

from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa

from connectors.ga4 import GA4Client, ReportDay
from orchestration.fetching import api_pool, load_items
from orchestration.ga4.resources import GA4Resource, ga4_resource_from_env
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate
from orchestration.registry import RawTable, raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

# GA4 revises a day for ~72 h, so the nightly run re-pulls yesterday and the 3 days before.
GA4_TRAILING_DAYS = 3

SESSIONS = raw_table("raw_ga4.sessions_daily")
LEADS = raw_table("raw_ga4.leads_daily")
# The load stamp both tables carry (orchestration/registry.py).
METADATA_FIELDS = list(SESSIONS.stamp)


def _stamped(day: ReportDay, stamp: dict) -> pa.Table:
    return SESSIONS.stamped(
        day.table,
        stamp["property_id"],
        day.subject_to_thresholding,
        day.data_loss_from_other_row,
        stamp["loaded_at"],
        stamp["run_id"],
    )


def load_report_days(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    gate: QualityGate,
    client: GA4Client,
    fetch: Callable[[GA4Client, date, date], Iterator[ReportDay]],
    table: RawTable,
) -> dg.MaterializeResult:
    days = days_in(context, trailing_days=GA4_TRAILING_DAYS)
    stamp = {
        "property_id": client.config.property_id,
        "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "run_id": context.run.run_id,
    }
    flagged_days = []

    def fetch_range(group: list[date]) -> Iterator[ReportDay]:
        # Lazy: the report's pages are asked while `split` hands its days over, so memory holds a
        # page and a day, not the range.
        return fetch(client, group[0], group[-1])

    def split(group: list[date], report: Iterator[ReportDay]):
        for day in report:
            # The flags come with the day: a day without rows has no row to carry them in its table.
            if day.subject_to_thresholding or day.data_loss_from_other_row:
                flagged_days.append(day.day.isoformat())
            yield [day.day], {table.name: _stamped(day, stamp)}

    total_rows = load_items(
        context,
        warehouse,
        [table.name],
        [days],  # days_in gives consecutive days: one report for all of them
        fetch_range,
        split,
        source="ga4",
        gate=gate,
        total_days=len(days),
        label=table.name,
    )[table.name]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "first_day": days[0].isoformat(),
            "last_day": days[-1].isoformat(),
            "rows": total_rows,
            "days_thresholded_or_folded": len(flagged_days),
            "property_id": stamp["property_id"],
            "table": table.name,
        }
    )


# The API itself, so the lineage in the UI starts where the data does.
GA4_API = dg.AssetSpec(
    key=["ga4", "data_api"],
    group_name="ingest_ga4",
    kinds={"googleanalytics"},
    description="The GA4 Data API (runReport) of the configured property: read, never written.",
)


def build_ga4_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    def report_asset(
        table: RawTable, fetch: Callable[[GA4Client, date, date], Iterator[ReportDay]], description: str
    ):
        @dg.asset(
            key=list(table.asset_key),
            check_specs=[expectations_spec(table.asset_key)],
            description=f"{description} Lands in {table.name}.",
            group_name="ingest_ga4",
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=api_pool("ga4"),
            kinds={"python", "duckdb"},
            deps=[GA4_API],
        )
        def report(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, ga4: GA4Resource):
            with ga4.client() as client:
                yield from gated(
                    context, lambda gate: load_report_days(context, warehouse, gate, client, fetch, table)
                )

        return report

    sessions = report_asset(
        SESSIONS,
        GA4Client.sessions_days,
        "GA4 runReport, one row per date x sessionSource x sessionMedium x sessionCampaignName x "
        "landingPagePlusQueryString x deviceCategory; metrics sessions, engagedSessions, keyEvents, "
        "totalUsers, newUsers.",
    )
    leads = report_asset(
        LEADS,
        GA4Client.leads_days,
        "GA4 runReport of the lead key event (default generate_lead) with the answer to 'How did you "
        "hear about us?' (custom event parameter, default how_heard) and the session's source, "
        "medium, campaign and landing page.",
    )
    return [GA4_API, sessions, leads]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """GA4's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_ga4_assets(partitions_def), ga4_resource_from_env)
