"""Loads a fixed sandbox range through the source assets and dumps their raw tables, so a change to
how rows are fetched can be checked against the rows an earlier version of the code loaded.

    python tests/orchestration/raw_rows_load.py OUT_DIR   # run from a checkout's root

Writes one Parquet file per raw table (every column but the load stamps, rows sorted) into
OUT_DIR. tests/fixtures/raw_rows/ holds what main's code loaded before the fewest-calls change
(issue 15 point 3), made with this script on a copy of main; test_same_raw_rows.py loads the same
range with the branch's code and compares. It uses only what both versions have: the assets'
builders, the resources' sandbox mode and a sandbox pinned to TODAY (SANDBOX_URL).
"""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

# The sandbox's "today" and the range: fixed, so the data (replies visible so far included) is too.
TODAY = date(2026, 6, 20)
FIRST_DAY = date(2026, 5, 27)
LAST_DAY = date(2026, 6, 16)  # 21 days, ending before Search Console's and GA4's unfinished days
SOURCES = ("slack", "ga4", "gsc", "meta", "discourse")
STAMPS = ("_loaded_at", "_run_id", "_forum_url")  # the sandbox forum's address has a new port each run


def load(out_dir: Path, workdir: Path) -> dict[str, int]:
    """Load FIRST_DAY..LAST_DAY of every source in SOURCES from a pinned small sandbox into a fresh
    warehouse in `workdir`; write the raw tables to `out_dir`; return rows per table."""
    os.environ.setdefault("SANDBOX_SCALE", "small")
    os.environ["RATE_LIMITS"] = "off"
    import dagster as dg
    import duckdb

    from connectors.sandbox.server import SandboxServer
    from orchestration.discourse.assets import build_discourse_assets
    from orchestration.discourse.resources import discourse_resource_from_env
    from orchestration.ga4.assets import build_ga4_assets
    from orchestration.ga4.resources import ga4_resource_from_env
    from orchestration.gsc.assets import build_gsc_assets
    from orchestration.gsc.resources import gsc_resource_from_env
    from orchestration.meta.assets import build_meta_assets
    from orchestration.meta.resources import meta_resource_from_env
    from orchestration.partitions import daily_partitions
    from orchestration.settings import Settings
    from orchestration.slack.assets import build_slack_assets
    from orchestration.slack.resources import slack_resource_from_env
    from orchestration.warehouse import DuckDBWarehouse

    builders = {
        "slack": (build_slack_assets, slack_resource_from_env),
        "ga4": (build_ga4_assets, ga4_resource_from_env),
        "gsc": (build_gsc_assets, gsc_resource_from_env),
        "meta": (build_meta_assets, meta_resource_from_env),
        "discourse": (build_discourse_assets, discourse_resource_from_env),
    }
    warehouse_path = workdir / "warehouse.duckdb"
    settings = Settings(
        warehouse_path=warehouse_path,
        serving_path=workdir / "serving.duckdb",
        history_start=FIRST_DAY - timedelta(days=5),
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )
    partitions = daily_partitions(settings)
    tags = {
        "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
        "dagster/asset_partition_range_end": LAST_DAY.isoformat(),
    }
    sandbox = SandboxServer(seed=42, scale="small", today=TODAY).start()
    previous = os.environ.get("SANDBOX_URL")
    os.environ["SANDBOX_URL"] = sandbox.base_url
    try:
        for name in SOURCES:
            build, resource = builders[name]
            assets = [a for a in build(partitions) if isinstance(a, dg.AssetsDefinition)]
            resources = {"warehouse": DuckDBWarehouse(path=str(warehouse_path)), name: resource(sandbox=True)}
            partitioned = [a for a in assets if a.partitions_def is not None]
            whole = [a for a in assets if a.partitions_def is None]
            if whole:
                assert dg.materialize(whole, resources=resources).success
            assert dg.materialize(partitioned, tags=tags, resources=resources).success
    finally:
        sandbox.stop()
        if previous is None:
            os.environ.pop("SANDBOX_URL", None)
        else:
            os.environ["SANDBOX_URL"] = previous
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        tables = conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('raw_slack', 'raw_ga4', 'raw_gsc', 'raw_meta', 'raw_discourse') "
            "order by 1"
        ).fetchall()
        for (table,) in tables:
            listed = unstamped_columns(conn, table)
            path = out_dir / f"{table}.parquet"
            conn.execute(f"copy (select {listed} from {table} order by all) to '{path}' (format parquet)")
            counts[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]
    return counts


if __name__ == "__main__":
    import tempfile

    out = Path(sys.argv[1]).resolve()
    sys.path.insert(0, os.getcwd())
    with tempfile.TemporaryDirectory(prefix="raw-rows-") as tmp:
        for table, n in load(out, Path(tmp)).items():
            print(f"{table}: {n} rows")


def unstamped_columns(conn, table: str) -> str:
    """`table`'s columns but its load stamps, quoted and listed for a select, in table order."""
    columns = [
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema || '.' || table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        if c not in STAMPS
    ]
    return ", ".join(f'"{c}"' for c in columns)
