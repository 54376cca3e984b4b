"""A new password that is blank once trimmed, or only invisible characters, is refused (422 naming the field)
on every route that sets one: sign-up, a password change, a reset (CONTRACT "Limits"; issue 34, finding 12)."""

from __future__ import annotations

from typing import Any

import pytest

from support.api import Api, unique

PASSWORD = "correct horse battery"
BLANKS = ["        ", "\t\t\t\t\n\n\n\n", "\u3000" * 8, "\u200b" * 8, " \u2060 \u2800 \u200b   "]


def signed_up(url: str) -> Api:
    api = Api(url)
    r = api.post("/api/users", json={"username": unique(), "password": PASSWORD})
    assert r.status_code == 201, r.text
    return api


@pytest.mark.parametrize("blank", BLANKS)
def test_sign_up_refuses_a_blank_password(server: Any, blank: str) -> None:
    """POST /api/users with a password of spaces (or invisible characters) → 422 field password, no account."""
    name = unique()
    r = Api(server.url).post("/api/users", json={"username": name, "password": blank})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password", r.text
    assert Api(server.url).get(f"/api/users/{name}").status_code == 404


@pytest.mark.parametrize("blank", BLANKS)
def test_a_password_change_refuses_a_blank_new_password(server: Any, blank: str) -> None:
    """PUT /api/me/password with a blank new_password → 422 field new_password; the old one still signs in."""
    api = signed_up(server.url)
    r = api.put("/api/me/password", json={"old_password": PASSWORD, "new_password": blank})
    assert r.status_code == 422 and r.json()["error"]["field"] == "new_password", r.text
    assert api.get("/api/me").status_code == 200


def test_a_reset_refuses_a_blank_new_password(server: Any) -> None:
    """POST /api/password-reset/confirm with a blank new_password → 422 field new_password (before the token)."""
    r = Api(server.url).post("/api/password-reset/confirm", json={"token": "x" * 43, "new_password": " " * 12})
    assert r.status_code == 422 and r.json()["error"]["field"] == "new_password", r.text


def test_a_password_with_spaces_around_words_is_kept_as_typed(server: Any) -> None:
    """Spaces inside and around a password are part of it (never trimmed): it signs in only exactly as typed."""
    name = unique()
    typed = "  two words  "
    r = Api(server.url).post("/api/users", json={"username": name, "password": typed})
    assert r.status_code == 201, r.text
    assert Api(server.url).post("/api/session", json={"username": name, "password": typed}).status_code == 200
    assert Api(server.url).post("/api/session", json={"username": name, "password": typed.strip()}).status_code == 401
