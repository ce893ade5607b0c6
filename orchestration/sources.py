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
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from connectors import discord, discourse, ga4, gsc, meta, slack
from connectors.sandbox.brand import (
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_GSC_SITE_URL,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
)
from orchestration.settings import SettingsError

log = logging.getLogger(__name__)

REAL, SANDBOX, OFF = "real", "sandbox", "off"
SANDBOX_MODES = ("auto", "on", "off")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


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
    text = (env.get("DISCORD_SANDBOX") or "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise SettingsError(f"DISCORD_SANDBOX={text!r} is not valid; use 1 (the sandbox's Discord) or 0.")
    return text in _TRUE


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


# --- raw tables of sources that are not loaded ------------------------------------------------------

_LOADED = [pa.field("_loaded_at", pa.timestamp("us")), pa.field("_run_id", pa.string())]
_GA4 = [
    pa.field("_property_id", pa.string()),
    pa.field("_subject_to_thresholding", pa.bool_()),
    pa.field("_data_loss_from_other_row", pa.bool_()),
    *_LOADED,
]
_GSC = [pa.field("_site_url", pa.string()), *_LOADED]
_SLACK = [pa.field("_source", pa.string()), *_LOADED]
_FORUM = [pa.field("_forum_url", pa.string()), *_LOADED]
_AD_ACCOUNT = [pa.field("_account_id", pa.string()), *_LOADED]
_PIXEL = [pa.field("_pixel_id", pa.string()), *_LOADED]


def _schema(base: pa.Schema, stamp: list[pa.Field]) -> pa.Schema:
    return pa.schema([*base, *stamp])


# Every raw table as the ingestion assets write it (connector schema + load stamp), by source.
# tests/orchestration/test_source_plan.py compares them with the tables a real load creates.
RAW_TABLES: dict[str, dict[str, pa.Schema]] = {
    "ga4": {
        "raw_ga4.sessions_daily": _schema(ga4.SESSIONS_SCHEMA, _GA4),
        "raw_ga4.leads_daily": _schema(ga4.LEADS_SCHEMA, _GA4),
    },
    "gsc": {
        "raw_gsc.queries_daily": _schema(gsc.QUERIES_SCHEMA, _GSC),
        "raw_gsc.totals_daily": _schema(gsc.TOTALS_SCHEMA, _GSC),
    },
    "meta": {
        "raw_meta.ad_insights_daily": _schema(meta.INSIGHTS_SCHEMA, _AD_ACCOUNT),
        "raw_meta.pixel_events_hourly": _schema(meta.PIXEL_SCHEMA, _PIXEL),
    },
    "slack": {
        "raw_slack.channels": _schema(slack.CHANNELS_SCHEMA, _SLACK),
        "raw_slack.users": _schema(slack.USERS_SCHEMA, _SLACK),
        "raw_slack.messages": _schema(slack.MESSAGES_SCHEMA, _SLACK),
    },
    "discourse": {
        "raw_discourse.categories": _schema(discourse.CATEGORIES_SCHEMA, _FORUM),
        "raw_discourse.topics": _schema(discourse.TOPICS_SCHEMA, _FORUM),
        "raw_discourse.posts": _schema(discourse.POSTS_SCHEMA, _FORUM),
        "raw_discourse.post_likes": _schema(discourse.POST_LIKES_SCHEMA, _FORUM),
        "raw_discourse.users": _schema(discourse.USERS_SCHEMA, _FORUM),
    },
    "discord": {"raw_discord.messages": _schema(discord.MESSAGES_SCHEMA, _LOADED)},
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
                continue
            conn.execute(f"create schema if not exists {table.split('.')[0]}")
            conn.register("empty_raw_table", schema.empty_table())
            try:
                conn.execute(f"create table if not exists {table} as select * from empty_raw_table")
            finally:
                conn.unregister("empty_raw_table")
            created.append((source, table))
    return created


# --- sandbox rows left beside real data ---------------------------------------------------------------

# How each raw table's sandbox rows are told apart: the fictional brand's ids in the load stamp,
# and the setting that holds the real id (a real source configured with the sandbox's own id is the
# test harness pointing a "real" connector at the sandbox: its rows are what was asked for).
_SANDBOX_STAMPS: dict[str, tuple[str, str, str | None]] = {
    "raw_ga4.sessions_daily": ("_property_id = ?", SANDBOX_GA4_PROPERTY_ID, "GA4_PROPERTY_ID"),
    "raw_ga4.leads_daily": ("_property_id = ?", SANDBOX_GA4_PROPERTY_ID, "GA4_PROPERTY_ID"),
    "raw_gsc.queries_daily": ("_site_url = ?", SANDBOX_GSC_SITE_URL, "GSC_SITE_URL"),
    "raw_gsc.totals_daily": ("_site_url = ?", SANDBOX_GSC_SITE_URL, "GSC_SITE_URL"),
    "raw_meta.ad_insights_daily": ("_account_id = ?", SANDBOX_META_AD_ACCOUNT_ID, "META_AD_ACCOUNT_ID"),
    "raw_meta.pixel_events_hourly": ("_pixel_id = ?", SANDBOX_META_PIXEL_ID, "META_PIXEL_ID"),
    **{table: ("_source = ?", "sandbox", None) for table in RAW_TABLES["slack"]},
    # the sandbox's forum is served on loopback under /discourse
    **{
        table: ("_forum_url like ?", "http://127.0.0.1:%/discourse", "DISCOURSE_URL")
        for table in RAW_TABLES["discourse"]
    },
}


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
            stamp = _SANDBOX_STAMPS.get(table)
            if stamp is None:
                continue
            predicate, value, setting = stamp
            real = _real_id(setting, env).rstrip("/")
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
            "or delete those rows as shown, and run again."
        )
