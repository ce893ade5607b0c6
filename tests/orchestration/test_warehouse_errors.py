"""Warehouse errors that say what happened: a failed commit reports its own cause (not the rollback's
"no transaction is active"), a non-writable path is not called a lock, and a writer waits a bounded
time for a lock another process holds, naming that process when it gives up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.warehouse import connect_warehouse
from orchestration.warehouse_io import WarehouseError, WarehouseLockedError

# In a child process whose files may grow to 2 MB at most (RLIMIT_FSIZE, as a full disk would stop
# them): one small day, checkpointed, then a 40 MB day whose write cannot complete.
WRITE_PAST_THE_LIMIT = """
import resource, signal, sys
from datetime import date, timedelta
import pyarrow as pa
from orchestration.warehouse import connect_warehouse, replace_days

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
day1, day2 = date(2026, 1, 1), date(2026, 1, 2)
def rows(day, n):
    return pa.table({"date": pa.array([day] * n, pa.date32()), "id": pa.array(range(n), pa.int64()),
                     "text": pa.array([f"row {i} " * 20 for i in range(n)])})
conn = connect_warehouse(sys.argv[1])
replace_days(conn, "raw_test.events", [day1], rows(day1, 100))
conn.execute("checkpoint")
resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
try:
    replace_days(conn, "raw_test.events", [day1, day2], rows(day2, 300_000))
except Exception as exc:
    print(type(exc).__name__, "|", exc)
    sys.exit(3)
print("written")
"""


def test_a_failed_commit_reports_its_own_cause_and_keeps_the_previous_rows(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    child = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_THE_LIMIT, str(warehouse)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 3, child.stdout + child.stderr
    kind, _, message = child.stdout.strip().partition(" | ")
    assert kind == "WarehouseError"
    assert "disk is full" in message and "File too large" in message
    assert "raw_test.events for 2026-01-01..2026-01-02" in message
    assert "no transaction is active" not in message
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("select count(*), min(date), max(date) from raw_test.events").fetchone() == (
            100,
            date(2026, 1, 1),
            date(2026, 1, 1),
        )


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder holding a warehouse file, which this process then cannot write: a tmpfs remounted
    read-only when the tests run as root (whom permission bits do not stop), else mode 0555."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
            conn.execute("create table kept as select 1 as x")
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            (folder / "warehouse.duckdb").chmod(0o444)
            folder.chmod(0o555)
        yield folder
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)


@pytest.mark.parametrize("name", ["warehouse.duckdb", "new.duckdb"])
def test_a_path_that_cannot_be_written_is_named_so_and_not_called_a_lock(
    read_only_dir: Path, name, monkeypatch
):
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "30")
    started = time.monotonic()
    with pytest.raises(WarehouseError) as caught:
        connect_warehouse(str(read_only_dir / name))
    message = str(caught.value)
    assert not isinstance(caught.value, WarehouseLockedError)
    assert "not writable" in message and str(read_only_dir / name) in message
    assert "lock" not in message.lower() and "another process" not in message
    assert time.monotonic() - started < 10  # not a lock: no waiting


HOLD_THE_LOCK = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def _hold(warehouse: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(warehouse), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_writer_waits_for_a_lock_held_for_less_than_the_wait(tmp_path: Path, monkeypatch) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "10")
    holder = _hold(warehouse, 3)
    try:
        started = time.monotonic()
        conn = connect_warehouse(str(warehouse))
        waited = time.monotonic() - started
        conn.execute("create table written as select 1 as x")
        conn.close()
    finally:
        holder.wait(timeout=30)
    assert 1.0 < waited < 10
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("select x from written").fetchall() == [(1,)]


def test_a_writer_gives_up_after_the_wait_naming_the_holding_process(tmp_path: Path, monkeypatch) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "1")
    holder = _hold(warehouse, 3)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as caught:
            connect_warehouse(str(warehouse))
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert 0.9 < waited < 2.9
    message = str(caught.value)
    assert f"(PID {holder.pid})" in message
    assert "WAREHOUSE_LOCK_WAIT_SECONDS" in message and "1 s" in message


def test_an_unknown_lock_wait_setting_is_refused_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_LOCK_WAIT_SECONDS", "soon")
    with pytest.raises(ValueError, match="WAREHOUSE_LOCK_WAIT_SECONDS='soon'"):
        connect_warehouse(str(tmp_path / "warehouse.duckdb"))
