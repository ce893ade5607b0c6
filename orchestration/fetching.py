"""The day loop of every source asset: fetch the next days while writing, write days in batches.

A source asset loops over days: fetch a day through its connector, then swap it into DuckDB. Done
strictly in turn, the API (or the sandbox process) waits while we write and we wait while it
answers. `prefetched` runs the fetches on a few worker threads, in order and a bounded number of
days ahead, and hands each day to the asset's own thread, which alone validates and writes: the
warehouse keeps one writer, and a day is written only once it is fetched in full.

    rows = load_days(context, warehouse, table_name, days, fetch_day, source="gsc", gate=gate)

`load_days` owns that loop for every source's daily tables: `fetch_day` returns a day's Arrow
table (or a tuple led by it) on a worker thread, the optional `on_day(day, what fetch_day
returned)` gathers facts about each day on the asset's thread, every batch passes the asset's
quality gate before it is written, and progress is logged every 28 days, with the time left at the
API's rate limit (orchestration/progress.py). `load_items` is the same loop where one fetch
covers a chunk of days or feeds several tables (Discourse: three tables per chunk of days);
Meta's insights, one fetch per chunk of days, use `load_items` too. Spelled out:

    with warehouse.held() as held, prefetched(days, fetch_day, source="gsc") as fetched:
        batches = DayBatches(held, table_name, gate=gate)
        for day, table in releasing_while_waiting(fetched, held):
            batches.add(day, table)
        batches.flush()

- The warehouse: held only while a batch is checked and written. After a write, when the next day
  is not fetched within HOLD_WHILE_FETCHING_SECONDS, the connection is closed and the next flush
  opens it again (waiting, bounded, for another process's lock: orchestration/warehouse_io.py).
  So the sources' steps of a run wait on their APIs at the same time and take turns at the file
  (orchestration/jobs.py runs them in parallel against real APIs).

- Order: items come back in the order given, whatever order their fetches finish in.
- Memory: at most `concurrency` items are fetched or being fetched beyond the one the caller
  holds, so a year's backfill holds a few days, not the year.
- Errors: the first failed fetch is re-raised when the caller reaches that item, as the
  connector raised it (so the quality gate still tells a broken API contract from an outage), with
  a note naming the source and the item; the items before it are handed over first, and nothing
  of the failed item is written (nor, with DayBatches, the days held with it in an unfinished
  batch: a re-run loads them).
- Stopping: leaving the `with` block (the last item, an error while writing, a cancelled run,
  Ctrl-C) stops the workers: no further fetch starts, and a fetch already under way ends by itself
  (the connector's timeout bounds it) with its result dropped. The workers are daemon threads, so
  they never hold the process open.

FETCH_CONCURRENCY sets the worker threads per asset (default 2; 0 or 1 fetches on the asset's own
thread, as before). It is read when the definitions load, like every other setting.

`DayBatches` then swaps the fetched days into their table WRITE_BATCH_DAYS (7) at a time (a
small table's up to a month at a time), each batch checked by the gate (`QualityGate.check`),
then replaced in one transaction (`replace_days`): a swap costs ~8-16 ms of CPU however small the
batch, so a backfill of the ten daily streams spent over a minute in it day by day, and ~3 ms a
day in batches of 7. Every day is still replaced whole; a failed batch writes none of its days
and leaves the batches before it loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, Generic, TypeVar

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.progress import ApiPace
from orchestration.quality.gate import QualityGate
from orchestration.settings import int_setting
from orchestration.warehouse import DuckDBWarehouse, HeldConnection, replace_days

T = TypeVar("T")
R = TypeVar("R")

FETCH_CONCURRENCY_ENV = "FETCH_CONCURRENCY"
# Two workers keep a request in flight while the previous answer is parsed and the day before is
# written. 90 sandbox days on 2 cores, in turn -> 2 workers: GA4 19 -> 14 s, Search Console
# 19 -> 14 s, Slack 20 -> 17 s, Discourse 23 -> 22 s (its client, not the API, is the bottleneck).
DEFAULT_FETCH_CONCURRENCY = 2
MAX_FETCH_CONCURRENCY = 16


def fetch_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """FETCH_CONCURRENCY: worker threads per asset fetching days ahead (default 2; 0 or 1: none)."""
    return int_setting(
        FETCH_CONCURRENCY_ENV,
        DEFAULT_FETCH_CONCURRENCY,
        environ,
        low=0,
        high=MAX_FETCH_CONCURRENCY,
        meaning="0 or 1: fetch on the asset's own thread",
    )


# Read once, when the definitions load, so a run uses the value the UI showed.
FETCH_CONCURRENCY = fetch_concurrency()


def prefetched(
    items: Sequence[T],
    fetch: Callable[[T], R],
    *,
    source: str,
    concurrency: int | None = None,
) -> Prefetched[T, R]:
    """`(item, fetch(item))` for every item, in order, fetched ahead on worker threads.

    Use it as a context manager around the loop, so that leaving the loop early stops the workers.

    Args:
        items: the days (or chunks of days) to fetch, in the order they are written.
        fetch: fetches one item in full and returns what the caller writes (an Arrow table, say).
            It runs on a worker thread: it must not write the warehouse or log to Dagster.
        source: the source's name ("ga4", "slack", ...), for the error note and thread names.
        concurrency: worker threads, which is also how many items may be fetched ahead of the
            caller (default FETCH_CONCURRENCY). 0 or 1: each fetch runs on the caller's thread.

    Raises (while iterating):
        Whatever `fetch` raised for the first item that failed, when the caller reaches that item.
    """
    workers = FETCH_CONCURRENCY if concurrency is None else concurrency
    return Prefetched(list(items), fetch, source, max(0, min(workers, len(items))))


def _named(exc: BaseException, source: str, item: object) -> BaseException:
    """`exc` with a note naming the source and the item (part of the run's error on Python 3.11+)."""
    if isinstance(item, (list, tuple)) and item:
        what = f"{item[0]}..{item[-1]}" if len(item) > 1 else str(item[0])
    else:
        what = str(item)
    add_note = getattr(exc, "add_note", None)  # Python 3.10 has no exception notes
    if add_note is not None:
        add_note(f"{source}: fetching {what} failed; nothing of it was written.")
    return exc


class Prefetched(Generic[T, R]):
    """The iterator `prefetched` returns: worker threads and the window they may fetch ahead."""

    def __init__(self, items: list[T], fetch: Callable[[T], R], source: str, workers: int):
        self._items = items
        self._fetch = fetch
        self._source = source
        self._workers = workers
        self._done: dict[int, tuple[bool, object]] = {}  # index -> (ok, result or exception)
        self._next_index = 0  # the next item a worker takes
        self._consumed = 0  # items handed to the caller
        self._handed = 0  # items the caller took through `next` (the same, seen from outside)
        self._stopped = False
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._iterator = self._serial() if workers <= 1 else self._parallel()

    def __iter__(self) -> Iterator[tuple[T, R]]:
        return self

    def __next__(self) -> tuple[T, R]:
        item = next(self._iterator)
        self._handed += 1
        return item

    def ready(self, timeout: float = 0.0) -> bool:
        """Whether the next item is fetched (or failed, or there is none), waiting up to `timeout`
        seconds for it; False when it would be fetched on the caller's thread (no workers)."""
        if self._handed >= len(self._items):
            return True
        if self._workers <= 1:
            return False
        with self._cond:
            return self._cond.wait_for(lambda: self._stopped or self._handed in self._done, timeout)

    def __enter__(self) -> Prefetched[T, R]:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop: no further fetch starts and whatever was fetched ahead is dropped."""
        with self._cond:
            self._stopped = True
            self._done.clear()
            self._cond.notify_all()
        self._iterator.close()

    def _serial(self) -> Iterator[tuple[T, R]]:
        for item in self._items:
            if self._stopped:
                return
            try:
                result = self._fetch(item)
            except Exception as exc:
                raise _named(exc, self._source, item)  # noqa: B904 - the connector's error as it is
            yield item, result

    def _parallel(self) -> Iterator[tuple[T, R]]:
        self._threads = [
            threading.Thread(target=self._work, name=f"fetch-{self._source}-{n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()
        try:
            for index, item in enumerate(self._items):
                with self._cond:
                    while index not in self._done and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                    ok, value = self._done.pop(index)
                    self._consumed = index + 1
                    self._cond.notify_all()
                if not ok:
                    raise _named(value, self._source, item)
                yield item, value
        finally:
            with self._cond:
                self._stopped = True
                self._done.clear()
                self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                # Bounded look-ahead: at most `workers` items beyond the one the caller holds.
                while (
                    not self._stopped
                    and self._next_index < len(self._items)
                    and self._next_index - self._consumed >= self._workers
                ):
                    self._cond.wait()
                if self._stopped or self._next_index >= len(self._items):
                    return
                index = self._next_index
                self._next_index += 1
            try:
                outcome: tuple[bool, object] = (True, self._fetch(self._items[index]))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
                outcome = (False, exc)
            with self._cond:
                if self._stopped:
                    return
                self._done[index] = outcome
                if not outcome[0]:
                    # Nothing after a failed item is written, so nothing after it is fetched.
                    self._next_index = len(self._items)
                self._cond.notify_all()


def api_pool(source: str) -> str:
    """The Dagster pool of a source's load steps ("api_slack"): the instance limits every pool to one
    step at a time (dagster_home/dagster.yaml, `default_limit: 1`), so two steps of one source, in a
    run or in two runs, never call its API at once from two processes, whose rate limiters
    (connectors/ratelimit.py) would each spend the whole limit. Different sources' steps run at
    the same time, each holding the warehouse only while it writes."""
    return f"api_{source}"


# Days swapped in per transaction. A nightly run's window (4-8 days) is one or two batches.
WRITE_BATCH_DAYS = 7
# ... or fewer, once the days held reach this many rows: memory stays bounded by rows, not by how
# big a day is (large Search Console properties return hundreds of thousands of rows a day).
WRITE_BATCH_ROWS = 250_000
# ... or more, up to WRITE_BATCH_MAX_DAYS, while the days held are under this many bytes (Arrow):
# a swap's fixed cost (~8 ms of CPU for a week of Meta's pixel stats, ~1,200 rows) is most of what
# writing a small table costs, so a backfill of one writes a month per transaction. What is held
# never exceeds the larger of a week and this bound.
WRITE_BATCH_MIN_BYTES = 4_000_000
WRITE_BATCH_MAX_DAYS = 31


class DayBatches:
    """Collects the fetched days of one table and replaces them WRITE_BATCH_DAYS at a time (fewer
    when they reach WRITE_BATCH_ROWS rows; up to WRITE_BATCH_MAX_DAYS while they are under
    WRITE_BATCH_MIN_BYTES).

        batches = DayBatches(conn, "raw_gsc.queries_daily", gate=gate)
        for day, table in fetched:
            batches.add(day, table)
        batches.flush()  # the last, partial batch

    Days are written in the order added; each batch is first checked by `gate` (the asset's
    QualityGate: QualityGateError refuses it; None: written unchecked, for tests and benchmarks),
    then swapped in one transaction (`replace_days`), so a refused or failed batch writes none of
    its days. Call `flush` after the loop: days still held when the loop fails are not written.
    `conn` is an open connection, or a `HeldConnection` that each flush opens if it was released.
    """

    def __init__(
        self,
        conn: Any,
        table_name: str,
        *,
        gate: QualityGate | None,
        days_per_batch: int | None = None,
        rows_per_batch: int | None = None,
        min_bytes_per_batch: int | None = None,
        max_days_per_batch: int | None = None,
    ):
        # None: the module's WRITE_BATCH_* setting, read when the batches are made
        def pick(value: int | None, default: int) -> int:
            return default if value is None else value

        self.conn = conn
        self.table_name = table_name
        self.gate = gate
        self.days_per_batch = max(1, pick(days_per_batch, WRITE_BATCH_DAYS))
        self.rows_per_batch = max(1, pick(rows_per_batch, WRITE_BATCH_ROWS))
        self.min_bytes_per_batch = max(0, pick(min_bytes_per_batch, WRITE_BATCH_MIN_BYTES))
        self.max_days_per_batch = max(self.days_per_batch, pick(max_days_per_batch, WRITE_BATCH_MAX_DAYS))
        self.rows_written = 0
        self.days_written = 0
        self.batches_written = 0
        self._days: list[date] = []
        self._tables: list[pa.Table] = []
        self._rows_held = 0
        self._bytes_held = 0

    def add(self, day: date, rows: pa.Table) -> None:
        """Hold `rows` (every row of `day`); write the batch once it has `rows_per_batch` rows,
        `days_per_batch` days and `min_bytes_per_batch` bytes, or `max_days_per_batch` days."""
        self.add_days([day], rows)

    def add_days(self, days: Sequence[date], rows: pa.Table) -> None:
        """`add` for the rows of several days fetched together (one report for a chunk of days)."""
        self._days.extend(days)
        self._tables.append(rows)
        self._rows_held += rows.num_rows
        self._bytes_held += rows.nbytes
        held = len(self._days)
        if (
            self._rows_held >= self.rows_per_batch
            or held >= self.max_days_per_batch
            or (held >= self.days_per_batch and self._bytes_held >= self.min_bytes_per_batch)
        ):
            self.flush()

    def flush(self) -> None:
        """Write the days held so far (if any) in one transaction."""
        if not self._days:
            return
        days, tables = self._days, self._tables
        self._days, self._tables, self._rows_held, self._bytes_held = [], [], 0, 0
        rows = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        # a HeldConnection is opened here (waiting for another writer's lock, bounded) if released
        conn = self.conn.get() if isinstance(self.conn, HeldConnection) else self.conn
        if self.gate is not None:
            self.gate.check(self.table_name, rows, days, conn)
        self.rows_written += replace_days(conn, self.table_name, days, rows)
        self.days_written += len(set(days))
        self.batches_written += 1


# The most rows `write_days` swaps in one transaction. One swap of a small workspace's 4,206 days
# (123k messages) ran out of LOADING_MEMORY_LIMIT (64 MB); 17k (a tiny workspace's 4,206 days)
# did not. Few large swaps beat many small ones: month-sized swaps (136 of them) made the tiny
# workspace's load 13-33 s against 8-12 s in one, and the small one's 41-55 s against 31-35 s in
# 7 (bench/README.md, "Bookkeeping benchmark"; a VM at load average 14-19).
WRITE_DAYS_MAX_ROWS = 20_000


def write_days(
    conn: Any, table_name: str, days: Sequence[date], rows: pa.Table, max_rows: int = WRITE_DAYS_MAX_ROWS
) -> DayBatches:
    """Replace `days` in `table_name` by `rows`, the rows of all of them at once (a workspace
    export's whole range), in batches of whole days of about `max_rows` rows (a day is never
    split), each its own transaction (`DayBatches`); days without rows are emptied. The caller has
    checked `rows` with its gate. Returns the batches, written."""
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("date", "ascending")]))
    spans, offset = {}, 0  # each day's rows: (first row, count) in the sorted table
    for item in pc.value_counts(rows["date"]):  # in the order of first appearance: sorted
        count = item["counts"].as_py()
        spans[item["values"].as_py()] = (offset, count)
        offset += count
    every_day = sorted(set(days))
    # only the row bound starts a batch: no bound on its days
    n = len(every_day) + 1
    batches = DayBatches(
        conn, table_name, gate=None, rows_per_batch=max_rows, days_per_batch=n, max_days_per_batch=n
    )
    for day in every_day:
        batches.add(day, rows.slice(*spans.get(day, (0, 0))))
    batches.flush()
    return batches


# How long the day loop keeps the warehouse open after a write while the next item is still being
# fetched: reopening costs ~0.2 s on a large file (orchestration/warehouse.py, `HeldConnection`), so
# a fetch that lands within this keeps the connection; a longer wait (an API's rate limit) frees
# the file for the other sources' steps.
HOLD_WHILE_FETCHING_SECONDS = 0.5


def releasing_while_waiting(
    fetched: Prefetched[T, R], held: HeldConnection, grace: float = HOLD_WHILE_FETCHING_SECONDS
) -> Iterator[tuple[T, R]]:
    """The items of `fetched`; before waiting on one not fetched within `grace` seconds, `held` is
    released, so another process can write the warehouse while this one waits on its API."""
    while True:
        if held.is_open and not fetched.ready(grace):
            held.release()
        try:
            yield next(fetched)
        except StopIteration:
            return


# A progress line every so many days of a long backfill; the nightly window logs only its total.
PROGRESS_EVERY_DAYS = 28


def load_days(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    table_name: str,
    days: Sequence[date],
    fetch_day: Callable[[date], R],
    *,
    source: str,
    gate: QualityGate | None,
    on_day: Callable[[date, R], None] | None = None,
    label: str | None = None,
    unit: str = "rows",
    log_every: int = PROGRESS_EVERY_DAYS,
) -> int:
    """Fetch `days` ahead (`prefetched`), check and swap them into `table_name` in batches
    (`DayBatches`), log progress.

    Args:
        context: the asset's context, for the log.
        warehouse: opened for each batch written and released while the next days are fetched.
        table_name: the table the days replace.
        days: the days to load, in the order they are written.
        fetch_day: fetches one day in full, on a worker thread (see `prefetched`): the day's Arrow
            table, or a tuple whose first element is that table and the rest facts about the day
            that `on_day` gathers.
        source: the source's name ("ga4", "gsc", ...), for the error note and thread names.
        gate: the asset's quality gate; every batch passes it before it is written.
        on_day: called with each day and what `fetch_day` returned for it, in order, on the caller's
            thread and before the day is held for writing, so raising from it writes nothing of
            the day (nor of the days held with it).
        label: what the log lines start with (default `table_name`).
        unit: what the log lines call the rows ("rows", "messages").
        log_every: a progress line every this many days but the last, which logs the total.

    Returns:
        The rows written.

    Raises:
        Whatever `fetch_day` raised for the first failed day, when the loop reaches it, and whatever
        `on_day`, the gate or the write raised; the days held in an unfinished batch are not written.
    """

    def split(day: date, fetched: R) -> Iterator[tuple[list[date], dict[str, pa.Table]]]:
        if on_day is not None:
            on_day(day, fetched)
        yield [day], {table_name: fetched[0] if isinstance(fetched, tuple) else fetched}

    rows = load_items(
        context,
        warehouse,
        [table_name],
        days,
        fetch_day,
        split,
        source=source,
        gate=gate,
        total_days=len(days),
        label=table_name if label is None else label,
        units={table_name: unit},
        log_every=log_every,
    )
    return rows[table_name]


def load_items(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    tables: Sequence[str],
    items: Sequence[T],
    fetch: Callable[[T], R],
    split: Callable[[T, R], Iterable[tuple[list[date], Mapping[str, pa.Table]]]],
    *,
    source: str,
    gate: QualityGate | None,
    total_days: int,
    label: str,
    units: Mapping[str, str] | None = None,
    log_every: int = PROGRESS_EVERY_DAYS,
) -> dict[str, int]:
    """The day loop of every source: `load_days` for one table and one fetch a day; used as it is
    where a fetch returns several days (a chunk) or feeds several tables (Discourse).

    Args:
        tables: the tables written, each through its own `DayBatches`.
        items: what is fetched, in order: days, or chunks of days.
        fetch: fetches one item on a worker thread (see `prefetched`).
        split: on the caller's thread, turns an item and what was fetched for it into its rows, in
            order: (days, rows per table of `tables`), a day at a time or several days whose rows
            came together; raising from it writes nothing of the item's days nor of the days held
            with them.
        total_days: the days the items cover, for the progress lines.
        label: what the log lines start with.
        units: per table, what the log lines call its rows (default: the table's name, or "rows"
            when there is one table).
        Others as in `load_days`.

    Returns:
        The rows written per table.
    """
    units = dict(units or {})
    if len(tables) == 1:
        units.setdefault(tables[0], "rows")

    def counts(batches: Mapping[str, DayBatches]) -> str:
        return ", ".join(f"{b.rows_written:,} {units.get(name, name)}" for name, b in batches.items())

    done = 0
    pace = ApiPace.start(source)  # the time left, from the calls still to make at the API's limit
    with warehouse.held() as held, prefetched(items, fetch, source=source) as fetched:
        batches = {name: DayBatches(held, name, gate=gate) for name in tables}
        for item, result in releasing_while_waiting(fetched, held):
            for days, rows_by_table in split(item, result):
                for name, day_batches in batches.items():
                    day_batches.add_days(days, rows_by_table[name])
                before, done = done, done + len(days)
                if done // log_every > before // log_every and done < total_days:
                    context.log.info(
                        f"{label}: {done}/{total_days} days loaded, {counts(batches)} so far"
                        + pace.describe(done, total_days)
                    )
        for day_batches in batches.values():
            day_batches.flush()
    context.log.info(f"{label}: {total_days}/{total_days} days loaded, {counts(batches)}")
    return {name: b.rows_written for name, b in batches.items()}
