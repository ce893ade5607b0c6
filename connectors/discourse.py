"""Discourse API connector: categories, topics, posts, likes and users of one forum.

Base URL: DISCOURSE_URL, the forum's own address (https://forum.example.com, or a subfolder
install such as https://example.com/forum). Every request sends the headers `Api-Key`
(DISCOURSE_API_KEY, an admin key for the users list) and `Api-Username` (DISCOURSE_API_USERNAME,
default "system"); the key never travels in a URL.

Endpoints and paging:
- `/categories.json?include_subcategories=true`: one answer; subcategories flattened with their
  parent's id.
- `/latest.json?order=activity&per_page=100&page=N`: topic summaries, newest activity first; the
  next page is the query of `topic_list.more_topics_url`, present only while more pages exist.
- `/posts.json?before={post_id}`: the forum's latest posts across topics, 50 a page, newest id
  first; the next page asks for ids below the smallest seen. Discourse numbers posts in the order
  they are written, so paging stops at the first page holding a reply written before the days
  asked for (a first post proves nothing: a move re-creates it with a new id and its old date).
  It lists regular, visible posts only.
- `/t/{id}.json` (then `/t/{id}/posts.json?post_ids[]=...` in chunks of 20, newest first, the
  whole stream when its ids are out of order): a topic read whole, only where /posts.json did not
  account for all its posts (a gap in its post numbers up to /latest's highest_post_number: a
  small action, a whisper, a hidden or deleted post, a post moved in from older days; an active
  topic with no post listed; the topic of a post /latest did not list), once per load.
- `/user_actions.json?username={author}&filter=2&offset=N`: the likes an author received (post,
  liker, moment), 30 a page, newest like first: who liked the posts whose `actions_summary` shows
  a like, per author rather than per post. A like comes after its post, so an author's stream is
  paged (once a load, shared by every chunk) only down to the oldest liked post of theirs asked
  for; a post is complete once a like older than the post has been seen. The next page is asked
  for while it is expected to cost no more calls than it saves: the first page always (it may
  complete every post at once), later ones while the pace of the likes seen so far says that
  reaching the j-th newest incomplete post takes at most j pages; the rest are asked one by one:
- `/post_action_users.json?id={post_id}&post_action_type_id=2`: who liked one post (page=N while a
  page is full): a post that the next page of its author's stream is not worth reading for; every
  liked post of an author whose stream is refused (403/404: a key without admin rights may not
  list others' likes received, and after two such refusals and no success it is not asked again;
  a renamed or deleted author); and a post whose like count says more likes than the stream
  showed. A lookup of either kind counts against `max_like_lookups` per client; the days of the
  posts left without their likers are in `days_missing_likes`. On a re-pull (`activity_plan`'s
  `known_likes`: the likers loaded before), a post whose like count equals the number of its known
  likers keeps them and only the others are looked up, each author's stream then paged only down to
  the oldest of those (the count is `actions_summary`'s, which a staff key sees; without it, a post
  is looked up). (Per liker,
  /user_actions.json?filter=1 would need a call per member who may have liked, at least:
  bench.discourse_calls compares the routes.)
- `/admin/users/list/active.json?page=N&show_emails=true`: 100 users a page, until a shorter page.
  A key that may not list users gets 403: `users_from_posts` derives them from the posts loaded.

Day partition (UTC): `activity_plan(days)` pages /latest by activity until a page ends before the
first day and keeps the topics created on or before the last day and bumped on or after the first
(their rows come from these summaries); `chunk_activity(chunk, plan)` pages /posts.json as far as
the chunk needs (once for the whole range, shared by every chunk and thread) and sorts the posts
into the day they were created (a post moved in from an older topic, into the topic's day: the
older days no longer find it). A topic's row belongs to the day it was created; likes belong to
their post's day (re-pull trailing days to catch late replies and likes). One lookup of one item
that answers 403/404/410 (a topic made private, a deleted post's likers) is skipped with a warning
and counted in `skipped_lookups`; the rest of the day loads.

Failures: 429 (Retry-After, JSON `extras.wait_seconds`, or text/plain from the global limiter),
5xx, dropped connections and cut bodies are retried by `connectors.http.call_with_retries`; other
errors (`{"errors": [...], "error_type": ...}`) fail at once with `ApiError`. A field the parser
needs that is missing raises `DiscourseSchemaError` naming it; an unknown field is logged once.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import requests

from connectors.errors import ConnectorConfigError, ConnectorError
from connectors.http import (
    ApiError,
    ApiSession,
    RetryPolicy,
    TransientError,
    call_with_retries,
    json_body,
    parse_retry_after,
    pool_size_from_env,
    raise_for_transient_status,
    redact,
    send,
)
from connectors.ratelimit import RateLimits
from connectors.secrets import register_secret

log = logging.getLogger(__name__)

SOURCE = "discourse"
LIKE = 2  # post_action_type_id of a like
POST_IDS_PER_REQUEST = 20  # Discourse's chunk_size
LIKERS_PER_PAGE = 200
USER_ACTIONS_PER_PAGE = 30  # /user_actions.json's page (UserActionsController's default limit)
REFUSALS_BEFORE_PER_POST = 2  # authors' streams refused, none read: the key may not read them
WAS_LIKED = 2  # the user_actions filter of the likes a user received
LATEST_PER_PAGE = 100  # /latest.json's per_page maximum
LATEST_POSTS_PER_PAGE = 50  # /posts.json's page (LatestPostsQuery)
USERS_PER_PAGE = 100  # /admin/users/list's page (AdminUserIndexQuery)

CATEGORIES_SCHEMA = pa.schema(
    [
        pa.field("category_id", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("slug", pa.string()),
        pa.field("parent_category_id", pa.int64()),
        pa.field("read_restricted", pa.bool_()),
    ]
)
TOPICS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("topic_id", pa.int64()),
        pa.field("category_id", pa.int64()),
        pa.field("title", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("last_posted_at", pa.timestamp("us", tz="UTC")),
        pa.field("posts_count", pa.int64()),
        pa.field("reply_count", pa.int64()),
        pa.field("like_count", pa.int64()),
        pa.field("views", pa.int64()),
        pa.field("user_id", pa.int64()),
        pa.field("archetype", pa.string()),
        pa.field("closed", pa.bool_()),
        pa.field("archived", pa.bool_()),
    ]
)
POSTS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("post_id", pa.int64()),
        pa.field("topic_id", pa.int64()),
        pa.field("post_number", pa.int64()),
        pa.field("reply_to_post_number", pa.int64()),
        pa.field("user_id", pa.int64()),
        pa.field("username", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("cooked", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("like_count", pa.int64()),
        pa.field("reads", pa.int64()),
        pa.field("post_type", pa.int64()),  # 1 regular, 2 moderator_action, 3 small_action, 4 whisper
        pa.field("action_code", pa.string()),
        pa.field("hidden", pa.bool_()),
        pa.field("deleted_at", pa.timestamp("us", tz="UTC")),
    ]
)
USERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64()),
        pa.field("username", pa.string()),
        pa.field("name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("email_domain", pa.string()),
        pa.field("admin", pa.bool_()),
        pa.field("moderator", pa.bool_()),
        pa.field("trust_level", pa.int64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("last_seen_at", pa.timestamp("us", tz="UTC")),
        pa.field("staged", pa.bool_()),
    ]
)
POST_LIKES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),  # the liked post's day
        pa.field("post_id", pa.int64()),
        pa.field("user_id", pa.int64()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),  # only when the forum sends it
    ]
)

# Fields the parser needs (a missing one fails the load, naming it) and every field the published
# contract knows (anything else is logged once as new).
_NEEDS = {
    "category": ("id", "name", "slug"),
    "latest topic": ("id", "created_at", "bumped_at"),
    "topic": (
        "id", "title", "category_id", "created_at", "posts_count", "reply_count", "like_count",
        "views", "user_id", "archetype", "closed", "archived", "post_stream",
    ),
    "post": ("id", "topic_id", "post_number", "user_id", "username", "created_at", "cooked", "post_type"),
    "latest post": (
        "id", "topic_id", "post_number", "user_id", "username", "created_at", "cooked", "post_type",
    ),
    "user": ("id", "username", "created_at"),
    "liker": ("id",),
    "user action": ("action_type", "created_at", "post_id", "acting_user_id"),
}  # fmt: skip
_NEEDED = {kind: frozenset(names) for kind, names in _NEEDS.items()}
_KNOWN = {
    "category": set(
        "can_edit color default_list_filter default_top_period default_view description "
        "description_excerpt description_text emoji has_children icon id is_uncategorized "
        "minimum_required_tags name navigate_to_first_post_after_read notification_level "
        "num_featured_topics permission position post_count read_restricted show_subcategory_list slug "
        "sort_ascending sort_order style_type subcategory_count subcategory_ids subcategory_list "
        "subcategory_list_style text_color topic_count topic_template topic_title_placeholder topic_url "
        "topics_all_time topics_day topics_month topics_week topics_year uploaded_background "
        "uploaded_background_dark uploaded_logo uploaded_logo_dark parent_category_id".split()
    ),
    "latest topic": set(
        "archetype archived bookmarked bumped bumped_at category_id closed created_at fancy_title "
        "featured_link has_summary highest_post_number id image_url last_posted_at last_poster_username "
        "last_read_post_number like_count liked notification_level op_like_count pinned pinned_globally "
        "posters posts_count reply_count slug title unpinned unread_posts unseen views visible tags "
        "tags_descriptions excerpt".split()
    ),
    "topic": set(
        "post_stream timeline_lookup suggested_topics tags tags_descriptions id title fancy_title "
        "posts_count created_at views reply_count like_count last_posted_at visible closed archived "
        "has_summary archetype slug category_id word_count deleted_at user_id featured_link "
        "pinned_globally pinned_at pinned_until image_url slow_mode_seconds draft draft_key "
        "draft_sequence unpinned pinned current_post_number highest_post_number deleted_by has_deleted "
        "actions_summary chunk_size bookmarked bookmarks topic_timer message_bus_last_id "
        "participant_count show_read_indicator thumbnails slow_mode_enabled_until details".split()
    ),
    "post": set(
        "actions_summary admin avatar_template bookmarked can_delete can_edit can_recover "
        "can_see_hidden_post can_view_edit_history can_wiki cooked created_at deleted_at display_username "
        "edit_reason flair_bg_color flair_color flair_name flair_url hidden id incoming_link_count "
        "link_counts moderator name post_number post_type primary_group_name quote_count read "
        "readers_count reads reply_count reply_to_post_number reviewable_id reviewable_score_count "
        "reviewable_score_pending_count score staff topic_id topic_slug trust_level updated_at "
        "user_deleted user_id user_title username version wiki yours raw action_code like_count "
        "flair_group_id".split()
    ),
    "latest post": set(
        "actions_summary admin avatar_template badges_granted bookmarked can_delete can_edit can_recover "
        "can_see_hidden_post can_view_edit_history can_wiki category_id cooked created_at deleted_at "
        "display_username edit_reason excerpt flair_bg_color flair_color flair_group_id flair_name flair_url "
        "hidden id incoming_link_count moderator name post_number post_type post_url posts_count "
        "primary_group_name quote_count raw readers_count reads reply_count reply_to_post_number "
        "reviewable_id reviewable_score_count reviewable_score_pending_count score staff topic_html_title "
        "topic_id topic_slug topic_title trust_level truncated updated_at user_deleted user_id user_title "
        "username version wiki yours like_count action_code".split()
    ),
    "user": set(
        "active admin avatar_template created_at created_at_age days_visited email id last_emailed_age "
        "last_emailed_at last_seen_age last_seen_at manual_locked_trust_level moderator name post_count "
        "posts_read_count secondary_emails staged time_read title topics_entered trust_level "
        "username".split()
    ),
    "liker": set("id username name avatar_template post_url username_lower unknown created_at".split()),
    "user action": set(
        "excerpt action_type created_at avatar_template acting_avatar_template slug topic_id "
        "target_user_id target_name target_username post_number post_id username name user_id "
        "acting_username acting_name acting_user_id title deleted hidden post_type action_code "
        "category_id closed archived".split()
    ),
}


class DiscourseConfigError(ConnectorConfigError):
    """A Discourse setting is missing or malformed (raised before any request)."""


class DiscourseSchemaError(ConnectorError):
    """An answer lacks a field the connector needs (renamed or removed upstream)."""


# --- configuration ---------------------------------------------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _forum_url(value: object) -> str:
    text = str(value or "").strip().rstrip("/")
    example = "for example DISCOURSE_URL=https://forum.example.com (the address you open in a browser)"
    if not text:
        raise DiscourseConfigError(
            f"DISCOURSE_URL is not set: set it to your forum's https address, {example}."
        )
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise DiscourseConfigError(
            f"DISCOURSE_URL={text!r} is not a URL: use the forum's https address, {example}."
        )
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise DiscourseConfigError(
            f"DISCOURSE_URL={text!r} uses http: Discourse sends the API key with every request, so use "
            f"https ({example})."
        )
    if parts.query or parts.fragment or parts.path.endswith(".json") or "/admin" in parts.path:
        raise DiscourseConfigError(
            f"DISCOURSE_URL={text!r} points at a page, not the forum: give the forum's root only "
            f"(scheme and host, plus the subfolder if the forum lives in one), {example}."
        )
    return text


def _positive(value: object, name: str, kind: type = float) -> Any:
    try:
        number = kind(str(value).strip())
    except ValueError:
        number = -1
    if not number > 0:
        raise DiscourseConfigError(f"{name}={value!r} must be a positive number.")
    return number


@dataclass(frozen=True)
class DiscourseConfig:
    """Settings of the Discourse connector, validated on construction.

    Args:
        url: the forum's root (DISCOURSE_URL).
        api_key: an API key (DISCOURSE_API_KEY); admin scope for the users list. Never shown.
        api_username: the user the key acts as (DISCOURSE_API_USERNAME, default "system").
        include_subcategories: list subcategories with categories.
        max_like_lookups: at most this many like lookups per client (calls to /user_actions.json
            and /post_action_users.json).
        timeout_seconds: per request (DISCOURSE_TIMEOUT_SECONDS).
        retry: the retry policy (HTTP_MAX_ATTEMPTS, HTTP_MAX_RETRY_SECONDS).
    """

    DEFAULT_USERNAME: ClassVar[str] = "system"

    url: str
    api_key: str = field(repr=False)
    api_username: str = DEFAULT_USERNAME
    include_subcategories: bool = True
    max_like_lookups: int = 20_000
    timeout_seconds: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "url", _forum_url(self.url))
        key = str(self.api_key or "").strip()
        if not key:
            raise DiscourseConfigError(
                "DISCOURSE_API_KEY is not set: create a key in your forum's Admin > API > New API Key "
                "(user level 'All users' or an admin, scope: global or read), and set it here."
            )
        if any(c.isspace() for c in key):
            raise DiscourseConfigError(
                "DISCOURSE_API_KEY holds whitespace: paste the key alone, without quotes or line breaks."
            )
        set_(self, "api_key", key)
        register_secret(key)
        username = str(self.api_username or "").strip()
        if not username or any(c.isspace() for c in username):
            raise DiscourseConfigError(
                f"DISCOURSE_API_USERNAME={self.api_username!r} is not a username: use the user the key acts "
                "as, usually 'system'."
            )
        set_(self, "api_username", username)
        set_(self, "max_like_lookups", _positive(self.max_like_lookups, "DISCOURSE_MAX_LIKE_LOOKUPS", int))
        set_(self, "timeout_seconds", _positive(self.timeout_seconds, "DISCOURSE_TIMEOUT_SECONDS"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DiscourseConfig:
        """DISCOURSE_URL, DISCOURSE_API_KEY, DISCOURSE_API_USERNAME, DISCOURSE_MAX_LIKE_LOOKUPS,
        DISCOURSE_TIMEOUT_SECONDS and the shared HTTP_MAX_ATTEMPTS / HTTP_MAX_RETRY_SECONDS."""
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("DISCOURSE_URL", ""),
            api_key=env.get("DISCOURSE_API_KEY", ""),
            api_username=env.get("DISCOURSE_API_USERNAME") or cls.DEFAULT_USERNAME,
            max_like_lookups=env.get("DISCOURSE_MAX_LIKE_LOOKUPS") or 20_000,
            timeout_seconds=env.get("DISCOURSE_TIMEOUT_SECONDS") or 60.0,
            retry=RetryPolicy.from_env(env),
            rate_limits=RateLimits.from_env(env),
        )


# --- parsing helpers -------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A Discourse timestamp ("2025-07-03T10:12:45.123Z") as an aware UTC datetime."""
    if value in (None, ""):
        return None
    text = value if type(value) is str else str(value)
    if text.endswith("Z"):  # fromisoformat reads "Z" from Python 3.11 on
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


@dataclass
class DayActivity:
    """What `activity` found for one UTC day: Arrow tables with TOPICS/POSTS/POST_LIKES_SCHEMA."""

    day: date
    topics: pa.Table
    posts: pa.Table
    post_likes: pa.Table


class TopicSpan(NamedTuple):
    """A topic's id and the span of its activity (from /latest): which topics a day range fetches."""

    topic_id: int
    created: datetime
    bumped: datetime


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


class TopicSpans:
    """The TopicSpans of a range, held as three arrays (id, created and bumped in microseconds):
    24 bytes a topic instead of ~230 for a tuple of an int and two datetimes, so a year of a busy
    forum (~100k topics) holds ~2 MB for the whole load, not ~25 MB. Reads as a sequence of
    TopicSpan."""

    def __init__(self) -> None:
        self._ids, self._created, self._bumped = array("q"), array("q"), array("q")

    def append(self, topic_id: int, created: datetime, bumped: datetime) -> None:
        self._ids.append(topic_id)
        self._created.append(_micros(created))
        self._bumped.append(_micros(bumped))

    def active(self, start: datetime, end: datetime) -> Iterator[int]:
        """The ids of the topics created before `end` and bumped at or after `start`."""
        before, since = _micros(end), _micros(start)
        for topic_id, created, bumped in zip(self._ids, self._created, self._bumped, strict=True):
            if created < before and bumped >= since:
                yield topic_id

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i: int) -> TopicSpan:  # also iteration: the arrays raise IndexError past the end
        return TopicSpan(
            self._ids[i], _EPOCH + self._created[i] * _MICROSECOND, _EPOCH + self._bumped[i] * _MICROSECOND
        )


def _original_poster(summary: dict) -> int | None:
    """The topic author's user id in a /latest summary: the poster described as Original Poster."""
    for poster in summary.get("posters") or []:
        if isinstance(poster, dict) and "Original Poster" in str(poster.get("description") or ""):
            return _int_or_none(poster.get("user_id"))
    return None


@dataclass
class AuthorLikes:
    """How far one author's likes received (/user_actions.json?filter=2) have been paged in a load,
    and the likers seen, by post. Paged under `lock` (chunks on other threads share it)."""

    username: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    offset: int = 0  # the next page starts here
    floor: datetime | None = None  # the oldest like seen: every newer like has been seen
    newest: datetime | None = None  # the newest like seen
    done: bool = False  # the stream's end was seen
    refused: bool = False  # the stream answered 403/404: this author's likers come per post
    likers: dict[int, dict[int, None]] = field(default_factory=dict)  # post id -> likers, newest first

    def covers(self, created: datetime) -> bool:
        """Every like of a post created at `created` has been seen (a like comes after its post)."""
        return self.done or (self.floor is not None and self.floor < created)

    def worth_a_page(self, left: list[datetime]) -> bool:
        """Whether the next page is expected to cost no more calls than it saves, for incomplete
        posts created at `left`: the first page, always; a later one when, at the pace of the likes
        seen so far (30 a page), the j-th newest of them is at most j pages away (j per-post calls
        saved)."""
        if not left or self.done:
            return False
        if self.floor is None or self.newest is None:
            return True
        span = (self.newest - self.floor).total_seconds()
        if span <= 0:
            return len(left) >= 2
        page_seconds = span * USER_ACTIONS_PER_PAGE / self.offset
        for j, created in enumerate(sorted(left, reverse=True), start=1):
            if max(1, math.ceil((self.floor - created).total_seconds() / page_seconds)) <= j:
                return True
        return False

    def take(self, page: list[dict]) -> None:
        for action in page:
            moment = parse_time(action["created_at"])
            self.floor = moment if self.floor is None else min(self.floor, moment)
            self.newest = moment if self.newest is None else max(self.newest, moment)
            if action["post_id"] in (None, "") or int(action["action_type"]) != WAS_LIKED:
                continue
            # a like given while paging shifts the offsets: a like seen twice is kept once
            self.likers.setdefault(int(action["post_id"]), {})[int(action["acting_user_id"])] = None
        self.offset += len(page)
        self.done = len(page) < USER_ACTIONS_PER_PAGE


@dataclass
class ActivityPlan:
    """What one load of a range of days shares between its chunks (and their threads): the topics
    /latest lists as active, and how far /posts.json has been paged. Guarded by `lock`.

    Args:
        first, last: the range's days.
        topics: the spans of the active topics.
        highest: each active topic's highest_post_number (from /latest).
        summaries: the /latest summaries of the topics created in the range (their rows).
    """

    first: date
    last: date
    topics: TopicSpans
    highest: dict[int, int]
    summaries: dict[int, dict]
    lock: threading.Lock = field(default_factory=threading.Lock)
    posts_before: int | None = None  # the next /posts.json page asks for ids below this
    posts_floor: datetime | None = None  # every post written at or after this has been seen
    posts_done: bool = False  # the oldest post of the forum has been seen
    numbers: dict[int, tuple[int, int]] = field(default_factory=dict)  # topic -> (lowest number, count)
    by_day: dict[date, dict[int, dict]] = field(default_factory=dict)  # posts not yet handed out
    topic_rows: dict[date, list[dict]] = field(default_factory=dict)
    strays: set[int] = field(default_factory=set)  # topics of posts seen that /latest did not list
    read_whole: set[int] = field(default_factory=set)  # topics read through /t/{id}.json
    full_topics: dict[int, dict] = field(default_factory=dict)
    authors: dict[str, AuthorLikes] = field(default_factory=dict)  # by lowercase username
    # The likers already loaded for the range's posts ({post id: [{"id", "created_at"}]}), on a
    # nightly re-pull: a post whose like count still equals them keeps them, unlooked-up. None: every
    # liked post is looked up (a backfill, a first load).
    known_likes: Mapping[int, list[dict]] | None = None
    _created: dict[int, datetime] | None = None

    def author(self, username: str) -> AuthorLikes:
        """The likes-received stream of `username` as far as it has been paged (one per load)."""
        with self.lock:
            return self.authors.setdefault(username.lower(), AuthorLikes(username))

    def created(self, topic_id: int) -> datetime | None:
        """An active topic's created_at (None for a topic /latest did not list)."""
        if self._created is None:
            self._created = {span.topic_id: span.created for span in self.topics}
        return self._created.get(topic_id)


# --- the client ------------------------------------------------------------------------------------


class DiscourseClient:
    """A client of one Discourse forum.

    Args:
        config: validated settings (DiscourseConfig).
        sleep: how retries wait (tests may pass a fake).
    """

    def __init__(self, config: DiscourseConfig, sleep: Callable[[float], None] | None = None):
        self.config = config
        self._sleep = sleep
        self._session = ApiSession(pool_size_from_env(), credential_headers=("Api-Key", "Api-Username"))
        self._session.headers.update(
            {
                "Api-Key": config.api_key,
                "Api-Username": config.api_username,
                "Accept": "application/json",
                "User-Agent": "darksocial-warehouse discourse-connector",
            }
        )
        self._warned: set[tuple[str, str]] = set()
        self.like_lookups = 0
        self.like_lookups_skipped = 0
        self.days_missing_likes: set[date] = set()  # days with a liked post whose likers were skipped
        # Lookups of one item (a post's likers, a topic) that failed with 403/404/410 and were skipped.
        self.skipped_lookups = 0
        self.skipped_items: list[str] = []
        self.requests = 0
        # On a nightly re-pull (known likers given): liked posts whose count still matched the likers
        # loaded before (kept, not looked up) and those looked up.
        self.likes_kept = 0
        self.likes_changed = 0
        # Whether this key may page others' likes received: None until known (an admin key may; a
        # user key is refused, and after REFUSALS_BEFORE_PER_POST refusals without a success the
        # likers come per post).
        self.likes_received_allowed: bool | None = None
        self._likes_received_refusals = 0
        # The counters are shared by the threads that fetch chunks at once (chunk_activity).
        self._counting = threading.Lock()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> DiscourseClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one request ---
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` (relative to the forum root) with retries; the parsed JSON answer."""
        url = self.config.url + path
        endpoint = path

        def attempt() -> Any:
            self.config.rate_limits.acquire("discourse.api_key", self.config.api_key)
            with self._counting:
                self.requests += 1
            response = send(self._session, "GET", url, timeout=self.config.timeout_seconds, params=params)
            status = response.status_code
            if 200 <= status < 300:
                return json_body(response)
            message, error_type, wait = _error_details(response)
            if status == 429:
                raise TransientError(429, message, wait)
            raise_for_transient_status(response, message)
            if status in (401, 403) and error_type in (None, "invalid_access", "not_logged_in"):
                message += (
                    " (check DISCOURSE_API_KEY and DISCOURSE_API_USERNAME: the key must exist, not be "
                    "revoked, and act as a user allowed to read this; the users list needs an admin key)"
                )
            raise ApiError(SOURCE, endpoint, status, message)

        kwargs = {"sleep": self._sleep} if self._sleep is not None else {}
        return call_with_retries(
            attempt, source=SOURCE, endpoint=endpoint, policy=self.config.retry, **kwargs
        )

    # --- the one paging loop ---
    def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        next_params: Callable[[Any, dict[str, Any]], dict[str, Any] | None],
    ) -> Iterator[Any]:
        """Answers of `path`, page after page: `next_params(answer, params)` gives the next page's
        query (None at the end). Each answer is yielded as soon as it arrives."""
        current: dict[str, Any] | None = dict(params or {})
        number = 0
        while current is not None:
            answer = self.get(path, current)
            number += 1
            yield answer
            following = next_params(answer, current)
            if following is not None and following == current:
                raise ApiError(SOURCE, path, 200, f"paging does not advance past {current!r}")
            current = following
        log.debug("discourse: %s paged through %d answers", path, number)

    # --- schema checks ---
    def _check(self, kind: str, obj: Any, where: str) -> dict:
        if not isinstance(obj, dict):
            raise DiscourseSchemaError(
                f"discourse: {where}: expected a JSON object for a {kind}, got {type(obj).__name__}"
            )
        if not _NEEDED[kind] <= obj.keys():
            self._missing(kind, obj, where)
        known = _KNOWN[kind]
        if known.issuperset(obj):
            return obj
        for name in obj.keys() - known:
            if (kind, name) not in self._warned:
                self._warned.add((kind, name))
                log.warning("discourse: %s: new field %r in a %s, ignored", where, name, kind)
        return obj

    def _missing(self, kind: str, obj: dict, where: str) -> None:
        for name in _NEEDS[kind]:
            if name not in obj:
                ident = obj.get("id", "?")
                raise DiscourseSchemaError(
                    f"discourse: {where}: {kind} {ident} has no field {name!r} (renamed or removed in this "
                    f"Discourse version?); the load stops so that no partial day replaces good data."
                )

    def _field(self, answer: Any, path: tuple[str, ...], where: str) -> Any:
        value = answer
        for i, name in enumerate(path):
            if not isinstance(value, dict) or name not in value:
                dotted = ".".join(path[: i + 1])
                raise DiscourseSchemaError(
                    f"discourse: {where}: the answer has no field {dotted!r} (renamed or removed in this "
                    "Discourse version?)"
                )
            value = value[name]
        return value

    # --- categories ---
    def categories(self) -> pa.Table:
        """Every category (and subcategory, with its parent's id): CATEGORIES_SCHEMA."""
        params = {"include_subcategories": "true"} if self.config.include_subcategories else {}
        answer = self.get("/categories.json", params)
        rows: dict[int, dict] = {}

        def add(category: Any, parent: int | None) -> None:
            category = self._check("category", category, "/categories.json")
            rows[int(category["id"])] = {
                "category_id": int(category["id"]),
                "name": category["name"],
                "slug": category["slug"],
                "parent_category_id": _int_or_none(category.get("parent_category_id")) or parent,
                "read_restricted": bool(category.get("read_restricted", False)),
            }
            for child in category.get("subcategory_list") or []:
                add(child, int(category["id"]))

        for category in self._field(answer, ("category_list", "categories"), "/categories.json"):
            add(category, None)
        return pa.Table.from_pylist(list(rows.values()), schema=CATEGORIES_SCHEMA)

    # --- topics ---
    def latest_pages(self, order: str = "activity") -> Iterator[list[dict]]:
        """Topic summaries of /latest.json, a list per page, following `more_topics_url`."""

        def next_params(answer: Any, params: dict) -> dict | None:
            more = (answer.get("topic_list") or {}).get("more_topics_url")
            if not more:
                return None
            query = {k: v[-1] for k, v in parse_qs(urlsplit(more).query).items()}
            if "page" not in query:
                raise ApiError(SOURCE, "/latest.json", 200, f"more_topics_url has no page: {more!r}")
            return {**params, **query, "order": order, "per_page": LATEST_PER_PAGE}

        for answer in self.pages("/latest.json", {"order": order, "per_page": LATEST_PER_PAGE}, next_params):
            topics = self._field(answer, ("topic_list", "topics"), "/latest.json")
            yield [self._check("latest topic", t, "/latest.json") for t in topics]

    def topics_active(self, first: date, last: date) -> TopicSpans:
        """The topics with activity in [first, last]: created on or before `last` and bumped on or
        after `first` (newest activity first, paging stops once a page ends older). Only each
        topic's id and span are kept: a year of a busy forum is ~100k summaries, ~200 MB as dicts.
        """
        start, _ = day_bounds(first)
        _, end = day_bounds(last)
        found = TopicSpans()
        seen: set[int] = set()
        for page in self.latest_pages("activity"):
            for topic in page:
                created, bumped = parse_time(topic["created_at"]), parse_time(topic["bumped_at"])
                topic_id = int(topic["id"])
                if created < end and bumped >= start and topic_id not in seen:
                    seen.add(topic_id)
                    found.append(topic_id, created, bumped)
            # Pinned topics lead page 0 whatever their age: judge a page by its last topic.
            if page and parse_time(page[-1]["bumped_at"]) < start:
                break
        return found

    def topic(self, topic_id: int, since: datetime | None = None) -> tuple[dict, Iterator[list[dict]]]:
        """The topic of /t/{id}.json and an iterator of its posts: the first page, then the ids of
        `post_stream.stream` the first page left out, POST_IDS_PER_REQUEST at a time, in stream order.

        With `since`, only posts created at or after it are needed: the ids left out are fetched
        newest first, and an id smaller than that of a post of this topic created before `since` is
        not fetched (Discourse numbers posts in the order they are written, so that post is older
        still). A long topic active today then costs one or two requests, not one per 20 posts of
        its history. A topic whose stream is not in id order (posts moved in from another topic) is
        read whole: there an id says nothing about when its post was written. Posts older than
        `since` may still be yielded (the first page, or a chunk that spans `since`); the caller
        keeps the days it wants.
        """
        where = f"/t/{topic_id}.json"
        answer = self._check("topic", self.get(where), where)
        first = [self._check("post", p, where) for p in self._field(answer, ("post_stream", "posts"), where)]
        stream = [int(i) for i in self._field(answer, ("post_stream", "stream"), where)]

        def fetch(ids: list[int]) -> list[dict]:
            path = f"/t/{topic_id}/posts.json"
            page = self.get(path, {"post_ids[]": ids})
            return [self._check("post", p, path) for p in self._field(page, ("post_stream", "posts"), path)]

        def posts() -> Iterator[list[dict]]:
            yield first
            seen = {int(p["id"]) for p in first}
            missing = [i for i in stream if i not in seen]
            size = POST_IDS_PER_REQUEST
            chunks = [missing[n : n + size] for n in range(0, len(missing), size)]
            # Skipping by id needs ids that grow with time in this topic. A post moved in from another
            # topic keeps its older id, and a topic's first post re-created by a move gets a newer
            # one: the stream (in post_number order) is then out of id order, so read it all.
            if since is None or stream != sorted(stream):
                for chunk in chunks:
                    yield fetch(chunk)
                return
            if not chunks:  # the usual topic: every post on the first page
                return
            floor = _newest_before(first, since)
            fetched: list[list[dict]] = []
            for chunk in reversed(chunks):
                wanted = [i for i in chunk if i > floor]
                if wanted:
                    page = fetch(wanted)
                    fetched.append(page)
                    floor = max(floor, _newest_before(page, since))
            yield from reversed(fetched)

        return answer, posts()

    # --- likes ---
    def post_likers(self, post_id: int) -> list[dict]:
        """Who liked a post (/post_action_users.json), all pages."""
        path = "/post_action_users.json"

        def next_params(answer: Any, params: dict) -> dict | None:
            users = answer.get("post_action_users") or []
            return (
                {**params, "page": int(params.get("page", 0)) + 1} if len(users) >= LIKERS_PER_PAGE else None
            )

        params = {"id": post_id, "post_action_type_id": LIKE, "limit": LIKERS_PER_PAGE}
        likers: list[dict] = []
        for answer in self.pages(path, params, next_params):
            users = self._field(answer, ("post_action_users",), path)
            likers.extend(self._check("liker", u, path) for u in users)
        return likers

    def likes_received(self, username: str, offset: int = 0) -> list[dict]:
        """One page of the likes `username` received (/user_actions.json?filter=2): up to
        USER_ACTIONS_PER_PAGE user actions from `offset`, newest like first."""
        path = "/user_actions.json"
        answer = self.get(path, {"username": username, "filter": WAS_LIKED, "offset": offset})
        return [self._check("user action", a, path) for a in self._field(answer, ("user_actions",), path)]

    @staticmethod
    def like_hint(post: dict) -> int | None:
        """A post's like count from its actions_summary: None when likes may exist but the count is not
        given (the entry for id 2 without `count`), 0 when there is no sign of a like."""
        if isinstance(post.get("like_count"), int):
            return post["like_count"]
        for action in post.get("actions_summary") or []:
            if isinstance(action, dict) and action.get("id") == LIKE:
                count = action.get("count")
                return int(count) if count is not None else None
        return 0

    # --- latest posts ---
    def latest_posts(self, before: int | None = None) -> list[dict]:
        """One page of /posts.json: up to LATEST_POSTS_PER_PAGE posts with ids below `before` (the
        newest without it), across topics, newest id first."""
        path = "/posts.json"
        answer = self.get(path, {"before": before} if before is not None else None)
        return [self._check("latest post", p, path) for p in self._field(answer, ("latest_posts",), path)]

    # --- a range of days ---
    def activity(self, days: Iterable[date], chunk_days: int = 31) -> Iterator[DayActivity]:
        """Topics created, posts created and likes on those posts, day by day (UTC).

        /latest and /posts.json are each paged once for the whole range, newest first; the days come
        back `chunk_days` at a time, newest chunk first (in day order within a chunk), so memory
        holds a month of posts, not the range.
        """
        plan, chunks = self.activity_plan(days, chunk_days)
        for chunk in reversed(chunks):
            yield from self.chunk_activity(chunk, plan)

    def activity_plan(
        self,
        days: Iterable[date],
        chunk_days: int = 31,
        known_likes: Mapping[int, list[dict]] | None = None,
    ) -> tuple[ActivityPlan, list[list[date]]]:
        """What `activity` does first: one pass over /latest for the topics with activity in the
        range, and the range cut into chunks of `chunk_days` days, for `chunk_activity`.

        Args:
            known_likes: the likers already loaded for the range's posts, {post id: [{"id": user id,
                "created_at": moment or None}]} (a nightly re-pull): a post whose like count as
                /posts.json gives it equals its known likers keeps them, and only the others are
                looked up. None (a backfill, a first load): every liked post is looked up.

        Returns:
            (plan, chunks); no chunks for no days.
        """
        days = sorted(set(days))
        if not days:
            return ActivityPlan(date.min, date.min, TopicSpans(), {}, {}), []
        spans, highest, summaries = self._scan_latest(days[0], days[-1])
        log.info("discourse: %d topics with activity between %s and %s", len(spans), days[0], days[-1])
        plan = ActivityPlan(days[0], days[-1], spans, highest, summaries, known_likes=known_likes)
        return plan, [days[n : n + chunk_days] for n in range(0, len(days), chunk_days)]

    def _scan_latest(self, first: date, last: date) -> tuple[TopicSpans, dict[int, int], dict[int, dict]]:
        """`topics_active`, with each topic's highest_post_number, and the /latest summary of each
        topic created in the range (its row comes from there: no /t/{id}.json needed)."""
        start, _ = day_bounds(first)
        _, end = day_bounds(last)
        spans = TopicSpans()
        highest: dict[int, int] = {}
        summaries: dict[int, dict] = {}
        for page in self.latest_pages("activity"):
            for topic in page:
                created, bumped = parse_time(topic["created_at"]), parse_time(topic["bumped_at"])
                topic_id = int(topic["id"])
                if created < end and bumped >= start and topic_id not in highest:
                    spans.append(topic_id, created, bumped)
                    highest[topic_id] = _int_or_none(topic.get("highest_post_number")) or 0
                    if created >= start:
                        summaries[topic_id] = topic
            # Pinned topics lead page 0 whatever their age: judge a page by its last topic.
            if page and parse_time(page[-1]["bumped_at"]) < start:
                break
        return spans, highest, summaries

    def chunk_activity(self, chunk: list[date], plan: ActivityPlan) -> list[DayActivity]:
        """One DayActivity per day of `chunk` (consecutive days of the plan's range). Several chunks
        may be fetched at once from different threads: /posts.json is paged under the plan's lock,
        newest first, as far down as the oldest chunk asked so far."""
        start, _ = day_bounds(chunk[0])
        _, end = day_bounds(chunk[-1])
        with plan.lock:
            self._page_posts_down_to(plan, start)
            self._settle_chunk(plan, chunk, start, end)
            pending = {day: plan.by_day.pop(day, {}) for day in chunk}
            topic_rows = {day: plan.topic_rows.pop(day, []) for day in chunk}
        liked = [(day, post) for day in chunk for post in pending[day].values() if self.like_hint(post) != 0]
        kept, changed = self._unchanged_likes(plan, liked)
        likers_of = {**self._likers_of(plan, changed), **kept}
        return [day_activity(day, topic_rows[day], pending[day].values(), likers_of) for day in chunk]

    def _page_posts_down_to(self, plan: ActivityPlan, start: datetime) -> None:
        """Page /posts.json until every post written at or after `start` has been seen.

        Discourse numbers posts in the order they are written, across the forum, so once a page
        holds a reply older than `start`, every post below it is older too. (A first post
        re-created by a move carries a new id and its old created_at: it is met early and filed by
        its day, and never ends the paging.) The paging stops at the first page reaching past
        `start`: the floor of ceil(posts since `start` / 50) calls."""
        while not plan.posts_done and (plan.posts_floor is None or plan.posts_floor >= start):
            page = self.latest_posts(plan.posts_before)
            if not page:
                plan.posts_done = True
                break
            for post in page:
                self._take(plan, post)
            plan.posts_before = min(int(p["id"]) for p in page)
            # Every post written after a reply of this page has a higher id, so has been seen. A
            # first post may be one a move re-created (a new id, its old created_at): it proves
            # nothing, and a page of first posts only proves its newest moment.
            replies = [parse_time(p["created_at"]) for p in page if int(p["post_number"]) > 1]
            floor = min(replies) if replies else max(parse_time(p["created_at"]) for p in page)
            plan.posts_floor = floor if plan.posts_floor is None else min(plan.posts_floor, floor)

    def _take(self, plan: ActivityPlan, post: dict, topic_created: datetime | None = None) -> None:
        """File one post of /posts.json (or of a topic read whole) under its day, once by id."""
        topic_id = int(post["topic_id"])
        number = int(post["post_number"])
        if topic_created is None:
            known = plan.created(topic_id)
            if known is None:
                # A topic /latest did not list as active: the post's day is within the range only if
                # its own day is (its topic was not created after the range); then read it once, later.
                if plan.first <= parse_time(post["created_at"]).date() <= plan.last:
                    plan.strays.add(topic_id)
                return
            topic_created = known
            if number <= plan.highest.get(topic_id, 0):
                # Each post comes once from /posts.json: the lowest number and a count tell a gap.
                low, count = plan.numbers.get(topic_id, (number, 0))
                plan.numbers[topic_id] = (min(low, number), count + 1)
        moment = parse_time(post["created_at"])
        # A post moved in from an older topic is older than this topic: its own day is read from
        # the topics that existed then, which no longer hold it, so it is filed with this topic's
        # day (its created_at stays true).
        day = max(moment.date(), topic_created.date())
        if plan.first <= day <= plan.last:
            plan.by_day.setdefault(day, {})[int(post["id"])] = post

    def _settle_chunk(self, plan: ActivityPlan, chunk: list[date], start: datetime, end: datetime) -> None:
        """Read whole, once per load, the topics active in the chunk whose posts /posts.json did not
        account for, then gather the rows of the topics created in the chunk.

        /posts.json lists only regular, visible posts: a gap in a topic's post numbers from the
        lowest seen (from 1 for a topic created in the chunk) to its highest_post_number is a small
        action, a whisper, a hidden or deleted post, or a post moved in from older days, and the
        topic is read whole; so is an active topic with no post seen, and the topic of a post that
        /latest did not list. A topic 403/404 is skipped with a warning (`skipped_lookups`)."""
        wanted = set(plan.strays)
        for topic_id in plan.topics.active(start, end):
            if topic_id in plan.read_whole:
                continue
            seen = plan.numbers.get(topic_id)
            if seen is None:
                wanted.add(topic_id)
                continue
            low, count = seen
            if plan.created(topic_id) >= start:
                low = 1  # a topic of the chunk: every post from the first on
            if count < plan.highest[topic_id] - low + 1:
                wanted.add(topic_id)
        for topic_id in sorted(wanted - plan.read_whole):
            plan.read_whole.add(topic_id)
            plan.strays.discard(topic_id)
            try:
                topic, pages = self.topic(topic_id, since=day_bounds(plan.first)[0])
                created = parse_time(topic["created_at"])
                posts = [post for page in pages for post in page]
            except ApiError as exc:
                if exc.status not in (403, 404, 410):
                    raise
                self._skip_lookup("topic", topic_id, exc)
                continue
            plan.full_topics[topic_id] = topic
            for post in posts:
                self._take(plan, post, topic_created=created)
        # Rows of the topics created in the chunk: /latest's summary, or the topic read whole.
        for day in chunk:
            plan.topic_rows.setdefault(day, [])
        for topic_id in plan.topics.active(start, end):
            created = plan.created(topic_id)
            if not (start <= created < end):
                continue
            row = self._topic_row_of(plan, topic_id, created)
            if row is not None:
                plan.topic_rows[created.date()].append(row)
        for topic_id, topic in plan.full_topics.items():
            created = parse_time(topic["created_at"])
            if topic_id not in plan.highest and start <= created < end:
                plan.topic_rows[created.date()].append(_topic_row(topic, created))

    def _topic_row_of(self, plan: ActivityPlan, topic_id: int, created: datetime) -> dict | None:
        if topic_id in plan.full_topics:
            return _topic_row(plan.full_topics[topic_id], created)
        summary = plan.summaries.get(topic_id)
        row = summary_topic_row(summary) if summary is not None else None
        if row is None:
            # /latest lacks the topic's author: read the topic itself, once.
            try:
                topic = self._check("topic", self.get(f"/t/{topic_id}.json"), f"/t/{topic_id}.json")
            except ApiError as exc:
                if exc.status not in (403, 404, 410):
                    raise
                self._skip_lookup("topic", topic_id, exc)
                return None
            plan.full_topics[topic_id] = topic
            return _topic_row(topic, created)
        return row  # its created_at is the summary's, as `created` (the plan's) is

    def _skip_lookup(self, kind: str, item: int, exc: ApiError) -> None:
        with self._counting:
            self.skipped_lookups += 1
            self.skipped_items.append(f"{kind} {item}: {exc.status}")
        log.warning(
            "discourse: %s %s answered %s; skipped, the rest of the day loads (a deleted or private "
            "%s, or a key that may not read it: an admin key reads every category)",
            kind, item, exc.status, kind,
        )  # fmt: skip

    def _unchanged_likes(
        self, plan: ActivityPlan, liked: list[tuple[date, dict]]
    ) -> tuple[dict[int, list[dict]], list[tuple[date, dict]]]:
        """Split `liked` by the plan's known likers: ({post id: its known likers} for each post whose
        like count equals their number, the posts to look up). Without known likers, or for a post
        whose count is not given, every post is looked up."""
        known = plan.known_likes
        if known is None:
            return {}, liked
        kept: dict[int, list[dict]] = {}
        changed = []
        for day, post in liked:
            post_id = int(post["id"])
            likers = known.get(post_id)
            if likers and self.like_hint(post) == len(likers):
                kept[post_id] = likers
            else:
                changed.append((day, post))
        with self._counting:
            self.likes_kept += len(kept)
            self.likes_changed += len(changed)
        return kept, changed

    def _likers_of(self, plan: ActivityPlan, liked: list[tuple[date, dict]]) -> dict[int, list[dict]]:
        """Who liked each of the `liked` posts (day, post): {post id: likers as /post_action_users.json
        lists them, oldest like first}; a post whose likers were not looked up (the lookup budget
        ran out) is absent.

        Per author, the stream of likes received is paged while a page is worth it (see
        AuthorLikes); what remains incomplete is looked up per post."""
        by_author: dict[str, list[tuple[date, dict]]] = {}
        for day, post in liked:
            by_author.setdefault(str(post["username"]).lower(), []).append((day, post))
        out: dict[int, list[dict]] = {}
        for posts in by_author.values():
            per_post = self._page_likes_received(plan, posts, out)
            for day, post in per_post:
                likers = self._likers_bounded(int(post["id"]), day)
                if likers is not None:
                    out[int(post["id"])] = likers
        return out

    def _page_likes_received(
        self, plan: ActivityPlan, posts: list[tuple[date, dict]], out: dict[int, list[dict]]
    ) -> list[tuple[date, dict]]:
        """Page one author's likes received while a page is worth it (AuthorLikes.worth_a_page) for
        `posts` (all theirs); put the likers of the complete ones in `out`; return the others."""
        state = plan.author(str(posts[0][1]["username"]))
        with state.lock:
            while not state.refused and self.likes_received_allowed is not False:
                left = [parse_time(p["created_at"]) for _, p in posts]
                left = [created for created in left if not state.covers(created)]
                if not state.worth_a_page(left) or not self._spend_lookup():
                    break
                try:
                    page = self.likes_received(state.username, state.offset)
                except ApiError as exc:
                    if exc.status not in (403, 404, 410):
                        raise
                    state.refused = True
                    self._likes_received_refused(exc)
                    break
                self.likes_received_allowed = True
                state.take(page)
            rest = []
            for day, post in posts:
                post_id = int(post["id"])
                if not state.covers(parse_time(post["created_at"])):
                    rest.append((day, post))
                    continue
                # handed out once: the stream's likes are held only until their post's chunk takes them
                found = state.likers.pop(post_id, {})
                hint = self.like_hint(post)
                if hint is not None and hint > len(found):
                    rest.append((day, post))  # fewer likes in the stream than the post counts: ask it
                    continue
                # oldest like first, as /post_action_users.json lists them
                out[post_id] = [{"id": user_id} for user_id in reversed(found)]
        return rest

    def _spend_lookup(self) -> bool:
        """Count one like lookup against max_like_lookups; False once the budget is spent."""
        with self._counting:
            if self.like_lookups >= self.config.max_like_lookups:
                return False
            self.like_lookups += 1
            return True

    def _likes_received_refused(self, exc: ApiError) -> None:
        with self._counting:
            self._likes_received_refusals += 1
            if (
                self.likes_received_allowed is None
                and self._likes_received_refusals >= REFUSALS_BEFORE_PER_POST
            ):
                self.likes_received_allowed = False
                log.warning(
                    "discourse: /user_actions.json answered %s for the likes received of %d authors and "
                    "none was read: this key may not list others' likes received (an admin key may), so "
                    "likers are looked up per liked post (/post_action_users.json), one call each",
                    exc.status, self._likes_received_refusals,
                )  # fmt: skip
                return
        log.info("discourse: an author's likes received answered %s (renamed or deleted since the posts were "
                 "listed?); their posts' likers are looked up one by one", exc.status)  # fmt: skip

    def _likers_bounded(self, post_id: int, day: date) -> list[dict] | None:
        if not self._spend_lookup():
            with self._counting:
                if self.like_lookups_skipped == 0:
                    log.warning(
                        "discourse: DISCOURSE_MAX_LIKE_LOOKUPS=%d reached; likes of further posts are not "
                        "loaded in this run", self.config.max_like_lookups,
                    )  # fmt: skip
                self.like_lookups_skipped += 1
                self.days_missing_likes.add(day)
            return None
        try:
            return self.post_likers(post_id)
        except ApiError as exc:
            if exc.status not in (403, 404, 410):
                raise
            self._skip_lookup("post", post_id, exc)  # deleted since it was listed, or hidden from the key
            return []

    # --- users ---
    def users(self) -> Iterator[pa.RecordBatch]:
        """Active users (/admin/users/list/active.json, admin key), a batch per page: USERS_SCHEMA."""
        path = "/admin/users/list/active.json"

        def next_params(answer: Any, params: dict) -> dict | None:
            # Discourse lists 100 users a page: a shorter page is the last.
            full = isinstance(answer, list) and len(answer) >= USERS_PER_PAGE
            return {**params, "page": int(params["page"]) + 1} if full else None

        seen: set[int] = set()
        for answer in self.pages(path, {"page": 1, "show_emails": "true"}, next_params):
            if not isinstance(answer, list):
                raise DiscourseSchemaError(f"discourse: {path}: expected a JSON list of users")
            rows = []
            for user in answer:
                user = self._check("user", user, path)
                if int(user["id"]) in seen:
                    continue
                seen.add(int(user["id"]))
                rows.append(_user_row(user))
            yield pa.RecordBatch.from_pylist(rows, schema=USERS_SCHEMA)


def day_activity(
    day: date, topic_rows: list[dict], posts: Iterable[dict], likers_of: Mapping[int, list[dict]]
) -> DayActivity:
    """A day's tables from its topics' rows, its posts (as /posts.json or /t/{id}.json list them)
    and the likers of its liked posts ({post id: likers, oldest like first}; a post absent was not
    looked up)."""
    post_rows, likes = [], []
    for post in sorted(posts, key=lambda p: int(p["id"])):
        # `raw` stays empty as before: /t/{id}.json never sends it, and `cooked` holds the text.
        row = {**_post_row(post, parse_time(post["created_at"])), "date": day, "raw": None}
        likers = likers_of.get(int(post["id"]))
        if likers is not None:
            if row["like_count"] is None:
                row["like_count"] = len(likers)
            likes.extend(
                {"date": day, "post_id": int(post["id"]), "user_id": int(u["id"]),
                 "created_at": parse_time(u.get("created_at"))}
                for u in likers
            )  # fmt: skip
        post_rows.append(row)
    return DayActivity(
        day,
        pa.Table.from_pylist(topic_rows, schema=TOPICS_SCHEMA),
        pa.Table.from_pylist(post_rows, schema=POSTS_SCHEMA),
        pa.Table.from_pylist(likes, schema=POST_LIKES_SCHEMA),
    )


def summary_topic_row(summary: dict) -> dict | None:
    """A topic's row from its /latest summary; None when the summary does not name its author."""
    user_id = _original_poster(summary)
    if user_id is None:
        return None
    return _topic_row({**summary, "user_id": user_id}, parse_time(summary["created_at"]))


def _newest_before(posts: list[dict], since: datetime) -> int:
    """The largest id among `posts` created before `since`; -1 when none was."""
    return max((int(p["id"]) for p in posts if parse_time(p["created_at"]) < since), default=-1)


def _topic_row(topic: dict, created: datetime) -> dict:
    return {
        "date": created.date(),
        "topic_id": int(topic["id"]),
        "category_id": _int_or_none(topic["category_id"]),
        "title": topic["title"],
        "created_at": created,
        "last_posted_at": parse_time(topic.get("last_posted_at")),
        "posts_count": _int_or_none(topic["posts_count"]),
        "reply_count": _int_or_none(topic["reply_count"]),
        "like_count": _int_or_none(topic["like_count"]),
        "views": _int_or_none(topic["views"]),
        "user_id": _int_or_none(topic["user_id"]),
        "archetype": topic["archetype"],
        "closed": bool(topic["closed"]),
        "archived": bool(topic["archived"]),
    }


def _post_row(post: dict, created: datetime) -> dict:
    hint = DiscourseClient.like_hint(post)
    return {
        "date": created.date(),
        "post_id": int(post["id"]),
        "topic_id": int(post["topic_id"]),
        "post_number": int(post["post_number"]),
        "reply_to_post_number": _int_or_none(post.get("reply_to_post_number")),
        "user_id": _int_or_none(post["user_id"]),
        "username": post["username"],
        "created_at": created,
        "updated_at": parse_time(post.get("updated_at")),
        "cooked": post["cooked"],
        "raw": post.get("raw"),
        "like_count": hint,
        "reads": _int_or_none(post.get("reads")),
        "post_type": int(post["post_type"]),
        "action_code": post.get("action_code"),
        "hidden": bool(post.get("hidden", False)),
        "deleted_at": parse_time(post.get("deleted_at")),
    }


def _user_row(user: dict) -> dict:
    email = user.get("email") or None
    return {
        "user_id": int(user["id"]),
        "username": user["username"],
        "name": user.get("name"),
        "email": email,
        "email_domain": email.rsplit("@", 1)[-1].lower() if email and "@" in email else None,
        "admin": bool(user.get("admin", False)),
        "moderator": bool(user.get("moderator", False)),
        "trust_level": _int_or_none(user.get("trust_level")),
        "created_at": parse_time(user["created_at"]),
        "last_seen_at": parse_time(user.get("last_seen_at")),
        "staged": bool(user.get("staged", False)),
    }


def _error_details(response: requests.Response) -> tuple[str, str | None, float | None]:
    """(message, error_type, wait seconds) of an error answer, JSON or text/plain."""
    wait = parse_retry_after(response.headers.get("Retry-After"))
    error_type = None
    message = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list):
            message = "; ".join(str(e) for e in errors)
        elif isinstance(payload.get("error"), str):
            message = payload["error"]
        error_type = payload.get("error_type")
        extras = payload.get("extras")
        if isinstance(extras, dict) and extras.get("wait_seconds") is not None:
            try:  # Discourse sends both hints; the longer one is the safe one
                wait = max(float(extras["wait_seconds"]), wait or 0.0)
            except (TypeError, ValueError):
                pass
    if not message:
        text = re.sub(r"\s+", " ", response.text or "").strip()
        message = text[:300] or response.reason or "no message"
    if error_type:
        message = f"{error_type}: {message}"
    return redact(message), error_type, wait


def users_from_posts(posts: pa.Table) -> pa.Table:
    """USERS_SCHEMA rows of the authors of `posts` (columns user_id, username, created_at): what a key
    that may not list users still knows. One row per user id, with the username of the user's latest
    post; created_at and last_seen_at are the user's first and last post (the account is older),
    name, e-mail, flags and trust level unknown (null)."""
    users: dict[int, dict] = {}
    for post in posts.to_pylist():
        user_id, moment = post.get("user_id"), post.get("created_at")
        if user_id is None or moment is None:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        user = users.get(user_id)
        if user is None:
            users[user_id] = user = {
                "user_id": int(user_id), "username": post["username"], "name": None, "email": None,
                "email_domain": None, "admin": None, "moderator": None, "trust_level": None,
                "created_at": moment, "last_seen_at": moment, "staged": None,
            }  # fmt: skip
        if moment >= user["last_seen_at"]:
            user["last_seen_at"], user["username"] = moment, post["username"]
        user["created_at"] = min(user["created_at"], moment)
    rows = sorted(users.values(), key=lambda u: u["user_id"])
    return pa.Table.from_pylist(rows, schema=USERS_SCHEMA)
