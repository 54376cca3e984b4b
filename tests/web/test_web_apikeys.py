"""The settings page's API keys in Chromium: make a read key (its token shown once), use it over HTTP, delete it
through the confirmation, and it stops working at once."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from .conftest import Site, unique


def test_make_use_and_delete_a_key(site: Site, readers: Any) -> None:
    """A read key made on /settings authenticates GET /api/me, is refused a write, and is 401 once deleted."""
    reader = readers()
    user = reader.sign_up(unique("Keeper "))
    page = reader.page
    page.goto("/settings")
    expect(page.get_by_test_id("api-keys")).to_contain_text("No API keys yet.")
    page.get_by_label("Name").fill("nightly report")
    page.get_by_test_id("api-key-submit").click()
    token_box = page.get_by_test_id("api-key-token")
    expect(token_box).to_be_visible()
    token = token_box.input_value()
    expect(page.get_by_test_id("api-key")).to_have_count(1)
    expect(page.get_by_test_id("api-key")).to_contain_text("nightly report")
    expect(page.get_by_test_id("api-key")).to_contain_text("read only")
    auth = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{site.base_url}/api/me", headers=auth, timeout=20)
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]
    assert httpx.put(f"{site.base_url}/api/me/preferences", json={"digest": "off"}, headers=auth,
                     timeout=20).status_code == 403
    page.get_by_test_id("api-key-delete").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("api-keys")).to_contain_text("No API keys yet.")
    assert httpx.get(f"{site.base_url}/api/me", headers=auth, timeout=20).status_code == 401
    assert reader.errors == []
