"""The snapshot publish replaces only what changed, and what it publishes equals a fresh full copy.

A warehouse on disk with a large dated fact (more than PER_DAY_MIN_ROWS rows, so it is compared
day by day), a small daily mart and an undated dimension goes through nights: a new day with the
trailing days rebuilt, a late correction of an old day (rows changed, removed, a day emptied, rows
without a date), a schema change with a mart dropped and one added, a night with no change. After
each, every table of the published snapshot is compared with a fresh whole copy of the same marts.

That warehouse and its first publish are made once for the module (`night_one`); each test works on
its own copy of both files (`published`), since every test starts from them and changes them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from orchestration.serving.publish import (
    PER_DAY_MIN_ROWS,
    REWRITE_AFTER_PUBLISHES,
    REWRITE_FREE_SHARE,
    publish_snapshot,
)

DAYS = 30
ROWS_PER_DAY = 2_000


def _build(warehouse: Path) -> None:
    assert DAYS * ROWS_PER_DAY > PER_DAY_MIN_ROWS  # the fact is compared day by day
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema marts")
        conn.execute(
            "create table marts.fct_activity as select "
            "md5(i::varchar) as activity_id, 'm' || (i % 500) as member_key, "
            "date '2026-11-01' + (i // ?)::integer as activity_date, i % 97 as text_length, "
            "case when i % 7 = 0 then ['https://example.com/' || i] else [] end as brand_links, "
            "timestamp '2026-12-01 02:00:00' as built_at "
            "from range(?) t(i)",
            [ROWS_PER_DAY, DAYS * ROWS_PER_DAY],
        )
        _daily(conn)
        conn.execute(
            "create table marts.dim_members as select 'm' || i as member_key, "
            "case when i % 3 = 0 then 'slack' else 'discourse' end as platform from range(500) t(i)"
        )


def _daily(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "create or replace table marts.mart_daily as select activity_date as date, count(*) as activities, "
        "sum(text_length) as text_length from marts.fct_activity group by all"
    )


def _rebuild_days(conn: duckdb.DuckDBPyConnection, first: str, last: str, stamp: str) -> None:
    """What an incremental dbt model does to the days it rebuilds: delete them, insert them again."""
    conn.execute(
        "create temp table rebuilt as select * replace (?::timestamp as built_at) from marts.fct_activity "
        "where activity_date between ? and ?",
        [stamp, first, last],
    )
    conn.execute("delete from marts.fct_activity where activity_date between ? and ?", [first, last])
    conn.execute("insert into marts.fct_activity select * from rebuilt")
    conn.execute("drop table rebuilt")


def _tables(conn: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'",
            [catalog],
        ).fetchall()
    }


def assert_equal_to_a_fresh_copy(warehouse: Path, serving: Path) -> None:
    """Every table of `serving` holds the rows (as a multiset) of a fresh whole copy of the marts."""
    fresh = serving.with_name("fresh.duckdb")
    fresh.unlink(missing_ok=True)
    assert publish_snapshot(str(warehouse), fresh, "fresh", rewrite=True).rewritten
    with duckdb.connect() as conn:
        conn.execute(f"attach '{serving}' as published (read_only)")
        conn.execute(f"attach '{fresh}' as fresh (read_only)")
        tables = _tables(conn, "published")
        assert tables == _tables(conn, "fresh")
        for table in sorted(tables - {"_snapshot_info"}):
            counts = conn.execute(
                f"select (select count(*) from published.{table}), (select count(*) from fresh.{table})"
            ).fetchone()
            assert counts[0] == counts[1], table
            for a, b in (("published", "fresh"), ("fresh", "published")):
                extra = conn.execute(
                    f"select count(*) from (select * from {a}.{table} except all select * from {b}.{table})"
                ).fetchone()[0]
                assert extra == 0, f"{table}: {extra} row(s) of the {a} snapshot not in the {b} one"
        info = "select tables from {}._snapshot_info"
        assert (
            conn.execute(info.format("published")).fetchone() == conn.execute(info.format("fresh")).fetchone()
        )


@pytest.fixture(scope="module")
def night_one(tmp_path_factory):
    """`(warehouse, serving, first)`: the module's warehouse (`_build`) and its first publish, made
    once. The template every test copies (`published`): never changed itself."""
    tmp = tmp_path_factory.mktemp("night_one")
    warehouse, serving = tmp / "w.duckdb", tmp / "serving" / "marts.duckdb"
    _build(warehouse)
    first = publish_snapshot(str(warehouse), serving, "night-1")
    # both files whole, nothing left in a write-ahead log: a copy of them is the same database
    assert not Path(f"{warehouse}.wal").exists() and not Path(f"{serving}.wal").exists()
    assert sorted(p.name for p in serving.parent.iterdir()) == ["marts.duckdb"]
    return warehouse, serving, first


def _copy(night_one, tmp_path: Path, snapshot: bool = True) -> tuple[Path, Path]:
    """`(warehouse, serving)` under `tmp_path`: copies of `night_one`'s warehouse and, with
    `snapshot`, of its first publish (else no snapshot yet)."""
    warehouse, serving = tmp_path / "w.duckdb", tmp_path / "serving" / "marts.duckdb"
    serving.parent.mkdir(parents=True)
    shutil.copyfile(night_one[0], warehouse)
    if snapshot:
        shutil.copyfile(night_one[1], serving)
    return warehouse, serving


@pytest.fixture
def published(night_one, tmp_path) -> tuple[Path, Path]:
    """`(warehouse, serving)`: the test's own copy of the module's warehouse after night 1 and of
    the snapshot that night published."""
    return _copy(night_one, tmp_path)


def test_a_sequence_of_nights_publishes_only_the_changes_and_equals_a_fresh_copy(night_one, published):
    warehouse, serving = published

    first = night_one[2]
    assert (first.rewritten, first.reason) == (True, "first publish")
    assert first.counts == {"dim_members": 500, "fct_activity": 60_000, "mart_daily": 30}
    assert_equal_to_a_fresh_copy(warehouse, serving)

    # night 2: a new day arrives and the 3 trailing days are rebuilt (new stamps)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "insert into marts.fct_activity select md5('new' || i), 'm' || (i % 500), date '2026-12-01', "
            "i % 50, [], timestamp '2026-12-02 02:00:00' from range(1500) t(i)"
        )
        _rebuild_days(conn, "2026-11-28", "2026-11-30", "2026-12-02 02:00:00")
        _daily(conn)
    second = publish_snapshot(str(warehouse), serving, "night-2")
    assert not second.rewritten
    assert (second.days_replaced, second.replaced, second.unchanged) == (
        {"fct_activity": 4},
        ["mart_daily"],
        ["dim_members"],
    )
    assert second.counts["fct_activity"] == 61_500
    assert_equal_to_a_fresh_copy(warehouse, serving)

    # night 3: a late correction of an old day, a day emptied, rows without a date
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "update marts.fct_activity set text_length = text_length + 1 where activity_date = '2026-11-05'"
        )
        conn.execute(
            "delete from marts.fct_activity where activity_date = '2026-11-05' and text_length < 3; "
            "delete from marts.fct_activity where activity_date = '2026-11-10'"
        )
        conn.execute(
            "insert into marts.fct_activity select md5('undated' || i), 'm1', null, 5, ['x'], "
            "timestamp '2026-12-03 02:00:00' from range(40) t(i)"
        )
    third = publish_snapshot(str(warehouse), serving, "night-3")
    assert not third.rewritten
    assert third.days_replaced == {"fct_activity": 3}  # 11-05, 11-10 and the undated rows
    assert third.unchanged == ["dim_members", "mart_daily"]
    assert_equal_to_a_fresh_copy(warehouse, serving)
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute(
            "select count(*) from fct_activity where activity_date = '2026-11-10'"
        ).fetchone() == (0,)

    # night 4: a column added to a table, a mart dropped, a mart added
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("alter table marts.dim_members add column is_bot boolean default false")
        conn.execute("drop table marts.mart_daily")
        conn.execute(
            "create table marts.mart_weekly as select date_trunc('week', date '2026-11-02') as week, 1 as n"
        )
    fourth = publish_snapshot(str(warehouse), serving, "night-4")
    assert not fourth.rewritten
    assert (fourth.replaced, fourth.unchanged, fourth.days_replaced) == (
        ["dim_members", "mart_weekly"],
        ["fct_activity"],
        {},
    )
    assert_equal_to_a_fresh_copy(warehouse, serving)

    # night 5: nothing changed
    fifth = publish_snapshot(str(warehouse), serving, "night-5")
    assert (fifth.rewritten, fifth.replaced, fifth.days_replaced) == (False, [], {})
    assert_equal_to_a_fresh_copy(warehouse, serving)
    with duckdb.connect(str(serving), read_only=True) as conn:
        row = conn.execute(
            "select run_id, publishes_since_rewrite, published_as from _snapshot_info"
        ).fetchone()
    assert row == ("night-5", 4, "changes only: 0 table(s) replaced whole, 3 unchanged")


def _day_lengths(path: Path, table: str, day: str) -> list[int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                f"select text_length from {table} where activity_date = ? order by activity_id", [day]
            ).fetchall()
        ]


def test_only_the_days_whose_stamps_moved_are_hashed_again(published):
    """A mart row carries the start of the dbt run that wrote it (built_at): a day whose rows and
    stamps are as at the last publish is not hashed again, its last fingerprint is reused. Shown
    by an edit dbt never makes (rows updated in place, stamps kept): the publish does not see it,
    while the day rewritten with a new stamp beside it is replaced; a rewrite hashes every day."""
    warehouse, serving = published
    published_lengths = _day_lengths(serving, "fct_activity", "2026-11-03")
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "update marts.fct_activity set text_length = text_length + 1000 "
            "where activity_date in ('2026-11-03', '2026-11-04')"
        )
        _rebuild_days(conn, "2026-11-04", "2026-11-04", "2026-12-02 02:00:00")
    second = publish_snapshot(str(warehouse), serving, "night-2")
    assert (second.rewritten, second.days_replaced) == (False, {"fct_activity": 1})
    assert _day_lengths(serving, "fct_activity", "2026-11-03") == published_lengths
    assert _day_lengths(serving, "fct_activity", "2026-11-04") == _day_lengths(
        warehouse, "marts.fct_activity", "2026-11-04"
    )
    assert min(_day_lengths(serving, "fct_activity", "2026-11-04")) >= 1000

    rewritten = publish_snapshot(str(warehouse), serving, "night-3", rewrite=True)
    assert rewritten.rewritten
    assert _day_lengths(serving, "fct_activity", "2026-11-03") == [n + 1000 for n in published_lengths]
    assert_equal_to_a_fresh_copy(warehouse, serving)


def test_a_snapshot_without_day_stamps_has_every_day_hashed(published):
    """A snapshot published before the days kept stamps reuses no fingerprint: a day edited in place
    (stamps kept) is still found and replaced, and the new snapshot keeps the stamps."""
    warehouse, serving = published
    _sql("alter table _snapshot_days drop column stamp")(serving)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "update marts.fct_activity set text_length = text_length + 1000 "
            "where activity_date = '2026-11-03'"
        )
    second = publish_snapshot(str(warehouse), serving, "night-2")
    assert (second.rewritten, second.days_replaced) == (False, {"fct_activity": 1})
    assert_equal_to_a_fresh_copy(warehouse, serving)
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute(
            "select count(*), count(stamp) from _snapshot_days where table_name = 'fct_activity'"
        ).fetchone() == (DAYS, DAYS)


def _corrupt(serving: Path) -> None:
    serving.write_bytes(b"not a duckdb file" * 1000)


def _sql(statement: str):
    def change(serving: Path) -> None:
        with duckdb.connect(str(serving)) as conn:
            conn.execute(statement)

    return change


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_corrupt, "the last snapshot could not be updated"),
        (_sql("drop table _snapshot_tables"), "the last snapshot holds no fingerprints"),
        (_sql("update _snapshot_info set duckdb_version = '0.9.2'"), "written by DuckDB 0.9.2"),
        (
            _sql("delete from mart_daily where date = '2026-11-03'"),
            "mart_daily holds 29 rows in the last snapshot",
        ),
        (_sql("create table notes as select 1 as n"), "tables or views its fingerprints do not describe"),
        (_sql("create view recent as select 1 as n"), "tables or views its fingerprints do not describe"),
        (
            _sql(f"update _snapshot_info set publishes_since_rewrite = {REWRITE_AFTER_PUBLISHES - 1}"),
            f"the periodic rewrite ({REWRITE_AFTER_PUBLISHES} publishes since the last)",
        ),
    ],
    ids=[
        "corrupt-file",
        "no-fingerprints",
        "other-duckdb",
        "edited-table",
        "extra-table",
        "extra-view",
        "periodic",
    ],
)
def test_an_untrusted_last_snapshot_is_rewritten_whole(published, damage, reason):
    warehouse, serving = published
    damage(serving)
    with duckdb.connect(str(warehouse)) as conn:
        _rebuild_days(conn, "2026-11-29", "2026-11-30", "2026-12-02 02:00:00")
    published = publish_snapshot(str(warehouse), serving, "night-2")
    assert published.rewritten
    assert reason in published.reason
    assert published.summary().startswith("rewritten whole (")
    assert_equal_to_a_fresh_copy(warehouse, serving)
    with duckdb.connect(str(serving), read_only=True) as conn:
        assert conn.execute("select publishes_since_rewrite from _snapshot_info").fetchone() == (0,)
    assert sorted(p.name for p in serving.parent.iterdir()) == ["fresh.duckdb", "marts.duckdb"]


def _blocks(path: Path) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("select total_blocks, free_blocks from pragma_database_size()").fetchone()


def test_a_file_found_half_free_is_rewritten_to_a_fresh_size(night_one, tmp_path):
    """Replaced rows leave free blocks in the file (later publishes reuse them only in part): a
    publish that finds more than REWRITE_FREE_SHARE of the file's blocks free rewrites it whole,
    back to about the size of a fresh copy."""
    warehouse, serving = _copy(night_one, tmp_path, snapshot=False)  # its first publish is its own
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "create table marts.dim_pages as select md5(i::varchar) || md5((i + 1)::varchar) as url "
            "from range(400000) t(i)"
        )
    publish_snapshot(str(warehouse), serving, "night-1")
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("delete from marts.dim_pages where url >= '1'")  # 15 rows in 16 go
    shrunk = publish_snapshot(str(warehouse), serving, "night-2")
    assert (shrunk.rewritten, shrunk.replaced) == (False, ["dim_pages"])
    total, free = _blocks(serving)
    assert free / total > REWRITE_FREE_SHARE

    with duckdb.connect(str(warehouse)) as conn:
        _rebuild_days(conn, "2026-11-29", "2026-11-30", "2026-12-03 03:00:00")
    published = publish_snapshot(str(warehouse), serving, "night-3")
    assert published.rewritten and published.reason == f"{free / total:.0%} of the file was free blocks"
    fresh = tmp_path / "fresh.duckdb"
    publish_snapshot(str(warehouse), fresh, "fresh", rewrite=True)
    after, fresh_blocks = _blocks(serving), _blocks(fresh)
    # DuckDB writes in parallel: two fresh copies of the same marts differ by a few blocks
    assert after[1] == 0 and after[0] <= 1.2 * fresh_blocks[0], (after, fresh_blocks)
    assert after[0] < total / 2
