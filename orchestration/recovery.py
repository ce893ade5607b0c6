"""Start cleanly after a crash: runs whose process is gone are failed and their pool slots freed.

A run killed by SIGKILL, the OOM killer or a reboot never records its end: Dagster's storage keeps
it STARTED and keeps the pool slot its step held (`duckdb_warehouse`, `api_<source>`), so every
later refresh waits for that slot forever. A publish killed half-way leaves its
`.marts.duckdb.<pid>.tmp` beside the snapshot. With the default embedded instance (SQLite storage,
runs executing on this machine) no daemon watches for either, so `recover_after_crash` runs where
work starts:

- `make demo` calls it before its run;
- loading the definitions calls it (`recover_on_load`): `dagster dev` when it starts, and the
  process of every run it launches (the nightly's included) before that run's first step asks
  for a slot.

A run counts as gone when no process that recorded its events still lives: its pids are not alive,
or the process now holding a pid started after the event (a pid reused after a reboot or a
wrap-around). Where runs may execute on other machines (a PostgreSQL instance) a pid says
nothing, so there Dagster's run monitoring does this instead (CRASH_RECOVERY=auto skips it).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psutil

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FINISHED_STATUSES = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

# The events whose pid is a process doing the run's work: the run worker (RUN_START) and each step's
# process (STEP_START). Not engine events: the launcher's come from the code server, which outlives
# a killed run worker.
_PID_EVENTS = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START}

# A process's start time and an event's timestamp come from two clocks read at different moments;
# this much slack keeps a live process from being taken for a reused pid.
_CLOCK_SLACK_SECONDS = 2.0

CRASH_RECOVERY_MODES = ("auto", "on", "off")


@dataclass
class Recovery:
    """What one recovery pass did (empty when there was nothing to recover)."""

    failed_runs: dict[str, str] = field(default_factory=dict)  # run id -> why
    freed_slot_runs: list[str] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failed_runs or self.freed_slot_runs or self.removed_files)

    def summary(self) -> str:
        parts = []
        if self.failed_runs:
            runs = "; ".join(f"{run_id[:8]} ({why})" for run_id, why in self.failed_runs.items())
            parts.append(f"marked {len(self.failed_runs)} run(s) whose process is gone as failed: {runs}")
        if self.freed_slot_runs:
            runs = ", ".join(run_id[:8] for run_id in self.freed_slot_runs)
            parts.append(f"freed the pool slots held by {len(self.freed_slot_runs)} ended run(s): {runs}")
        if self.removed_files:
            files = ", ".join(str(p) for p in self.removed_files)
            parts.append(f"removed {len(self.removed_files)} stale temporary file(s): {files}")
        return "Crash recovery: " + "; ".join(parts) + "."


def process_alive_since(pid: int, at: float) -> bool:
    """Whether process `pid` is alive and was already running at time `at` (epoch seconds): the same
    process that was there then, not a later one given the same pid."""
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # alive and not ours to inspect: assume it is the same process
    return created <= at + _CLOCK_SLACK_SECONDS


def _run_process_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why the run's processes are all gone, or None while one may still work on it (or nothing
    tells: a run with no recorded process is left to Dagster's own timeouts)."""
    last_seen: dict[int, float] = {}
    connection = instance.get_records_for_run(run.run_id, of_type=_PID_EVENTS)
    for record in connection.records:
        entry = record.event_log_entry
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid is not None:
            last_seen[pid] = max(last_seen.get(pid, 0.0), entry.timestamp)
    if not last_seen:
        return None
    if any(process_alive_since(pid, at) for pid, at in last_seen.items()):
        return None
    boot = psutil.boot_time()
    pids = ", ".join(str(pid) for pid in sorted(last_seen))
    if max(last_seen.values()) < boot:
        return f"process {pids} ran before the machine restarted"
    return f"process {pids} is gone (killed, out of memory or crashed)"


def stale_snapshot_files(serving_path: Path) -> list[Path]:
    """The `.<snapshot>.<pid>.tmp` files beside `serving_path` whose writing process is gone."""
    pattern = re.compile(rf"^\.{re.escape(serving_path.name)}\.(\d+)\.tmp(\.wal)?$")
    stale = []
    if not serving_path.parent.is_dir():
        return stale
    for path in serving_path.parent.iterdir():
        match = pattern.match(path.name)
        if not match:
            continue
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:
            continue  # its publish just renamed or removed it
        # The writer keeps the file's mtime fresh, so a live writer started before its last write.
        if not process_alive_since(int(match.group(1)), written):
            stale.append(path)
    return stale


def recover_after_crash(instance: dg.DagsterInstance, serving_path: Path | None = None) -> Recovery:
    """Fail the runs whose processes are gone, free the pool slots of every ended run, remove the
    temporary snapshot files of dead publishes; log one line when anything was done."""
    recovery = Recovery()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_STATUSES)):
        why = _run_process_gone(instance, run)
        if why is None:
            continue
        was = "being canceled" if run.status == dg.DagsterRunStatus.CANCELING else "running"
        instance.report_run_failed(
            run,
            message=(
                f"Marked failed at the next start: this run was {was} but its {why}. Its pool slots "
                "are freed; re-run its partitions (each day is replaced whole, so a re-run is safe)."
            ),
        )
        recovery.failed_runs[run.run_id] = why

    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in sorted(storage.get_concurrency_run_ids()):
            run = instance.get_run_by_id(run_id)
            # A finished run still holding a slot died before releasing it; no finished run needs one.
            if run is None or run.status in FINISHED_STATUSES:
                storage.free_concurrency_slots_for_run(run_id)
                recovery.freed_slot_runs.append(run_id)

    if serving_path is not None:
        for path in stale_snapshot_files(serving_path):
            path.unlink(missing_ok=True)
            recovery.removed_files.append(path)

    if recovery:
        logger.warning(recovery.summary())
    return recovery


def crash_recovery_mode(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    mode = (env.get("CRASH_RECOVERY") or "auto").strip().lower()
    if mode not in CRASH_RECOVERY_MODES:
        raise ValueError(f"CRASH_RECOVERY={mode!r} is not valid; use auto (default), on or off.")
    return mode


def is_embedded(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs in SQLite files, so its runs execute on this machine."""
    return type(instance.run_storage).__name__.lower().startswith("sqlite")


def recover_on_load(serving_path: Path) -> Recovery | None:
    """The recovery pass of a process that loads the definitions, on the instance of DAGSTER_HOME.

    Skipped without DAGSTER_HOME (tests and tools with a temporary instance) or before its first run,
    with CRASH_RECOVERY=off, and under auto when the instance is not the embedded SQLite one.
    """
    mode = crash_recovery_mode()
    home = os.environ.get("DAGSTER_HOME")
    if mode == "off" or not home:
        return None
    if not (Path(home) / "history").is_dir():
        # No run was ever recorded there (SQLite storage keeps runs under history/): nothing to
        # recover, and opening the instance would create its files (in a test, in the repository).
        return None
    try:
        with dg.DagsterInstance.get() as instance:
            if mode == "auto" and not is_embedded(instance):
                return None
            return recover_after_crash(instance, serving_path)
    except Exception as exc:
        # Housekeeping must not keep the definitions from loading; the instance's own error (a
        # broken dagster.yaml) shows again where Dagster opens it.
        logger.warning(f"Crash recovery skipped: {type(exc).__name__}: {exc}")
        return None
