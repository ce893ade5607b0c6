"""How much of a long backfill is Dagster's bookkeeping rather than the load itself.

    python -m bench.bookkeeping --days 4206          # the issue's case: 4,206 days of a small workspace
    python -m bench.bookkeeping --days 365 --rounds 2

A small Slack workspace export (two channels, a few messages a day, written here) of `--days`
days is loaded by one run of the project's Slack assets (`build_slack_assets`,
the export resource, the project's warehouse resource), on a fresh instance configured by the
project's `dagster_home/dagster.yaml`, with the switches `orchestration.commands` sets for every
command (`prepare_environment`), as `make backfill` runs it. Each round runs in a fresh child
process (a run worker's cost, nothing cached from the round before).

The run's wall time (from `materialize` to its return) is split into:

- load: the time inside the assets' bodies (`gated`: reading the export, the quality gate,
  writing DuckDB, the result they return), measured by timing that call;
- bookkeeping: everything else Dagster does for the run: starting it, planning the steps,
  the events it records (one materialization per asset and partition), the checks' evaluations.

`--partitions` picks how the assets are built (variants alternate within a round):

- daily: over the daily partitions, one single-run backfill (the nightly and backfills of up to
  BACKFILL_DAILY_PARTITIONS_MAX_DAYS days): one materialization per asset and day;
- history: without partitions, the range in the run's tags (`history_tags`), as `make backfill`
  runs a longer range: one materialization per asset, the days in the warehouse's ledger;
- monthly: over monthly partitions (the range widened to whole months), for comparison;
- floor: a run of the same shape as the history load (three assets without partitions, each with
  one check, in the warehouse pool, on the same instance) whose bodies do nothing: its wall time is
  all bookkeeping, the least any run of three assets costs on this machine, whatever it loads;
- floor1: the same three empty assets and checks as one step (one `multi_asset`): what fewer steps
  would save.

Printed per round and as the median: wall, load, bookkeeping seconds, bookkeeping's share of the
wall (target <= 10%), the events the run recorded by type, and bookkeeping per recorded event.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHANNELS = [("C0000000001", "general"), ("C0000000002", "random")]
USERS = ["U0000000001", "U0000000002", "U0000000003"]


def write_small_export(path: Path, first: date, last: date) -> int:
    """A small workspace's export zip: two channels, 1-3 messages a channel and day. Returns the
    messages written."""
    written = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "channels.json",
            json.dumps([{"id": cid, "name": name, "created": 1262304000} for cid, name in CHANNELS]),
        )
        zf.writestr(
            "users.json",
            json.dumps([{"id": uid, "name": f"user{n}", "profile": {}} for n, uid in enumerate(USERS)]),
        )
        day, n = first, 0
        while day <= last:
            midnight = int(time.mktime(day.timetuple())) - time.timezone
            for c, (_, name) in enumerate(CHANNELS):
                count = 1 + (n + c) % 3
                messages = [
                    {
                        "type": "message",
                        "user": USERS[(n + i) % len(USERS)],
                        "text": f"message {i} of {day}",
                        "ts": f"{midnight + 3600 * (i + 1) + c}.000100",
                    }
                    for i in range(count)
                ]
                zf.writestr(f"{name}/{day.isoformat()}.json", json.dumps(messages))
                written += count
            day += timedelta(days=1)
            n += 1
    return written


def _in_child(function, *args):
    """`function(*args)` in a fresh spawned process; waits for it to exit cleanly."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _instance_yaml(home: str, postgres_url: str | None) -> None:
    """The project's dagster.yaml; with `postgres_url`, its storage is that PostgreSQL database."""
    text = (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text()
    if postgres_url:
        import yaml

        config = yaml.safe_load(text)
        config.pop("event_log_storage", None)
        config["storage"] = {"postgres": {"postgres_url": postgres_url}}
        text = yaml.safe_dump(config)
    Path(home, "dagster.yaml").write_text(text)


def _measure(days: int, partitions: str, postgres_url: str | None = None, batch: int = 0) -> dict:
    home = tempfile.mkdtemp(prefix="bench-bookkeeping-")
    try:
        os.environ["DAGSTER_HOME"] = home
        _instance_yaml(home, postgres_url)
        if batch:
            os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(batch)
        from orchestration.commands import prepare_environment

        prepare_environment()
        last = date.today() - timedelta(days=1)
        if partitions == "monthly":  # the range ends on a month's last day, as monthly windows do
            last = last.replace(day=1) - timedelta(days=1)
        first = last - timedelta(days=days - 1)
        if partitions == "monthly":
            first = first.replace(day=1)
            days = (last - first).days + 1
        export = Path(home) / "export.zip"
        messages = write_small_export(export, first, last)

        import warnings

        import dagster as dg

        warnings.simplefilter("ignore")
        import orchestration.slack.assets as slack_assets
        from orchestration.jobs import range_tags
        from orchestration.partitions import daily_partitions, history_tags
        from orchestration.settings import Settings
        from orchestration.slack.resources import SlackResource
        from orchestration.warehouse import DuckDBWarehouse

        load_seconds = 0.0
        gated = slack_assets.gated

        def timed_gated(context, body):
            # Only the body's own time: what Dagster does with each result it yields (recording a
            # materialization per partition) happens between the generator's steps.
            def timed_body(gate):
                nonlocal load_seconds
                started = time.perf_counter()
                try:
                    out = body(gate)
                    return list(out) if inspect.isgenerator(out) else out
                finally:
                    load_seconds += time.perf_counter() - started

            yield from gated(context, timed_body)

        slack_assets.gated = timed_gated
        settings = Settings(
            warehouse_path=Path(home) / "warehouse.duckdb",
            serving_path=Path(home) / "serving.duckdb",
            history_start=first,
            nightly_timezone="UTC",
            nightly_cron="0 2 * * *",
            nightly_schedule_running=False,
        )
        tags = range_tags(first.isoformat(), last.isoformat())
        if partitions == "daily":
            partitions_def = daily_partitions(settings)
        elif partitions == "monthly":
            partitions_def = dg.MonthlyPartitionsDefinition(start_date=first.isoformat())
            tags = range_tags(first.strftime("%Y-%m-%d"), last.replace(day=1).isoformat())
        else:  # a history load, as `make backfill` runs a range over BACKFILL_DAILY_PARTITIONS_MAX_DAYS
            partitions_def = None
            tags = history_tags(first, last)
        if partitions.startswith("floor"):
            assets = _empty_assets_like_slack(one_step=partitions == "floor1")
        else:
            assets = slack_assets.build_slack_assets(partitions_def)
        resources = {
            "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
            "slack": SlackResource(export_path=str(export)),
        }
        instance = dg.DagsterInstance.get()
        started = time.perf_counter()
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            tags=tags,
            # As the commands run it (orchestration.commands.run_range): progress lines, no debug.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        wall = time.perf_counter() - started
        assert result.success
        events = Counter(e.event_type_value for e in result.all_events)
        records = instance.get_records_for_run(result.run_id, limit=1_000_000).records
        instance.dispose()
        return {
            "partitions": partitions,
            "days": days,
            "messages": messages,
            "wall": wall,
            "load": load_seconds,
            "events": dict(events),
            "records": len(records),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _empty_assets_like_slack(one_step: bool = False) -> list:
    """Three assets without partitions, one check each, in the warehouse pool, doing nothing: the
    history load's shape (orchestration/slack/assets.py) without its work; with `one_step`, the
    three in one step."""
    import dagster as dg

    from orchestration.warehouse import WAREHOUSE_POOL

    names = ("channels", "users", "messages")
    if one_step:
        keys = [dg.AssetKey(["slack", name]) for name in names]

        @dg.multi_asset(
            specs=[dg.AssetSpec(key) for key in keys],
            check_specs=[dg.AssetCheckSpec(f"{key.path[-1]}_expectations", asset=key) for key in keys],
            pool=WAREHOUSE_POOL,
            required_resource_keys={"warehouse", "slack"},
        )
        def empty_slack(context):
            for key in keys:
                yield dg.MaterializeResult(asset_key=key, metadata={"rows": 0})
                check = f"{key.path[-1]}_expectations"
                yield dg.AssetCheckResult(asset_key=key, check_name=check, passed=True)

        return [empty_slack]

    def build(name: str):
        key = dg.AssetKey(["slack", name])
        check = f"{name}_expectations"

        @dg.asset(
            key=key,
            check_specs=[dg.AssetCheckSpec(check, asset=key)],
            pool=WAREHOUSE_POOL,
            required_resource_keys={"warehouse", "slack"},
        )
        def empty(context):
            yield dg.MaterializeResult(metadata={"rows": 0})
            yield dg.AssetCheckResult(check_name=check, passed=True)

        return empty

    return [build(name) for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4206)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--partitions",
        default="daily,history",
        help="comma-separated: daily (daily partitions: the nightly, short backfills), history (a "
        "history load: `make backfill` over BACKFILL_DAILY_PARTITIONS_MAX_DAYS), monthly (for comparison), "
        "floor (the history load's three assets and checks doing nothing: a run's least bookkeeping), "
        "floor1 (the same as one step)",
    )
    parser.add_argument(
        "--postgres-url",
        help="store the instance's runs and events in this PostgreSQL database (needs dagster-postgres) "
        "instead of the project's SQLite event log",
    )
    parser.add_argument(
        "--event-batch-size",
        type=int,
        default=0,
        help="DAGSTER_EVENT_BATCH_SIZE: a partitioned asset's materializations written N at a time "
        "(a storage that writes batches at once, PostgreSQL, gains; SQLite writes them one by one)",
    )
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.partitions.split(",") if v.strip()]
    unknown = set(variants) - {"daily", "monthly", "history", "floor", "floor1"}
    if unknown:
        parser.error(
            f"--partitions: unknown {', '.join(sorted(unknown))}; "
            "use daily, history, monthly, floor or floor1"
        )
    rounds: dict[str, list[dict]] = {v: [] for v in variants}
    # Variants alternate within a round, so a shared machine's drift weighs on each alike.
    for n in range(args.rounds):
        for variant in variants:
            r = _in_child(_measure, args.days, variant, args.postgres_url, args.event_batch_size)
            book = r["wall"] - r["load"]
            rounds[variant].append(r)
            print(
                f"round {n + 1} {variant}: {r['days']:,} days, {r['messages']:,} messages: wall "
                f"{r['wall']:.1f} s, load {r['load']:.1f} s, bookkeeping {book:.1f} s "
                f"({book / r['wall']:.0%}); {r['records']:,} event records",
                flush=True,
            )
            print("  events: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["events"].items())))
    print(
        f"{'partitions':<10} {'days':>6} {'wall s':>8} {'load s':>8} {'book s':>8} {'book %':>7} "
        f"{'records':>8} {'ms/record':>9}"
    )
    for variant, runs in rounds.items():
        wall = statistics.median(r["wall"] for r in runs)
        load = statistics.median(r["load"] for r in runs)
        book = statistics.median(r["wall"] - r["load"] for r in runs)
        records = runs[0]["records"]
        print(
            f"{variant:<10} {runs[0]['days']:>6,} {wall:>8.1f} {load:>8.1f} {book:>8.1f} "
            f"{book / wall:>7.0%} {records:>8,} {1000 * book / max(records, 1):>9.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
