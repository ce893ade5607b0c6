"""`make backfill` and `make refresh` (orchestration/refresh.py) with only community sources: Slack
and Discourse configured as real ones, pointed at the loopback sandbox; no GA4, Search Console or
Meta. Real Dagster runs (on the project's SQLite instance where its storage and retention are checked,
else on the in-memory one), real dbt, a real snapshot.

The two commands run once, in a module fixture (`history_then_nightly`), and two tests assert on
them: a backfill longer than BACKFILL_DAILY_PARTITIONS_MAX_DAYS (1 here), so a history load, then
the nightly run on the warehouse it left. Each command is a full run (loads, `dbt build`, the
snapshot): a history load of its own, on a warehouse of its own, cost the module a third (~17 s of
its ~65 s of CPU, -n 0). The partitioned backfill through the command is test_refresh_parallel.py's
(a backfill of 2 days, at most DAGSTER_RETENTION_DAYS): its header and its summary are asserted
there.
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from contextlib import nullcontext, redirect_stdout
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import ensure_sandbox
from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY
from orchestration import refresh
from orchestration.commands import sandbox_if_needed
from orchestration.sources import source_plan
from tests.orchestration.conftest import project_instance

SOURCE_SETTINGS = (
    "SANDBOX",
    "SANDBOX_SOURCES",
    "SANDBOX_URL",
    "DISCORD_SANDBOX",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GA4_PROPERTY_ID",
    "GSC_SITE_URL",
    "META_ACCESS_TOKEN",
    "SLACK_EXPORT_PATH",
    "DISCORD_BOT_TOKEN",
    "DISCORD_CHANNEL_IDS",
)
YESTERDAY = date.today() - timedelta(days=1)


def _community_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Slack (Web API) and Discourse as real sources on the sandbox; a 3-day history; a fresh
    warehouse under `root`."""
    for name in SOURCE_SETTINGS:
        mp.delenv(name, raising=False)
    sandbox = ensure_sandbox()
    values = {
        "SLACK_BOT_TOKEN": SANDBOX_SLACK_BOT_TOKEN,
        "SLACK_BASE_URL": f"{sandbox.base_url}/slack",
        "DISCOURSE_URL": f"{sandbox.base_url}/discourse",
        "DISCOURSE_API_KEY": SANDBOX_DISCOURSE_API_KEY,
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-refresh-test",
        "HISTORY_START_DATE": (YESTERDAY - timedelta(days=2)).isoformat(),
        "NIGHTLY_TIMEZONE": "UTC",
        "WAREHOUSE_PATH": str(root / "warehouse.duckdb"),
        "SERVING_PATH": str(root / "serving" / "marts.duckdb"),
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        "DAGSTER_HOME": str(root / "dagster_home"),  # the runs use the test's instance; scoped here
        # One step after another in this process: these tests call the command in-process, several
        # per process; its parallel path runs as a command of its own (test_refresh_parallel.py).
        "REFRESH_PARALLEL_STEPS": "1",
    }
    for name, value in values.items():
        mp.setenv(name, value)


@pytest.fixture
def community_only(monkeypatch, tmp_path):
    """Slack (Web API) and Discourse as real sources on the sandbox; a 3-day history; a fresh warehouse."""
    _community_env(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture
def memory_instance():
    """Dagster's in-memory instance, for a run whose storage is not what the test checks (it reads
    the run's records and materializations, which every instance answers the same): the project's
    SQLite storage opens its files anew for each of the run's events: a fifth of the history
    load's time in a profile."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _printed_rows(out: str, table: str) -> int:
    match = re.search(rf"{re.escape(table)} ([\d,]+) rows", out)
    assert match, f"{table} is not in the summary:\n{out}"
    return int(match.group(1).replace(",", ""))


DBT_NODE_LINE = re.compile(r"\b\d+ of \d+ (START|OK|PASS|WARN|ERROR|SKIP)\b")


def _progress_on_terminal_whole_log_in_file(
    out: str, log_dir: Path, command: str, slack_step: str = "slack__messages"
) -> None:
    """As `make demo`: the terminal has the header, progress lines and the summary, not dbt's
    ~460 node lines nor Dagster's events; the log file whose path it prints has them all.
    `slack_step` loads the messages: `slack_history` in a history load (channels, users, messages)."""
    paths = re.findall(r"^The run's full log: (\S+)", out, re.M)
    assert len(paths) == 2 and paths[0] == paths[1], out  # printed before the run and after it
    log = Path(paths[0])
    assert log.parent == log_dir and re.fullmatch(rf"{command}-\d{{8}}T\d{{6}}Z\.log", log.name)
    assert not DBT_NODE_LINE.search(out) and " - dagster - INFO - " not in out, out
    dbt_progress = re.findall(r"^dbt: (\d+)/(\d+) nodes$", out, re.M)
    assert dbt_progress and dbt_progress[-1][0] == dbt_progress[-1][1], out  # every node, by tenths
    assert len(dbt_progress) <= 10
    assert re.search(r"^dbt: PASS=\d+ WARN=\d+ ERROR=0", out, re.M), out
    assert re.search(r"^slack/messages: (\d+)/\1 days, [\d,]+ rows$", out, re.M), out
    assert re.search(r"^serving: published \d+ tables$", out, re.M), out
    # every step named as it starts (a step silent for minutes is named while it runs), once each
    started = re.findall(r"^(\w+): started$", out, re.M)
    assert {slack_step, "discourse_activity", "dbt_models"} <= set(started), out
    assert len(started) == len(set(started))
    written = log.read_text()
    nodes = len(set(re.findall(r"\b\d+ of (\d+) (?:OK|PASS|WARN)\b", written)))
    assert nodes == 1, "dbt's node lines are in the log file"
    total = int(dbt_progress[-1][1])
    assert len(re.findall(rf"\b\d+ of {total} (?:OK|PASS|WARN|SKIP|NO-OP)\b", written)) == total
    assert re.search(r" - raw_slack\.messages: (\d+)/\1 days loaded, [\d,]+ rows$", written, re.M)
    assert f" - {slack_step} - STEP_SUCCESS - " in written  # every Dagster event, DEBUG included


# An 11-day history: the backfill loads its first two days, the nightly its last 8 (Y-7..Y).
FIRST, LAST = YESTERDAY - timedelta(days=10), YESTERDAY - timedelta(days=9)


def _command(argv: list[str], instance, log_dir: Path) -> tuple[int, str]:
    """The command in this process: its exit code and what it printed."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = refresh.main(argv, instance=instance, log_dir=log_dir)
    return code, printed.getvalue()


def _warehouse(root: Path) -> dict:
    """What the tests read in the warehouse after a command (read before the next one writes)."""
    with duckdb.connect(root / "warehouse.duckdb", read_only=True) as conn:
        return {
            "messages": conn.execute("select count(*) from raw_slack.messages").fetchone()[0],
            "posts": conn.execute("select count(*) from raw_discourse.posts").fetchone()[0],
            "mart_days": conn.execute(
                "select count(distinct date) from marts.mart_dark_social_daily"
            ).fetchone()[0],
            "ledger": dict(
                conn.execute(
                    "select table_name, count(*) from ledger.loaded_days "
                    "where table_name in ('raw_slack.messages', 'raw_discourse.posts') group by 1"
                ).fetchall()
            ),
            "slack_ledger": conn.execute(
                "select day, rows from ledger.loaded_days where table_name = 'raw_slack.messages' "
                "order by day"
            ).fetchall(),
            "slack_per_day": conn.execute(
                "select date, count(*) from raw_slack.messages group by 1 order by 1"
            ).fetchall(),
        }


@pytest.fixture(scope="module")
def history_then_nightly(tmp_path_factory):
    """`make backfill FROM=.. TO=..` over the history's first two days, more than
    BACKFILL_DAILY_PARTITIONS_MAX_DAYS (1 here), so a history load, on the project's SQLite instance
    (its retention is checked); then `make refresh`, the nightly run, on the warehouse it left. What
    it carries on from the backfill is in the warehouse (the ledger, the rows); its storage is not
    checked, so it runs on the in-memory instance (the SQLite one, opening its files anew for each
    event, took an eighth of the test's time in a profile). The SQLite instance stays open for the
    tests (only the history load ran on it); the warehouse is read after each command."""
    root = tmp_path_factory.mktemp("history_then_nightly")
    with project_instance() as instance, dg.DagsterInstance.ephemeral() as memory:
        # The settings for the two commands only, not for the module's other tests.
        with pytest.MonkeyPatch.context() as mp:
            _community_env(mp, root)
            mp.setenv("HISTORY_START_DATE", FIRST.isoformat())
            sandbox = sandbox_if_needed(source_plan())
            # What a run deleted 40 days ago left on the SQLite instance, and one deleted yesterday:
            # the command's retention (30 days by default) removes the first only.
            mp.delenv("DAGSTER_RETENTION_DAYS", raising=False)
            events = Path(instance.root_directory) / "history" / "runs"
            stale, fresh = events / f"{uuid.uuid4()}.db", events / f"{uuid.uuid4()}.db"
            for path, age in ((stale, 40), (fresh, 1)):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"an emptied event database")
                written = time.time() - age * 86400
                os.utime(path, (written, written))
            logs = root / "logs"
            mp.setenv("BACKFILL_DAILY_PARTITIONS_MAX_DAYS", "1")
            history = _command(["--from", FIRST.isoformat(), "--to", LAST.isoformat()], instance, logs)
            mp.delenv("BACKFILL_DAILY_PARTITIONS_MAX_DAYS")
            after_history = _warehouse(root)
            nightly = _command([], memory, logs)
        yield {
            "sandbox": sandbox,
            "instance": instance,
            "stale": stale,
            "fresh": fresh,
            "logs": logs,
            "history": history,
            "after_history": after_history,
            "nightly": nightly,
            "after_nightly": _warehouse(root),
        }


def test_backfill_then_refresh_with_community_sources_only(history_then_nightly):
    ran = history_then_nightly
    assert isinstance(ran["sandbox"], nullcontext)  # real sources only: no sandbox process
    code, out = ran["history"]
    assert code == 0, out
    _progress_on_terminal_whole_log_in_file(out, ran["logs"], "backfill", slack_step="slack_history")
    assert "Retention (DAGSTER_RETENTION_DAYS=30): " in out and "deleted 0 runs" in out
    assert "1 run event files" in out, out
    assert not ran["stale"].exists() and ran["fresh"].exists()
    assert len(ran["instance"].get_run_records()) == 1
    assert f"History load: 2 day(s), {FIRST} to {LAST}" in out
    assert "loading: Slack (API), Discourse; not loaded: GA4, Search Console, Meta" in out
    summary = out[out.index("Summary by source:") :]
    for title in ("GA4", "Search Console", "Meta"):
        assert re.search(rf"^  {title}: not loaded: it has no credentials", summary, re.M), summary
    assert "Traceback" not in out

    messages, posts = ran["after_history"]["messages"], ran["after_history"]["posts"]
    assert messages > 0 and posts > 0
    assert _printed_rows(summary, "raw_slack.messages") == messages
    assert _printed_rows(summary, "raw_discourse.posts") == posts
    assert f"raw_slack.messages {messages:,} rows, 2 day(s) {FIRST}..{LAST}" in summary
    assert ran["after_history"]["mart_days"] == 0  # GA4 is not loaded: the mart is empty, and said so
    empty = re.search(r"^  empty \(.*\): (.*)$", summary, re.M).group(1).split(", ")
    assert "mart_dark_social_daily" in empty and "mart_member_engagement" not in empty
    assert re.search(r"with rows: .*mart_member_engagement \(\d", summary)
    assert "History load done" in out

    # The nightly run: yesterday and the 7 trailing days the sources revise. Slack also re-reads the
    # loaded days of the 30 before them (the backfill's two) for replies to their threads: the
    # summary counts the 10 days it replaced, not the 8 asked.
    code, out = ran["nightly"]
    assert code == 0, out
    _progress_on_terminal_whole_log_in_file(out, ran["logs"], "refresh")
    assert f"Refresh: 8 day(s), {YESTERDAY - timedelta(days=7)} to {YESTERDAY}" in out
    summary = out[out.index("Summary by source:") :]
    assert "Meta: not loaded" in summary and "Traceback" not in out
    messages_now = ran["after_nightly"]["messages"]
    # the two backfilled days and the nightly's eight; the day between them was never asked
    assert ran["after_nightly"]["ledger"] == {"raw_slack.messages": 10, "raw_discourse.posts": 10}
    assert messages_now > messages
    # every Slack row is in the 10 days the nightly replaced, so its rows are the table's
    assert (
        f"raw_slack.messages {messages_now:,} rows, 10 day(s) {FIRST}..{YESTERDAY} "
        "(8 asked, 2 re-read for replies to their threads)" in summary
    ), summary
    assert f"raw_discourse.posts {_printed_rows(summary, 'raw_discourse.posts'):,} rows, 8 day(s) " in summary
    assert "Refresh done" in out


@pytest.mark.parametrize(
    ("first", "last", "fragment"),
    [
        ("2026-13-01", "2026-12-02", "FROM='2026-13-01' is not a date: use YYYY-MM-DD"),
        ("2026-11-05", "2026-11-04", "FROM=2026-11-05 is after TO=2026-11-04"),
        ("2026-10-31", "2026-11-04", "FROM=2026-10-31 is before HISTORY_START_DATE=2026-11-01"),
        ("2026-11-20", "2026-11-30", "TO=2026-11-30 is after yesterday (2026-11-29"),
    ],
)
def test_a_bad_range_is_refused_with_the_reason(first, last, fragment):
    with pytest.raises(refresh.RangeError) as caught:
        refresh.backfill_range(first, last, date(2026, 11, 1), date(2026, 11, 29))
    assert fragment in str(caught.value)


def test_a_bad_range_stops_the_command_before_any_run(community_only, memory_instance, capsys):
    code = refresh.main(
        ["--from", YESTERDAY.isoformat(), "--to", date.today().isoformat()], instance=memory_instance
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"TO={date.today()} is after yesterday ({YESTERDAY}" in err
    assert memory_instance.get_runs() == []


def test_the_nightly_range_is_the_longest_trailing_window_within_the_history():
    assert refresh.nightly_range(date(2026, 1, 1), date(2026, 11, 29)) == (
        date(2026, 11, 22),
        date(2026, 11, 29),
    )
    assert refresh.nightly_range(date(2026, 11, 27), date(2026, 11, 29)) == (
        date(2026, 11, 27),
        date(2026, 11, 29),
    )


def test_a_long_backfill_runs_as_a_history_load_with_its_days_in_the_ledger(history_then_nightly):
    # Over BACKFILL_DAILY_PARTITIONS_MAX_DAYS (1 here, DAGSTER_RETENTION_DAYS by default) a backfill
    # is a history load: the fixture's backfill of FIRST..LAST.
    ran, instance = history_then_nightly, history_then_nightly["instance"]
    code, out = ran["history"]
    assert code == 0, out
    assert f"History load: 2 day(s), {FIRST} to {LAST}" in out
    assert "one materialization per asset" in out and "Traceback" not in out

    # One materialization of the messages for the whole run, no day claimed as a green partition.
    messages_key = dg.AssetKey(["slack", "messages"])
    (run,) = instance.get_runs()
    events = [
        e
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key == messages_key
    ]
    assert len(events) == 1 and events[0].dagster_event.partition is None
    assert instance.get_materialized_partitions(messages_key) == set()

    # The days loaded are in the warehouse's ledger, row counts included, and in the metadata.
    ledger, per_day = ran["after_history"]["slack_ledger"], ran["after_history"]["slack_per_day"]
    assert [d for d, _ in ledger] == [FIRST + timedelta(days=i) for i in range(2)]
    assert [(d, n) for d, n in ledger if n] == per_day and sum(n for _, n in ledger) > 0
    # The metadata and the summary measure them against the whole history (HISTORY_START_DATE to
    # yesterday), whose last 9 days the nightly loads next. (A history all loaded, "all N days of ..
    # loaded": test_refresh_parallel.py's backfill.)
    metadata = events[0].dagster_event.event_specific_data.materialization.metadata
    assert metadata["history_days_loaded"].value == 2 and metadata["history_days_missing"].value == 9
    assert metadata["history"].value == f"{FIRST}..{YESTERDAY}"
    summary = out[out.index("Summary by source:") :]
    missing = f"{YESTERDAY - timedelta(days=8)}..{YESTERDAY}"
    assert f"of {FIRST}..{YESTERDAY}: 2 days loaded, 9 missing ({missing})" in summary, summary
