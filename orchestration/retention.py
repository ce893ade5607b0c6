"""Dagster's own history kept for DAGSTER_RETENTION_DAYS (default 30): a daily job deletes older runs.

Dagster's daemon purges schedule and sensor ticks by itself (the `retention` section of
dagster_home/dagster.yaml and dagster_home/postgres/dagster.yaml), but has no setting for run
history: without this job the storage grows by every run's events (~9 MB a night). The job
`dagster_retention` deletes each finished run created before the period, with its event log and its
compute logs, through the public `DagsterInstance` API, so it works the same on SQLite and
PostgreSQL. A run still queued or in progress is never deleted, however old.

The commands that run in this process without a daemon (`make demo`, `make refresh`, `make
backfill`) apply the same retention at the end of their run (`apply_retention`), so an instance
that never runs the daemon stays bounded too. One pass also removes what Dagster leaves behind or
does not own: on the embedded SQLite instance, the emptied event database of each deleted run
(`<DAGSTER_HOME>/history/runs/<run_id>.db`, ~3.5 MB a night here); the ticks of schedules and
sensors; dbt's build folders of the deleted runs; and old run logs in data/logs. Retention is told
"now" by its caller (the wall clock, or a simulated night's clock in bench/nights.py).

Dagster's `delete_run` leaves the run's asset check results in the event log's index (the table
`asset_check_executions`, ~1.8 MB a night of dbt tests here) and has no public call that deletes
them by run or by age (only wiping an asset's whole history does). Retention deletes those rows with
SQL on the instance's own event-log database, found from the instance's configuration (the SQLite
index beside the run event files, or the storage's PostgreSQL/MySQL URL), and only rows whose run
the run storage no longer has. If a later Dagster renames the table or its run_id column, one
warning says so and the rows stay: retention never fails a run over them.
"""

# No `from __future__ import annotations`: Dagster checks an op's context annotation as a type.
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT, SettingsError

RETENTION_SETTING = "DAGSTER_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
# After the nightly (02:00 by default), so a night's run is never what it waits behind.
RETENTION_CRON = "30 4 * * *"
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_BATCH = 100

# The log each `make demo`, `make refresh` and `make backfill` writes (orchestration/commands.py,
# run_log_path); the services' own logs (code_server.log, webserver.log, daemon.log) are rotated by
# size instead (orchestration/serve.py).
LOG_DIR = PROJECT_ROOT / "data" / "logs"
RUN_LOG_PATTERNS = ("demo-*.log", "refresh-*.log", "backfill-*.log")
# However young, at most this many run logs are kept (a day of repeated demos stays bounded).
KEEP_RUN_LOGS = 10
# dagster-dbt names each build's folder under dbt's target/ `<op>-<first 7 characters of the run
# id>-<random>`; orchestration/dbt/assets.py also keeps at most the 10 newest.
DBT_TARGET_DIR = DBT_PROJECT_DIR / "target"
# Dagster's run ids are UUIDs: a file name that is not one is never taken for a run's database.
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
# Dagster's table of asset check results (one row per check and run), and the column naming the run.
CHECK_EXECUTIONS_TABLE = "asset_check_executions"
CHECK_EXECUTIONS_RUN_COLUMN = "run_id"
# Run ids per statement: below SQLite's oldest limit on bound parameters (999).
_IDS_PER_STATEMENT = 500


def retention_days(environ: Mapping[str, str] | None = None) -> int:
    """DAGSTER_RETENTION_DAYS as a whole number of days, at least 1.

    Raises:
        SettingsError: the setting is not a whole number of at least 1, naming it and the fix.
    """
    env = os.environ if environ is None else environ
    text = (env.get(RETENTION_SETTING) or "").strip()
    if not text:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise SettingsError(
            f"{RETENTION_SETTING}={text!r} is not valid; use a whole number of days, at least 1 "
            f"(unset: {DEFAULT_RETENTION_DAYS})."
        )
    return days


def delete_runs_before(
    instance: dg.DagsterInstance, cutoff: datetime, files_removed: list[Path] | None = None
) -> list[str]:
    """Delete every finished run created before `cutoff`, its events, compute logs and event file.

    Args:
        files_removed: if given, the run event files removed are appended to it.

    Returns:
        The ids of the runs deleted, oldest first within each batch.
    """
    deleted: list[str] = []
    while True:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff), limit=_BATCH, ascending=True
        )
        if not records:
            return deleted
        for record in records:
            run_id = record.dagster_run.run_id
            instance.delete_run(run_id)
            # Compute logs are files keyed by the run id (stdout and stderr of each step).
            instance.compute_log_manager.delete_logs(prefix=[run_id])
            files = remove_run_event_file(instance, run_id)
            if files_removed is not None:
                files_removed += files
            deleted.append(run_id)


def sqlite_event_dir(instance: dg.DagsterInstance) -> Path | None:
    """Where the embedded SQLite instance keeps one event database per run, or None on any other.

    Dagster's default layout: its `SqliteEventLogStorage`, with the runs' files and the index
    (`index.db`) in `<DAGSTER_HOME>/history/runs/`. PostgreSQL or a consolidated SQLite file has
    none; a folder left by an earlier SQLite instance under a PostgreSQL one is not touched. The
    class is recognised by name: its module is private to Dagster and is not imported here.
    """
    if type(instance.event_log_storage).__name__ != "SqliteEventLogStorage":
        return None
    folder = Path(instance.root_directory) / "history" / "runs"
    return folder if (folder / "index.db").is_file() else None


def remove_run_event_file(instance: dg.DagsterInstance, run_id: str) -> list[Path]:
    """Delete the event database a deleted run leaves on the SQLite instance (and its journals).

    Dagster's `delete_run` empties `<run_id>.db` but leaves the file (~3.5 MB for a night's run).
    Only a file named by a run id, directly inside the instance's history/runs folder, of a run the
    instance no longer has, is removed.

    Returns:
        The files removed (none on PostgreSQL or when the run still exists).
    """
    folder = sqlite_event_dir(instance)
    if folder is None or not _RUN_ID.match(run_id) or instance.get_run_record_by_id(run_id) is not None:
        return []
    removed = []
    for suffix in _SQLITE_SUFFIXES:
        path = folder / f"{run_id}.db{suffix}"
        if path.resolve().parent == folder.resolve() and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def remove_orphan_event_files(instance: dg.DagsterInstance, cutoff: datetime) -> list[Path]:
    """Delete run event databases older than `cutoff` whose run is gone (SQLite instance only).

    These are what runs deleted before this module removed the files left behind (`dagster run
    delete`, the UI, an earlier dagster_retention). A file last written before the cutoff cannot
    belong to a run being created now.

    Returns:
        The files removed.
    """
    folder = sqlite_event_dir(instance)
    if folder is None:
        return []
    limit = cutoff.timestamp()
    removed = []
    for path in sorted(folder.glob("*.db")):
        run_id = path.name[: -len(".db")]
        if _RUN_ID.match(run_id) and path.stat().st_mtime < limit:
            removed += remove_run_event_file(instance, run_id)
    return removed


def event_log_database_url(instance: dg.DagsterInstance) -> str | None:
    """The SQLAlchemy URL of the database holding the instance's asset check results, or None.

    Read from the instance's configuration, never from Dagster's private modules: the embedded
    SQLite layout keeps them in `history/runs/index.db`, a consolidated SQLite storage in the
    `event_log.db` of its `base_dir`, dagster-postgres and dagster-mysql in the database of their
    URL (`postgres_url`, `mysql_url`). None for a storage this does not know.
    """
    storage = instance.event_log_storage
    kind = type(storage).__name__
    if kind == "SqliteEventLogStorage":
        folder = sqlite_event_dir(instance)
        return f"sqlite:///{folder / 'index.db'}" if folder else None
    if kind == "ConsolidatedSqliteEventLogStorage":
        config = storage.inst_data.config_dict if storage.inst_data else {}
        base_dir = config.get("base_dir")
        database = Path(str(base_dir)) / "event_log.db" if base_dir else None
        return f"sqlite:///{database}" if database and database.is_file() else None
    for attribute in ("postgres_url", "mysql_url"):
        url = getattr(storage, attribute, None)
        if isinstance(url, str) and url:
            # dagster-postgres installs psycopg2; SQLAlchemy 2.1 reads a bare postgresql:// as
            # psycopg 3 (as orchestration/serve.py's postgres_url says).
            for bare in ("postgresql://", "postgres://"):
                if url.startswith(bare):
                    return "postgresql+psycopg2://" + url.removeprefix(bare)
            return url
    return None


def delete_check_results_of_deleted_runs(instance: dg.DagsterInstance) -> int:
    """Delete the asset check results of runs the instance no longer has; return how many.

    The run ids are read from the results first and looked up in the run storage after: a run is
    created before any of its checks is recorded, so a run id read from the results and missing
    from the run storage afterwards is a deleted run, never one just starting. Rows without a run
    id (results reported outside a run) stay.

    On a database without the table or its run id column (a later Dagster), or one that cannot be
    read or written now, logs one warning naming the table and deletes nothing.
    """
    url = event_log_database_url(instance)
    if url is None:
        return 0
    logger = dg.get_dagster_logger()
    table = CHECK_EXECUTIONS_TABLE
    # A daemon or a run may be writing the SQLite index: wait for its lock as Dagster's own
    # connections do, rather than SQLite's default 5 s.
    connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            columns = (
                {c["name"] for c in inspector.get_columns(table)} if inspector.has_table(table) else set()
            )
            if CHECK_EXECUTIONS_RUN_COLUMN not in columns:
                logger.warning(
                    f"Retention: Dagster's event log has no table {table} with a "
                    f"{CHECK_EXECUTIONS_RUN_COLUMN} column (a newer Dagster?); the asset check "
                    "results of deleted runs were left in place."
                )
                return 0
            recorded = sorted(
                run_id
                for (run_id,) in conn.execute(sa.text(f"select distinct run_id from {table}"))
                if run_id
            )
        gone = _runs_missing(instance, recorded)
        deleted = 0
        statement = sa.text(f"delete from {table} where run_id in :run_ids").bindparams(
            sa.bindparam("run_ids", expanding=True)
        )
        with engine.begin() as conn:
            for start in range(0, len(gone), _IDS_PER_STATEMENT):
                result = conn.execute(statement, {"run_ids": gone[start : start + _IDS_PER_STATEMENT]})
                deleted += result.rowcount or 0
        return deleted
    except sa.exc.SQLAlchemyError as error:
        logger.warning(
            f"Retention: could not delete the asset check results of deleted runs from {table} "
            f"({type(error).__name__}: {str(error).splitlines()[0]}); they stay until the next pass."
        )
        return 0
    finally:
        engine.dispose()


def _runs_missing(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    """Those of `run_ids` the run storage does not have."""
    missing = []
    for start in range(0, len(run_ids), _IDS_PER_STATEMENT):
        batch = run_ids[start : start + _IDS_PER_STATEMENT]
        kept = set(instance.get_run_ids(filters=dg.RunsFilter(run_ids=batch)))
        missing += [run_id for run_id in batch if run_id not in kept]
    return missing


def purge_ticks_before(instance: dg.DagsterInstance, cutoff: datetime) -> int:
    """Delete the ticks of every schedule and sensor older than `cutoff`.

    The daemon does this by itself (dagster.yaml `retention`); this covers an instance whose daemon
    last ran long ago. Returns the number of schedules and sensors looked at.
    """
    states = instance.all_instigator_state()
    for state in states:
        instance.purge_ticks(state.instigator_origin_id, state.selector_id, before=cutoff.timestamp())
    return len(states)


def remove_dbt_run_folders(target_dir: Path, run_ids: list[str]) -> list[Path]:
    """Delete the dbt build folders of the given (deleted) runs under dbt's target/.

    Returns:
        The folders removed.
    """
    prefixes = {run_id[:7] for run_id in run_ids}
    if not prefixes or not target_dir.is_dir():
        return []
    removed = [
        p
        for p in sorted(target_dir.iterdir())
        if p.is_dir() and p.name.count("-") >= 2 and p.name.split("-")[-2] in prefixes
    ]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def prune_run_logs(
    log_dir: Path, cutoff: datetime, keep: int = KEEP_RUN_LOGS, patterns: tuple[str, ...] = RUN_LOG_PATTERNS
) -> list[Path]:
    """Delete the run logs in `log_dir` last written before `cutoff`, and all but the `keep` newest.

    Returns:
        The files removed, newest first.
    """
    if not log_dir.is_dir():
        return []
    logs = sorted(
        {p for pattern in patterns for p in log_dir.glob(pattern) if p.is_file()},
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    limit = cutoff.timestamp()
    removed = [p for i, p in enumerate(logs) if i >= keep or p.stat().st_mtime < limit]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@dataclass
class Retention:
    """What one pass of retention removed."""

    days: int
    cutoff: datetime
    runs: list[str] = field(default_factory=list)
    check_results: int = 0
    event_files: list[Path] = field(default_factory=list)
    dbt_folders: list[Path] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def removed_anything(self) -> bool:
        return bool(self.runs or self.check_results or self.event_files or self.dbt_folders or self.logs)

    def describe(self) -> str:
        return (
            f"Retention ({RETENTION_SETTING}={self.days}): before {self.cutoff:%Y-%m-%d %H:%M} UTC, "
            f"deleted {len(self.runs)} runs with their event and compute logs, "
            f"{self.check_results} asset check results of deleted runs, "
            f"{len(self.event_files)} run event files, {len(self.dbt_folders)} dbt build folders "
            f"and {len(self.logs)} run logs; schedule and sensor ticks purged."
        )


def apply_retention(
    instance: dg.DagsterInstance,
    now: datetime | None = None,
    *,
    days: int | None = None,
    log_dir: Path = LOG_DIR,
    dbt_target_dir: Path = DBT_TARGET_DIR,
) -> Retention:
    """Delete what is older than `days` before `now`: runs and everything kept for them, ticks, logs.

    A few queries when nothing is old enough, so the commands run it after every run.

    Args:
        now: the clock's time (default: the wall clock, UTC).
        days: the period (default: DAGSTER_RETENTION_DAYS).
    """
    days = retention_days() if days is None else days
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    event_files: list[Path] = []
    runs = delete_runs_before(instance, cutoff, event_files)
    # Then the files of runs deleted earlier by other means (the UI, `dagster run delete`).
    event_files += remove_orphan_event_files(instance, cutoff)
    # Dagster's delete leaves the runs' check results; these and those of runs deleted earlier.
    check_results = delete_check_results_of_deleted_runs(instance)
    purge_ticks_before(instance, cutoff)
    return Retention(
        days=days,
        cutoff=cutoff,
        runs=runs,
        check_results=check_results,
        event_files=event_files,
        dbt_folders=remove_dbt_run_folders(dbt_target_dir, runs),
        logs=prune_run_logs(log_dir, cutoff),
    )


def build_retention(
    days: int, log_dir: Path = LOG_DIR, dbt_target_dir: Path = DBT_TARGET_DIR
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The job that applies retention with `days` days, and its daily schedule (running by default)."""

    @dg.op(name="delete_old_runs")
    def delete_old_runs(context: dg.OpExecutionContext) -> None:
        removed = apply_retention(context.instance, days=days, log_dir=log_dir, dbt_target_dir=dbt_target_dir)
        context.log.info(removed.describe())

    @dg.job(
        name="dagster_retention",
        description=(
            f"Delete Dagster runs older than {days} days ({RETENTION_SETTING}), with their event logs "
            "and compute logs. Schedule and sensor ticks are purged by the daemon (dagster.yaml)."
        ),
    )
    def dagster_retention() -> None:
        delete_old_runs()

    schedule = dg.ScheduleDefinition(
        name="dagster_retention_daily",
        job=dagster_retention,
        cron_schedule=RETENTION_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at 04:30 UTC: delete runs older than {days} days.",
    )
    return dagster_retention, schedule
