"""The answer shapes are declared once (server/shapes.py) and the builders make exactly them: every key a
Struct declares, no other, with values its types accept; and the OpenAPI document's schemas are the Structs'."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
import pytest

from server import openapi, shapes
from server.store import categories, posts, threads, users


def exact(value: dict[str, Any], shape: type[msgspec.Struct]) -> None:
    """`value` has exactly the keys of `shape` (defaults may be left out) and converts to it."""
    names = shape.__struct_fields__
    fields, required = set(names), set(names[:len(names) - len(shape.__struct_defaults__)])
    assert set(value) <= fields, f"{shape.__name__}: keys not declared: {set(value) - fields}"
    assert required <= set(value), f"{shape.__name__}: keys missing: {required - set(value)}"
    msgspec.convert(value, shape)


@pytest.fixture()
async def pool(pg_url: str) -> Any:
    p = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    yield p
    await p.close()


async def test_builders_make_exactly_the_declared_shapes(pool: asyncpg.Pool):
    """users.brief/full, post_dict, thread_dict and the thread page convert to their Structs, key for key."""
    name = "sh_" + uuid.uuid4().hex[:8]
    async with pool.acquire() as conn, conn.transaction():
        user = await users.create(conn, name, "Shape Tester", "x")
        cat = await categories.create(conn, "c-" + name.replace("_", "-"), "Shapes", None)
        made = await threads.create(conn, user["id"], cat["slug"], "A title", "A body", "<p>A body</p>")
    exact(users.full(user), shapes.User)
    exact(users.brief(user), shapes.UserBrief)
    exact(made.value["thread"], shapes.Thread)
    exact(made.value["question"], shapes.Post)
    exact(cat, shapes.Category)
    tid = made.value["thread"]["id"]
    async with pool.acquire() as conn:
        written = await posts.create(conn, tid, user["id"], "A reply", None, "<p>A reply</p>")
    exact(written.value[0], shapes.Post)
    page = await threads.page(pool, tid, user["id"], 10, None, "oldest")
    msgspec.convert(page, shapes.ThreadPage)
    exact(page["responses"][0], shapes.Response)
    exact(page["thread"], shapes.Thread)


def test_document_schemas_are_the_structs():
    """Every answer shape in the OpenAPI document is generated from its Struct, not written by hand."""
    _, generated = msgspec.json.schema_components(shapes.ANSWERS, ref_template="#/components/schemas/{name}")
    schemas = openapi.document()["components"]["schemas"]
    for name, schema in generated.items():
        assert schemas[name] == schema, name
