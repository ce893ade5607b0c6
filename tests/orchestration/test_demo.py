"""`make demo`'s output: the summary of a snapshot (empty marts say "not loaded" instead of failing)
and the progress lines the terminal shows while the whole log goes to a file."""

from __future__ import annotations

import logging
import sys
from datetime import date, timedelta

import duckdb

from orchestration.commands import Progress, progress_to_terminal
from orchestration.demo import summarize

DARK_SOCIAL_COLUMNS = (
    "date date, total_sessions bigint, dark_social_sessions bigint, dark_messaging_sessions bigint, "
    "dark_social_share_28d double, is_ga4_sampled_or_thresholded boolean"
)


def _snapshot(path, dark_rows: list[tuple]) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute(f"create table mart_dark_social_daily ({DARK_SOCIAL_COLUMNS})")
        if dark_rows:
            conn.executemany("insert into mart_dark_social_daily values (?, ?, ?, ?, ?, ?)", dark_rows)
        conn.execute("create table mart_community_health_weekly as select 1 as week, 12 as active_members")
        conn.execute("insert into mart_community_health_weekly values (2, 15)")


def test_a_snapshot_with_only_community_marts_says_what_was_not_loaded(tmp_path):
    """Issue 16: only community sources configured left the dark-social mart empty and the summary
    failed with a TypeError; it now names the empty mart."""
    path = tmp_path / "marts.duckdb"
    _snapshot(path, [])
    text = summarize(path)
    lines = text.splitlines()
    assert lines[1:3] == [
        "  marts: mart_community_health_weekly",
        "  not loaded (no rows): mart_dark_social_daily",
    ]
    assert lines[3].startswith("  dark social: not loaded (mart_dark_social_daily is empty")
    assert "sessions:" not in text


def test_the_summary_reports_the_dark_social_figures_of_a_loaded_snapshot(tmp_path):
    path = tmp_path / "marts.duckdb"
    first = date(2026, 1, 1)
    _snapshot(
        path,
        [
            (first, 1_000, 300, 100, 0.2, False),
            (first + timedelta(days=1), 3_000, 500, 300, 0.25, True),
        ],
    )
    lines = summarize(path).splitlines()
    assert lines[1] == "  marts: mart_community_health_weekly, mart_dark_social_daily"
    assert lines[2] == "  mart_dark_social_daily: 2 days, 2026-01-01 to 2026-01-02"
    # 400 of 4,000 sessions through messaging apps, 800 with deep-link direct
    assert lines[-3] == (
        "  sessions: 4,000; dark social 10.0% (messaging, lower bound) "
        "to 20.0% (with deep-link direct, upper bound)"
    )
    assert lines[-2] == "  dark social share, last 28 days: 25.0%"  # the last day's 28-day share
    assert lines[-1] == "  days GA4 thresholded or folded into (other): 1"


def test_a_dark_social_mart_without_sessions_shows_no_share_rather_than_dividing_by_zero(tmp_path):
    path = tmp_path / "marts.duckdb"
    _snapshot(path, [(date(2026, 1, 1), 0, 0, 0, None, False)])
    lines = summarize(path).splitlines()
    assert lines[-3] == (
        "  sessions: 0; dark social n/a (messaging, lower bound) to n/a (with deep-link direct, upper bound)"
    )
    assert lines[-2] == "  dark social share, last 28 days: n/a"


DAGSTER = "2026-12-06 06:04:18 +0000 - dagster - INFO - refresh_warehouse - 32f9 - ga4__sessions_daily - "


def test_progress_shows_each_quarter_of_a_load_each_tenth_of_dbt_and_the_publish():
    progress = Progress()
    load = [
        progress.line(f"{DAGSTER}raw_ga4.sessions_daily: {done}/100 days loaded, {done * 10:,} rows so far")
        for done in range(10, 100, 10)
    ]
    load.append(progress.line(f"{DAGSTER}raw_ga4.sessions_daily: 100/100 days loaded, 1,000 rows"))
    assert [line for line in load if line] == [
        "ga4/sessions_daily: 30/100 days, 300 rows so far",
        "ga4/sessions_daily: 50/100 days, 500 rows so far",
        "ga4/sessions_daily: 80/100 days, 800 rows so far",
        "ga4/sessions_daily: 100/100 days, 1,000 rows",
    ]
    # A label that is not a table (Discourse's three tables) stays as it is.
    assert progress.line("discourse: 7/7 days loaded, 3 posts, 1 topics, 0 likes") == (
        "discourse: 7/7 days, 3 posts, 1 topics, 0 likes"
    )
    dbt = []
    for n in range(1, 21):
        dbt.append(progress.line(f"06:05:00  {n} of 20 START sql view model main.stg_{n}"))
        dbt.append(progress.line(f"06:05:01  {n} of 20 OK created sql view model main.stg_{n} [OK in 0.1s]"))
    assert [line for line in dbt if line] == [f"dbt: {n}/20 nodes" for n in range(2, 21, 2)]
    assert progress.line("06:05:09  Done. PASS=18 WARN=2 ERROR=0 SKIP=0 TOTAL=20") == (
        "dbt: PASS=18 WARN=2 ERROR=0 SKIP=0 TOTAL=20"
    )
    assert (
        progress.line(f"{DAGSTER}Published 12 tables to /tmp/marts.duckdb") == "serving: published 12 tables"
    )
    # each step as it starts, named; Dagster's other events stay in the log file only
    assert progress.line(f'{DAGSTER}STEP_START - Started execution of step "ga4__sessions_daily".') == (
        "ga4__sessions_daily: started"
    )
    assert progress.line(f"{DAGSTER}STEP_SUCCESS - Finished execution of step") is None
    freshness = DAGSTER.replace("ga4__sessions_daily", "ga4__sessions_daily_sessions_daily_freshness")
    assert progress.line(f"{freshness}STEP_START - Started execution of step") is None
    assert progress.line(f"{DAGSTER}STEP_OUTPUT - Yielded output") is None


def test_a_slow_load_shows_its_progress_every_minute_between_quarters():
    """A backfill at an API's pace can take an hour per quarter of its days: the terminal still
    hears from it every PROGRESS_EVERY_SECONDS, with the time left the line carries."""
    now = [0.0]
    progress = Progress(clock=lambda: now[0], every_seconds=60)
    shown = []
    for done in range(1, 40):
        now[0] = done * 25.0  # a day every 25 s
        shown.append(
            progress.line(
                f"{DAGSTER}raw_slack.messages: {done}/400 days loaded, {done:,} rows so far; "
                f"about {400 - done} min left at 50 calls/minute (SLACK_TIER3_PER_MINUTE)"
            )
        )
    # one at least 60 s after the one before (the first line starts the clock): days 4, 7, 10, ...
    assert [i + 1 for i, line in enumerate(shown) if line] == list(range(4, 40, 3))
    assert shown[3] == (
        "slack/messages: 4/400 days, 4 rows so far; about 396 min left at 50 calls/minute "
        "(SLACK_TIER3_PER_MINUTE)"
    )


def test_the_whole_log_goes_to_the_file_and_only_progress_to_the_terminal(tmp_path, capsys):
    log = tmp_path / "logs" / "demo.log"
    # as `logging.basicConfig` binds one before the run: Python loggers Dagster forwards print there
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        with progress_to_terminal(log):
            print(f"{DAGSTER}raw_gsc.totals_daily: 5/5 days loaded, 5 rows")
            sys.stderr.write(f"{DAGSTER}STEP_SUCCESS - Finished execution of step\n")
            sys.stdout.write("06:05:01  1 of 1 PASS not_null_x [PASS in 0.1s]")  # no newline yet
            sys.stdout.write("\n")
            logging.getLogger("dagster_dbt_like").warning("Running dbt command: `dbt build`.")
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.stream is sys.stderr  # given back
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["gsc/totals_daily: 5/5 days, 5 rows", "dbt: 1/1 nodes"]
    assert captured.err == ""
    written = log.read_text().splitlines()
    assert len(written) == 4 and "STEP_SUCCESS" in written[1] and "not_null_x" in written[2]
    assert written[3] == "Running dbt command: `dbt build`."


def test_the_demo_starts_the_sandbox_process_only_when_a_source_loads_from_it():
    """`make demo` chooses its sandbox process as `make refresh` does (orchestration/demo.py): with
    no credentials every source loads from the sandbox, so its process starts; with real Slack
    credentials alone and SANDBOX=off nothing does, and none starts."""
    from contextlib import nullcontext

    from orchestration.commands import sandbox_if_needed
    from orchestration.sources import SANDBOX, source_plan

    default = source_plan({})
    assert {plan.mode for plan in default.values()} & {SANDBOX}
    assert not isinstance(sandbox_if_needed(default), nullcontext)
    real_only = source_plan({"SANDBOX": "off", "SLACK_BOT_TOKEN": "xoxb-a-real-looking-token-1234"})
    assert SANDBOX not in {plan.mode for plan in real_only.values()}
    assert isinstance(sandbox_if_needed(real_only), nullcontext)
