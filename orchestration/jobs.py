"""The nightly refresh: the trailing days each source revises, then dbt, then the snapshot."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from orchestration.partitions import NIGHTLY_TAG

# The longest trailing window any source revises (Meta's 7-day attribution window); each asset
# trims the nightly range to its own window (GA4 3 days, Search Console 4, Meta 7).
NIGHTLY_TRAILING_DAYS = 7

# A nightly still "started" after this long lost its process with its host (a reboot, which the
# default run launcher cannot see): run monitoring then fails it and frees its pool slot.
MAX_RUNTIME_TAG = "dagster/max_runtime"
NIGHTLY_MAX_RUNTIME_SECONDS = 6 * 3600

# Dagster's run tags for a partition range run by a single-run backfill.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def build_refresh_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name="refresh_warehouse",
        description=(
            "Load a range of days from every source, build and test the dbt models, and publish the "
            "serving snapshot. The nightly schedule runs it for the trailing days; `make demo` for "
            "the whole history."
        ),
        # Partitioning is inferred from the daily API assets; dbt and serving are unpartitioned.
        selection=dg.AssetSelection.all(),
        # Every step of this job writes the warehouse, and the pool runs one such step at a time
        # anyway: steps run in the run's own process, not one new process each (each reloading the
        # definitions, ~10 s of CPU per step on a daemon-launched run).
        executor_def=dg.in_process_executor,
    )


def build_nightly_schedule(
    job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, running: bool = True
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="nightly_refresh",
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description=(
            f"Every night ({cron}, {timezone}): re-pull yesterday and the trailing days each source "
            "revises (GA4 3, Search Console 4, Meta, Slack and Discourse 7), rebuild the marts, run every "
            "check, publish the snapshot."
        ),
    )
    def nightly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        first = yesterday - timedelta(days=NIGHTLY_TRAILING_DAYS)
        return dg.RunRequest(
            run_key=f"nightly-{yesterday.isoformat()}",
            tags={
                **range_tags(first.isoformat(), yesterday.isoformat()),
                NIGHTLY_TAG: "true",
                MAX_RUNTIME_TAG: str(NIGHTLY_MAX_RUNTIME_SECONDS),
            },
        )

    return nightly_refresh
