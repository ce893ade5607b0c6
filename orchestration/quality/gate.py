"""The gate the warehouse writes pass through: validate, record, refuse.

`check_batch` is what `replace_days` / `replace_table` call before their transaction. Results are
also collected for the asset step that is running (see `collecting`), so its asset check can show
every batch it validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

import pyarrow as pa

from orchestration.quality.suites import suite_for
from orchestration.quality.validate import BatchResult, QualityGateError, validate_batch

_RESULTS: ContextVar[list[BatchResult] | None] = ContextVar("quality_results", default=None)


def check_batch(table_name: str, rows: pa.Table, days: list[date] | None, conn: Any) -> BatchResult | None:
    """Validate a batch that is about to be committed; raise QualityGateError when it fails."""
    if suite_for(table_name) is None:
        return None
    result = validate_batch(table_name, rows, days, conn)
    collected = _RESULTS.get()
    if collected is not None:
        collected.append(result)
    if not result.passed:
        raise QualityGateError(result)
    return result


@contextmanager
def collecting() -> Iterator[list[BatchResult]]:
    """Collect the results of every batch validated inside the block."""
    results: list[BatchResult] = []
    token = _RESULTS.set(results)
    try:
        yield results
    finally:
        _RESULTS.reset(token)
