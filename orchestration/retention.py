"""Dagster's own history kept for DAGSTER_RETENTION_DAYS (default 30): a daily job deletes older runs.

Dagster's daemon purges schedule and sensor ticks by itself (the `retention` section of
dagster_home/dagster.yaml and dagster_home/postgres/dagster.yaml), but has no setting for run
history: without this job the storage grows by every run's events (~9 MB a night). The job
`dagster_retention` deletes each finished run created before the period, with its event log and its
compute logs, through the public `DagsterInstance` API, so it works the same on SQLite and
PostgreSQL. A run still queued or in progress is never deleted, however old.
"""

# No `from __future__ import annotations`: Dagster checks an op's context annotation as a type.
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import dagster as dg

from orchestration.settings import SettingsError

RETENTION_SETTING = "DAGSTER_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
# After the nightly (02:00 by default), so a night's run is never what it waits behind.
RETENTION_CRON = "30 4 * * *"
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_BATCH = 100


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


def delete_runs_before(instance: dg.DagsterInstance, cutoff: datetime) -> list[str]:
    """Delete every finished run created before `cutoff`, its events and its compute logs.

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
            deleted.append(run_id)


def build_retention(days: int) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The job that deletes runs older than `days` days, and its daily schedule (running by default)."""

    @dg.op(name="delete_old_runs")
    def delete_old_runs(context: dg.OpExecutionContext) -> None:
        cutoff = datetime.now(timezone.utc) - timedelta(days=days)
        deleted = delete_runs_before(context.instance, cutoff)
        context.log.info(
            f"Deleted {len(deleted)} finished runs created before {cutoff:%Y-%m-%d %H:%M} UTC "
            f"({RETENTION_SETTING}={days}), with their event and compute logs."
        )

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
