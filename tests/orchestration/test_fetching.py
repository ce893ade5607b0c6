"""The shared day prefetcher: in order, a bounded number of days ahead, errors named, stops early."""

from __future__ import annotations

import sys
import threading
import time
from datetime import date, timedelta

import pytest

from orchestration.fetching import fetch_concurrency, prefetched

DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(12)]


def _fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fetch-")]


def test_days_come_back_in_order_although_fetches_finish_out_of_order():
    def fetch(day: date) -> str:
        time.sleep(0.02 if day.day % 2 else 0.0)  # odd days answer slower
        return day.isoformat()

    with prefetched(DAYS, fetch, source="test", concurrency=3) as fetched:
        got = list(fetched)
    assert got == [(d, d.isoformat()) for d in DAYS]


def test_fetches_overlap_the_callers_work():
    def fetch(day: date) -> date:
        time.sleep(0.05)
        return day

    started = time.monotonic()
    with prefetched(DAYS[:6], fetch, source="test", concurrency=2) as fetched:
        for _ in fetched:
            time.sleep(0.05)  # the caller "writes" while the next day is fetched
    # In turn: 6 x (0.05 + 0.05) = 0.6 s; overlapped about half of that.
    assert time.monotonic() - started < 0.5


def test_look_ahead_is_bounded_by_the_concurrency():
    lock = threading.Lock()
    fetched_count = 0

    def fetch(day: date) -> date:
        nonlocal fetched_count
        with lock:
            fetched_count += 1
        return day

    with prefetched(DAYS, fetch, source="test", concurrency=2) as fetched:
        first = next(fetched)
        time.sleep(0.2)  # the caller is slow: the workers may not run away with the range
        assert first[0] == DAYS[0]
        assert fetched_count <= 1 + 2


def test_a_failed_day_is_raised_naming_the_source_and_day_after_the_days_before_it():
    bad = DAYS[4]

    def fetch(day: date) -> date:
        if day == bad:
            raise ConnectionError("the API hung up")
        return day

    written = []
    with pytest.raises(ConnectionError, match="hung up") as raised:
        with prefetched(DAYS, fetch, source="gsc", concurrency=2) as fetched:
            for day, _ in fetched:
                written.append(day)
    assert written == DAYS[:4]  # every day before the failed one, none from it on
    if sys.version_info >= (3, 11):
        assert f"gsc: fetching {bad} failed" in "".join(raised.value.__notes__)


def test_serial_fetch_raises_the_same_way():
    def fetch(day: date) -> date:
        raise ValueError("renamed field 'clicks'")

    with pytest.raises(ValueError, match="renamed field") as raised:
        with prefetched(DAYS, fetch, source="gsc", concurrency=1) as fetched:
            list(fetched)
    if sys.version_info >= (3, 11):
        assert f"gsc: fetching {DAYS[0]} failed" in "".join(raised.value.__notes__)


def test_leaving_the_loop_early_stops_the_workers():
    calls = []

    def fetch(day: date) -> date:
        calls.append(day)
        time.sleep(0.01)
        return day

    with pytest.raises(RuntimeError):
        with prefetched(DAYS, fetch, source="stopping", concurrency=2) as fetched:
            for _ in fetched:
                raise RuntimeError("the write failed")
    deadline = time.monotonic() + 2
    while any(t.name.startswith("fetch-stopping") for t in _fetch_threads()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name.startswith("fetch-stopping") for t in _fetch_threads())
    assert len(calls) <= 1 + 2  # nothing was fetched past the look-ahead window


def test_concurrency_setting_is_validated():
    assert fetch_concurrency({}) == 2
    assert fetch_concurrency({"FETCH_CONCURRENCY": "4"}) == 4
    assert fetch_concurrency({"FETCH_CONCURRENCY": "0"}) == 0
    with pytest.raises(ValueError, match="FETCH_CONCURRENCY='two' is not a whole number"):
        fetch_concurrency({"FETCH_CONCURRENCY": "two"})
    with pytest.raises(ValueError, match="out of range"):
        fetch_concurrency({"FETCH_CONCURRENCY": "99"})
