"""Active Now with more people online than a presence frame lists (issue 17): the header stays bounded and
"+N more" opens everyone, read page by page from GET /api/presence, by keyboard. Real Chromium, real
`parley serve`, real signed-in websockets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from .conftest import Site
from .test_web_axe import axe_source, violations  # noqa: F401 - axe_source is a fixture

CROWD = 60  # more than a presence frame lists (50) and more than one dialog page (50)


@pytest.fixture(scope="module")
def crowd(server: Any, forum: dict[str, Any]) -> Iterator[list[str]]:
    """CROWD signed-in users, each with an open websocket, named "Crowd 00"… so they sort by number.

    One crowd for the module: people who leave linger in Active Now for the grace period, so a
    second crowd would be counted with the first.
    """
    site = Site(server, forum["category"], forum["mod"])
    names = [f"Crowd {i:02d}" for i in range(CROWD)]
    ws_url = site.base_url.replace("http", "ws", 1).rstrip("/") + "/ws"
    with ExitStack() as stack:
        for name in names:
            client, _ = site.client(name)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            stack.enter_context(connect(ws_url, additional_headers={"Cookie": cookie,
                                                                    "Origin": site.base_url.rstrip("/")}))
        yield names


def test_plus_n_more_is_bounded_and_pages_the_full_list_by_keyboard(site: Site, readers: Any,
                                                                    crowd: list[str]) -> None:
    """With 60 online the header shows the names that fit on one line (at most 6) and "+N more" for the rest;
    Enter opens 50, "Show more" the other 10, focus on the 51st."""
    page = readers().page
    page.goto("/")
    header = page.locator('[data-testid="active-now"]')
    more = page.locator('[data-testid="active-more"]')
    expect(more).to_have_text(re.compile(r"^\+\d+ more$"))
    shown = header.locator("li[data-user-id]").count()
    assert 1 <= shown <= 6
    expect(more).to_have_text(f"+{CROWD - shown} more")
    expect(page.locator('[data-testid="active-now-guests"]')).to_have_text("and 1 guest")  # this page's own socket

    more.focus()
    page.keyboard.press("Enter")
    dialog = page.locator('[data-testid="active-dialog"]')
    expect(dialog).to_be_visible()
    everyone = dialog.locator('[data-testid="active-everyone"] li')
    expect(everyone).to_have_count(50)
    expect(dialog.locator('[data-testid="active-everyone-status"]')).to_have_text(f"Showing 50 of {CROWD}")
    expect(dialog.locator("h2")).to_have_text(f"Active now: {CROWD} signed in")
    expect(dialog.locator('[data-testid="active-everyone-guests"]')).to_have_text("and 1 guest")

    show_more = dialog.locator('[data-testid="active-everyone-more"]')
    show_more.focus()
    page.keyboard.press("Enter")
    expect(everyone).to_have_count(CROWD)
    expect(show_more).to_be_hidden()
    assert everyone.locator("a").all_inner_texts() == crowd  # by name, each once, none lost between the pages
    focused = page.evaluate("() => document.activeElement && document.activeElement.textContent")
    assert focused == crowd[50]  # the keyboard lands on the first name of the new page

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(header.locator("li[data-user-id]")).to_have_count(shown)



@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_plus_n_more_and_its_dialog_pass_axe(readers: Any, crowd: list[str], axe_source: str,  # noqa: F811
                                             scheme: str) -> None:
    """The header with "+N more" and the open dialog with its "Show more" have no axe violation, in both themes."""
    page = readers(color_scheme=scheme).page
    page.goto("/")
    more = page.locator('[data-testid="active-more"]')
    expect(more).to_have_text(re.compile(r"^\+\d+ more$"))
    assert violations(page, axe_source) == []
    more.click()
    dialog = page.locator('[data-testid="active-dialog"]')
    expect(dialog.locator('[data-testid="active-everyone-more"]')).to_be_visible()
    assert violations(page, axe_source) == []
