"""The brand's Discourse forum (community.northwind-analytics.com) as the sandbox serves it.

Base URL (DISCOURSE_URL): `sandbox.base_url + "/discourse"`. Every answer needs the headers
`Api-Key: sandbox-discourse-key` and `Api-Username` (any user, usually "system"); without them
Discourse's 403 `invalid_access`. `sandbox-discourse-user-key` (SANDBOX_DISCOURSE_USER_KEY) is a
key without admin rights: it reads the forum, and the admin routes answer it 403 `invalid_access`,
as Discourse does for a user-level key. The forum is the `discourse` platform of
`connectors.sandbox.community`: each thread is a topic (id = root post id // 100, category = the
thread's space), its root the first post, replies the later posts, reactions the likes. Only
what was posted before the sandbox's "today" (UTC) exists.

Routes (wire format of Discourse's published OpenAPI document; tests/contracts/discourse.json):
- `GET /categories.json[?include_subcategories=true]`
- `GET /latest.json?order=activity|created|default&page=N&per_page=M` (30 a page;
  `topic_list.more_topics_url` only while more pages exist); `/latest` with Accept JSON too.
- `GET /t/{id}.json`: `post_stream.stream` lists every post id, `posts` only the first 20.
- `GET /t/{id}/posts.json?post_ids[]=...`: those posts; without `post_ids[]`, the first 20.
- `GET /posts.json[?before={post_id}]`: `latest_posts`, the 50 newest posts of regular type with an
  id below `before`, across topics, newest id first (Discourse's own order: ids grow with time, so
  the sandbox's post ids count microseconds; connectors.sandbox.community). An empty list past the
  oldest post.
- `GET /post_action_users.json?id={post_id}&post_action_type_id=2&page=N&limit=M`: the likers.
- `GET /user_actions.json?username=U&filter=1|2&offset=N`: the likes U gave (1) or received (2), 30
  a page from `offset`, newest like first (Discourse orders a user's stream by the action's
  created_at). Each reaction of the community is a like given at a moment derived from the post
  and the liker: after the post, within LIKE_SPREAD of it and before "today" (`like_times`). Only
  likes are served (other action types list nothing). Likes received (2) are private to their
  owner and admins, as in Discourse: the user-level key gets 404 `not_found` for anyone but its
  own Api-Username; an unknown username is 404 too.
- `GET /admin/users/list/active.json?page=N&show_emails=true`: 100 users a page, 1-based.

A post with likes says so in `actions_summary` with its count (`{"id": 2, "count": N, "can_act":
true}`: Discourse's PostSerializer keeps `count` for a staff key while it is above 0; the published
/posts/{id}.json schema lists it). `SandboxServer.discourse_likers` replaces the likers of the posts
it names (a test adds and removes likes between two loads); every route answers with them. With
`SandboxServer(discourse_likes_arrive=True)` (the benchmark's), a post's likes are given over the
LIKE_SPREAD after it and only those given before "today" exist, so a day later the recent posts
count more likes; otherwise every like of a visible post is visible.

JSON answers carry `Content-Type: application/json; charset=utf-8`, the forum's header to the
letter (clients such as pydiscourse compare it as a string).

Faults: a bare 429 fault answers Discourse's rate-limit body `{"errors": [...], "error_type":
"rate_limit", "extras": {"wait_seconds": 1}}`; a test may pass its own body (or text/plain, the
global limiter's form) and a `Retry-After` header.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from connectors.sandbox import brand, community
from connectors.sandbox.routes import SandboxApi, SandboxRequest, SandboxResponse

PREFIX = "/discourse"
SANDBOX_DISCOURSE_API_KEY = "sandbox-discourse-key"
SANDBOX_DISCOURSE_USER_KEY = "sandbox-discourse-user-key"
PLATFORM = "discourse"
PER_PAGE = 30
LATEST_POSTS_PER_PAGE = 50  # /posts.json: Discourse's LatestPostsQuery page size
CHUNK_SIZE = 20
USERS_PER_PAGE = 100
USER_ACTIONS_PER_PAGE = 30  # Discourse's default page of a user's stream
LIKE = 1  # UserAction::LIKE: a like the user gave
WAS_LIKED = 2  # UserAction::WAS_LIKED: a like the user received (private to the user and admins)
LIKE_SPREAD = timedelta(days=3)  # a post's likes come within this much time of it
FORUM = f"https://{brand.COMMUNITY_DOMAIN}"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

_TOPIC_JSON = re.compile(r"^/t/(?:[^/]+/)?(\d+)(?:\.json)?$")
_TOPIC_POSTS = re.compile(r"^/t/(\d+)/posts(?:\.json)?$")
_USERS_LIST = re.compile(r"^/admin/users/list/(\w+)(?:\.json)?$")


# --- errors ----------------------------------------------------------------------------------------

_MESSAGES = {
    400: ("invalid_parameters", "You supplied invalid parameters to the request."),
    403: ("invalid_access", "You are not permitted to view the requested resource."),
    404: ("not_found", "The requested URL or resource could not be found."),
    429: (
        "rate_limit",
        "You’ve performed this action too many times. Please wait 1 second before trying again.",
    ),
}


def error_body(status: int, message: str | None = None) -> dict:
    reasons = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    error_type, default = _MESSAGES.get(status, (None, reasons.get(status, "Internal Server Error")))
    body: dict = {"errors": [message or default]}
    if error_type:
        body["error_type"] = error_type
    if status == 429:
        body["extras"] = {"wait_seconds": 1, "time_left": "1 second"}
    return body


def _error(status: int, message: str | None = None) -> SandboxResponse:
    return SandboxResponse(status, error_body(status, message), {"Content-Type": JSON_CONTENT_TYPE})


# --- the forum's data ------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "topic"


@dataclass(frozen=True)
class Topic:
    topic_id: int
    posts: tuple[community.Post, ...]  # the visible ones: root first, then replies in time order
    title: str

    @property
    def root(self) -> community.Post:
        return self.posts[0]

    @property
    def created_at(self) -> datetime:
        return self.root.created_at

    @property
    def bumped_at(self) -> datetime:
        return self.posts[-1].created_at


def _title_and_body(post: community.Post) -> tuple[str, str]:
    if post.thread_root_id is None and "\n\n" in post.text:
        title, body = post.text.split("\n\n", 1)
        return title.strip(), body
    return "", post.text


@dataclass(frozen=True)
class Edits:
    """How one sandbox's forum departs from the generated one.

    Args:
        likers: (post id, the person ids who like it), sorted by post id: these posts' likers in
            place of their generated reactions (SandboxServer.discourse_likers).
        likes_arrive: a post's likes are given over LIKE_SPREAD after it, and only those given
            before "today" exist (SandboxServer.discourse_likes_arrive); otherwise every like of a
            visible post is visible.
    """

    likers: tuple[tuple[int, tuple[str, ...]], ...] = ()
    likes_arrive: bool = False


NO_EDITS = Edits()


@functools.cache
def _forum(
    seed: int, scale: str, today: date, edits: Edits = NO_EDITS
) -> tuple[tuple[Topic, ...], dict[int, Topic], dict[int, Topic]]:
    """Every topic visible on `today` (newest activity first), by topic id, and by post id, as
    `edits` change them."""
    edited = dict(edits.likers)
    topics: list[Topic] = []
    day = brand.COMMUNITY_START_DATE
    cutoff = _start(today)
    while day < today:
        for thread in community.threads_started_on(seed, scale, PLATFORM, day):
            visible = tuple(
                p if int(p.post_id) not in edited else _liked_by(p, edited[int(p.post_id)])
                for p in thread
                if p.created_at < cutoff
            )
            if edits.likes_arrive:
                visible = tuple(_likes_given_before(p, cutoff) for p in visible)
            if not visible:
                continue
            title = _title_and_body(visible[0])[0] or visible[0].text[:60]
            topics.append(Topic(int(visible[0].post_id) // 100, visible, title))
        day += timedelta(days=1)
    topics.sort(key=lambda t: (t.bumped_at, t.topic_id), reverse=True)
    by_id = {t.topic_id: t for t in topics}
    by_post = {int(p.post_id): t for t in topics for p in t.posts}
    return tuple(topics), by_id, by_post


def _likes_given_before(post: community.Post, cutoff: datetime) -> community.Post:
    """`post` with the likes given before `cutoff` only: the i-th of n reactions comes (i + f) / n
    of LIKE_SPREAD after the post (f fixed by post and liker), so those given are the first ones."""
    n = len(post.reactions)
    given = tuple(
        (person_id, emoji)
        for i, (person_id, emoji) in enumerate(post.reactions)
        if post.created_at + LIKE_SPREAD * ((i + _fraction(f"{post.post_id}:{person_id}")) / n) < cutoff
    )
    return post if len(given) == n else dataclasses.replace(post, reactions=given)


def _liked_by(post: community.Post, person_ids: tuple[str, ...]) -> community.Post:
    return dataclasses.replace(post, reactions=tuple((pid, "+1") for pid in person_ids))


@functools.cache
def _by_post_id(
    seed: int, scale: str, today: date, edits: Edits = NO_EDITS
) -> tuple[tuple[int, Topic, int], ...]:
    """(post id, topic, post number) of every post, newest id first: /posts.json's order."""
    topics = _forum(seed, scale, today, edits)[0]
    rows = [(int(p.post_id), t, n) for t in topics for n, p in enumerate(t.posts, start=1)]
    if len({r[0] for r in rows}) != len(rows):
        raise RuntimeError("sandbox discourse: two posts share an id; the generator must keep them unique")
    rows.sort(key=lambda r: r[0], reverse=True)
    return tuple(rows)


@functools.cache
def _by_created(seed: int, scale: str, today: date, edits: Edits = NO_EDITS) -> tuple[Topic, ...]:
    topics = _forum(seed, scale, today, edits)[0]
    return tuple(sorted(topics, key=lambda t: (t.created_at, t.topic_id), reverse=True))


def _member(seed: int, scale: str, person_id: str) -> community.Member:
    return community.member(seed, scale, person_id)


def _uid(member: community.Member) -> int:
    return int(member.user_id(PLATFORM))


def _avatar(username: str) -> str:
    return f"/user_avatar/{brand.COMMUNITY_DOMAIN}/{username.lower()}/{{size}}/1_2.png"


def _trust_level(member: community.Member, today: date) -> int:
    if member.is_employee or member.person_id in brand.COMMUNITY_ADVOCATE_PERSON_IDS:
        return 4 if member.is_employee else 3
    days = (today - member.joined).days
    return 2 if days > 180 else 1 if days > 14 else 0


_URL = re.compile(r"https?://[^\s<>\"]+")
_MENTION = re.compile(r"(?<![\w/])@([a-z0-9][a-z0-9_.\-]*[a-z0-9])", re.IGNORECASE)


def cook(text: str) -> str:
    """Discourse's cooked HTML of plain text: paragraphs, <a href> links, mention links."""
    paragraphs = []
    for part in text.split("\n\n"):
        escaped = html.escape(part.strip(), quote=False)
        escaped = _URL.sub(
            lambda m: f'<a href="{html.escape(m.group(0))}" rel="noopener nofollow ugc">{m.group(0)}</a>',
            escaped,
        )
        escaped = _MENTION.sub(
            lambda m: f'<a class="mention" href="/u/{m.group(1)}">@{m.group(1)}</a>', escaped
        )
        paragraphs.append(f"<p>{escaped.replace(chr(10), '<br>')}</p>")
    return "\n".join(paragraphs)


def _links(text: str) -> list[dict]:
    out = []
    for url in dict.fromkeys(_URL.findall(text)):
        out.append(
            {
                "url": url,
                "internal": brand.COMMUNITY_DOMAIN in url,
                "reflection": False,
                "title": url.split("/")[-1] or url,
                "clicks": 0,
            }
        )
    return out


# --- serialisers (every field the contract requires) ------------------------------------------------


def _category(space: community.Space, seed: int, scale: str, today: date, edits: Edits = NO_EDITS) -> dict:
    topics = [t for t in _forum(seed, scale, today, edits)[0] if t.root.space_id == space.native_id]
    week_ago = _start(today) - timedelta(days=7)
    return {
        "id": int(space.native_id),
        "name": space.name,
        "color": "0088CC",
        "text_color": "FFFFFF",
        "style_type": "square",
        "emoji": None,
        "icon": None,
        "slug": _slug(space.name),
        "topic_count": len(topics),
        "post_count": sum(len(t.posts) for t in topics),
        "position": int(space.native_id),
        "description": f"Talk about {space.name}.",
        "description_text": f"Talk about {space.name}.",
        "description_excerpt": f"Talk about {space.name}.",
        "topic_url": f"/t/about-the-{_slug(space.name)}-category/{space.native_id}",
        "read_restricted": space.is_private,
        "permission": 1,
        "notification_level": 1,
        "can_edit": True,
        "topic_template": None,
        "topic_title_placeholder": None,
        "has_children": False,
        "subcategory_count": None,
        "sort_order": None,
        "sort_ascending": None,
        "show_subcategory_list": False,
        "num_featured_topics": 3,
        "default_view": None,
        "subcategory_list_style": "rows_with_featured_topics",
        "default_top_period": "all",
        "default_list_filter": "all",
        "minimum_required_tags": 0,
        "navigate_to_first_post_after_read": False,
        "topics_day": sum(t.created_at >= _start(today) - timedelta(days=1) for t in topics),
        "topics_week": sum(t.created_at >= week_ago for t in topics),
        "topics_month": sum(t.created_at >= _start(today) - timedelta(days=30) for t in topics),
        "topics_year": sum(t.created_at >= _start(today) - timedelta(days=365) for t in topics),
        "topics_all_time": len(topics),
        "is_uncategorized": False,
        "subcategory_ids": [],
        "subcategory_list": [],
        "uploaded_logo": None,
        "uploaded_logo_dark": None,
        "uploaded_background": None,
        "uploaded_background_dark": None,
    }


def _likers(post: community.Post, seed: int, scale: str) -> list[community.Member]:
    return [_member(seed, scale, pid) for pid, _emoji in post.reactions]


def _fraction(text: str) -> float:
    """A number in [0, 1) fixed by `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def like_times(post: community.Post, today: date) -> list[datetime]:
    """When each reaction of `post` was given, in the order of `post.reactions`: after the post,
    within LIKE_SPREAD of it and before `today` began (every like of a visible post is visible), the
    n-th like later than the one before it."""
    n = len(post.reactions)
    span = min(LIKE_SPREAD, _start(today) - post.created_at)
    micros = span // timedelta(microseconds=1)
    out = []
    for i, (person_id, _emoji) in enumerate(post.reactions):
        share = (i + _fraction(f"{post.post_id}:{person_id}")) / n  # below 1: before today
        out.append(post.created_at + timedelta(microseconds=int(micros * share)))
    return out


@functools.cache
def _likes_of_users(
    seed: int, scale: str, today: date, action: int, edits: Edits = NO_EDITS
) -> dict[int, tuple]:
    """Every like of the forum by the user id whose stream lists it (the liker's for LIKE, the post
    author's for WAS_LIKED): (created_at, post id, liker's user id), newest first."""
    out: dict[int, list] = {}
    for topic in _forum(seed, scale, today, edits)[0]:
        for post in topic.posts:
            if not post.reactions:
                continue
            author = _uid(_member(seed, scale, post.author_person_id))
            for (person_id, _emoji), moment in zip(post.reactions, like_times(post, today), strict=True):
                liker = _uid(_member(seed, scale, person_id))
                owner = liker if action == LIKE else author
                out.setdefault(owner, []).append((moment, int(post.post_id), liker))
    return {owner: tuple(sorted(likes, reverse=True)) for owner, likes in out.items()}


@functools.cache
def _user_by_name(seed: int, scale: str) -> dict[str, community.Member]:
    return {m.handle.lower(): m for m in _forum_users(seed, scale)}


@functools.cache
def _user_by_id(seed: int, scale: str) -> dict[int, community.Member]:
    return {_uid(m): m for m in _forum_users(seed, scale)}


def _topic_summary(topic: Topic, seed: int, scale: str) -> dict:
    root_author = _member(seed, scale, topic.root.author_person_id)
    last = _member(seed, scale, topic.posts[-1].author_person_id)
    posters = [
        {
            "extras": "latest single" if len(topic.posts) == 1 else "",
            "description": "Original Poster, Most Recent Poster"
            if len(topic.posts) == 1
            else "Original Poster",
            "user_id": _uid(root_author),
            "primary_group_id": None,
        }
    ]
    if len(topic.posts) > 1 and last.person_id != root_author.person_id:
        posters.append(
            {
                "extras": "latest",
                "description": "Most Recent Poster",
                "user_id": _uid(last),
                "primary_group_id": None,
            }
        )
    return {
        "id": topic.topic_id,
        "title": topic.title,
        "fancy_title": html.escape(topic.title),
        "slug": _slug(topic.title),
        "posts_count": len(topic.posts),
        "reply_count": len(topic.posts) - 1,
        "highest_post_number": len(topic.posts),
        "image_url": "",
        "created_at": _iso(topic.created_at),
        "last_posted_at": _iso(topic.bumped_at),
        "bumped": True,
        "bumped_at": _iso(topic.bumped_at),
        "archetype": "regular",
        "unseen": False,
        "pinned": False,
        "unpinned": None,
        "visible": True,
        "closed": False,
        "archived": False,
        "bookmarked": False,
        "liked": False,
        "views": 7 * len(topic.posts) + topic.topic_id % 23,
        "like_count": sum(len(p.reactions) for p in topic.posts),
        "has_summary": False,
        "last_poster_username": last.handle,
        "category_id": int(topic.root.space_id),
        "op_like_count": len(topic.root.reactions),
        "pinned_globally": False,
        "featured_link": None,
        "posters": posters,
    }


def _post(topic: Topic, number: int, seed: int, scale: str, today: date) -> dict:
    post = topic.posts[number - 1]
    author = _member(seed, scale, post.author_person_id)
    body = _title_and_body(post)[1] if number == 1 else post.text
    reply_to = None
    if post.reply_to_post_id is not None and post.reply_to_post_id != topic.root.post_id:
        numbers = {p.post_id: i + 1 for i, p in enumerate(topic.posts)}
        reply_to = numbers.get(post.reply_to_post_id)
    # A staff key sees the like count (PostSerializer#actions_summary keeps `count` while above 0)
    actions = [{"id": 2, "count": len(post.reactions), "can_act": True}] if post.reactions else []
    return {
        "id": int(post.post_id),
        "name": author.name,
        "username": author.handle,
        "avatar_template": _avatar(author.handle),
        "created_at": _iso(post.created_at),
        "cooked": cook(body),
        "post_number": number,
        "post_type": 1,
        "updated_at": _iso(post.created_at),
        "reply_count": sum(
            1 for p in topic.posts if p.reply_to_post_id == post.post_id and p.post_id != post.post_id
        )
        if number > 1
        else 0,
        "reply_to_post_number": None if reply_to is None else str(reply_to),  # the contract's type
        "quote_count": 0,
        "incoming_link_count": 0,
        "reads": 3 + len(topic.posts) + int(post.post_id) % 17,
        "readers_count": 2 + len(topic.posts) + int(post.post_id) % 17,
        "score": float(len(post.reactions) * 15 + 1),
        "yours": False,
        "topic_id": topic.topic_id,
        "topic_slug": _slug(topic.title),
        "display_username": author.name,
        "primary_group_name": None,
        "flair_name": None,
        "flair_url": None,
        "flair_bg_color": None,
        "flair_color": None,
        "version": 1,
        "can_edit": True,
        "can_delete": True,
        "can_recover": False,
        "can_see_hidden_post": True,
        "can_wiki": True,
        "link_counts": _links(body),
        "read": True,
        "user_title": None,
        "bookmarked": False,
        "actions_summary": actions,
        "moderator": author.is_employee,
        "admin": False,
        "staff": author.is_employee,
        "user_id": _uid(author),
        "hidden": False,
        "trust_level": _trust_level(author, today),
        "deleted_at": None,
        "user_deleted": False,
        "edit_reason": None,
        "can_view_edit_history": True,
        "wiki": False,
        "reviewable_id": 0,
        "reviewable_score_count": 0,
        "reviewable_score_pending_count": 0,
    }


def _basic_user(member: community.Member) -> dict:
    return {
        "id": _uid(member),
        "username": member.handle,
        "name": member.name,
        "avatar_template": _avatar(member.handle),
    }


def _topic(topic: Topic, seed: int, scale: str, today: date) -> dict:
    root_author = _member(seed, scale, topic.root.author_person_id)
    last = _member(seed, scale, topic.posts[-1].author_person_id)
    counts: dict[str, int] = {}
    for p in topic.posts:
        counts[p.author_person_id] = counts.get(p.author_person_id, 0) + 1
    participants = []
    for pid, n in counts.items():
        m = _member(seed, scale, pid)
        participants.append(
            {
                **_basic_user(m),
                "post_count": n,
                "primary_group_name": None,
                "flair_name": None,
                "flair_url": None,
                "flair_color": None,
                "flair_bg_color": None,
                "flair_group_id": None,
                "admin": False,
                "moderator": m.is_employee,
                "trust_level": _trust_level(m, today),
            }
        )
    summary = _topic_summary(topic, seed, scale)
    likes = summary["like_count"]
    return {
        "post_stream": {
            "posts": [
                _post(topic, n, seed, scale, today) for n in range(1, min(CHUNK_SIZE, len(topic.posts)) + 1)
            ],
            "stream": [int(p.post_id) for p in topic.posts],
        },
        "timeline_lookup": [[1, 0]],
        "suggested_topics": [],
        "tags": [],
        "tags_descriptions": {},
        "id": topic.topic_id,
        "title": topic.title,
        "fancy_title": summary["fancy_title"],
        "posts_count": len(topic.posts),
        "created_at": summary["created_at"],
        "views": summary["views"],
        "reply_count": len(topic.posts) - 1,
        "like_count": likes,
        "last_posted_at": summary["last_posted_at"],
        "visible": True,
        "closed": False,
        "archived": False,
        "has_summary": False,
        "archetype": "regular",
        "slug": summary["slug"],
        "category_id": summary["category_id"],
        "word_count": sum(len(p.text.split()) for p in topic.posts),
        "deleted_at": None,
        "user_id": _uid(root_author),
        "featured_link": None,
        "pinned_globally": False,
        "pinned_at": None,
        "pinned_until": None,
        "image_url": None,
        "slow_mode_seconds": 0,
        "draft": None,
        "draft_key": f"topic_{topic.topic_id}",
        "draft_sequence": 0,
        "unpinned": None,
        "pinned": False,
        "current_post_number": 1,
        "highest_post_number": len(topic.posts),
        "deleted_by": None,
        "has_deleted": False,
        "actions_summary": [{"id": 2, "count": 0, "hidden": False, "can_act": True}],
        "chunk_size": CHUNK_SIZE,
        "bookmarked": False,
        "bookmarks": [],
        "topic_timer": None,
        "message_bus_last_id": 0,
        "participant_count": len(participants),
        "show_read_indicator": False,
        "thumbnails": None,
        "slow_mode_enabled_until": None,
        "details": {
            "can_edit": True,
            "notification_level": 1,
            "can_move_posts": True,
            "can_delete": True,
            "can_remove_allowed_users": True,
            "can_create_post": True,
            "can_reply_as_new_topic": True,
            "can_convert_topic": True,
            "can_review_topic": True,
            "can_close_topic": True,
            "can_archive_topic": True,
            "can_split_merge_topic": True,
            "can_edit_staff_notes": True,
            "can_toggle_topic_visibility": True,
            "can_pin_unpin_topic": True,
            "can_moderate_category": True,
            "can_remove_self_id": -1,
            "participants": participants,
            "created_by": _basic_user(root_author),
            "last_poster": _basic_user(last),
        },
    }


@functools.cache
def _forum_users(seed: int, scale: str) -> tuple[community.Member, ...]:
    people = [m for m in community.members(seed, scale) if PLATFORM in m.platforms]
    return tuple(sorted(people, key=_uid))


def _user(member: community.Member, today: date, show_email: bool) -> dict:
    created = _start(member.joined) + timedelta(hours=9, minutes=int(member.person_id[1:]) % 60)
    seen = _start(today) - timedelta(hours=1 + int(member.person_id[1:]) % 240)
    seen = max(seen, created)
    age = lambda t: round((_start(today) - t).total_seconds() / 86400, 2)  # noqa: E731
    system = member.person_id == brand.COMMUNITY_SYSTEM_PERSON_ID
    out = {
        "id": _uid(member),
        "username": member.handle,
        "name": member.name,
        "avatar_template": _avatar(member.handle),
        "active": True,
        "admin": system or member.is_employee and int(member.person_id[1:]) % 3 == 0,
        "moderator": member.is_employee,
        "last_seen_at": _iso(seen),
        "last_emailed_at": None,
        "created_at": _iso(created),
        "last_seen_age": age(seen),
        "last_emailed_age": None,
        "created_at_age": age(created),
        "trust_level": 4 if system else _trust_level(member, today),
        "manual_locked_trust_level": None,
        "title": None,
        "time_read": 60 * (1 + int(member.person_id[1:]) % 500),
        "staged": False,
        "days_visited": max(1, (today - member.joined).days // 3),
        "posts_read_count": 10 * (1 + int(member.person_id[1:]) % 50),
        "topics_entered": 3 * (1 + int(member.person_id[1:]) % 40),
        "post_count": 0,
    }
    if show_email:
        out["email"] = member.email or f"no_email_{member.handle}@{brand.COMMUNITY_DOMAIN}"
        out["secondary_emails"] = []
    return out


# --- the handler -----------------------------------------------------------------------------------


def _int_param(request: SandboxRequest, name: str, default: int, low: int, high: int) -> int | None:
    text = request.param(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        return None
    return min(max(value, low), high)


def handle(request: SandboxRequest) -> SandboxResponse:
    response = _answer(request)
    if isinstance(response.body, (dict, list)):
        response.headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
    return response


def _answer(request: SandboxRequest) -> SandboxResponse:
    sandbox = request.sandbox
    seed, scale, today = sandbox.seed, sandbox.scale, sandbox.today()
    edits = Edits(tuple(sorted(sandbox.discourse_likers.items())), sandbox.discourse_likes_arrive)
    path = request.path[len(PREFIX) :] or "/"
    if request.method != "GET":
        return _error(404)
    key = request.headers.get("Api-Key")
    if key not in (SANDBOX_DISCOURSE_API_KEY, SANDBOX_DISCOURSE_USER_KEY) or not request.headers.get(
        "Api-Username"
    ):
        return _error(
            403, "You are not permitted to view the requested resource. The API username or key is invalid."
        )
    if path.startswith("/admin/") and key != SANDBOX_DISCOURSE_API_KEY:
        return _error(403)

    if path in ("/categories.json", "/categories"):
        categories = [_category(s, seed, scale, today, edits) for s in community.spaces(PLATFORM)]
        return SandboxResponse(
            200,
            {
                "category_list": {
                    "can_create_category": True,
                    "can_create_topic": True,
                    "categories": categories,
                }
            },
        )

    if path in ("/latest.json", "/latest"):
        return _latest(request, seed, scale, today, edits)

    match = _TOPIC_POSTS.match(path)
    if match:
        topic = _forum(seed, scale, today, edits)[1].get(int(match.group(1)))
        if topic is None:
            return _error(404)
        asked = request.query.get("post_ids[]", []) + request.query.get("post_ids", [])
        wanted = set()
        for value in asked:
            try:
                wanted.add(int(value))
            except ValueError:
                return _error(400)
        if not asked:
            # Without post_ids the forum answers the topic's first chunk, as /t/{id}.json does.
            wanted = {int(p.post_id) for p in topic.posts[:CHUNK_SIZE]}
        posts = [
            _post(topic, n, seed, scale, today)
            for n, p in enumerate(topic.posts, start=1)
            if int(p.post_id) in wanted
        ]
        return SandboxResponse(200, {"post_stream": {"posts": posts}, "id": topic.topic_id})

    match = _TOPIC_JSON.match(path)
    if match:
        topic = _forum(seed, scale, today, edits)[1].get(int(match.group(1)))
        if topic is None:
            return _error(404)
        return SandboxResponse(200, _topic(topic, seed, scale, today))

    if path in ("/posts.json", "/posts"):
        return _latest_posts(request, seed, scale, today, edits)

    if path in ("/post_action_users.json", "/post_action_users"):
        try:
            post_id = int(request.param("id") or "")
            action = int(request.param("post_action_type_id") or "")
        except ValueError:
            return _error(400, "param is missing or the value is empty: id")
        topic = _forum(seed, scale, today, edits)[2].get(post_id)
        if topic is None:
            return _error(404)
        page = _int_param(request, "page", 0, 0, 10_000)
        limit = _int_param(request, "limit", 200, 1, 200)
        if page is None or limit is None:
            return _error(400)
        post = next(p for p in topic.posts if int(p.post_id) == post_id)
        likers = _likers(post, seed, scale) if action == 2 else []
        chunk = likers[page * limit : (page + 1) * limit]
        users = [
            {
                **_basic_user(m),
                "post_url": f"/t/{_slug(topic.title)}/{topic.topic_id}/{topic.posts.index(post) + 1}",
                "username_lower": m.handle.lower(),
                "unknown": False,
            }
            for m in chunk
        ]
        return SandboxResponse(200, {"post_action_users": users, "total_rows_post_action_users": len(likers)})

    if path in ("/user_actions.json", "/user_actions"):
        return _user_actions(request, key, seed, scale, today, edits)

    match = _USERS_LIST.match(path)
    if match:
        if match.group(1) not in ("active", "new", "staff", "suspended", "blocked", "suspect"):
            return _error(404)
        page = _int_param(request, "page", 1, 0, 100_000)
        if page is None:
            return _error(400)
        people = [m for m in _forum_users(seed, scale) if m.joined < today]
        if match.group(1) == "staff":
            people = [m for m in people if m.is_employee]
        elif match.group(1) != "active":
            people = []
        index = max(page, 1) - 1
        chunk = people[index * USERS_PER_PAGE : (index + 1) * USERS_PER_PAGE]
        show = (request.param("show_emails") or "").lower() == "true"
        return SandboxResponse(200, [_user(m, today, show) for m in chunk])

    return _error(404)


def _latest(
    request: SandboxRequest, seed: int, scale: str, today: date, edits: Edits = NO_EDITS
) -> SandboxResponse:
    order = request.param("order") or "default"
    if order in ("default", "activity"):
        topics = _forum(seed, scale, today, edits)[0]
    elif order == "created":
        topics = _by_created(seed, scale, today, edits)
    else:
        return _error(400, f"order {order!r} is not supported by the sandbox (use activity or created)")
    if (request.param("ascending") or "").lower() == "true":
        topics = topics[::-1]
    page = _int_param(request, "page", 0, 0, 1_000_000)
    per_page = _int_param(request, "per_page", PER_PAGE, 1, 100)
    if page is None or per_page is None:
        return _error(400)
    chunk = topics[page * per_page : (page + 1) * per_page]
    summaries = [_topic_summary(t, seed, scale) for t in chunk]
    user_ids = dict.fromkeys(p["user_id"] for s in summaries for p in s["posters"])
    by_uid = {_uid(m): m for m in _forum_users(seed, scale)}
    topic_list = {
        "can_create_topic": True,
        "per_page": per_page,
        "topics": summaries,
    }
    if (page + 1) * per_page < len(topics):
        query = f"order={order}&page={page + 1}" + (f"&per_page={per_page}" if per_page != PER_PAGE else "")
        topic_list["more_topics_url"] = f"/latest?{query}"
    return SandboxResponse(
        200,
        {
            "users": [_basic_user(by_uid[u]) for u in user_ids if u in by_uid],
            "primary_groups": [],
            "topic_list": topic_list,
        },
    )


def _user_actions(
    request: SandboxRequest, key: str, seed: int, scale: str, today: date, edits: Edits = NO_EDITS
) -> SandboxResponse:
    """Discourse's `UserActionsController#index` for likes: the stream of `username` filtered to
    the action types asked, newest first, USER_ACTIONS_PER_PAGE from `offset`."""
    username = (request.param("username") or "").strip()
    if not username:
        return _error(400, "param is missing or the value is empty: username")
    offset = _int_param(request, "offset", 0, 0, 10**9)
    try:
        types = {int(t) for t in (request.param("filter") or "").split(",") if t.strip()}
    except ValueError:
        return _error(400)
    if offset is None:
        return _error(400)
    owner = _user_by_name(seed, scale).get(username.lower())
    if owner is None:
        return _error(404)
    own = username.lower() == (request.headers.get("Api-Username") or "").lower()
    if WAS_LIKED in types and key != SANDBOX_DISCOURSE_API_KEY and not own:
        return _error(404)  # a private action type: only the user and admins may list it
    stream = sorted(
        (
            (*like, action)
            for action in (LIKE, WAS_LIKED)
            if action in types
            for like in _likes_of_users(seed, scale, today, action, edits).get(_uid(owner), ())
        ),
        reverse=True,
    )
    chunk = stream[offset : offset + USER_ACTIONS_PER_PAGE]
    return SandboxResponse(
        200, {"user_actions": [_user_action(owner, *item, seed, scale, today, edits) for item in chunk]}
    )


def _user_action(
    owner: community.Member,
    moment: datetime,
    post_id: int,
    liker_id: int,
    action: int,
    seed: int,
    scale: str,
    today: date,
    edits: Edits = NO_EDITS,
) -> dict:
    """One like in a user's stream, with the fields the contract requires (its types: post_id is a
    string, hidden and post_type null)."""
    topic = _forum(seed, scale, today, edits)[2][post_id]
    number = next(n for n, p in enumerate(topic.posts, start=1) if int(p.post_id) == post_id)
    post = topic.posts[number - 1]
    author = _member(seed, scale, post.author_person_id)
    liker = _user_by_id(seed, scale)[liker_id]
    body = _title_and_body(post)[1] if number == 1 else post.text
    return {
        "excerpt": html.escape(re.sub(r"\s+", " ", body).strip()[:300]),
        "action_type": action,
        "created_at": _iso(moment),
        "avatar_template": _avatar(author.handle),
        "acting_avatar_template": _avatar(liker.handle),
        "slug": _slug(topic.title),
        "topic_id": topic.topic_id,
        "target_user_id": _uid(owner),
        "target_name": owner.name,
        "target_username": owner.handle,
        "post_number": number,
        "post_id": str(post_id),
        "username": author.handle,
        "name": author.name,
        "user_id": _uid(author),
        "acting_username": liker.handle,
        "acting_name": liker.name,
        "acting_user_id": liker_id,
        "title": topic.title,
        "deleted": False,
        "hidden": None,
        "post_type": None,
        "action_code": None,
        "category_id": int(topic.root.space_id),
        "closed": False,
        "archived": False,
    }


# Fields of a post in /posts.json that /t/{id}.json posts carry too (the rest are added or changed).
_LATEST_POST_FIELDS = (
    "id name username avatar_template created_at cooked post_number post_type updated_at reply_count "
    "reply_to_post_number quote_count incoming_link_count reads readers_count score yours topic_id "
    "topic_slug display_username primary_group_name flair_name flair_url flair_bg_color flair_color "
    "version can_edit can_delete can_recover can_see_hidden_post can_wiki user_title bookmarked "
    "actions_summary moderator admin staff user_id hidden trust_level deleted_at user_deleted "
    "edit_reason can_view_edit_history wiki reviewable_score_count reviewable_score_pending_count"
).split()


def _latest_post(topic: Topic, number: int, seed: int, scale: str, today: date) -> dict:
    post = _post(topic, number, seed, scale, today)
    out = {name: post[name] for name in _LATEST_POST_FIELDS}
    source = topic.posts[number - 1]
    body = _title_and_body(source)[1] if number == 1 else source.text
    text = re.sub(r"\s+", " ", body).strip()
    out.update(
        {
            "posts_count": len(topic.posts),
            "topic_title": topic.title,
            "topic_html_title": html.escape(topic.title),
            "category_id": int(topic.root.space_id),
            "flair_group_id": None,
            "badges_granted": [],
            "raw": body,
            "excerpt": html.escape(text[:300]),
            "truncated": len(text) > 300,
            "reviewable_id": None,
            "post_url": f"/t/{_slug(topic.title)}/{topic.topic_id}/{number}",
        }
    )
    return out


def _latest_posts(
    request: SandboxRequest, seed: int, scale: str, today: date, edits: Edits = NO_EDITS
) -> SandboxResponse:
    """Discourse's `PostsController#latest`: regular posts of visible public topics, ids below
    `before` (none: from the newest), newest id first, 50 at most; the forum holds no hidden,
    deleted or small-action posts, so every post qualifies."""
    text = request.param("before")
    before = None
    if text not in (None, ""):
        try:
            before = int(text)
        except ValueError:
            return _error(400)
        if before <= 0:
            before = None
    rows = _by_post_id(seed, scale, today, edits)
    start = 0
    if before is not None:
        low, high = 0, len(rows)  # first index whose id is below `before` (ids descend)
        while low < high:
            mid = (low + high) // 2
            if rows[mid][0] >= before:
                low = mid + 1
            else:
                high = mid
        start = low
    chunk = rows[start : start + LATEST_POSTS_PER_PAGE]
    return SandboxResponse(
        200, {"latest_posts": [_latest_post(topic, n, seed, scale, today) for _, topic, n in chunk]}
    )


def describe(sandbox) -> dict:
    return {
        "base_url": f"{sandbox.base_url}{PREFIX}",
        "forum": FORUM,
        "api_key": SANDBOX_DISCOURSE_API_KEY,
        "api_username": "system",
        "latest": f"{sandbox.base_url}{PREFIX}/latest.json",
    }


API = SandboxApi(name="discourse", prefix=PREFIX, handle=handle, error_body=error_body, describe=describe)


def first_post_page(seed: int, scale: str, today: date, topic_id: int) -> list[int]:
    """The post ids /t/{id}.json returns in `posts` (for tests)."""
    topic = _forum(seed, scale, today)[1][topic_id]
    return [int(p.post_id) for p in topic.posts[:CHUNK_SIZE]]


def latest_post(seed: int, scale: str, today: date, post_id: int) -> dict:
    """A post as /posts.json lists it (for tests)."""
    topic = _forum(seed, scale, today)[2][post_id]
    number = next(n for n, p in enumerate(topic.posts, start=1) if int(p.post_id) == post_id)
    return _latest_post(topic, number, seed, scale, today)


def liker_person_ids(seed: int, scale: str, today: date, post_id: int) -> tuple[str, ...]:
    """The person ids of the generated likers of a post (for tests that edit them through
    SandboxServer.discourse_likers)."""
    topic = _forum(seed, scale, today)[2][post_id]
    post = next(p for p in topic.posts if int(p.post_id) == post_id)
    return tuple(pid for pid, _emoji in post.reactions)


def likes_in_streams(
    seed: int, scale: str, today: date, action: int, likers: dict[int, tuple[str, ...]] | None = None
) -> dict[int, tuple]:
    """Every like by the user id whose /user_actions.json stream lists it under `action` (LIKE: the
    liker, WAS_LIKED: the post's author): (created_at, post id, liker's user id), newest first, with
    the edited `likers` (SandboxServer.discourse_likers) if any (for tests and benchmarks)."""
    return _likes_of_users(seed, scale, today, action, Edits(tuple(sorted((likers or {}).items()))))


@functools.cache
def _posts_by_day(seed: int, scale: str, today: date) -> dict[date, list[tuple[Topic, int]]]:
    out: dict[date, list[tuple[Topic, int]]] = {}
    for topic in _forum(seed, scale, today)[0]:
        for number, post in enumerate(topic.posts, start=1):
            out.setdefault(post.created_at.date(), []).append((topic, number))
    return out


def day_objects(seed: int, scale: str, today: date, day: date) -> tuple[list[dict], list[dict]]:
    """The /latest summaries of the topics created on `day` and the /posts.json posts created on it,
    as the forum answers on `today` (for benchmarks that write a history without HTTP)."""
    posts = _posts_by_day(seed, scale, today).get(day, [])
    summaries = [_topic_summary(topic, seed, scale) for topic, number in posts if number == 1]
    return summaries, [_latest_post(topic, number, seed, scale, today) for topic, number in posts]


def topics_between(seed: int, scale: str, today: date, first: date, last: date) -> list[Topic]:
    """Topics with a post created in [first, last] (for tests)."""
    start, end = _start(first), _start(last + timedelta(days=1))
    return [t for t in _forum(seed, scale, today)[0] if any(start <= p.created_at < end for p in t.posts)]


__all__ = [
    "API",
    "like_times",
    "SANDBOX_DISCOURSE_API_KEY",
    "SANDBOX_DISCOURSE_USER_KEY",
    "cook",
    "day_objects",
    "error_body",
    "handle",
    "latest_post",
    "likes_in_streams",
    "topics_between",
]
