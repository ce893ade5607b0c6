"""Pacing: every connector waits its turn under each API's published rate limits, so a backfill is
paced rather than punished with 429s.

One limiter per API, limit and credential (and, for Slack, method: Slack counts each method's calls
per workspace and app on their own), shared by every thread (and every step) of the process: two
clients holding the same Slack token draw from the same conversations.history budget. Fixed limits (calls per
window) are pyrate-limiter's sliding-window log (`Limiter` over an `InMemoryBucket`): a well-kept
library whose blocking `try_acquire` sleeps outside its lock, so threads queue without serialising
other limits. It cannot express limits an API states in its answers, so three are read from them:

- GA4: at most `GA4_CONCURRENT_REQUESTS` requests in flight per property (a semaphore), and the
  property's hourly token quota (`returnPropertyQuota`): once fewer than GA4_TOKENS_LOW_WATER
  tokens remain, calls are spaced so the rest lasts the hour.
- Meta: the highest usage percentage of X-Business-Use-Case-Usage / X-Ad-Account-Usage /
  X-App-Usage; above META_USAGE_SLOWDOWN_PERCENT each call waits longer the closer usage is to 100%.
- Discord: per-route buckets (X-RateLimit-Bucket, -Remaining, -Reset-After): a call to a route
  whose bucket is spent waits for its reset.

A 429 is not pacing: the retry loop waits its Retry-After and tries again, and the rates here stay
as they were for the rest of the run.

Settings (environment, read when a connector's config is built; see .env.example):
RATE_LIMITS=off turns pacing off (the sandbox in tests and `make demo`); RATE_LIMIT_TIME_SCALE
runs every window that many times faster (a test's minute in a second, against a sandbox with the
same SANDBOX_TIME_SCALE); each published limit has its own override, named in `PUBLISHED_LIMITS`
(0: not paced).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from pyrate_limiter import InMemoryBucket, Limiter, Rate

from connectors.errors import ConnectorConfigError


@dataclass(frozen=True)
class Limit:
    """A published limit: `calls` per `seconds`, overridable by the setting `setting`."""

    calls: int
    seconds: float
    setting: str
    what: str


# Each API's published limits (the defaults; every one overridable by its setting).
PUBLISHED_LIMITS: dict[str, Limit] = {
    # Slack Web API tiers: Tier 2 "20+ per minute", Tier 3 "50+ per minute", per method, workspace and app
    "slack.tier2": Limit(
        20, 60, "SLACK_TIER2_PER_MINUTE", "Slack Tier 2 methods (conversations.list, users.list)"
    ),
    "slack.tier3": Limit(
        50,
        60,
        "SLACK_TIER3_PER_MINUTE",
        "Slack Tier 3 methods (conversations.history, conversations.replies)",
    ),
    # Discourse: max_admin_api_reqs_per_minute (60 by default); user API keys have 20
    "discourse.api_key": Limit(60, 60, "DISCOURSE_REQUESTS_PER_MINUTE", "requests of one Discourse API key"),
    # Search Console API: 1,200 queries per minute per site (searchanalytics.query)
    "gsc.site": Limit(1200, 60, "GSC_QUERIES_PER_MINUTE", "Search Console queries per site"),
    # Discord: 50 requests per second per bot, across routes (route buckets come from the answers)
    "discord.global": Limit(50, 1, "DISCORD_REQUESTS_PER_SECOND", "Discord requests per bot"),
    # GA4 Data API (standard property): 10 concurrent requests per property
    "ga4.concurrent": Limit(10, 0, "GA4_CONCURRENT_REQUESTS", "GA4 requests in flight per property"),
}
# Slack's tier of each method the connector calls.
SLACK_METHOD_TIERS = {
    "conversations.list": "slack.tier2",
    "users.list": "slack.tier2",
    "conversations.history": "slack.tier3",
    "conversations.replies": "slack.tier3",
}
GA4_TOKENS_LOW_WATER_ENV = "GA4_TOKENS_LOW_WATER"
DEFAULT_GA4_TOKENS_LOW_WATER = 4000  # 10% of a standard property's 40,000 tokens per hour
META_SLOWDOWN_ENV = "META_USAGE_SLOWDOWN_PERCENT"
DEFAULT_META_SLOWDOWN = 75.0
META_SLOWDOWN_MAX_SECONDS = 60.0  # the wait per call as usage reaches 100%

_OFF = {"off", "false", "0", "no"}
WINDOW_MARGIN = 1.05


def _fingerprint(credential: str) -> str:
    """Tells credentials apart without keeping them in the key."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RateLimits:
    """The pacing settings of a connector (see the module's docstring)."""

    enabled: bool = True
    time_scale: float = 1.0
    overrides: tuple[tuple[str, int], ...] = ()  # (setting name, calls)
    ga4_tokens_low_water: int = DEFAULT_GA4_TOKENS_LOW_WATER
    meta_slowdown_percent: float = DEFAULT_META_SLOWDOWN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RateLimits:
        env = os.environ if environ is None else environ
        enabled = (env.get("RATE_LIMITS") or "on").strip().lower() not in _OFF
        scale = _number(env, "RATE_LIMIT_TIME_SCALE", 1.0, float)
        if scale <= 0:
            raise ConnectorConfigError(f"RATE_LIMIT_TIME_SCALE={scale!r} must be above 0 (1: real time).")
        overrides = {}
        for limit in PUBLISHED_LIMITS.values():
            if (env.get(limit.setting) or "").strip():
                overrides[limit.setting] = int(_number(env, limit.setting, 0, int))
        return cls(
            enabled=enabled,
            time_scale=scale,
            overrides=tuple(sorted(overrides.items())),
            ga4_tokens_low_water=int(
                _number(env, GA4_TOKENS_LOW_WATER_ENV, DEFAULT_GA4_TOKENS_LOW_WATER, int)
            ),
            meta_slowdown_percent=_number(env, META_SLOWDOWN_ENV, DEFAULT_META_SLOWDOWN, float),
        )

    def calls(self, key: str) -> int:
        """The calls allowed per window of limit `key` (its override, else the published figure)."""
        limit = PUBLISHED_LIMITS[key]
        return dict(self.overrides).get(limit.setting, limit.calls)

    def seconds(self, real_seconds: float) -> float:
        """A real duration on this pacing's clock (RATE_LIMIT_TIME_SCALE)."""
        return real_seconds / self.time_scale

    def acquire(self, key: str, credential: str, scope: str = "") -> None:
        """Wait until limit `key` allows one more call with `credential` (and `scope`, where the API
        budgets each method apart: Slack's methods of one tier do not share a budget)."""
        limiter = self._limiter(key, credential, scope)
        if limiter is not None:
            limiter.try_acquire(key, blocking=True)

    def _limiter(self, key: str, credential: str, scope: str = "") -> Limiter | None:
        calls = self.calls(key)
        # 5% longer than published: requests reach the server later by a varying network delay, and
        # one delayed less than the call before it must still land outside the server's window
        window_ms = int(self.seconds(PUBLISHED_LIMITS[key].seconds) * 1000 * WINDOW_MARGIN)
        if not self.enabled or calls <= 0 or window_ms <= 0:
            return None
        ident = (key, _fingerprint(credential), scope, calls, window_ms)
        with _REGISTRY_LOCK:
            limiter = _LIMITERS.get(ident)
            if limiter is None:
                # buffer_ms: pyrate-limiter's margin after each computed wait
                limiter = Limiter(InMemoryBucket([Rate(calls, window_ms)]), buffer_ms=50)
                _LIMITERS[ident] = limiter
        return limiter

    def in_flight(self, key: str, credential: str) -> AbstractContextManager:
        """A context that holds one of limit `key`'s concurrent slots for `credential`."""
        calls = self.calls(key)
        if not self.enabled or calls <= 0:
            return nullcontext()
        ident = (key, _fingerprint(credential), calls, 0)
        with _REGISTRY_LOCK:
            slots = _SEMAPHORES.get(ident)
            if slots is None:
                slots = _SEMAPHORES[ident] = threading.BoundedSemaphore(calls)
        return slots

    def shared(self, kind: str, credential: str, factory: Callable[[], object]) -> object:
        """The process-wide state of an answer-driven pacer (`kind`) for `credential`."""
        ident = (kind, _fingerprint(credential), self.time_scale)
        with _REGISTRY_LOCK:
            if ident not in _SHARED:
                _SHARED[ident] = factory()
            return _SHARED[ident]


def _number(env: Mapping[str, str], name: str, default, kind):
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConnectorConfigError(f"{name}={text!r} is not a number; unset it for the default.") from None
    if value < 0:
        raise ConnectorConfigError(f"{name}={text!r} must not be negative.")
    return value


_REGISTRY_LOCK = threading.Lock()
_LIMITERS: dict[tuple, Limiter] = {}
_SEMAPHORES: dict[tuple, threading.BoundedSemaphore] = {}
_SHARED: dict[tuple, object] = {}


class SpacedCalls:
    """Answer-driven spacing shared by threads: `set_gap(seconds)` after an answer, `wait()` before a
    call sleeps until `gap` after the previous call started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gap = 0.0
        self._next = 0.0

    def set_gap(self, seconds: float) -> None:
        with self._lock:
            self._gap = max(0.0, seconds)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._gap
        if start > now:
            sleep(start - now)


def ga4_quota_gap(limits: RateLimits, tokens_per_hour: Mapping | None, cost: int) -> float:
    """Seconds between GA4 calls so the hour's remaining tokens last it; 0 while above the low water.

    `tokens_per_hour` is the answer's propertyQuota.tokensPerHour ({consumed, remaining}); `cost`
    what the call consumed.
    """
    if not limits.enabled or not isinstance(tokens_per_hour, Mapping):
        return 0.0
    remaining = int(tokens_per_hour.get("remaining") or 0)
    if remaining >= limits.ga4_tokens_low_water:
        return 0.0
    calls_left = max(1, remaining // max(1, cost))
    return limits.seconds(3600.0) / calls_left


def meta_usage_gap(limits: RateLimits, usage_percent: float) -> float:
    """Seconds between Meta calls at this usage: 0 up to the slowdown percentage, rising to a minute
    (on the pacing clock) at 100%."""
    threshold = limits.meta_slowdown_percent
    if not limits.enabled or usage_percent < threshold or threshold >= 100:
        return 0.0
    share = min(1.0, (usage_percent - threshold) / (100.0 - threshold))
    return limits.seconds(META_SLOWDOWN_MAX_SECONDS) * share


class RouteBuckets:
    """Discord's per-route rate-limit buckets, from the answers' X-RateLimit-* headers, shared by the
    threads of a bot: a route whose bucket has no request left waits for the bucket's reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bucket_of: dict[str, str] = {}  # route -> bucket id
        self._spent_until: dict[str, float] = {}  # bucket id -> monotonic time of its reset

    def wait(self, route: str, sleep: Callable[[float], None] = time.sleep) -> None:
        with self._lock:
            bucket = self._bucket_of.get(route, route)
            until = self._spent_until.get(bucket, 0.0)
        delay = until - time.monotonic()
        if delay > 0:
            sleep(delay)

    def update(self, route: str, headers: Mapping[str, str]) -> None:
        bucket = headers.get("X-RateLimit-Bucket") or route
        remaining = headers.get("X-RateLimit-Remaining")
        try:
            reset_after = float(headers.get("X-RateLimit-Reset-After") or 0)
        except ValueError:
            reset_after = 0.0
        with self._lock:
            self._bucket_of[route] = bucket
            if remaining == "0" and reset_after > 0:
                self._spent_until[bucket] = time.monotonic() + reset_after
            else:
                self._spent_until.pop(bucket, None)


__all__ = [
    "PUBLISHED_LIMITS",
    "SLACK_METHOD_TIERS",
    "Limit",
    "RateLimits",
    "RouteBuckets",
    "SpacedCalls",
    "ga4_quota_gap",
    "meta_usage_gap",
]
