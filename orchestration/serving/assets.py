"""Publish the marts to `SERVING_PATH` (default data/serving/marts.duckdb) for BI tools.

BI tools never open the working warehouse (DuckDB allows one writer, and a half-built night must
not be visible). The snapshot is written to a new file beside the target and renamed into place,
so a reader sees either the previous snapshot or the new one, whole; the new file starts as a copy
of the last snapshot with only what changed since replaced (publish.py).

The publish is a gate of its own: Dagster stops downstream steps after a failed blocking check only
within one run, so before writing anything the asset reads the latest evaluation of every check on
every asset upstream of it (from any run) and refuses while one of them stands failed at ERROR
severity. The previous snapshot then stays in place.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import dagster as dg

from orchestration.serving.publish import publish_snapshot
from orchestration.sources import SANDBOX, source_plan
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse


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


# Checks per query of their latest executions: each adds two bound values (asset key, check name),
# well under the 999 of an old SQLite.
_LATEST_BATCH = 200
# The statuses of a check execution that ran to its end (PLANNED: its step stopped before it ran).
_COMPLETED = ("SUCCEEDED", "FAILED")


def latest_evaluations(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> dict:
    """The latest completed evaluation of each check (None: never completed), read once for the
    gate and the count of passed checks. The latest execution of every check comes from one query
    per batch (one query per check, ~420 of them, took 2-4 s of the publish step on a loaded night);
    only a check whose latest execution did not complete (planned in a run that stopped first, or
    skipped) has its history read for the last one that did."""
    keys = list(check_keys)
    latest = {}
    for start in range(0, len(keys), _LATEST_BATCH):
        batch = keys[start : start + _LATEST_BATCH]
        latest.update(instance.event_log_storage.get_latest_asset_check_execution_by_key(batch))
    evaluations = {}
    for key in keys:
        record = latest.get(key)
        if record is not None and record.status.value not in _COMPLETED:
            record = _latest_completed(instance, key)
        evaluations[key] = record
    return evaluations


def failed_gates(
    instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey], latest: dict | None = None
) -> list[str]:
    """The checks whose latest completed evaluation failed at ERROR severity, each with why
    (`latest`: from latest_evaluations, else read here)."""
    latest = latest_evaluations(instance, check_keys) if latest is None else latest
    failed = []
    for key, record in latest.items():
        if record is None or record.status.value != "FAILED":
            continue
        evaluation = record.evaluation
        if evaluation is not None and evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        failed.append(
            f"{key.asset_key.to_user_string()}:{key.name} (run {record.run_id[:8]}): {_why(evaluation)}"
        )
    return failed


def passed_checks(latest: dict) -> int:
    """How many of the checks passed at their latest completed evaluation (`latest`: from
    latest_evaluations)."""
    return sum(1 for record in latest.values() if record is not None and record.status.value == "SUCCEEDED")


def _latest_completed(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    # PLANNED: the step stopped before the check ran; the last completed evaluation stands.
    return next((r for r in history if r.status.value in _COMPLETED), None)


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
            "published by writing a new file (a copy of the last one with the changed tables and days "
            "replaced) and renaming it into place."
        ),
    )
    def marts_snapshot(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        latest = latest_evaluations(context.instance, gate_check_keys)
        failed = failed_gates(context.instance, gate_check_keys, latest)
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
            "checks_passed": passed_checks(latest),
            "checks_total": len(gate_check_keys),
        }
        published = publish_snapshot(warehouse.path, serving_path, context.run.run_id, info)
        context.log.info(f"Published {len(published.counts)} tables to {serving_path}: {published.summary()}")
        return dg.MaterializeResult(
            metadata={
                "path": str(serving_path),
                "tables": len(published.counts),
                "published_as": published.summary(),
                "checks_verified": len(gate_check_keys),
                **{f"rows.{name}": n for name, n in published.counts.items()},
            }
        )

    return marts_snapshot
