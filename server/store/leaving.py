"""Deleting an account (CONTRACT "Leaving", docs/api.md "Leaving: deleting the account").

The users row stays, so that the posts it wrote keep an author, but nothing that named the person does: the
username becomes `deleted-user-N` (the old one is free again), the display name likewise, and the address,
avatar, password, suspension note, sessions, API keys, single sign-on identities, tokens, unsent mail,
notifications, follows, read positions and bookmarks go. The thread events that carried the old User brief
(a post's author or editor, a thread's author) are rewritten to carry the new one, so the backlog (HTTP
events, websocket replay) names nobody either. Votes and flags stay, nameless, as others' scores and the
review queue depend on them.

With `erase_posts`, every post of theirs loses its text as a deletion takes it (posts.erase), each a
post.deleted event of its thread; questions keep their threads.
"""

from __future__ import annotations

import asyncpg

from . import SessionsEnded, Written, posts, users

# The name a deleted account takes; no one may sign up with a name of this form (users.DELETED_NAME).
DELETED_NAME = "deleted-user-{id}"


async def _brief_text(conn: asyncpg.Connection, user_id: int) -> str:
    """The User brief of the user as jsonb prints it: the exact text it has inside every stored event."""
    return await conn.fetchval(f"SELECT ({users.brief_sql('u')})::text FROM users u WHERE u.id = $1", user_id)


async def delete_account(conn: asyncpg.Connection, user: asyncpg.Record, erase_posts: bool) -> Written[None]:
    """Delete the account of `user` in the caller's transaction; every session of theirs ends."""
    user_id = user["id"]
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
    written: Written[None] = Written(None)
    if erase_posts:
        ids = await conn.fetch("SELECT id FROM posts WHERE author_id = $1 AND NOT deleted ORDER BY thread_id, id",
                               user_id)
        for row in ids:
            written.merge(await posts.erase(conn, row["id"], user))
    old = await _brief_text(conn, user_id)
    name = DELETED_NAME.format(id=user_id)
    await conn.execute(
        """
        UPDATE users SET username = $2, display_name = $2, password_hash = '', email = NULL, email_verified = false,
               avatar_upload_id = NULL, avatar_url = NULL, is_moderator = false, suspension_reason = NULL,
               credential_epoch = credential_epoch + 1, deleted_at = now()
        WHERE id = $1
        """, user_id, name)
    new = await _brief_text(conn, user_id)
    # Only threads where the brief can be: those with a post they wrote or edited (a thread's author wrote its
    # question). jsonb prints an object one way, so the old brief's text is found exactly.
    await conn.execute(
        """
        UPDATE thread_events SET data = replace(data::text, $2, $3)::jsonb
        WHERE thread_id IN (SELECT thread_id FROM posts WHERE author_id = $1
                            UNION SELECT thread_id FROM posts WHERE edited_by = $1)
          AND strpos(data::text, $2) > 0
        """, user_id, old, new)
    for table in ("sessions", "api_keys", "oidc_identities", "email_tokens", "notifications", "thread_follows",
                  "thread_reads", "tag_follows", "bookmarks", "idempotency_keys"):
        await conn.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)  # names are ours, not input
    await conn.execute("DELETE FROM mail_outbox WHERE user_id = $1 AND sent_at IS NULL", user_id)
    await conn.execute("UPDATE mail_outbox SET recipient = '', message = '' WHERE user_id = $1", user_id)
    # Notifications they caused stay with their recipients (the actor is now nameless).
    written.sessions_ended.append(SessionsEnded(user_id))
    return written
