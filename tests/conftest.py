"""Fixtures shared by every test folder."""

from __future__ import annotations

import functools
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests talk to the loopback sandbox: pacing at the APIs' published limits (a Slack Tier 3 method:
# 50 calls a minute) would stretch them to hours. The pacing tests turn it on with a time scale.
os.environ.setdefault("RATE_LIMITS", "off")

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
CONTRACTS_DIR = REPO_ROOT / "tests" / "contracts"
SLACK_EXPORT_2016 = REPO_ROOT / "tests" / "fixtures" / "slack_export_2016"


def invoke_dbt(args: list[str], tmp: Path, warehouse: Path, check: bool = True, **env: str):
    """`dbt <args>` in this process on the project's dbt project, its target/ and logs/ under `tmp`,
    with WAREHOUSE_PATH=`warehouse` (and any `env`) for the call only, and the sandbox brand's vars
    (connectors/sandbox/brand.yml) unless `args` has --vars. With `check`, assert that it
    succeeded, naming each node that did not. Returns dbt's result."""
    from dbt.cli import main as dbt_main

    from orchestration.brand import SANDBOX_BRAND_FILE, load_brand

    # The models read the brand from vars, as orchestration passes them: the sandbox brand's unless
    # the test passes its own.
    if args[:1] != ["parse"] and "--vars" not in args:
        args = [*args, "--vars", json.dumps(load_brand(SANDBOX_BRAND_FILE).dbt_vars())]
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


@functools.cache
def load_contract(api: str) -> dict:
    path = CONTRACTS_DIR / f"{api}.json"
    if not path.is_file():
        pytest.fail(
            f"{path} not found: derive it with `python scripts/derive_contracts.py <published contracts>`"
        )
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def contract() -> Callable[[str], dict]:
    """`contract(api)`: the facts of `api`'s published contract (ga4, gsc, meta, slack, discourse,
    discord) as scripts/derive_contracts.py derived them into tests/contracts/<api>.json: the
    source's own layout, cut to what the tests check, with a `source` note. Read-only: shared."""
    return load_contract


@pytest.fixture(scope="session")
def dbt_invoke() -> Callable[..., object]:
    """`dbt_invoke(args, tmp, warehouse, check=True, **env)`: see invoke_dbt."""
    return invoke_dbt


@pytest.fixture(scope="session")
def slack_export_2016(tmp_path_factory) -> Path:
    """The invented workspace export of tests/fixtures/slack_export_2016 (Slack's 2016 layout: no
    threads, no e-mails, per-day files named by the workspace's Pacific day) zipped as Slack sends
    it, folder entries included. Its counts are written out in tests/connectors/test_slack_export.py."""
    path = tmp_path_factory.mktemp("slack_export") / "Lantern Walk Slack export Mar 18 2016.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(SLACK_EXPORT_2016.rglob("*")):
            zf.write(file, file.relative_to(SLACK_EXPORT_2016).as_posix())
    return path
