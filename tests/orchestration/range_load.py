"""One source's daily assets materialized over a range of days, as a backfill or the nightly runs
them: the call-count tests (test_ga4_calls, test_gsc_calls, test_meta_calls) count what it asks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from orchestration.partitions import NIGHTLY_TAG, daily_partitions
from orchestration.settings import Settings
from orchestration.warehouse import DuckDBWarehouse


def load_range(
    tmp_path: Path, build_assets, resources: dict, first: date, last: date, history_start: date, nightly=False
) -> Settings:
    """Materialize one source's daily assets (`build_assets(partitions_def)`) over first..last as one
    run into a warehouse under tmp_path, as a backfill (or, with `nightly`, the nightly) runs them."""
    settings = Settings(
        warehouse_path=tmp_path / "warehouse.duckdb",
        serving_path=tmp_path / "serving.duckdb",
        history_start=history_start,
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    if nightly:
        tags[NIGHTLY_TAG] = "true"
    resources = {"warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)), **resources}
    assets = [a for a in build_assets(daily_partitions(settings)) if isinstance(a, dg.AssetsDefinition)]
    assert dg.materialize(assets, tags=tags, resources=resources).success
    return settings
