"""Every dbt test is a Dagster asset check, blocking exactly when its severity is error.

Read from the prepared manifest (`make prepare`), so these run in a second and catch a test that
would silently become a mere observation in Dagster (a singular test reading several models without
`meta.dagster.ref`), or a severity the README does not explain.
"""

from __future__ import annotations

import json

import pytest

from orchestration.dbt.assets import DBT_PROJECT, dbt_models
from orchestration.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def dbt_tests() -> dict[str, dict]:
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "test"}


def test_every_dbt_test_is_an_asset_check(dbt_tests):
    checks = {key.name for key in dbt_models.check_keys}
    assert len(dbt_tests) > 300
    assert sorted(set(dbt_tests) - checks) == []


def test_a_dbt_check_blocks_exactly_when_its_test_has_severity_error(dbt_tests):
    blocking = {spec.name: spec.blocking for spec in dbt_models.check_specs}
    for name, node in dbt_tests.items():
        assert blocking[name] == (node["config"]["severity"].lower() == "error"), name


def test_the_readme_explains_every_test_that_only_warns(dbt_tests):
    section = (PROJECT_ROOT / "README.md").read_text().split("## Data-quality gates")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.strip().startswith("| `")]
    warn = [node for node in dbt_tests.values() if node["config"]["severity"].lower() == "warn"]
    assert warn
    for node in warn:
        generic = node.get("test_metadata")
        if generic:  # a row naming `model.column` (`source.table.column`) and the test
            attached = node["attached_node"]
            model = attached.split(".")[-1] if attached else ".".join(node["sources"][0])
            label, kind = f"`{model}.{node['column_name']}`", generic["name"]
        else:
            label, kind = f"`{node['name']}`", ""
        assert [row for row in rows if label in row and kind in row], f"{label} {kind} is not in the README"
    assert len(rows) == len(warn), "the README lists a warn-level test that is no longer warn"
