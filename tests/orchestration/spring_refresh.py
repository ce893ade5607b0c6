"""The spring refresh: one real refresh of the small sandbox brand over SPRING_FIRST_DAY ..
SPRING_LAST_DAY (the 28 days before the Meta flight "Spring brand awareness", 2026-03-02 ..
2026-03-29, the flight and the 7 days after it: connectors/sandbox/brand.py), through the
definitions' own job (every source, `dbt build` of every model and its checks, the snapshot, the
report). The report's browser test and the campaign halo's truth test read it (the session fixture
`spring_refresh`, tests/orchestration/conftest.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from orchestration.jobs import range_tags
from orchestration.settings import Settings

SPRING_FIRST_DAY = date(2026, 2, 2)
SPRING_LAST_DAY = date(2026, 4, 5)


def run_spring_refresh(tmp: Path):
    """`(settings, result, defs)` of the refresh into a warehouse, snapshot and report under `tmp`.
    The run is kept on Dagster's in-memory instance: its readers read the files and the result's
    events, not the run storage (the SQLite instance opens its files anew for each of the run's
    ~1,400 events). It may have failed: a reader asserts `result.success` first."""
    from orchestration.definitions import build_definitions

    settings = Settings(
        warehouse_path=tmp / "warehouse.duckdb",
        serving_path=tmp / "serving" / "marts.duckdb",
        history_start=SPRING_FIRST_DAY,
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
        report_path=tmp / "published" / "report.html",
    )
    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh_warehouse")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=range_tags(SPRING_FIRST_DAY.isoformat(), SPRING_LAST_DAY.isoformat()),
            raise_on_error=False,
        )
    return settings, result, defs
