"""The Meta connector against the sandbox's Marketing API on loopback: paging, async, every fault."""

from __future__ import annotations

import logging
from datetime import date

import pyarrow as pa
import pytest

from connectors.http import ApiError, RetryPolicy
from connectors.meta import (
    INSIGHTS_SCHEMA,
    PIXEL_SCHEMA,
    MetaClient,
    MetaConfig,
    MetaConfigError,
    MetaTokenError,
)
from connectors.sandbox.brand import (
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
)
from connectors.sandbox.meta import insights_day, pixel_day
from connectors.sandbox.meta_api import expired_token_body, throttle_fault

FLIGHT_DAY = date(2026, 3, 4)
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total_seconds=10)


@pytest.fixture
def make_meta(sandbox):
    clients = []

    def make(policy: RetryPolicy = FAST, sleep=None, **overrides) -> MetaClient:
        settings = dict(
            access_token=SANDBOX_META_ACCESS_TOKEN,
            ad_account_id=f"act_{SANDBOX_META_AD_ACCOUNT_ID}",
            pixel_id=SANDBOX_META_PIXEL_ID,
            base_url=f"{sandbox.base_url}/meta",
            page_size=5,
            timeout_seconds=5,
            async_poll_seconds=0,
        )
        settings.update(overrides)
        kwargs = {"sleep": sleep} if sleep is not None else {}
        client = MetaClient(MetaConfig(**settings), policy=policy, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _table(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=INSIGHTS_SCHEMA)


def _expected(sandbox, day: date) -> int:
    return len(insights_day(sandbox.seed, sandbox.scale, day))


# --- settings ------------------------------------------------------------------------------------


def test_account_id_accepts_act_prefix_and_explains_where_to_find_it():
    config = MetaConfig(access_token="t", ad_account_id="act_123", pixel_id="456")
    assert config.ad_account_id == "123"
    with pytest.raises(MetaConfigError, match="META_AD_ACCOUNT_ID.*Ads Manager"):
        MetaConfig(access_token="t", ad_account_id="acct-12x")
    with pytest.raises(MetaConfigError, match="META_AD_ACCOUNT_ID is not set"):
        MetaConfig(access_token="t", ad_account_id="")
    with pytest.raises(MetaConfigError, match="META_PIXEL_ID.*Events Manager"):
        MetaConfig(access_token="t", ad_account_id="1", pixel_id="px-1")
    with pytest.raises(MetaConfigError, match="META_ACCESS_TOKEN is not set.*long-lived"):
        MetaConfig(access_token="", ad_account_id="1")
    with pytest.raises(MetaConfigError, match="META_API_VERSION"):
        MetaConfig(access_token="t", ad_account_id="1", api_version="25")
    assert "secret-value" not in repr(MetaConfig(access_token="secret-value", ad_account_id="1"))


def test_from_env_reads_every_setting():
    config = MetaConfig.from_env(
        {
            "META_ACCESS_TOKEN": "tok",
            "META_AD_ACCOUNT_ID": "act_42",
            "META_PIXEL_ID": "7",
            "META_BASE_URL": "http://localhost:1/meta/",
            "META_API_VERSION": "v24.0",
            "META_ASYNC_MIN_DAYS": "3",
        }
    )
    assert (config.ad_account_id, config.pixel_id, config.base_url) == ("42", "7", "http://localhost:1/meta")
    assert (config.api_version, config.async_min_days) == ("v24.0", 3)


# --- paging and the async flow -------------------------------------------------------------------


def test_paging_ends_when_paging_next_is_absent(sandbox, make_meta):
    client = make_meta(page_size=5)
    before = len(sandbox.requests_to("/act_1234567890/insights"))
    table = _table(client.insights(FLIGHT_DAY, FLIGHT_DAY))
    expected = _expected(sandbox, FLIGHT_DAY)
    assert table.num_rows == expected
    pages = sandbox.requests_to("/act_1234567890/insights")[before:]
    assert len(pages) == -(-expected // 5)  # one request per page, none after the last
    assert set(table.column("date").to_pylist()) == {FLIGHT_DAY}
    assert table.schema == INSIGHTS_SCHEMA


def test_spring_campaign_spends_exactly_on_flight_days(make_meta):
    table = _table(make_meta(page_size=500).insights(date(2026, 2, 28), date(2026, 3, 3)))
    spring = table.filter(pa.compute.equal(table.column("campaign_name"), "Spring brand awareness"))
    assert {d.isoformat() for d in spring.column("date").to_pylist()} == {"2026-03-02", "2026-03-03"}
    assert min(spring.column("spend").to_pylist()) > 0


def test_long_range_runs_as_async_report(sandbox, make_meta, caplog):
    client = make_meta(page_size=50, async_min_days=8)
    since, until = date(2026, 3, 1), date(2026, 3, 10)
    with caplog.at_level(logging.INFO, logger="connectors.meta"):
        table = _table(client.insights(since, until))
    expected = sum(_expected(sandbox, date(2026, 3, d)) for d in range(1, 11))
    assert table.num_rows == expected
    posts = [r for r in sandbox.requests if r.method == "POST" and "/insights" in r.path]
    assert posts, "a 10-day range must start an async report"
    assert "% complete" in caplog.text and "Job Completed" in caplog.text


def test_async_job_failed_fails_clearly(sandbox, make_meta):
    def fail(payload):
        return {**payload, "async_status": "Job Failed"} if "async_status" in payload else payload

    sandbox.inject_fault("/meta/v25.0/", 200, times=None, kind="transform", transform=fail)
    client = make_meta(async_min_days=1)
    with pytest.raises(ApiError, match="Job Failed") as info:
        list(client.insights(date(2026, 3, 1), date(2026, 3, 5)))
    assert info.value.source == "meta"


# --- pixel ---------------------------------------------------------------------------------------


def test_pixel_events_are_hourly_rows_of_the_utc_day(sandbox, make_meta):
    table = pa.Table.from_batches(list(make_meta().pixel_events(FLIGHT_DAY)), schema=PIXEL_SCHEMA)
    expected = sum(len(events) for _, events in pixel_day(sandbox.seed, sandbox.scale, FLIGHT_DAY))
    assert table.num_rows == expected
    assert set(table.column("date").to_pylist()) == {FLIGHT_DAY}
    hours = {h.hour for h in table.column("hour_start").to_pylist()}
    assert len(hours) > 12 and set(table.column("event").to_pylist()) >= {"PageView", "Lead"}


# --- faults --------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_and_loaded(sandbox, make_meta):
    sandbox.inject_fault("/insights", 429, times=1, headers={"Retry-After": "0"})
    table = _table(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY))
    assert table.num_rows == _expected(sandbox, FLIGHT_DAY)


def test_throttle_code_17_waits_for_the_usage_header_then_loads(sandbox, make_meta):
    waits: list[float] = []
    sandbox.inject_fault("/insights", after=1, **throttle_fault(code=17, minutes=2))
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=600, max_total_seconds=900)
    table = _table(make_meta(policy=policy, sleep=waits.append).insights(FLIGHT_DAY, FLIGHT_DAY))
    assert table.num_rows == _expected(sandbox, FLIGHT_DAY)
    assert waits == [120.0]  # estimated_time_to_regain_access: 2 minutes


@pytest.mark.parametrize("code", [4, 613, 80004])
def test_other_throttle_codes_arrive_as_400_and_are_retried(sandbox, make_meta, code):
    sandbox.inject_fault(
        "/insights", **throttle_fault(code=code, minutes=0, status=403 if code == 4 else 400)
    )
    assert _table(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY)).num_rows == _expected(sandbox, FLIGHT_DAY)


def test_throttle_wait_is_capped_by_the_policy(sandbox, make_meta):
    waits: list[float] = []
    sandbox.inject_fault("/insights", **throttle_fault(code=17, minutes=60))
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=30, max_total_seconds=900)
    make_meta(policy=policy, sleep=waits.append).insights(FLIGHT_DAY, FLIGHT_DAY).__next__()
    assert waits == [30]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_and_loaded(sandbox, make_meta, status):
    sandbox.inject_fault("/insights", status, times=2)
    assert _table(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY)).num_rows == _expected(sandbox, FLIGHT_DAY)


def test_persistent_server_error_names_source_endpoint_status_and_message(sandbox, make_meta):
    sandbox.inject_fault("/insights", 503, times=None)
    with pytest.raises(ApiError) as info:
        list(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY))
    text = str(info.value)
    assert text.startswith("meta: ") and "/act_1234567890/insights" in text
    assert "HTTP 503" in text and "Please retry your request later" in text and "after 4 attempts" in text


def test_dropped_connection_is_retried_and_loaded(sandbox, make_meta):
    sandbox.inject_fault("/insights", 0, kind="drop")
    assert _table(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY)).num_rows == _expected(sandbox, FLIGHT_DAY)


def test_truncated_body_is_retried_and_loaded(sandbox, make_meta):
    sandbox.inject_fault("/stats", 200, kind="truncate", after=1)
    table = pa.Table.from_batches(list(make_meta().pixel_events(FLIGHT_DAY)), schema=PIXEL_SCHEMA)
    assert table.num_rows == sum(len(e) for _, e in pixel_day(sandbox.seed, sandbox.scale, FLIGHT_DAY))


def test_slow_response_beyond_the_timeout_is_retried(sandbox, make_meta):
    sandbox.inject_fault("/insights", 200, kind="slow", delay=1.0)
    table = _table(make_meta(timeout_seconds=0.3).insights(FLIGHT_DAY, FLIGHT_DAY))
    assert table.num_rows == _expected(sandbox, FLIGHT_DAY)


def test_expired_token_is_permanent_with_a_clear_message_and_no_token(sandbox, make_meta, caplog):
    secret = "EAAGexpiredtoken1234567890abcdef"
    client = make_meta(access_token=secret)
    before = len(sandbox.requests_to("/insights"))
    with caplog.at_level(logging.DEBUG), pytest.raises(MetaTokenError) as info:
        list(client.insights(FLIGHT_DAY, FLIGHT_DAY))
    text = str(info.value)
    assert "code 190" in text and "long-lived token" in text and "META_ACCESS_TOKEN" in text
    assert secret not in text and secret not in caplog.text
    assert len(sandbox.requests_to("/insights")) == before + 1  # not retried


def test_expired_token_fault_on_a_later_page(sandbox, make_meta):
    sandbox.inject_fault("/insights", 400, body=expired_token_body(), after=1)
    with pytest.raises(MetaTokenError, match="Session has expired"):
        list(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY))


def test_token_never_travels_in_a_url_or_a_log(sandbox, make_meta, caplog):
    sandbox.inject_fault("/insights", 503, after=1)  # a retry on a followed paging.next link
    with caplog.at_level(logging.DEBUG):
        list(make_meta(page_size=3).insights(FLIGHT_DAY, FLIGHT_DAY))
        list(make_meta(page_size=3, async_min_days=1).insights(FLIGHT_DAY, date(2026, 3, 5)))
        list(make_meta(page_size=3).pixel_events(FLIGHT_DAY))
    assert len(sandbox.requests) > 10
    assert all(
        SANDBOX_META_ACCESS_TOKEN not in r.path and "access_token" not in r.path for r in sandbox.requests
    )
    assert SANDBOX_META_ACCESS_TOKEN not in caplog.text


def test_removed_field_fails_naming_it(sandbox, make_meta):
    def drop_spend(payload):
        for row in payload.get("data", []):
            row["amount_spent"] = row.pop("spend", None)
        return payload

    sandbox.inject_fault("/insights", 200, kind="transform", transform=drop_spend)
    with pytest.raises(ApiError, match="required field 'spend'"):
        list(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY))


def test_removed_pixel_field_fails_naming_it(sandbox, make_meta):
    def drop_count(payload):
        for bucket in payload.get("data", []):
            for entry in bucket.get("data", []):
                entry.pop("count", None)
        return payload

    sandbox.inject_fault("/stats", 200, kind="transform", transform=drop_count)
    with pytest.raises(ApiError, match="required field 'count'"):
        list(make_meta().pixel_events(FLIGHT_DAY))


def test_extra_field_is_tolerated_with_a_warning(sandbox, make_meta, caplog):
    def add_field(payload):
        for row in payload.get("data", []):
            row["quality_ranking"] = "ABOVE_AVERAGE"
        return payload

    sandbox.inject_fault("/insights", 200, kind="transform", transform=add_field)
    with caplog.at_level(logging.WARNING, logger="connectors.meta"):
        table = _table(make_meta().insights(FLIGHT_DAY, FLIGHT_DAY))
    assert table.num_rows == _expected(sandbox, FLIGHT_DAY)
    assert "quality_ranking" in caplog.text


def test_a_permanent_error_is_not_retried(sandbox, make_meta):
    with pytest.raises(ApiError, match="code 100") as info:
        list(make_meta(ad_account_id="999").insights(FLIGHT_DAY, FLIGHT_DAY))
    assert info.value.status == 400 and info.value.attempts == 1
