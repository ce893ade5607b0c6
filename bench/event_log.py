"""Dagster's CPU per recorded materialization: its own SQLite event log vs the project's
(orchestration/event_log.py, configured in dagster_home/dagster.yaml), side by side.

    python -m bench.event_log                 # 3 assets x 300 days, 3 rounds alternating
    python -m bench.event_log --days 120 --rounds 1

Each measurement is a fresh child process with a fresh DAGSTER_HOME: one single-run backfill of
`--assets` daily-partitioned assets over `--days` days (what `make demo` does for every source),
with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true as the demo sets it. Printed: the run's
CPU seconds in the child and per materialization, and the ratio ours / Dagster's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.ingest import _in_child

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)


def _measure(storage: str, assets: int, days: int) -> tuple[float, int]:
    home = tempfile.mkdtemp(prefix="bench-event-log-")
    try:
        os.environ["DAGSTER_HOME"] = home
        os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
        if storage == "ours":
            shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home)
        else:
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        import warnings

        import dagster as dg

        warnings.simplefilter("ignore")  # the beta warning of backfill_policy, once per asset
        partitions = dg.DailyPartitionsDefinition(start_date=START.isoformat())

        def make(i: int):
            @dg.asset(
                key=["bench", f"daily_{i}"],
                partitions_def=partitions,
                backfill_policy=dg.BackfillPolicy.single_run(),
            )
            def daily(context):
                return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})

            return daily

        instance = dg.DagsterInstance.get()
        last = START + timedelta(days=days - 1)
        started = time.process_time()
        result = dg.materialize(
            [make(i) for i in range(assets)],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": START.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        cpu = time.process_time() - started
        events = sum(1 for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
        instance.dispose()
        return cpu, events
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=3)
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cpu: dict[str, list[float]] = {"dagster": [], "ours": []}
    events = 0
    for _ in range(args.rounds):
        for storage in ("dagster", "ours"):
            seconds, events = _in_child(_measure, storage, args.assets, args.days)
            cpu[storage].append(seconds)
            print(f"  {storage:8s} {events:,} materializations, {seconds:.2f} s CPU")
    dagster, ours = statistics.median(cpu["dagster"]), statistics.median(cpu["ours"])
    print("event log   run CPU (median)  ms per materialization")
    print(f"dagster     {dagster:8.2f} s        {1000 * dagster / events:6.2f}")
    print(f"ours        {ours:8.2f} s        {1000 * ours / events:6.2f}")
    print(f"ours/dagster {ours / dagster:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
