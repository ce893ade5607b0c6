"""Publish the marts to `SERVING_PATH` (default data/serving/marts.duckdb) for BI tools.

BI tools never open the working warehouse (DuckDB allows one writer, and a half-built night must
not be visible). The snapshot is written to a new file beside the target and renamed into place,
so a reader sees either the previous snapshot or the new one, whole.
"""

import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse

MARTS_SCHEMA = "marts"


def publish_snapshot(warehouse_path: str, serving_path: Path, run_id: str) -> dict[str, int]:
    """Copy every table of the marts schema into a fresh file and rename it onto `serving_path`.

    Returns:
        Row counts per published table.
    """
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    tmp_path.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    try:
        with duckdb.connect(warehouse_path) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "select table_name from information_schema.tables "
                    "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
                    [MARTS_SCHEMA],
                ).fetchall()
            ]
            if not tables:
                raise RuntimeError(
                    f"No tables in schema {MARTS_SCHEMA!r} of {warehouse_path}: build the dbt marts first."
                )
            quoted = str(tmp_path).replace("'", "''")
            conn.execute(f"attach '{quoted}' as snapshot")
            for table in tables:
                conn.execute(f"create table snapshot.main.{table} as select * from {MARTS_SCHEMA}.{table}")
                counts[table] = conn.execute(f"select count(*) from snapshot.main.{table}").fetchone()[0]
            conn.execute(
                "create table snapshot.main._snapshot_info as select ?::timestamp as published_at, "
                "? as run_id, ? as tables",
                [datetime.now(timezone.utc).replace(tzinfo=None), run_id, ",".join(tables)],
            )
            conn.execute("detach snapshot")
        os.replace(tmp_path, serving_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return counts


def build_serving_asset(mart_keys: list[dg.AssetKey], serving_path: Path) -> dg.AssetsDefinition:
    @dg.asset(
        key=["serving", "marts_snapshot"],
        group_name="serving",
        deps=mart_keys,
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=(
            f"The read-only snapshot BI tools open: every mart table copied into {serving_path}, "
            "published by writing a new file and renaming it into place."
        ),
    )
    def marts_snapshot(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        counts = publish_snapshot(warehouse.path, serving_path, context.run.run_id)
        context.log.info(f"Published {len(counts)} tables to {serving_path}")
        return dg.MaterializeResult(
            metadata={
                "path": str(serving_path),
                "tables": len(counts),
                **{f"rows.{name}": n for name, n in counts.items()},
            }
        )

    return marts_snapshot
