"""Fixtures shared by every test folder, and how the suite stays fast.

Most of the suite's time goes into Dagster runs, warehouses and dbt builds. So:

- `make test` runs on three pytest-xdist workers, a module at a time (`-n 3 --dist loadfile`, in
  pyproject.toml): a module's fixtures are built once, on one worker. Three workers on two cores:
  the long modules that mostly wait (test_deployment on a schedule tick and its server's runs,
  test_refresh_parallel and test_pacing on slowed or paced calls) leave a core to a third worker.
  Tests stay independent (free ports, their own tmp_path and Dagster instance). The modules known
  to take longest are handed out first (SLOW_MODULES below), so the workers finish together. `-n 0`
  runs in one process.
- Temporary files (tmp_path, Dagster's SQLite run storage, the warehouses) go to a RAM file system
  when the machine has one with room (fast_temp_root): Dagster's SQLite storage commits every event
  to disk, and on a busy disk those waits took longer than the runs themselves.
- `sandbox_refresh` (session): one real refresh of the sandbox over the last 35 days (every
  source, `dbt build`, the serving snapshot). READ-ONLY: open its files with read_only=True. A test
  that writes takes `sandbox_refresh_copy` (its own copy of both files under tmp_path).
- `dbt_manifest` (session): the dbt project parsed once; `dbt_invoke` runs every in-process dbt
  command of the tests on it, so no call parses the project again.
- The Dagster runs' dbt builds start from a parse state that fits them: `dbt` on PATH is
  tests/bin/dbt, which gives dbt one warehouse path per worker (a link to the folder of the test's
  own warehouse), so dbt does not parse the whole project again for every test's new path
  (steady_dbt_warehouse_path). Their target folders are the worker's, not dbt_project/target.
  It also answers dagster-dbt's `dbt --version` (once a run, ~3 s of CPU each) without starting dbt.
- dbt writes no debug log file in the tests (DBT_LOG_LEVEL_FILE=none, set below; ~10% of a build's
  CPU): nothing reads it.
- Nor manifest.json and run_results.json (DBT_WRITE_JSON=false, set below; a second or less a
  build): nothing reads them; a test that scans a build's artifacts passes --write-json.
- Modules that read the same expensive fixture run on one worker (SAME_WORKER below, a session
  fixture): the report's browser test and the campaign halo's truth test read one spring refresh.
- A module that needs other data (fixed windows, crafted rows, faults) builds it once in a
  module-scoped fixture and loads only the sources and days it asserts on.
- A Dagster run whose storage is not what the test checks (it reads the warehouse, the snapshot or
  the result's events) runs on Dagster's in-memory instance (`dg.DagsterInstance.ephemeral()`): the
  SQLite instance opens its files anew for each of a refresh's ~1,400 events, a third of the test
  process's time in a profile. Runs whose storage, pools, retention or crash recovery are checked
  keep the project's SQLite instance. `sandbox_refresh` runs on the in-memory one with the project's
  pools (dagster.yaml's concurrency section), as `make dev` would run it.

Measure a change with the CPU time of pytest and its children (`/usr/bin/time -v`: user + sys) as
well as the wall time, and look at `--durations=30`. That CPU time leaves out the processes no
test process waits for: the deployment test's PostgreSQL (~20-25 s, mostly one server process per
connection Dagster opens); its server's code server, daemon, webserver and runs are counted.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

# Tests talk to the loopback sandbox: pacing at the APIs' published limits (a Slack Tier 3 method:
# 50 calls a minute) would stretch them to hours. The pacing tests turn it on with a time scale.
os.environ.setdefault("RATE_LIMITS", "off")
# The sandbox reads its size once, when it starts; the tests use the small brand (set here, before
# any test starts it, so a folder run alone gets the same data as the whole suite).
os.environ.setdefault("SANDBOX_SCALE", "small")
# Every dbt the tests start (in this process, and the Dagster runs' dbt processes, which inherit the
# environment) writes no dbt.log: at its default level (debug) that file costs 2-3.5 s of a full
# build's 25-29 s of dbt CPU, and no test reads it (a run's events carry dbt's lines and errors).
# Nor does it try to send usage statistics: the machines the suite runs on may have no internet.
os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# Nor manifest.json and run_results.json (`--no-write-json`): dbt writes the whole manifest after its
# parse and again, compiled SQL included, after the build, and neither the Dagster runs nor the
# tests read them (dagster-dbt reads the prepared dbt_project/target's, and the build's events).
# A small saving (0-1 s of a full build's ~16 s of CPU in A/B pairs on a loaded machine), but one
# every build makes. The parse state (partial_parse.msgpack) is still written. A test that reads a
# build's artifacts passes --write-json.
os.environ.setdefault("DBT_WRITE_JSON", "false")

RAM_TEMP_ROOT = Path("/dev/shm")
RAM_TEMP_ROOM = 4 * 1024**3  # a whole run writes a few hundred MB; leave the rest to others


def fast_temp_root() -> None:
    """Point TMPDIR (pytest's tmp_path, tempfile, Dagster's test instances, the subprocesses) at a
    RAM file system when there is one with room, unless TMPDIR is set already. The files are the
    same real files, DuckDB and SQLite open them the same way; only fsync stops waiting on the disk.
    Set here, at import, before pytest picks its base temporary folder and before the xdist workers
    start (they inherit it)."""
    if os.environ.get("TMPDIR") or not RAM_TEMP_ROOT.is_dir() or not os.access(RAM_TEMP_ROOT, os.W_OK):
        return
    if shutil.disk_usage(RAM_TEMP_ROOT).free < RAM_TEMP_ROOM:
        return
    os.environ["TMPDIR"] = str(RAM_TEMP_ROOT)
    tempfile.tempdir = None  # tempfile caches the folder it found first


fast_temp_root()

TESTS_BIN = Path(__file__).resolve().parent / "bin"


def steady_dbt_warehouse_path() -> Path | None:
    """Let the Dagster runs' dbt builds start from a parse state that fits them (tests/bin/dbt).

    dbt parses the whole project (~8 s of CPU) whenever the rendered profile differs from the one
    of its saved parse state, and the profile holds the warehouse's path, which is each test's own.
    So, in each process that runs tests: `dbt` on PATH is tests/bin/dbt, which gives dbt a path that
    stays the same for the whole session (a link to the folder of the warehouse being built; the
    build still reads and writes the test's own file), and dbt's target folder (DBT_TARGET_PATH,
    where dagster-dbt puts each build's folder and the parse state the asset keeps for the next
    build) is this process's own, not dbt_project/target. Returns the folder holding both, removed
    when the session ends; None when dbt is not installed beside this interpreter."""
    real = Path(sys.executable).parent / "dbt"
    if not real.exists() or shutil.which("flock") is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="pytest-dbt-"))
    os.environ.setdefault("DBT_TEST_EXECUTABLE", str(real))  # or a wrapper that measures the calls
    os.environ["DBT_TEST_WAREHOUSE_LINK"] = str(root / "warehouse")
    # The first line of `dbt --version`, all dagster-dbt reads of it (once per run); tests/bin/dbt
    # answers with it rather than starting dbt (~2 s of CPU a run).
    version = root / "dbt-version.txt"
    version.write_text(f"Core:\n  - installed: {importlib.metadata.version('dbt-core')}\n")
    os.environ["DBT_TEST_VERSION_FILE"] = str(version)
    os.environ["DBT_TARGET_PATH"] = str(root / "target")
    path = os.environ.get("PATH", "")
    if not path.startswith(f"{TESTS_BIN}{os.pathsep}"):  # the xdist workers inherit it
        os.environ["PATH"] = f"{TESTS_BIN}{os.pathsep}{path}"
    return root


DBT_STEADY_ROOT = steady_dbt_warehouse_path()


def pytest_unconfigure(config) -> None:
    if DBT_STEADY_ROOT is not None:
        shutil.rmtree(DBT_STEADY_ROOT, ignore_errors=True)


# The modules that take longest (a Dagster run with dbt, a demo, a browser, PostgreSQL), longest
# first. xdist hands modules out in collection order (--no-loadscope-reorder in pyproject.toml;
# by default it orders them by their number of tests): starting these first keeps one worker from
# being left with a long module at the end while the other is idle.
SLOW_MODULES = (
    # first: its one long test mostly waits (a schedule tick, runs on a server), beside the others' CPU
    "tests/orchestration/test_deployment.py",
    "tests/orchestration/test_incremental_marts.py",
    "tests/orchestration/test_refresh.py",
    # two backfills through the command, their steps in processes of their own, waiting on round trips
    "tests/orchestration/test_refresh_parallel.py",
    "tests/orchestration/test_report_browser.py",
    "tests/orchestration/test_quality_gates.py",
    "tests/orchestration/test_community_marts.py",
    "tests/orchestration/test_source_plan.py",
    "tests/orchestration/test_end_to_end.py",
    # two runs whose steps wait on the sandbox's round trips, one in parallel step processes
    "tests/orchestration/test_parallel_loads.py",
    "tests/orchestration/test_secret_redaction.py",
    # waits on paced calls
    "tests/connectors/test_pacing.py",
    "tests/orchestration/test_quality_suites.py",
    "tests/orchestration/test_serving_publish.py",
    "tests/orchestration/test_retention.py",
    "tests/orchestration/test_crash_recovery.py",
    "tests/dbt/test_unit_tests.py",
    "tests/dbt/test_dark_social_mart.py",
    "tests/orchestration/test_brand.py",
    "tests/orchestration/test_doctor.py",
    "tests/orchestration/test_incremental_history.py",
    "tests/orchestration/test_discourse_real_keys.py",
)


# Modules that read a session fixture another module builds, each with that module: xdist hands
# them to the same worker as one unit (after its tests), so the fixture is built once, not once
# per worker. tests/orchestration/spring_refresh.py: the report's and the campaign halo's refresh.
SAME_WORKER = {
    "tests/orchestration/test_campaign_halo_truth.py": "tests/orchestration/test_report_browser.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (pyproject.toml), with each module of SAME_WORKER in its partner's unit."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return SAME_WORKER.get(module, module)

    return SharedFixtureScheduling(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    """The slow modules first (in SLOW_MODULES order), then the rest as collected; within a module,
    the order is unchanged. Only the order changes: every collected test still runs."""
    rank = {name: position for position, name in enumerate(SLOW_MODULES)}

    def key(item) -> int:
        module = Path(str(item.fspath)).resolve().relative_to(REPO_ROOT).as_posix()
        return rank.get(module, len(SLOW_MODULES))

    items.sort(key=key)  # stable: the order inside each group is kept


REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
CONTRACTS_DIR = REPO_ROOT / "tests" / "contracts"
SLACK_EXPORT_2016 = REPO_ROOT / "tests" / "fixtures" / "slack_export_2016"


def sandbox_brand_vars() -> list[str]:
    """`--vars` with the sandbox brand's settings (connectors/sandbox/brand.yml), as orchestration
    passes a brand to dbt (orchestration/brand.py)."""
    from orchestration.brand import SANDBOX_BRAND_FILE, load_brand

    return ["--vars", json.dumps(load_brand(SANDBOX_BRAND_FILE).dbt_vars())]


def _dbt_dirs(tmp: Path) -> list[str]:
    return [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
    ]


def invoke_dbt(args: list[str], tmp: Path, warehouse: Path, check: bool = True, manifest=None, **env: str):
    """`dbt <args>` in this process on the project's dbt project, its target/ and logs/ under `tmp`,
    with WAREHOUSE_PATH=`warehouse` (and any `env`) for the call only, and the sandbox brand's vars
    (connectors/sandbox/brand.yml) unless `args` has --vars. With `check`, assert that it
    succeeded, naming each node that did not. Returns dbt's result.

    With `manifest` (the `dbt_manifest` fixture's, parsed with the sandbox brand's vars), dbt does
    not parse the project: it compiles each selected node from that manifest. It is used only for
    a call on the sandbox brand's vars (passed or not); one with other --vars parses as dbt would
    (~5 s of CPU): a test with a brand of its own passes it as orchestration does, in the env
    DBT_BRAND_VARS (macros/brand_var.sql reads it when dbt compiles a node), and keeps it. The
    manifest names the database after the file it was parsed for (DuckDB's catalog is the file's
    stem), so `warehouse` must then be called warehouse.duckdb, and dbt writes no manifest.json.
    """
    from dbt.cli import main as dbt_main

    # The models read the brand from vars, as orchestration passes them: the sandbox brand's unless
    # the test passes its own (then the shared manifest, parsed with the sandbox's, fits only when
    # they are the sandbox's too).
    sandbox_vars = sandbox_brand_vars()
    if args[:1] == ["parse"]:
        manifest = None
    elif "--vars" not in args:
        args = [*args, *sandbox_vars]
    elif json.loads(args[args.index("--vars") + 1]) != json.loads(sandbox_vars[1]):
        manifest = None
    if manifest is not None:
        assert warehouse.name == "warehouse.duckdb", "the shared manifest's database is `warehouse`"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_PATH", str(warehouse))
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        for name, value in env.items():
            mp.setenv(name, value)
        result = dbt_main.dbtRunner(manifest=manifest).invoke([*args, *_dbt_dirs(tmp)])
    if check:
        failed = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass")
        ]
        assert result.success, f"dbt {args[0]} failed: {result.exception or failed}"
    return result


def parse_dbt_project(tmp: Path):
    """The dbt project parsed into `tmp` with the sandbox brand's vars, starting from the
    partial-parse state in dbt_project/target when it fits (dbt then parses only what changed;
    otherwise the whole project, ~4-7 s of CPU). That state is keyed on the rendered profile and
    the command line's --vars, so the parse is made as `make prepare` makes it: with its
    WAREHOUSE_PATH (a parse opens no database), and the brand in DBT_BRAND_VARS, not --vars
    (macros/brand_var.sql reads either; with --vars every session parsed the whole project)."""
    from dbt.cli.main import dbtRunner

    from orchestration.brand import BRAND_VARS_ENV

    state = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    (tmp / "target").mkdir(parents=True, exist_ok=True)
    if state.exists():
        shutil.copyfile(state, tmp / "target" / state.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        mp.setenv("WAREHOUSE_PATH", str(REPO_ROOT / "data" / "warehouse.duckdb"))
        mp.setenv(BRAND_VARS_ENV, sandbox_brand_vars()[1])
        parsed = dbtRunner().invoke(["parse", "--quiet", *_dbt_dirs(tmp)])
    assert parsed.success, f"dbt parse failed: {parsed.exception}"
    return parsed.result


@functools.cache
def load_contract(api: str) -> dict:
    path = CONTRACTS_DIR / f"{api}.json"
    if not path.is_file():
        pytest.fail(
            f"{path} not found: derive it with `python scripts/derive_contracts.py <published contracts>`"
        )
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def contract() -> Callable[[str], dict]:
    """`contract(api)`: the facts of `api`'s published contract (ga4, gsc, meta, slack, discourse,
    discord) as scripts/derive_contracts.py derived them into tests/contracts/<api>.json: the
    source's own layout, cut to what the tests check, with a `source` note. Read-only: shared."""
    return load_contract


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory):
    """The dbt project's manifest, parsed once for the session with the sandbox brand's vars (see
    parse_dbt_project). Read-only: hand it to `dbtRunner(manifest=...)` (or use `dbt_invoke`, which
    does). Not a deep copy of it either: dbt's Manifest.__reduce_ex__ misplaces its lookup caches,
    and a copy of a freshly parsed manifest fails every ref."""
    return parse_dbt_project(tmp_path_factory.mktemp("dbt_parse"))


@pytest.fixture(scope="session")
def dbt_invoke(dbt_manifest) -> Callable[..., object]:
    """`dbt_invoke(args, tmp, warehouse, check=True, **env)`: invoke_dbt on the session's parsed
    manifest, so a call on the sandbox brand's vars does not parse the project (its `warehouse`
    must be named warehouse.duckdb)."""
    return functools.partial(invoke_dbt, manifest=dbt_manifest)


@pytest.fixture(scope="session")
def slack_export_2016(tmp_path_factory) -> Path:
    """The invented workspace export of tests/fixtures/slack_export_2016 (Slack's 2016 layout: no
    threads, no e-mails, per-day files named by the workspace's Pacific day) zipped as Slack sends
    it, folder entries included. Its counts are written out in tests/connectors/test_slack_export.py."""
    path = tmp_path_factory.mktemp("slack_export") / "Lantern Walk Slack export Mar 18 2016.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(SLACK_EXPORT_2016.rglob("*")):
            zf.write(file, file.relative_to(SLACK_EXPORT_2016).as_posix())
    return path


# The days `sandbox_refresh` loads: Meta's 7-day attribution window and the 28-day baselines fit.
SANDBOX_REFRESH_DAYS = 35


def sandbox_settings(tmp_path: Path, days: int):
    """Settings for a warehouse and snapshot under `tmp_path` holding the last `days` days (as the
    orchestration tests' `settings_for`)."""
    from orchestration.settings import Settings

    yesterday = date.today() - timedelta(days=1)
    return Settings(
        warehouse_path=tmp_path / "warehouse.duckdb",
        serving_path=tmp_path / "serving" / "marts.duckdb",
        history_start=yesterday - timedelta(days=days - 1),
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=True,
    )


@dataclass(frozen=True)
class SandboxRefresh:
    """What `sandbox_refresh` built: its settings (warehouse_path, serving_path), the definitions it
    ran, the partition keys (days) it loaded, the run's result (events, asset checks), and the
    instance holding the run (its stored log), open for the session."""

    settings: Any  # orchestration.settings.Settings
    defs: Any  # dagster.Definitions
    keys: list[str]
    result: Any  # dagster.ExecuteInProcessResult
    instance: Any  # dagster.DagsterInstance


@pytest.fixture(scope="session")
def sandbox_refresh(tmp_path_factory) -> Iterator[SandboxRefresh]:
    """One real refresh of the sandbox over the last 35 days: the definitions' own job (every
    source's assets and checks, `dbt build` of every model, the serving publish) on Dagster's
    in-memory instance with the pools of `make dev`'s. Built once per session (per xdist worker
    that asks for it); the run may have failed (a test asserts `result.success`), so a reader of
    the marts checks it first.

    Shared, so READ-ONLY: open its files with duckdb.connect(path, read_only=True) and never run
    anything into them. A test that must write takes `sandbox_refresh_copy` instead.
    """
    import dagster as dg
    import yaml

    from orchestration.definitions import build_definitions
    from orchestration.jobs import range_tags
    from orchestration.settings import PROJECT_ROOT

    settings = sandbox_settings(tmp_path_factory.mktemp("sandbox_refresh"), days=SANDBOX_REFRESH_DAYS)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh_warehouse")
    keys = job.partitions_def.get_partition_keys()
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    # The in-memory instance with the project's concurrency section (pools, run limits): its tests
    # read the result's events and the run's stored log, which any storage holds alike; the SQLite
    # storage would open its files anew for each of the run's events (~a third of the fixture's CPU).
    with dg.DagsterInstance.ephemeral(settings={"concurrency": config["concurrency"]}) as instance:
        result = job.execute_in_process(
            instance=instance, tags=range_tags(keys[0], keys[-1]), raise_on_error=False
        )
        yield SandboxRefresh(settings, defs, keys, result, instance)


@pytest.fixture
def sandbox_refresh_copy(sandbox_refresh, tmp_path):
    """Settings for a private copy of `sandbox_refresh`'s warehouse and snapshot under `tmp_path`,
    for a test that writes: copying the files takes a fraction of a second, rebuilding them minutes."""
    source = sandbox_refresh.settings
    copy = sandbox_settings(tmp_path, days=SANDBOX_REFRESH_DAYS)
    copy.serving_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.warehouse_path, copy.warehouse_path)
    shutil.copyfile(source.serving_path, copy.serving_path)
    return copy
