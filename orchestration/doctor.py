"""`make doctor`: is every source set up to load, and if not, why and what to do.

For each source (GA4, Search Console, Meta, Slack by API or export, Discourse, Discord) it reads
where the source loads from (`orchestration.sources.source_plan`), validates its settings the
way its connector does, authenticates, makes one cheap read through the connector's client, and
checks the permission the load depends on (Slack `users:read.email`, a Discourse admin key,
Search Console access to the site, Meta `ads_read` on the account, the GA4 property and its
how-heard custom dimension). A brand file (orchestration/brand.py) that is malformed is an error
row; with real sources, one that leaves settings unset is a warning row naming each. It prints one
table, source | mode | status | what will load (or not, and why) | the fix, and exits 1 when any
source is in error.

No secret is printed: connector errors are already redacted, and every line is scrubbed of the
values of the secret settings (and of the service-account key) before it is shown.

    python -m orchestration.doctor
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from connectors.discord import DiscordClient, DiscordConfig
from connectors.discourse import DiscourseClient, DiscourseConfig
from connectors.errors import ConnectorConfigError, ConnectorError
from connectors.ga4 import GA4Client, GA4Config
from connectors.gsc import GSCClient, GSCConfig
from connectors.http import ApiError
from connectors.meta import MetaClient, MetaConfig, MetaTokenError
from connectors.slack import AUTH_ERRORS, SlackClient, SlackConfig, SlackError, SlackExport
from orchestration.brand import BrandError, brand_file, load_brand
from orchestration.dbt.member_hash import MissingMemberHashKey, member_hash_key
from orchestration.settings import Settings, SettingsError
from orchestration.sources import OFF, REAL, SANDBOX, SOURCES, SourcePlan, source_plan

OK, WARN, ERROR = "ok", "warn", "error"
_RANK = {OK: 0, OFF: 0, WARN: 1, ERROR: 2}

# Settings whose values must never appear in the output.
SECRET_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "META_ACCESS_TOKEN",
    "DISCOURSE_API_KEY",
    "DISCORD_BOT_TOKEN",
    "MEMBER_HASH_KEY",
)
# Search Console counts days in Pacific time and finalises them ~3 days later.
GSC_PROBE_LAG_DAYS = 5
SLACK_SCOPES = "channels:read, groups:read, channels:history, groups:history, users:read, users:read.email"


@dataclass
class Row:
    """One source's line of the table; findings add to it and the worst status wins."""

    source: str
    mode: str
    status: str = OK
    findings: list[tuple[str, str]] = field(default_factory=list)  # (what loads or not, the fix)

    @property
    def loads(self) -> list[str]:
        return [text for text, _ in self.findings]

    @property
    def fixes(self) -> list[str]:
        return [fix for _, fix in self.findings if fix]

    def ok(self, text: str) -> None:
        self.findings.append((text, ""))

    def warn(self, text: str, fix: str) -> None:
        self._add(WARN, text, fix)

    def error(self, text: str, fix: str) -> None:
        self._add(ERROR, text, fix)

    def _add(self, status: str, text: str, fix: str) -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status = status
        self.findings.append((text, fix))


# --- one check per source ---------------------------------------------------------------------------


def _yesterday() -> date:
    return date.today() - timedelta(days=1)


def _service_account_email(config: GA4Config | GSCConfig) -> str:
    try:
        return str(config.service_account_info().get("client_email") or "the service account")
    except ConnectorConfigError:
        return "the service account"


def check_ga4(row: Row, env: Mapping[str, str]) -> None:
    config = GA4Config.from_env(env)
    who = _service_account_email(config)
    day = _yesterday()
    try:
        with GA4Client(config) as client:
            rows = client.probe_leads(day)
    except ApiError as exc:
        if exc.status == 401:
            row.error(
                f"nothing: Google refused the service account's key ({exc.message})",
                "create a new JSON key for the service account (Google Cloud console > IAM > Service "
                "accounts > Keys) and point GOOGLE_APPLICATION_CREDENTIALS at it",
            )
        elif exc.status in (403, 404):
            row.error(
                f"nothing: {who} cannot read property {config.property_id} ({exc.message})",
                f"GA4 Admin > Property access management: add {who} as Viewer, and check GA4_PROPERTY_ID "
                "(Admin > Property details, digits only)",
            )
        elif exc.status == 400 and "customEvent:" in exc.message:
            row.error(
                f"sessions would load, but leads fail: customEvent:{config.how_heard_parameter} is not a "
                "custom dimension of the property, so the refresh stops at ga4/leads_daily",
                f"GA4 Admin > Custom definitions: create an event-scoped custom dimension on the parameter "
                f"{config.how_heard_parameter!r}, or set GA4_HOW_HEARD_PARAMETER to the parameter your "
                "form sends",
            )
        else:
            row.error(f"nothing: the GA4 Data API failed ({exc})", "see the message; run doctor again")
        return
    row.ok(
        f"sessions and leads of property {config.property_id}; how-heard answers from "
        f"customEvent:{config.how_heard_parameter} ({rows} lead row(s) of {config.lead_event} on {day})"
    )


def check_gsc(row: Row, env: Mapping[str, str]) -> None:
    config = GSCConfig.from_env(env)
    who = _service_account_email(config)
    day = date.today() - timedelta(days=GSC_PROBE_LAG_DAYS)
    try:
        with GSCClient(config) as client:
            rows = client.probe(day)
    except ApiError as exc:
        if exc.status == 401:
            row.error(
                f"nothing: Google refused the service account's key ({exc.message})",
                "create a new JSON key for the service account; point GOOGLE_APPLICATION_CREDENTIALS at it",
            )
        elif exc.status in (403, 404):
            row.error(
                f"nothing: {who} has no access to {config.site_url} ({exc.message})",
                f"Search Console > Settings > Users and permissions: add {who} (Restricted is enough), "
                "and check GSC_SITE_URL (sc-domain:example.com or https://www.example.com/)",
            )
        else:
            row.error(f"nothing: the Search Console API failed ({exc})", "see the message; run doctor again")
        return
    final = "final data answered" if rows else "no final data yet for that day"
    row.ok(f"queries and daily totals of {config.site_url} ({final} on {day})")


def check_meta(row: Row, env: Mapping[str, str]) -> None:
    config = MetaConfig.from_env(env)
    try:
        with MetaClient(config) as client:
            account = client.ad_account()
    except MetaTokenError as exc:
        row.error(
            f"nothing: Meta rejected the access token ({exc.message})",
            "create a new system-user token with ads_read (Business settings > System users > Generate "
            "token) and set META_ACCESS_TOKEN",
        )
        return
    except ApiError as exc:
        if "code 200" in exc.message or exc.status == 403:
            row.error(
                f"nothing: the token lacks ads_read on act_{config.ad_account_id} ({exc.message})",
                "Business settings > System users: assign the ad account to the token's user with 'View "
                "performance', generate a token with ads_read, and set META_ACCESS_TOKEN",
            )
        elif "code 100" in exc.message:
            row.error(
                f"nothing: ad account act_{config.ad_account_id} is unknown to this token ({exc.message})",
                "check META_AD_ACCOUNT_ID (Ads Manager > account overview, digits only) and that the "
                "account is assigned to the token's user",
            )
        else:
            row.error(f"nothing: the Marketing API failed ({exc})", "see the message; run doctor again")
        return
    name = account.get("name") or f"act_{config.ad_account_id}"
    row.ok(f"ad insights of {name!r} (act_{config.ad_account_id})")
    if account.get("account_status") not in (1, "1"):
        row.warn(
            f"the account's status is {account.get('account_status')} (not active): recent days may be empty",
            "settle or reactivate the account in Ads Manager if it should be spending",
        )
    if config.pixel_id:
        row.ok(f"hourly pixel events of pixel {config.pixel_id}")
    else:
        row.error(
            "pixel events: META_PIXEL_ID is not set, so the refresh fails at meta/pixel_events_hourly",
            "set META_PIXEL_ID (Events Manager > Data sources > your pixel's id)",
        )


def check_slack(row: Row, env: Mapping[str, str]) -> None:
    if (env.get("SLACK_EXPORT_PATH") or "").strip():
        _check_slack_export(row, env["SLACK_EXPORT_PATH"].strip(), Settings.from_env(dict(env)).history_start)
    else:
        _check_slack_api(row, env)


def _check_slack_export(row: Row, path: str, history_start: date) -> None:
    with SlackExport(path) as export:
        channels = sum(b.num_rows for b in export.channels())
        users = [u for b in export.users() for u in b.to_pylist()]
        days = export.days()
    people = [u for u in users if not u["is_bot"] and not u["is_deleted"]]
    span = f"{days[0]} to {days[-1]}" if days else "no days"
    row.ok(f"the export {Path(path).name}: {channels} channel(s), {len(users)} user(s), messages {span}")
    if people and not any(u["email"] for u in people):
        row.warn(
            "users have no e-mails in this export, so no member is recognised as an employee by e-mail",
            "export again as a workspace owner (e-mails are included for owners' exports), or use the "
            "Web API with users:read.email (SLACK_BOT_TOKEN)",
        )
    if days and days[-1] < history_start:
        row.warn(
            f"no messages: the export ends on {days[-1]}, before HISTORY_START_DATE={history_start}",
            f"set HISTORY_START_DATE={days[0]} (the export's first day) to load its history",
        )


def _check_slack_api(row: Row, env: Mapping[str, str]) -> None:
    config = SlackConfig.from_env(env)
    with SlackClient(config) as client:
        try:
            team = client.auth_test()
        except SlackError as exc:
            fix = (
                "reinstall the Slack app to the workspace and set SLACK_BOT_TOKEN to its Bot User OAuth "
                "Token (xoxb-...)"
                if exc.error in AUTH_ERRORS
                else "see the message; run doctor again"
            )
            row.error(f"nothing: auth.test failed ({exc.message})", fix)
            return
        try:
            channels = client.first_page(
                "conversations.list", "channels", 100, types="public_channel,private_channel"
            )
            members = client.first_page("users.list", "members", 100)
        except SlackError as exc:
            row.error(
                f"nothing: {exc.method} failed ({exc.message})",
                f"give the app the bot scopes {SLACK_SCOPES}, reinstall it and update SLACK_BOT_TOKEN",
            )
            return
        row.ok(f"channels, users and messages of workspace {team.get('team') or team.get('team_id')!r}")
        people = [
            m for m in members if not m.get("is_bot") and not m.get("deleted") and m.get("id") != "USLACKBOT"
        ]
        if people and not any((m.get("profile") or {}).get("email") for m in people):
            row.warn(
                "users load without e-mails (the token lacks users:read.email), so no member is "
                "recognised as an employee by e-mail domain",
                "add the bot scope users:read.email (api.slack.com/apps > OAuth & Permissions), reinstall "
                "the app and set SLACK_BOT_TOKEN to the new token",
            )
        joined = [c for c in channels if c.get("is_member")]
        if channels and not joined:
            row.warn(
                "no messages: the bot is a member of none of the channels it can see",
                "invite the bot to each channel to load (/invite @your-bot)",
            )
        elif joined:
            try:
                client.first_page("conversations.history", "messages", 1, channel=joined[0]["id"])
            except SlackError as exc:
                row.error(
                    f"messages fail: conversations.history answered {exc.error}",
                    f"give the app the bot scopes {SLACK_SCOPES}, reinstall it and update SLACK_BOT_TOKEN",
                )


def check_discourse(row: Row, env: Mapping[str, str]) -> None:
    config = DiscourseConfig.from_env(env)
    with DiscourseClient(config) as client:
        try:
            categories = client.get("/categories.json")
        except ApiError as exc:
            row.error(
                f"nothing: {config.url} refused the key ({exc.message})",
                "Admin > API > New API key (User level: All users, scope: Global) and set "
                "DISCOURSE_API_KEY; check DISCOURSE_URL and DISCOURSE_API_USERNAME",
            )
            return
        count = len(((categories or {}).get("category_list") or {}).get("categories") or [])
        row.ok(f"categories ({count}), topics, posts and likes of {config.url}")
        try:
            client.get("/admin/users/list/active.json", {"page": 1})
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
            row.error(
                f"users fail: the key is not an admin key (/admin/users/list answered {exc.status}), so the "
                "refresh stops at discourse/users",
                "create the key as an admin (Admin > API > New API key, User level: All users, scope: "
                "Global) and set DISCOURSE_API_KEY",
            )
            return
        row.ok("users with e-mails (the key is an admin key)")


def check_discord(row: Row, env: Mapping[str, str]) -> None:
    config = DiscordConfig.from_env(env)
    with DiscordClient(config) as client:
        readable = []
        for channel_id in config.channel_ids:
            try:
                client.get(f"/channels/{channel_id}/messages", {"limit": 1})
            except ApiError as exc:
                if exc.status == 401:
                    row.error(
                        f"nothing: Discord refused the bot token ({exc.message})",
                        "Developer Portal > your application > Bot > Reset Token; set DISCORD_BOT_TOKEN",
                    )
                    return
                row.error(
                    f"channel {channel_id} fails (HTTP {exc.status}: {exc.message})",
                    "check DISCORD_CHANNEL_IDS, and give the bot View Channel and Read Message History there",
                )
                continue
            readable.append(channel_id)
    if readable:
        row.ok(f"messages of {len(readable)} channel(s)")


CHECKS: dict[str, Callable[[Row, Mapping[str, str]], None]] = {
    "ga4": check_ga4,
    "gsc": check_gsc,
    "meta": check_meta,
    "slack": check_slack,
    "discourse": check_discourse,
    "discord": check_discord,
}


# --- the table -------------------------------------------------------------------------------------


def _title(plan: SourcePlan, env: Mapping[str, str]) -> str:
    if plan.source.name == "slack" and plan.mode == REAL:
        return "Slack (export)" if (env.get("SLACK_EXPORT_PATH") or "").strip() else "Slack (API)"
    return plan.source.title


def check_source(plan: SourcePlan, env: Mapping[str, str]) -> Row:
    row = Row(_title(plan, env), plan.mode)
    if plan.mode == OFF:
        row.status = OFF
        row.findings.append((plan.reason, f"set {plan.source.how_to_configure()} (see .env.example)"))
        return row
    if plan.mode == SANDBOX:
        row.ok(f"the sandbox's fictional brand, not your data ({plan.reason})")
        return row
    try:
        CHECKS[plan.source.name](row, env)
    except ConnectorConfigError as exc:
        row.error(f"nothing: a setting is wrong ({exc})", "correct the setting named; see .env.example")
    except ConnectorError as exc:
        row.error(f"nothing: {exc}", "see the message; run doctor again")
    return row


def check_all(environ: Mapping[str, str] | None = None) -> list[Row]:
    """Every source's row, in the order of orchestration.sources.SOURCES (plus one for settings)."""
    env = os.environ if environ is None else environ
    rows = []
    try:
        Settings.from_env(dict(env))
        plans = source_plan(env)
    except (SettingsError, ValueError) as exc:
        settings = Row("settings", "-")
        settings.error(f"nothing: {exc}", "correct the setting named; see .env.example")
        return [settings]
    for source in SOURCES:
        rows.append(check_source(plans[source.name], env))
    brand = check_brand(plans, env)
    if brand is not None:
        rows.append(brand)
    try:
        member_hash_key(env)
    except MissingMemberHashKey:
        key = Row("member key", "-")
        key.error(
            "no community model builds: MEMBER_HASH_KEY is not set, but real community data is configured "
            "(members are pseudonymised with an HMAC under it)",
            "set MEMBER_HASH_KEY in .env to a long random secret (python -c 'import secrets; "
            "print(secrets.token_hex(32))') and keep it stable",
        )
        rows.append(key)
    return rows


def check_brand(plans: Mapping[str, SourcePlan], env: Mapping[str, str]) -> Row | None:
    """The brand file's row: an error when it is malformed; with real sources, a warning per unset
    setting (its figures will be null). None when there is nothing to say."""
    real = any(p.mode == REAL for p in plans.values())
    row = Row("brand", "real" if real else "sandbox")
    try:
        brand = load_brand(brand_file(not real, env))
    except BrandError as exc:
        row.error(f"no refresh: {exc}", "correct the key named (brand.example.yml shows every key)")
        return row
    if not real:
        return None
    for line in brand.warnings():
        row.warn(line, "" if brand.found else "copy brand.example.yml to brand.yml and fill it in")
    return row if row.findings else None


def secrets_of(env: Mapping[str, str]) -> list[str]:
    """The values that must not be shown: secret settings, and the service-account key's secrets."""
    values = [env.get(name) or "" for name in SECRET_SETTINGS]
    key_file = (env.get("GOOGLE_APPLICATION_CREDENTIALS") or "").strip()
    if key_file:
        try:
            info = json.loads(Path(key_file).expanduser().read_text())
            values += [str(info.get("private_key") or ""), str(info.get("private_key_id") or "")]
        except (OSError, ValueError, AttributeError):
            pass
    return sorted({v.strip() for v in values if len(v.strip()) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def render(rows: list[Row], width: int = 150) -> str:
    """The table: one block per source, long cells wrapped within their column."""
    heads = ("source", "mode", "status", "what will load / what will not and why", "the fix")
    fixed = [max(len(heads[0]), *(len(r.source) for r in rows)), 7, 6]
    rest = max(40, width - sum(fixed) - 3 * 4)
    widths = [*fixed, rest * 11 // 20, rest - rest * 11 // 20]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    out = [line(list(heads)), rule]
    for row in rows:
        first = True
        for text, fix in row.findings or [("", "")]:
            loads = textwrap.wrap("- " + text, widths[3]) if text else []
            fixes = textwrap.wrap("- " + fix, widths[4]) if fix else []
            for i in range(max(1, len(loads), len(fixes))):
                head = [row.source, row.mode, row.status] if first else ["", "", ""]
                first = False
                out.append(
                    line([*head, loads[i] if i < len(loads) else "", fixes[i] if i < len(fixes) else ""])
                )
        out.append(rule)
    return "\n".join(out)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Print the table; 1 when any source is in error, else 0."""
    if environ is None:
        from orchestration.commands import load_dotenv

        load_dotenv()
    env = os.environ if environ is None else environ
    rows = check_all(env)
    errors = [r.source for r in rows if r.status == ERROR]
    warnings = [r.source for r in rows if r.status == WARN]
    text = render(rows)
    if errors:
        text += f"\n\nIn error: {', '.join(errors)}. Fix them, then run `make doctor` again."
    elif warnings:
        text += (
            f"\n\nReady, with warnings for {', '.join(warnings)}: `make backfill FROM=... TO=...` will load."
        )
    else:
        text += "\n\nReady: `make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD`, then `make refresh` nightly."
    print(scrub(text, secrets_of(env)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
