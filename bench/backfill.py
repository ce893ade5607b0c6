"""Calls and wall time of a backfill and a nightly run at the APIs' published limits:
`python -m bench.backfill`.

    python -m bench.backfill [--scale large] [--days 365] [--sources slack,ga4,gsc,meta,discourse]
                             [--time-scale 100] [--latency-ms 150] [--no-dlt]
    python -m bench.backfill --together WAREHOUSE [--scale large] [--sources ...]

`--together`: only the nightly of every source as one run of the refresh job over a copy of
WAREHOUSE (a year loaded the day before at `--scale`, as bench.nightly caches it), its load steps
in parallel processes as a nightly with real sources runs them (orchestration/jobs.py), on the same
time-scaled sandbox; each step process counts its calls and waits, and each source's time is
converted back as below. Printed per source (with its calls by method) and for the run's loads,
beside the sum of the sources (the loads one after another, as the run's steps ran before they
overlapped). The night is a night after a night: the history must hold what the night that loaded
its last day left (bench/direct_history.py writes it so), and a history whose Slack threads hold
replies posted after its last day is refused (tonight would find no thread grown).

Not a test. Per source, in fresh child processes (spawned; peak RSS is theirs):

1. backfill: the source's Dagster assets materialize `--days` days (one single-run backfill, the
   way the UI launches one) from a sandbox that enforces the published limits
   (SANDBOX_RATE_LIMITS=on) and answers after a `--latency-ms` round trip, both `--time-scale`
   times faster than real time; the connectors pace themselves with the same scale
   (RATE_LIMIT_TIME_SCALE). The sandbox's "today" is pinned.
2. nightly: the next day, the nightly run (the nightly tag: each source's trailing days) on the
   same warehouse, from a sandbox whose today is one day later (Slack threads grew meanwhile;
   Discourse posts of the last three days gained the likes given that day: the sandbox serves a
   post's likes as they are given, over the three days after it).

Every HTTP call is counted where all of them pass, `requests.Session.send` (google-auth's session
is one too), by method and path with ids replaced by {id}: whatever a connector does (the Discourse
client is being changed), its calls are counted the same way, and 429 answers are counted there.

Columns:
- calls by method, and the floor: the fewest calls the API allows for the rows loaded, computed
  from the loaded raw tables (not from the connector): each API's largest page over the whole
  range (Slack: conversations.list/users.list 1,000 a page, history 200 a page per channel and
  at least one call per channel, one replies call per thread with replies, on a nightly only per
  thread whose latest_reply moved or that is new; GA4: 250,000 rows a runReport page per report
  over the range, one token; Search Console: 25,000 rows a page per query over the range, one
  token; Meta: 5,000 insights rows a page plus one async job and two status polls, 100 pixel hours
  a page over the range: an async report run is never done at its first poll, since Meta runs it
  after the POST answers (the sandbox answers "Job Running" to the first poll, "Job Completed"
  from the second), so one job costs a POST and two polls at least; Discourse: /latest.json 100
  topics a page over the topics of the posts and topics loaded, /posts.json 50 posts a page and
  the page that reaches past the range, the categories once, the users 100 a page and the short
  page that ends them, and per author of liked posts the cheapest mix of pages of 30 likes
  received (/user_actions.json) and one /post_action_users.json call per post the pages leave
  out: k pages hold at most 30k likes, so they complete at best the author's least-liked posts
  whose likes add up to 30k), on a nightly only for the posts whose like count differs from the
  likers loaded for them before it (the nightly keeps the others' likers).
- wall: what the run takes at the published limits and a `--latency-ms` round trip, rebuilt from
  the time-scaled run: the wall seconds during which some thread waited in the pacing (measured
  by wrapping the pacers of connectors/ratelimit.py) times the time scale, plus one round trip per
  call at the fetch concurrency (2), plus the rest of the run as measured (the wall seconds in
  which no thread was in a request or the pacing: Dagster, parsing, DuckDB, which real time does
  not slow down). The sandbox's own answer time is left out (a real API's is in its round trip).
- floor time: the floor's calls at the published limits: per limit, max(calls x round trip /
  fetch concurrency, calls beyond the first window's burst / the limit's rate).
- 429s received, peak RSS of the loading process, and dlt's rest_api calls for the same range
  (bench/ingest.py's dlt sources, against an unthrottled sandbox; skipped when dlt, an optional
  `bench` extra, is not installed).

The last line: `worst calls/floor=X.XX worst wall/floor=Y.YY 429s=N`.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROUND_TRIP_MS = 150
LAG_DAYS = {"gsc": 3}  # the newest days a source's API has no final data for yet
DEFAULT_TIME_SCALE = 100.0
FETCH_CONCURRENCY = 2  # the assets' default (orchestration/fetching.py)

# (calls per window, window seconds, concurrent) of the published limits, by the method prefix
# they govern; None calls: no count limit (only the round trip and concurrency bound it).
LIMITS: dict[str, tuple[int | None, float, int]] = {
    "slack.tier2": (20, 60.0, FETCH_CONCURRENCY),
    "slack.tier3": (50, 60.0, FETCH_CONCURRENCY),
    "discourse": (60, 60.0, FETCH_CONCURRENCY),
    "gsc": (1200, 60.0, FETCH_CONCURRENCY),
    "ga4": (None, 0.0, FETCH_CONCURRENCY),
    "meta": (None, 0.0, FETCH_CONCURRENCY),
    "google.token": (None, 0.0, 1),
}


@dataclass(frozen=True)
class Source:
    """A source's assets, resource, and how its calls map to limits."""

    name: str
    assets: str  # "module:function" building the assets from a partitions definition
    resource: str  # "module:function" returning the resource in sandbox mode
    limit_of: Callable[[str], str]  # a counted method -> its LIMITS key


def _slack_limit(method: str) -> str:
    # Slack counts its limits per method (and workspace and app): conversations.history and
    # conversations.replies each have their own Tier 3 budget, so each is its own key.
    tier = "slack.tier2" if ("conversations.list" in method or "users.list" in method) else "slack.tier3"
    return f"{tier} {method}"


def _google_limit(name: str) -> Callable[[str], str]:
    return lambda method: "google.token" if "/google/token" in method else name


SOURCES = {
    s.name: s
    for s in (
        Source(
            "slack",
            "orchestration.slack.assets:build_slack_assets",
            "orchestration.slack.resources:slack_resource_from_env",
            _slack_limit,
        ),
        Source(
            "ga4",
            "orchestration.ga4.assets:build_ga4_assets",
            "orchestration.ga4.resources:ga4_resource_from_env",
            _google_limit("ga4"),
        ),
        Source(
            "gsc",
            "orchestration.gsc.assets:build_gsc_assets",
            "orchestration.gsc.resources:gsc_resource_from_env",
            _google_limit("gsc"),
        ),
        Source(
            "meta",
            "orchestration.meta.assets:build_meta_assets",
            "orchestration.meta.resources:meta_resource_from_env",
            lambda method: "meta",
        ),
        Source(
            "discourse",
            "orchestration.discourse.assets:build_discourse_assets",
            "orchestration.discourse.resources:discourse_resource_from_env",
            lambda method: "discourse",
        ),
    )
}


# --- the sandbox, in its own process, with its today pinned -------------------------------------


def _serve(
    seed: int, scale: str, today: date, scale_time: float, latency_ms: float, limited: bool, conn
) -> None:
    from connectors.sandbox.limits import SandboxLimits
    from connectors.sandbox.server import SandboxServer

    limits = SandboxLimits(enabled=limited, time_scale=scale_time, latency_ms=latency_ms if limited else 0.0)
    # Discourse likes arrive over the days after their post, so the nightly finds recent posts'
    # like counts grown, as on a real forum
    server = SandboxServer(
        seed=seed, scale=scale, today=today, limits=limits, discourse_likes_arrive=True
    ).start()
    conn.send(server.base_url)
    conn.recv()  # until told to stop
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((server.limits.throttled, usage.ru_utime + usage.ru_stime))
    server.stop()


class Sandbox:
    """A sandbox server in a spawned process (its data generation off this process's GIL)."""

    def __init__(self, scale: str, today: date, time_scale: float, latency_ms: float, limited: bool = True):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(42, scale, today, time_scale, latency_ms, limited, child), daemon=True
        )
        self._process.start()
        if not self._conn.poll(120):
            self._process.kill()
            raise RuntimeError("the sandbox did not start within 2 minutes")
        self.base_url: str = self._conn.recv()
        self.throttled = 0
        self.cpu = 0.0  # the sandbox process's CPU seconds, known once stopped

    def stop(self) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            if self._conn.poll(30):
                self.throttled, self.cpu = self._conn.recv()
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


# --- counting every HTTP call ----------------------------------------------------------------


_ID = re.compile(r"/(?:act_)?\d[\w.-]*(?=/|:|$)")


def method_of(http_method: str, url: str) -> str:
    """A counted call's label: the HTTP method and the path with ids as {id} (query dropped)."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path
    path = re.sub(r"/properties/[^/:]+", "/properties/{id}", path)
    path = re.sub(r"/sites/[^/]+/searchAnalytics", "/sites/{site}/searchAnalytics", path)
    return f"{http_method} {_ID.sub('/{id}', path)}"


class CallCounter:
    """Counts every request `requests` sends in this process, and the 429 answers; and measures
    `waiting`: the wall seconds during which some thread waited for the API (in a request, or in
    the pacing before one), the part of a run that the time scale shortens."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.throttled = 0
        self.waiting = 0.0  # some thread in a request or in the pacing
        self.pacing = 0.0  # some thread in the pacing
        self._lock = threading.Lock()
        self._waiters = {"any": 0, "pacing": 0}
        self._since = {"any": 0.0, "pacing": 0.0}

    def _enter(self, kinds: tuple[str, ...]) -> None:
        with self._lock:
            for kind in kinds:
                if self._waiters[kind] == 0:
                    self._since[kind] = time.perf_counter()
                self._waiters[kind] += 1

    def _leave(self, kinds: tuple[str, ...]) -> None:
        with self._lock:
            for kind in kinds:
                self._waiters[kind] -= 1
                if self._waiters[kind] == 0:
                    spent = time.perf_counter() - self._since[kind]
                    if kind == "any":
                        self.waiting += spent
                    else:
                        self.pacing += spent

    def _timed(self, function, *kinds: str):
        counter = self

        def timed(*args, **kwargs):
            counter._enter(kinds)
            try:
                return function(*args, **kwargs)
            finally:
                counter._leave(kinds)

        return timed

    def install(self) -> None:
        import requests

        from connectors import ratelimit

        send = self._timed(requests.Session.send, "any")
        counter = self

        def counted(session, request, **kwargs):
            response = send(session, request, **kwargs)
            with counter._lock:
                counter.calls[method_of(request.method, request.url)] += 1
                counter.throttled += response.status_code == 429
            return response

        requests.Session.send = counted
        ratelimit.RateLimits.acquire = self._timed(ratelimit.RateLimits.acquire, "any", "pacing")
        ratelimit.SpacedCalls.wait = self._timed(ratelimit.SpacedCalls.wait, "any", "pacing")


# --- one run of a source's assets, in a child process -------------------------------------------


def _call(spec: str):
    import importlib

    module, function = spec.split(":")
    return getattr(importlib.import_module(module), function)


def _settings(workdir: str, first: date):
    from orchestration.settings import Settings

    return Settings(
        warehouse_path=Path(workdir) / "warehouse.duckdb",
        serving_path=Path(workdir) / "serving.duckdb",
        history_start=first,
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )


def _cpu() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_assets(
    name: str, base_url: str, workdir: str, first: date, last: date, nightly: bool, time_scale: float
) -> dict:
    """Materialize source `name`'s assets for first..last (nightly: with the nightly tag) against
    the sandbox at `base_url`, paced at `time_scale`; calls, 429s, wall seconds, peak RSS, floor."""
    os.environ.update(
        {
            "SANDBOX_URL": base_url,
            "RATE_LIMITS": "on",
            "RATE_LIMIT_TIME_SCALE": str(time_scale),
            # a Meta async job is polled every 5 s of API time
            "META_ASYNC_POLL_SECONDS": str(5.0 / time_scale),
        }
    )
    import logging

    import dagster as dg

    from orchestration.partitions import NIGHTLY_TAG, daily_partitions
    from orchestration.warehouse import DuckDBWarehouse

    logging.getLogger("dagster").setLevel(logging.WARNING)
    source = SOURCES[name]
    settings = _settings(workdir, first - timedelta(days=40))
    assets = [
        a for a in _call(source.assets)(daily_partitions(settings)) if isinstance(a, dg.AssetsDefinition)
    ]
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        name: _call(source.resource)(sandbox=True),
    }
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    if nightly:
        tags[NIGHTLY_TAG] = "true"
    before = _floor_state(name, str(settings.warehouse_path))
    counter = CallCounter()
    counter.install()
    # Dagster's run log goes to a file, not the benchmark's output
    log_path = Path(workdir) / f"{name}-{'nightly' if nightly else 'backfill'}.log"
    saved_stderr = os.dup(2)
    with open(log_path, "w") as log_file:
        os.dup2(log_file.fileno(), 2)
    cpu_started = _cpu()
    started = time.perf_counter()
    with dg.instance_for_test() as instance:
        # one run, as the nightly job runs a source's assets
        ok = dg.materialize(
            assets, instance=instance, tags=tags, resources=resources, raise_on_error=False
        ).success
    wall = time.perf_counter() - started
    cpu = _cpu() - cpu_started
    os.dup2(saved_stderr, 2)
    if not ok:
        sys.stderr.write(log_path.read_text()[-4000:])
    return {
        "ok": bool(ok),
        "cpu": cpu,
        "waiting": counter.waiting,
        "pacing": counter.pacing,
        "calls": dict(counter.calls),
        "throttled": counter.throttled,
        "wall": wall,
        "rss_mb": _peak_rss_mb(),
        "floor": floor(name, str(settings.warehouse_path), before),
    }


# --- floors, from the loaded raw tables -----------------------------------------------------------


def _pages(rows: int, page: int) -> int:
    return max(1, math.ceil(rows / page))


def _floor_state(name: str, path: str) -> dict:
    """What a nightly's floor depends on from before it: Slack's threads as loaded, the number of
    likers loaded per Discourse post."""
    if name not in ("slack", "discourse") or not Path(path).exists():
        return {}
    import duckdb

    with duckdb.connect(path, read_only=True) as conn:
        if name == "discourse":
            try:
                rows = conn.execute(
                    "select post_id, count(*) from raw_discourse.post_likes group by post_id"
                ).fetchall()
            except duckdb.CatalogException:
                return {}
            return {"likers": dict(rows)}
        try:
            rows = conn.execute(
                "select channel_id, ts, latest_reply, _run_id from raw_slack.messages where ts = thread_ts"
            ).fetchall()
        except duckdb.CatalogException:
            return {}
    return {"threads": {(c, ts): latest for c, ts, latest, _ in rows}}


def floor(name: str, path: str, before: dict) -> dict[str, int]:
    """The fewest calls for what the last run loaded (the rows stamped with its run id)."""
    import duckdb

    with duckdb.connect(path, read_only=True) as conn:

        def one(sql: str, params=()) -> int:
            return int(conn.execute(sql, list(params)).fetchone()[0] or 0)

        def last_run(table: str) -> str:
            return conn.execute(f"select _run_id from {table} order by _loaded_at desc limit 1").fetchone()[0]

        if name == "slack":
            run = last_run("raw_slack.messages")
            channels = one("select count(*) from raw_slack.channels")
            users = one("select count(*) from raw_slack.users")
            per_channel = conn.execute(
                "select c.channel_id, count(m.ts) from raw_slack.channels as c "
                "left join raw_slack.messages as m on m.channel_id = c.channel_id and m._run_id = ? "
                "and (m.thread_ts is null or m.ts = m.thread_ts) group by 1",
                [run],
            ).fetchall()
            threads = conn.execute(
                "select channel_id, ts, latest_reply, reply_count from raw_slack.messages "
                "where _run_id = ? and ts = thread_ts and reply_count > 0",
                [run],
            ).fetchall()
            known = before.get("threads", {})
            replies = sum(
                _pages(n + 1, 200)
                for c, ts, latest, n in threads
                if not known or known.get((c, ts)) != latest
            )
            return {
                "GET /slack/conversations.list": _pages(channels, 1000),
                "GET /slack/users.list": _pages(users, 1000),
                "GET /slack/conversations.history": sum(_pages(n, 200) for _, n in per_channel),
                "GET /slack/conversations.replies": replies,
            }
        if name == "ga4":
            run = last_run("raw_ga4.sessions_daily")
            sessions = one("select count(*) from raw_ga4.sessions_daily where _run_id = ?", [run])
            leads = one("select count(*) from raw_ga4.leads_daily where _run_id = ?", [run])
            return {
                "POST /google/token": 1,
                "POST /ga4/v1beta/properties/{id}:runReport": _pages(sessions, 250_000)
                + _pages(leads, 250_000),
            }
        if name == "gsc":
            run = last_run("raw_gsc.queries_daily")
            queries = one("select count(*) from raw_gsc.queries_daily where _run_id = ?", [run])
            totals = one("select count(*) from raw_gsc.totals_daily where _run_id = ?", [run])
            return {
                "POST /google/token": 1,
                "POST /gsc/webmasters/v3/sites/{site}/searchAnalytics/query": _pages(queries, 25_000)
                + _pages(totals, 25_000),
            }
        if name == "meta":
            run = last_run("raw_meta.ad_insights_daily")
            insights = one("select count(*) from raw_meta.ad_insights_daily where _run_id = ?", [run])
            hours = one(
                "select count(distinct hour_start) from raw_meta.pixel_events_hourly where _run_id = ?", [run]
            )
            days = one(
                "select count(distinct date) from raw_meta.pixel_events_hourly where _run_id = ?", [run]
            )
            # a range beyond a week needs the async report: one job and two status polls (the
            # first poll finds it running)
            job = 3 if days > 8 else 0
            return {"meta insights": _pages(insights, 5000) + job, "meta pixel stats": _pages(hours, 100)}
        if name == "discourse":
            return _discourse_floor(conn, last_run("raw_discourse.posts"), before.get("likers"))
    return {}


def _discourse_floor(conn, run: str, loaded: dict[int, int] | None = None) -> dict[str, int]:
    """The fewest Discourse calls for the rows run `run` loaded (see the module docstring). With
    `loaded` (a nightly: the likers held per post before it), only the posts whose like count
    differs from those need their likers looked up."""

    def one(sql: str) -> int:
        return int(conn.execute(sql, [run] * sql.count("?")).fetchone()[0] or 0)

    posts = one("select count(*) from raw_discourse.posts where _run_id = ?")
    topics = one(
        "select count(*) from (select topic_id from raw_discourse.posts where _run_id = ? "
        "union select topic_id from raw_discourse.topics where _run_id = ?)"
    )
    users = one("select count(*) from raw_discourse.users")
    liked = conn.execute(
        "select p.user_id, count(*) from raw_discourse.post_likes as l "
        "join raw_discourse.posts as p on p.post_id = l.post_id and p._run_id = l._run_id "
        "where l._run_id = ? group by p.user_id, l.post_id",
        [run],
    ).fetchall()
    if loaded is not None:
        counts = dict(
            conn.execute(
                "select post_id, like_count from raw_discourse.posts where _run_id = ? and like_count > 0",
                [run],
            ).fetchall()
        )
        changed = {post_id for post_id, n in counts.items() if loaded.get(post_id, 0) != n}
        liked = conn.execute(
            "select p.user_id, count(*) from raw_discourse.post_likes as l "
            "join raw_discourse.posts as p on p.post_id = l.post_id and p._run_id = l._run_id "
            "where l._run_id = ? and list_contains(?, l.post_id) group by p.user_id, l.post_id",
            [run, sorted(changed)],
        ).fetchall()
    by_author: dict[int, list[int]] = {}
    for author, likes in liked:
        by_author.setdefault(author, []).append(likes)
    pages = lookups = 0
    for counts in by_author.values():
        counts.sort()
        best = (0, len(counts))
        for k in range(1, math.ceil(sum(counts) / 30) + 1):
            room, done = 30 * k, 0
            while done < len(counts) and counts[done] <= room:
                room -= counts[done]
                done += 1
            if k + len(counts) - done <= sum(best):  # a tie: the pages (they complete more)
                best = (k, len(counts) - done)
        pages, lookups = pages + best[0], lookups + best[1]
    floor = {
        "GET /discourse/latest.json": topics // 100 + 1,
        "GET /discourse/posts.json": posts // 50 + 1,
        "GET /discourse/categories.json": 1,
        "GET /discourse/admin/users/list/active.json": users // 100 + 1,
        "GET /discourse/user_actions.json": pages,
        "GET /discourse/post_action_users.json": lookups,
    }
    return {method: n for method, n in floor.items() if n}


def _floor_group(method: str) -> str:
    """The floor's name for a counted Meta call (several paths make one insights report)."""
    if "/stats" in method:
        return "meta pixel stats"
    if "/insights" in method or re.search(r"^GET /meta/v[\d.]+/\{id\}$", method):
        return "meta insights"
    return method


def floor_seconds(source: Source, floor_calls: dict[str, int], round_trip: float) -> float:
    """The floor's calls at the published limits and the round trip (see the module docstring)."""
    by_limit: Counter[str] = Counter()
    for method, n in floor_calls.items():
        by_limit[source.limit_of(method)] += n  # a method's calls (made, or the floor's)
    total = 0.0
    for key, n in by_limit.items():
        calls, window, concurrent = LIMITS[key.split(" ")[0]]  # "slack.tier3 <method>": one budget a method
        seconds = n * round_trip / concurrent
        if calls:
            seconds = max(seconds, max(0, n - calls) * window / calls)
        total += seconds
    return total


# --- dlt, for the same range -------------------------------------------------------------------------


def dlt_calls(name: str, scale: str, today: date, days: int, workdir: str) -> int | None:
    """dlt rest_api's calls for the range (bench/ingest.py's dlt source), or None without dlt."""
    try:
        import dlt  # noqa: F401
    except ImportError:
        return None
    from bench.ingest import SOURCES as INGEST_SOURCES
    from bench.ingest import Target, _in_child, _measure_dlt

    if name not in {s.name for s in INGEST_SOURCES}:
        return None
    sandbox = Sandbox(scale, today, 1.0, 0.0, limited=False)
    try:
        from connectors.sandbox import google_service_account_info

        key_file = Path(workdir) / f"dlt-{name}-key.json"
        import json

        key_file.write_text(json.dumps(google_service_account_info(f"{sandbox.base_url}/google/token")))
        last = today - timedelta(days=1)
        window = tuple((last - timedelta(days=days - 1 - i)).isoformat() for i in range(days))
        result = _in_child(_measure_dlt, name, Target(sandbox.base_url, str(key_file), window, workdir))
    finally:
        sandbox.stop()
    return int(result["calls"])


# --- the nightly of every source as one run, its loads in parallel processes ---------------------

COUNTS_DIR_ENV = "BENCH_BACKFILL_COUNTS_DIR"


def together_job():
    """The refresh job as a reconstructable target: each step process of the run imports this
    module, counts its calls and waits (CallCounter) and writes them to COUNTS_DIR_ENV when it
    ends, then builds the definitions from the environment as a launched run's steps do."""
    counts_dir = os.environ.get(COUNTS_DIR_ENV)
    if counts_dir and not getattr(together_job, "counter", None):
        import json
        import multiprocessing.util

        counter = CallCounter()
        counter.install()
        together_job.counter = counter

        def dump() -> None:
            if counter.calls:
                record = {
                    "calls": dict(counter.calls),
                    "waiting": counter.waiting,
                    "pacing": counter.pacing,
                    "throttled": counter.throttled,
                }
                (Path(counts_dir) / f"{os.getpid()}.json").write_text(json.dumps(record))

        # a step's process ends through multiprocessing's exit, which runs these (not atexit's)
        multiprocessing.util.Finalize(None, dump, exitpriority=10)
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    return build_definitions(Settings.from_env()).resolve_job_def("refresh_warehouse")


def _source_of(calls: dict[str, int]) -> str | None:
    """The source a step's process called (Google's token endpoint aside: GA4 and Search Console)."""
    for method in calls:
        path = method.split(" ", 1)[1]
        for name in SOURCES:
            if path.startswith(f"/{name}/"):
                return name
    return None


def nightly_together(args, names: list[str], history: Path) -> dict:
    """One nightly run of `names` over a copy of the warehouse `history` (a year loaded the day
    before, by bench.nightly or `make backfill`), its load steps in parallel processes
    (REFRESH_PARALLEL_STEPS' default), against the time-scaled sandbox; per source and for the run,
    the wall at the published limits (converted back as the per-source figures are)."""
    import json
    import shutil

    import dagster as dg
    import duckdb
    import yaml

    from orchestration.jobs import DEFAULT_PARALLEL_STEPS, execution_config, range_tags
    from orchestration.partitions import NIGHTLY_TAG
    from orchestration.settings import PROJECT_ROOT

    with tempfile.TemporaryDirectory(prefix="bench-together-") as workdir:
        work = Path(workdir)
        for suffix in ("", ".wal"):
            if Path(f"{history}{suffix}").exists():
                shutil.copyfile(f"{history}{suffix}", work / f"warehouse.duckdb{suffix}")
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as conn:
            last_loaded = conn.execute("select max(date) from raw_slack.messages").fetchone()[0]
            newest_reply = conn.execute(
                "select max(to_timestamp(ts::double))::date from raw_slack.messages where ts <> thread_ts"
            ).fetchone()[0]
        if "slack" in names and newest_reply is not None and newest_reply > last_loaded:
            # the night after a night finds the threads of one day grown; this history's threads
            # already hold the replies tonight is meant to fetch
            raise SystemExit(
                f"{history}: raw_slack.messages ends on {last_loaded} but holds replies posted on "
                f"{newest_reply}: the history was written as of a later day than the night that "
                "loaded its last day, so tonight would find no thread grown. Rebuild it with "
                "bench.nightly (which brings an older cache in line), or rewrite its Slack tables "
                "with bench.direct_history.load_direct(..., rewrite=True)."
            )
        # the next night: the sandbox's today a day after the history's, the nightly up to yesterday
        yesterday = last_loaded + timedelta(days=1)
        sandbox = Sandbox(args.scale, yesterday + timedelta(days=1), args.time_scale, args.latency_ms)
        counts = work / "counts"
        counts.mkdir()
        env = {
            "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
            "SERVING_PATH": str(work / "serving.duckdb"),
            "HISTORY_START_DATE": (yesterday - timedelta(days=60)).isoformat(),
            "SANDBOX_URL": sandbox.base_url,
            "SANDBOX_SCALE": args.scale,
            "SANDBOX_SOURCES": ",".join(names),
            "RATE_LIMITS": "on",
            "RATE_LIMIT_TIME_SCALE": str(args.time_scale),
            "META_ASYNC_POLL_SECONDS": str(5.0 / args.time_scale),
            COUNTS_DIR_ENV: str(counts),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
        log_path = work / "together.log"
        saved_stderr = os.dup(2)
        try:
            job = together_job()
            loads = [
                key
                for key in job.asset_layer.asset_graph.get_all_asset_keys()
                if key.path[0] in names and job.asset_layer.asset_graph.get(key).is_materializable
            ]
            with open(log_path, "w") as log_file:
                os.dup2(log_file.fileno(), 2)
            first = yesterday - timedelta(days=7)
            with dg.instance_for_test(overrides=config) as instance:
                started = time.perf_counter()
                with dg.execute_job(
                    dg.reconstructable(together_job),
                    instance,
                    run_config=execution_config(DEFAULT_PARALLEL_STEPS),
                    tags={**range_tags(first.isoformat(), yesterday.isoformat()), NIGHTLY_TAG: "true"},
                    asset_selection=loads,
                ) as result:
                    ok = result.success
                    run_id = result.run_id
                run_wall = time.perf_counter() - started
                steps: dict[str, tuple[float, float]] = {}
                starts: dict[str, float] = {}
                for entry in instance.all_logs(run_id):
                    event = entry.dagster_event
                    if event is None or not entry.step_key:
                        continue
                    if event.event_type == dg.DagsterEventType.STEP_START:
                        starts[entry.step_key] = entry.timestamp
                    elif event.event_type in (
                        dg.DagsterEventType.STEP_SUCCESS,
                        dg.DagsterEventType.STEP_FAILURE,
                    ):
                        steps[entry.step_key] = (starts[entry.step_key], entry.timestamp)
        finally:
            os.dup2(saved_stderr, 2)
            sandbox.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if not ok:
            sys.stderr.write(log_path.read_text()[-4000:])
        processes = [json.loads(f.read_text()) for f in counts.glob("*.json")]

    per_source = {}
    # the sources' load steps (not their freshness checks, nor dbt's step running their source tests)
    load_steps = {
        k: v for k, v in steps.items() if k.startswith(tuple(names)) and not k.endswith("_freshness")
    }
    run_loads_start = min(start for start, _ in load_steps.values())
    run_loads_end = max(end for _, end in load_steps.values())
    for name in names:
        mine = [v for k, v in load_steps.items() if k.startswith(name)]
        records = [p for p in processes if _source_of(p["calls"]) == name]
        if not mine:
            continue
        busy = sum(end - start for start, end in mine)
        span_start, span_end = min(s for s, _ in mine), max(e for _, e in mine)
        calls: Counter[str] = Counter()
        for p in records:
            calls.update(_grouped(name, p["calls"]))
        waiting = sum(p["waiting"] for p in records)
        pacing = sum(p["pacing"] for p in records)
        made = sum(calls.values())
        rebuilt = (
            busy - waiting + pacing * args.time_scale + made * args.latency_ms / 1000 / FETCH_CONCURRENCY
        )
        paced = floor_seconds(SOURCES[name], dict(calls), args.latency_ms / 1000)
        real_busy = max(rebuilt, paced + busy - waiting)
        per_source[name] = {
            "steps": len(mine),
            "calls": made,
            "by_method": dict(calls),
            "throttled": sum(p["throttled"] for p in records),
            "measured_span": span_end - span_start,
            "busy": real_busy,
            # the source's steps take turns in its pool: its span, converted, from the run's first load
            "real_end": span_start - run_loads_start + (span_end - span_start) - busy + real_busy,
        }
    loads_real = max(r["real_end"] for r in per_source.values())
    return {
        "ok": ok,
        "sources": per_source,
        "run_wall": run_wall,
        "loads_measured": run_loads_end - run_loads_start,
        "loads_real": loads_real,
        "run_real": run_wall - (run_loads_end - run_loads_start) + loads_real,
        "serial": sum(r["busy"] for r in per_source.values()),
        "throttled": sum(r["throttled"] for r in per_source.values()),
    }


def print_together(args, together: dict) -> None:
    print(
        f"\nthe nightly of every source as one run{'' if together['ok'] else ' (the run FAILED)'}, "
        f"its loads in parallel processes:"
    )
    for name, r in together["sources"].items():
        print(
            f"  {name:<10} {r['steps']} step(s), {r['calls']:,} calls, loads {_minutes(r['busy'])} at the "
            f"published limits (measured {r['measured_span']:.1f} s), done {_minutes(r['real_end'])} "
            "after the run's first load started"
        )
        for method, n in sorted(r["by_method"].items()):
            print(f"    {method:<60} {n:>8,}")
    print(
        f"  loads of every source together: {_minutes(together['loads_real'])} at the published limits "
        f"(measured {together['loads_measured']:.1f} s at {args.time_scale:g}x); one after another (the "
        f"sum of the sources): {_minutes(together['serial'])}; the run (its start-up and the raw tables' "
        "dbt tests included, no models): "
        f"{_minutes(together['run_real'])}; 429s received {together['throttled']}"
    )


# --- main ----------------------------------------------------------------------------------------------


def _in_child(function: Callable[..., dict], *args) -> dict:
    pool = multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1)
    try:
        result = pool.apply(function, args)
        pool.close()
        pool.join()
        return result
    finally:
        pool.terminate()


def _grouped(name: str, calls: dict[str, int]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for method, n in calls.items():
        out[_floor_group(method) if name == "meta" else method] += n
    return dict(out)


def measure(name: str, args, workdir: str) -> list[dict]:
    """The backfill and the nightly run of source `name`: one result each."""
    source = SOURCES[name]
    today = date.today() - timedelta(days=3)  # the sandbox's today of the backfill
    # Search Console finalises a day after ~3 days (GSC_FINAL_LAG_DAYS): a range ends before
    last = today - timedelta(days=1 + LAG_DAYS.get(name, 0))
    first = last - timedelta(days=args.days - 1)
    results = []
    for phase, sandbox_today, (start, end) in (
        ("backfill", today, (first, last)),
        (
            "nightly",
            today + timedelta(days=1),
            (max(first, last - timedelta(days=39)), last + timedelta(days=1)),
        ),
    ):
        sandbox = Sandbox(args.scale, sandbox_today, args.time_scale, args.latency_ms)
        try:
            run = _in_child(
                run_assets, name, sandbox.base_url, workdir, start, end, phase == "nightly", args.time_scale
            )
        finally:
            sandbox.stop()
        calls = _grouped(name, run["calls"])
        made = sum(calls.values())
        floor_calls = run["floor"]
        floor_total = sum(floor_calls.values()) if floor_calls else None
        # the pacing ran time_scale times faster; a request takes the round trip at real time, two
        # at once (FETCH_CONCURRENCY); the rest of the run (not waiting for the API) is as measured
        round_trips = made * args.latency_ms / 1000 / FETCH_CONCURRENCY
        rebuilt = run["wall"] - run["waiting"] + run["pacing"] * args.time_scale + round_trips
        # ... but never less than the published limits allow for the calls made: where the scaled
        # sandbox, not the pacing, held the calls back, the pacing measured is too short
        paced = floor_seconds(source, calls, args.latency_ms / 1000)
        real_wall = max(rebuilt, paced + run["wall"] - run["waiting"])
        floor_time = floor_seconds(source, floor_calls, args.latency_ms / 1000) if floor_calls else None
        results.append(
            {
                "source": name,
                "phase": phase,
                "ok": run["ok"],
                "calls": calls,
                "made": made,
                "floor": floor_calls,
                "floor_total": floor_total,
                "calls_ratio": made / floor_total if floor_total else None,
                "wall": real_wall,
                "measured_wall": run["wall"],
                "floor_time": floor_time,
                "wall_ratio": real_wall / floor_time if floor_time else None,
                "throttled": run["throttled"],
                "sandbox_throttled": sandbox.throttled,
                "rss_mb": run["rss_mb"],
            }
        )
    return results


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 60:,.1f} min" if seconds >= 60 else f"{seconds:,.1f} s"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="large", help="sandbox scale (default: large)")
    parser.add_argument("--days", type=int, default=365, help="days of the backfill (default: 365)")
    parser.add_argument("--sources", default=",".join(SOURCES), help="comma-separated (default: all)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help="how many times faster than real time the limits and the round trip run "
        f"(default {DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument("--latency-ms", type=float, default=ROUND_TRIP_MS, help="round trip (default 150)")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt's calls")
    parser.add_argument(
        "--together",
        metavar="WAREHOUSE",
        type=Path,
        help="only the nightly of every source as one run, over a copy of WAREHOUSE (a year loaded by "
        "bench.nightly or make backfill at --scale, up to the day before its sandbox's today)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}; use {', '.join(SOURCES)}")
    print(
        f"bench.backfill: scale {args.scale}, {args.days} days, published limits and a "
        f"{args.latency_ms:g} ms round trip, run {args.time_scale:g}x faster and converted back"
    )
    if args.together is not None:
        print_together(args, nightly_together(args, names, args.together))
        return 0
    worst_calls = worst_wall = 0.0
    throttled = 0
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-backfill-{name}-") as workdir:
            results = measure(name, args, workdir)
            dlt = (
                None
                if args.no_dlt
                else dlt_calls(name, args.scale, date.today() - timedelta(days=3), args.days, workdir)
            )
        for r in results:
            print(f"\n{name} {r['phase']}{'' if r['ok'] else ' (the run FAILED)'}:")
            print(f"  {'method':<62} {'calls':>8} {'floor':>8}")
            floor_calls = r["floor"] or {}
            for method in sorted(set(r["calls"]) | set(floor_calls)):
                want = floor_calls.get(method)
                wanted = "n/a" if want is None else f"{want:,}"
                print(f"  {method:<62} {r['calls'].get(method, 0):>8,} {wanted:>8}")
            floor_total = "n/a" if r["floor_total"] is None else f"{r['floor_total']:,}"
            print(f"  calls {r['made']:,}, floor {floor_total}, calls/floor {_ratio(r['calls_ratio'])}")
            print(
                f"  wall at the published limits {_minutes(r['wall'])} (measured {r['measured_wall']:.1f} s "
                f"at {args.time_scale:g}x), floor's time {_minutes(r['floor_time'])}, "
                f"wall/floor {_ratio(r['wall_ratio'])}"
            )
            dlt_text = (
                "dlt not installed (pip install -e '.[bench]')"
                if dlt is None and not args.no_dlt
                else ("skipped (--no-dlt)" if args.no_dlt else f"{dlt:,} for the {args.days} days")
            )
            if r["phase"] == "nightly" and not args.no_dlt and dlt is not None:
                dlt_text = "n/a (dlt has no nightly re-scan)"
            print(
                f"  429s received {r['throttled']} (sandbox refused {r['sandbox_throttled']}), "
                f"peak RSS {r['rss_mb']:.0f} MB, dlt rest_api calls: {dlt_text}"
            )
            if r["calls_ratio"] is not None:
                worst_calls = max(worst_calls, r["calls_ratio"])
            if r["wall_ratio"] is not None:
                worst_wall = max(worst_wall, r["wall_ratio"])
            throttled += r["throttled"]
    print(f"\nworst calls/floor={worst_calls:.2f} worst wall/floor={worst_wall:.2f} 429s={throttled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
