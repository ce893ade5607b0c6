"""The day loop helpers: the prefetcher (in order, bounded, errors named, stops early), DayBatches and
load_days."""

from __future__ import annotations

import sys
import threading
import time
from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from orchestration.fetching import (
    DayBatches,
    fetch_concurrency,
    load_days,
    load_items,
    prefetched,
    write_days,
)
from orchestration.warehouse import DuckDBWarehouse, replace_days, stamped

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


def _day_rows(day: date, n: int = 3) -> pa.Table:
    return pa.table({"date": pa.array([day] * n, pa.date32()), "value": pa.array(range(n), pa.int64())})


def test_day_batches_swap_seven_days_per_transaction_and_flush_the_rest(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    batches = DayBatches(conn, "raw_test.values", gate=None, days_per_batch=7, min_bytes_per_batch=0)
    for day in DAYS[:9]:
        batches.add(day, _day_rows(day))
        if day == DAYS[6]:  # the seventh day completes a batch
            assert batches.days_written == 7
    assert batches.days_written == 7
    assert conn.execute("select count(*) from raw_test.values").fetchone()[0] == 21
    batches.flush()
    assert batches.days_written == 9 and batches.rows_written == 27
    # A reload replaces the days whole: no duplicates.
    again = DayBatches(conn, "raw_test.values", gate=None, days_per_batch=7, min_bytes_per_batch=0)
    for day in DAYS[:9]:
        again.add(day, _day_rows(day, n=1))
    again.flush()
    assert conn.execute("select count(*), count(distinct date) from raw_test.values").fetchone() == (9, 9)


def test_write_days_swaps_a_whole_range_in_batches_each_day_with_its_own_rows(tmp_path):
    # a whole export's days at once, out of order, a day without rows among them
    days = DAYS  # 12 days
    rows = pa.concat_tables([_day_rows(day, n=i % 4) for i, day in enumerate(days)][::-1])
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    batches = write_days(conn, "raw_test.values", days, rows, max_rows=5)
    # whole days up to 5 rows or just over: 0+1+2+3 | 0+1+2+3 | 0+1+2+3 (each ends at 6 rows)
    assert batches.batches_written == 3 and batches.days_written == 12
    per_day = dict(conn.execute("select date, count(*) from raw_test.values group by 1").fetchall())
    assert batches.rows_written == rows.num_rows == sum(per_day.values())
    assert per_day == {day: i % 4 for i, day in enumerate(days) if i % 4}
    # every day in the ledger with its rows, the empty ones as 0
    ledger = dict(conn.execute("select day, rows from ledger.loaded_days").fetchall())
    assert ledger == {day: i % 4 for i, day in enumerate(days)}


def test_day_batches_write_early_when_the_days_held_reach_the_row_bound(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    batches = DayBatches(
        conn, "raw_test.values", gate=None, days_per_batch=7, rows_per_batch=10, min_bytes_per_batch=0
    )
    written = []
    for day, n in zip(DAYS[:6], [4, 4, 4, 20, 1, 1], strict=True):
        batches.add(day, _day_rows(day, n=n))
        written.append(batches.days_written)
    # 4 + 4 + 4 reaches 10 rows at the third day; a 20-row day alone is over the bound.
    assert written == [0, 0, 3, 4, 4, 4]
    batches.flush()
    assert (batches.days_written, batches.rows_written) == (6, 34)
    assert conn.execute("select count(*), count(distinct date) from raw_test.values").fetchone() == (34, 6)


def test_a_failed_batch_writes_none_of_its_days(tmp_path, monkeypatch):
    import orchestration.fetching as fetching

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    real = fetching.replace_days

    def refuse_the_second_batch(conn, table, days, rows):
        if DAYS[3] in days:
            raise ValueError("refused by the quality gate")
        return real(conn, table, days, rows)

    monkeypatch.setattr(fetching, "replace_days", refuse_the_second_batch)
    batches = DayBatches(conn, "raw_test.values", gate=None, days_per_batch=3, min_bytes_per_batch=0)
    with pytest.raises(ValueError, match="refused"):
        for day in DAYS[:6]:
            batches.add(day, _day_rows(day))
    assert conn.execute("select min(date), max(date) from raw_test.values").fetchone() == (DAYS[0], DAYS[2])
    assert batches.days_written == 3


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


class _Context:
    def __init__(self):
        self.log = _Log()


def _stored(warehouse: DuckDBWarehouse) -> tuple:
    with warehouse.connect() as conn:
        return conn.execute("select count(*), min(date), max(date) from raw_test.values").fetchone()


@pytest.fixture
def weekly(monkeypatch):
    """Batches of 7 days however small (the tests' days are a few rows, which a month would hold)."""
    import orchestration.fetching as fetching

    monkeypatch.setattr(fetching, "WRITE_BATCH_MIN_BYTES", 0)


def test_day_batches_hold_a_small_table_up_to_a_month_and_a_large_one_a_week(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(70)]
    day_bytes = _day_rows(days[0], n=100).nbytes

    def batches_of(n_rows: int, **bounds) -> list[int]:
        batches = DayBatches(conn, f"raw_test.b{n_rows}", gate=None, **bounds)
        sizes, before = [], 0
        for day in days:
            batches.add(day, _day_rows(day, n=n_rows))
            if batches.days_written > before:
                sizes.append(batches.days_written - before)
                before = batches.days_written
        batches.flush()
        if batches.days_written > before:
            sizes.append(batches.days_written - before)
        assert batches.batches_written == len(sizes) and batches.rows_written == 70 * n_rows
        return sizes

    # the defaults: a few rows a day is a small table, written a month (31 days) at a time
    assert batches_of(3) == [31, 31, 8]
    bounds = {"days_per_batch": 7, "min_bytes_per_batch": 10 * day_bytes, "max_days_per_batch": 31}
    assert batches_of(100, **bounds) == [10] * 7  # past a week until the bytes bound, at day 10
    assert batches_of(200, **bounds) == [7] * 10  # a week is over the bound: weekly
    assert batches_of(10, **bounds) == [31, 31, 8]  # never reaches it: monthly
    got = conn.execute("select count(*), count(distinct date) from raw_test.b100").fetchone()
    assert got == (7000, 70)


def test_load_days_writes_every_day_logs_progress_and_returns_the_rows(tmp_path, weekly):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    context = _Context()
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(30)]
    rows = load_days(context, warehouse, "raw_test.values", days, _day_rows, source="test", gate=None)
    assert rows == 90
    assert context.log.lines == [
        "raw_test.values: 28/30 days loaded, 84 rows so far",  # four batches of 7 written
        "raw_test.values: 30/30 days loaded, 90 rows",
    ]
    assert _stored(warehouse) == (90, days[0], days[-1])


def test_load_days_hands_each_fetched_tuple_to_on_day_in_order_and_writes_its_table(tmp_path, weekly):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    context = _Context()
    seen: list[tuple[date, bool]] = []

    def fetch_day(day: date) -> tuple[pa.Table, bool]:
        return _day_rows(day), day.day % 5 == 0

    rows = load_days(
        context,
        warehouse,
        "raw_test.values",
        DAYS,
        fetch_day,
        source="test",
        gate=None,
        on_day=lambda day, fetched: seen.append((day, fetched[1])),
        label="test",
        unit="values",
        log_every=5,
    )
    assert rows == 36
    assert seen == [(day, day.day % 5 == 0) for day in DAYS]
    assert context.log.lines == [
        "test: 5/12 days loaded, 0 values so far",  # the first batch (7 days) is still held
        "test: 10/12 days loaded, 21 values so far",
        "test: 12/12 days loaded, 36 values",
    ]


def test_load_days_writes_nothing_of_a_refused_day_nor_of_the_days_held_with_it(tmp_path, weekly):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(14)]

    def refuse(day: date, table: pa.Table) -> None:
        if day == days[13]:  # the day that would complete the second batch
            raise ValueError("stray rows")

    with pytest.raises(ValueError, match="stray rows"):
        load_days(
            _Context(), warehouse, "raw_test.values", days, _day_rows, source="test", gate=None, on_day=refuse
        )
    # on_day runs before the day is held: days 1-7 were one written batch; days 8-13, held with the
    # refused day, were not written.
    assert _stored(warehouse) == (21, days[0], days[6])


def test_load_days_reraises_a_failed_fetch_and_keeps_the_batches_before_it(tmp_path, weekly):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))

    def fetch_day(day: date) -> pa.Table:
        if day == DAYS[8]:
            raise ConnectionError("API down")
        return _day_rows(day)

    context = _Context()
    with pytest.raises(ConnectionError, match="API down") as raised:
        load_days(context, warehouse, "raw_test.values", DAYS, fetch_day, source="test", gate=None)
    if sys.version_info >= (3, 11):
        assert f"test: fetching {DAYS[8]} failed" in "".join(raised.value.__notes__)
    assert _stored(warehouse) == (21, DAYS[0], DAYS[6])
    assert context.log.lines == []  # no total for a failed load


def test_load_items_writes_chunks_of_days_into_several_tables_and_logs_by_days(tmp_path, weekly):
    """The loop Discourse (a chunk of days feeding three tables) and Meta (a report per chunk) use."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    context = _Context()
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(20)]
    chunks = [days[i : i + 5] for i in range(0, 20, 5)]

    def fetch(chunk):
        return pa.concat_tables([_day_rows(day, n=1) for day in chunk])

    def split(chunk, fetched):
        yield chunk, {"raw_test.chunked": fetched, "raw_test.doubled": pa.concat_tables([fetched, fetched])}

    written = load_items(
        context,
        warehouse,
        ["raw_test.chunked", "raw_test.doubled"],
        chunks,
        fetch,
        split,
        source="test",
        gate=None,
        total_days=20,
        label="test",
        units={"raw_test.chunked": "rows", "raw_test.doubled": "doubled"},
        log_every=7,
    )
    assert written == {"raw_test.chunked": 20, "raw_test.doubled": 40}
    assert context.log.lines == [
        # 7 was passed inside the second chunk; its 10 days held were one batch, written
        "test: 10/20 days loaded, 10 rows, 20 doubled so far",
        "test: 15/20 days loaded, 10 rows, 20 doubled so far",  # 5 days held: not a batch yet
        "test: 20/20 days loaded, 20 rows, 40 doubled",
    ]
    with warehouse.connect() as conn:
        got = {
            table: conn.execute(f"select count(*), count(distinct date) from {table}").fetchone()
            for table in ("raw_test.chunked", "raw_test.doubled")
        }
    assert got == {"raw_test.chunked": (20, 20), "raw_test.doubled": (40, 20)}


def test_stamps_hold_their_value_on_every_row_with_their_fields_type(tmp_path):
    loaded_at = datetime(2026, 12, 5, 11, 30, 15, 123456)
    fields = [
        pa.field("_site_url", pa.string()),
        pa.field("_thresholded", pa.bool_()),
        pa.field("_loaded_at", pa.timestamp("us")),
        pa.field("_note", pa.string()),
    ]
    table = stamped(
        _day_rows(DAYS[0], n=5), zip(fields, ["sc-domain:example.com", True, loaded_at, None], strict=True)
    )
    assert table.schema.names == ["date", "value", "_site_url", "_thresholded", "_loaded_at", "_note"]
    assert [table.schema.field(f.name).type for f in fields] == [f.type for f in fields]
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_days(conn, "raw_test.stamped", [DAYS[0]], table)
    rows = conn.execute(
        "select value, _site_url, _thresholded, _loaded_at, _note from raw_test.stamped"
    ).fetchall()
    assert sorted(rows) == [(i, "sc-domain:example.com", True, loaded_at, None) for i in range(5)]
    assert (
        stamped(_day_rows(DAYS[0], n=0), zip(fields, ["x", False, loaded_at, None], strict=True)).num_rows
        == 0
    )
