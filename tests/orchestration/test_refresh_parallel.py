"""`make backfill` and `make refresh` with real sources run the job's steps each in its own process,
several at once: Slack and Discourse, configured as real sources on a loopback sandbox that answers
every call after a round trip, wait on their APIs at the same time, load the rows a one-by-one run
loads (run on a sandbox serving the same data without the round trip: it is the parallel run's
waits that are checked), and the terminal still shows every step's progress line; a failing step
is named with its source and the fix, and exits 1.

The command runs in a process of its own, as `make backfill` runs it: the step processes are forked
from a server that process starts, with its environment and its output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY
from orchestration.settings import PROJECT_ROOT
from tests.orchestration.parallel_refresh import step_intervals
from tests.orchestration.test_refresh import SOURCE_SETTINGS

YESTERDAY = date.today() - timedelta(days=1)
FIRST, LAST = YESTERDAY - timedelta(days=1), YESTERDAY
# Every answer of the sandbox comes after this round trip (API time at its time scale: 300 ms real):
# the loads wait on their APIs, as at real latencies, without making the test slow.
LATENCY_MS, TIME_SCALE = 3000.0, 10.0
LOAD_STEPS = ("slack__messages", "discourse_activity")

# `make backfill FROM=.. TO=..`, with the run's log in the test's folder instead of data/logs/.
COMMAND = (
    "import sys; from pathlib import Path; from orchestration import refresh; "
    "sys.exit(refresh.main(sys.argv[1:3], log_dir=Path(sys.argv[3])))"
)


SEED, SCALE = 42, "small"


def _sandbox(latency_ms: float):
    from connectors.sandbox.limits import SandboxLimits
    from connectors.sandbox.server import SandboxServer

    limits = SandboxLimits(enabled=False, time_scale=TIME_SCALE, latency_ms=latency_ms)
    return SandboxServer(seed=SEED, scale=SCALE, limits=limits).start()


@pytest.fixture(scope="module")
def slow_sandbox():
    """The sandbox whose every answer comes after the round trip: for the parallel run, whose steps
    must wait on their APIs at the same time."""
    server = _sandbox(LATENCY_MS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fast_sandbox():
    """The same data (same seed and scale: the sandbox generates its data from them alone), answered
    at once: for the runs whose waits are not what is checked (the one-by-one load the parallel
    rows are compared with, the failing history load). On the slow sandbox they waited on every
    call, one after another (the one-by-one load makes 29: ~9 s)."""
    server = _sandbox(0.0)
    yield server
    server.stop()


def _settings(root: Path, sandbox_url: str, **settings: str) -> dict[str, str]:
    """Slack (Web API) and Discourse as real sources on the sandbox at `sandbox_url`, a 2-day history,
    a warehouse and an instance (the project's dagster.yaml: pools, run limits) under `root`."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        # Blank rather than absent, so a developer's .env cannot add a source to the test's.
        **dict.fromkeys(SOURCE_SETTINGS, ""),
        "SLACK_BOT_TOKEN": SANDBOX_SLACK_BOT_TOKEN,
        "SLACK_BASE_URL": f"{sandbox_url}/slack",
        "DISCOURSE_URL": f"{sandbox_url}/discourse",
        "DISCOURSE_API_KEY": SANDBOX_DISCOURSE_API_KEY,
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-parallel-refresh-test",
        "HISTORY_START_DATE": FIRST.isoformat(),
        "NIGHTLY_TIMEZONE": "UTC",
        "RATE_LIMITS": "off",
        "WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
        "SERVING_PATH": str(root / "serving" / "marts.duckdb"),
        "DAGSTER_HOME": str(home),
        **settings,
    }


def _backfill(root: Path, sandbox_url: str, **settings: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The command over FIRST..LAST into `root`'s warehouse; the finished process and DAGSTER_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in SOURCE_SETTINGS and k != "REFRESH_PARALLEL_STEPS"}
    env.update(_settings(root, sandbox_url, **settings))
    process = subprocess.run(
        [sys.executable, "-c", COMMAND, f"--from={FIRST}", f"--to={LAST}", str(root / "logs")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return process, Path(env["DAGSTER_HOME"])


def _serial_load(root: Path, sandbox_url: str, monkeypatch) -> None:
    """The same sources' loads over the same days, one step after another in this process (no dbt,
    no snapshot: only their raw rows are compared)."""
    from orchestration.dbt.assets import dbt_models
    from orchestration.definitions import build_definitions
    from orchestration.jobs import range_tags
    from orchestration.settings import Settings

    for name, value in _settings(root, sandbox_url).items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(Settings.from_env())
    loads = [
        key
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if key.path[0] in ("slack", "discourse")
    ]
    # The loads with their own checks, not the dbt source tests on them (those are dbt's step)
    dbt_checks = dg.AssetSelection.checks(*dbt_models.check_keys)
    job = dg.define_asset_job("serial_loads", selection=dg.AssetSelection.assets(*loads) - dbt_checks)
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        result = defs.resolve_job_def("serial_loads").execute_in_process(
            instance=instance, tags=range_tags(FIRST.isoformat(), LAST.isoformat())
        )
    assert result.success


def _run_of(home: Path) -> tuple[str, dict[str, tuple[float, float]]]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        return run.run_id, step_intervals(instance, run.run_id)


def _raw_rows(root: Path, sandbox_url: str) -> dict[str, list]:
    """Every raw Slack and Discourse row, the sandbox's address (the forum's URL is in the rows) as
    `<sandbox>`: the two sandboxes serve the same data at different ports."""

    def general(value):
        return value.replace(sandbox_url, "<sandbox>") if isinstance(value, str) else value

    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        tables = [
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where schema_name in ('raw_slack', 'raw_discourse') order by all"
            ).fetchall()
        ]
        return {
            table: [
                tuple(map(general, row))
                for row in conn.execute(
                    f"select * exclude (_loaded_at, _run_id) from {table} order by all"
                ).fetchall()
            ]
            for table in tables
        }


def test_a_backfill_with_real_sources_loads_them_at_once_with_the_rows_of_one_step_at_a_time(
    slow_sandbox, fast_sandbox, tmp_path, monkeypatch
):
    _serial_load(tmp_path / "serial", fast_sandbox.base_url, monkeypatch)
    parallel, parallel_home = _backfill(tmp_path / "parallel", slow_sandbox.base_url)  # the default: 6
    out = parallel.stdout
    assert parallel.returncode == 0, out + parallel.stderr
    assert f"Backfill: 2 day(s), {FIRST} to {LAST}" in out  # not a history load: 2 days at most 30
    assert "up to 6 steps at once, each in its own process (REFRESH_PARALLEL_STEPS)" in out

    # A Slack step and a Discourse step ran at the same time, each waiting on its API.
    _, intervals = _run_of(parallel_home)
    overlapping = [
        (a, b)
        for a, (a_start, a_end) in intervals.items()
        for b, (b_start, b_end) in intervals.items()
        if a.startswith("slack__") and b.startswith("discourse") and a_start < b_end and b_start < a_end
    ]
    assert overlapping, f"no Slack step ran beside a Discourse step: {intervals}"

    rows = _raw_rows(tmp_path / "parallel", slow_sandbox.base_url)
    assert rows == _raw_rows(tmp_path / "serial", fast_sandbox.base_url)
    assert rows["raw_slack.messages"] and rows["raw_discourse.posts"]

    # The terminal: every step of the run named as it started, once (freshness checks aside), each
    # load's days, dbt's nodes and the snapshot; not the events themselves, which are in the log file.
    started = re.findall(r"^(\w+): started$", out, re.M)
    assert sorted(started) == sorted(s for s in intervals if not s.endswith("_freshness")), out
    assert {*LOAD_STEPS, "dbt_models", "serving__marts_snapshot"} <= set(started)
    assert re.search(r"^slack/messages: 2/2 days, [\d,]+ rows$", out, re.M), out
    assert re.search(r"^discourse: 2/2 days, [\d,]+ posts, [\d,]+ topics", out, re.M), out
    dbt_progress = re.findall(r"^dbt: (\d+)/(\d+) nodes$", out, re.M)
    assert dbt_progress and dbt_progress[-1][0] == dbt_progress[-1][1], out
    assert re.search(r"^dbt: PASS=\d+ WARN=\d+ ERROR=0", out, re.M), out
    assert re.search(r"^serving: published \d+ tables$", out, re.M), out
    assert " - STEP_START - " not in out and " of " + dbt_progress[-1][1] + " OK" not in out
    summary = out[out.index("Summary by source:") :]
    messages = len(rows["raw_slack.messages"])
    assert f"raw_slack.messages {messages:,} rows, 2 day(s) {FIRST}..{LAST}" in summary, summary
    # the history (HISTORY_START_DATE to yesterday) all loaded, as the ledger says
    assert f"all 2 days of {FIRST}..{LAST} loaded" in summary, summary
    assert "Backfill done" in out
    (log,) = (tmp_path / "parallel" / "logs").iterdir()
    written = log.read_text()
    for step in started:  # each step process's events, written by that process
        assert f" - {step} - STEP_SUCCESS - " in written, step
    assert re.search(rf"\b1 of {dbt_progress[-1][1]} (?:OK|PASS)\b", written)
    assert "Traceback" not in parallel.stderr, parallel.stderr


def test_a_failing_step_of_a_parallel_history_load_is_named_with_its_source_and_the_fix(
    fast_sandbox, tmp_path
):
    """A backfill longer than BACKFILL_DAILY_PARTITIONS_MAX_DAYS (1 here) is a history load, whose
    step processes build the job without partitions. Discourse's key is wrong: its steps fail (the
    forum refuses the key), Slack's load still completes beside them as one materialization for the
    range, dbt and the snapshot do not run, and the command exits 1 naming the failed steps, their
    source and what to do, without the key."""
    wrong_key = "not-the-forums-key-0123456789abcdef"
    process, home = _backfill(
        tmp_path, fast_sandbox.base_url, DISCOURSE_API_KEY=wrong_key, BACKFILL_DAILY_PARTITIONS_MAX_DAYS="1"
    )
    out = process.stdout
    assert process.returncode == 1, out + process.stderr
    assert f"History load: 2 day(s), {FIRST} to {LAST}" in out
    run_id, intervals = _run_of(home)
    # Slack's history load is one step (`slack_history`: channels, users, messages) in the job built
    # without partitions: the step processes built that job; dbt did not run
    assert "slack_history" in intervals and "dbt_models" not in intervals
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (messages,) = [
            e
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if e.dagster_event.asset_key == dg.AssetKey(["slack", "messages"])
        ]
    assert messages.dagster_event.partition is None  # the history job, in the step's process too
    failed = re.findall(r"^FAILED (\w+) \((\w+)\): (.+)$", out, re.M)
    assert failed, out
    assert {step for step, _, _ in failed} <= {s for s in intervals if s.startswith("discourse")}
    assert "discourse_activity" in {step for step, _, _ in failed}
    assert {source for _, source, _ in failed} == {"Discourse"}
    assert any("DISCOURSE_API_KEY" in message for _, _, message in failed), out
    assert "History load FAILED" in out
    assert re.search(r"^What to do: fix what the FAILED line says, then run the same command", out, re.M)
    assert re.search(r"^slack/messages: 2/2 days, [\d,]+ rows$", out, re.M), out
    (log,) = (tmp_path / "logs").iterdir()
    assert wrong_key not in out + process.stderr + log.read_text()
