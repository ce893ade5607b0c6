"""Fixtures for orchestration tests: a temporary warehouse, a real Dagster instance, and the spring
refresh that the report and the campaign halo tests both read."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

# The sandbox singleton reads its size once; tests use the small brand.
os.environ.setdefault("SANDBOX_SCALE", "small")

from orchestration.settings import PROJECT_ROOT, Settings  # noqa: E402


def make_settings(tmp_path: Path, days: int) -> Settings:
    yesterday = date.today() - timedelta(days=1)
    return Settings(
        warehouse_path=tmp_path / "warehouse.duckdb",
        serving_path=tmp_path / "serving" / "marts.duckdb",
        history_start=yesterday - timedelta(days=days - 1),
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=True,
    )


# The call-count tests' sandbox day: pinned, so the data (and so the pages) are fixed.
PINNED_TODAY = date(2026, 6, 20)


@pytest.fixture
def pinned_sandbox(monkeypatch):
    """A sandbox of the test's own (its token grants and calls are the test's alone), its today
    PINNED_TODAY; the resources' sandbox mode finds it through SANDBOX_URL."""
    from connectors.sandbox.server import SandboxServer

    server = SandboxServer(seed=42, scale="small", today=PINNED_TODAY).start()
    monkeypatch.setenv("SANDBOX_URL", server.base_url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings_for():
    """`settings_for(tmp_path, days)`: settings for a warehouse holding the last `days` days."""
    return make_settings


def project_instance():
    """A temporary instance configured by the project's own dagster.yaml (pools and all): a context
    manager, for fixtures of any scope."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    return dg.instance_for_test(overrides=config)


@pytest.fixture
def dagster_instance(tmp_path_factory) -> dg.DagsterInstance:
    """An instance configured by the project's own dagster.yaml (pools and all)."""
    with project_instance() as instance:
        yield instance


@pytest.fixture(scope="session")
def spring_refresh(tmp_path_factory):
    """`(settings, result, defs)` of the spring refresh (tests/orchestration/spring_refresh.py),
    built once per session on the worker that asks for it. Read by test_report_browser.py and
    test_campaign_halo_truth.py, which run on the same xdist worker (tests/conftest.py,
    SAME_WORKER). Shared, so READ-ONLY: open its files with read_only=True; a test that writes
    copies them first."""
    from tests.orchestration.spring_refresh import run_spring_refresh

    return run_spring_refresh(tmp_path_factory.mktemp("spring_refresh"))
