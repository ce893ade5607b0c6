"""How much of a long backfill is Dagster's bookkeeping rather than the load itself.

    python -m bench.bookkeeping                  # 4,206 days: the issue's small workspace, a tiny one
    python -m bench.bookkeeping --days 365 --workspace small --rounds 2

A Slack workspace export of `--days` days (written here) is loaded by one run of the project's
Slack assets (`build_slack_assets`, the export resource, the project's warehouse resource), on a
fresh instance configured by the project's `dagster_home/dagster.yaml`, with the switches
`orchestration.commands` sets for every command (`prepare_environment`), as `make backfill` runs
it. Each round runs in a fresh child process (a run worker's cost, nothing cached from the round
before).

`--workspace` picks the export (both by default, each its own line):

- small: the issue's case, "4,206 days of a small workspace": the volume of the sandbox's small
  scale (connectors/sandbox/brand.py: 12 thread starts a weekday over 7 channels weighted by
  interest, the weekday factors, ~2.8 messages per thread start with the replies; ~25 messages a
  day on average, 420 members);
- tiny: two channels, 1-3 messages a channel and day, no threads, three users (~4 a day).

The run's wall time (from `materialize` to its return) is split into:

- load: the time inside the assets' bodies (`gated`: reading the export, the quality gate,
  writing DuckDB, the result they return), measured by timing that call;
- bookkeeping: everything else Dagster does for the run: starting it, planning the steps,
  the events it records (one materialization per asset and partition), the checks' evaluations.

`--partitions` picks how the assets are built (variants alternate within a round):

- daily: over the daily partitions, one single-run backfill (the nightly and backfills of up to
  BACKFILL_DAILY_PARTITIONS_MAX_DAYS days): one materialization per asset and day;
- history: without partitions, the range in the run's tags (`history_tags`), as `make backfill`
  runs a longer range: one materialization per asset, the days in the warehouse's ledger; the
  three assets and their checks in one step (`build_slack_assets(None)`, the design);
- history3: the same as three steps, one per asset (the design before; `one_step=False`);
- monthly: over monthly partitions (the range widened to whole months), for comparison;
- floor: a run of history3's shape (three assets without partitions, each with one check, in the
  warehouse pool, on the same instance) whose bodies do nothing: its wall time is all
  bookkeeping, Dagster's fixed cost of such a run on this machine, whatever it loads;
- floor1: the same three empty assets and checks as one step (one `multi_asset`): history's shape.

The variants alternate within a round; the floors are measured once a round (they read nothing).
Printed: the load average before and after; per round and as the median: wall, load, bookkeeping
seconds, bookkeeping's share of the wall (target <= 10%), the messages a day, every record the
run wrote by type (Dagster's events, LOG for a log line), bookkeeping per record; and each floor
as a share of the wall of the history load of its shape, per workspace.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing
import os
import random
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
TINY_CHANNELS = [("C0000000001", "general"), ("C0000000002", "random")]
TINY_USERS = ["U0000000001", "U0000000002", "U0000000003"]
# The sandbox's small scale (connectors/sandbox/brand.py, COMMUNITY_*), in volume only: channel
# weights by interest, thread starts a weekday, the weekday factors (Monday first), members.
SMALL_CHANNELS = [
    ("C1000000001", "general", 0.30),
    ("C1000000002", "dbt-and-modeling", 0.22),
    ("C1000000003", "attribution", 0.22),
    ("C1000000004", "ai-and-llms", 0.14),
    ("C1000000005", "jobs", 0.06),
    ("C1000000006", "announcements", 0.04),
    ("C1000000007", "team", 0.05),
]
SMALL_THREADS_PER_WEEKDAY = 12.0
SMALL_WEEKDAY_FACTORS = (1.0, 1.1, 1.1, 1.0, 0.85, 0.3, 0.3)
SMALL_MEMBERS = 420
# Replies per thread start: 0-4 with these weights, 1.8 on average (~2.8 messages a thread start).
SMALL_REPLY_WEIGHTS = (0.25, 0.15, 0.2, 0.2, 0.2)
WORKSPACES = ("small", "tiny")


def _midnight(day: date) -> int:
    return int(time.mktime(day.timetuple())) - time.timezone


def write_export(path: Path, first: date, last: date, workspace: str = "small") -> int:
    """A workspace's export zip of `first`..`last` (see the module's docstring for `workspace`).
    Returns the messages written."""
    if workspace == "tiny":
        return _write_tiny_export(path, first, last)
    rng = random.Random(f"bench.bookkeeping:{first}:{last}")
    users = [f"U2{n:08d}" for n in range(SMALL_MEMBERS)]
    written = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        channels = [{"id": cid, "name": name, "created": 1262304000} for cid, name, _ in SMALL_CHANNELS]
        zf.writestr("channels.json", json.dumps(channels))
        zf.writestr(
            "users.json",
            json.dumps([{"id": uid, "name": f"member{n}", "profile": {}} for n, uid in enumerate(users)]),
        )
        day = first
        while day <= last:
            per_day = SMALL_THREADS_PER_WEEKDAY * SMALL_WEEKDAY_FACTORS[day.weekday()]
            midnight = _midnight(day)
            for c, (_, name, weight) in enumerate(SMALL_CHANNELS):
                expected = per_day * weight
                starts = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
                messages = []
                for t in range(starts):
                    # a thread start in the day's first 12 hours, its replies within 5 hours (the
                    # same UTC day: the export's day files hold the messages posted that day)
                    ts = midnight + rng.randrange(12 * 3600)
                    parent = {"type": "message", "user": rng.choice(users), "text": f"a question in #{name}"}
                    parent["ts"] = f"{ts}.1{c}{t:04d}"
                    n = rng.choices(range(len(SMALL_REPLY_WEIGHTS)), SMALL_REPLY_WEIGHTS)[0]
                    replies = [
                        {
                            "type": "message",
                            "user": rng.choice(users),
                            "text": f"reply {r}",
                            "ts": f"{ts + 60 * (r + 1) * rng.randint(1, 60)}.2{c}{t:02d}{r:02d}",
                            "thread_ts": parent["ts"],
                            "parent_user_id": parent["user"],
                        }
                        for r in range(n)
                    ]
                    if replies:
                        replies.sort(key=lambda m: float(m["ts"]))
                        parent.update(
                            thread_ts=parent["ts"],
                            reply_count=n,
                            reply_users=sorted({m["user"] for m in replies}),
                            reply_users_count=len({m["user"] for m in replies}),
                            latest_reply=replies[-1]["ts"],
                        )
                    messages += [parent, *replies]
                if messages:
                    messages.sort(key=lambda m: float(m["ts"]))
                    zf.writestr(f"{name}/{day.isoformat()}.json", json.dumps(messages))
                    written += len(messages)
            day += timedelta(days=1)
    return written


def _write_tiny_export(path: Path, first: date, last: date) -> int:
    written = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "channels.json",
            json.dumps([{"id": cid, "name": name, "created": 1262304000} for cid, name in TINY_CHANNELS]),
        )
        zf.writestr(
            "users.json",
            json.dumps([{"id": uid, "name": f"user{n}", "profile": {}} for n, uid in enumerate(TINY_USERS)]),
        )
        day, n = first, 0
        while day <= last:
            midnight = _midnight(day)
            for c, (_, name) in enumerate(TINY_CHANNELS):
                count = 1 + (n + c) % 3
                messages = [
                    {
                        "type": "message",
                        "user": TINY_USERS[(n + i) % len(TINY_USERS)],
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


def _measure(
    days: int, partitions: str, workspace: str, postgres_url: str | None = None, batch: int = 0
) -> dict:
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
        # the floor's bodies read nothing: no export to write
        messages = 0 if partitions.startswith("floor") else write_export(export, first, last, workspace)

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

        def timed_gated(context, body, *args, **kwargs):
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

            yield from gated(context, timed_body, *args, **kwargs)

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
            # history: one step (the design); history3: the same assets as three steps (before it)
            assets = slack_assets.build_slack_assets(partitions_def, one_step=partitions != "history3")
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
            # The console at INFO: the commands write DEBUG to their log file
            # (orchestration.commands.run_range); the event log records the same either way.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        wall = time.perf_counter() - started
        assert result.success
        records = instance.get_records_for_run(result.run_id, limit=1_000_000).records
        # every record the run wrote: Dagster's events by type, a log line of the run as LOG
        events = Counter(
            r.event_log_entry.dagster_event.event_type_value if r.event_log_entry.dagster_event else "LOG"
            for r in records
        )
        instance.dispose()
        return {
            "partitions": partitions,
            "workspace": "-" if partitions.startswith("floor") else workspace,
            "days": days,
            "messages": messages,
            "wall": wall,
            "load": load_seconds,
            "events": dict(events),
            "records": len(records),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


VARIANTS = ("daily", "history", "history3", "monthly", "floor", "floor1")
# The history load each floor has the shape of: three steps, or one.
FLOOR_OF = {"floor": "history3", "floor1": "history"}


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
        "--workspace",
        default=",".join(WORKSPACES),
        help="comma-separated: small (the sandbox's small scale: ~25 messages a day with threads, "
        "the issue's case), tiny (~4 messages a day)",
    )
    parser.add_argument(
        "--partitions",
        default="history,history3,floor1,floor",
        help="comma-separated: daily (daily partitions: the nightly, short backfills), history (a "
        "history load: `make backfill` over BACKFILL_DAILY_PARTITIONS_MAX_DAYS, one step), history3 (the "
        "same as three steps, the design before), monthly (for comparison), "
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
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"--partitions: unknown {', '.join(sorted(unknown))}; use {', '.join(VARIANTS)}")
    workspaces = [w.strip() for w in args.workspace.split(",") if w.strip()]
    if set(workspaces) - set(WORKSPACES):
        parser.error(f"--workspace: use {' or '.join(WORKSPACES)}")
    # The floor variants read nothing: measured once a round, not once per workspace.
    cases = [(w, v) for w in workspaces for v in variants if not v.startswith("floor")]
    cases += [("-", v) for v in variants if v.startswith("floor")]
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores", flush=True)
    rounds: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    # Cases alternate within a round, so a shared machine's drift weighs on each alike.
    for n in range(args.rounds):
        for workspace, variant in cases:
            r = _in_child(_measure, args.days, variant, workspace, args.postgres_url, args.event_batch_size)
            book = r["wall"] - r["load"]
            rounds[(workspace, variant)].append(r)
            print(
                f"round {n + 1} {workspace} {variant}: {r['days']:,} days, {r['messages']:,} messages: "
                f"wall {r['wall']:.1f} s, load {r['load']:.1f} s, bookkeeping {book:.1f} s "
                f"({book / r['wall']:.0%}); {r['records']:,} event records",
                flush=True,
            )
            print("  records: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["events"].items())))
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"{'workspace':<9} {'variant':<8} {'days':>6} {'msgs/day':>8} {'wall s':>7} {'load s':>7} "
        f"{'book s':>7} {'book %':>7} {'records':>8} {'ms/record':>9}"
    )
    medians = {}
    for (workspace, variant), runs in rounds.items():
        wall = statistics.median(r["wall"] for r in runs)
        load = statistics.median(r["load"] for r in runs)
        book = statistics.median(r["wall"] - r["load"] for r in runs)
        medians[(workspace, variant)] = wall
        records, per_day = runs[0]["records"], runs[0]["messages"] / runs[0]["days"]
        print(
            f"{workspace:<9} {variant:<8} {runs[0]['days']:>6,} {per_day:>8.1f} "
            f"{wall:>7.1f} {load:>7.1f} {book:>7.1f} {book / wall:>7.0%} {records:>8,} "
            f"{1000 * book / max(records, 1):>9.2f}"
        )
    # Dagster's own fixed cost of a run of this shape (the floor: its bodies do nothing), against
    # each workspace's history load.
    for floor in (v for v in variants if v.startswith("floor")):
        fixed, load = medians[("-", floor)], FLOOR_OF[floor]
        shares = [
            f"{fixed / medians[(w, load)]:.0%} of the {w} workspace's {load} wall"
            for w in workspaces
            if (w, load) in medians
        ]
        print(
            f"Dagster's fixed cost per run ({floor}): {fixed:.1f} s"
            + (f" = {', '.join(shares)}" if shares else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
