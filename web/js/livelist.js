// A thread list that follows its feed over the socket: a new thread appears at the top, activity moves
// a thread up, counts and the accepted mark change in place, a deleted thread leaves. Feeds replay
// nothing: after a reconnect the list is reloaded.

import { threadItem } from './ui.js';

/**
 * @param ctx     the app context (ctx.live)
 * @param feed    "all" or "category:SLUG"
 * @param getList () => the <ol> of the list (or null while loading)
 * @param reload  () => reload the list over HTTP
 * @param byActivity whether the list is in activity order (else rows change in place only)
 */
export function followFeed(ctx, feed, getList, reload, byActivity) {
  ctx.live.subscribeFeed(feed, {
    onReset: reload,
    onFeed: (t) => {
      const list = getList();
      if (!list) { if (!t.deleted) reload(); return; } // an empty list: its first thread arrived

      const old = list.querySelector(`[data-thread-id="${t.id}"]`);
      if (t.deleted) { if (old) old.remove(); return; }
      const row = threadItem(t);
      if (old && !byActivity) { old.replaceWith(row); return; }
      if (old) old.remove();
      else if (!byActivity) return;
      list.prepend(row);
    },
  });
  return () => ctx.live.unsubscribeFeed(feed);
}
