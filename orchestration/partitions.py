"""The daily partitions every API asset shares, and the days a run covers.

Two ways a run gets its days (`days_in`):

- Partitioned (the nightly, a backfill of up to BACKFILL_DAILY_PARTITIONS_MAX_DAYS days, a run
  launched from the UI): the run's partition or partition range. Dagster records one
  materialization per asset and day, so the UI's partition bar shows each day.
- A history load (`make backfill` over a longer range, orchestration/refresh.py, and `make demo`
  over a longer history, orchestration/demo.py): the same assets
  built without partitions, the range in the run's tags `HISTORY_TAGS`. Dagster records one
  materialization per asset for the whole run; which days the warehouse holds is in its ledger
  (orchestration/ledger.py), shown in each asset's metadata. One event per day cost a 4,206-day
  backfill over 90% of its time (bench/README.md, "Bookkeeping benchmark"), and the retention job
  deletes those events after DAGSTER_RETENTION_DAYS anyway: hence the threshold defaults to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from orchestration.settings import Settings, int_setting


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # The last partition is yesterday in the nightly time zone: today is not complete yet.
    return dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), timezone=settings.nightly_timezone
    )


# Set on nightly runs: each source then re-pulls only the trailing days it revises, although the
# run's range covers the longest window of all sources.
NIGHTLY_TAG = "warehouse/nightly"

# A history load's first and last day (inclusive), on a run of the unpartitioned assets.
FIRST_DAY_TAG = "warehouse/first_day"
LAST_DAY_TAG = "warehouse/last_day"

BACKFILL_MAX_DAYS_ENV = "BACKFILL_DAILY_PARTITIONS_MAX_DAYS"


def backfill_max_days(environ: Mapping[str, str] | None = None) -> int:
    """BACKFILL_DAILY_PARTITIONS_MAX_DAYS: the longest backfill run over daily partitions.

    Unset, it is the run history's retention (DAGSTER_RETENTION_DAYS, 30 by default): per-day
    partition events of a longer backfill would be deleted by retention before the range is out
    of it, so they would only cost bookkeeping (~40-60 ms a day on SQLite) and then vanish.
    """
    from orchestration.retention import retention_days

    env = os.environ if environ is None else environ
    return int_setting(
        BACKFILL_MAX_DAYS_ENV,
        retention_days(env),
        env,
        low=0,
        meaning="0: every backfill runs as a history load",
    )


def history_tags(first: date, last: date) -> dict[str, str]:
    """The tags of a history load over `first`..`last`."""
    return {FIRST_DAY_TAG: first.isoformat(), LAST_DAY_TAG: last.isoformat()}


def days_in(context: dg.AssetExecutionContext, trailing_days: int | None = None) -> list[date]:
    """The days a run covers: one partition, a range when a backfill runs as a single run, or the
    history load's range from its tags when the assets are built without partitions.

    Args:
        trailing_days: how many days before the last one this source revises; on a nightly run
            only those days and the last are loaded. Ignored on manual runs and backfills.

    Raises:
        ValueError: an unpartitioned run without the history tags, naming them.
    """
    if context.has_partition_key or context.has_partition_key_range:
        window = context.partition_time_window
        first = window.start.date()
        count = (window.end.date() - first).days
    else:
        tags = context.run.tags
        if FIRST_DAY_TAG not in tags or LAST_DAY_TAG not in tags:
            raise ValueError(
                f"This run of {context.asset_key.to_user_string()} has no partition and no "
                f"{FIRST_DAY_TAG}/{LAST_DAY_TAG} tags: run a range with `make backfill FROM= TO=`, "
                "or pick partitions in the UI."
            )
        first = date.fromisoformat(tags[FIRST_DAY_TAG])
        count = (date.fromisoformat(tags[LAST_DAY_TAG]) - first).days + 1
    days = [first + timedelta(days=i) for i in range(count)]
    if trailing_days is not None and context.run.tags.get(NIGHTLY_TAG) == "true":
        days = days[-(trailing_days + 1) :]
    return days
