"""Opening and committing the warehouse file, with errors that say what happened.

DuckDB reports three different failures through the same IOException: another process holds the
file's lock (worth waiting for: a notebook or a BI session closes, a run ends), the path cannot be
written (permissions, a read-only file system: waiting never helps), and a write that failed (disk
full, a size limit). And when a commit fails, DuckDB has already ended the transaction, so the
customary `rollback` raises "no transaction is active" and hides the cause. This module tells the
three apart and keeps the first error the one the user sees.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

log = logging.getLogger(__name__)

DEFAULT_LOCK_WAIT_SECONDS = 60.0

# DuckDB: 'Could not set lock on file "...": Conflicting lock is held in /usr/bin/python3 (PID 42)'
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
_NOT_WRITABLE = ("Permission denied", "Read-only file system", "Operation not permitted")
_NO_SPACE = ("No space left on device", "File too large", "Disk quota exceeded")


class WarehouseError(RuntimeError):
    """The warehouse could not be opened or written; the message says why and what to do."""


class WarehouseLockedError(WarehouseError):
    """Another process held the warehouse for longer than the configured wait."""


def lock_wait_seconds(environ: dict[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    text = env.get("WAREHOUSE_LOCK_WAIT_SECONDS")
    if not text:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"WAREHOUSE_LOCK_WAIT_SECONDS={text!r} is not a number of seconds >= 0; "
            f"unset it to wait {DEFAULT_LOCK_WAIT_SECONDS:.0f} s."
        )
    return seconds


def lock_holder(exc: BaseException) -> str | None:
    """The process DuckDB names as holding the file's lock ("python3 (PID 42)"), None if the error
    is not a lock conflict."""
    match = _LOCK_HOLDER.search(str(exc))
    if not match:
        return None
    return f"{os.path.basename(match.group('program'))} (PID {match.group('pid')})"


def cause_of(exc: BaseException) -> str | None:
    """A plain statement of an I/O failure's cause, None when it is none of the known ones."""
    text = str(exc)
    if any(s in text for s in _NO_SPACE):
        return "the disk is full (or a file size limit was reached)"
    if any(s in text for s in _NOT_WRITABLE):
        return "the file or its folder is not writable by this user (permissions or a read-only disk)"
    return None


def open_waiting_for_lock(path: str, read_only: bool = False, wait_seconds: float | None = None):
    """`duckdb.connect(path)`, waiting up to `wait_seconds` (WAREHOUSE_LOCK_WAIT_SECONDS) while
    another process holds the file's lock.

    Raises:
        WarehouseLockedError: still locked after the wait; names the holding process.
        WarehouseError: the path cannot be opened for another reason (named: not a lock).
    """
    wait = lock_wait_seconds() if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    delay, announced = 0.1, False
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            holder = lock_holder(exc)
            if holder is None:
                raise WarehouseError(_open_failure(path, exc)) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(
                    f"The warehouse {path} is held by another process, {holder}, and stayed locked "
                    f"for the {wait:g} s this step waits (WAREHOUSE_LOCK_WAIT_SECONDS). DuckDB allows "
                    "one writing process per file: close that session (a duckdb CLI, a notebook, a "
                    "second Dagster run) or raise the wait, and re-run. BI tools should open the "
                    "serving snapshot instead."
                ) from exc
            if not announced:
                log.warning(f"The warehouse {path} is locked by {holder}; waiting up to {wait:g} s")
                announced = True
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)


def _open_failure(path: str, exc: BaseException) -> str:
    cause = cause_of(exc)
    if cause:
        return f"Could not open the warehouse {path}: {cause} ({exc}). Fix that and re-run."
    return f"Could not open the warehouse {path}: {exc}"


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection, what: str) -> Iterator[None]:
    """Run the block in one transaction on `conn`; `what` names the write in an error.

    A failed commit is reported with its own cause; a rollback that fails (DuckDB ends a transaction
    whose commit failed) is logged, never raised in place of the error that caused it.
    """
    conn.execute("begin transaction")
    try:
        yield
    except BaseException as exc:
        _rollback_quietly(conn, exc)
        cause = cause_of(exc) if isinstance(exc, duckdb.Error) else None
        if cause:
            raise WarehouseError(_write_failure(what, cause, exc)) from exc
        raise
    try:
        conn.execute("commit")
    except duckdb.Error as exc:
        _rollback_quietly(conn, exc)
        raise WarehouseError(_write_failure(what, cause_of(exc), exc)) from exc


def _write_failure(what: str, cause: str | None, exc: BaseException) -> str:
    detail = f"{cause}: {exc}" if cause else str(exc)
    return (
        f"Could not write {what}: {detail}. Nothing of this write was kept; the rows already in the "
        "warehouse are unchanged. Fix the cause and re-run."
    )


def _rollback_quietly(conn: duckdb.DuckDBPyConnection, cause: BaseException) -> None:
    try:
        conn.execute("rollback")
    except duckdb.Error as exc:
        # Expected after a failed commit (no transaction is left); the cause is what matters.
        log.debug(f"rollback after {type(cause).__name__} also failed: {exc}")
