"""Every dbt unit test of the project passes, here, since the scheduled builds skip them.

Unit tests check a model's SQL against fixed input rows, whatever the warehouse holds; the Dagster
dbt step (nightly, `make demo`) excludes them to save ~20 s a run (orchestration/dbt/assets.py,
BUILD_ARGS). This module is where they run: one `dbt build --empty` over a warehouse whose raw
tables exist but hold nothing (dbt reads the input relations' columns for the fixtures), data tests
excluded, so the build is models (empty), seeds and every unit test.
"""

from __future__ import annotations

import duckdb
import pytest

from orchestration.dbt.assets import BUILD_ARGS
from orchestration.sources import create_missing_raw_tables


@pytest.fixture(scope="module")
def unit_build(tmp_path_factory: pytest.TempPathFactory, dbt_invoke, dbt_manifest):
    tmp = tmp_path_factory.mktemp("dbt_unit")
    path = tmp / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        created = create_missing_raw_tables(conn)
    assert created, "no raw table was created"
    # Not checked here: the tests below say which unit tests failed, then whether the build did.
    result = dbt_invoke(
        ["build", "--empty", "--exclude-resource-type", "test"],
        tmp,
        path,
        check=False,
        MEMBER_HASH_KEY="unit-tests-key-0123456789abcdef0123456789abcdef",
    )
    # the unit tests the project declares, as the session's parse of it found them
    return result, set(dbt_manifest.unit_tests)


def test_every_unit_test_of_the_project_runs_and_passes(unit_build) -> None:
    result, declared = unit_build
    ran = {r.node.unique_id: str(r.status) for r in (result.result or []) if r.node.unique_id in declared}
    failed = {uid: status for uid, status in ran.items() if status != "pass"}
    assert not failed, f"dbt unit tests failed: {failed}"
    assert set(ran) == declared, f"declared but not run: {sorted(declared - set(ran))}"
    # The project has unit tests on classification, incrementality, halo windows and the community
    # marts; a parse that dropped most of them would pass the line above with an empty set.
    assert len(declared) >= 30
    assert result.success, f"dbt build failed: {result.exception}"


def test_the_scheduled_build_skips_unit_tests_and_nothing_else() -> None:
    assert BUILD_ARGS[0] == "build"
    assert BUILD_ARGS[1:] == ["--exclude-resource-type", "unit_test"]
