"""Simulated nights: does every file the project writes stay bounded as the nightly refresh repeats?

    python -m bench.nights --nights 30                 # small sandbox, every source, 7 days of history
    python -m bench.nights --nights 10 --retention-days 3 --sources ga4,meta,slack

Not a test. In a temporary directory (its own warehouse, snapshot, report, Dagster instance and
run logs; dbt's run folders go to dbt_project/target as every run's do), a short history is
loaded once (by default 7 days: with night 1's yesterday, the window every night loads, yesterday
and the trailing week, the least a night needs), then each simulated night runs what the nightly
runs: the job `refresh_warehouse` with the nightly tag over yesterday and the trailing days each
source revises, dbt, the checks, the publish of the snapshot and the report; then retention, as
`make refresh` applies it (orchestration/retention.py `apply_retention`), told the simulated clock.
The sandbox serves every source at its smallest scale, unpaced (RATE_LIMITS=off, as `make demo`).

Time travel: night k's "today" is k days after night 1's, and the last night's is today, so every
day loaded is a day the daily partitions already hold. Each night gets its own sandbox whose
"today" is the simulated one (the sandbox's data is a pure function of the seed and the date).
Retention is told the simulated clock (`now`). Dagster stamps a run's creation time with the
database's clock, which no simulation can set, so after each night this script writes the
simulated time into that run's row of runs.db (the only place it writes Dagster's storage
directly; Dagster has no call to set it), and gives the night's log (`demo-<date>.log`, standing
for the log each `make demo` writes, which retention prunes) the simulated time too. With
--retention-days 4 (the default here) runs, their event databases, compute logs, dbt build folders
and logs older than 4 simulated days are deleted from night 4 on, so the reference night 5 already
holds a full period and later nights should hold the same.

Printed after each night: its wall time, the runs kept and deleted, and the size of the warehouse
(and of its free blocks: what deleting re-pulled days left, for later writes to reuse), the
snapshot, the report, the Dagster storage (and within it the asset check results of deleted runs
left in its index: retention deletes them, so 0), dbt's target (run folders) and logs, and the run
logs.
At the end: each size on the last night over its size on night 5 (target <= 1.2). The warehouse
and the snapshot also grow by the one new day each night adds (a longer --history-days makes that
a smaller share); the free blocks say whether re-loading days leaves space behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

COLUMNS = (
    "warehouse",
    "wh_free",
    "snapshot",
    "report",
    "dagster",
    "checks_kept",
    "dbt_target",
    "dbt_logs",
    "run_logs",
)
REFERENCE_NIGHT = 5
ALL_SOURCES = "ga4,gsc,meta,slack,discourse,discord"
TARGET_RATIO = 1.2


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory (0 when missing)."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _mb(n: int) -> str:
    return f"{n / 1e6:8.2f}"


def _environment(workdir: Path, args, history_start: date) -> None:
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "WAREHOUSE_PATH": str(workdir / "warehouse.duckdb"),
            "SERVING_PATH": str(workdir / "serving" / "marts.duckdb"),
            "REPORT_PATH": str(workdir / "serving" / "report.html"),
            "HISTORY_START_DATE": history_start.isoformat(),
            "NIGHTLY_TIMEZONE": "UTC",
            "NIGHTLY_SCHEDULE_STATUS": "stopped",
            "SANDBOX": "auto",
            "SANDBOX_SCALE": "small",
            "SANDBOX_SEED": str(args.seed),
            "SANDBOX_SOURCES": args.sources,
            # As `make demo` against the sandbox: no pacing to the real APIs' published limits,
            # which made Slack's and Discourse's loads a minute each, per night.
            "RATE_LIMITS": "off",
            "DAGSTER_RETENTION_DAYS": str(args.retention_days),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        }
    )


def _free_bytes(warehouse: Path) -> int:
    """Bytes of the warehouse's free blocks: space deletes left, reused by later writes."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        block_size, free_blocks = conn.execute(
            "select block_size, free_blocks from pragma_database_size()"
        ).fetchone()
    return int(block_size) * int(free_blocks)


def _check_results_of_deleted_runs(home: Path) -> int:
    """Bytes of the asset check results whose run is gone (Dagster's SQLite files, read only)."""

    def read(name: str, sql: str) -> list[tuple]:
        uri = f"file:{home / 'history' / name}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            return conn.execute(sql).fetchall()

    live = {run_id for (run_id,) in read("runs.db", "select run_id from runs")}
    results = read(
        "runs/index.db",
        "select run_id, length(evaluation_event) from asset_check_executions",
    )
    return sum((size or 0) for run_id, size in results if run_id not in live)


def _sizes(workdir: Path) -> dict[str, int]:
    return {
        "warehouse": _size(workdir / "warehouse.duckdb") + _size(workdir / "warehouse.duckdb.wal"),
        "wh_free": _free_bytes(workdir / "warehouse.duckdb"),
        "snapshot": _size(workdir / "serving" / "marts.duckdb"),
        "report": _size(workdir / "serving" / "report.html"),
        "dagster": _size(workdir / "dagster_home"),
        "checks_kept": _check_results_of_deleted_runs(workdir / "dagster_home"),
        "dbt_target": _size(DBT_PROJECT_DIR / "target"),
        "dbt_logs": _size(DBT_PROJECT_DIR / "logs"),
        "run_logs": _size(workdir / "logs"),
    }


def _stamp_run(home: Path, run_id: str, when: datetime) -> None:
    """Give the run the simulated creation time (Dagster's SQLite run storage, runs table)."""
    with contextlib.closing(sqlite3.connect(home / "history" / "runs.db")) as conn, conn:
        conn.execute(
            "update runs set create_timestamp = ? where run_id = ?",
            (when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), run_id),
        )


_STOPPED: list[int] = []


def _stop(signum, frame) -> None:
    # Dagster may turn the interrupt into a failed run and return: the flag ends the loop anyway.
    _STOPPED.append(signum)
    raise KeyboardInterrupt


def _run_night(job, instance, today: date, first: date, last: date, log_path: Path, nightly: bool):
    from connectors.sandbox.server import SandboxServer
    from orchestration.commands import run_range
    from orchestration.partitions import NIGHTLY_TAG

    server = SandboxServer(seed=int(os.environ["SANDBOX_SEED"]), scale="small", today=today).start()
    os.environ["SANDBOX_URL"] = server.base_url
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            log_path.open("w", encoding="utf-8") as log,
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            tags = {NIGHTLY_TAG: "true"} if nightly else {}
            return run_range(job, instance, first.isoformat(), last.isoformat(), tags)
    finally:
        os.environ.pop("SANDBOX_URL", None)
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nights", description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=7, help="days loaded before night 1")
    parser.add_argument("--retention-days", type=int, default=4, help="DAGSTER_RETENTION_DAYS")
    parser.add_argument(
        "--sources", default=ALL_SOURCES, help="SANDBOX_SOURCES (at least one daily source; default: all)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="nights-"))
    wall_today = datetime.now(timezone.utc).date()
    first_today = wall_today - timedelta(days=args.nights - 1)
    history_start = first_today - timedelta(days=args.history_days + 1)
    _environment(workdir, args, history_start)

    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.jobs import NIGHTLY_TRAILING_DAYS
    from orchestration.retention import apply_retention
    from orchestration.settings import Settings

    job = build_definitions(Settings.from_env()).resolve_job_def("refresh_warehouse")
    instance = dg.DagsterInstance.get()
    home, logs = workdir / "dagster_home", workdir / "logs"
    print(f"Working in {workdir}; sources {args.sources}, retention {args.retention_days} days.")

    # The history before night 1, as a backfill the evening before.
    eve = first_today - timedelta(days=1)
    started = time.monotonic()
    result = _run_night(
        job, instance, eve, history_start, eve - timedelta(days=1), logs / f"demo-{eve}.log", False
    )
    print(
        f"history {history_start}..{eve - timedelta(days=1)}: {'ok' if result.success else 'FAILED'} "
        f"in {time.monotonic() - started:.0f}s"
    )
    eve_time = datetime.combine(eve, datetime.min.time(), timezone.utc)
    _stamp_run(home, result.run_id, eve_time)
    os.utime(logs / f"demo-{eve}.log", (eve_time.timestamp(), eve_time.timestamp()))

    header = f"{'night':>5} {'today':>10} {'secs':>5} {'ok':>3} {'runs':>4} {'del':>3} " + " ".join(
        f"{c + ' MB':>14}" for c in COLUMNS
    )
    print(header)
    table: dict[int, dict[str, int]] = {}
    # Stopped early (Ctrl-C, or `kill` at a deadline), the nights done still get their ratios.
    signal.signal(signal.SIGTERM, _stop)
    try:
        for night in range(1, args.nights + 1):
            if _STOPPED:
                raise KeyboardInterrupt
            today = first_today + timedelta(days=night - 1)
            yesterday = today - timedelta(days=1)
            now = datetime.combine(today, datetime.min.time(), timezone.utc) + timedelta(hours=2)
            log_path = logs / f"demo-{today}.log"
            started = time.monotonic()
            result = _run_night(
                job,
                instance,
                today,
                max(history_start, yesterday - timedelta(days=NIGHTLY_TRAILING_DAYS)),
                yesterday,
                log_path,
                True,
            )
            _stamp_run(home, result.run_id, now)
            stamp = now.timestamp()
            os.utime(log_path, (stamp, stamp))
            removed = apply_retention(
                instance, now + timedelta(minutes=30), days=args.retention_days, log_dir=logs
            )
            elapsed = time.monotonic() - started
            if _STOPPED:
                raise KeyboardInterrupt
            sizes = table[night] = _sizes(workdir)
            runs = len(instance.get_run_records())
            print(
                f"{night:>5} {today.isoformat():>10} {elapsed:5.0f} {'yes' if result.success else 'NO':>3} "
                f"{runs:>4} {len(removed.runs):>3} " + " ".join(f"{_mb(sizes[c]):>14}" for c in COLUMNS),
                flush=True,
            )
    except KeyboardInterrupt:
        print(f"\nStopped during night {len(table) + 1}.", flush=True)

    last = max(table, default=0)
    if REFERENCE_NIGHT in table and last > REFERENCE_NIGHT:
        print(f"\nnight {last} / night {REFERENCE_NIGHT} (target <= {TARGET_RATIO}):")
        for column in COLUMNS:
            before, after = table[REFERENCE_NIGHT][column], table[last][column]
            ratio = after / before if before else float("nan")
            verdict = "ok" if before and ratio <= TARGET_RATIO else ("-" if not before else "OVER")
            print(f"  {column:>10}: {_mb(before)} MB -> {_mb(after)} MB  {ratio:5.2f}  {verdict}")
    if args.keep:
        print(f"Kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
