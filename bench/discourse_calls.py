"""Calls a Discourse load makes, by method, against the least the API allows: `python -m
bench.discourse_calls --days 30 --scale small`.

Not a test. Starts the sandbox in this process (no rate limits: only calls are counted), loads the
`--days` days before the sandbox's today through DiscourseClient.activity, then categories and
users, as the warehouse's assets do, and prints the calls per method, the floor for the same
data and the hours they take at Discourse's default 60 requests a minute for an admin key.

The floor, from the sandbox's own data: /latest.json pages of 100 down to the first topic bumped
before the range (topics // 100 + 1); /posts.json pages of 50 down to the first post written
before it (posts // 50 + 1); /categories.json once; the users list in pages of 100 and the empty
page that ends it. The likers of the range's liked posts, by the cheapest of the routes the
contract allows, per author: k pages of 30 of the author's likes received (/user_actions.json
?filter=2, newest like first; a post is complete once a like older than it is seen) and one
/post_action_users.json call for each liked post of theirs still incomplete, k chosen for the
fewest calls. The other routes are printed beside it: one call per liked post, and per member the
likes given (filter=1) down to the range's start (every member: who liked is not known before).

The load itself goes through DiscourseClient's public methods only; the floor reads the sandbox's
likes (`likes_in_streams`, the moment of each like), which revisions before the per-author likers
do not have: to count an older client, put this script and the sandbox of this revision beside it.
"""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from connectors.discourse import DiscourseClient, DiscourseConfig
from connectors.sandbox import SandboxServer, community
from connectors.sandbox.discourse_api import (
    LIKE,
    SANDBOX_DISCOURSE_API_KEY,
    USER_ACTIONS_PER_PAGE,
    USERS_PER_PAGE,
    WAS_LIKED,
    _forum_users,
    likes_in_streams,
    topics_between,
)

TODAY = date(2026, 11, 21)
PER_MINUTE = 60  # Discourse's default for an admin API key (DISCOURSE_REQUESTS_PER_MINUTE)


class CountingClient(DiscourseClient):
    """DiscourseClient counting its calls per method (the sandbox keeps only its last requests)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: Counter = Counter()

    def get(self, path, params=None):
        self.calls[_method("/discourse" + path)] += 1
        return super().get(path, params)


def _method(path: str) -> str:
    path = path.split("?")[0][len("/discourse") :]
    if path.startswith("/t/"):
        return "/t/{id}/posts.json" if path.endswith("/posts.json") else "/t/{id}.json"
    if path.startswith("/admin/users/list/"):
        return "/admin/users/list/active.json"
    return path


def _wire(moment: datetime) -> datetime:
    """A moment as the forum sends it: to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def author_floor(stream: tuple, created: list[datetime]) -> tuple[int, int]:
    """(pages of likes received, per-post lookups) for the fewest calls that give the likers of an
    author's liked posts created at `created`, from the author's `stream` ((moment, ...), newest
    first): after k pages a post is complete when a like older than it was seen, or the stream
    ended; each post left incomplete costs one per-post call."""
    best = (0, len(created))
    k = 0
    while True:
        k += 1
        seen = stream[: k * USER_ACTIONS_PER_PAGE]
        ended = len(stream) < k * USER_ACTIONS_PER_PAGE
        oldest = _wire(seen[-1][0]) if seen else None
        left = 0 if ended else sum(not (oldest is not None and oldest < c) for c in created)
        if k + left <= sum(best):  # a tie: the pages (they complete older posts too)
            best = (k, left)
        if left == 0 or k >= sum(best):  # more pages cannot beat the best any more
            return best


def floor(seed: int, scale: str, days: list[date]) -> tuple[Counter, dict[str, int]]:
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    topics = topics_between(seed, scale, TODAY, date(2000, 1, 1), TODAY)
    posts = [p for t in topics for p in t.posts]
    in_range = [p for d in days for p in community.posts_on(seed, scale, "discourse", d)]
    liked = [p for p in in_range if p.reactions]
    users = [m for m in _forum_users(seed, scale) if m.joined < TODAY]
    uid = {m.person_id: int(m.user_id("discourse")) for m in users}
    by_author: dict[int, list[datetime]] = {}
    for p in liked:
        by_author.setdefault(uid[p.author_person_id], []).append(_wire(p.created_at))
    received = likes_in_streams(seed, scale, TODAY, WAS_LIKED)
    pages = lookups = 0
    for author, created in by_author.items():
        k, left = author_floor(received.get(author, ()), created)
        pages, lookups = pages + k, lookups + left
    out = Counter(
        {
            "/latest.json": min(
                sum(t.bumped_at >= start for t in topics) // 100 + 1, math.ceil(len(topics) / 100)
            ),
            "/posts.json": sum(p.created_at >= start for p in posts) // 50 + 1,
            "/user_actions.json": pages,
            "/post_action_users.json": lookups,
            "/categories.json": 1,
            "/admin/users/list/active.json": len(users) // USERS_PER_PAGE + 1,
        }
    )
    given = likes_in_streams(seed, scale, TODAY, LIKE)
    routes = {
        "per liked post (/post_action_users.json)": sum(math.ceil(len(p.reactions) / 200) for p in liked),
        "per author, likes received (filter=2) down to the range's start": sum(
            sum(_wire(t) >= start for t, *_ in received.get(a, ())) // USER_ACTIONS_PER_PAGE + 1
            for a in by_author
        ),
        "per member, likes given (filter=1) down to the range's start": sum(
            sum(_wire(t) >= start for t, *_ in given.get(uid[m.person_id], ())) // USER_ACTIONS_PER_PAGE + 1
            for m in users
        ),
        "liked authors": len(by_author),
        "likers": len({pid for p in liked for pid, _ in p.reactions}),
        "members": len(users),
    }
    return out, routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("RATE_LIMITS", "off")  # calls are counted here, not paced
    days = [TODAY - timedelta(days=n) for n in range(args.days, 0, -1)]
    with SandboxServer(seed=args.seed, scale=args.scale, today=TODAY) as sandbox:
        config = DiscourseConfig(url=f"{sandbox.base_url}/discourse", api_key=SANDBOX_DISCOURSE_API_KEY)
        with CountingClient(config) as client:
            rows = sum(a.posts.num_rows for a in client.activity(days))
            client.categories()
            list(client.users())
        calls = client.calls
    least, by_user = floor(args.seed, args.scale, days)
    print(f"discourse {args.scale} scale, {args.days} days to {days[-1]}: {rows:,} posts loaded")
    print(f"{'method':32} {'calls':>9} {'floor':>9} {'calls/floor':>12}")
    for method in sorted(set(calls) | set(least)):
        ratio = f"{calls[method] / least[method]:.2f}" if least[method] else "-"
        print(f"{method:32} {calls[method]:>9,} {least[method]:>9,} {ratio:>12}")
    total, total_floor = sum(calls.values()), sum(least.values())
    print(f"{'total':32} {total:>9,} {total_floor:>9,} {total / total_floor:>12.2f}")
    hours = lambda n: n / PER_MINUTE / 60  # noqa: E731
    print(f"at {PER_MINUTE}/min: {hours(total):.2f} h (floor {hours(total_floor):.2f} h)")
    print("likers by one route only, calls: " + ", ".join(f"{k} {v:,}" for k, v in by_user.items()))


if __name__ == "__main__":
    main()
