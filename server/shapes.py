"""The contract's answer shapes, declared once as msgspec Structs (CONTRACT "Objects").

server/openapi.py publishes them as the document's response schemas (msgspec derives the JSON Schema), and
the code that builds each shape is checked against them: tests/unit/test_shapes.py converts what the
builders make (store.posts.post_dict, store.threads.thread_dict, store.users.brief/full, …) into these
Structs, so a key added to a builder but not here (or the reverse) fails a test, and schemathesis checks
every live answer against the document.

Request bodies are declared next to their handlers (api/*.py), where parse() decodes into them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from . import limits

BIGINT = limits.BIGINT
Id = Annotated[int, msgspec.Meta(ge=1, le=BIGINT)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Seq = Annotated[int, msgspec.Meta(ge=0)]
Time = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
Cursor = str | None
Vote = Literal[-1, 0, 1]
Reputation = Annotated[int, msgspec.Meta(ge=1, description="Starts at 1, never below 1 (docs/moderation.md)")]
ReputationReason = Literal["vote_up", "vote_down", "vote_undone", "vote_changed", "accepted", "accept_undone",
                           "accepter", "accepter_undone", "post_deleted", "recount"]


class UserBrief(msgspec.Struct):
    id: Id
    username: str
    display_name: str
    avatar_url: str | None = None  # absent only in events stored before avatars (migration 0011)


class Member(msgspec.Struct):
    """A full user as others see it (a Profile's base): never the address."""

    id: Id
    username: str
    display_name: str
    avatar_url: str | None
    is_moderator: bool
    created_at: Time


class User(Member):
    """A full user: /api/me and the answers of sign-up and sign-in; only ever the user's own view."""

    email: str | None
    email_verified: bool


class UserAnswer(msgspec.Struct):
    user: User


class Upload(msgspec.Struct):
    """An uploaded image (CONTRACT "Pictures"): its stored bytes' size and SHA-256, its URLs."""

    id: Id
    url: str
    thumbnail_url: str
    content_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    size: Annotated[int, msgspec.Meta(ge=1)]
    width: Annotated[int, msgspec.Meta(ge=1)]
    height: Annotated[int, msgspec.Meta(ge=1)]
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class UploadAnswer(msgspec.Struct):
    upload: Upload


class PathItem(msgspec.Struct):
    slug: str
    name: str


class Category(msgspec.Struct):
    id: Id
    slug: str
    name: str
    parent: str | None
    path: list[PathItem]
    children: list[Category]


class CategoryBrief(msgspec.Struct):
    slug: str
    name: str
    path: list[PathItem]


class ThreadTitle(msgspec.Struct):
    id: Id
    title: str


class Thread(msgspec.Struct):
    id: Id
    title: str
    category: CategoryBrief
    author: UserBrief
    created_at: Time
    response_count: Count
    last_activity_at: Time
    locked: bool
    seq: Seq
    score: int
    accepted_id: Id | None
    tags: list[str]
    duplicate_of: ThreadTitle | None
    following: bool
    unread: Count | None


class Post(msgspec.Struct):
    id: Id
    thread_id: Id
    parent_id: Id | None
    kind: Literal["question", "response", "comment"]
    author: UserBrief
    body: str
    html: str
    created_at: Time
    edited_at: Time | None
    edited_by: UserBrief | None
    revision: Annotated[int, msgspec.Meta(ge=1)]
    score: int
    my_vote: Vote
    deleted: bool
    # Present (true) only on a post held by the spam check, which only its author and moderators see.
    pending: bool = False
    # Present (true) only for a reader who ignores the post's author (shown collapsed).
    ignored: bool = False


class Response(Post, kw_only=True):
    """A response on a thread page, with its comments (`comments_more`: some were left out for size)."""

    comments: list[Post]
    comments_more: bool = False


class Notification(msgspec.Struct):
    id: Id
    kind: Literal["response", "comment", "mention", "accepted", "followed", "tagged"]
    created_at: Time
    read: bool
    actor: UserBrief
    thread: ThreadTitle
    post_id: Id


class Unread(msgspec.Struct):
    unread: Count


class ThreadList(msgspec.Struct):
    threads: list[Thread]
    next: Cursor


class ThreadPage(msgspec.Struct):
    thread: Thread
    question: Post
    responses: list[Response]
    next: Cursor


class Revision(msgspec.Struct):
    revision: Annotated[int, msgspec.Meta(ge=1)]
    body: str
    html: str
    edited_by: UserBrief
    edited_at: Time


EventName = Literal["post.created", "post.edited", "post.deleted", "vote.changed", "thread.updated"]


class Event(msgspec.Struct):
    type: Literal["event"]
    thread: Id
    seq: Annotated[int, msgspec.Meta(ge=1)]
    name: EventName
    data: dict[str, Any]
    created_at: Time | UnsetType = UNSET  # over HTTP, not on /ws


class Presence(msgspec.Struct):
    users: list[UserBrief]
    guests: Count
    count: Count
    next: Cursor


class Flag(msgspec.Struct):
    id: Id
    post_id: Id
    thread_id: Id
    reason: Literal["spam", "rude", "off_topic", "other"]
    note: str | None
    status: Literal["open", "resolved", "dismissed"]
    created_at: Time
    flagger: UserBrief
    resolved_by: UserBrief | None


ModlogAction = Literal["post.edited", "post.deleted", "thread.renamed", "thread.locked", "thread.unlocked",
                       "thread.moved", "thread.accepted", "user.suspended", "user.unsuspended", "flag.resolved",
                       "flag.dismissed", "thread.duplicate", "user.silenced", "user.unsilenced"]


class ModlogTarget(msgspec.Struct):
    thread_id: Id | UnsetType = UNSET
    post_id: Id | UnsetType = UNSET
    username: str | UnsetType = UNSET


class ModlogEntry(msgspec.Struct):
    id: Id
    action: ModlogAction
    moderator: UserBrief | None  # null: the system (an auto-silence)
    target: ModlogTarget
    reason: str | None
    created_at: Time


class Stats(msgspec.Struct):
    questions: Count
    responses: Count
    comments: Count
    accepted: Count
    score: int


class Profile(Member):
    last_seen_at: Time | None
    suspended_until: Time | None
    stats: Stats
    reputation: Reputation
    silenced: bool
    ignored: bool = False  # present for a signed-in reader looking at someone else: whether they ignore them


class ReputationEvent(msgspec.Struct):
    """One row of a user's reputation ledger: the change that happened, why, and the post it came from."""

    delta: int
    reason: ReputationReason
    post_id: Id | None
    created_at: Time


class ReputationLedger(msgspec.Struct):
    events: list[ReputationEvent]
    next: Cursor


class Privilege(msgspec.Struct):
    name: Literal["vote_up", "flag", "comment_anywhere", "vote_down", "create_tag", "edit_others"]
    reputation: Annotated[int, msgspec.Meta(ge=1)] | None  # null: moderators only (edit_others under open)


class Privileges(msgspec.Struct):
    privileges: list[Privilege]


class UserPost(Post, kw_only=True):
    thread: ThreadTitle


class UserPosts(msgspec.Struct):
    posts: list[UserPost]
    next: Cursor


class Permalink(msgspec.Struct):
    post: Post
    thread: Thread
    after: Cursor


class SearchThread(msgspec.Struct):
    id: Id
    title: str
    category: CategoryBrief


class SearchResult(msgspec.Struct):
    post: Post
    thread: SearchThread
    snippet: str


class SearchResults(msgspec.Struct):
    results: list[SearchResult]
    next: Cursor


class TagCount(msgspec.Struct):
    name: str
    count: Count


class TagList(msgspec.Struct):
    tags: list[TagCount]


class SimilarThreads(msgspec.Struct):
    threads: list[Thread]


class Bookmarks(msgspec.Struct):
    posts: list[UserPost]
    next: Cursor


class ErrorBody(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(pattern="^[a-z0-9_]+$")]
    message: str
    field: str | UnsetType = UNSET


class Error(msgspec.Struct):
    error: ErrorBody


class Preferences(msgspec.Struct):
    email_notifications: Literal["always", "away", "never"]
    digest: Literal["off", "daily", "weekly"]


class PreferencesAnswer(msgspec.Struct):
    preferences: Preferences


class Unsubscribed(msgspec.Struct):
    """The answer of a one-click unsubscribe: the preferences of the user it was for, as they are now."""

    unsubscribed: bool
    preferences: Preferences


class Queued(msgspec.Struct):
    """202: the request is taken (a password reset: whether the address is known is never told)."""

    accepted: bool


# Every shape the document lists under components/schemas, by the name it has there.
class ApiKey(msgspec.Struct):
    id: int
    name: str
    scopes: list[Literal["read", "write"]]
    created_at: Time
    last_used_at: Time | None


class ApiKeyCreated(msgspec.Struct):
    """201: the new key and its token, shown only this once (only its hash is kept)."""

    api_key: ApiKey
    token: str


class ApiKeys(msgspec.Struct):
    api_keys: list[ApiKey]


class Draft(msgspec.Struct):
    """What a person is writing under one key (CONTRACT rev. 3 "Drafts and transports"); `revision` is the
    compare-and-set token of PUT /api/me/drafts/{key}."""

    key: str
    body: str
    revision: Annotated[int, msgspec.Meta(ge=1)]
    updated_at: Time


class DraftAnswer(msgspec.Struct):
    draft: Draft


class Drafts(msgspec.Struct):
    drafts: list[Draft]


class DraftConflict(msgspec.Struct):
    """409 of a PUT whose revision is not the current one: the error and the current draft (null: none)."""

    error: ErrorBody
    draft: Draft | None


class Export(msgspec.Struct):
    """GET /api/me/export: everything the user wrote and set (docs/api.md "Leaving" lists each part's fields)."""

    exported_at: Time
    user: User
    preferences: Preferences
    posts: list[dict[str, Any]]
    votes: list[dict[str, Any]]
    follows: list[dict[str, Any]]
    read_positions: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    bookmarks: list[dict[str, Any]]
    api_keys: list[ApiKey]


class Webhook(msgspec.Struct):
    id: int
    url: str
    events: list[str]
    created_at: Time


class WebhookCreated(msgspec.Struct):
    """201: the webhook and its signing secret (`whsec_` + base64), shown only this once."""

    webhook: Webhook
    secret: str


class Webhooks(msgspec.Struct):
    webhooks: list[Webhook]


class WebhookDelivery(msgspec.Struct):
    """One delivery of the log: `id` is its webhook-id header; status pending, delivered or failed."""

    id: str
    type: str
    thread: int
    seq: int
    status: Literal["pending", "delivered", "failed"]
    tries: int
    last_status: int | None
    last_error: str | None
    created_at: Time
    delivered_at: Time | None
    next_try_at: Time | None


class WebhookDeliveries(msgspec.Struct):
    deliveries: list[WebhookDelivery]
    next: str | None


class SsoConfig(msgspec.Struct):
    """GET /auth/oidc/config: the provider's name for the page's button, and whether passwords are off (name and
    login_url null: no single sign-on here)."""

    name: str | None
    login_url: str | None
    sso_only: bool


ANSWERS: tuple[type[msgspec.Struct], ...] = (
    Error, UserBrief, User, UserAnswer, Category, CategoryBrief, Thread, Notification, Unread, Post, Response,
    ThreadList, ThreadPage, Revision, Event, Presence, Flag, ModlogEntry, Profile, UserPost, UserPosts, Permalink,
    SearchResults, Preferences, PreferencesAnswer, Unsubscribed, Queued, TagList, SimilarThreads, Bookmarks,
    Upload, UploadAnswer, ApiKey, ApiKeyCreated, ApiKeys, Export, Draft, DraftAnswer, Drafts, DraftConflict,
    Webhook, WebhookCreated, Webhooks, WebhookDelivery, WebhookDeliveries, SsoConfig,
    ReputationEvent, ReputationLedger, Privilege, Privileges,
)
