"""The providers' own client libraries, pointed at the sandbox, parse its answers as the real APIs'.

Each test makes the calls our connector makes for the same source, through the provider's library
(google-analytics-data over REST, google-api-python-client from its bundled discovery document,
facebook-business, slack_sdk, pydiscourse), and checks what the library parsed against what our
connector parses from the same sandbox: if the sandbox drifted from the real wire format, the
library would fail or read other values. The sandbox is the session's small one (seed 42, "today"
2026-11-21, tests/sandbox/conftest.py).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import google.auth.transport.requests
import pyarrow as pa
import pytest
import requests
from google.auth import crypt, jwt
from google.oauth2 import service_account

from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID
from connectors.sandbox.brand import (
    SANDBOX_GSC_SITE_URL,
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
    SANDBOX_SLACK_BOT_TOKEN,
)
from connectors.sandbox.discourse_api import CHUNK_SIZE, SANDBOX_DISCOURSE_API_KEY

DAY = date(2026, 2, 4)  # a Wednesday with no planted event, well inside every source's history
FLIGHT_DAY = date(2026, 3, 4)  # inside the Meta flight: ads run and spend
GA4_AUDIENCE = "https://analyticsdata.googleapis.com/"
SEARCH_CONSOLE_AUDIENCE = "https://searchconsole.googleapis.com/"


def _run_report_url(sandbox) -> str:
    return f"{sandbox.ga4_base_url}/v1beta/properties/{SANDBOX_GA4_PROPERTY_ID}:runReport"


def _body(record) -> dict:
    return json.loads(record.body)


# --- GA4: google-analytics-data over REST ----------------------------------------------------------


@pytest.fixture
def ga4_library(sandbox, service_account_info):
    from google.analytics.data_v1beta import BetaAnalyticsDataClient
    from google.api_core.client_options import ClientOptions

    # Unscoped service-account credentials, as Google's samples make them: the client library then
    # signs its own JWT for the API's audience and never calls the token endpoint.
    credentials = service_account.Credentials.from_service_account_info(service_account_info)
    return BetaAnalyticsDataClient(
        credentials=credentials,
        transport="rest",
        client_options=ClientOptions(api_endpoint=sandbox.ga4_base_url),
    )


@pytest.fixture
def ga4_connector(sandbox, service_account_info):
    from connectors.ga4 import GA4Client, GA4Config

    config = GA4Config(
        property_id=SANDBOX_GA4_PROPERTY_ID,
        credentials_info=service_account_info,
        base_url=sandbox.ga4_base_url,
        timeout_seconds=30,
    )
    with GA4Client(config) as client:
        yield client


def test_ga4_client_library_reads_the_leads_and_sessions_reports_as_our_connector(
    sandbox, ga4_library, ga4_connector
):
    from google.analytics.data_v1beta.types import (
        DateRange,
        Dimension,
        Filter,
        FilterExpression,
        Metric,
        RunReportRequest,
    )

    from connectors.ga4 import SESSIONS_DIMENSIONS, SESSIONS_METRICS

    grants = len(sandbox.requests_to("/google/token"))
    reports = len(sandbox.requests_to(":runReport"))
    day = DAY.isoformat()
    leads = ga4_library.run_report(
        RunReportRequest(
            property=f"properties/{SANDBOX_GA4_PROPERTY_ID}",
            date_ranges=[DateRange(start_date=day, end_date=day)],
            dimensions=[
                Dimension(name=n)
                for n in (
                    "date",
                    "customEvent:how_heard",
                    "sessionSource",
                    "sessionMedium",
                    "sessionCampaignName",
                    "landingPagePlusQueryString",
                )
            ],
            metrics=[Metric(name="keyEvents")],
            dimension_filter=FilterExpression(
                filter=Filter(
                    field_name="eventName",
                    string_filter=Filter.StringFilter(
                        match_type=Filter.StringFilter.MatchType.EXACT, value="generate_lead"
                    ),
                )
            ),
            limit=100_000,
        )
    )
    sessions = ga4_library.run_report(
        RunReportRequest(
            property=f"properties/{SANDBOX_GA4_PROPERTY_ID}",
            date_ranges=[DateRange(start_date=day, end_date=day)],
            dimensions=[Dimension(name=n) for n in SESSIONS_DIMENSIONS],
            metrics=[Metric(name=n) for n in SESSIONS_METRICS],
            limit=100_000,
        )
    )
    # The library signed its own JWT (no token exchange) and sent the enum as a number.
    assert len(sandbox.requests_to("/google/token")) == grants
    sent = [_body(r) for r in sandbox.requests_to(":runReport")[reports:]]
    assert sent[0]["dimensionFilter"]["filter"]["stringFilter"]["matchType"] == 1

    ours_leads = pa.Table.from_batches([p.batch for p in ga4_connector.leads(DAY)])
    ours_sessions = pa.Table.from_batches([p.batch for p in ga4_connector.sessions(DAY)])
    assert leads.row_count == len(leads.rows) == ours_leads.num_rows > 0
    assert sessions.row_count == len(sessions.rows) == ours_sessions.num_rows > 100
    assert [h.name for h in sessions.metric_headers] == list(SESSIONS_METRICS)
    lead_total = sum(float(r.metric_values[0].value) for r in leads.rows)
    assert lead_total == sum(ours_leads.column("leads").to_pylist())
    sessions_total = sum(int(r.metric_values[0].value) for r in sessions.rows)
    assert sessions_total == sum(ours_sessions.column("sessions").to_pylist())
    # Row for row: the first row the library parsed is a row of ours, with the same figures.
    first = sessions.rows[0]
    key_columns = [
        "session_source",
        "session_medium",
        "session_campaign_name",
        "landing_page_plus_query_string",
        "device_category",
    ]
    (match,) = [
        r
        for r in ours_sessions.to_pylist()
        if [r[c] for c in key_columns] == [v.value for v in first.dimension_values[1:]]
    ]
    assert match["sessions"] == int(first.metric_values[0].value)
    assert match["total_users"] == int(first.metric_values[3].value)


def _jwt_headers(credentials) -> dict[str, str]:
    credentials.refresh(google.auth.transport.requests.Request())
    headers: dict[str, str] = {}
    credentials.apply(headers)
    return headers


def _signed(info: dict, **claims) -> dict[str, str]:
    """Authorization header of a JWT the service account signs with `claims` over the defaults."""
    now = int(time.time())
    email = info["client_email"]
    payload = {"iss": email, "sub": email, "aud": GA4_AUDIENCE, "iat": now, "exp": now + 3600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}  # a claim given as None is left out
    token = jwt.encode(crypt.RSASigner.from_service_account_info(info), payload).decode()
    return {"authorization": f"Bearer {token}"}


def test_google_apis_take_a_self_signed_jwt_for_their_own_audience_only(sandbox, service_account_info):
    info = service_account_info
    body = {
        "dateRanges": [{"startDate": DAY.isoformat(), "endDate": DAY.isoformat()}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": "sessions"}],
        # CONTAINS (4, here as a numeric string) "mob": the mobile sessions only
        "dimensionFilter": {
            "filter": {"fieldName": "deviceCategory", "stringFilter": {"matchType": "4", "value": "mob"}}
        },
    }
    site = "sc-domain%3Anorthwind-analytics.com"
    gsc_url = f"{sandbox.base_url}/gsc/webmasters/v3/sites/{site}/searchAnalytics/query"
    gsc_body = {"startDate": DAY.isoformat(), "endDate": DAY.isoformat()}
    grants = len(sandbox.requests_to("/google/token"))

    def ga4(headers: dict[str, str], payload: dict = body) -> requests.Response:
        return requests.post(_run_report_url(sandbox), json=payload, headers=headers, timeout=30)

    def gsc(headers: dict[str, str]) -> requests.Response:
        return requests.post(gsc_url, json=gsc_body, headers=headers, timeout=30)

    ga4_jwt = _jwt_headers(jwt.Credentials.from_service_account_info(info, audience=GA4_AUDIENCE))
    own = ga4(ga4_jwt)
    assert own.status_code == 200, own.text
    mobile = int(own.json()["rows"][0]["metricValues"][0]["value"])
    everyone = ga4(ga4_jwt, {k: v for k, v in body.items() if k != "dimensionFilter"})
    assert int(everyone.json()["rows"][0]["metricValues"][0]["value"]) > mobile > 0
    # Without aud, a scope claim that grants the API will do (google-auth's scoped self-signed JWT).
    scoped = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/analytics.readonly"]
    ).with_always_use_jwt_access(True)
    assert ga4(_jwt_headers(scoped)).status_code == 200
    gsc_jwt = _jwt_headers(jwt.Credentials.from_service_account_info(info, audience=SEARCH_CONSOLE_AUDIENCE))
    assert gsc(gsc_jwt).status_code == 200 and gsc(gsc_jwt).json()["rows"][0]["clicks"] > 0
    assert len(sandbox.requests_to("/google/token")) == grants  # no token exchange at all

    refused = {
        "another API's audience": ga4(
            _jwt_headers(
                jwt.Credentials.from_service_account_info(info, audience="https://pubsub.googleapis.com/")
            )
        ),
        "GA4's JWT at Search Console": gsc(ga4_jwt),
        "expired": ga4(_signed(info, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "living over an hour": ga4(_signed(info, exp=int(time.time()) + 7200)),
        "not a service account": ga4(_signed(info, iss="someone@example.com", sub="someone@example.com")),
        "a scope of another API": ga4(
            _signed(info, aud=None, scope="https://www.googleapis.com/auth/webmasters.readonly")
        ),
    }
    for case, answer in refused.items():
        assert answer.status_code == 401, case
        assert answer.json()["error"]["status"] == "UNAUTHENTICATED", case


def test_ga4_refuses_an_enum_number_it_does_not_define(sandbox, service_account_info):
    headers = _jwt_headers(
        jwt.Credentials.from_service_account_info(service_account_info, audience=GA4_AUDIENCE)
    )
    body = {
        "dateRanges": [{"startDate": DAY.isoformat(), "endDate": DAY.isoformat()}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": "sessions"}],
        "dimensionFilter": {
            "filter": {"fieldName": "deviceCategory", "stringFilter": {"matchType": 42, "value": "x"}}
        },
    }
    answer = requests.post(
        _run_report_url(sandbox),
        json=body,
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 400
    assert "match_type" in answer.json()["error"]["message"] and "42" in answer.json()["error"]["message"]


# --- Search Console: google-api-python-client, discovery document bundled in the library ---------


def test_search_console_client_library_reads_the_query_rows_as_our_connector(sandbox, service_account_info):
    from googleapiclient.discovery import build

    from connectors.gsc import GSCClient, GSCConfig

    scope = "https://www.googleapis.com/auth/webmasters.readonly"
    credentials = service_account.Credentials.from_service_account_info(service_account_info, scopes=[scope])
    service = build(
        "searchconsole",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{sandbox.base_url}/gsc/"},
    )
    body = {
        "startDate": DAY.isoformat(),
        "endDate": DAY.isoformat(),
        "dimensions": ["DATE", "QUERY", "PAGE", "DEVICE", "COUNTRY"],
        "type": "WEB",
        "dataState": "FINAL",
        "rowLimit": 25_000,
    }
    answer = service.searchanalytics().query(siteUrl=SANDBOX_GSC_SITE_URL, body=body).execute()
    totals = (
        service.searchanalytics()
        .query(siteUrl=SANDBOX_GSC_SITE_URL, body={**body, "dimensions": ["DATE"]})
        .execute()
    )
    # searchconsole v1 spells its enums NOT_EQUALS (webmasters v3: notEquals): both are taken.
    not_mobile = (
        service.searchanalytics()
        .query(
            siteUrl=SANDBOX_GSC_SITE_URL,
            body={
                **body,
                "dimensionFilterGroups": [
                    {
                        "groupType": "AND",
                        "filters": [
                            {"dimension": "DEVICE", "operator": "NOT_EQUALS", "expression": "MOBILE"}
                        ],
                    }
                ],
            },
        )
        .execute()
    )
    service.close()

    config = GSCConfig(
        site_url=SANDBOX_GSC_SITE_URL,
        credentials_info=service_account_info,
        base_url=f"{sandbox.base_url}/gsc",
        timeout_seconds=30,
    )
    with GSCClient(config) as client:
        ours = pa.Table.from_batches([p.batch for p in client.queries(DAY)])
        our_totals = pa.Table.from_batches([p.batch for p in client.totals(DAY)])
    rows = answer["rows"]
    assert len(rows) == ours.num_rows > 0
    assert answer["responseAggregationType"] == "BY_PAGE"
    assert sum(r["clicks"] for r in rows) == sum(ours.column("clicks").to_pylist())
    assert sum(r["impressions"] for r in rows) == sum(ours.column("impressions").to_pylist())
    first = rows[0]
    (match,) = [
        r for r in ours.to_pylist() if [r["query"], r["page"], r["device"], r["country"]] == first["keys"][1:]
    ]
    assert (match["clicks"], match["impressions"]) == (first["clicks"], first["impressions"])
    assert match["position"] == pytest.approx(first["position"])
    devices = {r["keys"][3] for r in not_mobile["rows"]}
    assert "MOBILE" not in devices and "DESKTOP" in devices
    assert len(not_mobile["rows"]) == sum(r["device"] != "MOBILE" for r in ours.to_pylist()) < len(rows)
    # The daily totals hold the anonymized queries too: more clicks than the query rows.
    (day_total,) = totals["rows"]
    assert day_total["keys"] == [DAY.isoformat()]
    assert day_total["clicks"] == our_totals.column("clicks")[0].as_py() > sum(r["clicks"] for r in rows)


# --- Meta: facebook-business ------------------------------------------------------------------------


@pytest.fixture
def meta_api(sandbox):
    from facebook_business.api import FacebookAdsApi, FacebookSession

    session = FacebookSession(access_token=SANDBOX_META_ACCESS_TOKEN)
    # The SDK's documented seam: FacebookAdsApi(session) calls the Graph API at session.GRAPH.
    session.GRAPH = f"{sandbox.base_url}/meta"
    return FacebookAdsApi(session)


@pytest.fixture
def meta_connector(sandbox):
    from connectors.meta import MetaClient, MetaConfig

    config = MetaConfig(
        access_token=SANDBOX_META_ACCESS_TOKEN,
        ad_account_id=f"act_{SANDBOX_META_AD_ACCOUNT_ID}",
        pixel_id=SANDBOX_META_PIXEL_ID,
        base_url=f"{sandbox.base_url}/meta",
        timeout_seconds=30,
    )
    client = MetaClient(config)
    yield client
    client.close()


def test_meta_business_sdk_reads_ad_insights_and_pixel_stats_as_our_connector(
    sandbox, meta_api, meta_connector
):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adspixel import AdsPixel

    from connectors.meta import INSIGHTS_FIELDS

    since, until = FLIGHT_DAY, FLIGHT_DAY + timedelta(days=1)
    account = AdAccount(f"act_{SANDBOX_META_AD_ACCOUNT_ID}", api=meta_api)
    insights = list(
        account.get_insights(
            fields=list(INSIGHTS_FIELDS),
            params={
                "level": "ad",
                "time_increment": "1",
                "time_range": {"since": since.isoformat(), "until": until.isoformat()},
                "limit": 7,  # several pages: the SDK follows the cursors
            },
        )
    )
    ours = pa.Table.from_batches(list(meta_connector.insights(since, until)))
    assert len(insights) == ours.num_rows > 7
    assert sum(float(row["spend"]) for row in insights) == pytest.approx(
        sum(ours.column("spend").to_pylist())
    )
    assert sum(int(row["impressions"]) for row in insights) == sum(ours.column("impressions").to_pylist())
    first = insights[0]
    (match,) = [
        r
        for r in ours.to_pylist()
        if r["ad_id"] == first["ad_id"] and r["date"].isoformat() == first["date_start"]
    ]
    assert match["clicks"] == int(first["clicks"])
    assert json.loads(match["actions"]) == [dict(a) for a in first["actions"]]

    start = datetime(FLIGHT_DAY.year, FLIGHT_DAY.month, FLIGHT_DAY.day, tzinfo=UTC)
    stats = list(
        AdsPixel(SANDBOX_META_PIXEL_ID, api=meta_api).get_stats(
            params={
                "aggregation": "event",
                "start_time": int(start.timestamp()),
                "end_time": int((start + timedelta(days=1)).timestamp()),
            }
        )
    )
    our_pixel = pa.Table.from_batches(list(meta_connector.pixel_events(FLIGHT_DAY)))
    assert 0 < len(stats) <= 24
    assert sum(e["count"] for bucket in stats for e in bucket["data"]) == sum(
        our_pixel.column("count").to_pylist()
    )


def test_meta_takes_fields_as_a_json_array(sandbox, meta_api):
    # api.call JSON-encodes a list parameter: fields=["spend","ad_id"], as Graph API clients may send it.
    response = meta_api.call(
        "GET",
        f"{sandbox.base_url}/meta/v25.0/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
        params={
            "fields": ["spend", "ad_id"],
            "level": "ad",
            "time_increment": "1",
            "time_range": {"since": FLIGHT_DAY.isoformat(), "until": FLIGHT_DAY.isoformat()},
        },
    )
    assert sandbox.requests_to("insights")[-1].path.count("fields=%5B%22spend%22%2C%22ad_id%22%5D") == 1
    rows = response.json()["data"]
    assert rows and {"spend", "ad_id", "date_start", "date_stop"} == set(rows[0])
    account = meta_api.call(
        "GET",
        f"{sandbox.base_url}/meta/v25.0/act_{SANDBOX_META_AD_ACCOUNT_ID}",
        params={"fields": ["name", "currency"]},
    ).json()
    assert account == {
        "id": f"act_{SANDBOX_META_AD_ACCOUNT_ID}",
        "name": "Northwind Analytics",
        "currency": "EUR",
    }


# --- Slack: slack_sdk -------------------------------------------------------------------------------


def test_slack_sdk_reads_channels_history_replies_and_users_as_our_connector(sandbox):
    from slack_sdk import WebClient

    from connectors.slack import MESSAGES_SCHEMA, SlackClient, SlackConfig

    web = WebClient(token=SANDBOX_SLACK_BOT_TOKEN, base_url=f"{sandbox.base_url}/slack/")
    channels = [
        c
        for page in web.conversations_list(types="public_channel,private_channel", limit=3)
        for c in page["channels"]
    ]
    members = [u for page in web.users_list(limit=50) for u in page["members"]]
    start = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp())
    loaded: set[tuple[str, str]] = set()
    replies_total = 0
    for channel in channels:
        history = web.conversations_history(
            channel=channel["id"], oldest=f"{start - 1}.999999", latest=f"{start + 86400}.000000", limit=5
        )
        for page in history:
            for message in page["messages"]:
                if message.get("thread_ts", message["ts"]) != message["ts"]:
                    continue  # a reply broadcast to the channel: it comes with its thread
                loaded.add((channel["id"], message["ts"]))
                if message.get("reply_count"):
                    thread = web.conversations_replies(channel=channel["id"], ts=message["ts"], limit=200)
                    replies = [m for m in thread["messages"] if m["ts"] != message["ts"]]
                    assert len(replies) == message["reply_count"]
                    replies_total += message["reply_count"]
                    loaded.update((channel["id"], m["ts"]) for m in replies)

    with SlackClient(
        SlackConfig(token=SANDBOX_SLACK_BOT_TOKEN, base_url=f"{sandbox.base_url}/slack")
    ) as ours:
        our_channels = pa.Table.from_batches(list(ours.channels()))
        our_users = pa.Table.from_batches(list(ours.users()))
        our_messages = pa.Table.from_batches(
            list(ours.messages(DAY, our_channels.column("channel_id").to_pylist())), schema=MESSAGES_SCHEMA
        )
    assert sorted(c["id"] for c in channels) == sorted(our_channels.column("channel_id").to_pylist())
    assert len(channels) == 7
    assert [u["id"] for u in members] == our_users.column("user_id").to_pylist()
    assert [u["profile"].get("email") for u in members] == our_users.column("email").to_pylist()
    our_keys = set(
        zip(our_messages.column("channel_id").to_pylist(), our_messages.column("ts").to_pylist(), strict=True)
    )
    assert loaded == our_keys and len(loaded) > 10
    assert replies_total > 0


# --- Discourse: pydiscourse -------------------------------------------------------------------------


def test_pydiscourse_reads_latest_topics_posts_categories_and_users_as_our_connector(sandbox):
    from pydiscourse import DiscourseClient as PyDiscourse

    from connectors.discourse import DiscourseClient, DiscourseConfig

    forum = PyDiscourse(
        f"{sandbox.base_url}/discourse", api_username="system", api_key=SANDBOX_DISCOURSE_API_KEY
    )
    latest = forum.latest_topics(order="activity")
    topics = latest["topic_list"]["topics"]
    assert topics and "more_topics_url" in latest["topic_list"]
    longest = max(topics, key=lambda t: t["posts_count"])
    topic = forum.topic(longest["slug"], longest["id"])
    stream = topic["post_stream"]["stream"]
    assert len(stream) == longest["posts_count"]
    # /t/{id}/posts.json without post_ids[]: the first chunk, as /t/{id}.json holds it
    first_chunk = forum.topic_posts(longest["id"])["post_stream"]["posts"]
    assert [p["id"] for p in first_chunk] == stream[:CHUNK_SIZE]
    assert [p["id"] for p in first_chunk] == [p["id"] for p in topic["post_stream"]["posts"]]
    picked = forum.topic_posts(longest["id"], **{"post_ids[]": stream[-2:]})["post_stream"]["posts"]
    assert [p["id"] for p in picked] == stream[-2:]
    categories = forum.categories()
    users, page = [], 1
    while chunk := forum.list_users("active", page=page, show_emails="true"):
        users += chunk
        page += 1
    # A post with likes says so in actions_summary (id 2, the like), with its count for a staff key.
    most_liked = max(topics, key=lambda t: t["like_count"])
    posts = forum.topic(most_liked["slug"], most_liked["id"])["post_stream"]["posts"]
    liked = next(p for p in posts if any(a["id"] == 2 for a in p["actions_summary"]))
    answer = forum.post_action_users(liked["id"], post_action_type_id=2)
    likers = answer["post_action_users"]
    assert len(likers) == answer["total_rows_post_action_users"] > 0
    # the likes its author received, newest first (/user_actions.json?filter=2)
    received = forum.user_actions(liked["username"], 2)
    assert received and {a["target_username"] for a in received} == {liked["username"]}

    config = DiscourseConfig(
        url=f"{sandbox.base_url}/discourse", api_key=SANDBOX_DISCOURSE_API_KEY, timeout_seconds=30
    )
    with DiscourseClient(config) as ours:
        our_categories = ours.categories()
        our_users = pa.Table.from_batches(list(ours.users()))
        _, posts = ours.topic(longest["id"])
        our_posts = [p for chunk in posts for p in chunk]
        our_likers = ours.post_likers(liked["id"])
        our_received = ours.likes_received(liked["username"])
        our_latest = next(ours.latest_pages("activity"))
    top_level = [c["id"] for c in categories]
    assert set(top_level) <= set(our_categories.column("category_id").to_pylist())
    assert len(users) == our_users.num_rows > 100
    assert sorted(p["id"] for p in our_posts) == sorted(stream)
    assert sorted(u["id"] for u in likers) == sorted(u["id"] for u in our_likers)
    assert [(a["post_id"], a["acting_user_id"]) for a in received] == [
        (a["post_id"], a["acting_user_id"]) for a in our_received
    ]
    # Our connector asks for larger pages; the library's default page is their head.
    assert [t["id"] for t in topics] == [t["id"] for t in our_latest][: len(topics)]


# --- errors -----------------------------------------------------------------------------------------


def test_each_library_reads_the_sandbox_errors_as_the_apis_own(sandbox, ga4_library, service_account_info):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.api import FacebookAdsApi, FacebookSession
    from facebook_business.exceptions import FacebookRequestError
    from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest
    from google.api_core.exceptions import BadRequest
    from googleapiclient.discovery import build
    from googleapiclient.errors import HttpError
    from pydiscourse import DiscourseClient as PyDiscourse
    from pydiscourse.exceptions import DiscourseClientError
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_USER_KEY

    with pytest.raises(BadRequest, match="Field pageViews is not a valid dimension"):
        ga4_library.run_report(
            RunReportRequest(
                property=f"properties/{SANDBOX_GA4_PROPERTY_ID}",
                date_ranges=[DateRange(start_date=DAY.isoformat(), end_date=DAY.isoformat())],
                dimensions=[Dimension(name="pageViews")],
                metrics=[Metric(name="sessions")],
            )
        )

    credentials = service_account.Credentials.from_service_account_info(
        service_account_info, scopes=["https://www.googleapis.com/auth/webmasters.readonly"]
    )
    service = build(
        "searchconsole",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": f"{sandbox.base_url}/gsc/"},
    )
    body = {"startDate": DAY.isoformat(), "endDate": DAY.isoformat()}
    with pytest.raises(HttpError) as refused:
        service.searchanalytics().query(siteUrl="https://not-ours.example/", body=body).execute()
    service.close()
    assert refused.value.status_code == 403
    assert refused.value.error_details[0]["reason"] == "forbidden"

    session = FacebookSession(access_token="not-a-token")
    session.GRAPH = f"{sandbox.base_url}/meta"
    account = AdAccount(f"act_{SANDBOX_META_AD_ACCOUNT_ID}", api=FacebookAdsApi(session))
    with pytest.raises(FacebookRequestError) as meta_error:
        account.api_get(fields=["name"])
    assert (meta_error.value.api_error_code(), meta_error.value.api_error_type()) == (190, "OAuthException")

    with pytest.raises(SlackApiError) as slack_error:
        WebClient(token="xoxb-not-a-token", base_url=f"{sandbox.base_url}/slack/").users_list()
    assert slack_error.value.response["error"] == "invalid_auth"

    forum = PyDiscourse(
        f"{sandbox.base_url}/discourse", api_username="system", api_key=SANDBOX_DISCOURSE_USER_KEY
    )
    with pytest.raises(DiscourseClientError, match="not permitted") as discourse_error:
        forum.list_users("active")
    assert discourse_error.value.response.status_code == 403
