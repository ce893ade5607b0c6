"""The brand file (orchestration/brand.py): which file applies, its validation, and what dbt makes of it.

The dbt builds run on a DuckDB file whose raw tables hold small rows in the sources' real formats
(Slack users.list members through the connector's `user_row`, Discourse's admin users list
columns, Search Console query rows), with the vars of a brand file written here, handed to dbt as
orchestration hands them (JSON in DBT_BRAND_VARS, read by macros/brand_var.sql when dbt compiles a
node): staff recognised without e-mails, and branded figures null (not 0) when brand.terms is unset.
So the builds run on the session's parsed manifest (`dbt_invoke`): a brand passed as --vars would
make dbt parse the whole project again for each build (~5 s of CPU each).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from connectors.slack import USERS_SCHEMA, user_row
from orchestration.brand import (
    BRAND_VARS_ENV,
    SANDBOX_BRAND_FILE,
    BrandError,
    brand_file,
    current_brand,
    load_brand,
)
from orchestration.sources import create_missing_raw_tables

# A brand file of a real brand that sets staff but no brand terms (and no site domains).
STAFF_ONLY_BRAND = """
brand:
  name: Acme Analytics
staff:
  email_domains: [acme.example]
  ids:
    slack: [U0STAFF04]
    discourse: ['Grace_Acme', '7']
communities:
  names: {slack: Acme Community}
"""

# users.list members as Slack sends them: nobody but U0MAIL005 shares an e-mail (no users:read.email)
SLACK_MEMBERS = [
    {"id": "U0ADMIN01", "team_id": "T0ACME", "name": "ada", "deleted": False, "real_name": "Ada",
     "tz": "Europe/London", "profile": {"real_name": "Ada", "display_name": "ada"},
     "is_admin": True, "is_owner": False, "is_primary_owner": False, "is_bot": False},
    {"id": "U0OWNER02", "team_id": "T0ACME", "name": "olu", "deleted": False, "real_name": "Olu",
     "tz": "Africa/Lagos", "profile": {"real_name": "Olu", "display_name": "olu"},
     "is_admin": False, "is_owner": True, "is_primary_owner": True, "is_bot": False},
    {"id": "U0MEMBR03", "team_id": "T0ACME", "name": "mia", "deleted": False, "real_name": "Mia",
     "tz": "Europe/Berlin", "profile": {"real_name": "Mia", "display_name": "mia"},
     "is_admin": False, "is_owner": False, "is_bot": False},
    {"id": "U0STAFF04", "team_id": "T0ACME", "name": "sam", "deleted": False, "real_name": "Sam",
     "tz": "America/New_York", "profile": {"real_name": "Sam", "display_name": "sam"},
     "is_admin": False, "is_owner": False, "is_bot": False},
    {"id": "U0MAIL005", "team_id": "T0ACME", "name": "eve", "deleted": False, "real_name": "Eve",
     "tz": "America/Chicago", "profile": {"real_name": "Eve", "email": "eve@Acme.example"},
     "is_admin": False, "is_owner": False, "is_bot": False},
    *({"id": f"U0REPLY0{i}", "team_id": "T0ACME", "name": f"r{i}", "deleted": False, "real_name": f"R{i}",
       "tz": "UTC", "profile": {"real_name": f"R{i}"}, "is_admin": False, "is_owner": False, "is_bot": False}
      for i in range(1, 4)),
]  # fmt: skip
SLACK_STAFF = {
    "U0ADMIN01": True, "U0OWNER02": True, "U0MEMBR03": False, "U0STAFF04": True, "U0MAIL005": True,
    "U0REPLY01": False, "U0REPLY02": False, "U0REPLY03": False,
}  # fmt: skip
# The admin (no e-mail) and a plain member each start 7 threads that 5 different others answer: the
# same love (21) and reach (5), above the advocate thresholds; only the plain member may be an advocate.
THREAD_STARTERS = ("U0ADMIN01", "U0MEMBR03")
REPLIERS = ("U0REPLY01", "U0REPLY02", "U0REPLY03", "U0OWNER02", "U0MAIL005")

# /admin/users/list/active.json users as the connector lands them (no e-mails: show_emails refused)
DISCOURSE_USERS = [
    # (user_id, username, admin, moderator, staff?)
    (3, "mod_mo", False, True, True),
    (4, "root_ra", True, False, True),
    (5, "plain_pat", False, False, False),
    (6, "grace_acme", False, False, True),  # listed by username, any case
    (7, "quinn", False, False, True),  # listed by user id
]

D1 = dt.date(2026, 3, 2)
GSC_QUERIES = [("acme analytics", 40), ("akme pricing", 10), ("dark social measurement", 50)]


def _write_raw(conn: duckdb.DuckDBPyConnection) -> None:
    create_missing_raw_tables(conn)
    users = pa.Table.from_pylist([user_row(m) for m in SLACK_MEMBERS], schema=USERS_SCHEMA)
    conn.register("slack_users", users)
    conn.execute("insert into raw_slack.users by name select *, 'api' as _source from slack_users")
    conn.execute(
        "insert into raw_slack.channels by name select 'C0GENERAL' as channel_id, 'general' as name, "
        "false as is_private, false as is_archived, 'api' as _source"
    )
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).timestamp()
    for s, starter in enumerate(THREAD_STARTERS):
        for n in range(7):
            parent = f"{start + s * 3600 + n * 60:.6f}"
            reply = f"{start + s * 3600 + n * 60 + 30:.6f}"
            for ts, user, reply_count in ((parent, starter, 1), (reply, REPLIERS[n % 5], 0)):
                conn.execute(
                    "insert into raw_slack.messages by name select ? as date, 'C0GENERAL' as channel_id, "
                    "? as ts, ? as thread_ts, ? as user_id, 'a question' as text, ? as reply_count, "
                    "? as latest_reply, 0 as files_count, 'api' as _source, "
                    "timestamp '2026-03-03 00:00:00' as _loaded_at",
                    [D1, ts, parent, user, reply_count, reply if ts == parent else None],
                )
    for user_id, username, admin, moderator, _ in DISCOURSE_USERS:
        conn.execute(
            "insert into raw_discourse.users by name select ? as user_id, ? as username, ? as admin, "
            "? as moderator, 1 as trust_level, false as staged",
            [user_id, username, admin, moderator],
        )
    for query, clicks in GSC_QUERIES:
        conn.execute(
            "insert into raw_gsc.queries_daily by name select ? as date, ? as query, "
            "'https://acme.example/' as page, 'DESKTOP' as device, 'usa' as country, ? as clicks, "
            "? * 10 as impressions, timestamp '2026-03-04 00:00:00' as _loaded_at",
            [D1, query, clicks, clicks],
        )
    conn.execute(
        "insert into raw_gsc.totals_daily by name select ? as date, 120 as clicks, 1000 as impressions, "
        "timestamp '2026-03-04 00:00:00' as _loaded_at",
        [D1],
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, dbt_invoke):
    """One dbt run over the crafted raw tables with STAFF_ONLY_BRAND's vars, then the search models
    again with brand terms set: (warehouse, the brand file's Brand)."""
    tmp = tmp_path_factory.mktemp("brand")
    path = tmp / "brand.yml"
    path.write_text(STAFF_ONLY_BRAND)
    brand = load_brand(path)
    warehouse = tmp / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        _write_raw(conn)
    select = ["--select", "+stg_discourse__users", "+mart_member_engagement", "+mart_branded_search_daily"]
    # build, not run: the generic seeds upstream (slack_message_subtypes) are loaded too; the data
    # tests are left to the tests below, which assert on the figures themselves.
    no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
    dbt_invoke(
        ["build", *select, *no_tests],
        tmp,
        warehouse,
        MEMBER_HASH_KEY="a-key-for-the-brand-test",
        **{BRAND_VARS_ENV: json.dumps(brand.dbt_vars())},
    )
    return warehouse, brand


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    # dbt-duckdb keeps its in-process connection open (read-write): open it the same way
    with duckdb.connect(str(warehouse)) as conn:
        return conn.execute(sql).fetchall()


# --- which file applies ------------------------------------------------------------------------


def test_the_demo_uses_the_sandbox_brand_and_real_sources_the_users_file(tmp_path: Path) -> None:
    users = tmp_path / "mine.yml"
    users.write_text(STAFF_ONLY_BRAND)
    assert current_brand({"BRAND_FILE": str(users)}).path == SANDBOX_BRAND_FILE
    real = {"SLACK_EXPORT_PATH": str(tmp_path / "export.zip"), "BRAND_FILE": str(users)}
    assert current_brand(real).path == users
    assert current_brand(real).community_names == {"slack": "Acme Community"}
    assert brand_file(False, {}).name == "brand.yml"


def test_with_real_sources_and_no_brand_file_nothing_of_the_sandbox_brand_applies(tmp_path: Path) -> None:
    real = {"SLACK_EXPORT_PATH": str(tmp_path / "export.zip"), "BRAND_FILE": str(tmp_path / "absent.yml")}
    brand = current_brand(real)
    assert not brand.found
    values = brand.dbt_vars()
    assert values["brand_terms"] == [] and values["brand_domains"] == [] and values["community_names"] == {}
    assert values["employee_email_domains"] == [] and values["space_interests"] == []
    assert "northwind" not in json.dumps(values).lower()
    assert any("absent.yml: not found" in line for line in brand.warnings())


def test_the_sandbox_brand_file_holds_what_the_sandbox_serves() -> None:
    from connectors.sandbox import brand as sandbox

    values = load_brand(SANDBOX_BRAND_FILE).dbt_vars()
    assert set(values["brand_terms"]) == set(sandbox.BRAND_TERMS)
    assert values["employee_email_domains"] == list(sandbox.EMPLOYEE_EMAIL_DOMAINS)
    assert sandbox.BRAND_DOMAIN in values["brand_domains"]
    assert values["community_domains"] == [sandbox.COMMUNITY_DOMAIN]
    assert load_brand(SANDBOX_BRAND_FILE).warnings() == []


# --- malformed files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ("brand:\n  terms: acme\n", "brand.terms", "write a list"),
        ("brand:\n  trems: [acme]\n", "brand.trems", "use one of name, terms"),
        ("brand:\n  patterns: ['acm(e']\n", "brand.patterns[0]", "fix or remove it"),
        ("staff:\n  email_domains: ['@acme.example']\n", "staff.email_domains[0]", "bare domain"),
        ("staff:\n  ids: {slak: [U1]}\n", "staff.ids.slak", "use slack, discourse, discord"),
        ("communities:\n  discord_channels: {general: {}}\n", "discord_channels.general", "channel's id"),
        ("brand:\n  name: acme\n   terms: [acme]\n", "not valid YAML at line 3", "fix the file's syntax"),
    ],
)  # fmt: skip
def test_a_malformed_brand_file_fails_naming_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, key: str, fix: str
) -> None:
    path = tmp_path / "brand.yml"
    path.write_text(text)
    with pytest.raises(BrandError) as caught:
        load_brand(path)
    message = str(caught.value)
    assert str(path) in message and key in message and fix in message, message


# --- what dbt makes of it ----------------------------------------------------------------------


def test_a_brand_file_without_terms_warns_naming_the_setting(built) -> None:
    _, brand = built
    assert "brand.yml: brand.terms is not set; branded search figures are null" in "\n".join(brand.warnings())
    assert any(line.startswith("brand.yml: brand.domains is not set") for line in brand.warnings())
    # staff are set: no warning about them
    assert not any("staff.email_domains" in line for line in brand.warnings())


def test_without_brand_terms_branded_figures_are_null_not_zero(built) -> None:
    warehouse, _ = built
    rows = _rows(
        warehouse,
        "select branded_clicks, nonbranded_clicks, branded_click_share, anonymized_clicks "
        f"from marts.mart_branded_search_daily where \"date\" = date '{D1}'",
    )
    # the anonymized clicks need no brand: 120 total - 100 in query rows
    assert rows == [(None, None, None, 20)]
    assert _rows(
        warehouse, "select count(*) from intermediate.int_search_queries_branded where is_branded is not null"
    ) == [(0,)]


def test_with_brand_terms_the_same_rows_give_branded_figures(built, tmp_path: Path, dbt_invoke) -> None:
    warehouse, _ = built
    path = tmp_path / "brand.yml"
    path.write_text("brand:\n  terms: [acme]\n  patterns: ['a[ck]me']\n")
    values = json.dumps(load_brand(path).dbt_vars())
    select = ["--select", "int_search_queries_branded", "mart_branded_search_daily"]
    dbt_invoke(["run", *select], tmp_path, warehouse, **{BRAND_VARS_ENV: values})
    rows = _rows(
        warehouse,
        "select branded_clicks, nonbranded_clicks from marts.mart_branded_search_daily "
        f"where \"date\" = date '{D1}'",
    )
    assert rows == [(50, 50)]


def test_slack_admins_owners_and_listed_ids_are_staff_without_an_email(built) -> None:
    warehouse, _ = built
    staff = dict(_rows(warehouse, "select user_id, is_employee from staging.stg_slack__users"))
    assert staff == SLACK_STAFF
    assert _rows(warehouse, "select count(*) from staging.stg_slack__users where email is not null") == [(1,)]


def test_discourse_admins_moderators_and_listed_users_are_staff(built) -> None:
    warehouse, _ = built
    staff = dict(_rows(warehouse, "select user_id, is_employee from staging.stg_discourse__users"))
    assert staff == {user_id: is_staff for user_id, _, _, _, is_staff in DISCOURSE_USERS}


def test_a_slack_admin_without_an_email_is_never_an_advocate(built) -> None:
    warehouse, _ = built
    levels = _rows(
        warehouse,
        "select is_employee, love, reach, level from marts.mart_member_engagement where thread_starts = 7 "
        "order by is_employee",
    )
    # same activity: the plain member is the advocate, the admin (staff) only a contributor
    assert levels == [(False, 21.0, 5, "1_advocate"), (True, 21.0, 5, "2_contributor")]
