"""The quality gates as Dagster asset checks.

- `<stream>_expectations` (blocking): declared on every raw asset (`expectations_spec`). `gated`
  makes the step's `QualityGate`, hands it to the asset's load, which validates each batch with it
  before writing the batch, and reports what the gate recorded: one check result per asset. A
  refused batch yields a failed check (ERROR) naming the expectation, the bad-row count and
  samples, then fails the step: nothing downstream runs.
- `<stream>_freshness` (warn, not blocking): the last loaded day of the raw table against
  yesterday, allowing the source's publication lag (`freshness_lag_days` in
  orchestration/registry.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg

from connectors.errors import ConnectorConfigError, ConnectorError
from orchestration.ledger import add_coverage
from orchestration.quality.gate import QualityGate
from orchestration.quality.suites import FRESHNESS_MAX_LAG_DAYS
from orchestration.quality.validate import BatchResult, QualityGateError
from orchestration.redaction import redact, redacted_errors
from orchestration.warehouse import DuckDBWarehouse

EXPECTATIONS_SUFFIX = "_expectations"
FRESHNESS_SUFFIX = "_freshness"


def raw_table(key: dg.AssetKey) -> str:
    """`["ga4", "sessions_daily"]` -> `raw_ga4.sessions_daily` (docs/architecture.md §4)."""
    source, stream = key.path[-2], key.path[-1]
    return f"raw_{source}.{stream}"


def expectations_spec(key: Iterable[str] | dg.AssetKey) -> dg.AssetCheckSpec:
    key = dg.AssetKey.from_coercible(key)
    table = raw_table(key)
    return dg.AssetCheckSpec(
        name=f"{key.path[-1]}{EXPECTATIONS_SUFFIX}",
        asset=key,
        blocking=True,
        description=(
            f"Every batch bound for {table} meets its expectation suite (columns and types, unique "
            "and non-empty keys, value ranges, dates inside the partition, row volume against the "
            "trailing 28-day median) before it is committed. A failure refuses the batch, keeps the "
            "rows already loaded and stops everything downstream, the serving publish included."
        ),
    )


def _is_contract_break(exc: BaseException) -> bool:
    # The API answered (HTTP 200) but not in the shape the connector knows: a renamed or removed field.
    if not isinstance(exc, ConnectorError) or isinstance(exc, ConnectorConfigError):
        return False
    return getattr(exc, "status", None) == 200 or type(exc).__name__.endswith("SchemaError")


def _passed_result(key: dg.AssetKey, check_name: str, results: list[BatchResult]) -> dg.AssetCheckResult:
    warnings = [f.describe() for r in results for f in r.warnings]
    notes = [n for r in results for n in r.notes]
    metadata: dict[str, Any] = {
        "batches": len(results),
        "rows": sum(r.rows for r in results),
        "expectations_per_batch": max((r.expectations for r in results), default=0),
    }
    if warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings))
    if notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes[:20]))
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check_name,
        passed=not warnings,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(warnings)} warning(s): {warnings[0]}" if warnings else f"{len(results)} batch(es) passed"
        ),
        metadata=metadata,
    )


def _failed_result(key: dg.AssetKey, check_name: str, result: BatchResult) -> dg.AssetCheckResult:
    first = result.errors[0]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check_name,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.describe(),
        metadata={
            "expectation": first.expectation,
            "column": first.column or "",
            "bad_rows": first.unexpected_count,
            "samples": dg.MetadataValue.json(first.samples),
            "detail": first.detail,
            "days": ", ".join(d.isoformat() for d in result.days) or "snapshot",
            "failures": dg.MetadataValue.md("\n".join(f"- {f.describe()}" for f in result.errors)),
            "committed": False,
        },
    )


def _contract_result(key: dg.AssetKey, check_name: str, exc: BaseException) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check_name,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"The API's answer broke the connector's contract, nothing committed: {redact(str(exc))}",
        metadata={
            "expectation": "api_answer_matches_contract",
            "detail": redact(str(exc))[:500],
            "committed": False,
        },
    )


def gated(
    context: dg.AssetExecutionContext,
    body: Callable[[QualityGate], Any],
    keys: Iterable[dg.AssetKey] | None = None,
) -> Iterator[Any]:
    """Run an asset's load with a fresh gate, then yield its outputs plus one `<stream>_expectations`
    result per asset, from the results the gate kept; an error holding a configured secret leaves
    redacted (orchestration/redaction.py).

        yield from gated(context, lambda gate: load(context, warehouse, gate, ...))

    `keys`: the assets this body loads, when a step loads several one after the other (default:
    every asset the step materializes).
    """
    with redacted_errors():
        yield from _gated(context, body, context.selected_asset_keys if keys is None else set(keys))


def _gated(
    context: dg.AssetExecutionContext, body: Callable[[QualityGate], Any], keys: Iterable[dg.AssetKey]
) -> Iterator[Any]:
    """`gated` without the redaction.

    On a refused batch (or an answer that breaks the connector's contract) the failed check
    results are yielded first, so Dagster records them, then the error fails the step.
    """
    specs = [
        spec
        for spec in context.assets_def.check_specs
        if spec.name.endswith(EXPECTATIONS_SUFFIX) and spec.asset_key in keys
    ]
    gate = QualityGate()
    try:
        out = body(gate)
        events = list(out) if inspect.isgenerator(out) else [out]
        add_coverage(context, keys)  # the days the warehouse holds, from its ledger (orchestration/ledger.py)
    except QualityGateError as exc:
        for spec in specs:
            table = raw_table(spec.asset_key)
            if exc.result.table == table:
                yield _failed_result(spec.asset_key, spec.name, exc.result)
            else:
                yield _passed_result(spec.asset_key, spec.name, gate.results_for(table))
        context.log.error(str(exc))
        raise
    except Exception as exc:
        if _is_contract_break(exc):
            for spec in specs:
                yield _contract_result(spec.asset_key, spec.name, exc)
        raise
    yield from events
    for spec in specs:
        yield _passed_result(spec.asset_key, spec.name, gate.results_for(raw_table(spec.asset_key)))


def _yesterday() -> date:
    return date.today() - timedelta(days=1)


def build_freshness_checks(
    assets: Iterable[dg.AssetsDefinition | dg.AssetSpec],
) -> list[dg.AssetChecksDefinition]:
    """A warn-only freshness check for every raw table with a lag in FRESHNESS_MAX_LAG_DAYS."""
    keys = []
    for item in assets:
        for key in getattr(item, "keys", None) or [getattr(item, "key", None)]:
            if key is not None and raw_table(key) in FRESHNESS_MAX_LAG_DAYS:
                keys.append(key)
    return [_freshness_check(key) for key in sorted(set(keys), key=lambda k: k.to_user_string())]


def _freshness_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    table = raw_table(key)
    max_lag = FRESHNESS_MAX_LAG_DAYS[table]

    @dg.asset_check(
        asset=key,
        name=f"{key.path[-1]}{FRESHNESS_SUFFIX}",
        blocking=False,
        # No pool: it opens the warehouse for one select (waiting, bounded, for a writer's lock).
        description=(
            f"The last day loaded into {table} is at most {max_lag} day(s) before yesterday (the "
            "source's publication lag). Warns only: stale data is old, not wrong."
        ),
    )
    def freshness(warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            try:
                last = conn.execute(f"select max(date) from {table}").fetchone()[0]
            except Exception:  # the table was never loaded
                last = None
        yesterday = _yesterday()
        if last is None:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{table} holds no day yet",
                metadata={"last_loaded_day": "none", "max_lag_days": max_lag},
            )
        behind = (yesterday - last).days
        return dg.AssetCheckResult(
            passed=behind <= max_lag,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{table} is stale: last loaded day {last}, {behind} day(s) before yesterday "
                f"(allowed {max_lag})"
                if behind > max_lag
                else f"last loaded day {last} ({behind} day(s) before yesterday, allowed {max_lag})"
            ),
            metadata={"last_loaded_day": last.isoformat(), "days_behind": behind, "max_lag_days": max_lag},
        )

    return freshness
