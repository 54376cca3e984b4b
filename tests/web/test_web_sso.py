"""The "Sign in with …" button in Chromium, against a real server process set up for single sign-on with the
loopback OpenID Connect provider of the tests: the whole redirect dance in the browser lands back signed in, on
the page asked for; with PARLEY_SSO_ONLY the password form is gone. axe-core finds nothing on the sign-in page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from support.processes import ServerProcess

from .conftest import Reader, Site, unique
from .test_web_axe import axe_source, violations  # noqa: F401  (the fixture is used by name)


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider().start()
    yield running
    running.stop()


def _server(pg_url: str, redis_url: str, tmp: Path, provider: Provider, **more: str) -> ServerProcess:
    proc = ServerProcess({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1", "PARLEY_DATA_DIR": str(tmp),
                          "PARLEY_SECRET": "test-secret-0123456789abcdef", "PARLEY_WEBHOOK_WORKERS": "0",
                          "PARLEY_OIDC_ISSUER": provider.issuer, "PARLEY_OIDC_CLIENT_ID": CLIENT_ID,
                          "PARLEY_OIDC_CLIENT_SECRET": CLIENT_SECRET, **more})
    proc.start()
    return proc


@pytest.mark.parametrize("sso_only", [False, True], ids=["with-passwords", "sso-only"])
def test_sign_in_with_the_provider(browser: Any, pg_url: str, redis_url: str, tmp_path: Path, provider: Provider,
                                   forum: dict[str, Any], axe_source: str, sso_only: bool) -> None:  # noqa: F811
    """/signin?next=/settings shows "Sign in with 127.0.0.1"; clicking it goes to the provider and back, signed in
    as the account made from preferred_username, on /settings. With SSO only, the password form is hidden. The
    account deletes itself from the settings page with an empty password (it never had one)."""
    proc = _server(pg_url, redis_url, tmp_path, provider, PARLEY_SSO_ONLY="on" if sso_only else "off")
    try:
        name = unique("sso")
        provider.person = {"sub": unique("sub"), "preferred_username": name, "name": "Single Signer"}
        reader = Reader(browser, Site(proc, forum["category"], forum["mod"]))
        page = reader.page
        page.goto("/signin?next=/settings")
        button = page.get_by_test_id("auth-sso")
        expect(button).to_have_text("Sign in with 127.0.0.1")
        expect(page.get_by_test_id("auth-password")).to_be_visible(visible=not sso_only)
        assert violations(page, axe_source) == []
        button.click()
        page.wait_for_url(f"{proc.url}/settings")
        expect(page.get_by_test_id("settings-username")).to_have_text(name)
        # An account the provider made has no password: the delete card says so and takes an empty one.
        expect(page.locator("#delete-password-hint")).to_have_text(
            "Signed up with 127.0.0.1 and never set a password? Leave it empty.")
        page.get_by_test_id("delete-submit").click()
        page.get_by_test_id("confirm-ok").click()
        page.wait_for_url(f"{proc.url}/")
        assert reader.page.request.get(f"{proc.url}/api/users/{name}").status == 404
        assert reader.errors == []
        reader.close()
    finally:
        proc.stop()
