"""The dbt project as Dagster assets; dbt tests surface as asset checks.

The manifest is prepared once, at install time (`make prepare` runs `dbt parse`), and read here;
definitions never parse the project on import. Under `dagster dev` a stale manifest is refreshed.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.brand import BRAND_VARS_ENV, current_brand
from orchestration.dbt.member_hash import MEMBER_HASH_KEY_ENV, member_hash_key
from orchestration.jobs import RANGE_END_TAG
from orchestration.partitions import NIGHTLY_TAG
from orchestration.settings import DBT_PROJECT_DIR, SettingsError
from orchestration.sources import check_no_sandbox_rows, create_missing_raw_tables, source_plan
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse

# dbt is installed beside this interpreter; put it on PATH so an un-activated venv works too
# (`dagster dev` prepares the manifest with a plain `dbt`).
_BIN = Path(sys.executable).parent
if shutil.which("dbt") is None and (_BIN / "dbt").exists():
    os.environ["PATH"] = f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}"

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
DBT_PROJECT.prepare_if_dev()

# dbt's unit tests check the SQL of models against fixed inputs: they do not depend on the data, so
# the scheduled builds skip them (~20 s a night) and `make test` runs them all
# (tests/dbt/test_unit_tests.py).
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

# On a nightly run the data tests of the large per-day relations read only the rows the run loaded
# or rebuilt (dbt_project/macros/test_scope.sql): dbt gets the run's start in this variable. The
# night whose last day is a Sunday, and every other build, tests every row.
DATA_TESTS_SINCE_ENV = "DBT_DATA_TESTS_SINCE"
FULL_TESTS_WEEKDAY = 6  # Sunday (date.weekday())


# The folder under models/ is the layer, and the layer is the Dagster group.
LAYER_GROUPS = {"staging", "intermediate", "marts"}


class LayerTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        fqn = dbt_resource_props.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 else None
        return layer if layer in LAYER_GROUPS else "marts"


def _require_manifest() -> None:
    if not DBT_PROJECT.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {DBT_PROJECT.manifest_path}. It is prepared at install time: "
            "run `make prepare` (or `cd dbt_project && dbt parse --profiles-dir .`) and reload."
        )


_require_manifest()


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    # Tests on dbt sources (the raw tables) are asset checks too, like every other dbt test.
    dagster_dbt_translator=LayerTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse):
    # profiles.yml reads the warehouse path from the environment of the dbt process.
    os.environ["WAREHOUSE_PATH"] = warehouse.path
    _prepare_raw_tables(context, warehouse)
    brand = current_brand()
    context.log.info(f"brand settings from {brand.path}")
    for line in brand.warnings():
        context.log.warning(line)
    # The members' pseudonym key goes to the dbt process's environment only (never to SQL or a
    # table); with real community credentials and no key this stops the build with the fix. The
    # brand file goes there too (macros/brand_var.sql), not on the command line, which Dagster's
    # event log and dbt's logs record: staff ids and e-mail domains must not be in them.
    # dbt.cli copies os.environ when called, so these are set just for that moment and never
    # linger in this process (the demo key must not pass for a real key later).
    since = tests_since(context)
    context.log.info(
        f"data tests of the large per-day relations: rows loaded or rebuilt since {since} (nightly)"
        if since
        else "data tests: every row"
    )
    call_env = {
        MEMBER_HASH_KEY_ENV: member_hash_key(),
        BRAND_VARS_ENV: json.dumps(brand.dbt_vars()),
        DATA_TESTS_SINCE_ENV: since,
    }
    with _environment(call_env):
        invocation = dbt.cli(BUILD_ARGS, context=context)
    try:
        yield from invocation.stream()
    finally:
        target_dir = invocation.target_path.parent
        keep_partial_parse(invocation.target_path, target_dir)
        removed = prune_run_targets(target_dir)
        if removed:
            context.log.info(f"removed {len(removed)} old dbt run folders from {target_dir}")


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """`values` in os.environ inside the block (None: unset); each variable as it was after it."""
    previous = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def tests_since(context: dg.AssetExecutionContext) -> str | None:
    """The start of this run (UTC, `YYYY-MM-DD HH:MM:SS`) when it is a nightly run whose data tests
    are scoped to the rows it wrote; None when every row is tested (not a nightly run, or the night
    whose last day is FULL_TESTS_WEEKDAY)."""
    tags = context.run.tags
    if tags.get(NIGHTLY_TAG) != "true":
        return None
    last_day = tags.get(RANGE_END_TAG)
    if last_day and date.fromisoformat(last_day).weekday() == FULL_TESTS_WEEKDAY:
        return None
    record = context.instance.get_run_record_by_id(context.run_id)
    started = (record.start_time if record and record.start_time else None) or (
        record.create_timestamp.timestamp() if record else datetime.now(timezone.utc).timestamp()
    )
    return datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def keep_partial_parse(run_dir: Path, target_dir: Path) -> bool:
    """Make the parse state of the build just run the one the next build starts from.

    dagster-dbt seeds each run's folder with target/partial_parse.msgpack, written by `make
    prepare`. dbt discards it and parses the whole project again (~8 s of CPU) when the rendered
    profile differs, e.g. WAREHOUSE_PATH set in .env, which `make prepare` does not read. Copied
    back, only the first such build re-parses. Replaced atomically (Dagster reads manifest.json,
    not this file; a build reading it while it is replaced sees the old or the new file whole).

    Returns:
        Whether the file was copied.
    """
    fresh, kept = run_dir / "partial_parse.msgpack", target_dir / "partial_parse.msgpack"
    if not fresh.exists() or (kept.exists() and kept.read_bytes() == fresh.read_bytes()):
        return False
    staging = kept.with_name(f".{kept.name}.{os.getpid()}")
    shutil.copyfile(fresh, staging)
    os.replace(staging, kept)
    return True


# dagster-dbt gives every dbt invocation its own target folder (compiled SQL, run_results.json,
# manifest, logs: ~19 MB for this project). Kept, a nightly schedule would add ~7 GB a year.
KEEP_RUN_TARGETS = 10


def prune_run_targets(target_dir: Path, keep: int = KEEP_RUN_TARGETS) -> list[Path]:
    """Delete all but the `keep` newest run folders (`dbt_models-<run>-<id>`) under dbt's target/.

    The prepared manifest and partial-parse file beside them are not touched.

    Returns:
        The folders removed, newest first.
    """
    runs = sorted(
        (p for p in target_dir.glob(f"{dbt_models.op.name}-*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return runs[keep:]


def _prepare_raw_tables(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> None:
    # A source that is not loaded (orchestration/sources.py) has no raw tables; its staging views
    # would fail on them and stop the whole build, so they are created empty first. And a warehouse
    # that loads real data must not still hold an earlier demo's fictional rows.
    try:
        plans = source_plan()
    except SettingsError:  # the definitions loaded, so only a changed environment gets here
        plans = {}
    with warehouse.connect() as conn:
        created = create_missing_raw_tables(conn)
        check_no_sandbox_rows(conn, plans)
    if not created:
        return
    for source in sorted({name for name, _ in created}):
        tables = ", ".join(table for name, table in created if name == source)
        why = f" ({plans[source].reason})" if source in plans and not plans[source].loaded else ""
        context.log.info(f"created empty: {tables}; their dbt models build empty{why}")
