"""The settings page's Webhooks card in Chromium, for moderators only: a URL on a private address is refused at the
field, a webhook is listed with its delivery log and deleted through the confirmation; axe-core finds nothing in
either theme."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from support.databases import db_fetchval, make_moderator

from .conftest import Site, unique
from .test_web_axe import axe_source, violations  # noqa: F401  (the fixture is used by name)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_moderator_manages_webhooks(site: Site, readers: Any, pg_url: str, axe_source: str,  # noqa: F811
                                    scheme: str) -> None:
    """A member's settings have no Webhooks card; a moderator's refuse http://127.0.0.1 at the URL field (the
    server's 422), list a webhook with its log, and delete it after the confirmation."""
    member = readers(color_scheme=scheme)
    member.sign_up(unique("Member "))
    member.page.goto("/settings")
    expect(member.page.get_by_test_id("api-keys")).to_be_visible()
    expect(member.page.get_by_test_id("webhook-form")).to_have_count(0)
    reader = readers(color_scheme=scheme)
    user = reader.sign_up(unique("Hooker "))
    make_moderator(pg_url, user["username"])
    url = f"https://{unique('hooks')}.example.org/parley"
    hook_id = db_fetchval(pg_url, "INSERT INTO webhooks (url, events, secret) VALUES ($1, '{thread.created}',"
                          " 'c2VjcmV0') RETURNING id", url)
    page = reader.page
    page.goto("/settings")
    row = page.get_by_test_id("webhook").filter(has_text=url)
    expect(row).to_have_count(1)
    page.get_by_test_id("webhook-url").fill("http://127.0.0.1:9/hook")
    page.get_by_test_id("webhook-submit").click()
    expect(page.locator("#webhook-url[aria-invalid='true']")).to_have_count(1)
    row.get_by_test_id("webhook-show-log").click()
    expect(row.get_by_test_id("webhook-log")).to_contain_text("Nothing delivered yet.")
    assert violations(page, axe_source) == []
    row.get_by_test_id("webhook-delete").click()
    expect(page.get_by_test_id("confirm-ok")).to_be_visible()
    assert violations(page, axe_source) == []
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("webhook").filter(has_text=url)).to_have_count(0)
    assert db_fetchval(pg_url, "SELECT count(*) FROM webhooks WHERE id = $1", hook_id) == 0
    assert reader.errors == [] and member.errors == []
