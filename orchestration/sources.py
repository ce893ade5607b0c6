"""Where each source loads from: its real API, the built-in sandbox, or nowhere.

The rule (README, "Real data or the sandbox"), read from the environment when definitions load:

- A source whose credentials are set loads from its real API, always.
- SANDBOX=auto (default): while no source has credentials, the sandbox serves every source (the
  demo, a first run). As soon as one source has credentials, a source without them is not loaded
  at all: fictional numbers never sit beside real ones in the marts. SANDBOX_SOURCES=meta,slack
  names the sources the sandbox serves instead of that automatic choice (testing a source, or a
  lighter demo).
- SANDBOX=on: the sandbox serves every source without credentials, beside real ones (testing only).
- SANDBOX=off: never the sandbox; a source without credentials is not loaded.
- Discord is optional: the sandbox serves it only when asked, by SANDBOX_SOURCES=...,discord or by
  DISCORD_SANDBOX=1 (kept as a shorthand for that).

A source that is not loaded has no ingestion assets (the UI shows its raw tables as external assets
whose description names the setting that turns it on); its raw tables are created empty before dbt
runs (`create_missing_raw_tables`), so its models build empty instead of failing. Rows an earlier
sandbox run left in a warehouse that now loads real data stop dbt (`check_no_sandbox_rows`).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg
import duckdb
import pyarrow as pa

from orchestration import registry
from orchestration.settings import SettingsError, bool_setting

log = logging.getLogger(__name__)

REAL, SANDBOX, OFF = "real", "sandbox", "off"
SANDBOX_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Source:
    """A source and the settings that make it real: every setting of any one group set."""

    name: str
    title: str
    credentials: tuple[tuple[str, ...], ...]
    optional: bool = False  # the sandbox serves it only when asked

    def configured(self, env: Mapping[str, str]) -> bool:
        return any(all(_set(env, name) for name in group) for group in self.credentials)

    def how_to_configure(self) -> str:
        return " or ".join(" and ".join(group) for group in self.credentials)


SOURCES: tuple[Source, ...] = (
    Source("ga4", "GA4", (("GOOGLE_APPLICATION_CREDENTIALS", "GA4_PROPERTY_ID"),)),
    Source("gsc", "Search Console", (("GOOGLE_APPLICATION_CREDENTIALS", "GSC_SITE_URL"),)),
    Source("meta", "Meta", (("META_ACCESS_TOKEN",),)),
    Source("slack", "Slack", (("SLACK_BOT_TOKEN",), ("SLACK_EXPORT_PATH",))),
    Source("discourse", "Discourse", (("DISCOURSE_URL",), ("DISCOURSE_API_KEY",))),
    Source("discord", "Discord", (("DISCORD_BOT_TOKEN", "DISCORD_CHANNEL_IDS"),), optional=True),
)
SOURCE_NAMES = tuple(s.name for s in SOURCES)
# Any of these set means the user means real data, even before a source is complete.
SECRET_SETTINGS = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "META_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_EXPORT_PATH",
    "DISCOURSE_URL",
    "DISCOURSE_API_KEY",
    "DISCORD_BOT_TOKEN",
)


@dataclass(frozen=True)
class SourcePlan:
    """Where one source loads from (`mode`: real, sandbox or off) and why, in words for the UI and logs."""

    source: Source
    mode: str
    reason: str

    @property
    def loaded(self) -> bool:
        return self.mode != OFF


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool((env.get(name) or "").strip())


def _sandbox_mode(env: Mapping[str, str]) -> str:
    text = (env.get("SANDBOX") or "auto").strip().lower()
    if text not in SANDBOX_MODES:
        raise SettingsError(
            f"SANDBOX={text!r} is not valid; use auto (the default: the sandbox serves every source while "
            "none has credentials), on (the sandbox also beside real sources, for testing) or off (never)."
        )
    return text


def _listed(env: Mapping[str, str]) -> frozenset[str] | None:
    text = (env.get("SANDBOX_SOURCES") or "").strip()
    if not text:
        return None
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise SettingsError(
            f"SANDBOX_SOURCES={text!r} names {', '.join(repr(n) for n in unknown)}, not a source; use a "
            f"comma-separated list of {', '.join(SOURCE_NAMES)} (or unset it)."
        )
    return frozenset(names)


def _discord_sandbox(env: Mapping[str, str]) -> bool:
    return bool_setting("DISCORD_SANDBOX", False, env, meaning="1: the sandbox's Discord")


def source_plan(environ: Mapping[str, str] | None = None) -> dict[str, SourcePlan]:
    """Where every source loads from, by the rule in this module's docstring.

    Args:
        environ: the settings (default: the process environment).
    Returns:
        A SourcePlan per source name, in SOURCES order.
    Raises:
        SettingsError: SANDBOX, SANDBOX_SOURCES or DISCORD_SANDBOX is malformed or contradicts the
            credentials, or credentials are set but complete no source; the message names the fix.
    """
    env = os.environ if environ is None else environ
    mode = _sandbox_mode(env)
    listed = _listed(env)
    discord_sandbox = _discord_sandbox(env)
    configured = {s.name: s.configured(env) for s in SOURCES}
    secrets = [name for name in SECRET_SETTINGS if _set(env, name)]

    if mode == "off" and (listed or discord_sandbox):
        which = "SANDBOX_SOURCES" if listed else "DISCORD_SANDBOX=1"
        raise SettingsError(
            f"SANDBOX=off contradicts {which}: unset {which.split('=')[0]} to load real sources only, or "
            "set SANDBOX=auto to let it choose the sandbox's sources."
        )
    both = sorted(name for name in listed or () if configured[name])
    if both:
        source = next(s for s in SOURCES if s.name == both[0])
        raise SettingsError(
            f"SANDBOX_SOURCES lists {both[0]}, but {source.title}'s credentials are set "
            f"({source.how_to_configure()}): remove {both[0]} from SANDBOX_SOURCES to load the real "
            f"source, or unset its credentials to test it on the sandbox."
        )
    if secrets and not any(configured.values()):
        missing = "; ".join(
            f"{s.title} needs {s.how_to_configure()}"
            for s in SOURCES
            if any(name in secrets for group in s.credentials for name in group)
        )
        raise SettingsError(
            f"{', '.join(secrets)} is set, but no source is completely configured ({missing}). Set the "
            "missing setting(s), or unset the credentials to run on the sandbox."
        )

    real_somewhere = any(configured.values())
    plans = {}
    for source in SOURCES:
        name = source.name
        if configured[name]:
            plan = SourcePlan(source, REAL, f"loads from its API ({source.how_to_configure()} set)")
        elif listed is not None and name in listed:
            plan = SourcePlan(source, SANDBOX, "served by the sandbox: SANDBOX_SOURCES lists it")
        elif name == "discord" and discord_sandbox:
            plan = SourcePlan(source, SANDBOX, "served by the sandbox: DISCORD_SANDBOX=1")
        elif source.optional:
            plan = SourcePlan(
                source,
                OFF,
                f"not loaded (optional source): set {source.how_to_configure()} to load it, or add "
                f"{name} to SANDBOX_SOURCES (or DISCORD_SANDBOX=1) for the sandbox's {source.title}",
            )
        elif mode == "on":
            plan = SourcePlan(source, SANDBOX, "served by the sandbox: no credentials, and SANDBOX=on")
        elif mode == "auto" and listed is None and not real_somewhere:
            plan = SourcePlan(
                source, SANDBOX, "served by the sandbox: no source has credentials (SANDBOX=auto)"
            )
        else:
            why = (
                "SANDBOX=off"
                if mode == "off"
                else "SANDBOX_SOURCES does not list it"
                if listed is not None
                else "other sources are real (SANDBOX=auto keeps fictional data out of a real warehouse)"
            )
            plan = SourcePlan(
                source,
                OFF,
                f"not loaded: it has no credentials and {why}. Set {source.how_to_configure()} to load "
                f"it, or add {name} to SANDBOX_SOURCES to test it on the sandbox",
            )
        plans[name] = plan
    if not any(p.loaded for p in plans.values()):
        shown = f"SANDBOX={mode}" + (
            f", SANDBOX_SOURCES={env.get('SANDBOX_SOURCES')!r}" if listed is not None else ""
        )
        raise SettingsError(
            f"No source has credentials and {shown} serves none from the sandbox, so nothing would be "
            "loaded: set a source's credentials (see .env.example), or SANDBOX=auto with "
            "SANDBOX_SOURCES unset to run every source on the sandbox."
        )
    return plans


def log_plan(plans: Mapping[str, SourcePlan]) -> None:
    """One line per source that is not loaded, or that is fictional beside real data."""
    real = any(p.mode == REAL for p in plans.values())
    for plan in plans.values():
        if plan.mode == OFF and not plan.source.optional:
            log.warning("%s (%s): %s.", plan.source.title, plan.source.name, plan.reason)
        elif plan.mode == SANDBOX and real:
            log.warning("%s (%s): %s, beside real sources.", plan.source.title, plan.source.name, plan.reason)


# --- a source's definitions, by its plan ---------------------------------------------------------------


def plan_defs(
    plan: SourcePlan, assets: list, resource_from_env: Callable[[bool], dg.ConfigurableResource]
) -> dg.Definitions:
    """What a source adds to the code location (each source's `build_defs` returns this).

    Loaded: its assets and its resource under the source's name, built from the environment
    (`resource_from_env(sandbox)`: True when the sandbox serves it, whatever real settings say).
    Not loaded: its keys as external assets whose description says how to turn it on, so dbt's
    lineage still joins them and the UI says why they stay empty; nothing for an optional source.
    """
    if plan.loaded:
        return dg.Definitions(
            assets=assets, resources={plan.source.name: resource_from_env(plan.mode == SANDBOX)}
        )
    if plan.source.optional:
        return dg.Definitions()
    specs = [
        dg.AssetSpec(
            spec.key,
            group_name=spec.group_name,
            description=f"{plan.source.title}: {plan.reason}.",
            metadata={"source_mode": plan.mode},
        )
        for item in assets
        for spec in ([item] if isinstance(item, dg.AssetSpec) else item.specs)
    ]
    return dg.Definitions(assets=specs)


# --- raw tables of sources that are not loaded ------------------------------------------------------

# Every raw table as the ingestion assets write it (connector schema + load stamp), by source:
# orchestration/registry.py, which tests/orchestration/test_source_plan.py compares with the tables
# a real load creates.
RAW_TABLES: dict[str, dict[str, pa.Schema]] = {
    source: {table.name: table.schema for table in registry.tables_of(source)}
    for source in registry.source_names()
}


def create_missing_raw_tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Create every raw table that does not exist yet, empty, with the columns its asset writes.

    dbt's staging views select from every source table; a source that is not loaded (or not yet)
    then builds empty models instead of failing the whole dbt build. A later load of the source
    writes into the same table (same columns), so turning it on needs no migration.

    Returns:
        (source name, table) of each table created.
    """
    existing = {
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "select table_schema, table_name from information_schema.tables where table_schema like 'raw_%'"
        ).fetchall()
    }
    created = []
    for source, tables in RAW_TABLES.items():
        for table, schema in tables.items():
            if table in existing:
                _add_missing_columns(conn, table, schema)
                continue
            conn.execute(f"create schema if not exists {table.split('.')[0]}")
            conn.register("empty_raw_table", schema.empty_table())
            try:
                conn.execute(f"create table if not exists {table} as select * from empty_raw_table")
            finally:
                conn.unregister("empty_raw_table")
            created.append((source, table))
    return created


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema) -> None:
    # A column a connector gained since the table was written (e.g. Slack's is_admin) is added
    # empty, so the staging models that read it build before the source's next load fills it.
    schema_name, table_name = table.split(".")
    have = {
        name
        for (name,) in conn.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema_name, table_name],
        ).fetchall()
    }
    missing = [f.name for f in schema if f.name not in have]
    if not missing:
        return
    conn.register("empty_raw_table", schema.empty_table())
    try:
        types = dict(
            conn.execute("select column_name, column_type from (describe empty_raw_table)").fetchall()
        )
    finally:
        conn.unregister("empty_raw_table")
    for name in missing:
        conn.execute(f'alter table {table} add column if not exists "{name}" {types[name]}')


# --- sandbox rows left beside real data ---------------------------------------------------------------
# Each raw table's sandbox rows are told apart by its `sandbox` rule in orchestration/registry.py.


def _real_id(name: str | None, env: Mapping[str, str]) -> str:
    text = (env.get(name) or "").strip() if name else ""
    return text.removeprefix("act_").removeprefix("properties/")


def check_no_sandbox_rows(
    conn: duckdb.DuckDBPyConnection, plans: Mapping[str, SourcePlan], environ: Mapping[str, str] | None = None
) -> None:
    """Refuse a warehouse that loads real data but still holds rows the sandbox served earlier.

    A warehouse filled by `make demo` keeps the fictional brand's rows after real credentials are
    set; the marts would then mix them with real numbers. Sources the plan serves from the sandbox
    on purpose (SANDBOX_SOURCES, SANDBOX=on) are exempt, as is a warehouse with no real source.

    Raises:
        RuntimeError: naming each table, its sandbox rows and how to remove them.
    """
    env = os.environ if environ is None else environ
    if not any(p.mode == REAL for p in plans.values()):
        return
    found = []
    for source, tables in RAW_TABLES.items():
        plan = plans.get(source)
        if plan is None or plan.mode == SANDBOX:
            continue
        for table in tables:
            rule = registry.raw_table(table).sandbox
            if rule is None:
                continue
            predicate, value = rule.predicate, rule.value
            real = _real_id(rule.setting, env).rstrip("/")
            if plan.mode == REAL and (real == value or fnmatch.fnmatchcase(real, value.replace("%", "*"))):
                continue
            try:
                n = conn.execute(f"select count(*) from {table} where {predicate}", [value]).fetchone()[0]
            except duckdb.CatalogException:  # not loaded yet
                continue
            if n:
                shown = predicate.replace("?", "'" + value + "'")
                found.append(f"{table} ({n:,} rows: delete from {table} where {shown})")
    if found:
        raise RuntimeError(
            "The warehouse holds rows from the sandbox (an earlier demo run) while real sources are "
            "configured, so the marts would mix fictional and real numbers: "
            + "; ".join(found)
            + ". Start the real warehouse in a new file (WAREHOUSE_PATH=data/warehouse-real.duckdb), "
            "or delete those rows as shown (and the tables' days from the ledger of loaded days: "
            "delete from ledger.loaded_days where table_name = '<table>'), and run again."
        )
