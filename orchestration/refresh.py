"""`make refresh` and `make backfill`: load days from the configured sources, then dbt, then the snapshot.

    python -m orchestration.refresh                                   # what the nightly runs
    python -m orchestration.refresh --from 2026-01-01 --to 2026-01-31  # a backfill of a range

Both run the `refresh_warehouse` job on the Dagster instance in DAGSTER_HOME (so `make dev` shows
the run): with a source loading from its real API, each step in its own process, up to
REFRESH_PARALLEL_STEPS at once (every source waits on its API at the same time); with the sandbox
serving every source, one step after another in this process. Without a range it is the nightly run:
yesterday and the trailing days each source revises (GA4 3, Search Console 4, Meta, Slack and
Discourse 7), tagged as the schedule tags it. A backfill of more than
BACKFILL_DAILY_PARTITIONS_MAX_DAYS days (default DAGSTER_RETENTION_DAYS, 30) runs as a history load:
the same job built without partitions, one materialization per asset for the run instead of one per
asset and day, the days loaded recorded in the warehouse's ledger (orchestration/partitions.py,
orchestration/ledger.py). The sandbox is started only when the source plan serves a source from it,
never for real sources. While it runs, the terminal shows progress lines only (each source's days
done of the total, rows, the time left at the API's rate limit; dbt's nodes by tenths; the
snapshot), as `make demo` does; the run's whole log (every Dagster event, every dbt node) goes to
data/logs/refresh-<time>.log or backfill-<time>.log, whose path is printed first and last. At the
end, a summary by source says what loaded (rows, days), what was not loaded and why, and which marts
are empty. Exit 0 when the run succeeded (an empty mart is not a failure), 1 when a step failed, 2
on a bad argument or setting.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from orchestration.commands import (
    apply_retention_after_run,
    history_job,
    load_dotenv,
    prepare_environment,
    progress_to_terminal,
    run_log_path,
    run_range,
    sandbox_if_needed,
    steps_to_terminal,
    summarize_run,
)
from orchestration.settings import Settings, SettingsError


class RangeError(ValueError):
    """--from/--to are malformed or outside the days that can be loaded; the message says which."""


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RangeError(f"{flag}={text!r} is not a date: use YYYY-MM-DD, for example 2026-01-31.") from None


def backfill_range(
    first_text: str, last_text: str, history_start: date, yesterday: date
) -> tuple[date, date]:
    """Validate a backfill's FROM and TO against the days the warehouse holds.

    Raises:
        RangeError: a malformed date, FROM after TO, FROM before HISTORY_START_DATE, or TO after
            yesterday (today is not complete yet).
    """
    first, last = _day(first_text, "FROM"), _day(last_text, "TO")
    if first > last:
        raise RangeError(f"FROM={first} is after TO={last}: give the earlier day first.")
    if first < history_start:
        raise RangeError(
            f"FROM={first} is before HISTORY_START_DATE={history_start}: start at {history_start}, or set "
            "HISTORY_START_DATE earlier in .env (the daily partitions begin there)."
        )
    if last > yesterday:
        raise RangeError(
            f"TO={last} is after yesterday ({yesterday}, in NIGHTLY_TIMEZONE): today is not complete yet; "
            f"end at {yesterday} or earlier."
        )
    return first, last


def nightly_range(history_start: date, yesterday: date) -> tuple[date, date]:
    """The nightly run's days: yesterday and the longest trailing window any source revises."""
    from orchestration.jobs import NIGHTLY_TRAILING_DAYS

    return max(history_start, yesterday - timedelta(days=NIGHTLY_TRAILING_DAYS)), yesterday


def _titles(plans) -> dict[str, str]:
    slack = plans.get("slack")
    if slack is not None and slack.mode == "real":
        return {"slack": "Slack (export)" if os.getenv("SLACK_EXPORT_PATH") else "Slack (API)"}
    return {}


def main(argv: Sequence[str] | None = None, instance=None, log_dir: Path | None = None) -> int:
    """Run the refresh (no range) or a backfill (--from and --to); see the module docstring.

    Args:
        argv: the command line (default sys.argv[1:]).
        instance: the Dagster instance (default: the one in DAGSTER_HOME).
        log_dir: where the run's whole log is written (default data/logs/).
    """
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.refresh", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day of a backfill")
    parser.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day of a backfill")
    args = parser.parse_args(argv)
    if (args.first is None) != (args.last is None):
        print(
            "A backfill needs both FROM and TO (make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD).",
            file=sys.stderr,
        )
        return 2

    if instance is None:
        load_dotenv()
    prepare_environment()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    import dagster as dg

    from orchestration.dbt.member_hash import MissingMemberHashKey, member_hash_key
    from orchestration.definitions import build_definitions
    from orchestration.jobs import REFRESH_PARALLEL_STEPS_ENV, parallel_steps
    from orchestration.partitions import BACKFILL_MAX_DAYS_ENV, NIGHTLY_TAG, backfill_max_days
    from orchestration.sources import REAL, source_plan

    try:
        settings = Settings.from_env()
        plans = source_plan()
        member_hash_key()  # a missing key would fail dbt after every source has loaded
        defs = build_definitions(settings)
        backfill_max_days()  # a malformed setting stops the command before any run
        steps = parallel_steps(any(plan.mode == REAL for plan in plans.values()))
    except (SettingsError, ValueError, MissingMemberHashKey) as exc:
        print(f"Not started: {exc}", file=sys.stderr)
        return 2
    job = defs.resolve_job_def("refresh_warehouse")
    keys = job.partitions_def.get_partition_keys()
    if not keys:
        print(
            f"Not started: no complete day since HISTORY_START_DATE={settings.history_start}.",
            file=sys.stderr,
        )
        return 2
    history_start, yesterday = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    try:
        if args.first is None:
            first, last = nightly_range(history_start, yesterday)
            what, tags = "Refresh", {NIGHTLY_TAG: "true"}
        else:
            first, last = backfill_range(args.first, args.last, history_start, yesterday)
            what, tags = "Backfill", {}
    except RangeError as exc:
        print(f"Not started: {exc}", file=sys.stderr)
        return 2

    titles = _titles(plans)
    days = (last - first).days + 1
    history = history_job(settings, days) if args.first is not None else None
    if history is not None:
        # A history load: the assets without partitions, one materialization each for the run;
        # the days loaded are in the warehouse's ledger (orchestration/partitions.py, ledger.py).
        job, what = history, "History load"
    loading = [titles.get(n) or p.source.title for n, p in plans.items() if p.loaded]
    skipped = [p.source.title for p in plans.values() if not p.loaded and not p.source.optional]
    print(f"{what}: {days} day(s), {first} to {last}, into {settings.warehouse_path}")
    if what == "History load":
        print(
            f"  one run over {days} days (more than {BACKFILL_MAX_DAYS_ENV}={backfill_max_days()}): "
            "one materialization per asset, the days loaded recorded in the warehouse's ledger "
            "(ledger.loaded_days) and shown in each asset's metadata, not as daily partitions"
        )
    print(f"  loading: {', '.join(loading)}" + (f"; not loaded: {', '.join(skipped)}" if skipped else ""))
    if steps > 1:
        print(
            f"  up to {steps} steps at once, each in its own process ({REFRESH_PARALLEL_STEPS_ENV}): "
            "the sources wait on their APIs at the same time"
        )
    log_path = run_log_path("backfill" if args.first is not None else "refresh", log_dir)
    print(f"The run's full log: {log_path}", flush=True)
    started = time.monotonic()
    with sandbox_if_needed(plans):
        if instance is None:
            instance = dg.DagsterInstance.get()
        # A process per step writes to the descriptors it inherits, not through this process's
        # streams: `steps_to_terminal` sends those to the log file and follows it.
        with steps_to_terminal(log_path) if steps > 1 else progress_to_terminal(log_path):
            result = run_range(job, instance, first.isoformat(), last.isoformat(), tags, steps=steps)
    elapsed = time.monotonic() - started
    print()
    print(summarize_run(result, plans, titles))
    apply_retention_after_run(instance)
    state = "done" if result.success else "FAILED"
    print(f"{what} {state} in {elapsed:.0f}s (run {result.run_id}).")
    print(f"The run's full log: {log_path} (or `make dev`, the run's page).")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
