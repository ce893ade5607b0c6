"""The sandbox's rate limits and round-trip latency: the APIs' published limits, enforced as each
API enforces them, so that pacing can be proven against a server that refuses what the real one
would.

Each limit counts the requests of one key (a Slack token and method, a Discourse API key, a Search
Console site, a Discord bot) in a sliding window and answers the one past it with the API's own
throttle form:

- Slack: HTTP 429, `Retry-After`, `{"ok": false, "error": "ratelimited"}`; Tier 2 (20/min:
  conversations.list, users.list), Tier 3 (50/min: conversations.history, conversations.replies).
- Discourse: HTTP 429, `Retry-After`, `{"errors": [...], "error_type": "rate_limit",
  "extras": {"wait_seconds": N}}`; 60/min per API key.
- Search Console: HTTP 429 RESOURCE_EXHAUSTED (Google's error body); 1,200/min per site.
- GA4: HTTP 429 RESOURCE_EXHAUSTED past 10 requests in flight per property.
- Discord: HTTP 429 `{"message": ..., "retry_after": s, "global": true}`, `X-RateLimit-Global`;
  50/s per bot.
Meta's limits are a usage score, not a count: the sandbox reports usage in its headers only.

Settings (environment, read when a SandboxServer is built; .env.example):
SANDBOX_RATE_LIMITS=on enforces them (default off: tests and `make demo` run unthrottled);
SANDBOX_TIME_SCALE runs every window and every wait that many times faster (a Retry-After of 1.2
at scale 50 stands for a minute); SANDBOX_LATENCY_MS adds that round trip (in API time, so divided
by the scale) before each answer.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

# (requests, window in API seconds) per limit
LIMITS = {
    "slack.tier2": (20, 60.0),
    "slack.tier3": (50, 60.0),
    "discourse": (60, 60.0),
    "gsc": (1200, 60.0),
    "discord": (50, 1.0),
}
GA4_CONCURRENT = 10
_SLACK_TIER2 = {"conversations.list", "users.list"}
_ON = {"on", "true", "1", "yes"}


@dataclass(frozen=True)
class Throttled:
    """A throttle answer: status, body, headers."""

    status: int
    body: dict
    headers: dict[str, str]


class SandboxLimits:
    """The enforced limits of one sandbox server (thread-safe)."""

    def __init__(self, enabled: bool = False, time_scale: float = 1.0, latency_ms: float = 0.0):
        if time_scale <= 0:
            raise ValueError(f"SANDBOX_TIME_SCALE={time_scale!r} must be above 0 (1: real time).")
        if latency_ms < 0:
            raise ValueError(f"SANDBOX_LATENCY_MS={latency_ms!r} must not be negative.")
        self.enabled = enabled
        self.time_scale = time_scale
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self.throttled = 0  # answers refused, for tests and benchmarks

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxLimits:
        env = os.environ if environ is None else environ
        try:
            return cls(
                enabled=(env.get("SANDBOX_RATE_LIMITS") or "off").strip().lower() in _ON,
                time_scale=float(env.get("SANDBOX_TIME_SCALE") or 1.0),
                latency_ms=float(env.get("SANDBOX_LATENCY_MS") or 0.0),
            )
        except ValueError as exc:
            raise ValueError(f"sandbox settings: {exc}") from None

    def delay(self) -> None:
        """The configured round trip, on the sandbox's clock."""
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0 / self.time_scale)

    def check(self, path: str, headers: Mapping[str, str]) -> Throttled | None:
        """The throttle answer for this request, or None when it is within its limit (and counted)."""
        if not self.enabled:
            return None
        key = _limit_key(path, headers)
        if key is None:
            return None
        name, who = key
        calls, window = LIMITS[name]
        window /= self.time_scale
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - window:
                seen.popleft()
            if len(seen) < calls:
                seen.append(now)
                return None
            self.throttled += 1
            wait = seen[0] + window - now  # real seconds until a slot frees
        return _throttle_answer(name, wait, wait * self.time_scale)

    @contextmanager
    def ga4_slot(self, property_id: str):
        """Holds one of a GA4 property's concurrent slots; yields a throttle answer when none is free."""
        if not self.enabled:
            yield None
            return
        with self._lock:
            busy = self._in_flight.get(property_id, 0)
            if busy >= GA4_CONCURRENT:
                self.throttled += 1
                refused = True
            else:
                self._in_flight[property_id] = busy + 1
                refused = False
        if refused:
            yield _throttle_answer("ga4", 0.0, 0.0)
            return
        try:
            yield None
        finally:
            with self._lock:
                self._in_flight[property_id] -= 1


def _limit_key(path: str, headers: Mapping[str, str]) -> tuple[str, str] | None:
    auth = headers.get("Authorization") or ""
    if path.startswith("/slack/"):
        method = path.rsplit("/", 1)[-1]
        # Slack budgets each method apart (per workspace and app): history and replies do not share
        return ("slack.tier2" if method in _SLACK_TIER2 else "slack.tier3", f"{auth}|{method}")
    if path.startswith("/discourse/"):
        return ("discourse", headers.get("Api-Key") or "")
    if path.startswith("/gsc/") and "/searchAnalytics/" in path:
        return ("gsc", path.split("/searchAnalytics/")[0])
    if path.startswith("/discord/"):
        return ("discord", auth)
    return None


def _throttle_answer(name: str, real_wait: float, api_wait: float) -> Throttled:
    """`name`'s throttle answer; the wait in its headers and body is in real seconds (the time
    scale applied), so a client honouring it waits the right time on the sandbox's clock."""
    wait = max(real_wait, 0.001)
    # Retry-After is whole seconds at real time, a fraction when the clock runs faster
    retry_after = str(math.ceil(wait)) if wait >= 1 else f"{wait:.3f}"
    if name.startswith("slack"):
        return Throttled(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after})
    if name == "discourse":
        seconds = max(1, math.ceil(api_wait))
        return Throttled(
            429,
            {
                "errors": [
                    f"You've performed this action too many times. Please wait {seconds} seconds "
                    "before trying again."
                ],
                "error_type": "rate_limit",
                "extras": {"wait_seconds": round(wait, 3), "time_left": f"{seconds} seconds"},
            },
            {"Retry-After": retry_after},
        )
    if name == "discord":
        return Throttled(
            429,
            {
                "message": "You are being rate limited.",
                "retry_after": round(wait, 3),
                "global": True,
                "code": 0,
            },
            {"Retry-After": retry_after, "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
        )
    message = (
        "Exhausted concurrent requests quota."
        if name == "ga4"
        else "Quota exceeded for quota metric 'Queries'."
    )
    return Throttled(
        429,
        {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}},
        {} if name == "ga4" else {"Retry-After": retry_after},
    )
