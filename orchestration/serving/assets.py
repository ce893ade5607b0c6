"""Publish the marts to `SERVING_PATH` (default data/serving/marts.duckdb) for BI tools.

BI tools never open the working warehouse (DuckDB allows one writer, and a half-built night must
not be visible). The snapshot is written to a new file beside the target and renamed into place,
so a reader sees either the previous snapshot or the new one, whole.

The publish is a gate of its own: Dagster stops downstream steps after a failed blocking check only
within one run, so before writing anything the asset reads the latest evaluation of every check on
every asset upstream of it (from any run) and refuses while one of them stands failed at ERROR
severity. The previous snapshot then stays in place.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from orchestration.sources import SANDBOX, source_plan
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse
from orchestration.warehouse_io import open_waiting_for_lock

MARTS_SCHEMA = "marts"


def publish_snapshot(
    warehouse_path: str, serving_path: Path, run_id: str, info: Mapping[str, str | int] | None = None
) -> dict[str, int]:
    """Copy every table of the marts schema into a fresh file and rename it onto `serving_path`.

    `info`: more columns for the `_snapshot_info` row (what was loaded, which checks passed), so a
    reader of the snapshot alone, such as the report, can say so.

    Returns:
        Row counts per published table.
    """
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    tmp_path.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    try:
        # waits for a session holding the warehouse, as the loading steps do (WAREHOUSE_LOCK_WAIT_SECONDS)
        with open_waiting_for_lock(warehouse_path) as conn:
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
            extra = dict(info or {})
            conn.execute(
                "create table snapshot.main._snapshot_info as select ?::timestamp as published_at, "
                "? as run_id, ? as tables" + "".join(f", ? as {name}" for name in extra),
                [datetime.now(timezone.utc).replace(tzinfo=None), run_id, ",".join(tables), *extra.values()],
            )
            conn.execute("detach snapshot")
        os.replace(tmp_path, serving_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return counts


def upstream_check_keys(
    mart_keys: Iterable[dg.AssetKey],
    assets: Sequence[dg.AssetsDefinition | dg.AssetChecksDefinition | dg.AssetSpec],
) -> list[dg.AssetCheckKey]:
    """Every check (blocking or not) on the marts and on every asset they are built from."""
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    checks: dict[dg.AssetKey, set[dg.AssetCheckKey]] = {}
    for item in assets:
        specs = [item] if isinstance(item, dg.AssetSpec) else (getattr(item, "specs", None) or [])
        for spec in specs:
            parents.setdefault(spec.key, set()).update(dep.asset_key for dep in spec.deps)
        for check_key in getattr(item, "check_keys", ()):
            checks.setdefault(check_key.asset_key, set()).add(check_key)
    seen, frontier = set(), set(mart_keys)
    while frontier:
        seen |= frontier
        frontier = {p for key in frontier for p in parents.get(key, ())} - seen
    keys = [k for asset in seen for k in checks.get(asset, ())]
    return sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name))


def failed_gates(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> list[str]:
    """The checks whose latest completed evaluation failed at ERROR severity, each with why."""
    failed = []
    for key in check_keys:
        latest = _latest_completed(instance, key)
        if latest is None or latest.status.value != "FAILED":
            continue
        evaluation = latest.evaluation
        if evaluation is not None and evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        failed.append(
            f"{key.asset_key.to_user_string()}:{key.name} (run {latest.run_id[:8]}): {_why(evaluation)}"
        )
    return failed


def passed_checks(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> int:
    """How many of the checks passed at their latest completed evaluation."""
    latest = (_latest_completed(instance, key) for key in check_keys)
    return sum(1 for record in latest if record is not None and record.status.value == "SUCCEEDED")


def _latest_completed(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    # PLANNED: the step stopped before the check ran; the last completed evaluation stands.
    return next((r for r in history if r.status.value in ("SUCCEEDED", "FAILED")), None)


def sources_info() -> dict[str, str]:
    """The sources this refresh loaded and those it did not (with the settings that load them)."""
    plans = source_plan().values()
    return {
        "sources_loaded": ";".join(
            f"{p.source.title} ({'sandbox' if p.mode == SANDBOX else 'its API'})" for p in plans if p.loaded
        ),
        "sources_not_loaded": ";".join(
            f"{p.source.title} (set {p.source.how_to_configure()})" for p in plans if not p.loaded
        ),
    }


def _why(evaluation: dg.AssetCheckEvaluation | None) -> str:
    if evaluation is None:
        return "failed"
    if evaluation.description:
        return evaluation.description
    # dbt tests carry no description, only dbt's status and the count of rows the test returned.
    rows = evaluation.metadata.get("dagster_dbt/failed_row_count")
    if rows is not None:
        n = getattr(rows, "value", rows)
        return f"dbt test failed on {n} row(s); the test's SQL in dbt_project/ says what a failure means"
    return "failed"


def build_serving_asset(
    mart_keys: list[dg.AssetKey],
    serving_path: Path,
    gate_check_keys: Sequence[dg.AssetCheckKey] = (),
) -> dg.AssetsDefinition:
    """The snapshot asset; `gate_check_keys` are the checks whose failure keeps it unpublished."""
    gate_check_keys = list(gate_check_keys)

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
        failed = failed_gates(context.instance, gate_check_keys)
        if failed:
            raise dg.Failure(
                description=(
                    f"Not published: {len(failed)} blocking check(s) upstream stand failed, so BI tools keep "
                    f"the last good snapshot in {serving_path}. Fix the data and re-run the failed assets "
                    "(their checks then pass), then publish again. Failed: " + " | ".join(failed)
                ),
                metadata={
                    "failed_checks": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed)),
                    "checks_verified": len(gate_check_keys),
                },
            )
        context.log.info(f"Gate: the latest evaluation of all {len(gate_check_keys)} upstream checks passed")
        info = {
            **sources_info(),
            "checks_passed": passed_checks(context.instance, gate_check_keys),
            "checks_total": len(gate_check_keys),
        }
        counts = publish_snapshot(warehouse.path, serving_path, context.run.run_id, info)
        context.log.info(f"Published {len(counts)} tables to {serving_path}")
        return dg.MaterializeResult(
            metadata={
                "path": str(serving_path),
                "tables": len(counts),
                "checks_verified": len(gate_check_keys),
                **{f"rows.{name}": n for name, n in counts.items()},
            }
        )

    return marts_snapshot
