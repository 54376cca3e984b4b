"""The settings page's "Delete your account" card in Chromium: a wrong password is said at the field, the
confirmation dialog passes axe-core in both themes, and confirming deletes the account and leaves a guest's page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, Site, unique
from .test_web_axe import axe_source, violations  # noqa: F401  (the fixture is used by name)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_delete_the_account_from_settings(site: Site, readers: Any, axe_source: str, scheme: str) -> None:  # noqa: F811
    """Wrong password → the field's error; the right one and the confirmation → the account is gone (its profile
    404) and the page is a guest's; the card and its dialog have no axe violation."""
    reader = readers(color_scheme=scheme)
    user = reader.sign_up(unique("Leaver "))
    page = reader.page
    page.goto("/settings")
    card = page.get_by_test_id("delete-form")
    expect(card).to_be_visible()
    page.get_by_test_id("delete-password").fill("not my password at all")
    page.get_by_test_id("delete-submit").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.locator("#delete-password[aria-invalid='true']")).to_have_count(1)
    assert violations(page, axe_source) == []
    page.get_by_test_id("delete-password").fill(PASSWORD)
    page.get_by_test_id("delete-erase").check()
    page.get_by_test_id("delete-submit").click()
    expect(page.get_by_test_id("confirm-ok")).to_be_visible()
    assert violations(page, axe_source) == []
    page.get_by_test_id("confirm-ok").click()
    page.wait_for_url(f"{site.base_url}/")
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    assert httpx.get(f"{site.base_url}/api/users/{user['username']}", timeout=20).status_code == 404
    assert reader.errors == []
