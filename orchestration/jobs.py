"""The nightly refresh: the trailing days each source revises, then dbt, then the snapshot.

How its steps run. Against real APIs a load spends nearly all its time waiting on the API's rate
limit, so the sources' load steps run at the same time, each in its own process (Dagster's
multiprocess executor, at most REFRESH_PARALLEL_STEPS at once): each holds the warehouse only
while it writes a batch of days (orchestration/fetching.py), steps of one source take turns in
the source's pool (`api_pool`), and dbt and the snapshot, in the `duckdb_warehouse` pool, run once
every load is done. Against the loopback sandbox (`make demo`, the tests) nothing is waited for,
and a process per step would cost more CPU (each reloads the definitions) than it overlaps: the
steps run one by one in the run's own process. `execution_config` picks the mode from the
sources' plan, and the nightly schedule sends it with every run.

Across runs: every run of this job carries WAREHOUSE_WRITER_TAG, which both instances' dagster.yaml
limit to one run at a time, so a run's load never waits on another run's dbt build for longer than
its bounded lock wait (WAREHOUSE_LOCK_WAIT_SECONDS); the daemon queues the second run instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg

from orchestration.partitions import NIGHTLY_TAG
from orchestration.settings import int_setting

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


# Both dagster.yaml files limit runs with this tag to one at a time (concurrency.runs).
WAREHOUSE_WRITER_TAG = "darksocial/warehouse_writer"

REFRESH_PARALLEL_STEPS_ENV = "REFRESH_PARALLEL_STEPS"
# Six sources, one load step of each at a time: every source waits on its API at once. A step's
# process holds the definitions (~250 MB), so this also bounds the run's memory.
DEFAULT_PARALLEL_STEPS = 6
MAX_PARALLEL_STEPS = 32


def parallel_steps(real_sources: bool, environ: Mapping[str, str] | None = None) -> int:
    """REFRESH_PARALLEL_STEPS: how many steps of a refresh run at once, each in its own process;
    1 runs them one by one in the run's process. Unset: DEFAULT_PARALLEL_STEPS when any source
    loads from its real API (`real_sources`), else 1 (the sandbox answers at once)."""
    return int_setting(
        REFRESH_PARALLEL_STEPS_ENV,
        DEFAULT_PARALLEL_STEPS if real_sources else 1,
        environ,
        low=1,
        high=MAX_PARALLEL_STEPS,
        meaning="1: one step at a time in the run's process",
    )


# What a step's process imports before it runs, ~6 s of CPU (dagster-dbt and dbt ~2.3 s, dagster
# ~0.6 s, the dbt manifest's assets ~1.4 s): with the forkserver start method these are imported once
# per run, in the server each step's process is forked from. Not orchestration.definitions itself,
# which builds the definitions from the environment and recovers crashed runs when imported.
PRELOADED_MODULES = [
    "dagster",
    "dagster_dbt",
    "duckdb",
    "pyarrow",
    "orchestration.dbt.assets",
    "orchestration.sources",
]


def execution_config(steps: int) -> dict[str, Any]:
    """The run config's `execution` section for `dg.multi_or_in_process_executor`: in process for
    one step at a time, else a process per step, at most `steps` at once, forked from a server
    that imported PRELOADED_MODULES."""
    if steps <= 1:
        return {"execution": {"config": {"in_process": {}}}}
    start = {"forkserver": {"preload_modules": PRELOADED_MODULES}}
    return {"execution": {"config": {"multiprocess": {"max_concurrent": steps, "start_method": start}}}}


def build_refresh_job(steps: int = 1) -> dg.UnresolvedAssetJobDefinition:
    """The job; `steps` (`parallel_steps`) is its default execution, which a launch may override."""
    return dg.define_asset_job(
        name="refresh_warehouse",
        description=(
            "Load a range of days from every source, build and test the dbt models, and publish the "
            "serving snapshot. The nightly schedule runs it for the trailing days; `make demo` for "
            "the whole history."
        ),
        # Partitioning is inferred from the daily API assets; dbt and serving are unpartitioned.
        selection=dg.AssetSelection.all(),
        # In process or a process per step, by run config (module docstring, `execution_config`).
        # `execute_in_process` (make demo, the tests) always runs in process; make refresh and make
        # backfill use `execute_job` with this config when it is parallel (orchestration/commands.py).
        executor_def=dg.multi_or_in_process_executor,
        config=execution_config(steps),
        tags={WAREHOUSE_WRITER_TAG: "true"},
    )


def build_nightly_schedule(
    job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, running: bool = True, steps: int = 1
) -> dg.ScheduleDefinition:
    """The nightly; `steps` (`parallel_steps`): its runs' steps at once (1: in the run's process)."""

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
            run_config=execution_config(steps),
        )

    return nightly_refresh
