// The tabs above a thread list: Active (default), New, Top, Unanswered; kept in the URL (?tab=).

import { h } from './dom.js';

export const TABS = [
  { key: 'active', label: 'Active', query: '', heading: 'Most active threads' },
  { key: 'new', label: 'New', query: '&sort=newest', heading: 'Newest threads' },
  { key: 'top', label: 'Top', query: '&sort=top', heading: 'Top questions' },
  { key: 'unanswered', label: 'Unanswered', query: '&filter=unanswered', heading: 'Unanswered questions' },
  { key: 'following', label: 'Following', query: '&filter=following', heading: 'Threads you follow', signedIn: true },
  { key: 'unread', label: 'Unread', query: '&filter=unread', heading: 'Threads with new posts', signedIn: true },
];

/** The tab of the current URL (?tab=KEY), Active when absent or unknown. */
export function currentTab() {
  const key = new URLSearchParams(location.search).get('tab');
  return TABS.find((t) => t.key === key) || TABS[0];
}

/** Links to the same page with each tab; the current one is marked. */
export function listTabs(current = currentTab()) {
  return h('nav', { class: 'list-tabs', 'aria-label': 'Sort threads', 'data-testid': 'list-tabs' },
    h('ul', null, TABS.map((t) => h('li', { 'data-signed-in-only': t.signedIn ? '' : null }, h('a', {
      href: t.key === 'active' ? location.pathname : `${location.pathname}?tab=${t.key}`,
      'aria-current': t.key === current.key ? 'page' : null, 'data-tab': t.key,
    }, t.label)))));
}
