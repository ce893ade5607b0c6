"""Daily Search Console assets: `["gsc", "queries_daily"]` and `["gsc", "totals_daily"]` land in raw_gsc.*.

Each day is fetched page by page (final data only), stamped with load metadata and swapped into
its table in one transaction; the next days are fetched while one is written
(orchestration/fetching.py). A backfill runs as one run over a range of days (single-run
policy).

A day Search Console has not finalised yet (its final data is empty and the API's
`metadata.firstIncompleteDate` says it is still being collected) is not written: the table holds
no rows for it rather than a false zero. Its partition is still materialized, since a single-run
range materializes every day of the range and an asset that yields no output skips dbt downstream,
so its partition metadata says `final: false, loaded: false`, the asset's metadata lists it
(`not_final`), the run's summary names it, and the nightly run re-pulls it (the 4 trailing days)
until it is final.
"""

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa

from connectors.gsc import GSCClient, QueryPage
from orchestration.fetching import load_items
from orchestration.gsc.resources import GSCResource, gsc_resource_from_env
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate
from orchestration.registry import RawTable, raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse

# Search Console finalises a day after 2-3 days and still revises it a little after, so the
# nightly run re-pulls yesterday and the 4 days before.
GSC_TRAILING_DAYS = 4

QUERIES = raw_table("raw_gsc.queries_daily")
TOTALS = raw_table("raw_gsc.totals_daily")
# The load stamp both tables carry (orchestration/registry.py).
METADATA_FIELDS = list(QUERIES.stamp)


def _day_table(pages: Iterator[QueryPage], schema: pa.Schema, stamp: dict) -> pa.Table:
    table = pa.Table.from_batches([page.batch for page in pages], schema=schema)
    return QUERIES.stamped(table, stamp["site_url"], stamp["loaded_at"], stamp["run_id"])


def load_query_days(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    gate: QualityGate,
    client: GSCClient,
    fetch: Callable[[GSCClient, date], Iterator[QueryPage]],
    table: RawTable,
) -> dg.MaterializeResult:
    table_name = table.name
    days = days_in(context, trailing_days=GSC_TRAILING_DAYS)
    stamp = {
        "site_url": client.config.site_url,
        "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "run_id": context.run.run_id,
    }
    empty_days: list[str] = []
    not_final: list[date] = []
    asked: list[date | None] = []  # the API's first incomplete day, asked once per run
    lock = threading.Lock()

    def is_final(day: date) -> bool:
        # Only a day that answered no final rows can be one Search Console is still collecting;
        # the API says which (dataState "all" carries metadata.firstIncompleteDate), once a run.
        with lock:
            if not asked:
                asked.append(client.first_incomplete_date(day, days[-1]))
            first_incomplete = asked[0]
        return first_incomplete is None or day < first_incomplete

    def fetch_day(day: date) -> tuple[pa.Table, bool]:
        # Runs on a worker thread (orchestration/fetching.py) while the day before is written.
        rows = _day_table(fetch(client, day), table.columns, stamp)
        return rows, rows.num_rows > 0 or is_final(day)

    def split(day: date, fetched: tuple[pa.Table, bool]):
        rows, final = fetched
        if not final:
            # Not written: the day stays not loaded (no rows, no false zero) until a night when
            # Search Console calls it final; its partition's metadata says so.
            not_final.append(day)
            if context.has_partition_key or context.has_partition_key_range:  # not in a history load
                # (no "rows" here: a range run's per-day entries would override the run's total)
                context.add_asset_metadata({"final": False, "loaded": False}, partition_key=day.isoformat())
            return
        if rows.num_rows == 0:
            empty_days.append(day.isoformat())
        yield [day], {table_name: rows}

    total_rows = load_items(
        context,
        warehouse,
        [table_name],
        days,
        fetch_day,
        split,
        source="gsc",
        gate=gate,
        total_days=len(days),
        label=table_name,
    )[table_name]
    if empty_days:
        context.log.info(
            f"{table_name}: no rows in the final data of {len(empty_days)} day(s), last {empty_days[-1]}"
        )
    if not_final:
        context.log.warning(
            f"{table_name}: {len(not_final)} day(s) not final yet in Search Console, not loaded: "
            f"{not_final[0]}..{not_final[-1]}; the nightly run re-pulls them until they are"
        )
    final_days = [d for d in days if d not in not_final]
    return dg.MaterializeResult(
        metadata={
            "days": len(days),
            "first_day": days[0].isoformat(),
            "last_day": days[-1].isoformat(),
            "rows": total_rows,
            "days_without_rows": len(empty_days),
            "final_days": len(final_days),
            "not_final_days": len(not_final),
            "not_final": ", ".join(d.isoformat() for d in not_final) or "none",
            "site_url": stamp["site_url"],
            "table": table_name,
        }
    )


def build_gsc_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    def query_asset(
        table: RawTable, fetch: Callable[[GSCClient, date], Iterator[QueryPage]], description: str
    ):
        @dg.asset(
            key=list(table.asset_key),
            check_specs=[expectations_spec(table.asset_key)],
            description=f"{description} Lands in {table.name}.",
            group_name="ingest_gsc",
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=WAREHOUSE_POOL,
            kinds={"python", "duckdb"},
        )
        def query(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, gsc: GSCResource):
            with gsc.client() as client:
                yield from gated(
                    context, lambda gate: load_query_days(context, warehouse, gate, client, fetch, table)
                )

        return query

    queries = query_asset(
        QUERIES,
        GSCClient.queries,
        "Search Console searchAnalytics.query (web, dataState final), one row per date x query x "
        "page x device x country; clicks, impressions, ctr, position. Anonymized queries are not "
        "in these rows.",
    )
    totals = query_asset(
        TOTALS,
        GSCClient.totals,
        "Search Console searchAnalytics.query grouped by date only: every click and impression "
        "of the day, anonymized queries included (totals minus query rows = anonymized clicks).",
    )
    return [queries, totals]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Search Console's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_gsc_assets(partitions_def), gsc_resource_from_env)
