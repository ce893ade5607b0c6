"""The quality gate a batch passes before it is written: validate, record, refuse.

An asset holds one `QualityGate` for its step and hands it to its load (see `gated` in
orchestration/quality/checks.py); the load calls `gate.check(...)` on each batch and writes the batch
only when that returns (orchestration/fetching.py, `DayBatches.flush`; `write_snapshot` for whole
tables). The gate keeps every result, which the asset then reports as its `<stream>_expectations`
check: where a batch passes or fails is the line that calls `check`, not a side effect of storage.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from orchestration.quality.suites import suite_for
from orchestration.quality.validate import BatchResult, QualityGateError, validate_batch
from orchestration.warehouse import replace_table


class QualityGate:
    """Validates the batches of one asset step and keeps their results, in order."""

    def __init__(self) -> None:
        self.results: list[BatchResult] = []

    def check(
        self, table_name: str, rows: pa.Table, days: list[date] | None, conn: Any
    ) -> BatchResult | None:
        """Validate a batch about to be written to `table_name` (`days`: the days it replaces, None
        for a whole table; `conn`: the warehouse, for the volume history).

        Returns:
            The result, or None for a table without a suite.
        Raises:
            QualityGateError: the batch fails an expectation; the caller must not write it.
        """
        if suite_for(table_name) is None:
            return None
        result = validate_batch(table_name, rows, days, conn)
        self.results.append(result)
        if not result.passed:
            raise QualityGateError(result)
        return result

    def results_for(self, table_name: str) -> list[BatchResult]:
        return [r for r in self.results if r.table == table_name]


def write_snapshot(
    conn: duckdb.DuckDBPyConnection, gate: QualityGate, table_name: str, rows: pa.Table
) -> int:
    """Validate a whole-table snapshot, then replace the table by it; returns the rows written."""
    gate.check(table_name, rows, None, conn)
    return replace_table(conn, table_name, rows)
