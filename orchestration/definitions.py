"""The Dagster code location: `dagster dev` loads `defs` from here through workspace.yaml.

Policy is applied once, here: every warehouse writer is in one pool, every API asset shares the
daily partitions, secrets reach resources only through `EnvVar`, and each source loads from its
real API, the sandbox or nowhere by one rule (orchestration/sources.py, settings SANDBOX and
SANDBOX_SOURCES).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt.assets import DBT_PROJECT, dbt_models
from orchestration.discord.assets import build_discord_assets
from orchestration.discord.resources import discord_resource_from_env
from orchestration.discourse.assets import build_discourse_assets
from orchestration.discourse.resources import discourse_resource_from_env
from orchestration.ga4.assets import build_ga4_assets
from orchestration.ga4.resources import GA4Resource
from orchestration.gsc.assets import build_gsc_assets
from orchestration.gsc.resources import gsc_resource
from orchestration.jobs import build_nightly_schedule, build_refresh_job
from orchestration.meta.assets import build_meta_assets
from orchestration.meta.resources import meta_resource_from_env
from orchestration.partitions import daily_partitions
from orchestration.quality.checks import build_freshness_checks
from orchestration.serving.assets import build_serving_asset, upstream_check_keys
from orchestration.settings import Settings
from orchestration.slack.assets import build_slack_assets
from orchestration.slack.resources import SlackResource
from orchestration.sources import SANDBOX, SourcePlan, log_plan, source_plan
from orchestration.warehouse import DuckDBWarehouse


def _secret(name: str) -> dg.EnvVar | None:
    # EnvVar keeps the value out of the UI; an unset secret means "use the sandbox".
    return dg.EnvVar(name) if os.getenv(name) else None


def _int_setting(name: str, default: int) -> int:
    text = os.getenv(name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise ValueError(f"{name}={text!r} is not a whole number; unset it to use {default}.") from exc


def ga4_resource(sandbox: bool = False) -> GA4Resource:
    # `sandbox`: the sandbox's property even if the (shared Google) key is set, for Search Console.
    return GA4Resource(
        property_id=None if sandbox else os.getenv("GA4_PROPERTY_ID") or None,
        credentials_file=None if sandbox else _secret("GOOGLE_APPLICATION_CREDENTIALS"),
        base_url=os.getenv("GA4_BASE_URL") or None,
        token_uri=os.getenv("GA4_TOKEN_URI") or None,
        page_size=_int_setting("GA4_PAGE_SIZE", 100_000),
        timeout_seconds=_int_setting("GA4_TIMEOUT_SECONDS", 60),
        how_heard_parameter=os.getenv("GA4_HOW_HEARD_PARAMETER") or "how_heard",
        lead_event=os.getenv("GA4_LEAD_EVENT") or "generate_lead",
    )


def slack_resource(sandbox: bool = False) -> SlackResource:
    # SLACK_EXPORT_PATH set: import the export; else SLACK_BOT_TOKEN: the Web API; else the sandbox.
    return SlackResource(
        bot_token=None if sandbox else _secret("SLACK_BOT_TOKEN"),
        export_path=None if sandbox else os.getenv("SLACK_EXPORT_PATH") or None,
        base_url=os.getenv("SLACK_BASE_URL") or None,
        page_size=_int_setting("SLACK_PAGE_SIZE", 200),
        timeout_seconds=_int_setting("SLACK_TIMEOUT_SECONDS", 30),
    )


# A new source adds its asset builder and its resource here (and itself to orchestration/sources.py).
SOURCE_ASSETS: dict[str, Callable[[dg.PartitionsDefinition], list]] = {
    "ga4": build_ga4_assets,
    "gsc": build_gsc_assets,
    "meta": build_meta_assets,
    "discourse": build_discourse_assets,
    "discord": lambda partitions: build_discord_assets(partitions, enabled=True),
    "slack": build_slack_assets,
}
SOURCE_RESOURCES: dict[str, Callable[[bool], dg.ConfigurableResource]] = {
    "ga4": ga4_resource,
    "gsc": gsc_resource,
    "meta": meta_resource_from_env,
    "slack": slack_resource,
    "discourse": discourse_resource_from_env,
    "discord": discord_resource_from_env,
}


def _not_loaded(items: list, plan: SourcePlan) -> list[dg.AssetSpec]:
    """The keys of a source that is not loaded, as external assets saying how to turn it on: dbt's
    lineage still joins them, and the UI says why they stay empty."""
    specs = []
    for item in items:
        for spec in [item] if isinstance(item, dg.AssetSpec) else item.specs:
            specs.append(
                dg.AssetSpec(
                    spec.key,
                    group_name=spec.group_name,
                    description=f"{plan.source.title}: {plan.reason}.",
                    metadata={"source_mode": plan.mode},
                )
            )
    return specs


def source_assets(
    partitions: dg.PartitionsDefinition, plans: Mapping[str, SourcePlan] | None = None
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The API assets of every loaded source, and external specs for the rest (see `source_plan`)."""
    plans = source_plan() if plans is None else plans
    items: list = []
    for name, build in SOURCE_ASSETS.items():
        built = build(partitions)
        plan = plans[name]
        if plan.loaded:
            items.extend(built)
        elif not plan.source.optional:  # an optional source that is off stays out of sight
            items.extend(_not_loaded(built, plan))
    return items


def source_resources(plans: Mapping[str, SourcePlan] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The API client resource of every loaded source; a sandbox-served one ignores real credentials."""
    plans = source_plan() if plans is None else plans
    return {
        name: make(plan.mode == SANDBOX)
        for name, make in SOURCE_RESOURCES.items()
        if (plan := plans[name]).loaded
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings)
    mart_keys = [key for key in dbt_models.keys if dbt_models.group_names_by_key.get(key) == "marts"]
    plans = source_plan()
    log_plan(plans)
    sources = source_assets(partitions, plans)
    built = [item for item in sources if isinstance(item, dg.AssetsDefinition)]
    freshness = build_freshness_checks(built)
    serving = build_serving_asset(
        mart_keys, settings.serving_path, upstream_check_keys(mart_keys, [*built, dbt_models, *freshness])
    )
    refresh_job = build_refresh_job()
    return dg.Definitions(
        assets=[*sources, dbt_models, serving],
        asset_checks=freshness,
        jobs=[refresh_job],
        schedules=[
            build_nightly_schedule(
                refresh_job,
                settings.nightly_cron,
                settings.nightly_timezone,
                running=settings.nightly_schedule_running,
            )
        ],
        resources={
            "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
            **source_resources(plans),
            "dbt": DbtCliResource(project_dir=DBT_PROJECT),
        },
    )


defs = build_definitions(Settings.from_env())
