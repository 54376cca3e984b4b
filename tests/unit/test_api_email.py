"""The e-mail API's rules (CONTRACT "E-mail"): addresses, who sees them, verification and reset tokens
(once, expired, forged, after a change), the 202 that tells nothing, preferences, and the one-click
unsubscribe's refusals. Mail goes to the server's mail directory (no SMTP server)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

import support.api
from support.api import Api, unique
from support.databases import db_fetch, db_fetchval
from support.smtp import link, written_mail

PASSWORD = "correct horse battery"


def signed_up(url: str, email: str | None = None) -> Api:
    api = Api(url)
    name = unique()
    body: dict[str, Any] = {"username": name, "password": PASSWORD}
    if email is not None:
        body["email"] = email
    r = api.post("/api/users", json=body)
    assert r.status_code == 201, r.text
    api.user = r.json()["user"]
    return api


def address() -> str:
    return f"{unique('m')}@mail.example.org"


def verified(url: str, pg_url: str) -> tuple[Api, str]:
    email = address()
    api = signed_up(url)
    db_fetch(pg_url, "UPDATE users SET email = $2, email_verified = true WHERE id = $1", api.user["id"], email)
    return api, email


def planted(pg_url: str, user_id: int, purpose: str, email: str, expires: str = "1 hour") -> str:
    """A token of ours made straight in the database (only its hash is stored), at the user's epoch."""
    token = secrets.token_urlsafe(32)
    db_fetch(pg_url, "INSERT INTO email_tokens (hash, user_id, purpose, email, epoch, expires_at) SELECT $1, id, $2,"
                     " $3, credential_epoch, now() + $4::text::interval FROM users WHERE id = $5",
             hashlib.sha256(token.encode()).digest(), purpose, email, expires, user_id)
    return token


def test_addresses_are_checked_and_only_their_owner_sees_them(server: Any) -> None:
    """A malformed address is 422 field email; a good one is kept unverified (domain lower-cased); /api/me
    shows it, the profile does not."""
    for bad in ("not-an-address", "a@b", "ann@@example.org", "ü@example.org", "x" * 330 + "@example.org"):
        r = Api(server.url).post("/api/users", json={"username": unique(), "password": PASSWORD, "email": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "email", (bad, r.text)
    name = unique()
    api = Api(server.url)
    r = api.post("/api/users", json={"username": name, "password": PASSWORD, "email": f"{name}@Mail.Example.ORG"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["email"] == f"{name}@mail.example.org" and r.json()["user"]["email_verified"] is False
    assert api.get("/api/me").json()["user"]["email"] == f"{name}@mail.example.org"
    profile = Api(server.url).get(f"/api/users/{name}").json()["user"]
    assert "email" not in profile and "email_verified" not in profile


def test_setting_the_address_needs_the_password(server: Any, pg_url: str) -> None:
    """PUT /api/me/email: a wrong password is 403 wrong_password; the address is set unverified; the same
    verified address again stays verified; null removes it; a guest is 401."""
    api = signed_up(server.url)
    email = address()
    r = api.put("/api/me/email", json={"email": email, "password": "not the password"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_password", r.text
    r = api.put("/api/me/email", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["email"] == email and not r.json()["user"]["email_verified"]
    db_fetch(pg_url, "UPDATE users SET email_verified = true WHERE id = $1", api.user["id"])
    again = api.put("/api/me/email", json={"email": email, "password": PASSWORD})
    assert again.json()["user"]["email_verified"] is True
    gone = api.put("/api/me/email", json={"email": None, "password": PASSWORD})
    assert gone.status_code == 200 and gone.json()["user"]["email"] is None
    assert Api(server.url).put("/api/me/email", json={"email": email, "password": PASSWORD}).status_code == 401


def test_an_address_verified_elsewhere_is_taken(server: Any, pg_url: str) -> None:
    """Another account's verified address, in any case: sign-up and PUT /api/me/email are 409 email_taken, and
    verifying it (someone set it before it was verified elsewhere) is 409 too."""
    first, email = verified(server.url, pg_url)
    r = Api(server.url).post("/api/users", json={"username": unique(), "password": PASSWORD, "email": email.upper()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken", r.text
    other = signed_up(server.url)
    r = other.put("/api/me/email", json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 409 and r.json()["error"]["field"] == "email", r.text
    late = signed_up(server.url)
    db_fetch(pg_url, "UPDATE users SET email = $2 WHERE id = $1", late.user["id"], email)
    token = planted(pg_url, late.user["id"], "verify", email)
    r = Api(server.url).post("/api/email/verify", json={"token": token})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken", r.text
    assert first


def test_a_verification_link_works_once_and_only_for_the_address_it_was_sent_to(server: Any, pg_url: str) -> None:
    """The mailed link verifies without a session, once; a second use, a forged, an expired token, or a link
    to an address changed since are 422 field token."""
    email = address()
    api = signed_up(server.url, email)
    _, mail = written_mail(server, pg_url, email)
    token = parse_qs(urlsplit(link(mail, "/verify-email")).query)["token"][0]
    r = Api(server.url).post("/api/email/verify", json={"token": token})
    assert r.status_code == 200 and r.json()["user"]["email_verified"] is True, r.text
    again = Api(server.url).post("/api/email/verify", json={"token": token})
    assert again.status_code == 422 and again.json()["error"]["field"] == "token", again.text
    expired = planted(pg_url, api.user["id"], "verify", email, "-1 minute")
    api.put("/api/me/email", json={"email": address(), "password": PASSWORD})
    moved = planted(pg_url, api.user["id"], "verify", email)
    for bad in (token, secrets.token_urlsafe(32), expired, moved, "", "x" * 200):
        r = Api(server.url).post("/api/email/verify", json={"token": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "token", (bad, r.text)


def test_a_reset_link_dies_with_a_password_change(server: Any, pg_url: str) -> None:
    """A reset token made before a password change is 422; one made after works once and signs in."""
    api, email = verified(server.url, pg_url)
    old = planted(pg_url, api.user["id"], "reset", email)
    r = api.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "another password"})
    assert r.status_code == 200, r.text
    r = Api(server.url).post("/api/password-reset/confirm", json={"token": old, "new_password": "third password"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "token", r.text
    fresh = planted(pg_url, api.user["id"], "reset", email)
    newcomer = Api(server.url)
    r = newcomer.post("/api/password-reset/confirm", json={"token": fresh, "new_password": "third password"})
    assert r.status_code == 200 and r.json()["user"]["email"] == email, r.text
    assert newcomer.get("/api/me").status_code == 200 and api.get("/api/me").status_code == 401
    short = Api(server.url).post("/api/password-reset/confirm", json={"token": fresh, "new_password": "short"})
    assert short.status_code == 422 and short.json()["error"]["field"] == "new_password"


def test_a_reset_request_tells_nothing(server: Any, pg_url: str) -> None:
    """Known, unknown and unverified addresses get the same 202 and body; only the verified one is mailed,
    with a link built from the server's public URL whatever Host the request named; malformed is 422."""
    api, email = verified(server.url, pg_url)
    unverified = address()
    signed_up(server.url, unverified)
    answers = []
    for target in (email, address(), unverified):
        r = Api(server.url).post("/api/password-reset", json={"email": target}, headers={"Host": "evil.example"})
        answers.append((r.status_code, r.json()))
    assert answers == [(202, {"accepted": True})] * 3
    _, mail = written_mail(server, pg_url, email)
    assert "evil.example" not in link(mail, "/reset-password")
    assert db_fetchval(pg_url, "SELECT count(*) FROM mail_outbox WHERE recipient = $1 AND kind = 'reset'",
                       unverified) == 0
    r = Api(server.url).post("/api/password-reset", json={"email": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "email"
    assert api


def test_preferences_have_defaults_and_change_by_subset(server: Any) -> None:
    """away and weekly at first; a PUT changes what it names; a value not listed is 422 naming it; a guest 401."""
    api = signed_up(server.url)
    assert api.get("/api/me/preferences").json() == {"preferences": {"email_notifications": "away",
                                                                      "digest": "weekly"}}
    r = api.put("/api/me/preferences", json={"digest": "daily"})
    assert r.json() == {"preferences": {"email_notifications": "away", "digest": "daily"}}
    r = api.put("/api/me/preferences", json={"email_notifications": "never"})
    assert r.json() == {"preferences": {"email_notifications": "never", "digest": "daily"}}
    for bad in ({"digest": "hourly"}, {"email_notifications": True}):
        r = api.put("/api/me/preferences", json=bad)
        assert r.status_code == 422 and r.json()["error"]["field"] == next(iter(bad)), r.text
    assert Api(server.url).get("/api/me/preferences").status_code == 401


def test_unsubscribe_refuses_forged_tokens_and_other_bodies(server: Any) -> None:
    """POST /unsubscribe: a JSON body is 415, a form without List-Unsubscribe=One-Click is 422 naming it, no
    token 400, a forged or malformed token 422 field token; a GET is the page (HTML) whatever the token."""
    api = signed_up(server.url)
    uid = api.user["id"]
    forged = f"{uid}.n.{'0' * 32}"
    transport = getattr(support.api, "TRANSPORTS", {}).get(server.url)  # an in-process app's, if it is one
    with httpx.Client(base_url=server.url, transport=transport, timeout=30) as anon:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert anon.post(f"/unsubscribe?token={forged}", json={"List-Unsubscribe": "One-Click"}).status_code == 415
        r = anon.post(f"/unsubscribe?token={forged}", content=b"List-Unsubscribe=Yes", headers=form)
        assert r.status_code == 422 and r.json()["error"]["field"] == "List-Unsubscribe", r.text
        assert anon.post("/unsubscribe", content=b"List-Unsubscribe=One-Click", headers=form).status_code == 400
        for token in (forged, "garbage", f"{uid}.x.{'0' * 32}"):
            r = anon.post(f"/unsubscribe?token={token}", content=b"List-Unsubscribe=One-Click", headers=form)
            assert r.status_code == 422 and r.json()["error"]["field"] == "token", (token, r.text)
        multipart = anon.post(f"/unsubscribe?token={forged}", files={"List-Unsubscribe": (None, "One-Click")})
        assert multipart.status_code == 422 and multipart.json()["error"]["field"] == "token", multipart.text
        page = anon.get(f"/unsubscribe?token={forged}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert api.get("/api/me/preferences").json()["preferences"]["email_notifications"] == "away"
