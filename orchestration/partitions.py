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


def days_in(context: dg.AssetExecutionContext) -> list[date]:
    """The days a run covers: one partition, or a range when a backfill runs as a single run."""
    window = context.partition_time_window
    first = window.start.date()
    count = (window.end.date() - first).days
    return [first + timedelta(days=i) for i in range(count)]
