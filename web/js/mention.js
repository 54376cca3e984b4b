// @mention completion in every composer (any textarea): typing "@" and a prefix lists matching
// users from GET /api/users?q=; ArrowUp/ArrowDown move, Enter or Tab picks, Escape closes.

import { api } from './api.js';
import { h } from './dom.js';
import { displayName } from './ui.js';

const BEFORE_CARET = /(?:^|[^A-Za-z0-9_.@/-])@([A-Za-z0-9_.-]{1,32})$/;

let box = null;      // the open listbox
let target = null;   // its textarea
let items = [];
let active = 0;
let timer = null;
let asked = 0;

function close() {
  if (box) box.remove();
  box = null;
  items = [];
  if (target) target.removeAttribute('aria-activedescendant');
}

function prefixAt(ta) {
  const m = ta.value.slice(0, ta.selectionStart).match(BEFORE_CARET);
  return m ? m[1] : null;
}

function pick(user) {
  const ta = target;
  const caret = ta.selectionStart;
  const before = ta.value.slice(0, caret).replace(BEFORE_CARET, (all, name) => `${all.slice(0, all.length - name.length - 1)}@${user.username} `);
  ta.value = before + ta.value.slice(caret);
  ta.selectionStart = ta.selectionEnd = before.length;
  close();
  ta.dispatchEvent(new Event('input', { bubbles: true }));
  ta.focus();
}

function show(ta, users) {
  close();
  if (!users.length) return;
  target = ta;
  items = users;
  active = 0;
  box = h('ul', { class: 'mention-box card', role: 'listbox', 'data-testid': 'mention-box' },
    users.map((u, i) => h('li', {
      id: `mention-opt-${i}`, role: 'option', class: 'mention-opt', 'data-testid': 'mention-option',
      'aria-selected': i === 0 ? 'true' : 'false', dataset: { username: u.username },
      onMousedown: (e) => { e.preventDefault(); pick(u); },
    }, h('strong', null, `@${u.username}`), ' ', h('span', { dir: 'auto' }, displayName(u)))));
  ta.insertAdjacentElement('afterend', box);
  ta.setAttribute('aria-activedescendant', 'mention-opt-0');
}

function move(delta) {
  active = (active + delta + items.length) % items.length;
  box.querySelectorAll('[role=option]').forEach((el, i) => el.setAttribute('aria-selected', i === active ? 'true' : 'false'));
  target.setAttribute('aria-activedescendant', `mention-opt-${active}`);
}

document.addEventListener('input', (e) => {
  const ta = e.target;
  if (!(ta instanceof HTMLTextAreaElement)) return;
  const q = prefixAt(ta);
  clearTimeout(timer);
  if (!q) { if (target === ta) close(); return; }
  timer = setTimeout(async () => {
    const mine = ++asked;
    try {
      const d = await api('GET', `/api/users?q=${encodeURIComponent(q)}&limit=8`);
      if (mine === asked && prefixAt(ta) === q) show(ta, d.users || []);
    } catch { /* completion is a nicety */ }
  }, 150);
});

document.addEventListener('keydown', (e) => {
  if (!box || e.target !== target) return;
  if (e.key === 'ArrowDown') { e.preventDefault(); move(1); }
  else if (e.key === 'ArrowUp') { e.preventDefault(); move(-1); }
  else if (e.key === 'Enter' || e.key === 'Tab') {
    if (e.ctrlKey || e.metaKey) return; // Ctrl+Enter still submits
    e.preventDefault();
    e.stopPropagation();
    pick(items[active]);
  } else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); }
}, true);

document.addEventListener('focusout', (e) => { if (e.target === target) setTimeout(close, 100); });
