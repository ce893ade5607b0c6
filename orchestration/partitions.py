"""The daily partitions every API asset shares."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from orchestration.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # The last partition is yesterday in the nightly time zone: today is not complete yet.
    return dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), timezone=settings.nightly_timezone
    )


# Set on nightly runs: each source then re-pulls only the trailing days it revises, although the
# run's range covers the longest window of all sources.
NIGHTLY_TAG = "warehouse/nightly"


def days_in(context: dg.AssetExecutionContext, trailing_days: int | None = None) -> list[date]:
    """The days a run covers: one partition, or a range when a backfill runs as a single run.

    Args:
        trailing_days: how many days before the last one this source revises; on a nightly run
            only those days and the last are loaded. Ignored on manual runs and backfills.
    """
    window = context.partition_time_window
    first = window.start.date()
    count = (window.end.date() - first).days
    days = [first + timedelta(days=i) for i in range(count)]
    if trailing_days is not None and context.run.tags.get(NIGHTLY_TAG) == "true":
        days = days[-(trailing_days + 1) :]
    return days
