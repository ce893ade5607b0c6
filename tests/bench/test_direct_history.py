"""The benchmark's history written from the generators (bench/direct_history.py) holds the rows the
assets load through the sandbox's APIs: GA4, Search Console, Slack's messages and Discourse's
posts, topics and likes, compared row for
row (load stamps aside) with tests/fixtures/raw_rows/, which the assets loaded from a sandbox
pinned to the same day (tests/orchestration/raw_rows_load.py; test_same_raw_rows.py proves today's
assets still load them)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from bench.direct_history import DIRECT_TABLES, load_direct
from orchestration.ledger import loaded_days

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "orchestration"))
from raw_rows_load import FIRST_DAY, LAST_DAY, TODAY, unstamped_columns  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "raw_rows"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("direct-history") / "warehouse.duckdb"
    load_direct(str(path), FIRST_DAY, LAST_DAY, "small", seed=42, workers=1, today=TODAY)
    return path


def test_every_table_written_from_the_generators_has_an_api_fixture():
    assert set(DIRECT_TABLES) == {
        "raw_ga4.sessions_daily",
        "raw_ga4.leads_daily",
        "raw_gsc.queries_daily",
        "raw_gsc.totals_daily",
        "raw_slack.messages",
        "raw_discourse.posts",
        "raw_discourse.topics",
        "raw_discourse.post_likes",
    }
    assert all((FIXTURE / f"{table}.parquet").exists() for table in DIRECT_TABLES)


@pytest.mark.parametrize("table", DIRECT_TABLES)
def test_the_generated_history_holds_the_rows_the_api_load_wrote(warehouse, table):
    api = str(FIXTURE / f"{table}.parquet")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        listed = unstamped_columns(conn, table)
        conn.execute(f"create temp view generated as select {listed} from {table}")
        n_api = conn.execute(f"select count(*) from '{api}'").fetchone()[0]
        n_generated = conn.execute("select count(*) from generated").fetchone()[0]
        missing = conn.execute(f"select count(*) from (from '{api}' except all from generated)").fetchone()[0]
        extra = conn.execute(f"select count(*) from (from generated except all from '{api}')").fetchone()[0]
        # the ledger of loaded days records every day of the range, as the assets' loads do
        ledger = loaded_days(conn, table, FIRST_DAY, LAST_DAY)
    assert n_api > 0
    assert (n_generated, missing, extra) == (n_api, 0, 0)
    assert sorted(ledger) == [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def test_a_history_is_written_as_the_night_that_loaded_its_last_day_leaves_it(tmp_path):
    """Without `today`, Slack's threads hold the replies posted before the day after the last day,
    so the bench's next night (a day later) finds one day's replies to fetch, as a night after a
    night does; written as of a later day, that night would find no thread grown."""
    from connectors.sandbox.slack_api import visible_replies

    last = LAST_DAY
    path = tmp_path / "warehouse.duckdb"
    load_direct(str(path), last - timedelta(days=2), last, "small", seed=42, workers=1, parts=("slack",))
    with duckdb.connect(str(path), read_only=True) as conn:
        threads = conn.execute(
            "select ts, latest_reply from raw_slack.messages where ts = thread_ts and reply_count > 0"
        ).fetchall()
        tables = {
            t
            for (t,) in conn.execute(
                "select schema_name || '.' || table_name from duckdb_tables()"
            ).fetchall()
        }
    assert threads and "raw_ga4.sessions_daily" not in tables  # only the parts asked
    night_before = {
        ts: visible_replies(42, "small", ts, last + timedelta(days=1))[-1].post_id for ts, _ in threads
    }
    assert dict(threads) == night_before
    # the next night's sandbox, a day later, has some of these threads grown
    next_night = {
        ts: visible_replies(42, "small", ts, last + timedelta(days=2))[-1].post_id for ts, _ in threads
    }
    assert next_night != night_before
