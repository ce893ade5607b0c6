"""Daily Meta assets: ["meta", "ad_insights_daily"] and ["meta", "pixel_events_hourly"] -> raw_meta.*.

Insights of a day keep changing for the attribution window, so the nightly run re-pulls yesterday
and the 7 days before (8 days: one synchronous request per day). A backfill runs as one run over
its range (single-run policy); a range longer than META_ASYNC_MIN_DAYS loads through Meta's async
report, one report per chunk of up to 31 days, each chunk swapped in by one transaction. Pixel
events are loaded per UTC day. The next days or chunks are fetched while one is written
(orchestration/fetching.py). A failed day or chunk leaves what was loaded before untouched.
"""

import warnings
from collections.abc import Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from connectors.meta import INSIGHTS_SCHEMA, PIXEL_SCHEMA, MetaClient
from orchestration.fetching import load_days, prefetched
from orchestration.meta.resources import MetaResource
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse, replace_days, stamped

# Meta's default attribution (7-day click) revises a day's conversions for a week.
META_TRAILING_DAYS = 7
# Days per async insights report in a backfill: one transaction and one report each.
ASYNC_CHUNK_DAYS = 31

INSIGHTS_TABLE = "raw_meta.ad_insights_daily"
PIXEL_TABLE = "raw_meta.pixel_events_hourly"


def _stamped(batches: Iterator[pa.RecordBatch], schema: pa.Schema, stamp: dict[str, object]) -> pa.Table:
    table = pa.Table.from_batches(list(batches), schema=schema)
    return stamped(
        table,
        [
            (pa.field(name, pa.timestamp("us") if name == "_loaded_at" else pa.string()), v)
            for name, v in stamp.items()
        ],
    )


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


def _stamp(context: dg.AssetExecutionContext, id_column: str, id_value: str) -> dict[str, object]:
    return {
        id_column: id_value,
        "_loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "_run_id": context.run.run_id,
    }


def load_insights(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, client: MetaClient
) -> dg.MaterializeResult:
    days = days_in(context, trailing_days=META_TRAILING_DAYS)
    stamp = _stamp(context, "_account_id", client.config.ad_account_id)
    use_async = len(days) > client.config.async_min_days
    groups = list(_chunks(days, ASYNC_CHUNK_DAYS)) if use_async else [[d] for d in days]
    total_rows, spend, loaded = 0, 0.0, 0

    def fetch_group(group: list[date]) -> pa.Table:
        # Runs on a worker thread (orchestration/fetching.py) while the group before is written.
        return _stamped(client.insights(group[0], group[-1]), INSIGHTS_SCHEMA, stamp)

    with warehouse.connect() as conn, prefetched(groups, fetch_group, source="meta") as fetched:
        for group, table in fetched:
            _check_days(table, group, INSIGHTS_TABLE)
            total_rows += replace_days(conn, INSIGHTS_TABLE, group, table)
            spend += pc.sum(table.column("spend")).as_py() or 0.0
            loaded += len(group)
            context.log.info(
                f"{INSIGHTS_TABLE}: {loaded}/{len(days)} days loaded "
                f"({'async report' if use_async else 'sync'}), {total_rows:,} rows so far"
            )
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
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, client: MetaClient
) -> dg.MaterializeResult:
    days = days_in(context, trailing_days=META_TRAILING_DAYS)
    pixel_id = client.config.pixel_id or ""
    stamp = _stamp(context, "_pixel_id", pixel_id)

    def fetch_day(day: date) -> pa.Table:
        # Runs on a worker thread (orchestration/fetching.py) while the day before is written.
        return _stamped(client.pixel_events(day), PIXEL_SCHEMA, stamp)

    def check_day(day: date, table: pa.Table) -> None:
        # Before the day is held: a stray row refuses the day and the days held with it.
        _check_days(table, [day], PIXEL_TABLE)

    total_rows = load_days(context, warehouse, PIXEL_TABLE, days, fetch_day, source="meta", on_day=check_day)
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
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
    common = dict(
        group_name="ingest_meta",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
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
            yield from gated(context, lambda: load_insights(context, warehouse, client))

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
            yield from gated(context, lambda: load_pixel_events(context, warehouse, client))

    return [ad_insights_daily, pixel_events_hourly]
