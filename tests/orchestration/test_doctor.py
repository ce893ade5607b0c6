"""`make doctor` against the sandbox in its real-credential mode: every source configured as a user
configures a real one (keys, tokens, ids, base URLs), pointed at a loopback sandbox.

One configuration passes (exit 0), one has permissions the sandbox refuses (Slack without
users:read.email, a Discourse key without admin rights, a Meta token without ads_read), one has bad
settings; each says what will not load, names the fix, and prints no secret.
"""

from __future__ import annotations

import json

import pytest

from connectors.sandbox import SandboxServer, google_service_account_info
from connectors.sandbox.brand import (
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_TOKEN_WITHOUT_ADS_READ,
)
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_USER_KEY
from connectors.sandbox.real_mode import real_mode_settings
from connectors.sandbox.slack_api import SANDBOX_SLACK_TOKEN_WITHOUT_EMAIL
from orchestration import doctor

SECRET_NAMES = (
    "SLACK_BOT_TOKEN",
    "META_ACCESS_TOKEN",
    "DISCOURSE_API_KEY",
    "DISCORD_BOT_TOKEN",
    "MEMBER_HASH_KEY",
)


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(seed=42, scale="small") as server:
        yield server


@pytest.fixture
def real_env(sandbox, tmp_path) -> dict[str, str]:
    """Every source configured as real, each pointed at the loopback sandbox."""
    key = tmp_path / "service-account.json"
    info = google_service_account_info(sandbox.google_token_uri)
    key.write_text(json.dumps(info))
    return {
        # what `python -m connectors.sandbox serve --credentials-file` prints (the sandbox's brand
        # file included: its servers serve the sandbox brand)
        **real_mode_settings(sandbox.base_url, sandbox.google_token_uri, key),
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-doctor-test",
        "HTTP_MAX_ATTEMPTS": "2",
    }


def run_doctor(env: dict[str, str], capsys) -> tuple[int, str, dict[str, doctor.Row]]:
    code = doctor.main(env)
    out = capsys.readouterr().out
    rows = {row.source: row for row in doctor.check_all(env)}
    return code, out, rows


def secrets_in(out: str, env: dict[str, str]) -> list[str]:
    values = [env[name] for name in SECRET_NAMES if env.get(name)]
    info = json.loads(open(env["GOOGLE_APPLICATION_CREDENTIALS"]).read())
    values += [info["private_key"], info["private_key_id"]]
    return [v for v in values if v in out]


def table_row(out: str, source: str) -> list[str]:
    """The cells of the first line of `source`'s block in the printed table."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.split(" | ")]
        if cells[0] == source:
            return cells
    raise AssertionError(f"{source} is not in the table:\n{out}")


def test_every_source_real_and_allowed_passes(real_env, capsys):
    code, out, rows = run_doctor(real_env, capsys)
    assert code == 0, out
    names = ["GA4", "Search Console", "Meta", "Slack (API)", "Discourse", "Discord"]
    assert list(rows) == names
    for name in names:
        assert table_row(out, name)[1:3] == ["real", "ok"], out
    assert "property 412345678" in " ".join(rows["GA4"].loads)
    assert f"act_{SANDBOX_META_AD_ACCOUNT_ID}" in " ".join(rows["Meta"].loads)
    assert "users with e-mails" in " ".join(rows["Discourse"].loads)
    assert "messages of 6 channel(s)" in " ".join(rows["Discord"].loads)
    assert secrets_in(out, real_env) == []


def test_refused_permissions_are_named_with_their_fix(real_env, capsys):
    real_env.update(
        SLACK_BOT_TOKEN=SANDBOX_SLACK_TOKEN_WITHOUT_EMAIL,
        DISCOURSE_API_KEY=SANDBOX_DISCOURSE_USER_KEY,
        META_ACCESS_TOKEN=SANDBOX_META_TOKEN_WITHOUT_ADS_READ,
    )
    code, out, rows = run_doctor(real_env, capsys)
    assert code == 1
    assert {name: row.status for name, row in rows.items()} == {
        "GA4": "ok",
        "Search Console": "ok",
        "Meta": "error",
        "Slack (API)": "warn",
        "Discourse": "error",
        "Discord": "ok",
    }
    slack = rows["Slack (API)"]
    assert any("without e-mails" in text for text in slack.loads)
    assert any("users:read.email" in fix for fix in slack.fixes)
    discourse = rows["Discourse"]
    assert any("topics, posts and likes" in text for text in discourse.loads)  # the forum still reads
    assert any("not an admin key" in text and "403" in text for text in discourse.loads)
    assert any("admin" in fix for fix in discourse.fixes)
    assert any("ads_read" in text for text in rows["Meta"].loads)
    assert "In error: Meta, Discourse." in out
    assert secrets_in(out, real_env) == []


def test_bad_settings_fail_with_the_setting_and_the_fix(real_env, capsys):
    real_env.update(
        GSC_SITE_URL="northwind-analytics.com",  # neither sc-domain: nor a URL prefix
        GA4_HOW_HEARD_PARAMETER="heard_from",  # not a custom dimension of the property
        DISCORD_CHANNEL_IDS="1261000000000000001,1261000000000000099",  # the second does not exist
    )
    del real_env["MEMBER_HASH_KEY"]
    code, out, rows = run_doctor(real_env, capsys)
    assert code == 1
    assert rows["Search Console"].status == "error"
    assert "GSC_SITE_URL='northwind-analytics.com'" in rows["Search Console"].loads[0]
    assert rows["GA4"].status == "error"
    assert any("GA4_HOW_HEARD_PARAMETER" in fix for fix in rows["GA4"].fixes)
    assert any("customEvent:heard_from" in text for text in rows["GA4"].loads)
    discord = rows["Discord"]
    assert discord.status == "error"
    assert any("1261000000000000099" in text for text in discord.loads)
    assert "messages of 1 channel(s)" in discord.loads
    assert rows["member key"].status == "error" and "MEMBER_HASH_KEY" in rows["member key"].fixes[0]
    assert table_row(out, "Search Console")[1:3] == ["real", "error"]
    assert secrets_in(out, real_env) == []


def test_community_only_shows_the_other_sources_off_with_the_setting_to_set(real_env, capsys):
    for name in list(real_env):
        if name.startswith(("GOOGLE_", "GA4_", "GSC_", "META_", "DISCORD_")):
            del real_env[name]
    code, out, rows = run_doctor(real_env, capsys)
    assert code == 0, out
    assert {name: row.status for name, row in rows.items()} == {
        "GA4": "off",
        "Search Console": "off",
        "Meta": "off",
        "Slack (API)": "ok",
        "Discourse": "ok",
        "Discord": "off",
    }
    assert "set META_ACCESS_TOKEN" in rows["Meta"].fixes[0]
    assert table_row(out, "GA4")[1:3] == ["off", "off"]


def test_a_malformed_sandbox_setting_is_one_error_row(capsys):
    code, out, rows = run_doctor({"SANDBOX": "sometimes"}, capsys)
    assert code == 1
    assert list(rows) == ["settings"]
    assert "SANDBOX='sometimes' is not valid" in rows["settings"].loads[0]


def test_a_slack_export_without_emails_is_a_warning_naming_the_fix(slack_export_2016, capsys):
    env = {"SLACK_EXPORT_PATH": str(slack_export_2016), "MEMBER_HASH_KEY": "a-member-hash-key-for-the-test"}
    code, out, rows = run_doctor(env, capsys)
    assert code == 0, out  # a warning does not stop the load
    slack = rows["Slack (export)"]
    assert slack.mode == "real" and slack.status == "warn"
    assert slack.loads[0].startswith(f"the export {slack_export_2016.name}: ")
    assert "no e-mails" in slack.loads[1] and "users:read.email" in slack.fixes[0]
    # the 2016 export ends long before the default history start: its messages would not load
    assert (
        slack.loads[2] == "no messages: the export ends on 2016-03-17, before HISTORY_START_DATE=2025-07-01"
    )
    assert slack.fixes[1].startswith("set HISTORY_START_DATE=2016-")
    assert table_row(out, "Slack (export)")[1:3] == ["real", "warn"]


def test_a_missing_slack_export_is_an_error_naming_the_setting(tmp_path, capsys):
    missing = tmp_path / "nowhere.zip"
    env = {"SLACK_EXPORT_PATH": str(missing), "MEMBER_HASH_KEY": "a-member-hash-key-for-the-test"}
    code, out, rows = run_doctor(env, capsys)
    assert code == 1
    assert rows["Slack (export)"].status == "error"
    assert f"SLACK_EXPORT_PATH='{missing}' does not exist" in rows["Slack (export)"].loads[0]


def test_a_malformed_brand_file_is_an_error_row_naming_the_key(slack_export_2016, tmp_path, capsys):
    brand = tmp_path / "brand.yml"
    brand.write_text("brand:\n  terms: acme\n")
    env = {
        "SLACK_EXPORT_PATH": str(slack_export_2016),
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-test",
        "BRAND_FILE": str(brand),
    }
    code, out, rows = run_doctor(env, capsys)
    assert code == 1, out
    assert rows["brand"].status == "error"
    assert f"{brand}: brand.terms is str 'acme', not a list" in rows["brand"].loads[0]
    assert table_row(out, "brand")[1:3] == ["real", "error"]


def test_real_sources_with_no_brand_file_warn_naming_each_unset_setting(slack_export_2016, tmp_path, capsys):
    env = {
        "SLACK_EXPORT_PATH": str(slack_export_2016),
        "MEMBER_HASH_KEY": "a-member-hash-key-for-the-test",
        "BRAND_FILE": str(tmp_path / "brand.yml"),
    }
    code, out, rows = run_doctor(env, capsys)
    assert code == 0, out  # unset brand settings do not stop the load: their figures are null
    brand = rows["brand"]
    assert brand.status == "warn"
    assert any("brand.terms is not set; branded search figures are null" in line for line in brand.loads)
    assert any("brand.domains is not set" in line for line in brand.loads)
    assert "copy brand.example.yml to brand.yml" in brand.fixes[0]
