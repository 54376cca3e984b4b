"""Reputation as a ledger (CONTRACT rev. 3 "Trust and spam"): the arithmetic, the daily cap, the floor at 1,
undone exactly when a vote, an acceptance or a post goes, and exact under concurrent writers.

The property test drives the store's own write functions with any sequence of votes, unvotes, acceptances and
deletions, and checks after every step that each user's maintained sum equals (a) a recount from scratch by the
database's rule, (b) 1 + their ledger rows and (c) an independent Python model of the contract's rule."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import ApiError
from server.store import categories, posts, reputation, threads, users

CAP = 200


async def _user(conn: Any, prefix: str, moderator: bool = False) -> int:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    return (await users.create(conn, name, name, "x", moderator))["id"]  # type: ignore[no-any-return]


async def _check_sums(conn: Any, ids: list[int]) -> dict[int, int]:
    """Each user's maintained sum = a recount from scratch = 1 + their ledger; returns the sums."""
    sums = {}
    for uid in ids:
        kept = await conn.fetchval("SELECT reputation FROM users WHERE id = $1", uid)
        assert kept == await conn.fetchval(reputation.RECOUNT, uid), uid
        assert kept == 1 + await conn.fetchval(
            "SELECT coalesce(sum(delta), 0) FROM reputation_events WHERE user_id = $1", uid)
        assert kept >= 1
        sums[uid] = kept
    return sums


@dataclass
class Model:
    """The contract's rule, replayed from scratch over the live sources in the order they were made."""

    asker: int
    kinds: dict[int, str]  # post id → kind
    authors: dict[int, int]  # post id → author
    votes: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (post, voter) → (value, stamp)
    accepted: tuple[int, int, int] | None = None  # (post, by, stamp)
    deleted: set[int] = field(default_factory=set)
    thread_gone: bool = False
    clock: int = 0

    def stamp(self) -> int:
        self.clock += 1
        return self.clock

    def live(self, post_id: int) -> bool:
        return not self.thread_gone and post_id not in self.deleted

    def reputation(self, user: int) -> int:
        sources: list[tuple[int, str, int]] = []  # (stamp, kind, amount)
        for (post, _voter), (value, stamp) in self.votes.items():
            if self.authors[post] == user and self.kinds[post] != "comment" and self.live(post):
                amount = -2 if value < 0 else 5 if self.kinds[post] == "question" else 10
                sources.append((stamp, "vote_up" if value > 0 else "vote_down", amount))
        if self.accepted is not None and self.live(self.accepted[0]):
            post, by, stamp = self.accepted
            if self.authors[post] != self.asker:
                if self.authors[post] == user:
                    sources.append((stamp, "accepted", 15))
                if user == self.asker and by == self.asker:
                    sources.append((stamp, "accepter", 2))
        rep, earned = 1, 0  # every stamp of one run falls on the same day
        for _, kind, amount in sorted(sources):
            if kind == "vote_up":
                gain = min(amount, CAP - earned)
                earned += gain
                rep += gain
            else:
                rep = max(1, rep + amount)
        return rep


VOTE = st.tuples(st.just("vote"), st.integers(0, 5), st.integers(0, 7), st.sampled_from([-1, 0, 1, 1, 1]))
ACCEPT = st.tuples(st.just("accept"), st.integers(-1, 5), st.sampled_from([0, 7]), st.just(0))  # asker or moderator
DELETE = st.tuples(st.just("delete"), st.integers(1, 5), st.just(0), st.just(0))
DELETE_THREAD = st.tuples(st.just("delete_thread"), st.just(0), st.just(0), st.just(0))
# Mostly votes; a thread's deletion ends what can happen in it, so it is rare and comes last.
OPS = st.tuples(st.lists(st.one_of(VOTE, VOTE, VOTE, VOTE, VOTE, ACCEPT, DELETE), max_size=60),
                st.lists(DELETE_THREAD, max_size=1)).map(lambda parts: parts[0] + parts[1])


async def _run(pg_url: str, ops: list[tuple[Any, ...]]) -> None:
    conn = await asyncpg.connect(pg_url)
    tx = conn.transaction()
    await tx.start()
    try:
        asker = await _user(conn, "ask")
        b, c = await _user(conn, "rb"), await _user(conn, "rc")
        voters = [await _user(conn, f"v{i}") for i in range(4)]
        mod = await _user(conn, "mod", moderator=True)
        people = [asker, b, c, *voters, mod]  # index 0 the asker, index 7 the moderator
        cat = await categories.create(conn, "rep-" + uuid.uuid4().hex[:10], "Rep", None)
        made = await threads.create(conn, asker, cat["slug"], "A title", "A body", "<p>A body</p>")
        tid = made.value["thread"]["id"]
        post_ids = [made.value["question"]["id"]]
        for author in (b, b, c, asker):
            post_ids.append((await posts.create(conn, tid, author, "r", None, "<p>r</p>")).value[0]["id"])
        comment = await posts.create(conn, tid, c, "c", post_ids[1], "<p>c</p>")
        post_ids.append(comment.value[0]["id"])
        rows = await conn.fetch("SELECT id, kind, author_id FROM posts WHERE thread_id = $1", tid)
        model = Model(asker, {r["id"]: r["kind"] for r in rows}, {r["id"]: r["author_id"] for r in rows})
        users_by_id = {u: await conn.fetchrow("SELECT * FROM users WHERE id = $1", u) for u in people}
        for op, a, b_, value in ops:
            try:
                async with conn.transaction():
                    if op == "vote":
                        post, voter = post_ids[a], people[b_]
                        await posts.vote(conn, post, voter, value)
                        old = model.votes.get((post, voter), (0, 0))[0]
                        if value == 0:
                            model.votes.pop((post, voter), None)
                        elif value != old:
                            model.votes[(post, voter)] = (value, model.stamp())
                    elif op == "accept":
                        post = post_ids[a] if a >= 0 else None
                        by = people[b_]
                        await threads.set_accepted(conn, tid, users_by_id[by], post)
                        current = model.accepted[0] if model.accepted is not None else None
                        if post != current:
                            model.accepted = None if post is None else (post, by, model.stamp())
                    elif op == "delete":
                        post = post_ids[a]
                        await posts.delete(conn, post, users_by_id[mod])
                        if model.accepted is not None and model.accepted[0] == post:
                            await threads.withdraw_deleted(conn, post)
                        model.deleted.add(post)
                    else:
                        await posts.delete(conn, post_ids[0], users_by_id[mod])
                        model.thread_gone = True
            except ApiError:
                continue
            sums = await _check_sums(conn, people)
            for uid in people:
                assert sums[uid] == model.reputation(uid), (uid, ops)
    finally:
        await tx.rollback()
        await conn.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_sequence_leaves_every_sum_equal_to_a_recount(pg_url: str, ops: list[tuple[Any, ...]]) -> None:
    """Votes, unvotes, changed votes, acceptances (by the asker or a moderator), withdrawals and deletions in any
    order: every user's reputation equals a recount from scratch, 1 + their ledger, and the contract's rule."""
    asyncio.run(_run(pg_url, ops))


async def test_the_arithmetic_cap_and_floor(tx: Any) -> None:
    """+10 a response, +5 a question, -2 down, +15 accepted, +2 the accepter; votes earn at most 200 a day; a loss
    at 1 changes nothing and is not recorded; an unvote past the cap changes nothing."""
    asker, answerer = await _user(tx, "ask"), await _user(tx, "ans")
    voters = [await _user(tx, f"v{i}") for i in range(23)]
    cat = await categories.create(tx, "rep-" + uuid.uuid4().hex[:10], "Rep", None)
    made = await threads.create(tx, asker, cat["slug"], "T", "B", "<p>B</p>")
    tid, question = made.value["thread"]["id"], made.value["question"]["id"]
    answer = (await posts.create(tx, tid, answerer, "r", None, "<p>r</p>")).value[0]["id"]

    async def rep(uid: int) -> int:
        return await tx.fetchval("SELECT reputation FROM users WHERE id = $1", uid)  # type: ignore[no-any-return]

    await posts.vote(tx, answer, voters[0], -1)
    assert await rep(answerer) == 1  # nothing to lose
    assert await tx.fetchval("SELECT count(*) FROM reputation_events WHERE user_id = $1", answerer) == 0
    await posts.vote(tx, question, voters[0], 1)
    assert await rep(asker) == 6
    await posts.vote(tx, question, voters[1], -1)
    assert await rep(asker) == 4
    asker_row = await tx.fetchrow("SELECT * FROM users WHERE id = $1", asker)
    await threads.set_accepted(tx, tid, asker_row, answer)
    assert (await rep(answerer), await rep(asker)) == (16, 6)
    for v in voters[1:22]:  # 21 up votes: 210 nominal, 200 earned
        await posts.vote(tx, answer, v, 1)
    assert await rep(answerer) == 16 + 200
    await posts.vote(tx, answer, voters[22], 1)  # past the cap: no change, no row
    await posts.vote(tx, answer, voters[22], 0)
    assert await rep(answerer) == 216
    await posts.vote(tx, answer, voters[0], 0)  # the early down vote goes: it had taken nothing (clipped at 1)
    assert await rep(answerer) == 216
    ledger = await reputation.ledger(tx, answerer, 100, None)
    assert [e["reason"] for e in ledger["events"]][-2:] == ["vote_up", "accepted"]
    assert sum(e["delta"] for e in ledger["events"]) == await rep(answerer) - 1
    await threads.set_accepted(tx, tid, asker_row, None)
    assert (await rep(answerer), await rep(asker)) == (201, 4)
    reasons = [e["reason"] for e in (await reputation.ledger(tx, asker, 10, None))["events"]]
    assert reasons[0] == "accepter_undone"


async def test_the_daily_cap_is_per_utc_day(tx: Any) -> None:
    """The rule's aggregate: up votes on two days each earn up to 200; a down vote at 1 stays at 1."""
    rows = [("vote_up", 10, f"2026-01-01T{h:02d}:00:00Z") for h in range(21)] + \
           [("vote_up", 10, f"2026-01-02T{h:02d}:00:00Z") for h in range(3)] + [("vote_down", -2, "2026-01-03T00:00Z")]
    got = await tx.fetchval(
        "SELECT (parley_reputation(k, a, t::timestamptz ORDER BY t))[1] FROM unnest($1::text[], $2::int[], $3::text[])"
        " AS x(k, a, t)", [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    assert got == 1 + 200 + 30 - 2
    assert await tx.fetchval("SELECT (parley_reputation(k, a, now() ORDER BY k))[1] FROM unnest($1::text[],"
                             " $2::int[]) AS x(k, a)", ["vote_down", "vote_up"], [-2, 10]) == 1 + 10


async def test_concurrent_votes_and_unvotes_keep_the_ledger_exact(pg_url: str) -> None:
    """Many voters voting and unvoting at once on one author's posts in several threads: the sum is the recount."""
    pool = await asyncpg.create_pool(pg_url, min_size=4, max_size=8)
    try:
        async with pool.acquire() as conn:
            author, asker = await _user(conn, "cc"), await _user(conn, "cq")
            voters = [await _user(conn, f"cv{i}") for i in range(12)]
            cat = await categories.create(conn, "rep-" + uuid.uuid4().hex[:10], "Rep", None)
            answers = []
            for i in range(3):
                async with conn.transaction():
                    made = await threads.create(conn, asker, cat["slug"], f"T{i}", "B", "<p>B</p>")
                tid = made.value["thread"]["id"]
                answers.append((await posts.create(conn, tid, author, "r", None, "<p>r</p>")).value[0]["id"])

        async def vote(post: int, voter: int, value: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await posts.vote(conn, post, voter, value)

        plan = [(answers[i % 3], voters[i], 1 if i % 4 else -1) for i in range(12)]
        await asyncio.gather(*(vote(*p) for p in plan))
        await asyncio.gather(*(vote(p, v, 0 if i % 3 == 0 else -value) for i, (p, v, value) in enumerate(plan)))
        async with pool.acquire() as conn:
            await _check_sums(conn, [author, asker])
    finally:
        await pool.close()
