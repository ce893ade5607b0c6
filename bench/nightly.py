"""Nightly refresh benchmark: what one night costs on a year of history and on a month.

    python -m bench.nightly --scale large      # the issue's figures: 365 and 30 days, 3 nights each
    python -m bench.nightly                    # demo scale, 365 and 30 days, 3 nights each
    python -m bench.nightly --quick            # small scale, 90 and 30 days, 1 night each
    python -m bench.nightly --scale small --long-days 365 --short-days 30 --nights 2

Not a test. Two histories are built from the sandbox, one holding the `--long-days` days before
yesterday and one the `--short-days` days before it, each by one run of the job
`refresh_warehouse` (every source, dbt, checks, the serving snapshot), as `make demo` builds its
history. They are cached (`--cache-dir`, default data/bench-nightly/<scale>-<days>d): a large
year takes long to load, so later runs start from the cached warehouse as it was right after its
build, dated as of the day it was built (its "yesterday"). When the dbt project changed since the
cache was written, the cached warehouse is first rebuilt by `dbt build --full-refresh`, timed and
printed (the cost of a full rebuild), and the cache is kept in step with the project.

Each run copies both cached histories to a temporary directory and gives each `--nights` nightly
runs, alternating between the two: the same job with the nightly tag
(orchestration/partitions.py NIGHTLY_TAG) over the trailing days, as the schedule runs it; the
first night loads the history's "yesterday", which is new, and re-pulls the days each source
revises; later nights re-pull the same days (the same work). Before the timed nights, one untimed
night on a throwaway copy of the short history warms the sandbox's caches, so no timed night pays
the sandbox's first generation of the days. Each run is timed inside its own
spawned process, from `execute_in_process` to its return, so it pays what a run worker pays; its
peak RSS is that process's and its dbt child's (VmHWM, the larger of the two).

Printed: the median nightly time on each history, their ratio (targets: whole night <= 1.15, dbt
step <= 1.3: a night costs the new days, not the history), where the time goes (Dagster run
start, loads, dbt start-up, dbt's nodes, the publish), the fixed overheads as a share of the
night, and the dbt nodes whose time grew most with history. Beside wall time, each night's CPU
seconds (user + system of the run's process and of its dbt child, from getrusage; the sandbox's
own process is not counted) and their ratios: on a shared machine whose load changes from one
night to the next, CPU time compares the histories where wall time cannot. The sandbox is served
from its own process (orchestration.demo). The line before last is
`cpu night <long>d/<short>d=X.XX dbt <long>d/<short>d=Y.YY [...]`; the last line (wall time) is
`night <long>d/<short>d=X.XX dbt <long>d/<short>d=Y.YY`.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench.direct_history import DIRECT_ASSETS, load_direct
from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

DBT_STEP = "dbt_models"
SERVING_STEP_PREFIX = "serving"


def _yesterday() -> date:
    # The nightly time zone of these runs is UTC.
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def _environment(workdir: Path, history_start: date) -> None:
    """Point this (child) process at the history's own warehouse, snapshot and Dagster instance."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # orchestration.definitions builds its module-level `defs` from the environment on import: set
    # it too, so nothing here ever names the project's own data/ files.
    os.environ["WAREHOUSE_PATH"] = str(workdir / "warehouse.duckdb")
    os.environ["SERVING_PATH"] = str(workdir / "serving" / "marts.duckdb")
    os.environ["HISTORY_START_DATE"] = history_start.isoformat()
    os.environ["NIGHTLY_TIMEZONE"] = "UTC"
    os.environ["NIGHTLY_SCHEDULE_STATUS"] = "stopped"
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"


def _peak_rss_mb() -> float:
    """The peak RSS of this process and of its largest waited-for child (dbt), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux: kilobytes


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of its waited-for children so far. The
    run's only child is the dbt CLI (dagster-dbt runs it and waits), so `children` is dbt's."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = children.ru_utime + children.ru_stime
    return {"total": own.ru_utime + own.ru_stime + child, "children": child}


def _run(
    workdir: str, days: int, nightly: bool, as_of: str, skip_assets: tuple[tuple[str, ...], ...] = ()
) -> dict:
    """In a spawned child: one run of refresh_warehouse on the history of `days` days in `workdir`.

    `as_of` is the history's "yesterday" (ISO date). The first call (nightly=False) loads the
    history, as a history load (the job without partitions, as `make backfill` runs a long range),
    leaving out the ingestion assets under the key prefixes `skip_assets` (written beforehand by
    bench/direct_history.py); later calls run one night.
    """
    started_process = time.monotonic()
    yesterday = date.fromisoformat(as_of)
    history_start = yesterday - timedelta(days=days)
    _environment(Path(workdir), history_start)

    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.jobs import NIGHTLY_TRAILING_DAYS, range_tags
    from orchestration.partitions import NIGHTLY_TAG, history_tags
    from orchestration.settings import Settings

    instance = dg.DagsterInstance.get()
    selection = None
    if nightly:
        defs = build_definitions(Settings.from_env())
        job = defs.resolve_job_def("refresh_warehouse")
        first = yesterday - timedelta(days=NIGHTLY_TRAILING_DAYS)
        tags = {**range_tags(first.isoformat(), yesterday.isoformat()), NIGHTLY_TAG: "true"}
    else:
        defs = build_definitions(Settings.from_env(), partitioned=False)
        job = defs.resolve_job_def("refresh_warehouse")
        last = yesterday - timedelta(days=1)
        tags = history_tags(history_start, last)
        if skip_assets:
            graph = defs.resolve_asset_graph()
            selection = [
                key
                for key in graph.materializable_asset_keys
                if not (len(key.path) == 2 and any(tuple(key.path[: len(p)]) == p for p in skip_assets))
            ]
    code_load = time.monotonic() - started_process

    cpu_before = _cpu_seconds()
    started = time.time()
    result = job.execute_in_process(
        instance=instance, tags=tags, raise_on_error=False, asset_selection=selection
    )
    ended = time.time()
    cpu_after = _cpu_seconds()

    steps: dict[str, list[float]] = {}
    step_ok: dict[str, bool] = {}
    checks_failed = []
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        span = steps.setdefault(event.step_key, [entry.timestamp, entry.timestamp])
        if event.event_type_value == "STEP_START":
            span[0] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            span[1] = entry.timestamp
            step_ok[event.step_key] = event.event_type_value == "STEP_SUCCESS"
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.asset_check_evaluation_data
            if not data.passed and data.severity == dg.AssetCheckSeverity.ERROR:
                checks_failed.append(data.check_name)
    dbt = _dbt_timings(result.run_id, steps.get(DBT_STEP))
    return {
        "days": days,
        "nightly": nightly,
        "success": result.success,
        "checks_failed": checks_failed,
        "code_load": code_load,
        "wall": ended - started,
        "cpu": cpu_after["total"] - cpu_before["total"],
        "cpu_children": cpu_after["children"] - cpu_before["children"],
        "run_start": min(span[0] for span in steps.values()) - started if steps else None,
        "run_end": ended - max(span[1] for span in steps.values()) if steps else None,
        "steps": {key: span[1] - span[0] for key, span in steps.items()},
        "step_ok": step_ok,
        "dbt": dbt,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _full_refresh(workdir: str, days: int, as_of: str) -> dict:
    """In a spawned child: `dbt build --full-refresh` (as the nightly builds: no unit tests) on the
    warehouse in `workdir`, timed; every model is rebuilt from the raw tables."""
    import subprocess

    history_start = date.fromisoformat(as_of) - timedelta(days=days)
    _environment(Path(workdir), history_start)

    from orchestration.brand import current_brand
    from orchestration.dbt.assets import BUILD_ARGS
    from orchestration.dbt.member_hash import MEMBER_HASH_KEY_ENV, member_hash_key

    target = Path(workdir) / "dbt_target"
    env = {
        **os.environ,
        MEMBER_HASH_KEY_ENV: member_hash_key(),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *BUILD_ARGS,
        "--full-refresh",
        "--quiet",
        "--vars",
        json.dumps(current_brand().dbt_vars()),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    started = time.time()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.time() - started
    shutil.rmtree(target, ignore_errors=True)
    return {
        "days": days,
        "success": completed.returncode == 0,
        "output": (completed.stdout + completed.stderr)[-4000:],
        "wall": wall,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _dbt_timings(run_id: str, step_span: list[float] | None) -> dict:
    """dbt's own timings from the run's run_results.json (dagster-dbt's target directory for the
    run, which is then removed: it is this benchmark's litter in dbt_project/target)."""
    out: dict = {"startup": None, "nodes": {}, "node_total": 0.0}
    paths = glob.glob(str(DBT_PROJECT_DIR / "target" / f"{DBT_STEP}-{run_id[:7]}-*"))
    for path in paths:
        results_file = Path(path) / "run_results.json"
        if results_file.exists() and step_span:
            results = json.loads(results_file.read_text())["results"]
            starts, ends = [], []
            for r in results:
                timing = {t["name"]: t for t in r.get("timing", [])}
                if "compile" not in timing or "execute" not in timing:
                    continue
                start = _epoch(timing["compile"]["started_at"])
                end = _epoch(timing["execute"]["completed_at"])
                starts.append(start)
                ends.append(end)
                out["nodes"][r["unique_id"]] = end - start
            if starts:
                out["startup"] = min(starts) - step_span[0]
                out["node_total"] = max(ends) - min(starts)
                out["teardown"] = step_span[1] - max(ends)
        shutil.rmtree(path, ignore_errors=True)
    return out


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _in_child(function, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(function, args)


def _is_model_step(step_key: str) -> bool:
    return step_key == DBT_STEP or step_key.startswith(SERVING_STEP_PREFIX)


def dbt_fingerprint() -> str:
    """A hash of the dbt project's sources: a cached history built under another one is rebuilt."""
    digest = hashlib.sha256()
    files = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for folder in ("models", "macros", "seeds", "tests", "plugins"):
        files.extend(sorted(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()))
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CACHE_META = "bench-meta.json"
# Written when a history's build starts (its "yesterday"), so an interrupted build resumes.
BUILDING_META = "bench-building.json"


def cached_history(cache_dir: Path, scale: str, days: int) -> tuple[Path, dict, dict | None]:
    """The cached history of `days` days at `scale`, built (or brought up to the current dbt
    project) first when needed. Returns its folder, its metadata and the full refresh run, if one
    ran."""
    entry = cache_dir / f"{scale}-{days}d"
    meta_file = entry / CACHE_META
    fingerprint = dbt_fingerprint()
    if not meta_file.exists():
        building = entry / BUILDING_META
        if building.exists():
            # an interrupted build resumes: the days its direct load wrote are in the ledger
            as_of = json.loads(building.read_text())["as_of"]
            print(f"resuming the {days}-day history at scale {scale} as of {as_of} in {entry}...", flush=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)
            as_of = _yesterday().isoformat()
            print(f"building the {days}-day history at scale {scale} into {entry}...", flush=True)
            entry.mkdir(parents=True)
            building.write_text(json.dumps({"as_of": as_of}))
        yesterday = date.fromisoformat(as_of)
        direct = load_direct(
            str(entry / "warehouse.duckdb"),
            yesterday - timedelta(days=days),
            yesterday - timedelta(days=1),
            scale,
            seed=_seed(),
        )
        print(
            f"  raw tables written from the generators in {direct['seconds']:.0f} s "
            f"({direct['days_written']} of {direct['days']} days): "
            + ", ".join(f"{name} {n:,}" for name, n in direct["rows"].items()),
            flush=True,
        )
        build = _in_child(_run, str(entry), days, False, as_of, DIRECT_ASSETS)
        build["direct"] = direct
        failed_steps = [key for key, ok in build["step_ok"].items() if not ok]
        if any(not _is_model_step(key) for key in failed_steps) or not build["step_ok"]:
            _checked(build)
        # Loads are the long part: a history whose every load succeeded is kept even when its dbt
        # step failed; its models are rebuilt by `dbt build --full-refresh` below.
        models_built = build["success"] and not build["checks_failed"]
        meta = {
            "scale": scale,
            "days": days,
            "as_of": as_of,
            "direct_today": as_of,
            "dbt_fingerprint": fingerprint if models_built else None,
            "build": build,
        }
        meta_file.write_text(json.dumps(meta, indent=1))
        print(
            f"  {build['wall']:.0f} s{'' if models_built else ' (loads only: the dbt step failed)'}",
            flush=True,
        )
        if models_built:
            return entry, meta, None
    else:
        meta = json.loads(meta_file.read_text())
        print(f"cached {days}-day history at scale {scale}, as of {meta['as_of']}: {entry}", flush=True)
    if meta.get("direct_today") != meta["as_of"]:
        # Written before load_direct dated a history the day after its last day: its Slack threads
        # and Discourse likes were as of the build's real today, so the first night found none of
        # them grown. Rewritten as the night that loaded its last day leaves them; the models
        # built on them follow by the full refresh below.
        print("  Slack's and Discourse's tables rewritten as of the history's yesterday...", flush=True)
        yesterday = date.fromisoformat(meta["as_of"])
        load_direct(
            str(entry / "warehouse.duckdb"),
            yesterday - timedelta(days=days),
            yesterday - timedelta(days=1),
            scale,
            seed=_seed(),
            parts=("slack", "discourse"),
            rewrite=True,
        )
        meta["direct_today"], meta["dbt_fingerprint"] = meta["as_of"], None
        meta_file.write_text(json.dumps(meta, indent=1))
    if meta["dbt_fingerprint"] == fingerprint:
        return entry, meta, None
    print("  the dbt project changed since: dbt build --full-refresh on it...", flush=True)
    rebuild = _in_child(_full_refresh, str(entry), days, meta["as_of"])
    if not rebuild["success"]:
        raise SystemExit(
            f"dbt build --full-refresh of the cached {days}-day history failed:\n{rebuild['output']}"
        )
    meta["dbt_fingerprint"] = fingerprint
    meta_file.write_text(json.dumps(meta, indent=1))
    print(f"  {rebuild['wall']:.1f} s, peak RSS {rebuild['peak_rss_mb']:.0f} MB", flush=True)
    return entry, meta, rebuild


def _seed() -> int:
    from connectors.sandbox.brand import DEFAULT_SEED

    return int(os.environ.get("SANDBOX_SEED") or DEFAULT_SEED)


def _summary(run: dict) -> dict:
    steps = run["steps"]
    dbt_step = steps.get(DBT_STEP, 0.0)
    publish = sum(v for k, v in steps.items() if k.startswith(SERVING_STEP_PREFIX))
    loads = sum(v for k, v in steps.items() if k != DBT_STEP and not k.startswith(SERVING_STEP_PREFIX))
    dbt = run["dbt"]
    startup = dbt.get("startup") or 0.0
    return {
        "wall": run["wall"],
        "cpu": run.get("cpu", 0.0),
        "cpu_dbt": run.get("cpu_children", 0.0),
        "run_start": run["run_start"] or 0.0,
        "loads": loads,
        "dbt_step": dbt_step,
        "dbt_startup": startup,
        "dbt_nodes": dbt.get("node_total", 0.0),
        "dbt_teardown": dbt.get("teardown", 0.0),
        "publish": publish,
        "run_end": run["run_end"] or 0.0,
        "code_load": run["code_load"],
    }


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(_summary(r)[key] for r in runs)


def _node_medians(runs: list[dict]) -> dict[str, float]:
    ids = set().union(*(r["dbt"]["nodes"] for r in runs))
    return {i: statistics.median(r["dbt"]["nodes"].get(i, 0.0) for r in runs) for i in ids}


NODE_KINDS = {"unit_test": "unit tests", "test": "data tests", "model": "models", "seed": "seeds"}


def _node_kind(unique_id: str) -> str:
    kind = unique_id.split(".")[0]
    return NODE_KINDS.get(kind, kind)


def report(args, builds: dict[int, dict], nights: dict[int, list[dict]], rebuilds: dict[int, dict]) -> None:
    long_days, short_days = args.long_days, args.short_days
    print()
    print(
        f"scale {args.scale}; {args.nights} night(s) per history, medians; seconds of wall time "
        f"(shared machine: compare the two columns of one run, not runs of different days)"
    )
    rows = [
        ("history: raw tables generated", lambda d: builds[d].get("direct", {}).get("seconds", 0.0)),
        ("history run (cached)", lambda d: builds[d]["wall"]),
        ("  its dbt step", lambda d: builds[d]["steps"].get(DBT_STEP, 0.0)),
        ("dbt --full-refresh (this run)", lambda d: rebuilds[d]["wall"] if d in rebuilds else 0.0),
        ("nightly run", lambda d: _median(nights[d], "wall")),
        ("  Dagster run start", lambda d: _median(nights[d], "run_start")),
        ("  loads (+ raw checks)", lambda d: _median(nights[d], "loads")),
        ("  dbt step", lambda d: _median(nights[d], "dbt_step")),
        ("    dbt start-up", lambda d: _median(nights[d], "dbt_startup")),
        ("    dbt nodes", lambda d: _median(nights[d], "dbt_nodes")),
        ("    after the last node", lambda d: _median(nights[d], "dbt_teardown")),
        ("  publish (serving snapshot)", lambda d: _median(nights[d], "publish")),
        ("  Dagster run end", lambda d: _median(nights[d], "run_end")),
        ("code location load (per run)", lambda d: _median(nights[d], "code_load")),
        ("nightly peak RSS, MB (highest)", lambda d: max(r["peak_rss_mb"] for r in nights[d])),
        ("nightly CPU s (run + dbt)", lambda d: _median(nights[d], "cpu")),
        ("  of which dbt's process", lambda d: _median(nights[d], "cpu_dbt")),
    ]
    print(f"{'':<32}{f'{long_days} days':>12}{f'{short_days} days':>12}{'ratio':>8}")
    for label, value in rows:
        a, b = value(long_days), value(short_days)
        ratio = f"{a / b:.2f}" if b > 0.05 and a > 0.05 else ""
        print(f"{label:<32}{a:>12.1f}{b:>12.1f}{ratio:>8}")

    long_night, short_night = _median(nights[long_days], "wall"), _median(nights[short_days], "wall")
    print()
    long_dbt, short_dbt = _median(nights[long_days], "dbt_step"), _median(nights[short_days], "dbt_step")
    print(
        f"nightly {long_days} days / {short_days} days: {long_night / short_night:.2f} "
        f"(target <= 1.15) [{long_night:.1f} s / {short_night:.1f} s]; dbt step "
        f"{long_dbt / short_dbt:.2f} (target <= 1.3) [{long_dbt:.1f} s / {short_dbt:.1f} s]"
    )
    for days, night in ((long_days, long_night), (short_days, short_night)):
        start = _median(nights[days], "run_start")
        dbt_startup = _median(nights[days], "dbt_startup")
        fixed = start + dbt_startup
        print(
            f"fixed overheads, {days}-day night: Dagster run start {start:.1f} s + dbt start-up "
            f"{dbt_startup:.1f} s = {fixed:.1f} s, {fixed / night:.0%} of {night:.1f} s"
        )

    print()
    print(f"steps other than dbt (median wall s, {long_days} d / {short_days} d), longest first:")
    step_keys = {k for r in nights[long_days] + nights[short_days] for k in r["steps"] if k != DBT_STEP}
    step_medians = {
        days: {k: statistics.median(r["steps"].get(k, 0.0) for r in nights[days]) for k in step_keys}
        for days in (long_days, short_days)
    }
    for key in sorted(step_keys, key=lambda k: -step_medians[long_days][k]):
        a, b = step_medians[long_days][key], step_medians[short_days][key]
        if max(a, b) >= 0.5:
            print(f"  {key:<44}{a:>7.1f} / {b:.1f}")

    long_nodes, short_nodes = _node_medians(nights[long_days]), _node_medians(nights[short_days])
    kinds: dict[str, list[float]] = {}
    for unique_id in set(long_nodes) | set(short_nodes):
        sums = kinds.setdefault(_node_kind(unique_id), [0.0, 0.0, 0])
        sums[0] += long_nodes.get(unique_id, 0.0)
        sums[1] += short_nodes.get(unique_id, 0.0)
        sums[2] += 1
    print()
    print("dbt node time by kind (sum of node times, one thread):")
    print(f"  {'kind':<14}{'nodes':>7}{f'{long_days} d':>10}{f'{short_days} d':>10}")
    for kind, (a, b, n) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:<14}{n:>7}{a:>10.1f}{b:>10.1f}")
    models = sorted(
        (i for i in set(long_nodes) | set(short_nodes) if i.startswith("model.")),
        key=lambda i: -long_nodes.get(i, 0.0),
    )[:8]
    print(f"slowest models ({long_days} d / {short_days} d):")
    for unique_id in models:
        print(
            f"  {unique_id.split('.', 2)[-1]:<40} "
            f"{long_nodes.get(unique_id, 0.0):>6.2f} / {short_nodes.get(unique_id, 0.0):.2f}"
        )
    growth = sorted(
        ((long_nodes.get(i, 0.0) - short_nodes.get(i, 0.0), i) for i in set(long_nodes) | set(short_nodes)),
        reverse=True,
    )[:10]
    print(f"dbt nodes whose time grew most with history ({long_days} d - {short_days} d):")
    for delta, unique_id in growth:
        print(
            f"  {delta:>+6.2f} s  {unique_id.split('.', 2)[-1]:<70} "
            f"{long_nodes.get(unique_id, 0.0):.2f} / {short_nodes.get(unique_id, 0.0):.2f}"
        )
    # CPU seconds do not count the time the process waited for a core: on a shared, loaded machine
    # they compare the two histories where wall time cannot.
    long_cpu, short_cpu = _median(nights[long_days], "cpu"), _median(nights[short_days], "cpu")
    long_cpu_dbt, short_cpu_dbt = (
        _median(nights[long_days], "cpu_dbt"),
        _median(nights[short_days], "cpu_dbt"),
    )
    print(
        f"cpu night {long_days}d/{short_days}d={_ratio(long_cpu, short_cpu)} "
        f"dbt {long_days}d/{short_days}d={_ratio(long_cpu_dbt, short_cpu_dbt)} "
        f"[{long_cpu:.1f} s / {short_cpu:.1f} s; dbt {long_cpu_dbt:.1f} s / {short_cpu_dbt:.1f} s]"
    )
    print(
        f"night {long_days}d/{short_days}d={long_night / short_night:.2f} "
        f"dbt {long_days}d/{short_days}d={long_dbt / short_dbt:.2f}"
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nightly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="demo", help="sandbox scale (default: demo, the make demo brand)")
    parser.add_argument("--long-days", type=int, default=365, help="days of the long history (default: 365)")
    parser.add_argument("--short-days", type=int, default=30, help="days of the short history (default: 30)")
    parser.add_argument("--nights", type=int, default=3, help="nightly runs per history (default: 3)")
    parser.add_argument("--quick", action="store_true", help="small scale, 90 and 30 days, 1 night each")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=PROJECT_ROOT / "data" / "bench-nightly",
        help="where the built histories are kept between runs (default: data/bench-nightly)",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build (or bring up to date) the cached histories and stop"
    )
    parser.add_argument(
        "--full-rebuild",
        action="store_true",
        help="also time `dbt build --full-refresh` on a copy of each history (the cost of a rebuild)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies and print where")
    parser.add_argument(
        "--tolerate-step",
        action="append",
        default=[],
        metavar="STEP",
        help="a step key whose failure does not stop the benchmark (a known bug elsewhere); repeatable",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.long_days, args.short_days, args.nights = "small", 90, 30, 1
    if not (0 < args.short_days < args.long_days) or args.nights < 1:
        parser.error("need 0 < --short-days < --long-days and --nights >= 1")

    from orchestration.commands import sandbox_process

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-nightly-", dir=args.cache_dir))
    os.environ["SANDBOX_SCALE"] = args.scale
    # the sandbox's data, like `make demo`: pacing at the APIs' published limits would make a
    # large year of Slack and Discourse calls take days
    os.environ.setdefault("RATE_LIMITS", "off")
    builds: dict[int, dict] = {}
    rebuilds: dict[int, dict] = {}
    nights: dict[int, list[dict]] = {args.long_days: [], args.short_days: []}
    as_of: dict[int, str] = {}
    try:
        with sandbox_process():
            print(
                f"sandbox (scale {args.scale}) at {os.environ['SANDBOX_URL']}; work in {workdir}", flush=True
            )
            for days in (args.long_days, args.short_days):
                entry, meta, rebuild = cached_history(args.cache_dir, args.scale, days)
                builds[days], as_of[days] = meta["build"], meta["as_of"]
                if rebuild:
                    rebuilds[days] = rebuild
                if args.build_only:
                    continue
                shutil.copytree(
                    entry, workdir / f"h{days}", ignore=shutil.ignore_patterns(CACHE_META, BUILDING_META)
                )
                if args.full_rebuild and days not in rebuilds:
                    print(f"timing dbt build --full-refresh on the {days}-day history...", flush=True)
                    rebuilds[days] = _in_child(_full_refresh, str(workdir / f"h{days}"), days, as_of[days])
                    print(f"  {rebuilds[days]['wall']:.1f} s", flush=True)
            if args.build_only:
                return 0
            # The sandbox generates each day's answers on first request and caches them (its
            # functools caches): untimed, one night on a throwaway copy of the short history pays
            # that, or the first timed night (the long history's) would pay it alone: ~25 s of the
            # sandbox's CPU at the large scale, which made the long history's loads look as if they
            # grew with history.
            warmup = workdir / "warmup"
            shutil.copytree(
                workdir / f"h{args.short_days}",
                warmup,
                ignore=shutil.ignore_patterns(CACHE_META, BUILDING_META),
            )
            warm = _in_child(_run, str(warmup), args.short_days, True, as_of[args.short_days])
            shutil.rmtree(warmup, ignore_errors=True)
            print(
                f"sandbox warm-up night (untimed, a copy of the short history): {warm['wall']:.1f} s",
                flush=True,
            )
            # alternate, so that the load of a shared machine weighs on both histories alike
            for night in range(1, args.nights + 1):
                for days in (args.long_days, args.short_days):
                    run = _checked(
                        _in_child(_run, str(workdir / f"h{days}"), days, True, as_of[days]),
                        tuple(args.tolerate_step),
                    )
                    nights[days].append(run)
                    print(
                        f"night {night}, {days}-day history: {run['wall']:.1f} s "
                        f"(dbt step {_summary(run)['dbt_step']:.1f} s, CPU {run['cpu']:.1f} s of which "
                        f"dbt {run['cpu_children']:.1f} s, load average {os.getloadavg()[0]:.1f}, "
                        f"peak RSS {run['peak_rss_mb']:.0f} MB)"
                        + (
                            f"; failed, tolerated: {', '.join(run['tolerated_failures'])}"
                            if run.get("tolerated_failures")
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(args, builds, nights, rebuilds)
    return 0


def _checked(run: dict, tolerated: tuple[str, ...] = ()) -> dict:
    failed = [key for key, ok in run["step_ok"].items() if not ok]
    if failed and set(failed) <= set(tolerated) and not run["checks_failed"]:
        # a step the caller knows to be broken (--tolerate-step): timed, named in the output
        run["tolerated_failures"] = failed
        return run
    if not run["success"] or run["checks_failed"]:
        raise SystemExit(
            f"the {'nightly' if run['nightly'] else 'history'} run on {run['days']} days failed "
            f"(blocking checks failed: {run['checks_failed'] or 'none'}); see the run's log"
        )
    return run


if __name__ == "__main__":
    sys.exit(main())
