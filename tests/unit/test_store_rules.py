"""Store rules on the real schema, each test in a transaction that is rolled back (the `tx` fixture):
uniqueness is a 409 naming the field, names compare in one canonical form, categories nest at most
MAX_DEPTH deep, cursors round-trip and refuse what is not theirs."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import BadRequest, Conflict, Invalid, NotFound
from server.store import categories, users
from server.store.cursor import cursor_decode, cursor_encode
from support.api import unique


async def test_a_username_taken_in_any_case_is_a_conflict_on_username(tx: Any) -> None:
    """A second user whose name differs only in case is a 409 username_taken naming `username`."""
    name = unique("Ada")
    await users.create(tx, name, "Ada", "x")
    with pytest.raises(Conflict) as caught:
        await users.create(tx, name.upper(), "Ada again", "x")
    assert (caught.value.code, caught.value.field) == ("username_taken", "username")


async def test_lookup_is_by_canonical_name_and_never_matches_an_invalid_one(tx: Any) -> None:
    """by_username finds the user in any case; a string that is no valid username finds nobody."""
    name = unique("Brook")
    row = await users.create(tx, name, "Brook", "x")
    assert (await users.by_username(tx, name.swapcase()))["id"] == row["id"]
    assert await users.by_username(tx, name + " ") is None
    assert await users.by_username(tx, "dmİtri") is None


async def test_category_slugs_are_unique_and_parents_must_exist(tx: Any) -> None:
    """A taken slug is 409 slug_taken on `slug`; an unknown parent is 404 on `parent`."""
    slug = unique("cat-")
    await categories.create(tx, slug, "First", None)
    with pytest.raises(Conflict) as caught:
        async with tx.transaction():  # a savepoint: the failed INSERT leaves the outer transaction usable
            await categories.create(tx, slug, "Second", None)
    assert (caught.value.code, caught.value.field) == ("slug_taken", "slug")
    with pytest.raises(NotFound) as missing:
        await categories.create(tx, unique("cat-"), "Orphan", unique("nobody-"))
    assert missing.value.field == "parent"


async def test_categories_nest_at_most_max_depth(tx: Any) -> None:
    """MAX_DEPTH levels are allowed; one more is 422 on `parent`."""
    parent = None
    for _ in range(categories.MAX_DEPTH):
        slug = unique("lvl-")
        await categories.create(tx, slug, "Level", parent)
        parent = slug
    with pytest.raises(Invalid) as caught:
        await categories.create(tx, unique("lvl-"), "Too deep", parent)
    assert caught.value.field == "parent"


async def test_rolled_back_rows_are_gone(pg_url: str) -> None:
    """What a `tx` test wrote is not in the database afterwards (the fixture rolls back)."""
    import asyncpg
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM categories WHERE slug LIKE 'lvl-%'") == 0
    finally:
        await conn.close()


def test_cursors_round_trip_and_refuse_other_shapes() -> None:
    """A cursor decodes to its key; a non-base64 one is 400, a well-formed one of another list is 404."""
    raw = cursor_encode(12, "x", 3.5)
    assert cursor_decode(raw, "before", (int, str, float)) == [12, "x", 3.5]
    with pytest.raises(BadRequest):
        cursor_decode("not a cursor!", "before", (int,))
    for other in (cursor_encode("12"), cursor_encode(12, 13), cursor_encode(True), cursor_encode(2**63)):
        with pytest.raises(NotFound) as caught:
            cursor_decode(other, "before", (int,))
        assert (caught.value.code, caught.value.field) == ("bad_cursor", "before")
