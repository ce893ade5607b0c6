"""A backfill's progress lines give the time left at the API's rate limit (orchestration/progress.py):
the calls still to make, from the requests made so far per day, over the configured limit."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest

from connectors.http import RetryPolicy, call_with_retries, calls_made
from connectors.ratelimit import RateLimits
from orchestration.fetching import load_days
from orchestration.progress import ApiPace, duration
from orchestration.warehouse import DuckDBWarehouse

DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(30)]


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


class _Context:
    def __init__(self):
        self.log = _Log()


def _requests(source: str, n: int) -> None:
    """`n` requests through the retry loop every connector uses (what the counter counts)."""
    for _ in range(n):
        call_with_retries(lambda: None, source=source, endpoint="test", policy=RetryPolicy())


def _fetch_with_calls(source: str, calls_per_day: int):
    def fetch_day(day: date) -> pa.Table:
        _requests(source, calls_per_day)
        return pa.table({"date": pa.array([day] * 2, pa.date32()), "value": pa.array([1, 2], pa.int64())})

    return fetch_day


@pytest.fixture
def paced(monkeypatch):
    monkeypatch.delenv("RATE_LIMIT_TIME_SCALE", raising=False)
    monkeypatch.delenv("SLACK_TIER3_PER_MINUTE", raising=False)
    monkeypatch.setenv("RATE_LIMITS", "on")


def test_the_time_left_is_the_calls_still_to_make_at_the_configured_limit():
    limits = RateLimits.from_env({"SLACK_TIER3_PER_MINUTE": "30"})
    pace = ApiPace.start("slack", limits)
    _requests("slack", 40)  # 40 calls for 10 days: 4 a day
    # 90 days left x 4 calls = 360 calls; 30 calls per 63 s (the limiter's 5% margin) -> 756 s
    assert pace.calls_left(10, 100) == 360
    assert pace.seconds_left(10, 100) == pytest.approx(756.0)
    assert pace.describe(10, 100) == (
        "; about 13 min left at 30 calls/minute (SLACK_TIER3_PER_MINUTE), 360 calls to go"
    )
    # Another source's calls do not count, and a faster limit gives a shorter wait for the same calls.
    _requests("discourse", 500)
    assert pace.calls_left(10, 100) == 360
    faster = ApiPace("slack", 60 / 63, "60 calls/minute", pace.calls_at_start)
    assert faster.seconds_left(10, 100) == pytest.approx(378.0)


def test_no_figure_without_a_fixed_limit_or_before_the_first_call():
    # GA4 is paced by its answers (a token quota), not a fixed rate: no figure rather than a guess.
    ga4 = ApiPace.start("ga4", RateLimits.from_env({}))
    _requests("ga4", 10)
    assert ga4.seconds_left(5, 50) is None and ga4.describe(5, 50) == ""
    off = ApiPace.start("slack", RateLimits.from_env({"RATE_LIMITS": "off"}))
    _requests("slack", 10)
    assert off.describe(5, 50) == ""
    fresh = ApiPace.start("gsc", RateLimits.from_env({}))
    assert fresh.seconds_left(0, 50) is None and fresh.calls_so_far() == 0


def test_a_backfills_progress_lines_say_the_time_left_at_the_apis_pace(tmp_path, paced, monkeypatch):
    import orchestration.fetching as fetching

    monkeypatch.setattr(fetching, "WRITE_BATCH_MIN_BYTES", 0)
    # Fetched on the loop's own thread, so the calls counted at a line are exactly those of its days
    # (with workers, up to two days fetched ahead are counted too: a small overestimate).
    monkeypatch.setattr(fetching, "FETCH_CONCURRENCY", 0)
    monkeypatch.setenv("SLACK_TIER3_PER_MINUTE", "50")
    context = _Context()
    before = calls_made("slack")
    rows = load_days(
        context,
        DuckDBWarehouse(path=str(tmp_path / "w.duckdb")),
        "raw_test.values",
        DAYS,
        _fetch_with_calls("slack", 3),
        source="slack",
        gate=None,
        log_every=14,
    )
    assert rows == 60 and calls_made("slack") - before == 90
    # After 14 days, 42 calls: 16 days x 3 = 48 calls to go at 50 per 63 s = 60.48 s; after 28, 6 calls.
    assert context.log.lines == [
        "raw_test.values: 14/30 days loaded, 28 rows so far; about 1 min left at 50 calls/minute "
        "(SLACK_TIER3_PER_MINUTE), 48 calls to go",
        "raw_test.values: 28/30 days loaded, 56 rows so far; about 8 s left at 50 calls/minute "
        "(SLACK_TIER3_PER_MINUTE), 6 calls to go",
        "raw_test.values: 30/30 days loaded, 60 rows",
    ]


def test_durations_read_as_a_person_reads_a_wait():
    assert [duration(s) for s in (7.6, 60.48, 756, 3 * 3600 + 300, 50 * 3600)] == [
        "8 s",
        "1 min",
        "13 min",
        "3 h 05 min",
        "2 d 2 h",
    ]
