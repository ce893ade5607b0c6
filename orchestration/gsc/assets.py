"""Daily Search Console assets: `["gsc", "queries_daily"]` and `["gsc", "totals_daily"]` land in raw_gsc.*.

A run asks Search Console for its days in as few queries as the API allows (final data only, the
date dimension, pages of 25,000 rows: connectors/gsc.py, `queries_days` and `totals_days`), splits
the rows into days, stamps them with load metadata and swaps them into the table by day, a batch
of days per transaction (orchestration/fetching.py). A backfill runs as one run over a range of
days (single-run policy).

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

from connectors.gsc import GSCClient
from orchestration.fetching import api_pool, load_items
from orchestration.gsc.resources import GSCResource, gsc_resource_from_env
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate
from orchestration.registry import RawTable, raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

# Search Console finalises a day after 2-3 days and still revises it a little after, so the
# nightly run re-pulls yesterday and the 4 days before.
GSC_TRAILING_DAYS = 4

QUERIES = raw_table("raw_gsc.queries_daily")
TOTALS = raw_table("raw_gsc.totals_daily")
# The load stamp both tables carry (orchestration/registry.py).
METADATA_FIELDS = list(QUERIES.stamp)
# (run id, site, first day without final rows, last day) -> Search Console's first incomplete day
_INCOMPLETE: dict[tuple[str, str, date, date], date | None] = {}
_INCOMPLETE_LOCK = threading.Lock()


def _stamped(table: pa.Table, stamp: dict) -> pa.Table:
    return QUERIES.stamped(table, stamp["site_url"], stamp["loaded_at"], stamp["run_id"])


def load_query_days(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    gate: QualityGate,
    client: GSCClient,
    fetch: Callable[[GSCClient, date, date], Iterator[tuple[date, pa.Table]]],
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

    def is_final(day: date) -> bool:
        # Only a day that answered no final rows can be one Search Console is still collecting;
        # the API says which (dataState "all" carries metadata.firstIncompleteDate), once a run:
        # the other Search Console asset of the run, in this process, takes the same answer.
        if not asked:
            key = (context.run.run_id, client.config.site_url, day, days[-1])
            with _INCOMPLETE_LOCK:
                if key not in _INCOMPLETE:
                    _INCOMPLETE[key] = client.first_incomplete_date(day, days[-1])
                asked.append(_INCOMPLETE[key])
        first_incomplete = asked[0]
        return first_incomplete is None or day < first_incomplete

    def fetch_range(group: list[date]) -> Iterator[tuple[date, pa.Table]]:
        # Lazy: the queries are asked while `split` hands their days over.
        return fetch(client, group[0], group[-1])

    def split(group: list[date], fetched: Iterator[tuple[date, pa.Table]]):
        for day, day_rows in fetched:
            if day_rows.num_rows == 0 and not is_final(day):
                # Not written: the day stays not loaded (no rows, no false zero) until a night when
                # Search Console calls it final; its partition's metadata says so.
                not_final.append(day)
                if context.has_partition_key or context.has_partition_key_range:  # not in a history load
                    # (no "rows" here: a range run's per-day entries would override the run's total)
                    context.add_asset_metadata(
                        {"final": False, "loaded": False}, partition_key=day.isoformat()
                    )
                continue
            if day_rows.num_rows == 0:
                empty_days.append(day.isoformat())
            yield [day], {table_name: _stamped(day_rows, stamp)}

    total_rows = load_items(
        context,
        warehouse,
        [table_name],
        [days],  # days_in gives consecutive days: as few queries as their rows allow
        fetch_range,
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
        table: RawTable,
        fetch: Callable[[GSCClient, date, date], Iterator[tuple[date, pa.Table]]],
        description: str,
    ):
        @dg.asset(
            key=list(table.asset_key),
            check_specs=[expectations_spec(table.asset_key)],
            description=f"{description} Lands in {table.name}.",
            group_name="ingest_gsc",
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=api_pool("gsc"),
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
        GSCClient.queries_days,
        "Search Console searchAnalytics.query (web, dataState final), one row per date x query x "
        "page x device x country; clicks, impressions, ctr, position. Anonymized queries are not "
        "in these rows.",
    )
    totals = query_asset(
        TOTALS,
        GSCClient.totals_days,
        "Search Console searchAnalytics.query grouped by date only: every click and impression "
        "of the day, anonymized queries included (totals minus query rows = anonymized clicks).",
    )
    return [queries, totals]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Search Console's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_gsc_assets(partitions_def), gsc_resource_from_env)
