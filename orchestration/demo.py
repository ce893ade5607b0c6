"""`make demo`: load the sandbox brand's whole history, build every mart, publish the snapshot.

Runs the same job the nightly schedule runs, over every day from HISTORY_START_DATE to yesterday,
as one Dagster run recorded in DAGSTER_HOME, so `make dev` shows it afterwards.

The terminal shows progress per source and step ("ga4/sessions_daily: 120/522 days, 250,000
rows so far", "dbt: 80/400 nodes", "serving: published 12 tables") and the summary; the run's
whole log (every Dagster event, every dbt node) goes to data/logs/demo-<time>.log, whose path is
printed first.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from orchestration import commands
from orchestration.commands import load_dotenv as _load_dotenv
from orchestration.commands import progress_to_terminal, run_log_path, sandbox_if_needed
from orchestration.settings import PROJECT_ROOT


def summarize(serving_path: Path) -> str:
    """What the snapshot holds: its marts, the empty ones as not loaded, and the dark-social figures
    when GA4 sessions were loaded. Never fails on an empty mart (only community sources configured,
    say)."""
    import duckdb

    with duckdb.connect(str(serving_path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("show tables").fetchall() if not r[0].startswith("_")]
        rows = {table: conn.execute(f'select count(*) from "{table}"').fetchone()[0] for table in tables}
        dark = _dark_social(conn) if rows.get("mart_dark_social_daily") else None
    lines = [f"Serving snapshot: {serving_path}"]
    lines.append("  marts: " + (", ".join(t for t in tables if rows[t]) or "none with rows"))
    empty = [t for t in tables if not rows[t]]
    if empty:
        lines.append(f"  not loaded (no rows): {', '.join(empty)}")
    if dark is None:
        lines.append(
            "  dark social: not loaded (mart_dark_social_daily is empty: GA4 loaded no sessions; "
            "the source plan's warnings above say which sources are not loaded and why)"
        )
    else:
        lines.extend(dark)
    return "\n".join(lines)


def _share(part: float | None, whole: float | None) -> str:
    return f"{part / whole:.1%}" if part is not None and whole else "n/a"


def _dark_social(conn) -> list[str]:
    first, last, days, sessions, dark, low, share_28d, flagged = conn.execute(
        """
        select min(date), max(date), count(*), sum(total_sessions), sum(dark_social_sessions),
               sum(dark_messaging_sessions), arg_max(dark_social_share_28d, date),
               count(*) filter (where is_ga4_sampled_or_thresholded)
        from mart_dark_social_daily
        """
    ).fetchone()
    return [
        f"  mart_dark_social_daily: {days} days, {first} to {last}",
        f"  sessions: {sessions or 0:,}; dark social {_share(low, sessions)} (messaging, lower bound) "
        f"to {_share(dark, sessions)} (with deep-link direct, upper bound)",
        "  dark social share, last 28 days: " + ("n/a" if share_28d is None else f"{share_28d:.1%}"),
        f"  days GA4 thresholded or folded into (other): {flagged}",
    ]


def main() -> int:
    _load_dotenv()
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    # Dagster announces a single-run backfill with one "planned" event per asset and partition
    # (~5,100 for the demo's range, each a SQLite write): ~55 s of CPU before the first step.
    # With this switch it records one event per asset naming the range. The price: if the run
    # fails, the UI shows its unfinished partitions as missing rather than failed.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    # The demo's APIs are the local sandbox: no published limit to keep to (connectors/ratelimit.py).
    os.environ.setdefault("RATE_LIMITS", "off")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    import dagster as dg

    # Loading the definitions recovers from a crash first: runs killed earlier are failed and their
    # warehouse pool slot freed, or this run would wait for it forever (orchestration/recovery.py).
    from orchestration.definitions import defs
    from orchestration.partitions import BACKFILL_MAX_DAYS_ENV, backfill_max_days
    from orchestration.settings import Settings
    from orchestration.sources import source_plan

    settings = Settings.from_env()
    job = defs.resolve_job_def("refresh_warehouse")
    partition_keys = job.partitions_def.get_partition_keys()
    first, last = partition_keys[0], partition_keys[-1]
    print(f"Loading {len(partition_keys)} days ({first} to {last}) into {settings.warehouse_path} ...")
    history = commands.history_job(settings, len(partition_keys))
    if history is not None:
        # The sandbox's whole history is a long backfill, loaded as `make backfill` loads one: a
        # history load (one materialization per asset, the days in the warehouse's ledger), not
        # ~5,000 per-day events that cost more than the loads themselves (orchestration/partitions.py).
        job = history
        print(
            f"  one history run (more than {BACKFILL_MAX_DAYS_ENV}={backfill_max_days()} days): the days "
            "loaded are in each asset's metadata; `make refresh` then keeps daily partitions"
        )
    log_path = run_log_path("demo")
    print(f"The run's full log: {log_path}", flush=True)
    started = time.monotonic()
    instance = dg.DagsterInstance.get()
    # As `make refresh`: the sandbox process only when a source loads from it (not beside real
    # sources alone, where it would start for nothing).
    with sandbox_if_needed(source_plan()), progress_to_terminal(log_path):
        result = _run(job, instance, first, last)
    elapsed = time.monotonic() - started
    code = _report(result, elapsed, settings, log_path)
    # No daemon here: old runs, their files, dbt folders and demo logs are removed now.
    commands.apply_retention_after_run(instance)
    return code


def _run(job, instance, first: str, last: str):
    # Progress lines only (INFO); every event is still in the run's log in the UI.
    return commands.run_range(job, instance, first, last)


def _report(result, elapsed: float, settings, log_path: Path) -> int:
    if not result.success:
        failed = [e for e in result.all_events if e.is_failure and e.step_key]
        for event in failed:
            print(f"FAILED step {event.step_key}: {event.message}", file=sys.stderr)
        print(
            f"Demo run {result.run_id} failed after {elapsed:.0f}s; its log: {log_path} "
            "(or `make dev`, run page).",
            file=sys.stderr,
        )
        return 1
    checks = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    passed = sum(1 for c in checks if c.passed)
    print(f"Done in {elapsed:.0f}s (run {result.run_id}).")
    print(f"Checks: {passed} of {len(checks)} passed.")
    print(summarize(settings.serving_path))
    print(f"The run's full log: {log_path}")
    print(f"Report: {settings.report_path} (open it in a browser; `make report` rebuilds it)")
    print("Next: `make dev` opens the Dagster UI at http://127.0.0.1:3000 (lineage, runs, checks).")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
