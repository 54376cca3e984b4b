"""Bytes the database keeps per edit of a long post (issue 25, finding 12).

    python -m bench.revision_bytes [--edits 200] [--chars 20000]

Starts a throw-away database and a `parley serve`, posts one response of `--chars` characters of
word-like text (it compresses about as well as prose), edits it `--edits` times with a different
body of the same length each time, then runs VACUUM FULL (so the dead versions of the `posts`
row do not count) and prints, for `posts`, `post_revisions` and `thread_events`, the growth of
pg_total_relation_size (table + TOAST + indexes) over the edits divided by their number, and the
bytes of text the stored events hold. The edits' answers and their `post.edited` events over HTTP are
checked to carry the full body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from typing import Any

from bench import common

TABLES = ("posts", "post_revisions", "thread_events")
# A vocabulary of 4,000 made-up words of 2-10 letters: text that pglz compresses by roughly a quarter, about
# as prose does (a small vocabulary would compress far better than any real post).
_rng = random.Random(4000)
WORDS = ["".join(_rng.choice("etaoinshrdlucmfwypvbgkjqxz"[:_rng.randint(8, 26)]) for _ in range(_rng.randint(2, 10)))
         for _ in range(4000)]


def body(rng: random.Random, chars: int) -> str:
    """About `chars` characters of words, a paragraph break every ~60 words, a little Markdown."""
    out: list[str] = []
    size = 0
    while size < chars:
        w = rng.choice(WORDS)
        w = f"**{w}**" if rng.random() < 0.03 else w
        sep = "\n\n" if rng.random() < 0.016 else " "
        out.append(w + sep)
        size += len(w) + len(sep)
    return "".join(out)[:chars].strip()


async def sizes(db_url: str) -> dict[str, int]:
    rows = await common.db_fetch(
        db_url, "SELECT c, pg_total_relation_size(c::regclass) AS n FROM unnest($1::text[]) c", list(TABLES))
    return {r["c"]: r["n"] for r in rows}


async def vacuum(db_url: str) -> None:
    """VACUUM FULL: the tables then hold only live rows, so the growth is what an edit keeps for good (the
    dead versions of the posts row are autovacuum's to reuse)."""
    import asyncpg
    conn = await asyncpg.connect(db_url)
    try:
        for t in TABLES:
            await conn.execute(f"VACUUM FULL {t}")  # names from TABLES, not input
    finally:
        await conn.close()


async def run(edits: int, chars: int) -> dict[str, Any]:
    db = common.create_db()
    env = common.Env(db)
    try:
        proc = env.add(common.parley_proc(db, PARLEY_RENDER_BUDGET_SECONDS="10"))
        forum = await common.setup_forum(proc.port, db)
        http = common.Http(proc.port, forum["cookie"])
        tid = forum["threads"][0]
        rng = random.Random(25)
        st, raw, _ = await http.request("POST", f"/api/threads/{tid}/posts", {"body": body(rng, chars)})
        assert st == 201, raw[:200]
        post = json.loads(raw)["post"]
        html_bytes = len(post["html"].encode())
        await vacuum(db)
        before = await sizes(db)
        last = ""
        for _ in range(edits):
            last = body(rng, chars)
            st, raw, _ = await http.request("PATCH", f"/api/posts/{post['id']}", {"body": last})
            assert st == 200, raw[:200]
        await vacuum(db)
        after = await sizes(db)
        st, raw, _ = await http.request("GET", f"/api/threads/{tid}/events?since={edits}")  # the last edit's
        events = json.loads(raw)["events"]
        edited = [e for e in events if e["name"] == "post.edited"]
        assert edited and edited[-1]["data"]["body"] == last and edited[-1]["data"]["html"], "events lost the text"
        stored = await common.db_fetch(
            db, "SELECT sum(octet_length(data::text)) AS n, count(*) AS c FROM thread_events"
                " WHERE name = 'post.edited'")
        http.close()
        per_edit = {t: (after[t] - before[t]) / edits for t in TABLES}
        return {"edits": edits, "chars": chars, "html_bytes": html_bytes, "per_edit": per_edit,
                "total_per_edit": sum(per_edit.values()),
                "event_json_per_edit": stored[0]["n"] / stored[0]["c"]}
    finally:
        env.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--edits", type=int, default=200)
    p.add_argument("--chars", type=int, default=20000)
    a = p.parse_args()
    common.ensure_services()
    r = asyncio.run(run(a.edits, a.chars))
    print(f"{r['edits']} edits of a {r['chars']}-character body (its HTML {r['html_bytes']:,} bytes):")
    for t, n in r["per_edit"].items():
        print(f"  {t:15} {n / 1024:8.1f} KiB per edit")
    print(f"  {'total':15} {r['total_per_edit'] / 1024:8.1f} KiB per edit")
    print(f"  stored post.edited event JSON: {r['event_json_per_edit']:,.0f} bytes each")
    common.write_result("revision_bytes", r)


if __name__ == "__main__":
    main()
