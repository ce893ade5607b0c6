"""`make demo`: load the sandbox brand's whole history, build every mart, publish the snapshot.

Runs the same job the nightly schedule runs, over every day from HISTORY_START_DATE to yesterday,
as one Dagster run recorded in DAGSTER_HOME, so `make dev` shows it afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from orchestration.settings import PROJECT_ROOT


def _load_dotenv() -> None:
    env_file = PROJECT_ROOT / ".env"
    if env_file.exists():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


@contextmanager
def sandbox_process():
    """Serve the sandbox from a second process for the length of the demo (SANDBOX_URL).

    Generating the brand's data is CPU work; in its own process it runs beside the loading
    instead of taking turns with it in one interpreter.
    """
    if os.environ.get("SANDBOX_URL"):
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.search(r"serving at (http://\S+)", first_line)
        if not match:
            raise RuntimeError(f"the sandbox did not start: {first_line.strip() or 'no output'}")
        os.environ["SANDBOX_URL"] = match.group(1)
        yield
    finally:
        os.environ.pop("SANDBOX_URL", None)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def summarize(serving_path: Path) -> str:
    import duckdb

    with duckdb.connect(str(serving_path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("show tables").fetchall() if not r[0].startswith("_")]
        first, last, days, sessions, dark, low, share_28d = conn.execute(
            """
            select min(date), max(date), count(*), sum(total_sessions), sum(dark_social_sessions),
                   sum(dark_messaging_sessions),
                   arg_max(dark_social_share_28d, date)
            from mart_dark_social_daily
            """
        ).fetchone()
        flagged = conn.execute(
            "select count(*) from mart_dark_social_daily where is_ga4_sampled_or_thresholded"
        ).fetchone()[0]
    lines = [
        f"Serving snapshot: {serving_path}",
        f"  marts: {', '.join(tables)}",
        f"  mart_dark_social_daily: {days} days, {first} to {last}",
        f"  sessions: {sessions:,}; dark social {low / sessions:.1%} (messaging, lower bound) "
        f"to {dark / sessions:.1%} (with deep-link direct, upper bound)",
        f"  dark social share, last 28 days: {share_28d:.1%}",
        f"  days GA4 thresholded or folded into (other): {flagged}",
    ]
    return "\n".join(lines)


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

    from orchestration.definitions import defs
    from orchestration.settings import Settings

    settings = Settings.from_env()
    job = defs.resolve_job_def("refresh_warehouse")
    partition_keys = job.partitions_def.get_partition_keys()
    first, last = partition_keys[0], partition_keys[-1]
    print(f"Loading {len(partition_keys)} days ({first} to {last}) into {settings.warehouse_path} ...")
    started = time.monotonic()
    instance = dg.DagsterInstance.get()
    with sandbox_process():
        result = _run(job, instance, first, last)
    elapsed = time.monotonic() - started
    return _report(result, elapsed, settings)


def _run(job, instance, first: str, last: str):
    from orchestration.jobs import range_tags

    return job.execute_in_process(
        instance=instance,
        tags=range_tags(first, last),
        # Progress lines only; every event is still in the run's log in the UI.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )


def _report(result, elapsed: float, settings) -> int:
    if not result.success:
        failed = [e for e in result.all_events if e.is_failure and e.step_key]
        for event in failed:
            print(f"FAILED step {event.step_key}: {event.message}", file=sys.stderr)
        print(
            f"Demo run {result.run_id} failed after {elapsed:.0f}s; see `make dev` for its logs.",
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
    print("Next: `make dev` opens the Dagster UI at http://127.0.0.1:3000 (lineage, runs, checks).")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
