"""Daily Meta assets: ["meta", "ad_insights_daily"] and ["meta", "pixel_events_hourly"] -> raw_meta.*.

Insights of a day keep changing for the attribution window, so the nightly run re-pulls yesterday
and the 7 days before (8 days: one synchronous request for all of them, time_increment=1). A
backfill runs as one run over its range (single-run policy); a range longer than
META_ASYNC_MIN_DAYS loads through Meta's async report, one report per ASYNC_CHUNK_DAYS (a year:
a year's backfill is one report, its rows held until they are written, about 200 bytes an ad and
day), each swapped in by one transaction. Pixel events are loaded a chunk of up to 31 days a call
(pages of 100 hours). The next days or chunks are fetched while one is written
(orchestration/fetching.py). A failed day or chunk leaves what was loaded before untouched.
"""

from collections.abc import Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from connectors.meta import MetaClient
from orchestration.fetching import api_pool, load_items
from orchestration.meta.resources import MetaResource, meta_resource_from_env
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate
from orchestration.registry import RawTable, raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

# Meta's default attribution (7-day click) revises a day's conversions for a week.
META_TRAILING_DAYS = 7
# Days per async insights report in a backfill: one transaction and one report each. A report
# costs a POST and its status polls besides its pages, so a year's backfill asks one.
ASYNC_CHUNK_DAYS = 366
# Days of pixel events per paged call (pages of 100 hours) and per transaction.
PIXEL_CHUNK_DAYS = 31

INSIGHTS = raw_table("raw_meta.ad_insights_daily")
PIXEL = raw_table("raw_meta.pixel_events_hourly")
INSIGHTS_TABLE = INSIGHTS.name
PIXEL_TABLE = PIXEL.name


def _stamped(batches: Iterator[pa.RecordBatch], table: RawTable, stamp: tuple[object, ...]) -> pa.Table:
    return table.stamped(pa.Table.from_batches(list(batches), schema=table.columns), *stamp)


def _check_days(table: pa.Table, days: list[date], table_name: str) -> None:
    if table.num_rows == 0:
        return
    allowed = pa.array(days, pa.date32())
    outside = pc.invert(pc.is_in(table.column("date"), value_set=allowed))
    if pc.any(outside).as_py():
        stray = sorted(set(pc.filter(table.column("date"), outside).to_pylist()))
        raise RuntimeError(
            f"{table_name}: the API returned rows for {stray[0]} outside the requested days "
            f"{days[0]}..{days[-1]}; nothing was written for them."
        )


def _chunks(days: list[date], size: int) -> Iterator[list[date]]:
    for i in range(0, len(days), size):
        yield days[i : i + size]


def _stamp(context: dg.AssetExecutionContext, id_value: str) -> tuple[object, ...]:
    """The stamp values after the connector's columns: the account's (or pixel's) id, then the load's."""
    return (id_value, datetime.now(timezone.utc).replace(tzinfo=None), context.run.run_id)


def load_insights(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gate: QualityGate, client: MetaClient
) -> dg.MaterializeResult:
    days = days_in(context, trailing_days=META_TRAILING_DAYS)
    stamp = _stamp(context, client.config.ad_account_id)
    use_async = len(days) > client.config.async_min_days
    # a short range is one synchronous call for all its days (time_increment=1 splits them)
    groups = list(_chunks(days, ASYNC_CHUNK_DAYS)) if use_async else [days]
    spend = 0.0

    def fetch_group(group: list[date]) -> pa.Table:
        # Runs on a worker thread (orchestration/fetching.py) while the group before is written.
        return _stamped(client.insights(group[0], group[-1]), INSIGHTS, stamp)

    def split(group: list[date], table: pa.Table) -> Iterator[tuple[list[date], dict[str, pa.Table]]]:
        # A group's days came in one answer: they are held, checked and written together.
        nonlocal spend
        _check_days(table, group, INSIGHTS_TABLE)
        spend += pc.sum(table.column("spend")).as_py() or 0.0
        yield group, {INSIGHTS_TABLE: table}

    total_rows = load_items(
        context,
        warehouse,
        [INSIGHTS_TABLE],
        groups,
        fetch_group,
        split,
        source="meta",
        gate=gate,
        total_days=len(days),
        label=INSIGHTS_TABLE,
    )[INSIGHTS_TABLE]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "first_day": days[0].isoformat(),
            "last_day": days[-1].isoformat(),
            "rows": total_rows,
            "spend": round(spend, 2),
            "async_report": use_async,
            "ad_account_id": client.config.ad_account_id,
            "table": INSIGHTS_TABLE,
        }
    )


def load_pixel_events(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gate: QualityGate, client: MetaClient
) -> dg.MaterializeResult:
    days = days_in(context, trailing_days=META_TRAILING_DAYS)
    pixel_id = client.config.pixel_id or ""
    stamp = _stamp(context, pixel_id)

    def fetch_group(group: list[date]) -> pa.Table:
        # Runs on a worker thread (orchestration/fetching.py) while the group before is written.
        return _stamped(client.pixel_events(group[0], group[-1]), PIXEL, stamp)

    def split(group: list[date], table: pa.Table) -> Iterator[tuple[list[date], dict[str, pa.Table]]]:
        # Before the days are held: a stray row refuses the group and the days held with it.
        _check_days(table, group, PIXEL_TABLE)
        yield group, {PIXEL_TABLE: table}

    # a month of hours a call (pages of 100 hours), not a call a day
    groups = list(_chunks(days, PIXEL_CHUNK_DAYS))
    total_rows = load_items(
        context,
        warehouse,
        [PIXEL_TABLE],
        groups,
        fetch_group,
        split,
        source="meta",
        gate=gate,
        total_days=len(days),
        label=PIXEL_TABLE,
    )[PIXEL_TABLE]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "first_day": days[0].isoformat(),
            "last_day": days[-1].isoformat(),
            "rows": total_rows,
            "pixel_id": pixel_id,
            "table": PIXEL_TABLE,
        }
    )


def build_meta_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = dict(
        group_name="ingest_meta",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=api_pool("meta"),
        kinds={"python", "duckdb"},
    )

    @dg.asset(
        key=["meta", "ad_insights_daily"],
        check_specs=[expectations_spec(["meta", "ad_insights_daily"])],
        description=(
            "Meta Marketing API insights at level=ad with time_increment=1: one row per day x ad that "
            "delivered, with campaign and ad set names, spend, impressions, reach, clicks, "
            "inline_link_clicks and the actions list (JSON text). Re-pulls the 7 trailing days "
            "(attribution window). Lands in raw_meta.ad_insights_daily."
        ),
        **common,
    )
    def ad_insights_daily(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, meta: MetaResource):
        with meta.client() as client:
            yield from gated(context, lambda gate: load_insights(context, warehouse, gate, client))

    @dg.asset(
        key=["meta", "pixel_events_hourly"],
        check_specs=[expectations_spec(["meta", "pixel_events_hourly"])],
        description=(
            "Meta pixel stats (aggregation=event): one row per UTC hour x event with its count, "
            "partitioned by the UTC day of the hour. Lands in raw_meta.pixel_events_hourly."
        ),
        **common,
    )
    def pixel_events_hourly(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, meta: MetaResource
    ):
        with meta.client() as client:
            yield from gated(context, lambda gate: load_pixel_events(context, warehouse, gate, client))

    return [ad_insights_daily, pixel_events_hourly]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Meta's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_meta_assets(partitions_def), meta_resource_from_env)
