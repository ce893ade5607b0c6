"""The time a backfill has left, at the API's pace rather than ours.

On a long backfill the wait is the API's rate limit, not our CPU: Slack lets a workspace make 50
`conversations.history`/`replies` calls a minute, so 4,000 days of a busy workspace take hours
however fast the rows are written. The day loop (orchestration/fetching.py) asks `ApiPace` for its
progress lines: the requests the source made so far (`connectors.http.calls_made`, counted from
the loop's start) over the days loaded give the calls per day; times the days left, the calls
still to make; over the limit that paces the source (connectors/ratelimit.py: its setting, else
the published figure, on RATE_LIMIT_TIME_SCALE's clock, with the limiter's window margin), the
time left.

No figure is given where no fixed limit paces the source: GA4 (a concurrency cap and an hourly
token quota read from the answers), Meta (usage headers), any source with RATE_LIMITS=off or its
limit set to 0. Guessing from our own speed would be the number the issue asks us not to print.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.http import calls_made
from connectors.ratelimit import PUBLISHED_LIMITS, WINDOW_MARGIN, RateLimits

# The limit that bounds each source's calls on a backfill (most of its requests go through it).
PACING_LIMITS = {
    "slack": "slack.tier3",  # conversations.history and conversations.replies
    "discourse": "discourse.api_key",
    "gsc": "gsc.site",
    "discord": "discord.global",
}


def duration(seconds: float) -> str:
    """`seconds` as a person reads a wait: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@dataclass(frozen=True)
class ApiPace:
    """The pace one day loop of `source` will keep: `calls_per_second` allowed by its limit (None:
    no fixed limit), and the calls the source had made when the loop started."""

    source: str
    calls_per_second: float | None
    rate: str  # the limit in words, e.g. "50 calls/minute (SLACK_TIER3_PER_MINUTE)"
    calls_at_start: int

    @classmethod
    def start(cls, source: str, limits: RateLimits | None = None) -> ApiPace:
        """The pace of `source` from now on, under `limits` (default: the environment's)."""
        limits = RateLimits.from_env() if limits is None else limits
        key = PACING_LIMITS.get(source)
        per_second, rate = None, ""
        if key is not None and limits.enabled and limits.calls(key) > 0:
            limit = PUBLISHED_LIMITS[key]
            window = limits.seconds(limit.seconds) * WINDOW_MARGIN
            if window > 0:
                per_second = limits.calls(key) / window
                unit = "minute" if limit.seconds == 60 else f"{limit.seconds:g} s"
                unit = "second" if limit.seconds == 1 else unit
                scaled = f", RATE_LIMIT_TIME_SCALE={limits.time_scale:g}" if limits.time_scale != 1 else ""
                rate = f"{limits.calls(key)} calls/{unit} ({limit.setting}{scaled})"
        return cls(source, per_second, rate, calls_made(source))

    def calls_so_far(self) -> int:
        """Requests the source made since the loop started."""
        return calls_made(self.source) - self.calls_at_start

    def seconds_left(self, days_done: int, total_days: int) -> float | None:
        """The time the calls still to make take at the limit; None without a limit or a call yet."""
        calls = self.calls_so_far()
        if self.calls_per_second is None or days_done <= 0 or calls <= 0:
            return None
        return self.calls_left(days_done, total_days) / self.calls_per_second

    def calls_left(self, days_done: int, total_days: int) -> float:
        """The calls still to make: the calls per day so far times the days left."""
        return self.calls_so_far() / max(days_done, 1) * max(total_days - days_done, 0)

    def describe(self, days_done: int, total_days: int) -> str:
        """The progress line's tail: "; about 2 h 05 min left at 50 calls/minute (...), 6,000 calls
        to go", or "" when there is no figure to give."""
        seconds = self.seconds_left(days_done, total_days)
        if seconds is None:
            return ""
        calls = self.calls_left(days_done, total_days)
        return f"; about {duration(seconds)} left at {self.rate}, {calls:,.0f} calls to go"
