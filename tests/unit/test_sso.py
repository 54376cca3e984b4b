"""Single sign-on (CONTRACT "Single sign-on") through the whole redirect dance against a real OpenID Connect
provider on loopback (tests/support/oidc_provider.py): code flow with PKCE S256, state and nonce; accounts made
from preferred_username, made unique; linking only by a verified address; every bad answer 403 with nothing made;
PARLEY_SSO_ONLY turning passwords off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api_support import check_error
from server import oidc
from support.api import Api, unique
from support.databases import db_fetchval
from support.inprocess import InProcessApp, settings_for
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider().start()
    yield running
    running.stop()


def _app(pg_url: str, tmp: Any, provider: Provider, **more: Any) -> InProcessApp:
    return InProcessApp(settings_for(pg_url, tmp, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                                     oidc_client_secret=CLIENT_SECRET, webhook_workers=0, **more)).start()


@pytest.fixture(scope="module")
def sso(pg_url: str, tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[InProcessApp]:
    running = _app(pg_url, tmp_path_factory.mktemp("sso"), provider)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _fresh(provider: Provider) -> None:
    provider.tamper, provider.foreign_key, provider.token_delay = {}, False, 0.0


def dance(app: InProcessApp, provider: Provider, person: dict[str, Any], next_path: str = "/settings",
          client: httpx.Client | None = None) -> tuple[httpx.Client, httpx.Response]:
    """Login → the provider's authorize (real HTTP) → the callback; the app's client and the callback's answer."""
    provider.person = person
    c = client or app.client()
    r = c.get("/auth/oidc/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    at_provider = httpx.get(r.headers["location"], timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    return c, c.get(at_provider.headers["location"])


def _identities(pg_url: str, subject: str) -> int:
    return db_fetchval(pg_url, "SELECT count(*) FROM oidc_identities WHERE subject = $1", subject)


def test_first_sign_in_makes_an_account_and_signs_in(sso: InProcessApp, provider: Provider, pg_url: str) -> None:
    """303 to `next` with a session: the account is named from preferred_username and display name from `name`;
    the authorization request carried PKCE S256, a state and a nonce; the account has no password."""
    name = unique("ada")
    c, r = dance(sso, provider, {"sub": unique("sub"), "preferred_username": name, "name": "Ada L."}, "/t/5")
    assert r.status_code == 303 and r.headers["location"] == "/t/5"
    me = c.get("/api/me").json()["user"]
    assert me["username"] == name and me["display_name"] == "Ada L."
    asked = provider.seen_authorize[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert asked["nonce"] and asked["state"] and "openid" in asked["scope"].split()
    check_error(sso.client().post("/api/session", json={"username": name, "password": ""}), 401)


def test_the_same_person_comes_back_and_names_are_made_unique(sso: InProcessApp, provider: Provider) -> None:
    """The same subject signs in to the same account; another person with the same preferred_username gets the
    name with a number."""
    name, sub = unique("bo"), unique("sub")
    c1, _ = dance(sso, provider, {"sub": sub, "preferred_username": name})
    first = c1.get("/api/me").json()["user"]
    c2, _ = dance(sso, provider, {"sub": sub, "preferred_username": "renamed"})
    assert c2.get("/api/me").json()["user"]["id"] == first["id"]
    c3, _ = dance(sso, provider, {"sub": unique("sub"), "preferred_username": name.upper()})
    assert c3.get("/api/me").json()["user"]["username"] == f"{name.upper()}2"
    c4, _ = dance(sso, provider, {"sub": unique("sub"), "preferred_username": "a b!"})  # not a username as given
    assert c4.get("/api/me").json()["user"]["username"].startswith("ab_")


def test_a_verified_address_links_an_existing_account(sso: InProcessApp, provider: Provider, pg_url: str) -> None:
    """A provider-verified address that is an account's verified address signs in to that account; an unverified
    one makes a new account instead."""
    owner = Api(sso.url).sign_up()
    address = f"{unique('link')}@example.org"
    db_fetchval(pg_url, "UPDATE users SET email = $2, email_verified = true WHERE id = $1", owner.user["id"], address)
    c, _ = dance(sso, provider, {"sub": unique("sub"), "email": address.upper(), "email_verified": False})
    assert c.get("/api/me").json()["user"]["id"] != owner.user["id"]
    c, _ = dance(sso, provider, {"sub": unique("sub"), "email": address.upper(), "email_verified": True})
    assert c.get("/api/me").json()["user"]["id"] == owner.user["id"]


@pytest.mark.parametrize("bad", [
    {"tamper": {"nonce": "not-the-one"}}, {"tamper": {"exp": 1_000_000_000, "iat": 999_999_000}},
    {"tamper": {"aud": "another-client"}}, {"tamper": {"iss": "https://elsewhere.example"}},
    {"foreign_key": True},
], ids=["nonce", "expired", "audience", "issuer", "signature"])
def test_a_bad_id_token_is_403_and_makes_nothing(sso: InProcessApp, provider: Provider, pg_url: str,
                                                 bad: dict[str, Any]) -> None:
    """A wrong nonce, an expired token, another audience or issuer, a signature by another key → 403 oidc_failed,
    no account, no identity, no session."""
    provider.tamper = bad.get("tamper", {})
    provider.foreign_key = bad.get("foreign_key", False)
    sub, name = unique("sub"), unique("bad")
    c, r = dance(sso, provider, {"sub": sub, "preferred_username": name})
    check_error(r, 403, "oidc_failed")
    assert _identities(pg_url, sub) == 0
    assert db_fetchval(pg_url, "SELECT count(*) FROM users WHERE username LIKE $1 || '%'", name) == 0
    check_error(c.get("/api/me"), 401)


def test_a_provider_slower_than_the_timeout_is_403_and_makes_nothing(
        sso: InProcessApp, provider: Provider, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token endpoint that has not answered by the server's timeout to the provider → 403 oidc_failed (given up
    while the provider still held the request), no account, no identity, no session."""
    monkeypatch.setattr(oidc, "TIMEOUT", 0.5)
    provider.token_delay = 60.0
    answered = provider.token_answers
    sub, name = unique("sub"), unique("slow")
    c, r = dance(sso, provider, {"sub": sub, "preferred_username": name})
    check_error(r, 403, "oidc_failed")
    assert provider.token_answers == answered  # the server gave up: the provider had not answered yet
    provider.token_delay = 0.0
    assert _identities(pg_url, sub) == 0
    assert db_fetchval(pg_url, "SELECT count(*) FROM users WHERE username LIKE $1 || '%'", name) == 0
    check_error(c.get("/api/me"), 401)


def test_wrong_state_missing_login_and_replayed_code_are_403(sso: InProcessApp, provider: Provider,
                                                            pg_url: str) -> None:
    """A callback whose state is not the login's, one with no login cookie, and a code used a second time → 403."""
    sub = unique("sub")
    provider.person = {"sub": sub}
    c = sso.client()
    r = c.get("/auth/oidc/login")
    back = httpx.get(r.headers["location"], timeout=10).headers["location"]
    parts = urlsplit(back)
    query = parse_qs(parts.query)
    check_error(c.get("/auth/oidc/callback", params={"code": query["code"][0], "state": "forged"}), 403, "oidc_failed")
    check_error(sso.client().get(back), 403, "oidc_failed")  # another browser: no login cookie
    assert _identities(pg_url, sub) == 0
    login_cookie = c.cookies.get("parley_oidc")
    assert c.get(back).status_code == 303  # the real one, once
    again = sso.client()
    again.cookies.set("parley_oidc", login_cookie, domain=urlsplit(sso.url).hostname, path="/auth/oidc")
    check_error(again.get(back), 403, "oidc_failed")  # the same code again: the provider refuses it


def test_next_never_leaves_the_site(sso: InProcessApp, provider: Provider) -> None:
    """next=//evil.example or an absolute URL → the callback goes to / instead."""
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        _, r = dance(sso, provider, {"sub": unique("sub")}, bad)
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_config_says_the_provider_or_null(sso: InProcessApp, server: Any) -> None:
    """GET /auth/oidc/config names the provider for the page's button; without single sign-on it says null and
    the login and callback are 404."""
    r = sso.client().get("/auth/oidc/config")
    assert r.json() == {"name": "127.0.0.1", "login_url": "/auth/oidc/login", "sso_only": False}
    assert Api(server.url).get("/auth/oidc/config").json() == {"name": None, "login_url": None, "sso_only": False}
    check_error(Api(server.url).get("/auth/oidc/login"), 404)
    check_error(Api(server.url).get("/auth/oidc/callback?code=x&state=y"), 404)


def test_a_single_sign_on_account_deletes_itself_without_a_password(sso: InProcessApp, provider: Provider) -> None:
    """An account made by single sign-on has no password: DELETE /api/me with an empty one deletes it; a
    password account's empty password is still wrong."""
    c, _ = dance(sso, provider, {"sub": unique("sub"), "preferred_username": unique("gone")})
    assert c.request("DELETE", "/api/me", json={"password": ""}).status_code == 204
    member = Api(sso.url).sign_up()
    check_error(member.request("DELETE", "/api/me", json={"password": ""}), 403, "wrong_password")


@pytest.fixture(scope="module")
def sso_only(pg_url: str, tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[InProcessApp]:
    running = _app(pg_url, tmp_path_factory.mktemp("ssoonly"), provider, sso_only=True)
    yield running
    running.stop()


def test_sso_only_turns_passwords_off(sso_only: InProcessApp, provider: Provider) -> None:
    """Password sign-up, sign-in and reset (request and confirm) → 403 sso_only; the provider still signs in."""
    c = sso_only.client()
    check_error(c.post("/api/users", json={"username": unique(), "password": "correct horse battery"}), 403,
                "sso_only")
    check_error(c.post("/api/session", json={"username": "someone", "password": "correct horse battery"}), 403,
                "sso_only")
    check_error(c.post("/api/password-reset", json={"email": "a@example.org"}), 403, "sso_only")
    check_error(c.post("/api/password-reset/confirm", json={"token": "t" * 43, "new_password": "another one"}),
                403, "sso_only")
    assert c.get("/auth/oidc/config").json()["sso_only"] is True
    c2, r = dance(sso_only, provider, {"sub": unique("sub")})
    assert r.status_code == 303 and c2.get("/api/me").status_code == 200
