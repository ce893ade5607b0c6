"""Ingest benchmark: our connectors vs the JSON parse-only ceiling vs dlt's rest_api source.

    python -m bench.ingest [--scale large] [--days 365] [--sources ga4,...] [--dlt-days 30]
    python -m bench.ingest --quick          # small scale, 14 days, < 1 minute

Not a test. The sandbox runs in its own process (`python -m connectors.sandbox serve --port 0`),
so its data generation does not share our GIL; every measurement runs in a fresh child process
(spawned), which reports its rows, wall and CPU seconds and peak RSS (VmHWM).

Per source:
- ours: the connector's pages -> the asset's day table -> orchestration.warehouse.replace_days
  into a temporary DuckDB file (the code path the Dagster assets run), for `--days` days and for 7.
- parse-only: the same HTTP response bodies fetched first and stored as raw bytes on disk, then
  only `json.loads` timed.
- dlt: dlt's rest_api source loading the same endpoints into DuckDB (`--dlt-days` days).

Rates are rows per CPU second of the measuring process (all its threads, DuckDB's included): the
sandbox is a Python process that generates data more slowly than a real API serves it, so wall
time would measure the sandbox. Wall-clock rates are printed too.

Add a source: write its three functions (ours, fetch_bodies, dlt_source) and append a
`SourceSpec` to SOURCES.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

SHORT_DAYS = 7


@dataclass(frozen=True)
class Target:
    """Where the sandbox is and the days to load."""

    base_url: str
    key_file: str
    days: tuple[str, ...]  # ISO dates, oldest first
    workdir: str


@dataclass(frozen=True)
class SourceSpec:
    """One source in the benchmark.

    ours(target, db_path) -> rows committed to DuckDB through the connector and replace_days.
    fetch_bodies(target, out_dir) -> the raw HTTP response bodies written to out_dir (one file each).
    dlt_source(target) -> (a dlt source loading the same endpoints, dataset name).
    rows_in(payload) -> the rows in one parsed body.
    modules: imported before the clock starts (import time is not load time).
    lag_days: the window ends this many days before yesterday.
    """

    name: str
    ours: Callable[[Target, str], int]
    fetch_bodies: Callable[[Target, str], None]
    dlt_source: Callable[[Target], tuple[object, str]]
    rows_in: Callable[[object], int]
    modules: tuple[str, ...] = ()
    lag_days: int = 0  # the newest days the API has no (final) data for yet


# --- GA4 -------------------------------------------------------------------------------------------


def _ga4_client(target: Target):
    from connectors.ga4 import GA4Client, GA4Config
    from connectors.sandbox.brand import SANDBOX_GA4_PROPERTY_ID

    return GA4Client(
        GA4Config(
            property_id=SANDBOX_GA4_PROPERTY_ID,
            credentials_file=target.key_file,
            base_url=f"{target.base_url}/ga4",
        )
    )


def _ga4_bodies(day: str) -> list[tuple[str, dict]]:
    from connectors.ga4 import SESSIONS_DIMENSIONS, SESSIONS_METRICS

    ranges = [{"startDate": day, "endDate": day}]
    leads_dims = ["date", "customEvent:how_heard", "sessionSource", "sessionMedium"]
    leads_dims += ["sessionCampaignName", "landingPagePlusQueryString"]
    return [
        (
            "sessions_daily",
            {
                "dateRanges": ranges,
                "dimensions": [{"name": n} for n in SESSIONS_DIMENSIONS],
                "metrics": [{"name": n} for n in SESSIONS_METRICS],
            },
        ),
        (
            "leads_daily",
            {
                "dateRanges": ranges,
                "dimensions": [{"name": n} for n in leads_dims],
                "metrics": [{"name": "keyEvents"}],
                "dimensionFilter": {
                    "filter": {
                        "fieldName": "eventName",
                        "stringFilter": {"matchType": "EXACT", "value": "generate_lead"},
                    }
                },
            },
        ),
    ]


def ga4_ours(target: Target, db_path: str) -> int:
    import duckdb

    from connectors.ga4 import LEADS_SCHEMA, SESSIONS_SCHEMA, GA4Client
    from orchestration.ga4.assets import _day_table
    from orchestration.warehouse import replace_days

    streams = (
        (GA4Client.sessions, SESSIONS_SCHEMA, "raw_ga4.sessions_daily"),
        (GA4Client.leads, LEADS_SCHEMA, "raw_ga4.leads_daily"),
    )
    stamp = {
        "property_id": "bench",
        "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "run_id": "bench",
    }
    rows = 0
    with _ga4_client(target) as client:
        conn = duckdb.connect(db_path)
        try:
            for text in target.days:
                day = date.fromisoformat(text)
                for fetch, schema, table_name in streams:
                    table, _, _ = _day_table(fetch(client, day), schema, stamp)
                    rows += replace_days(conn, table_name, [day], table)
        finally:
            conn.close()
    return rows


def ga4_fetch_bodies(target: Target, out_dir: str) -> None:
    with _ga4_client(target) as client:
        limit = client.config.page_size
        n = 0
        for day in target.days:
            for _, body in _ga4_bodies(day):
                offset = 0
                while True:
                    response = client._session.post(
                        client.endpoint,
                        json={**body, "limit": str(limit), "offset": str(offset)},
                        timeout=120,
                    )
                    response.raise_for_status()
                    Path(out_dir, f"{n:06d}.json").write_bytes(response.content)
                    n += 1
                    row_count = int(json.loads(response.content).get("rowCount") or 0)
                    offset += limit
                    if offset >= row_count:
                        break


def ga4_dlt_source(target: Target):
    """rest_api, one POST per day and stream: the JSON body names the day (a parent resource's
    field), OffsetPaginator writes limit/offset into the body and stops at rowCount."""
    import dlt
    from dlt.sources.rest_api import rest_api_source
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from connectors.ga4 import SCOPE
    from connectors.sandbox.brand import SANDBOX_GA4_PROPERTY_ID

    credentials = service_account.Credentials.from_service_account_file(target.key_file, scopes=[SCOPE])
    credentials.refresh(Request())

    @dlt.resource(selected=False)
    def days():
        yield [{"day": day} for day in target.days]

    def flatten(dimensions: list[str], metrics: list[tuple[str, type]]):
        def row_to_record(row: dict) -> dict:
            record = {name: v["value"] for name, v in zip(dimensions, row["dimensionValues"], strict=True)}
            for (name, kind), v in zip(metrics, row["metricValues"], strict=True):
                record[name] = kind(v["value"])
            return record

        return row_to_record

    resources = []
    for name, body in _ga4_bodies("{resources.days.day}"):
        dims = [d["name"].replace("customEvent:", "") for d in body["dimensions"]]
        mets = [(m["name"], float if m["name"] == "keyEvents" else int) for m in body["metrics"]]
        resources.append(
            {
                "name": name,
                "endpoint": {
                    "path": f"properties/{SANDBOX_GA4_PROPERTY_ID}:runReport",
                    "method": "POST",
                    "json": {**body, "limit": 100_000, "offset": 0},
                    "data_selector": "rows",
                    "paginator": {
                        "type": "offset",
                        "limit": 100_000,
                        "offset_body_path": "offset",
                        "limit_body_path": "limit",
                        "total_path": "rowCount",
                    },
                },
                "processing_steps": [{"map": flatten(dims, mets)}],
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{target.base_url}/ga4/v1beta/",
                "auth": {"type": "bearer", "token": credentials.token},
            },
            "resources": [days, *resources],
        }
    )
    return source, "raw_ga4"


def _ga4_rows(payload) -> int:
    return len(payload.get("rows") or [])


# --- Search Console ------------------------------------------------------------------------------------


def _gsc_client(target: Target):
    from connectors.gsc import GSCClient, GSCConfig
    from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL

    return GSCClient(
        GSCConfig(
            site_url=SANDBOX_GSC_SITE_URL,
            credentials_file=target.key_file,
            base_url=f"{target.base_url}/gsc",
        )
    )


def _gsc_bodies(day: str) -> list[tuple[str, dict]]:
    from connectors.gsc import QUERIES_DIMENSIONS

    common = {"startDate": day, "endDate": day, "type": "WEB", "dataState": "FINAL"}
    return [
        ("queries_daily", {**common, "dimensions": [d.upper() for d in QUERIES_DIMENSIONS]}),
        ("totals_daily", {**common, "dimensions": ["DATE"]}),
    ]


def gsc_ours(target: Target, db_path: str) -> int:
    import duckdb

    from connectors.gsc import QUERIES_SCHEMA, TOTALS_SCHEMA, GSCClient
    from orchestration.gsc.assets import _day_table
    from orchestration.warehouse import replace_days

    streams = (
        (GSCClient.queries, QUERIES_SCHEMA, "raw_gsc.queries_daily"),
        (GSCClient.totals, TOTALS_SCHEMA, "raw_gsc.totals_daily"),
    )
    rows = 0
    with _gsc_client(target) as client:
        stamp = {
            "site_url": client.config.site_url,
            "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_id": "bench",
        }
        conn = duckdb.connect(db_path)
        try:
            for text in target.days:
                day = date.fromisoformat(text)
                for fetch, schema, table_name in streams:
                    table = _day_table(fetch(client, day), schema, stamp)
                    rows += replace_days(conn, table_name, [day], table)
        finally:
            conn.close()
    return rows


def gsc_fetch_bodies(target: Target, out_dir: str) -> None:
    with _gsc_client(target) as client:
        limit = client.config.row_limit
        n = 0
        for day in target.days:
            for _, body in _gsc_bodies(day):
                start = 0
                while True:
                    response = client._session.post(
                        client.endpoint, json={**body, "rowLimit": limit, "startRow": start}, timeout=120
                    )
                    response.raise_for_status()
                    Path(out_dir, f"{n:06d}.json").write_bytes(response.content)
                    n += 1
                    if len(json.loads(response.content).get("rows") or []) < limit:
                        break
                    start += limit


def gsc_dlt_source(target: Target):
    """rest_api, one POST per day and query: startRow/rowLimit paged in the JSON body."""
    import dlt
    from dlt.sources.rest_api import rest_api_source
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from connectors.gsc import METRICS, SCOPE
    from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL

    credentials = service_account.Credentials.from_service_account_file(target.key_file, scopes=[SCOPE])
    credentials.refresh(Request())

    @dlt.resource(selected=False)
    def days():
        yield [{"day": day} for day in target.days]

    def flatten(dimensions: list[str]):
        def row_to_record(row: dict) -> dict:
            record = dict(zip(dimensions, row["keys"], strict=True))
            for name in METRICS:
                record[name] = row[name]
            return record

        return row_to_record

    site = quote(SANDBOX_GSC_SITE_URL, safe="")
    resources = []
    for name, body in _gsc_bodies("{resources.days.day}"):
        resources.append(
            {
                "name": name,
                "endpoint": {
                    "path": f"webmasters/v3/sites/{site}/searchAnalytics/query",
                    "method": "POST",
                    "json": {**body, "rowLimit": 25_000, "startRow": 0},
                    "data_selector": "rows",
                    "paginator": {
                        "type": "offset",
                        "limit": 25_000,
                        "offset_body_path": "startRow",
                        "limit_body_path": "rowLimit",
                        "total_path": None,
                        "stop_after_empty_page": True,
                    },
                },
                "processing_steps": [{"map": flatten([d.lower() for d in body["dimensions"]])}],
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{target.base_url}/gsc/",
                "auth": {"type": "bearer", "token": credentials.token},
            },
            "resources": [days, *resources],
        }
    )
    return source, "raw_gsc"


SOURCES: list[SourceSpec] = [
    SourceSpec(
        "ga4",
        ga4_ours,
        ga4_fetch_bodies,
        ga4_dlt_source,
        _ga4_rows,
        modules=("duckdb", "connectors.ga4", "orchestration.ga4.assets", "orchestration.warehouse"),
    ),
    SourceSpec(
        "gsc",
        gsc_ours,
        gsc_fetch_bodies,
        gsc_dlt_source,
        _ga4_rows,  # the same "rows" list
        modules=("duckdb", "connectors.gsc", "orchestration.gsc.assets", "orchestration.warehouse"),
        lag_days=3,  # Search Console finalises a day after ~3 days (GSC_FINAL_LAG_DAYS)
    ),
]


# --- measurements (each in a fresh child process) ----------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _spec(name: str) -> SourceSpec:
    return next(s for s in SOURCES if s.name == name)


def _measure_ours(name: str, target: Target) -> dict:
    import importlib

    spec = _spec(name)
    for module in spec.modules:
        importlib.import_module(module)
    # One day first, into another file: lazy imports and first-call set-up are not throughput.
    warm = Path(tempfile.mkdtemp(dir=target.workdir))
    first_day = Target(target.base_url, target.key_file, target.days[:1], target.workdir)
    spec.ours(first_day, str(warm / "w.duckdb"))
    db = Path(tempfile.mkdtemp(dir=target.workdir)) / "ours.duckdb"
    wall, cpu = time.perf_counter(), _cpu()
    rows = spec.ours(target, str(db))
    return {
        "rows": rows,
        "wall": time.perf_counter() - wall,
        "cpu": _cpu() - cpu,
        "rss_mb": _peak_rss_mb(),
    }


def _measure_parse(name: str, target: Target) -> dict:
    import json as stdlib_json

    spec = _spec(name)
    out = tempfile.mkdtemp(dir=target.workdir)
    spec.fetch_bodies(target, out)
    rows, seconds, size = 0, 0.0, 0
    for path in sorted(Path(out).iterdir()):
        raw = path.read_bytes()
        size += len(raw)
        started = time.process_time()
        payload = stdlib_json.loads(raw)
        seconds += time.process_time() - started
        rows += spec.rows_in(payload)
        del payload, raw
        path.unlink()
    return {"rows": rows, "cpu": seconds, "bytes": size}


def _measure_dlt(name: str, target: Target) -> dict:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt

    work = Path(tempfile.mkdtemp(dir=target.workdir))
    source, dataset = _spec(name).dlt_source(target)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{name}",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name=dataset,
    )
    wall, cpu = time.perf_counter(), _cpu()
    pipeline.run(source)
    elapsed, used = time.perf_counter() - wall, _cpu() - cpu
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows = sum(n for table, n in counts.items() if not table.startswith("_dlt"))
    return {"rows": rows, "wall": elapsed, "cpu": used, "rss_mb": _peak_rss_mb()}


def _in_child(function: Callable[..., dict], *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(function, args)


# --- the sandbox process -------------------------------------------------------------------------------


class SandboxProcess:
    """`python -m connectors.sandbox serve --port 0` in a child process; its URL from its output."""

    def __init__(self, scale: str, workdir: str):
        self.key_file = str(Path(workdir) / "sandbox-key.json")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connectors.sandbox", "serve", "--scale", scale, "--port", "0"]
            + ["--credentials-file", self.key_file],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            match = re.search(r"serving at (http://\S+)", line)
            if match:
                self.base_url = match.group(1)
            if line.startswith("Press Ctrl-C") or time.monotonic() > deadline:
                break
        if not self.base_url:
            self.stop()
            raise RuntimeError("the sandbox did not print its URL")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- main ---------------------------------------------------------------------------------------------


def _window(n: int, lag_days: int = 0) -> tuple[str, ...]:
    # the sandbox serves up to yesterday (UTC)
    last = datetime.now(timezone.utc).date() - timedelta(days=1 + lag_days)
    return tuple((last - timedelta(days=n - 1 - i)).isoformat() for i in range(n))


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="large", help="sandbox scale (default: large)")
    parser.add_argument("--days", type=int, default=365, help="the long window in days (default: 365)")
    parser.add_argument("--dlt-days", type=int, help="days dlt loads (default: min(days, 30))")
    parser.add_argument("--sources", default=",".join(s.name for s in SOURCES), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="small scale, 14 days: under a minute")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.days = "small", 14
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    unknown = [n for n in names if n not in {s.name for s in SOURCES}]
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(s.name for s in SOURCES)}")
    dlt_days = args.dlt_days or min(args.days, 30)
    if not args.no_dlt:
        try:
            import dlt  # noqa: F401
        except ImportError:
            print("dlt is not installed (pip install 'dlt[duckdb]'); skipping dlt", file=sys.stderr)
            args.no_dlt = True

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
        sandbox = SandboxProcess(args.scale, workdir)
        print(f"sandbox (scale {args.scale}) at {sandbox.base_url}", flush=True)
        try:
            for name in names:
                spec = _spec(name)

                def target(n: int, lag: int = spec.lag_days) -> Target:
                    return Target(sandbox.base_url, sandbox.key_file, _window(n, lag), workdir)

                print(f"{name}: ours {SHORT_DAYS} days...", flush=True)
                short = _in_child(_measure_ours, name, target(SHORT_DAYS))
                print(f"{name}: ours {args.days} days...", flush=True)
                long = _in_child(_measure_ours, name, target(args.days))
                print(f"{name}: parse-only {args.days} days...", flush=True)
                parse = _in_child(_measure_parse, name, target(args.days))
                dlt_result = None
                if not args.no_dlt:
                    print(f"{name}: dlt {dlt_days} days...", flush=True)
                    dlt_result = _in_child(_measure_dlt, name, target(dlt_days))
                results.append((name, short, long, parse, dlt_result))
        finally:
            sandbox.stop()

    header = (
        f"{'source':<8} {'days':>5} {'rows':>10} {'ours r/s':>10} {'parse r/s':>10} {'ours/parse':>10} "
        f"{'dlt r/s':>9} {'ours/dlt':>9} {'RSS 7d':>8} {f'RSS {args.days}d':>9} {'RSS ratio':>9}"
    )
    print()
    print(f"scale {args.scale}; rates are rows per CPU second of the loading process")
    print(header)
    print("-" * len(header))
    for name, short, long, parse, dlt_result in results:
        ours = _rate(long["rows"], long["cpu"])
        ceiling = _rate(parse["rows"], parse["cpu"])
        dlt_rate = _rate(dlt_result["rows"], dlt_result["cpu"]) if dlt_result else float("nan")
        print(
            f"{name:<8} {args.days:>5} {long['rows']:>10,} {ours:>10,.0f} {ceiling:>10,.0f} "
            f"{ours / ceiling:>10.2f} {dlt_rate:>9,.0f} {ours / dlt_rate:>9.1f} "
            f"{short['rss_mb']:>6.0f}MB {long['rss_mb']:>7.0f}MB {long['rss_mb'] / short['rss_mb']:>9.2f}"
        )
    print("targets: ours/parse >= 0.5, ours/dlt >= 20, RSS ratio <= 1.5")
    for name, _, long, parse, dlt_result in results:
        line = (
            f"{name}: ours {long['rows']:,} rows in {long['wall']:.1f}s wall / {long['cpu']:.1f}s CPU "
            f"({_rate(long['rows'], long['wall']):,.0f} rows/s wall); parse-only {parse['rows']:,} rows, "
            f"{parse['bytes'] / 1e6:,.0f} MB in {parse['cpu']:.1f}s"
        )
        if dlt_result:
            line += (
                f"; dlt {dlt_result['rows']:,} rows ({dlt_days} days) in {dlt_result['wall']:.1f}s wall / "
                f"{dlt_result['cpu']:.1f}s CPU, peak RSS {dlt_result['rss_mb']:.0f}MB"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
