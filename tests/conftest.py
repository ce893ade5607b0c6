"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests talk to the loopback sandbox: pacing at the APIs' published limits (a Slack Tier 3 method:
# 50 calls a minute) would stretch them to hours. The pacing tests turn it on with a time scale.
os.environ.setdefault("RATE_LIMITS", "off")

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def invoke_dbt(args: list[str], tmp: Path, warehouse: Path, check: bool = True, **env: str):
    """`dbt <args>` in this process on the project's dbt project, its target/ and logs/ under `tmp`,
    with WAREHOUSE_PATH=`warehouse` (and any `env`) for the call only. With `check`, assert that it
    succeeded, naming each node that did not. Returns dbt's result."""
    from dbt.cli import main as dbt_main

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAREHOUSE_PATH", str(warehouse))
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        for name, value in env.items():
            mp.setenv(name, value)
        result = dbt_main.dbtRunner().invoke(
            [
                *args,
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(tmp / "target"),
                "--log-path",
                str(tmp / "logs"),
            ]
        )
    if check:
        failed = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in (result.result or [])
            if str(r.status) not in ("success", "pass")
        ]
        assert result.success, f"dbt {args[0]} failed: {result.exception or failed}"
    return result


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    """The published API contracts, kept beside the repository in ../shared/contracts."""
    path = (REPO_ROOT / ".." / "shared" / "contracts").resolve()
    if not path.is_dir():
        pytest.fail(f"API contracts not found at {path} (expected ../shared/contracts beside the repository)")
    return path


@pytest.fixture(scope="session")
def dbt_invoke() -> Callable[..., object]:
    """`dbt_invoke(args, tmp, warehouse, check=True, **env)`: see invoke_dbt."""
    return invoke_dbt
