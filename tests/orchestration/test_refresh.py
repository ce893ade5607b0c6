"""`make backfill` and `make refresh` (orchestration/refresh.py) with only community sources: Slack
and Discourse configured as real ones, pointed at the loopback sandbox; no GA4, Search Console or
Meta. Real Dagster runs (on the project's SQLite instance where its storage and retention are checked,
else on the in-memory one), real dbt, a real snapshot.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from contextlib import nullcontext
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


@pytest.fixture
def community_only(monkeypatch, tmp_path):
    """Slack (Web API) and Discourse as real sources on the sandbox; a 3-day history; a fresh warehouse."""
    for name in SOURCE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    sandbox = ensure_sandbox()
    values = {
        "SLACK_BOT_TOKEN": SANDBOX_SLACK_BOT_TOKEN,
        "SLACK_BASE_URL": f"{sandbox.base_url}/slack",
        "DISCOURSE_URL": f"{sandbox.base_url}/discourse",
        "DISCOURSE_API_KEY": SANDBOX_DISCOURSE_API_KEY,
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-refresh-test",
        "HISTORY_START_DATE": (YESTERDAY - timedelta(days=2)).isoformat(),
        "NIGHTLY_TIMEZONE": "UTC",
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "SERVING_PATH": str(tmp_path / "serving" / "marts.duckdb"),
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),  # the runs use the test's instance; scoped here
        # One step after another in this process: these tests call the command in-process, several
        # per process; its parallel path runs as a command of its own (test_refresh_parallel.py).
        "REFRESH_PARALLEL_STEPS": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
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


def _progress_on_terminal_whole_log_in_file(out: str, log_dir: Path, command: str) -> None:
    """As `make demo`: the terminal has the header, progress lines and the summary, not dbt's
    ~460 node lines nor Dagster's events; the log file whose path it prints has them all."""
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
    assert {"slack__messages", "discourse_activity", "dbt_models"} <= set(started), out
    assert len(started) == len(set(started))
    written = log.read_text()
    nodes = len(set(re.findall(r"\b\d+ of (\d+) (?:OK|PASS|WARN)\b", written)))
    assert nodes == 1, "dbt's node lines are in the log file"
    total = int(dbt_progress[-1][1])
    assert len(re.findall(rf"\b\d+ of {total} (?:OK|PASS|WARN|SKIP|NO-OP)\b", written)) == total
    assert re.search(r" - raw_slack\.messages: (\d+)/\1 days loaded, [\d,]+ rows$", written, re.M)
    assert " - slack__messages - STEP_SUCCESS - " in written  # every Dagster event, DEBUG included


def test_backfill_then_refresh_with_community_sources_only(
    community_only, dagster_instance, memory_instance, capsys, monkeypatch
):
    # An 11-day history: the backfill loads its first two days, the nightly its last 8 (Y-7..Y).
    monkeypatch.setenv("HISTORY_START_DATE", (YESTERDAY - timedelta(days=10)).isoformat())
    first, last = YESTERDAY - timedelta(days=10), YESTERDAY - timedelta(days=9)
    assert isinstance(sandbox_if_needed(source_plan()), nullcontext)  # real sources only: no sandbox process
    # What a run deleted 40 days ago left on the SQLite instance, and one deleted yesterday: the
    # command's retention (30 days by default) removes the first only.
    monkeypatch.delenv("DAGSTER_RETENTION_DAYS", raising=False)
    events = Path(dagster_instance.root_directory) / "history" / "runs"
    stale, fresh = events / f"{uuid.uuid4()}.db", events / f"{uuid.uuid4()}.db"
    for path, age in ((stale, 40), (fresh, 1)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an emptied event database")
        written = time.time() - age * 86400
        os.utime(path, (written, written))

    logs = community_only / "logs"
    code = refresh.main(
        ["--from", first.isoformat(), "--to", last.isoformat()], instance=dagster_instance, log_dir=logs
    )
    out = capsys.readouterr().out
    assert code == 0, out
    _progress_on_terminal_whole_log_in_file(out, logs, "backfill")
    assert "Retention (DAGSTER_RETENTION_DAYS=30): " in out and "deleted 0 runs" in out
    assert "1 run event files" in out, out
    assert not stale.exists() and fresh.exists()
    assert len(dagster_instance.get_run_records()) == 1
    assert f"Backfill: 2 day(s), {first} to {last}" in out
    assert "loading: Slack (API), Discourse; not loaded: GA4, Search Console, Meta" in out
    summary = out[out.index("Summary by source:") :]
    for title in ("GA4", "Search Console", "Meta"):
        assert re.search(rf"^  {title}: not loaded: it has no credentials", summary, re.M), summary
    assert "Traceback" not in out

    with duckdb.connect(community_only / "warehouse.duckdb", read_only=True) as conn:
        messages = conn.execute("select count(*) from raw_slack.messages").fetchone()[0]
        posts = conn.execute("select count(*) from raw_discourse.posts").fetchone()[0]
        days = conn.execute("select count(distinct date) from marts.mart_dark_social_daily").fetchone()[0]
    assert messages > 0 and posts > 0
    assert _printed_rows(summary, "raw_slack.messages") == messages
    assert _printed_rows(summary, "raw_discourse.posts") == posts
    assert f"raw_slack.messages {messages:,} rows, 2 day(s) {first}..{last}" in summary
    assert days == 0  # GA4 is not loaded: the mart is empty, and said so
    empty = re.search(r"^  empty \(.*\): (.*)$", summary, re.M).group(1).split(", ")
    assert "mart_dark_social_daily" in empty and "mart_member_engagement" not in empty
    assert re.search(r"with rows: .*mart_member_engagement \(\d", summary)
    assert "Backfill done" in out

    # The nightly run: yesterday and the 7 trailing days the sources revise. Slack also re-reads the
    # loaded days of the 30 before them (the backfill's two) for replies to their threads: the
    # summary counts the 10 days it replaced, not the 8 asked. What it carries on from the backfill
    # is in the warehouse (the ledger, the rows); its storage is not checked, so it runs on the
    # in-memory instance (the SQLite one, opening its files anew for each event, took an eighth of
    # the test's time in a profile).
    code = refresh.main([], instance=memory_instance, log_dir=logs)
    out = capsys.readouterr().out
    assert code == 0, out
    _progress_on_terminal_whole_log_in_file(out, logs, "refresh")
    assert f"Refresh: 8 day(s), {YESTERDAY - timedelta(days=7)} to {YESTERDAY}" in out
    summary = out[out.index("Summary by source:") :]
    assert "Meta: not loaded" in summary and "Traceback" not in out
    with duckdb.connect(community_only / "warehouse.duckdb", read_only=True) as conn:
        ledger = dict(
            conn.execute(
                "select table_name, count(*) from ledger.loaded_days "
                "where table_name in ('raw_slack.messages', 'raw_discourse.posts') group by 1"
            ).fetchall()
        )
        messages_now = conn.execute("select count(*) from raw_slack.messages").fetchone()[0]
    # the two backfilled days and the nightly's eight; the day between them was never asked
    assert ledger == {"raw_slack.messages": 10, "raw_discourse.posts": 10}
    assert messages_now > messages
    # every Slack row is in the 10 days the nightly replaced, so its rows are the table's
    assert (
        f"raw_slack.messages {messages_now:,} rows, 10 day(s) {first}..{YESTERDAY} "
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


def test_a_long_backfill_runs_as_a_history_load_with_its_days_in_the_ledger(
    community_only, memory_instance, capsys, monkeypatch
):
    # Over BACKFILL_DAILY_PARTITIONS_MAX_DAYS (1 here, DAGSTER_RETENTION_DAYS by default) a backfill
    # is a history load.
    monkeypatch.setenv("BACKFILL_DAILY_PARTITIONS_MAX_DAYS", "1")
    first, last = YESTERDAY - timedelta(days=2), YESTERDAY
    code = refresh.main(["--from", first.isoformat(), "--to", last.isoformat()], instance=memory_instance)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"History load: 3 day(s), {first} to {last}" in out
    assert "one materialization per asset" in out and "Traceback" not in out

    # One materialization of the messages for the whole run, no day claimed as a green partition.
    messages_key = dg.AssetKey(["slack", "messages"])
    (run,) = memory_instance.get_runs()
    events = [
        e
        for e in memory_instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.dagster_event.asset_key == messages_key
    ]
    assert len(events) == 1 and events[0].dagster_event.partition is None
    assert memory_instance.get_materialized_partitions(messages_key) == set()

    # The days loaded are in the warehouse's ledger, row counts included, and in the metadata.
    with duckdb.connect(community_only / "warehouse.duckdb", read_only=True) as conn:
        ledger = conn.execute(
            "select day, rows from ledger.loaded_days where table_name = 'raw_slack.messages' order by day"
        ).fetchall()
        per_day = conn.execute(
            "select date, count(*) from raw_slack.messages group by 1 order by 1"
        ).fetchall()
    assert [d for d, _ in ledger] == [first + timedelta(days=i) for i in range(3)]
    assert [(d, n) for d, n in ledger if n] == per_day and sum(n for _, n in ledger) > 0
    metadata = events[0].dagster_event.event_specific_data.materialization.metadata
    assert metadata["history_days_loaded"].value == 3 and metadata["history_days_missing"].value == 0
    assert metadata["history"].value == f"{first}..{last}"
    summary = out[out.index("Summary by source:") :]
    assert f"all 3 days of {first}..{last} loaded" in summary
