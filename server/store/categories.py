"""Categories: a tree (Discussion » Questions » Current Events and News)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Conflict, Invalid, NotFound
from ..wire import encode

MAX_DEPTH = 6  # levels, the root included: Discussion » Questions » Current Events and News is 3


class Tree:
    """All categories, loaded in one query (the table is small), with paths and children."""

    def __init__(self, rows: list[asyncpg.Record]) -> None:
        self.by_id = {r["id"]: r for r in rows}
        self.by_slug = {r["slug"]: r for r in rows}
        self.children: dict[int | None, list[asyncpg.Record]] = {}
        for r in sorted(rows, key=lambda r: (r["position"], r["name"].lower(), r["id"])):
            self.children.setdefault(r["parent_id"], []).append(r)

    def path(self, cat_id: int) -> list[dict[str, str]]:
        path = []
        node = self.by_id.get(cat_id)
        while node is not None:
            path.append({"slug": node["slug"], "name": node["name"]})
            node = self.by_id.get(node["parent_id"]) if node["parent_id"] is not None else None
        return path[::-1]

    def brief(self, cat_id: int) -> dict[str, Any]:
        """The {slug, name, path} a Thread carries."""
        row = self.by_id[cat_id]
        return {"slug": row["slug"], "name": row["name"], "path": self.path(cat_id)}

    def _node(self, cat_id: int, path: list[dict[str, str]]) -> dict[str, Any]:
        row = self.by_id[cat_id]
        parent = self.by_id.get(row["parent_id"]) if row["parent_id"] is not None else None
        return {"id": row["id"], "slug": row["slug"], "name": row["name"],
                "parent": parent["slug"] if parent else None, "path": path, "children": []}

    def category(self, cat_id: int) -> dict[str, Any]:
        """The Category with its children nested, built iteratively: no chain is too deep for it
        (a database made before the depth cap may hold one)."""
        top = self._node(cat_id, self.path(cat_id))
        todo = [top]
        while todo:
            node = todo.pop()
            for c in self.children.get(node["id"], []):
                child = self._node(c["id"], [*node["path"], {"slug": c["slug"], "name": c["name"]}])
                node["children"].append(child)
                todo.append(child)
        return top

    def roots_json(self) -> bytes:
        """The top-level categories with their subtrees as JSON, built bottom-up without recursion: a JSON
        encoder recurses once per level, and a chain made before the depth cap may be hundreds deep."""
        done: dict[int, bytes] = {}
        paths: dict[int, list[dict[str, str]]] = {}
        order: list[int] = []
        todo = [r["id"] for r in self.children.get(None, [])]
        for rid in todo:
            paths[rid] = self.path(rid)
        while todo:  # pre-order; then each node is encoded after all of its children
            cid = todo.pop()
            order.append(cid)
            for c in self.children.get(cid, []):
                paths[c["id"]] = [*paths[cid], {"slug": c["slug"], "name": c["name"]}]
                todo.append(c["id"])
        for cid in reversed(order):
            node = self._node(cid, paths.pop(cid))
            head = encode({k: v for k, v in node.items() if k != "children"})[:-1]
            kids = b",".join(done.pop(c["id"]) for c in self.children.get(cid, []))
            done[cid] = head + b',"children":[' + kids + b"]}"
        return b"[" + b",".join(done.pop(r["id"]) for r in self.children.get(None, [])) + b"]"

    def descendants(self, cat_id: int) -> list[int]:
        out, todo = [], [cat_id]
        while todo:
            cid = todo.pop()
            out.append(cid)
            todo.extend(c["id"] for c in self.children.get(cid, []))
        return out


async def tree(conn: asyncpg.Connection | asyncpg.Pool) -> Tree:
    return Tree(await conn.fetch("SELECT id, slug, name, parent_id, position FROM categories"))


async def create(conn: asyncpg.Connection, slug: str, name: str, parent: str | None) -> dict[str, Any]:
    parent_id = None
    if parent is not None:
        parent_id = await conn.fetchval("SELECT id FROM categories WHERE slug = $1", parent)
        if parent_id is None:
            raise NotFound(f"No category {parent!r}", field="parent")
        if len((await tree(conn)).path(parent_id)) >= MAX_DEPTH:
            raise Invalid(f"Categories nest at most {MAX_DEPTH} levels deep", field="parent")
    try:
        row = await conn.fetchrow(
            "INSERT INTO categories (slug, name, parent_id, position)"
            " VALUES ($1, $2, $3, (SELECT count(*) FROM categories WHERE parent_id IS NOT DISTINCT FROM $3))"
            " RETURNING id", slug, name, parent_id)
    except asyncpg.UniqueViolationError:
        raise Conflict("That slug is taken", code="slug_taken", field="slug") from None
    return (await tree(conn)).category(row["id"])


async def id_of(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> int | None:
    """The category's id, None if there is none by that slug (one indexed read, no tree)."""
    return await conn.fetchval("SELECT id FROM categories WHERE slug = $1", slug)  # type: ignore[no-any-return]


async def by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> tuple[Tree, int]:
    t = await tree(conn)
    row = t.by_slug.get(slug)
    if row is None:
        raise NotFound(f"No category {slug!r}")
    return t, row["id"]
