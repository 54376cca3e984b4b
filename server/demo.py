"""The demo forum `parley demo` (and the first `parley serve` on the embedded database) loads.

All text here is our own. Demo users share the password "parley-demo".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from .auth import hash_password
from .render import render
from .store import backdate, categories, posts, threads, users

PASSWORD = "parley-demo"

CATEGORIES = [
    ("discussion", "Discussion", None),
    ("questions", "Questions", "discussion"),
    ("current-events", "Current Events and News", "questions"),
    ("science", "Science and Nature", "questions"),
    ("cooking", "Food and Cooking", "questions"),
    ("meta", "About This Forum", "discussion"),
    ("help", "Help", None),
    ("using-parley", "Using Parley", "help"),
]

USERS = [
    ("ada", "Ada Lindqvist", False),
    ("brook", "Brook Okafor", False),
    ("chen", "Chen Wei", False),
    ("dmitri", "Dmitri Sokolov", False),
    ("esme", "Esme Hartley", True),
]

# When each thread began (days ago) and the time between its posts: the demo reads like weeks of life, not
# "1 minute ago" everywhere (server/store/backdate.py).
SPREAD = [(9, timedelta(hours=5)), (5, timedelta(hours=3)), (2, timedelta(hours=2)), (0.3, timedelta(minutes=40))]

# (category, author, title, question, [(author, response, [(author, comment)…])…])
THREADS = [
    ("current-events", "ada", "How do local newsrooms verify photos sent in by readers?",
     "Our town paper ran a reader photo of the flooded bridge last week and someone claimed it was from 2019. "
     "How do small newsrooms check pictures like that before publishing?",
     [("brook", "Most start with a reverse image search, then look at the file's metadata if the sender kept the "
                "original. The metadata can be edited, so it is only one clue.",
       [("chen", "Shadows help too: the sun's angle gives a rough time of day."),
        ("ada", "I had not thought about shadows. Thanks!")]),
      ("dmitri", "Call the person who sent it. A two-minute conversation about where they stood and what they saw "
                 "catches more fakes than any tool.",
       [("brook", "Agreed, and ask for the photos taken just before and after.")]),
      ("chen", "Compare landmarks with recent street-level imagery: new signs, missing trees, a repainted "
               "railing. Details like that date a picture surprisingly well.", [])]),
    ("science", "chen", "Why does bread go stale faster in the fridge?",
     "I always assumed cold would keep bread fresh longer, but the loaf in my fridge turns hard in two days. "
     "What is going on?",
     [("esme", "Staling is mostly starch **retrogradation**: the starch molecules recrystallise and squeeze out "
               "water. That happens fastest a little above freezing, so the fridge is close to the worst spot.",
       [("ada", "So the freezer is fine because it is cold enough to stop it?"),
        ("esme", "Yes, below freezing the molecules barely move.")]),
      ("brook", "Toasting reverses some of it, which is why stale bread still makes good toast.", [])]),
    ("cooking", "dmitri", "Cast iron: is soap really forbidden?",
     "My grandmother never let soap near her pan. Is that still good advice with modern dish soap?",
     [("ada", "Modern dish soap does not contain lye, so a little soap will not strip a well-polymerised "
              "seasoning. Soaking overnight is the real enemy.", []),
      ("chen", "Dry it on the stove right after washing and wipe on a thin film of oil. That matters more than "
               "the soap question.", [("dmitri", "That is what I have been skipping.")])]),
    ("using-parley", "esme", "Welcome! How replies, votes and edits work here",
     "Everything on a thread page updates live: new responses, comments, votes and edits appear for everyone "
     "watching without a reload. The **Active Now** list in the header shows who is online.",
     [("brook", "Does it also show when someone is writing a reply?",
       [("esme", "Yes: you will see \"NAME is replying…\" under the thread while they type.")])]),
]


async def load_demo(conn: asyncpg.Connection) -> str:
    """Load the demo forum into an empty database; say so and change nothing otherwise."""
    if await users.count(conn) > 0:
        return "the database already has users; the demo forum was not loaded"
    password_hash = await hash_password(PASSWORD)
    async with conn.transaction():
        for slug, name, parent in CATEGORIES:
            await categories.create(conn, slug, name, parent)
        people = {}
        for username, display, moderator in USERS:
            people[username] = await users.create(conn, username, display, password_hash, moderator)
        first_response = None
        thread_ids = []
        for cat, author, title, question, responses in THREADS:
            written = await threads.create(conn, people[author]["id"], cat, title, question, render(question))
            thread_id = written.value["thread"]["id"]
            thread_ids.append(thread_id)
            for r_author, text, comments in responses:
                post, _ = (await posts.create(conn, thread_id, people[r_author]["id"], text, None, render(text))).value
                first_response = first_response or post
                for c_author, c_text in comments:
                    await posts.create(conn, thread_id, people[c_author]["id"], c_text, post["id"], render(c_text))
                for voter in people.values():
                    if voter["id"] != people[r_author]["id"] and (voter["id"] + post["id"]) % 3 != 0:
                        await posts.vote(conn, post["id"], voter["id"], 1 if (voter["id"] + post["id"]) % 5 else -1)
        assert first_response is not None
        edited = (first_response["body"] + "\n\nEdit: a colleague reminded me that some phones strip "
                  "metadata when sending, so its absence proves nothing.")
        await posts.edit(conn, first_response["id"], people[first_response["author"]["username"]], edited, None,
                         render(edited))
        now = datetime.now(UTC)
        for (days, step), thread_id in zip(SPREAD, thread_ids, strict=True):
            await backdate.spread_thread(conn, thread_id, now - timedelta(days=days), step)
        for i, person in enumerate(people.values()):
            await backdate.joined(conn, person["id"], now - timedelta(days=40 - 4 * i))
    return f"loaded the demo forum: {len(USERS)} users (password {PASSWORD!r}), {len(THREADS)} threads"
