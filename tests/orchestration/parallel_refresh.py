"""Runs whose steps each run in their own process: the refresh job as a reconstructable target
(`dg.reconstructable(refresh_job)`: every step process imports this module and builds the
definitions from the environment the test set (WAREHOUSE_PATH, SANDBOX_URL, SANDBOX_SOURCES...), as
a daemon-launched run's step processes load orchestration/definitions.py), and when each step ran."""

from __future__ import annotations

import dagster as dg


def refresh_job():
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    return build_definitions(Settings.from_env()).resolve_job_def("refresh_warehouse")


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each finished step of the run (succeeded or failed): its start and end, epoch seconds."""
    starts, intervals = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            intervals[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return intervals
