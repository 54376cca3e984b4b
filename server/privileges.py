"""Privileges (CONTRACT rev. 3 "Trust and spam"): what a signed-in user may do beyond writing their own posts.

The one place a privilege is decided: `can(user, name)`. Until the trust issue (29) adds reputation and the
`PARLEY_TRUST` presets, the only preset is `open`, where every threshold is 1 (every account has at least 1
reputation, so every signed-in user holds it) except `edit_others`, which only moderators hold there.
Moderators hold every privilege. The trust issue extends this function (thresholds by preset, the user's
reputation) without changing its callers.
"""

from __future__ import annotations

from typing import Any

from .errors import Forbidden

PRIVILEGES = ("vote_up", "flag", "comment_anywhere", "vote_down", "create_tag", "edit_others")
MODERATORS_ONLY = frozenset({"edit_others"})  # in the `open` preset


def can(user: Any, name: str) -> bool:
    """Whether `user` (a users row) holds the privilege `name`."""
    if name not in PRIVILEGES:
        raise RuntimeError(f"unknown privilege {name!r}")
    if user["is_moderator"]:
        return True
    return name not in MODERATORS_ONLY


def require(user: Any, name: str, doing: str) -> None:
    """403 code `privilege` unless `user` holds `name`."""
    if not can(user, name):
        raise Forbidden(f"You need the {name} privilege to {doing}", code="privilege")
