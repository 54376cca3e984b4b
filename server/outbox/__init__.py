"""E-mail: the outbox and its workers, SMTP out and in (docs/operations.md "E-mail", docs/api.md "E-mail").

- keys.py: the secrets a mail carries (reply-by-mail addresses, one-click unsubscribe tokens);
- compose.py: every mail built from its Jinja2 templates (text and HTML), with its headers;
- transport.py: where mail goes: an SMTP server (aiosmtplib) or files under the data directory;
- sender.py: the outbox worker: claims due rows (FOR UPDATE SKIP LOCKED, with a lease), sends, retries;
- notify.py: notification mail for people who are away (Zulip's delay-and-recheck rule) and digests;
- inbound.py: the reply-by-mail listener (aiosmtpd), posting through the HTTP write path.

Mail rows are written by store/ in the transaction of their cause (store/outbox.py); a write that queued
one says so in its Written (`mail_queued`), and effects.after_commit() only wakes the sender.
"""
