"""Privileges (CONTRACT rev. 3 "Trust and spam"; docs/moderation.md "Trust"): what a signed-in user may do beyond
writing their own posts, decided in one place: `can(user, name, preset)`.

One table, two presets (`PARLEY_TRUST`): `open` (the default) sets every threshold to 1 (every account has at
least 1 reputation, so every signed-in user holds it) except `edit_others`, which only moderators hold there;
`standard` uses the contract's reputation thresholds. Moderators hold every privilege. `GUARDED` says which
operation needs which privilege: the handlers check it through `require`, and the OpenAPI document
(server/openapi.py) describes the same 403 `privilege` from the same table.
"""

from __future__ import annotations

from typing import Any

from .errors import Forbidden

PRIVILEGES = ("vote_up", "flag", "comment_anywhere", "vote_down", "create_tag", "edit_others")
# name → the reputation it needs, per preset; None: moderators only.
PRESETS: dict[str, dict[str, int | None]] = {
    "open": {"vote_up": 1, "flag": 1, "comment_anywhere": 1, "vote_down": 1, "create_tag": 1, "edit_others": None},
    "standard": {"vote_up": 15, "flag": 15, "comment_anywhere": 50, "vote_down": 125, "create_tag": 150,
                 "edit_others": 2000},
}
# Under `standard`, an account under this reputation is new: the new-account limits apply to it, it can be
# silenced by three spam flaggers, and its posts go through the spam check.
NEW_ACCOUNT = 10

# operationId (server/openapi.py) → the privileges it may need, and when.
GUARDED: dict[str, tuple[tuple[str, ...], str]] = {
    "vote": (("vote_up", "vote_down"), "vote_up to vote up, vote_down to vote down"),
    "flagPost": (("flag",), "flag to flag a post"),
    "createPost": (("comment_anywhere",), "comment_anywhere to comment where it is not one's own post or the "
                                          "answer to one's own question"),
    "createThread": (("create_tag",), "create_tag to use a tag never used before"),
    "updateThread": (("create_tag",), "create_tag to use a tag never used before"),
    "editPost": (("edit_others",), "edit_others to edit someone else's post (moderators only under open)"),
}


def threshold(name: str, preset: str) -> int | None:
    if name not in PRIVILEGES:
        raise RuntimeError(f"unknown privilege {name!r}")
    return PRESETS[preset][name]


def can(user: Any, name: str, preset: str) -> bool:
    """Whether `user` (a users row) holds the privilege `name` under `preset`."""
    needed = threshold(name, preset)
    if user["is_moderator"]:
        return True
    return needed is not None and user["reputation"] >= needed


def require(user: Any, name: str, preset: str, doing: str) -> None:
    """403 code `privilege` unless `user` holds `name`."""
    if not can(user, name, preset):
        needed = threshold(name, preset)
        raise Forbidden(f"You need {needed} reputation to {doing}" if needed is not None
                        else f"Only moderators may {doing}", code="privilege")


def table(preset: str) -> list[dict[str, Any]]:
    """GET /api/privileges: each privilege with the reputation it needs (null: moderators only)."""
    return [{"name": name, "reputation": PRESETS[preset][name]} for name in PRIVILEGES]


def is_new(user: Any, preset: str) -> bool:
    """A new account under `standard` (the new-account limits, auto-silence and the spam check apply)."""
    return preset == "standard" and not user["is_moderator"] and user["reputation"] < NEW_ACCOUNT
