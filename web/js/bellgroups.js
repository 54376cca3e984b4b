// The bell's groups (no DOM): notifications of one thread and one kind make one row, "12 new responses in
// Cast iron…" with the newest actors' names; the row opens the group's first unread post, and reading it
// marks every row of the group read. The contract names no endpoint for groups: the page groups the list.

/** Group newest-first notifications by thread and kind; groups newest first (by their newest member). */
export function groupNotifications(items) {
  const groups = new Map();
  for (const n of items || []) {
    const key = `${n.thread ? n.thread.id : 0}:${n.kind}`;
    let g = groups.get(key);
    if (!g) {
      g = { key, kind: n.kind, thread: n.thread, items: [], unreadIds: [], actors: [] };
      groups.set(key, g);
    }
    g.items.push(n);
    if (!n.read) g.unreadIds.push(n.id);
    const who = n.actor || null;
    if (who && !g.actors.some((a) => a.id === who.id)) g.actors.push(who);
  }
  return [...groups.values()].map((g) => {
    const unread = g.items.filter((n) => !n.read);
    // The first unread is the oldest unread (the list is newest first); with none, the newest.
    const target = unread.length ? unread[unread.length - 1] : g.items[0];
    return { ...g, count: g.items.length, unread: unread.length, newest: g.items[0], target };
  });
}

/** How many groups hold an unread notification (the count in the tab title and on the bell). */
export function unreadGroups(groups) {
  return groups.filter((g) => g.unread > 0).length;
}

/** "Ada", "Ada and Bob", "Ada, Bob and 3 others": the newest actors first. */
export function actorNames(names, shown = 2) {
  if (names.length <= 1) return names[0] || 'Someone';
  if (names.length <= shown + 1 && names.length <= 3) {
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  }
  const rest = names.length - shown;
  return `${names.slice(0, shown).join(', ')} and ${rest} ${rest === 1 ? 'other' : 'others'}`;
}

const ONE = {
  response: 'answered your question',
  comment: 'commented in',
  mention: 'mentioned you in',
  accepted: 'accepted your answer in',
  followed: 'responded in',
  tagged: 'asked a question tagged for you:',
};
// Several in a group: "3 new responses in" (the unread ones) or, all read, "12 responses in".
const NOUN = {
  response: ['response', 'responses', 'to your question'],
  comment: ['comment', 'comments', 'in'],
  mention: ['mention of you', 'mentions of you', 'in'],
  accepted: ['accepted answer', 'accepted answers', 'in'],
  followed: ['response', 'responses', 'in'],
  tagged: ['question tagged for you', 'questions tagged for you', 'the newest:'],
};

/** The words before the thread title: "Ada answered your question" or "12 new responses in". */
export function groupLead(group) {
  if (group.count === 1) return ONE[group.kind] || group.kind;
  const fresh = group.unread > 0;
  const n = fresh ? group.unread : group.count;
  const [one, many, tail] = NOUN[group.kind] || [group.kind, group.kind, 'in'];
  return `${n} ${fresh ? 'new ' : ''}${n === 1 ? one : many} ${tail}`;
}
