"""The server deployment: `python -m orchestration.serve` (what `make serve` runs) against a real
PostgreSQL started here, the daemon firing the nightly by itself, a run killed with SIGKILL failed
and its pool slot freed, and a backfill launched while the nightly is queued or running, the two
taking turns at the warehouse.

The long test mostly waits, so its parts overlap where they can: the killed run is launched as soon
as the webserver has loaded the code location, while the schedule's first tick (the next minute,
NIGHTLY_CRON '* * * * *') is still ahead; a GA4 backfill is launched the moment that tick's nightly
appears, so the schedule's nightly is also one of the two writers that take turns. That nightly (GA4
from the sandbox, 8 days, the full job with dbt's build) is the only full refresh the test runs.

PostgreSQL is started as its own process from Debian's server binaries (`apt-get install -y
postgresql`, done by .ci/run) on a loopback port with a throwaway data directory, as the `postgres`
user when the tests run as root (the server refuses root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml

from orchestration.fetching import api_pool
from orchestration.jobs import execution_config, range_tags
from orchestration.partitions import NIGHTLY_TAG
from orchestration.retention import build_retention, delete_runs_before, retention_days
from orchestration.serve import Supervisor, postgres_url, service_environment, storage_of
from orchestration.settings import PROJECT_ROOT, SettingsError
from orchestration.warehouse import WAREHOUSE_POOL
from tests.orchestration.parallel_refresh import step_intervals

LOCATION = "darksocial_warehouse"
REPOSITORY = "__repository__"
HOW_TO_INSTALL = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin "
    "or on PATH. Install them (Debian/Ubuntu: `apt-get update && apt-get install -y postgresql`; "
    ".ci/run does this) and run the tests again."
)


# --- settings and supervision (no server needed) ---------------------------------------------------


def test_storage_follows_dagster_storage_else_the_postgres_settings():
    assert storage_of({}) == "sqlite"
    assert storage_of({"DAGSTER_PG_URL": "postgresql://u@h/db"}) == "postgres"
    assert storage_of({"DAGSTER_PG_HOST": "db.internal"}) == "postgres"
    assert storage_of({"DAGSTER_STORAGE": "sqlite", "DAGSTER_PG_URL": "postgresql://u@h/db"}) == "sqlite"
    with pytest.raises(SettingsError, match="DAGSTER_STORAGE='mysql'.*sqlite.*postgres"):
        storage_of({"DAGSTER_STORAGE": "mysql"})


def test_postgres_url_is_composed_from_the_parts_with_user_and_password_quoted():
    env = {
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_USER": "dag ster",
        "DAGSTER_PG_PASSWORD": "p@ss/w:rd%",
        "DAGSTER_PG_DB": "dagster",
    }
    assert postgres_url(env) == "postgresql+psycopg2://dag%20ster:p%40ss%2Fw%3Ard%25@db.internal:5432/dagster"
    assert postgres_url({**env, "DAGSTER_PG_PORT": "6543"}).endswith("@db.internal:6543/dagster")
    # SQLAlchemy 2.1 would read a bare postgresql:// as psycopg 3, which dagster-postgres does not install.
    assert postgres_url({**env, "DAGSTER_PG_URL": "postgresql://a@b/c"}) == "postgresql+psycopg2://a@b/c"
    assert postgres_url({"DAGSTER_PG_URL": "postgres://a@b/c"}) == "postgresql+psycopg2://a@b/c"
    assert postgres_url({"DAGSTER_PG_URL": "postgresql+psycopg2://a@b/c"}) == "postgresql+psycopg2://a@b/c"
    with pytest.raises(SettingsError, match="DAGSTER_PG_USER, DAGSTER_PG_DB not set"):
        postgres_url({"DAGSTER_PG_HOST": "db.internal"})


def test_service_environment_picks_the_instance_folder_and_keeps_the_environment_over_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DAGSTER_PG_URL=postgresql://from-dotenv@h/db\nWAREHOUSE_PATH=/from/dotenv\n")
    env = service_environment({"WAREHOUSE_PATH": "/from/environment"}, env_file)
    assert env["DAGSTER_HOME"] == str(PROJECT_ROOT / "dagster_home" / "postgres")
    assert env["DAGSTER_PG_URL"] == "postgresql+psycopg2://from-dotenv@h/db"
    assert env["WAREHOUSE_PATH"] == "/from/environment"
    sqlite = service_environment({"DAGSTER_STORAGE": "sqlite"}, None)
    assert sqlite["DAGSTER_HOME"] == str(PROJECT_ROOT / "dagster_home")


def test_both_instances_limit_the_warehouse_pool_to_one_step_and_monitor_runs():
    for path in (
        PROJECT_ROOT / "dagster_home" / "dagster.yaml",
        PROJECT_ROOT / "dagster_home" / "postgres" / "dagster.yaml",
    ):
        config = yaml.safe_load(path.read_text())
        assert config["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}, path
        assert config["run_monitoring"]["enabled"] is True, path
        assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0, path
        assert config["retention"]["schedule"]["purge_after_days"] == 30, path


def test_supervisor_stops_the_other_process_group_when_one_process_dies(tmp_path):
    marker = tmp_path / "grandchild.pid"
    supervisor = Supervisor(
        {
            # A shell that started a child of its own, as the webserver starts a code server.
            "webserver": ["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"],
            "daemon": ["sh", "-c", "sleep 1; echo daemon failing; exit 3"],
        },
        {**os.environ, "DAGSTER_HOME": str(tmp_path)},
        tmp_path / "logs",
    )
    supervisor.start()
    try:
        assert supervisor.wait() == "daemon"
    finally:
        supervisor.stop()
    assert supervisor.processes["daemon"].returncode == 3
    assert supervisor.processes["webserver"].returncode == -signal.SIGTERM
    grandchild = int(marker.read_text())
    assert not _alive(grandchild), "the webserver's own child outlived the stop"
    assert (tmp_path / "logs" / "daemon.log").read_text() == "daemon failing\n"


def test_service_logs_are_rotated_so_they_stay_bounded(tmp_path):
    supervisor = Supervisor(
        {"daemon": ["sh", "-c", "for i in $(seq 1 1000); do echo line $i of the daemon; done"]},
        {**os.environ, "DAGSTER_HOME": str(tmp_path)},
        tmp_path / "logs",
        log_max_bytes=2000,
    )
    supervisor.start()
    assert supervisor.wait() == "daemon"
    supervisor.stop()
    files = sorted((tmp_path / "logs").glob("daemon.log*"))
    # ~12 files' worth of lines: the current file and the 5 kept before it, none above the limit.
    assert [f.name for f in files] == ["daemon.log", *(f"daemon.log.{i}" for i in range(1, 6))]
    assert all(f.stat().st_size <= 2000 for f in files)
    assert (tmp_path / "logs" / "daemon.log").read_text().splitlines()[-1] == "line 1000 of the daemon"


def test_retention_deletes_finished_runs_created_before_the_cutoff_only(tmp_path):
    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def tiny() -> None:
        noop()

    with pytest.raises(SettingsError, match="DAGSTER_RETENTION_DAYS='0'"):
        retention_days({"DAGSTER_RETENTION_DAYS": "0"})
    assert retention_days({}) == 30 and retention_days({"DAGSTER_RETENTION_DAYS": "7"}) == 7
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        old = tiny.execute_in_process(instance=instance).run_id
        never_started = instance.create_run_for_job(tiny).run_id
        time.sleep(0.05)
        cutoff = datetime.now(timezone.utc)
        time.sleep(0.05)
        recent = tiny.execute_in_process(instance=instance).run_id
        assert (tmp_path / "storage" / old).is_dir()  # its compute logs

        assert delete_runs_before(instance, cutoff) == [old]
        assert {r.dagster_run.run_id for r in instance.get_run_records()} == {never_started, recent}
        # Its events went with it, and the emptied database file Dagster leaves (retention.py).
        assert instance.get_run_by_id(old) is None
        assert not (tmp_path / "history" / "runs" / f"{old}.db").exists()
        assert instance.all_logs(recent) != []
        assert not (tmp_path / "storage" / old).exists()

        # The daily job itself, as the schedule runs it: nothing is old enough now.
        job, schedule = build_retention(1, log_dir=tmp_path / "logs", dbt_target_dir=tmp_path / "target")
        assert schedule.job_name == job.name == "dagster_retention"
        assert job.execute_in_process(instance=instance).success
        assert {r.dagster_run.run_id for r in instance.get_run_records()} >= {never_started, recent}


# --- PostgreSQL, the webserver and the daemon ------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin() -> Path:
    for pg_ctl in [
        *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True),
        shutil.which("pg_ctl"),
    ]:
        if pg_ctl and (Path(pg_ctl).resolve().parent / "initdb").exists():
            return Path(pg_ctl).resolve().parent
    pytest.fail(HOW_TO_INSTALL)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own on a loopback port; yields its URL (database `dagster`)."""
    bin_dir = _postgres_bin()
    as_root = os.geteuid() == 0
    # Outside pytest's tmp folders: the postgres user must be able to reach the data directory.
    base = Path(tempfile.mkdtemp(prefix="dagster-pg-", dir="/tmp"))
    data = base / "data"
    run_as: list[str] = []
    if as_root:
        shutil.chown(base, user="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "dagster", "-A", "trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {data} -F"  # fsync off: a throwaway cluster
    started = subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        capture_output=True,
        text=True,
    )
    try:
        assert started.returncode == 0, f"PostgreSQL did not start: {started.stderr}"
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://dagster@127.0.0.1:{port}/dagster"  # as a user would write it
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


class Served:
    """The supervisor's process, its instance and its GraphQL endpoint, for the test's questions."""

    def __init__(self, process: subprocess.Popen, instance: dg.DagsterInstance, port: int, logs: Path):
        self.process, self.instance, self.port, self.logs = process, instance, port, logs
        # Called at each poll of `wait_for`, before its question (TickAnswer).
        self.on_poll: Callable[[], None] | None = None

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-40:])
            for p in sorted(self.logs.glob("*.log"))
        )

    def check_alive(self) -> None:
        assert self.process.poll() is None, (
            f"the supervisor exited ({self.process.returncode}):\n{self.logs_tail()}"
        )

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"http://127.0.0.1:{self.port}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=120,
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def location_loaded(self) -> bool:
        """Whether the webserver answers and has loaded the code location (so runs can be launched)."""
        try:
            entry = self.graphql(
                """
                query($name: String!) {
                  workspaceLocationEntryOrError(name: $name) {
                    ... on WorkspaceLocationEntry {
                      locationOrLoadError { __typename ... on PythonError { message } }
                    }
                  }
                }
                """,
                {"name": LOCATION},
            )["workspaceLocationEntryOrError"]
        except requests.ConnectionError:
            return False
        loaded = (entry or {}).get("locationOrLoadError") or {}
        assert loaded.get("__typename") != "PythonError", loaded
        return loaded.get("__typename") == "RepositoryLocation"

    def launch(
        self,
        tags: dict[str, str],
        asset_selection: list[list[str]] | None = None,
        run_config: dict | None = None,
    ) -> str:
        data = self.graphql(
            """
            mutation($params: ExecutionParams!) {
              launchRun(executionParams: $params) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message }
              }
            }
            """,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": REPOSITORY,
                        "jobName": "refresh_warehouse",
                        **(
                            {"assetSelection": [{"path": p} for p in asset_selection]}
                            if asset_selection
                            else {}
                        ),
                    },
                    "runConfigData": run_config or {},
                    "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
                }
            },
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def wait_for(self, what: str, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.on_poll is not None:
                self.on_poll()
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}:\n{self.logs_tail()}")

    def finished(self, run_id: str) -> dg.DagsterRun | None:
        run = self.instance.get_run_by_id(run_id)
        return run if run and run.is_finished else None

    def pool_holders(self) -> set[str]:
        """The runs holding a slot of the warehouse's pool or of GA4's loads' pool."""
        storage = self.instance.event_log_storage
        infos = [storage.get_concurrency_info(pool) for pool in (WAREHOUSE_POOL, api_pool("ga4"))]
        return {slot.run_id for info in infos for slot in info.claimed_slots}


def _run_worker_tree(instance: dg.DagsterInstance, run_id: str) -> list[int]:
    """The run worker's pid (the process that recorded RUN_START) and every process under it."""
    pids = [e.dagster_event.pid for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)]
    assert pids and pids[0], f"no run worker pid recorded for {run_id}"
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pids[0]]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


# Steps that never open the warehouse, so run outside its pool: the report reads only the serving
# snapshot (orchestration/report/assets.py).
OUTSIDE_THE_WRITER_POOL = {"serving__report"}


def _processes_with_home(home: Path) -> list[int]:
    found = []
    needle = f"DAGSTER_HOME={home}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0") and int(environ.parent.name) != os.getpid():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def _command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _is_code_server(pid: int) -> bool:
    try:
        return " api grpc " in _command(pid)
    except OSError:
        return False


def _parent_command(pid: int) -> str:
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return _command(parent)


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: other pytest sessions on a shared machine prune old basetemp folders,
    # which a run of several minutes must not lose under its feet.
    path = Path(tempfile.mkdtemp(prefix="serve-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serve_on_postgres_runs_the_nightly_frees_a_killed_runs_slot_and_queues_writers(
    postgres, work_dir, monkeypatch
):
    tmp_path = work_dir
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "postgres" / "dagster.yaml").read_text())
    # The committed instance as is, but the daemon looks for ended runs' slots every 5 s, not 30,
    # and for queued runs to launch every second, not 5 (the same default run coordinator).
    config["run_monitoring"].update(poll_interval_seconds=5, free_slots_after_run_end_seconds=5)
    config["run_coordinator"] = {
        "module": "dagster",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    first = yesterday - timedelta(days=7)  # the nightly's longest window, and the whole history
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_STORAGE": "postgres",
        "DAGSTER_PG_URL": postgres,
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "SERVING_PATH": str(tmp_path / "serving" / "marts.duckdb"),
        "HISTORY_START_DATE": first.isoformat(),
        "NIGHTLY_CRON": "* * * * *",  # the next minute's tick fires the nightly
        "NIGHTLY_TIMEZONE": "UTC",
        "NIGHTLY_SCHEDULE_STATUS": "running",
        "SANDBOX_SOURCES": "ga4",
        "SANDBOX_SCALE": "small",
    }
    env.pop("DAGSTER_HOME", None)
    # The test's own view of the instance, through the URL the services get.
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url({"DAGSTER_PG_URL": postgres}))
    logs = tmp_path / "logs"
    command = [
        sys.executable,
        "-m",
        "orchestration.serve",
        "--dagster-home",
        str(home),
        "--port",
        str(port),
        "--code-server-port",
        str(_free_port()),
        "--log-dir",
        str(logs),
        "--env-file",
        str(tmp_path / "no.env"),
    ]
    with open(tmp_path / "serve.out", "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            # The test's questions (several a second while it waits) over one held connection, as
            # the webserver asks its own: dagster-postgres otherwise opens a PostgreSQL session per
            # query, ~420 in this test at ~4.5 ms of the server's CPU each.
            instance.optimize_for_webserver(statement_timeout=120_000, pool_recycle=3600, max_overflow=2)
            served = Served(process, instance, port, logs)
            _prove(served, first, yesterday, home)
            # One code server served the webserver and the daemon all along: neither started one of
            # its own (the daemon's would have been replaced a minute in, orchestration/serve.py).
            servers = {p: _parent_command(p) for p in _processes_with_home(home) if _is_code_server(p)}
            assert len(servers) == 1 and "code-server start" in next(iter(servers.values())), servers
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    # Everything serve started (code server, webserver, daemon, run workers) is gone.
    assert process.returncode == 0, (tmp_path / "serve.out").read_text()
    assert "Stopped the code server, the webserver and the daemon." in (tmp_path / "serve.out").read_text()
    assert _processes_with_home(home) == []


def _scheduled_runs(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    """The runs the daemon's ticks of nightly_refresh launched, newest first."""
    return instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/schedule_name": "nightly_refresh"}))


class TickAnswer:
    """Called at each poll of `Served.wait_for`: as soon as the daemon's tick has launched the
    nightly, stops the schedule (a tick a minute is for the test only) through the webserver's API
    and launches a manual GA4 backfill, which then meets the nightly in the run queue, whatever the
    test is waiting for at that moment (the tick may come before, during or after part 1).
    `launched_at`: the test's clock once the backfill's run exists."""

    def __init__(self, served: Served, tags: dict[str, str]):
        self.served, self.tags = served, tags
        self.nightly: dg.DagsterRun | None = None
        self.schedule_status: str | None = None
        self.backfill: str | None = None
        self.launched_at: float | None = None

    def __call__(self) -> None:
        if self.nightly is not None:
            return
        runs = _scheduled_runs(self.served.instance)
        if not runs:
            return
        self.nightly = runs[-1].dagster_run
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "scheduleName": "nightly_refresh",
        }
        state = self.served.graphql(
            """
            query($selector: ScheduleSelector!) {
              scheduleOrError(scheduleSelector: $selector) { ... on Schedule { scheduleState { id status } } }
            }
            """,
            {"selector": selector},
        )["scheduleOrError"]["scheduleState"]
        self.schedule_status = state["status"]
        stopped = self.served.graphql(
            "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }", {"id": state["id"]}
        )
        assert stopped["stopRunningSchedule"]["__typename"] == "ScheduleStateResult", stopped
        # In the run's process, as the nightly's steps run against the sandbox (the schedule sends
        # execution_config(1)); a launch without it would start a process per step.
        self.backfill = self.served.launch(
            self.tags,
            asset_selection=[["ga4", "sessions_daily"], ["ga4", "leads_daily"]],
            run_config=execution_config(1),
        )
        self.launched_at = time.time()


def _prove(served: Served, first, yesterday, home: Path) -> None:
    instance = served.instance
    backfill = range_tags(first.isoformat(), yesterday.isoformat())
    served.wait_for("the webserver to load the code location", served.location_loaded, timeout=240)
    # The schedule's first tick is up to a minute away: part 1 runs meanwhile, and from now on every
    # poll answers the tick as soon as its nightly appears (TickAnswer).
    tick = TickAnswer(served, backfill)
    served.on_poll = tick

    # 1. A run killed with SIGKILL while it holds the warehouse: its worker and step processes die
    # as in an OOM kill; the code server marks it failed and the daemon frees its pool slot. (If
    # the tick came first, this run waits in the queue for the nightly, then holds the pool.)
    killed = served.launch(backfill)
    served.wait_for(
        "the run to hold the warehouse pool", lambda: killed in served.pool_holders(), timeout=600
    )
    for pid in _run_worker_tree(instance, killed):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    failed = served.wait_for(
        "the killed run to be marked failed", lambda: served.finished(killed), timeout=60
    )
    assert failed.status == dg.DagsterRunStatus.FAILURE
    messages = [entry.message or "" for entry in instance.all_logs(killed)]
    assert any("was terminated by signal 9 (SIGKILL)" in m for m in messages), messages[-5:]
    served.wait_for("its slot to be freed", lambda: killed not in served.pool_holders() or None, timeout=60)

    # 2. Nobody opens a browser: the daemon's tick of nightly_refresh launches the nightly.
    nightly = served.wait_for("the schedule's first run", lambda: tick.nightly, timeout=240)
    assert tick.schedule_status == "RUNNING"
    assert nightly.tags[NIGHTLY_TAG] == "true"
    assert nightly.tags["dagster/max_runtime"] == "21600"  # failed by run monitoring if its host died
    assert range_tags(first.isoformat(), yesterday.isoformat()).items() <= nightly.tags.items()
    done = served.wait_for("the nightly to finish", lambda: served.finished(nightly.run_id), timeout=600)
    assert done.status == dg.DagsterRunStatus.SUCCESS, served.logs_tail()

    # 3. The nightly and the manual backfill of GA4 launched while it was queued or running both
    # succeed, one writer at a time (whichever the queue launched second waited there: one run
    # tagged darksocial/warehouse_writer at a time).
    ga4_backfill = tick.backfill
    run = served.wait_for(f"run {ga4_backfill}", lambda: served.finished(ga4_backfill), timeout=600)
    assert run.status == dg.DagsterRunStatus.SUCCESS, served.logs_tail()
    ended = instance.get_run_record_by_id(nightly.run_id).end_time
    assert tick.launched_at < ended, "the backfill was launched after the nightly ended: they never met"
    a, b = step_intervals(instance, nightly.run_id), step_intervals(instance, ga4_backfill)
    assert len(b) >= 2 and len(a) > len(b)
    overlaps = [
        (x, y)
        for x, (x_start, x_end) in a.items()
        for y, (y_start, y_end) in b.items()
        if x_start < y_end and y_start < x_end and not {x, y} & OUTSIDE_THE_WRITER_POOL
    ]
    assert overlaps == [], f"steps of the two runs wrote the warehouse at the same time: {overlaps}"
    # A second tick may have slipped in before the stop; let it finish before retention.
    for record in _scheduled_runs(instance):
        served.wait_for(
            "the scheduled runs", lambda r=record: served.finished(r.dagster_run.run_id), timeout=600
        )

    # 4. Retention on PostgreSQL: every finished run created before now goes, with its event log.
    all_runs = {r.dagster_run.run_id for r in instance.get_run_records()}
    assert {nightly.run_id, killed, ga4_backfill} <= all_runs
    assert (home / "storage" / nightly.run_id).is_dir()  # its compute logs
    deleted = delete_runs_before(instance, datetime.now(timezone.utc))
    assert set(deleted) == all_runs
    assert instance.get_run_records() == [] and instance.all_logs(nightly.run_id) == []
    assert not (home / "storage" / nightly.run_id).exists()
