// A thread list that follows its feed over the socket: a new thread appears at the top, activity moves
// a thread up, counts and the accepted mark change in place, a deleted thread leaves. Feeds replay
// nothing: after a reconnect the list is reloaded.
//
// Feed frames carry `unread: null` (the contract: a feed is the same for everyone), so a row rebuilt from
// one keeps the reader's own count, and when the thread moved the reader's count is asked for again
// (GET /api/threads/{id}?limit=1: the server counts the new posts by others since the read position).

import { api } from './api.js';
import { threadItem } from './ui.js';

const RECOUNT_MS = 800; // frames of one thread come about once a second: one question per burst

/**
 * @param ctx     the app context (ctx.live, ctx.me)
 * @param feed    "all" or "category:SLUG"
 * @param getList () => the <ol> of the list (or null while loading)
 * @param reload  () => reload the list over HTTP
 * @param byActivity whether the list is in activity order (else rows change in place only)
 */
export function followFeed(ctx, feed, getList, reload, byActivity) {
  const timers = new Map(); // thread id -> pending recount
  const recount = (id) => {
    clearTimeout(timers.get(id));
    timers.set(id, setTimeout(async () => {
      timers.delete(id);
      try {
        const d = await api('GET', `/api/threads/${id}?limit=1`);
        const row = getList()?.querySelector(`[data-thread-id="${id}"]`);
        if (row && d.thread) row.replaceWith(threadItem({ ...readerPart(row), ...d.thread }));
      } catch { /* the badge keeps its last count */ }
    }, RECOUNT_MS));
  };
  ctx.live.subscribeFeed(feed, {
    onReset: reload,
    onFeed: (frame) => {
      const list = getList();
      if (!list) { if (!frame.deleted) reload(); return; } // an empty list: its first thread arrived

      const old = list.querySelector(`[data-thread-id="${frame.id}"]`);
      if (frame.deleted) { if (old) old.remove(); return; }
      const t = old ? { ...frame, ...readerPart(old) } : frame;
      const row = threadItem(t);
      if (old && ctx.me && t.unread !== null && t.unread !== undefined
        && Number(old.dataset.seq || 0) < Number(frame.seq || 0)) recount(frame.id);
      if (old && !byActivity) { old.replaceWith(row); return; }
      if (old) old.remove();
      else if (!byActivity) return;
      list.prepend(row);
    },
  });
  return () => {
    for (const t of timers.values()) clearTimeout(t);
    ctx.live.unsubscribeFeed(feed);
  };
}

/** The reader's part of a row (threadItem keeps it in data attributes): following and unread. */
function readerPart(row) {
  const u = row.dataset.unread;
  return { unread: u === undefined || u === '' ? null : Number(u), following: row.dataset.following === 'true' };
}
