"""The Dagster code location: `dagster dev` loads `defs` from here through workspace.yaml.

Policy is applied once, here: dbt and the snapshot are in the warehouse's pool (each source's loads
in their own, holding the file only while they write), every API asset shares the
daily partitions, secrets reach resources only through `EnvVar`, and each source loads from its
real API, the sandbox or nowhere by one rule (orchestration/sources.py, settings SANDBOX and
SANDBOX_SOURCES).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt.assets import DBT_PROJECT, dbt_models
from orchestration.discord import assets as discord
from orchestration.discourse import assets as discourse
from orchestration.ga4 import assets as ga4
from orchestration.gsc import assets as gsc
from orchestration.jobs import build_nightly_schedule, build_refresh_job, parallel_steps
from orchestration.meta import assets as meta
from orchestration.partitions import daily_partitions
from orchestration.quality.checks import build_freshness_checks
from orchestration.recovery import recover_on_load
from orchestration.redaction import install as install_redaction
from orchestration.report.assets import build_report_asset
from orchestration.retention import build_retention, retention_days
from orchestration.serving.assets import build_serving_asset, upstream_check_keys
from orchestration.settings import Settings
from orchestration.slack import assets as slack
from orchestration.sources import REAL, SourcePlan, log_plan, source_plan
from orchestration.warehouse import DuckDBWarehouse

# Single-run backfills are what make a year's backfill one run; Dagster still marks the parameter
# beta, which says nothing about our use of it. Filtered once, for every source's assets.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

# A new source adds its folder's `build_defs` (orchestration/<source>/assets.py) here, itself to
# orchestration/sources.py and its tables to orchestration/registry.py.
SOURCE_DEFS: dict[str, Callable[[dg.PartitionsDefinition, SourcePlan], dg.Definitions]] = {
    "ga4": ga4.build_defs,
    "gsc": gsc.build_defs,
    "meta": meta.build_defs,
    "discourse": discourse.build_defs,
    "discord": discord.build_defs,
    "slack": slack.build_defs,
}


def source_defs(
    partitions: dg.PartitionsDefinition, plans: Mapping[str, SourcePlan] | None = None
) -> list[dg.Definitions]:
    """Every source's definitions by its plan (see `source_plan` and `plan_defs`)."""
    plans = source_plan() if plans is None else plans
    return [build(partitions, plans[name]) for name, build in SOURCE_DEFS.items()]


def source_assets(
    partitions: dg.PartitionsDefinition, plans: Mapping[str, SourcePlan] | None = None
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The API assets of every loaded source, and external specs for the rest (see `source_plan`)."""
    return [item for defs in source_defs(partitions, plans) for item in defs.assets or []]


def source_resources(plans: Mapping[str, SourcePlan] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The API client resource of every loaded source; a sandbox-served one ignores real credentials."""
    partitions = daily_partitions(Settings.from_env())
    return {name: r for defs in source_defs(partitions, plans) for name, r in (defs.resources or {}).items()}


def build_definitions(settings: Settings, partitioned: bool = True) -> dg.Definitions:
    """Everything Dagster loads. `partitioned=False`: the source assets without partitions, for a
    history load (orchestration/partitions.py; `make backfill` over a long range)."""
    install_redaction()  # before anything can log or raise with a configured secret in it
    partitions = daily_partitions(settings) if partitioned else None
    mart_keys = [key for key in dbt_models.keys if dbt_models.group_names_by_key.get(key) == "marts"]
    plans = source_plan()
    log_plan(plans)
    sources = source_assets(partitions, plans)
    built = [item for item in sources if isinstance(item, dg.AssetsDefinition)]
    freshness = build_freshness_checks(built)
    serving = build_serving_asset(
        mart_keys, settings.serving_path, upstream_check_keys(mart_keys, [*built, dbt_models, *freshness])
    )
    steps = parallel_steps(any(plan.mode == REAL for plan in plans.values()))
    refresh_job = build_refresh_job(steps)
    retention_job, retention_schedule = build_retention(retention_days())
    return dg.Definitions(
        assets=[
            *sources,
            dbt_models,
            serving,
            build_report_asset(settings.serving_path, settings.report_path),
        ],
        asset_checks=freshness,
        jobs=[refresh_job, retention_job],
        schedules=[
            build_nightly_schedule(
                refresh_job,
                settings.nightly_cron,
                settings.nightly_timezone,
                running=settings.nightly_schedule_running,
                steps=steps,
            ),
            retention_schedule,
        ],
        resources={
            "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
            **source_resources(plans),
            "dbt": DbtCliResource(project_dir=DBT_PROJECT),
        },
    )


defs = build_definitions(Settings.from_env())
# Every process that loads the definitions (dagster dev, each run it launches, make demo) first
# fails the runs a crash left behind and frees their pool slots (orchestration/recovery.py).
recover_on_load(Settings.from_env().serving_path)
