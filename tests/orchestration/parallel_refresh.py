"""The refresh job as a reconstructable target (`dg.reconstructable(refresh_job)`), for runs whose
steps each run in their own process: every step process imports this module and builds the
definitions from the environment the test set (WAREHOUSE_PATH, SANDBOX_URL, SANDBOX_SOURCES...),
as a daemon-launched run's step processes load orchestration/definitions.py."""

from __future__ import annotations


def refresh_job():
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    return build_definitions(Settings.from_env()).resolve_job_def("refresh_warehouse")
