"""Sources load at the same time: a load step holds the warehouse only while it writes a batch of
days, so another process (another source's step) writes while it waits on its API; the refresh job
runs the load steps of different sources in parallel processes when asked (real APIs), with the
same rows as one step after another; a writer holding the file makes a load wait, bounded, and the
error past the bound names the holder; the schedule picks the mode from the source plan."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from orchestration import fetching
from orchestration.fetching import load_days
from orchestration.jobs import execution_config, parallel_steps
from orchestration.settings import PROJECT_ROOT, SettingsError
from orchestration.warehouse import DuckDBWarehouse
from tests.orchestration.parallel_refresh import step_intervals

FIRST = date(2026, 3, 1)

# Another process that writes the warehouse and reports whether it could open it at once (a lock
# wait of 0) or holds it for argv[2] seconds before closing.
OTHER_WRITER = """
import sys, time, duckdb
path, hold = sys.argv[1], float(sys.argv[2])
try:
    conn = duckdb.connect(path)
except duckdb.IOException as exc:
    print("locked", exc, flush=True)
    sys.exit(3)
conn.execute("create table if not exists other_writer (written_at double)")
conn.execute("insert into other_writer values (?)", [time.time()])
print("holding", flush=True)
time.sleep(hold)
conn.close()
"""


def _other_writer(path: Path, hold: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", OTHER_WRITER, str(path), str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _day_rows(day: date) -> pa.Table:
    return pa.table({"date": pa.array([day] * 3, pa.date32()), "value": [day.day, day.day + 1, day.day + 2]})


def test_the_day_loop_frees_the_warehouse_while_it_waits_on_a_slow_fetch(tmp_path, monkeypatch):
    """Days 1-7 come at once and are written as one batch; day 8's fetch is slow (an API's rate
    limit). While it is fetched, another process opens the file and writes with no wait at all:
    the loop released it. The days after are written as usual."""
    monkeypatch.setattr(fetching, "WRITE_BATCH_MIN_BYTES", 0)  # a week a batch, however small
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    days = [FIRST + timedelta(days=i) for i in range(10)]
    seen: dict[str, str] = {}

    def fetch_day(day: date) -> pa.Table:
        if day == days[7]:
            time.sleep(2.0)  # well past the loop's grace (0.5 s): the first batch is written by now
            other = _other_writer(Path(warehouse.path))
            seen["other"] = other.communicate(timeout=60)[0]
            seen["code"] = str(other.returncode)
        return _day_rows(day)

    context = dg.build_asset_context()
    rows = load_days(context, warehouse, "raw_test.values_daily", days, fetch_day, source="test", gate=None)
    assert seen["code"] == "0", f"the other process could not write while the loop waited: {seen['other']}"
    assert rows == 30
    with duckdb.connect(warehouse.path, read_only=True) as conn:
        assert conn.execute(
            "select count(*), count(distinct date) from raw_test.values_daily"
        ).fetchone() == (30, 10)
        assert conn.execute("select count(*) from other_writer").fetchone() == (1,)


def test_a_load_waits_for_another_writer_then_succeeds_and_past_the_bound_names_it(tmp_path, monkeypatch):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    days = [FIRST + timedelta(days=i) for i in range(3)]
    context = dg.build_asset_context()

    # The holder keeps the file 3 s; the load may wait 60: it waits, then writes every day.
    holder = _other_writer(Path(warehouse.path), hold=3.0)
    assert holder.stdout.readline().strip() == "holding"
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "60")
    started = time.monotonic()
    assert (
        load_days(context, warehouse, "raw_test.values_daily", days, _day_rows, source="test", gate=None) == 9
    )
    waited = time.monotonic() - started
    holder.wait(timeout=60)
    assert holder.returncode == 0
    assert 1.5 < waited < 30, waited

    # The holder keeps it 60 s; the load may wait 1.5: it fails naming the holder, and writes nothing.
    holder = _other_writer(Path(warehouse.path), hold=60.0)
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "1.5")
        later = [d + timedelta(days=10) for d in days]
        with pytest.raises(Exception, match=rf"held by another process, python[\d.]* \(PID {holder.pid}\)"):
            load_days(context, warehouse, "raw_test.values_daily", later, _day_rows, source="test", gate=None)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with duckdb.connect(warehouse.path, read_only=True) as conn:
        assert conn.execute("select count(distinct date) from raw_test.values_daily").fetchone() == (3,)


def test_parallel_steps_follow_the_source_plan_and_the_setting():
    assert parallel_steps(real_sources=True, environ={}) == 6
    assert parallel_steps(real_sources=False, environ={}) == 1
    assert parallel_steps(real_sources=False, environ={"REFRESH_PARALLEL_STEPS": "3"}) == 3
    assert parallel_steps(real_sources=True, environ={"REFRESH_PARALLEL_STEPS": "1"}) == 1
    with pytest.raises(SettingsError, match="REFRESH_PARALLEL_STEPS"):
        parallel_steps(real_sources=True, environ={"REFRESH_PARALLEL_STEPS": "0"})
    assert execution_config(1) == {"execution": {"config": {"in_process": {}}}}
    parallel = execution_config(6)["execution"]["config"]["multiprocess"]
    assert parallel["max_concurrent"] == 6
    assert "orchestration.dbt.assets" in parallel["start_method"]["forkserver"]["preload_modules"]


def test_the_nightly_runs_in_parallel_when_a_source_is_real_and_in_process_on_the_sandbox(
    settings_for, tmp_path, monkeypatch
):
    from orchestration.definitions import build_definitions
    from orchestration.jobs import WAREHOUSE_WRITER_TAG

    settings = settings_for(tmp_path, days=3)
    at = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 5, 2))

    def nightly(env: dict[str, str]) -> tuple[dg.RunRequest, dict]:
        for name in ("SANDBOX", "SANDBOX_SOURCES", "GSC_SITE_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        defs = build_definitions(settings)
        request = defs.resolve_schedule_def("nightly_refresh").evaluate_tick(at).run_requests[0]
        job = defs.resolve_job_def("refresh_warehouse")
        return request, job

    request, job = nightly({})  # no credentials: the sandbox serves every source
    assert request.run_config == {"execution": {"config": {"in_process": {}}}}
    assert job.tags[WAREHOUSE_WRITER_TAG] == "true"

    key = tmp_path / "gsc-key.json"
    key.write_text("{}")
    # Search Console's credentials set: it loads from its real API, so the steps run in parallel.
    request, _ = nightly(
        {"GSC_SITE_URL": "sc-domain:example.com", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    )
    assert request.run_config == execution_config(6)
    assert request.run_config["execution"]["config"]["multiprocess"]["max_concurrent"] == 6


def test_both_instances_let_one_warehouse_writing_run_at_a_time():
    import yaml

    for path in (
        PROJECT_ROOT / "dagster_home" / "dagster.yaml",
        PROJECT_ROOT / "dagster_home" / "postgres" / "dagster.yaml",
    ):
        runs = yaml.safe_load(path.read_text())["concurrency"]["runs"]
        assert {"key": "darksocial/warehouse_writer", "limit": 1} in runs["tag_concurrency_limits"], path


def test_dbt_and_the_snapshot_hold_the_warehouse_pool_and_each_source_loads_in_its_own(
    settings_for, tmp_path, monkeypatch
):
    """The steps that hold the file for long take turns in `duckdb_warehouse`; a source's load steps
    take turns in `api_<source>` (one caller of its API at a time), and different sources' do not
    wait for each other; freshness checks (one select) are in no pool."""
    from orchestration.definitions import build_definitions
    from orchestration.warehouse import WAREHOUSE_POOL

    for name in ("SANDBOX", "SANDBOX_SOURCES"):
        monkeypatch.delenv(name, raising=False)  # no credentials: the sandbox serves every source
    defs = build_definitions(settings_for(tmp_path, days=3))
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools["marts/mart_dark_social_daily"] == {WAREHOUSE_POOL}
    assert pools["serving/marts_snapshot"] == {WAREHOUSE_POOL}
    for key, source in {
        "ga4/sessions_daily": "ga4",
        "ga4/leads_daily": "ga4",
        "gsc/queries_daily": "gsc",
        "meta/ad_insights_daily": "meta",
        "slack/messages": "slack",
        "slack/channels": "slack",
        "discourse/posts": "discourse",
        "discourse/users": "discourse",
    }.items():
        assert pools[key] == {f"api_{source}"}, key
    job = defs.resolve_job_def("refresh_warehouse")
    freshness = [n for n in job.graph.node_dict if n.endswith("_freshness")]
    assert freshness and all(not job.graph.node_named(n).definition.pool for n in freshness)


# --- one run of two sources' loads in parallel processes, against the sandbox's round trip --------

# Each call to the parallel run's sandbox takes this long (its time scale 1): the loads' time is the
# APIs', as at real rate limits, and a step that held the warehouse for its whole fetch loop would
# keep the other waiting past LOCK_WAIT_SECONDS.
LATENCY_MS = 1500
LOCK_WAIT_SECONDS = "2"
LOADS = (("ga4", "sessions_daily"), ("gsc", "queries_daily"))


def _raw_rows(path: Path) -> dict[str, list]:
    tables = ["raw_ga4.sessions_daily", "raw_gsc.queries_daily"]
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            table: conn.execute(
                f"select * exclude (_loaded_at, _run_id) from {table} order by all"
            ).fetchall()
            for table in tables
        }


def test_two_sources_load_in_parallel_processes_with_the_rows_of_a_serial_run(
    settings_for, tmp_path, monkeypatch, dagster_instance
):
    from connectors.sandbox.limits import SandboxLimits
    from connectors.sandbox.server import SandboxServer
    from tests.orchestration.parallel_refresh import refresh_job

    serial, parallel = settings_for(tmp_path / "serial", days=7), settings_for(tmp_path / "parallel", days=7)
    # The parallel run's sandbox answers every call after LATENCY_MS; the one-by-one run whose rows
    # they are compared with loads the same data (same seed and scale: the sandbox generates its
    # data from them alone) answered at once: only the parallel run's waits are checked, and on the
    # slow sandbox the serial run waited on every call, one after another.
    sandboxes = {
        steps: SandboxServer(
            seed=42, scale="small", limits=SandboxLimits(enabled=True, time_scale=1.0, latency_ms=latency)
        ).start()
        for steps, latency in ((1, 0.0), (2, LATENCY_MS))
    }
    for name in ("SANDBOX", "SANDBOX_URL", "REFRESH_PARALLEL_STEPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDBOX_SOURCES", "ga4,gsc")
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", LOCK_WAIT_SECONDS)
    selection = [dg.AssetKey(list(key)) for key in LOADS]
    try:
        runs = {}
        for settings, steps in ((serial, 1), (parallel, 2)):
            monkeypatch.setenv("SANDBOX_URL", sandboxes[steps].base_url)
            # The step processes build the definitions from the environment, as a launched run's do.
            monkeypatch.setenv("WAREHOUSE_PATH", str(settings.warehouse_path))
            monkeypatch.setenv("SERVING_PATH", str(settings.serving_path))
            monkeypatch.setenv("HISTORY_START_DATE", settings.history_start.isoformat())
            job = refresh_job()
            keys = job.partitions_def.get_partition_keys()
            started = time.monotonic()
            with dg.execute_job(
                dg.reconstructable(refresh_job),
                dagster_instance,
                run_config=execution_config(steps),
                tags={
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                },
                asset_selection=selection,
            ) as result:
                assert result.success, [e.message for e in result.all_events if e.is_failure]
                runs[steps] = (result.run_id, time.monotonic() - started)
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()

    steps = {key: "__".join(key) for key in LOADS}
    parallel_run, parallel_wall = runs[2]
    intervals = step_intervals(dagster_instance, parallel_run)
    (a_start, a_end), (b_start, b_end) = (intervals[steps[key]] for key in LOADS)
    assert a_start < b_end and b_start < a_end, f"the two loads did not overlap: {intervals}"
    # Each step waited on its API (every call LATENCY_MS) longer than the lock wait: had one held the
    # warehouse through its fetch, the other would have failed naming it.
    assert min(a_end - a_start, b_end - b_start) > float(LOCK_WAIT_SECONDS)
    serial_intervals = step_intervals(dagster_instance, runs[1][0])
    serial_sum = sum(end - start for start, end in serial_intervals.values())
    (c_start, c_end), (d_start, d_end) = (serial_intervals[steps[key]] for key in LOADS)
    assert c_end <= d_start or d_end <= c_start, "the in-process run ran its steps one by one"
    print(f"serial: steps {serial_sum:.1f} s, run {runs[1][1]:.1f} s; parallel: run {parallel_wall:.1f} s")
    assert _raw_rows(parallel.warehouse_path) == _raw_rows(serial.warehouse_path)
    assert all(_raw_rows(parallel.warehouse_path).values())
