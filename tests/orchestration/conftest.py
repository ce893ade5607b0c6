"""Fixtures for orchestration tests: a temporary warehouse and a real Dagster instance."""

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


@pytest.fixture
def dagster_instance(tmp_path_factory) -> dg.DagsterInstance:
    """An instance configured by the project's own dagster.yaml (pools and all)."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        yield instance
