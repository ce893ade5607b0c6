"""The brand's communities: one population of people posting on Slack, Discourse and Discord.

Deterministic from (seed, scale, platform, day); never reads today's date. The facts planted here
(the shared page's share dates, the advocates, the growth of the "ai" interest, thread answering,
weekday seasonality, volume by scale) are the constants at the end of `brand.py` (see its
docstring, item g); the tests in tests/sandbox/test_community_generator.py measure them.

How it works. Every post belongs to a *thread* that starts on some day: a root post plus zero or
more replies over the following days (at most COMMUNITY_MAX_REPLY_LAG_DAYS later). The threads
started on a day are generated from `random.Random(f"{seed}:community:{platform}:threads:{day}")`
and cached, so `posts_on(day)` is the roots of that day plus the replies of that day from the
threads of the days before, and `thread_posts(root)` decodes the root's start day from its id.
Standalone messages (no replies), bot posts and Slack system posts (joins, topic changes) are
threads of one post.

Post ids are platform-native: Slack `ts` strings ("1752570000.123456", from the creation time),
Discourse post ids (int as str: start-day index x 1,000,000 + thread x 100 + reply), Discord
snowflakes (creation milliseconds since 2015 << 22 | low bits).

Text is plain: links are bare URLs and mentions are "@handle"; each platform's API layer applies
its own markup (Slack: <url|label>, <@U123>). On Discourse a root's first line is the topic title.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from connectors.sandbox import brand

PLATFORMS = ("slack", "discourse", "discord")
DISCORD_EPOCH_MS = 1420070400000
# Discourse post ids count microseconds from here (the community starts later): like the forum's own
# ids they grow with the moment a post is written, across topics, so /posts.json pages by id in time
# order; the day a thread started is the id's day.
_ID_EPOCH = date(2024, 1, 1)
_MICROS_A_DAY = 86_400_000_000


# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One person; the same person may be on several platforms."""

    person_id: str
    name: str
    handle: str
    email: str  # "" for bots
    is_employee: bool
    is_bot: bool
    joined: date
    platforms: tuple[str, ...]  # subset of ("slack", "discourse", "discord")

    def user_id(self, platform: str) -> str:
        """Platform-native id: Slack "U0..." (10 upper alnum), Discourse int as str, Discord snowflake."""
        return _user_id(self.person_id, platform, self.joined)


@dataclass(frozen=True)
class Space:
    platform: str
    native_id: str
    name: str
    interest: str
    is_private: bool


@dataclass(frozen=True)
class Post:
    platform: str
    space_id: str  # Space.native_id
    post_id: str
    thread_root_id: str | None  # None = a thread start / standalone message
    author_person_id: str
    created_at: datetime  # UTC, tz-aware
    text: str
    reply_to_post_id: str | None
    reactions: tuple[tuple[str, str], ...]  # (person_id, emoji)
    subtype: str | None  # None; "channel_join", "channel_topic", "bot_message"


# ---------------------------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------------------------

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _alnum(n: int, length: int) -> str:
    out = []
    for _ in range(length):
        n, r = divmod(n, 36)
        out.append(_ALNUM[r])
    return "".join(out)


@functools.cache
def _user_id(person_id: str, platform: str, joined: date) -> str:
    if platform == "slack":
        return "U0" + _alnum(_digest(f"slack-user:{person_id}"), 8)
    if platform == "discourse":
        if person_id == brand.COMMUNITY_SYSTEM_PERSON_ID:
            return "-1"  # Discourse's own "system" user
        return str(100 + int(person_id[1:]))
    if platform == "discord":
        ms = int(datetime(joined.year, joined.month, joined.day, tzinfo=UTC).timestamp() * 1000)
        return str(((ms - DISCORD_EPOCH_MS) << 22) | (_digest(f"discord-user:{person_id}") & 0x3FFFFF))
    raise ValueError(f"unknown community platform {platform!r}; use one of {PLATFORMS}")


def _check_platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown community platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    return platform


def _post_id(platform: str, created: datetime, start: date, thread_idx: int, reply_idx: int, low: int) -> str:
    if platform == "slack":
        return f"{int(created.timestamp())}.{created.microsecond:06d}"
    if platform == "discourse":
        since = created - datetime(_ID_EPOCH.year, _ID_EPOCH.month, _ID_EPOCH.day, tzinfo=UTC)
        return str(since // timedelta(microseconds=1))
    ms = int(created.timestamp() * 1000)
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (low & 0x3FFFFF))


def _start_day_of(platform: str, root_post_id: str) -> date:
    if platform == "slack":
        return datetime.fromtimestamp(int(root_post_id.split(".", 1)[0]), UTC).date()
    if platform == "discourse":
        return _ID_EPOCH + timedelta(days=int(root_post_id) // _MICROS_A_DAY)
    ms = (int(root_post_id) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).date()


# ---------------------------------------------------------------------------------------------
# Spaces and members
# ---------------------------------------------------------------------------------------------


def spaces(platform: str) -> tuple[Space, ...]:
    """The brand's spaces on a platform (Slack channels, Discourse categories, Discord channels)."""
    _check_platform(platform)
    return tuple(
        Space(platform, native_id, name, interest, is_private)
        for p, native_id, name, interest, is_private in brand.COMMUNITY_SPACES
        if p == platform
    )


_FIRST = (
    "Alex Sam Jordan Taylor Morgan Casey Jamie Riley Avery Quinn Priya Arjun Mei Wei Hana Yuki Sofia "
    "Lucas Mateo Elena Ingrid Lars Nora Omar Leila Amara Kwame Chidi Zainab Diego Camila Tomas Anna "
    "Jonas Emma Liam Olivia Noah Ava Ethan Mia Lena Felix Clara Hugo Ines Pablo Marta Ravi Sanjay "
    "Fatima Yusuf Aisha Kenji Sora Min-jun Ji-woo Oskar Freya Astrid Nikolai Daria Ivan Zofia Petra"
).split()
_LAST = (
    "Smith Garcia Müller Rossi Dubois Kowalski Nguyen Kim Tanaka Patel Singh Okafor Mensah Silva "
    "Santos Johansson Larsen Novak Horvat Costa Fischer Weber Moreau Laurent Ivanova Popescu Haddad "
    "Rahman Chen Wang Li Ito Sato Park Lee Brown Wilson Clark Lewis Walker Young Hall Allen King "
    "Wright Lopez Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell"
).split()
_FREE_MAIL = ("gmail.com", "gmail.com", "gmail.com", "outlook.com", "proton.me", "yahoo.com")


def _slug(text: str) -> str:
    return "".join(c for c in text.lower().replace(" ", ".") if c.isalnum() or c in ".-")


@functools.cache
def members(seed: int, scale: str) -> tuple[Member, ...]:
    """Everyone in the brand's communities at `scale` (employees, advocates, bots, the rest)."""
    brand.check_scale(scale)
    n = brand.COMMUNITY_MEMBERS[scale]
    rng = random.Random(f"{seed}:community:members:{scale}")
    start = brand.COMMUNITY_START_DATE
    out: list[Member] = []
    used_handles: set[str] = set()

    def handle_for(name: str) -> str:
        base = name.lower().split()[0] + name.lower().split()[-1][:1]
        handle = base
        while handle in used_handles:
            handle = f"{base}{rng.randint(2, 999)}"
        used_handles.add(handle)
        return handle

    # The system user and the bots: fixed.
    for pid, name, handle, platforms in brand.COMMUNITY_BOTS:
        used_handles.add(handle)
        out.append(Member(pid, name, handle, "", False, True, start, platforms))
    # The advocates: fixed people, non-employees, on several platforms, early joiners.
    for pid, name, handle, domain, platforms in brand.COMMUNITY_ADVOCATES:
        used_handles.add(handle)
        email = f"{_slug(name)}@{domain}"
        out.append(Member(pid, name, handle, email, False, False, start + timedelta(days=3), platforms))
    next_idx = 1 + max(int(m.person_id[1:]) for m in out)
    n_employees = max(4, n // 25)
    for i in range(next_idx, next_idx + n):
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        is_employee = i < next_idx + n_employees
        if is_employee:
            email = f"{_slug(name)}@{brand.EMPLOYEE_EMAIL_DOMAINS[0]}"
            joined = start + timedelta(days=rng.randint(0, 30))
            platforms = ("slack", "discourse", "discord") if rng.random() < 0.6 else ("slack", "discourse")
        else:
            if rng.random() < 0.55:
                domain = rng.choice(_FREE_MAIL)
            else:
                domain = f"{rng.choice(brand._COMPANY_A)}-{rng.choice(brand._COMPANY_B)}.com"
            email = f"{_slug(name)}{rng.randint(1, 99) if rng.random() < 0.3 else ''}@{domain}"
            # Early members at the start; the rest join steadily over two years.
            offset = rng.randint(0, 60) if rng.random() < 0.4 else rng.randint(0, 730)
            joined = start + timedelta(days=offset)
            platforms = tuple(
                p
                for p, share in (("slack", 0.8), ("discourse", 0.5), ("discord", 0.3))
                if rng.random() < share
            ) or ("slack",)
        out.append(Member(f"p{i:05d}", name, handle_for(name), email, is_employee, False, joined, platforms))
    return tuple(out)


@functools.cache
def _members_by_id(seed: int, scale: str) -> dict[str, Member]:
    return {m.person_id: m for m in members(seed, scale)}


@dataclass(frozen=True)
class _Pool:
    """A platform's human posters sorted by join date, with cumulative activity weights."""

    people: tuple[Member, ...]
    joined: tuple[date, ...]
    cum: tuple[float, ...]
    employees: tuple[Member, ...]

    def pick(self, rng: random.Random, day: date, exclude: str | None = None) -> Member:
        k = bisect.bisect_right(self.joined, day)
        if k == 0:
            return self.people[0]
        for _ in range(8):
            i = bisect.bisect_right(self.cum, rng.random() * self.cum[k - 1], 0, k - 1)
            if self.people[i].person_id != exclude:
                return self.people[i]
        return self.people[(i + 1) % k]


@functools.cache
def _pool(seed: int, scale: str, platform: str) -> _Pool:
    rng = random.Random(f"{seed}:community:weights:{scale}:{platform}")
    people = sorted(
        (m for m in members(seed, scale) if platform in m.platforms and not m.is_bot),
        key=lambda m: (m.joined, m.person_id),
    )
    advocates = set(brand.COMMUNITY_ADVOCATE_PERSON_IDS)
    n = len(people)
    cum, total = [], 0.0
    for m in people:
        if m.person_id in advocates:
            w = brand.COMMUNITY_ADVOCATE_SHARE * n / len(advocates)  # each ~ share/5 of all posts
        elif m.is_employee:
            w = 1.5
        else:
            w = min(2.5, rng.lognormvariate(-0.2, 0.6))
        total += w
        cum.append(total)
    return _Pool(
        tuple(people), tuple(m.joined for m in people), tuple(cum), tuple(m for m in people if m.is_employee)
    )


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_QUESTIONS = {
    "general": (
        "How do you all explain dark social to leadership?",
        "What's everyone's favourite way to track word of mouth?",
        "Anyone going to the Berlin data meetup next month?",
        "Is anyone measuring community-led growth in a sane way?",
        "Weekly check-in: what are you working on?",
        "Hi all, new here. We're a 40-person B2B team trying to understand where our pipeline comes from.",
    ),
    "analytics_engineering": (
        "How do you model sessions from GA4 in dbt without exploding costs?",
        "Incremental models on DuckDB: merge or delete+insert?",
        "Best way to test a channel-grouping macro in dbt?",
        "Our stg layer has 200 models now. How do you keep staging tidy?",
        "dbt snapshots vs SCD2 by hand for CRM data?",
        "Anyone got the Northwind dbt package running on Snowflake?",
    ),
    "attribution": (
        "Our direct traffic doubled after a LinkedIn push. Dark social or something broken?",
        "Self-reported attribution: free text or a dropdown?",
        "How do you weight 'how did you hear about us' answers against UTM data?",
        "Multi-touch attribution is dead, long live what?",
        "What lift do you see on branded search after a podcast appearance?",
        "UTM conventions: lower-case everything or not?",
    ),
    "ai": (
        "Anyone using LLMs to classify 'how did you hear about us' answers?",
        "ChatGPT referrals showing up in GA4 as chatgpt.com, how are you grouping them?",
        "Has anyone tried an AI agent writing dbt models? Results?",
        "Embedding community messages to find topics: worth it?",
        "How do you track traffic from AI search (Perplexity, Gemini)?",
        "Prompting an LLM to summarise a week of Slack threads: tips?",
    ),
    "careers": (
        "We're hiring a senior analytics engineer (remote, EU).",
        "Looking for my next role in marketing analytics, open to intros.",
        "Contract gig: GA4 + dbt cleanup, 6 weeks.",
        "Hiring: growth marketer who likes SQL.",
    ),
    "announcements": (
        "New on the blog this week.",
        "Release notes: warehouse sync is faster and the community model has interest tags.",
        "Office hours this Thursday at 16:00 UTC.",
        "We're hosting a webinar on measuring dark social.",
    ),
}
_BODIES = (
    "Curious how others handle this.",
    "We tried a few approaches and none felt right.",
    "Context: small team, GA4 + HubSpot, DuckDB warehouse.",
    "Any pointers welcome!",
    "Happy to share what we learned so far.",
    "Would love to compare notes.",
)
_ANSWERS = (
    "We had the same problem. What worked for us was tagging every link we share ourselves.",
    "+1, following this thread.",
    "Have a look at the deep-link heuristic: long paths typed 'directly' are almost always shared links.",
    "We ask 'how did you hear about us' on the demo form and bucket the answers weekly.",
    "Honestly we just accept that a chunk of direct is dark social and track the trend.",
    "Great question. We use a dropdown plus an optional free-text field.",
    "I wrote up our setup a while ago, happy to dig it out.",
    "Delete+insert per partition has been the least painful for us.",
    "Check your consent banner first, that one bit us hard.",
    "Thanks, this helped a lot!",
    "Same here, would love to see a template.",
    "We tried that, it works until someone forgets the UTM on a newsletter.",
    "Not sure it generalises, but in our data the lift lasts about three days.",
    "That's what we do too. Works fine at our size.",
)
_SELF_FOLLOW_UPS = (
    "Update: figured it out, it was a timezone issue in our staging model.",
    "Never mind, found the answer in the docs.",
    "Bumping this, anyone?",
    "Following up: we went with the simplest option for now.",
)
_THIRD_PARTY = (
    "https://docs.getdbt.com/docs/build/incremental-models",
    "https://github.com/dbt-labs/dbt-utils",
    "https://duckdb.org/docs/stable/sql/statements/insert",
    "https://support.google.com/analytics/answer/9756891",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://arxiv.org/abs/2005.14165",
    "https://news.ycombinator.com/item?id=40000000",
    "https://www.linkedin.com/pulse/dark-social-explained",
    "https://jobs.lever.co/acme-logistics/analytics-engineer",
    "https://dagster.io/blog/partitioned-assets",
)
_EMOJI = ("+1", "heart", "raised_hands", "eyes", "tada", "100", "pray", "rocket", "joy", "bulb")
_UTM = (
    "",
    "",
    "",
    "?utm_source=slack&utm_medium=community",
    "?utm_source=community&utm_medium=social&utm_campaign=weekly_digest",
    "?utm_source=newsletter&utm_medium=email",
)


@functools.cache
def _shareable(scale: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    pages = [
        p
        for p in brand.site_pages(scale)
        if p.kind == "content" and p.path != brand.PLANTED.shared_page and p.shareability > 0
    ]
    cum, total = [], 0.0
    for p in pages:
        total += p.shareability
        cum.append(total)
    return tuple(p.path for p in pages), tuple(cum)


def brand_url(rng: random.Random, path: str, *, utm: bool = True) -> str:
    host = brand.BRAND_DOMAIN if rng.random() < 0.75 else "www." + brand.BRAND_DOMAIN
    query = rng.choice(_UTM) if utm and "?" not in path else ""
    return f"https://{host}{path}{query}"


def _brand_link(rng: random.Random, scale: str) -> str:
    paths, cum = _shareable(scale)
    i = bisect.bisect_right(cum, rng.random() * cum[-1], 0, len(cum) - 1)
    return brand_url(rng, paths[i])


def _root_text(rng: random.Random, platform: str, interest: str, scale: str) -> str:
    title = rng.choice(_QUESTIONS.get(interest, _QUESTIONS["general"]))
    body = rng.choice(_BODIES)
    r = rng.random()
    if r < brand.COMMUNITY_BRAND_LINK_SHARE:
        body += f" This post helped me frame it: {_brand_link(rng, scale)}"
    elif r < brand.COMMUNITY_BRAND_LINK_SHARE + 0.06:
        body += f" See {rng.choice(_THIRD_PARTY)}"
    return f"{title}\n\n{body}" if platform == "discourse" else f"{title} {body}"


def _reply_text(rng: random.Random, scale: str, mention: str | None) -> str:
    text = rng.choice(_ANSWERS)
    r = rng.random()
    if r < brand.COMMUNITY_BRAND_LINK_SHARE * 0.6:
        text += f" {_brand_link(rng, scale)}"
    elif r < brand.COMMUNITY_BRAND_LINK_SHARE * 0.6 + 0.05:
        text += f" {rng.choice(_THIRD_PARTY)}"
    if mention:
        text = f"@{mention} {text}"
    return text


# ---------------------------------------------------------------------------------------------
# Volume and timing
# ---------------------------------------------------------------------------------------------


def interest_factor(interest: str, day: date) -> float:
    """Growth of an interest's activity on `day` relative to the community start (1.0 = flat)."""
    if interest == brand.COMMUNITY_GROWING_INTEREST:
        halves = (day - brand.COMMUNITY_START_DATE).days / brand.COMMUNITY_GROWTH_PERIOD_DAYS
        return (1.0 + brand.COMMUNITY_GROWTH_PER_PERIOD) ** max(0.0, halves)
    return 1.0


def _time_of_day(rng: random.Random, day: date) -> datetime:
    # Working hours across Europe and the Americas: mostly 07:00-22:00 UTC.
    hour = min(23.99, max(0.0, rng.gauss(14.0, 4.0))) if rng.random() < 0.9 else rng.uniform(0, 24)
    seconds = int(hour * 3600)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=seconds, microseconds=rng.randint(0, 999_999)
    )


def _after(rng: random.Random, t: datetime, minutes: float) -> datetime:
    return t + timedelta(seconds=max(1, int(minutes * 60)), microseconds=rng.randint(0, 999_999))


# ---------------------------------------------------------------------------------------------
# Threads of a day
# ---------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    space: Space
    author: Member
    created: datetime
    text: str
    reply_to: int | None  # index in the thread of the post replied to
    subtype: str | None = None


def _reactions(
    rng: random.Random, pool: _Pool, day: date, author: str, rate: float
) -> tuple[tuple[str, str], ...]:
    n = 0
    while rng.random() < rate and n < 8:
        n += 1
    out: dict[str, str] = {}
    for _ in range(n):
        who = pool.pick(rng, day, exclude=author)
        if who.person_id != author:
            out.setdefault(who.person_id, rng.choice(_EMOJI))
    return tuple(out.items())


def _plan_replies(rng: random.Random, pool: _Pool, root: _Draft, day: date, scale: str) -> list[_Draft]:
    """Replies to a root: the answered / author-only / late / never mix of brand.py."""
    author = root.author
    shares = (
        brand.COMMUNITY_THREAD_OUTCOMES_EMPLOYEE if author.is_employee else brand.COMMUNITY_THREAD_OUTCOMES
    )
    r, outcome = rng.random(), "never"
    acc = 0.0
    for name, share in shares:
        acc += share
        if r < acc:
            outcome = name
            break
    if root.space.interest == "announcements" and outcome != "never":
        outcome = "answered"
    out: list[_Draft] = []
    if outcome == "never":
        return out
    if outcome == "self_only":
        t = _after(rng, root.created, rng.uniform(20, 60 * 30))
        out.append(_Draft(root.space, author, t, rng.choice(_SELF_FOLLOW_UPS), 0))
        return out
    # First answer by someone else: mostly within hours; some days later; "late" after 7 days.
    if outcome == "late":
        first_after = rng.uniform(7.2, 14.0) * 1440
    elif rng.random() < 0.8:
        first_after = rng.expovariate(1 / 120)  # minutes
    else:
        first_after = rng.uniform(1, 6.5) * 1440
    if rng.random() < 0.3 and pool.employees:
        responder = rng.choice(pool.employees)
    else:
        responder = pool.pick(rng, day, exclude=author.person_id)
    if responder.person_id == author.person_id:
        responder = pool.pick(rng, day + timedelta(days=1), exclude=author.person_id)
    t = _after(rng, root.created, min(first_after, 6.9 * 1440) if outcome != "late" else first_after)
    mention = author.handle if rng.random() < 0.3 else None
    out.append(_Draft(root.space, responder, t, _reply_text(rng, scale, mention), 0))
    # More replies: a geometric number, from others or the author, minutes to days apart.
    while rng.random() < 0.62 and len(out) < 40:
        who = author if rng.random() < 0.3 else pool.pick(rng, day, exclude=author.person_id)
        gap = rng.expovariate(1 / 90) if rng.random() < 0.85 else rng.uniform(1, 5) * 1440
        t = _after(rng, t, gap)
        reply_to = rng.choice([0, len(out)])  # to the root or to the last reply
        out.append(_Draft(root.space, who, t, _reply_text(rng, scale, None), reply_to))
    limit = root.created + timedelta(days=brand.COMMUNITY_MAX_REPLY_LAG_DAYS)
    return [d for d in out if d.created < limit]


@functools.cache
def _threads(seed: int, scale: str, platform: str, day: date) -> tuple[tuple[Post, ...], ...]:
    """Every thread started on `day` (root first, replies in time order), as final Posts."""
    if day < brand.COMMUNITY_START_DATE:
        return ()
    rng = random.Random(f"{seed}:community:{platform}:threads:{day.isoformat()}")
    pool = _pool(seed, scale, platform)
    by_id = _members_by_id(seed, scale)
    space_list = spaces(platform)
    per_day = brand.COMMUNITY_THREADS_PER_DAY[scale] * brand.COMMUNITY_PLATFORM_VOLUME[platform]
    weekday = brand.COMMUNITY_WEEKDAY_FACTORS[day.weekday()]
    threads: list[list[_Draft]] = []

    for space in space_list:
        weight = 0.05 if space.is_private else brand.COMMUNITY_INTEREST_WEIGHTS.get(space.interest, 0.1)
        expected = per_day * weight * weekday * interest_factor(space.interest, day)
        n = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        for _ in range(n):
            if space.interest == "announcements" or space.is_private:
                author = rng.choice(pool.employees) if pool.employees else pool.pick(rng, day)
            else:
                author = pool.pick(rng, day)
            root = _Draft(
                space, author, _time_of_day(rng, day), _root_text(rng, platform, space.interest, scale), None
            )
            threads.append([root, *_plan_replies(rng, pool, root, day, scale)])

    # Planted: the community-shared page on every share date (several posts per platform).
    if brand.PLANTED.share_date_for(day) == day:
        n_shares = brand.COMMUNITY_SHARED_PAGE_POSTS.get(platform, 0)
        targets = [s for s in space_list if s.interest in ("general", "attribution") and not s.is_private]
        sharers = list(brand.COMMUNITY_ADVOCATE_PERSON_IDS)
        rng.shuffle(sharers)
        for i in range(n_shares):
            space = targets[i % len(targets)]
            if i < 2 and platform in by_id[sharers[i]].platforms:
                author = by_id[sharers[i]]
            else:
                author = pool.pick(rng, day)
            url = brand_url(rng, brand.PLANTED.shared_page)
            lead = rng.choice(
                (
                    "This playbook is the best thing I've read on measuring dark social:",
                    "Sharing this, it finally explains why our direct traffic keeps growing:",
                    "If you're arguing about attribution this week, read this first:",
                )
            )
            text = (
                f"Dark social measurement playbook\n\n{lead} {url}"
                if platform == "discourse"
                else f"{lead} {url}"
            )
            root = _Draft(space, author, _time_of_day(rng, day), text, None)
            threads.append([root, *_plan_replies(rng, pool, root, day, scale)])

    # Bots and Slack system posts: standalone.
    bot = by_id.get(brand.COMMUNITY_BOTS[1][0])
    if bot and platform in bot.platforms and day.weekday() < 5:
        announce = next((s for s in space_list if s.interest == "announcements"), space_list[0])
        text = f"New on the blog: {_brand_link(rng, scale)}"
        threads.append([_Draft(announce, bot, _time_of_day(rng, day), text, None, "bot_message")])
    if platform == "slack":
        general = space_list[0]
        for m in pool.people:
            if m.joined == day:
                t = _time_of_day(rng, day)
                threads.append(
                    [
                        _Draft(
                            general,
                            m,
                            t,
                            f"<@{m.user_id('slack')}> has joined the channel",
                            None,
                            "channel_join",
                        )
                    ]
                )
        if day.day == 1:
            author = rng.choice(pool.employees) if pool.employees else pool.people[0]
            topic = f"Topic for {day:%B}: {rng.choice(_QUESTIONS['general'])}"
            text = f"<@{author.user_id('slack')}> set the channel topic: {topic}"
            threads.append([_Draft(general, author, _time_of_day(rng, day), text, None, "channel_topic")])

    threads.sort(key=lambda th: th[0].created)
    out: list[tuple[Post, ...]] = []
    for t_idx, drafts in enumerate(threads):
        posts: list[Post] = []
        drafts = [drafts[0], *sorted(drafts[1:], key=lambda d: d.created)] if len(drafts) > 2 else drafts
        for r_idx, d in enumerate(drafts):
            post_id = _post_id(platform, d.created, day, t_idx, r_idx, rng.getrandbits(22))
            is_system = d.subtype in ("channel_join", "channel_topic")
            rate = 0.0 if is_system else (0.55 if r_idx == 0 else 0.3)
            reactions = _reactions(rng, pool, d.created.date(), d.author.person_id, rate)
            reply_to = None
            if r_idx > 0:
                target = min(d.reply_to or 0, r_idx - 1)
                reply_to = posts[target].post_id
            posts.append(
                Post(
                    platform=platform,
                    space_id=d.space.native_id,
                    post_id=post_id,
                    thread_root_id=posts[0].post_id if r_idx > 0 else None,
                    author_person_id=d.author.person_id,
                    created_at=d.created,
                    text=d.text,
                    reply_to_post_id=reply_to,
                    reactions=reactions,
                    subtype=d.subtype,
                )
            )
        out.append(tuple(posts))
    return tuple(out)


@functools.cache
def _thread_index(seed: int, scale: str, platform: str, day: date) -> dict[str, tuple[Post, ...]]:
    return {th[0].post_id: th for th in _threads(seed, scale, platform, day)}


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def posts_on(seed: int, scale: str, platform: str, day: date) -> tuple[Post, ...]:
    """Every post CREATED on `day` (UTC), replies to older threads included, in time order."""
    _check_platform(platform)
    brand.check_scale(scale)
    out: list[Post] = []
    for back in range(brand.COMMUNITY_MAX_REPLY_LAG_DAYS + 1):
        start = day - timedelta(days=back)
        for thread in _threads(seed, scale, platform, start):
            for p in thread:
                if p.created_at.date() == day:
                    out.append(p)
    out.sort(key=lambda p: (p.created_at, p.post_id))
    return tuple(out)


def thread_posts(seed: int, scale: str, platform: str, root_post_id: str) -> tuple[Post, ...]:
    """A thread: its root and every reply (over the following days). Empty if there is no such root."""
    _check_platform(platform)
    brand.check_scale(scale)
    try:
        day = _start_day_of(platform, root_post_id)
    except (ValueError, OverflowError, OSError):
        return ()
    return _thread_index(seed, scale, platform, day).get(root_post_id, ())


def threads_started_on(seed: int, scale: str, platform: str, day: date) -> tuple[tuple[Post, ...], ...]:
    """Every thread whose root was posted on `day` (each: root then replies)."""
    _check_platform(platform)
    brand.check_scale(scale)
    return _threads(seed, scale, platform, day)


def member(seed: int, scale: str, person_id: str) -> Member:
    return _members_by_id(seed, scale)[person_id]


def weekly_activity(seed: int, scale: str, platform: str, monday: date) -> dict[str, int]:
    """Posts per interest in the ISO week starting `monday` (a helper for tests and the demo)."""
    by_space = {s.native_id: s.interest for s in spaces(platform)}
    out: dict[str, int] = {}
    for i in range(7):
        for p in posts_on(seed, scale, platform, monday + timedelta(days=i)):
            if p.subtype is None:
                out[by_space[p.space_id]] = out.get(by_space[p.space_id], 0) + 1
    return out


__all__ = [
    "PLATFORMS",
    "Member",
    "Post",
    "Space",
    "brand_url",
    "interest_factor",
    "member",
    "members",
    "posts_on",
    "spaces",
    "thread_posts",
    "threads_started_on",
    "weekly_activity",
]
