"""The event log of the project's Dagster instance (configured in dagster_home/dagster.yaml).

It is Dagster's own SQLite event log (the same files under $DAGSTER_HOME/history/runs, so an
existing instance keeps its history), changed in one respect: it keeps the SQLAlchemy engine of
each database file for the process instead of creating one for every write. SQLAlchemy caches
compiled statements per engine, so with a new engine each time every event's INSERT statements
are compiled again: ~60% of the CPU of storing an event. A backfill over a range of days records
one materialization per asset and day (the demo's ~5,100), so this is tens of seconds of it.

Connections are still opened and closed per write, as Dagster does (no SQLite connection is held
between writes or shared across threads), under Dagster's own lock; only the engine, its dialect
and its statement cache are kept, for the most recently used `MAX_ENGINES` files.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

MAX_ENGINES = 16


class SqliteEventLogKeepingEngines(SqliteEventLogStorage):
    """Dagster's SQLite event log with one engine per database file kept for the process.

    Config: `base_dir` (optional): where the run databases go; by default Dagster's own place,
    $DAGSTER_HOME/history/runs.
    """

    def __init__(self, base_dir: str | None = None, inst_data=None):
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "orchestration.event_log: DAGSTER_HOME is not set, so the event log has no default "
                    "place; set DAGSTER_HOME (the Makefile sets it to dagster_home/) or give the storage "
                    "a base_dir in dagster.yaml."
                )
            base_dir = os.path.join(home, "history", "runs")
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteEventLogKeepingEngines:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = db.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                while len(self._engines) > MAX_ENGINES:
                    _, oldest = self._engines.popitem(last=False)
                    oldest.dispose()
            else:
                self._engines.move_to_end(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def dispose(self) -> None:
        with self._db_lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose()
        super().dispose()
