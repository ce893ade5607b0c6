"""Calls a Discourse load makes, by method, against the least the API allows: `python -m
bench.discourse_calls --days 30 --scale small`.

Not a test. Starts the sandbox in this process (no rate limits: only calls are counted), loads the
`--days` days before the sandbox's today through DiscourseClient.activity, then categories and
users, as the warehouse's assets do, and prints the calls per method, the floor for the same
data and the hours they take at Discourse's default 60 requests a minute for an admin key.

The floor, from the sandbox's own data: /latest.json pages of 100 down to the first topic bumped
before the range (topics // 100 + 1); /posts.json pages of 50 down to the first post written
before it (posts // 50 + 1); one /post_action_users.json call per post of the range with a like
(200 likers a page); /categories.json once; the users list in pages of 100 and the empty page that
ends it. Per-user likes (/user_actions.json) would need a call per member who gave (or received)
a like on the range's posts: printed beside it for comparison.

Runs with the code of any revision (it calls only DiscourseClient's public methods), so the same
script counts main's per-topic path: run it from a checkout of that revision.
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
    SANDBOX_DISCOURSE_API_KEY,
    USERS_PER_PAGE,
    _forum_users,
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


def floor(seed: int, scale: str, days: list[date]) -> tuple[Counter, dict[str, int]]:
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    topics = topics_between(seed, scale, TODAY, date(2000, 1, 1), TODAY)
    posts = [p for t in topics for p in t.posts]
    in_range = [p for d in days for p in community.posts_on(seed, scale, "discourse", d)]
    liked = [p for p in in_range if p.reactions]
    users = [m for m in _forum_users(seed, scale) if m.joined < TODAY]
    out = Counter(
        {
            "/latest.json": min(
                sum(t.bumped_at >= start for t in topics) // 100 + 1, math.ceil(len(topics) / 100)
            ),
            "/posts.json": sum(p.created_at >= start for p in posts) // 50 + 1,
            "/post_action_users.json": sum(math.ceil(len(p.reactions) / 200) for p in liked),
            "/categories.json": 1,
            "/admin/users/list/active.json": len(users) // USERS_PER_PAGE + 1,
        }
    )
    received: Counter = Counter()
    for p in liked:
        received[p.author_person_id] += len(p.reactions)
    by_user = {
        "likers (users who gave a like)": len({pid for p in liked for pid, _ in p.reactions}),
        "liked authors (users who received one)": len(received),
        # /user_actions.json?filter=2 pages of 30 per author, counting only the likes on the range's
        # posts (likes the author received on older posts since would add pages)
        "pages of likes received": sum(math.ceil(n / 30) for n in received.values()),
        "liked posts": len(liked),
    }
    return out, by_user


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
    print("per-user likes instead of per-post: " + ", ".join(f"{k} {v:,}" for k, v in by_user.items()))


if __name__ == "__main__":
    main()
