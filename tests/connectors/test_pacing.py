"""Pacing (connectors/ratelimit.py) against a sandbox that enforces the APIs' published limits
(connectors/sandbox/limits.py), both on a clock 20 times faster: a minute's limit in 3 seconds.

A Slack Tier 3 method allows 50 calls a minute (50 in 3 s here), Tier 2 20; the sandbox answers
the call past a limit with Slack's own 429. Paced clients never get one; unpaced ones do.
"""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest

from connectors.discourse import DiscourseClient, DiscourseConfig
from connectors.http import RetryPolicy
from connectors.ratelimit import RateLimits
from connectors.sandbox import SandboxServer
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY
from connectors.sandbox.limits import SandboxLimits
from connectors.slack import SlackClient, SlackConfig, day_bounds

TOKEN = "xoxb-sandbox-token"
TODAY = date(2026, 11, 21)
DAY = date(2026, 11, 10)
SCALE = 20.0  # one API minute in three seconds
RETRY = RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=5, max_total_seconds=30)


@pytest.fixture
def limited_sandbox():
    with SandboxServer(
        seed=42, scale="small", today=TODAY, limits=SandboxLimits(enabled=True, time_scale=SCALE)
    ) as server:
        yield server


def _slack(sandbox, limits: RateLimits) -> SlackClient:
    config = SlackConfig(
        token=TOKEN,
        base_url=f"{sandbox.base_url}/slack",
        page_size=1000,
        retry_policy=RETRY,
        rate_limits=limits,
    )
    return SlackClient(config)


def _burst(client: SlackClient, channel: str, threads: int, calls: int) -> list[int]:
    """`calls` conversations.history calls on each of `threads` threads; the message counts."""
    oldest, latest = day_bounds(DAY)
    counts: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(calls):
            pages = list(client.history(channel, oldest, latest))
            with lock:
                counts.append(sum(len(p) for p in pages))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts


def _tier3_calls(sandbox) -> list:
    return [r for r in sandbox.requests_to("conversations.history")]


def test_a_burst_from_several_threads_stays_under_the_tier3_limit(limited_sandbox, monkeypatch):
    monkeypatch.setenv("FETCH_CONCURRENCY", "4")  # a connection per thread
    with _slack(limited_sandbox, RateLimits(enabled=True, time_scale=SCALE)) as client:
        channel = client.channel_ids()[0]
        started = time.monotonic()
        counts = _burst(client, channel, threads=4, calls=20)  # 80 calls: 50 in the first window
        elapsed = time.monotonic() - started
    assert limited_sandbox.limits.throttled == 0
    assert len(counts) == 80 and len(set(counts)) == 1  # every call answered, the same messages
    assert [r.status for r in _tier3_calls(limited_sandbox)] == [200] * 80
    assert elapsed >= 3.0  # the last 30 waited for the window to move on


def test_the_same_burst_unpaced_is_throttled_and_every_429_is_retried(limited_sandbox):
    with _slack(limited_sandbox, RateLimits(enabled=False)) as client:
        channel = client.channel_ids()[0]
        counts = _burst(client, channel, threads=4, calls=20)
    statuses = [r.status for r in _tier3_calls(limited_sandbox)]
    assert limited_sandbox.limits.throttled > 0 and statuses.count(429) == limited_sandbox.limits.throttled
    assert statuses.count(200) == 80  # each refused call retried after Retry-After until answered
    assert len(counts) == 80 and len(set(counts)) == 1


def test_a_429_is_retried_and_does_not_lower_the_rate(limited_sandbox):
    limited_sandbox.inject_fault("conversations.history", 429, headers={"Retry-After": "0.2"})
    with _slack(limited_sandbox, RateLimits(enabled=True, time_scale=SCALE)) as client:
        channel = client.channel_ids()[0]
        counts = _burst(client, channel, threads=1, calls=1)
        started = time.monotonic()
        counts += _burst(client, channel, threads=2, calls=20)  # 40 calls: within one window's 50
        after = time.monotonic() - started
    assert [r.status for r in _tier3_calls(limited_sandbox)][:2] == [429, 200]
    assert len(counts) == 41 and len(set(counts)) == 1
    assert limited_sandbox.limits.throttled == 0
    # still the full rate: 40 calls did not wait for a second window, as a lowered rate would make them
    assert after < 3.0


def test_a_tier_override_applies(limited_sandbox):
    """users.list is Tier 2 (20 a minute). Raised past the published figure by its setting, the
    client sends more than the sandbox allows and is throttled; at the default it is not."""
    raised = RateLimits.from_env(
        {"SLACK_TIER2_PER_MINUTE": "1000", "RATE_LIMIT_TIME_SCALE": str(SCALE), "RATE_LIMITS": "on"}
    )
    assert raised.calls("slack.tier2") == 1000 and raised.calls("slack.tier3") == 50
    with _slack(limited_sandbox, raised) as client:
        for _ in range(30):
            list(client.users())
    assert limited_sandbox.limits.throttled > 0
    limited_sandbox.limits.throttled = 0
    time.sleep(3.2)  # the sandbox's window empties
    published = RateLimits.from_env({"RATE_LIMIT_TIME_SCALE": str(SCALE)})
    with _slack(limited_sandbox, published) as client:
        for _ in range(30):
            list(client.users())
    assert limited_sandbox.limits.throttled == 0


def test_discourse_threads_share_one_key_limit(limited_sandbox):
    limits = RateLimits(enabled=True, time_scale=SCALE)
    config = DiscourseConfig(
        url=f"{limited_sandbox.base_url}/discourse",
        api_key=SANDBOX_DISCOURSE_API_KEY,
        retry=RETRY,
        rate_limits=limits,
    )
    answers: list = []

    def work() -> None:
        with DiscourseClient(config) as client:  # a client per thread, one key: one limiter
            for _ in range(25):
                answers.append(client.get("/categories.json"))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(answers) == 75 and all(a == answers[0] for a in answers)
    assert limited_sandbox.limits.throttled == 0


def test_settings_are_checked():
    from connectors.errors import ConnectorConfigError

    with pytest.raises(ConnectorConfigError, match="RATE_LIMIT_TIME_SCALE"):
        RateLimits.from_env({"RATE_LIMIT_TIME_SCALE": "0"})
    with pytest.raises(ConnectorConfigError, match="SLACK_TIER3_PER_MINUTE"):
        RateLimits.from_env({"SLACK_TIER3_PER_MINUTE": "fast"})
    assert RateLimits.from_env({"RATE_LIMITS": "off"}).enabled is False
    assert RateLimits.from_env({}).calls("discourse.api_key") == 60


def test_answer_driven_pacing_slows_down_only_when_the_api_says_so():
    from connectors.ratelimit import RouteBuckets, ga4_quota_gap, meta_usage_gap

    limits = RateLimits()  # real time
    # Meta: nothing up to 75%, then up to a minute a call at 100%
    assert meta_usage_gap(limits, 74) == 0 and meta_usage_gap(limits, 100) == 60.0
    assert meta_usage_gap(limits, 87.5) == pytest.approx(30.0)
    assert meta_usage_gap(RateLimits(meta_slowdown_percent=90), 87.5) == 0
    # GA4: above the low water no spacing; below it, the hour spread over the calls the tokens allow
    assert ga4_quota_gap(limits, {"consumed": 10, "remaining": 39_000}, 10) == 0
    assert ga4_quota_gap(limits, {"consumed": 10, "remaining": 1_000}, 10) == pytest.approx(36.0)
    assert ga4_quota_gap(RateLimits(time_scale=60), {"remaining": 1_000}, 10) == pytest.approx(0.6)
    # Discord: a spent bucket makes its routes wait for the reset; another bucket does not wait
    waits: list[float] = []
    buckets = RouteBuckets()
    buckets.update(
        "/channels/{id}/messages",
        {"X-RateLimit-Bucket": "b1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"},
    )
    buckets.wait("/channels/{id}/messages", waits.append)
    buckets.wait("/guilds/{id}", waits.append)
    assert len(waits) == 1 and 2.0 < waits[0] <= 2.5
    buckets.update("/channels/{id}/messages", {"X-RateLimit-Bucket": "b1", "X-RateLimit-Remaining": "4"})
    buckets.wait("/channels/{id}/messages", waits.append)
    assert len(waits) == 1
