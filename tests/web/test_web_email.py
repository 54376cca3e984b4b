"""The e-mail pages in Chromium against a real SMTP server (aiosmtpd): sign up with an address and confirm it
from the mail, "Forgot password?" to a new password from the reset mail, the settings' address and
preferences, and the unsubscribe page whose button does what a GET never does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support.api import Api
from support.databases import create_database, drop_database
from support.processes import ServerProcess
from support.smtp import SmtpServer, link

from .conftest import PASSWORD, unique


@pytest.fixture(scope="module")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of this module's own, not the worker's shared one: another module's unsent mail and due
    notifications would otherwise reach this module's SMTP server first (its own mail then queued behind them)."""
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(pg_url: str, redis_url: str, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerProcess]:
    """This module's server sends its mail to `smtp` (overrides tests/conftest.py's `server`)."""
    proc = ServerProcess({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "6", "PARLEY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
                          "PARLEY_SECRET": "test-secret-0123456789abcdef", "PARLEY_SMTP_URL": smtp.url,
                          "PARLEY_MAIL_FROM": "Parley <forum@parley.example>", "PARLEY_MAIL_DELAY_SECONDS": "1"})
    proc.start()
    yield proc
    proc.stop()


def path_of(url: str) -> str:
    """The path and query of a mail's link (the browser context has the server as its base URL)."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_sign_up_confirm_forget_and_reset_in_the_page(readers: Any, smtp: SmtpServer, artifacts: Path) -> None:
    """Sign up with an address; the mail's link confirms it (a button); sign out; "Forgot password?" mails a
    reset link; the reset page sets a new password and signs in; the old password no longer works."""
    reader = readers()
    page = reader.page
    name = unique("mail")
    address = f"{name}@mail.example.org"
    page.goto("/signup")
    page.get_by_label("Username").fill(name)
    page.get_by_label("E-mail address").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page).to_have_url(reader.site.base_url + "/")
    verify = link(smtp.wait_for(address)[0], "/verify-email")
    page.goto(path_of(verify))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your e-mail address")
    page.get_by_test_id("verify-submit").click()
    expect(page.get_by_text(f"{address} is confirmed")).to_be_visible()
    page.goto("/settings")
    expect(page.get_by_test_id("settings-email-status")).to_have_text("confirmed")
    page.get_by_test_id("settings-sign-out").click()
    page.goto("/signin")
    page.get_by_test_id("auth-forgot").click()
    expect(page).to_have_url(reader.site.base_url + "/forgot-password")
    page.get_by_label("E-mail address").fill(address.upper())
    page.get_by_test_id("reset-request").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("a link is on its way")
    reset = link(smtp.wait_for(address, 2)[-1], "/reset-password")
    page.goto(path_of(reset))
    page.get_by_label("New password", exact=True).fill("a brand new password")
    page.get_by_label("New password, again").fill("a brand new password")
    page.screenshot(path=str(artifacts / "email-reset.png"))
    page.get_by_test_id("reset-submit").click()
    expect(page).to_have_url(reader.site.base_url + "/")
    expect(page.get_by_test_id("whoami")).to_be_visible()
    old = Api(reader.site.base_url).post("/api/session", json={"username": name, "password": PASSWORD})
    assert old.status_code == 401
    assert reader.errors == []


def test_settings_preferences_and_the_unsubscribe_page(readers: Any, smtp: SmtpServer, site: Any) -> None:
    """The settings page sets the address (a confirmation mail goes out) and the mail preferences; the
    unsubscribe page changes nothing until its button is pressed, then notification mail is `never`."""
    reader = readers()
    page = reader.page
    reader.sign_up(unique("Prefs "))
    address = f"{reader.user['username']}@mail.example.org"
    page.goto("/settings")
    page.get_by_test_id("email-address").fill(address)
    page.get_by_test_id("email-password").fill(PASSWORD)
    page.get_by_test_id("email-submit").click()
    expect(page.get_by_test_id("settings-email-status")).to_have_text("not confirmed")
    smtp.wait_for(address)
    expect(page.get_by_test_id("prefs-digest-weekly")).to_be_checked()
    page.get_by_test_id("prefs-digest-daily").check()
    expect(page.get_by_test_id("prefs-form").get_by_test_id("form-error")).to_have_text("Saved.")
    page.get_by_test_id("prefs-email_notifications-always").check()
    expect(page.get_by_test_id("prefs-email_notifications-always")).to_be_checked()
    # The radio is checked at once, its save answers later (the form already says "Saved." from the digest's):
    # read the server's preferences until the save has landed, a bounded wait (CI once read them before it).
    want = {"email_notifications": "always", "digest": "daily"}
    deadline = time.monotonic() + 15
    while (me := reader.context.request.get("/api/me/preferences").json()["preferences"]) != want \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert me == want
    # A notification mail, and its unsubscribe link opened in the page.
    verify = link(smtp.wait_for(address)[0], "/verify-email")
    assert Api(site.base_url).post("/api/email/verify", json={"token": verify.split("token=")[1]}).status_code == 200
    r = reader.context.request.post("/api/threads", data={"category": site.category(), "title": "Mail me",
                                                          "body": "Well?"})
    assert r.status == 201, r.text()
    tid = r.json()["thread"]["id"]
    other, _ = site.client()
    site.reply(other, tid, "An answer")
    mail = smtp.wait_for(address, 2)[-1]
    unsubscribe = str(mail["List-Unsubscribe"]).strip("<>")
    page.goto(path_of(unsubscribe))
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    assert reader.context.request.get("/api/me/preferences").json()["preferences"]["email_notifications"] == "always"
    page.get_by_test_id("unsubscribe-submit").click()
    expect(page.get_by_text("you will get no more of these mails")).to_be_visible()
    assert reader.context.request.get("/api/me/preferences").json()["preferences"]["email_notifications"] == "never"
    assert reader.errors == []
