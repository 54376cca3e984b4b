// Drafts that follow the person (CONTRACT rev. 3 "Drafts and transports"; docs/live.md "Drafts"): what a
// signed-in person types is kept on the server per key (ask, thread:ID, comment:ID, edit:ID), saved as they
// type (once per pause, LIMITS.draft_save_delay_ms), restored on any device, and synced to their other tabs
// by `draft` frames. sessionStorage keeps this tab's copy (a reload before the save, a guest, the server
// unreachable). Leaving the page with text not saved yet sends it along (a keepalive request) when the server
// is reachable, and asks first (beforeunload) when it is not (offline, or its last save failed).

import { api, ApiError } from './api.js';
import { LIMITS } from './limits.js';

const known = new Map(); // server key -> {body, revision}: the server's draft as this tab last heard it
const watchers = new Map(); // server key -> Set of fn(body | null) called when another tab or device changed it
const pending = new Map(); // server key -> text not saved on the server yet
const timers = new Map(); // server key -> the debounce timer of its save
const statusListeners = new Set(); // fn(key, state): 'typing' | 'saving' | 'saved' | 'unsaved' (a save failed)
let userId = null;
let loading = null;
let retryTimer = null;
// A list read (reloadDrafts) can be answered after a newer word on one of its drafts: a frame, or this tab
// sending the post that deleted it. Each such change is stamped, and the list leaves alone a key changed
// after the list was asked for (else a stale list brings a sent reply's text back into its box).
let tick = 0;
const changedAt = new Map(); // server key -> tick of its last frame or clear() here

function local(key) {
  return {
    get() { try { return sessionStorage.getItem(key) || ''; } catch { return ''; } },
    set(text) {
      try { if (text) sessionStorage.setItem(key, text); else sessionStorage.removeItem(key); } catch { /* full */ }
    },
  };
}

function notify(key, body) {
  const set = watchers.get(key);
  if (!set) return;
  for (const fn of [...set]) fn(body);
}

function status(key, state) { for (const fn of statusListeners) fn(key, state); }

/** The signed-in user changed (null: a guest): forget the other person's drafts and read this one's. */
export function setDraftUser(user) {
  const id = user ? user.id : null;
  if (id === userId) return loading;
  userId = id;
  known.clear();
  for (const t of timers.values()) clearTimeout(t);
  timers.clear();
  pending.clear();
  return reloadDrafts();
}

/** Read every draft of the user (at sign-in, and after the socket comes back: frames are not replayed). */
export function reloadDrafts() {
  if (userId === null) { loading = Promise.resolve(); return loading; }
  const forUser = userId;
  const asked = tick;
  const newer = (key) => (changedAt.get(key) || 0) > asked;
  loading = api('GET', '/api/me/drafts').then((d) => {
    if (forUser !== userId) return;
    const seen = new Set();
    for (const draft of d.drafts || []) {
      seen.add(draft.key);
      if (!newer(draft.key)) applyServer(draft);
    }
    for (const key of [...known.keys()]) {
      if (!seen.has(key) && !newer(key)) applyServer({ key, body: null, revision: 0 });
    }
  }).catch(() => { /* offline or signed out: this tab's copies stand */ });
  return loading;
}

function applyServer(draft) {
  const before = known.get(draft.key);
  if (before && before.body === draft.body && before.revision === draft.revision) return;
  if (draft.body === null) known.delete(draft.key);
  else known.set(draft.key, { body: draft.body, revision: draft.revision });
  if (!pending.has(draft.key)) notify(draft.key, draft.body);
}

/** A `draft` frame: the person changed a draft in another tab or on another device (body null: deleted). */
export function onDraftFrame(draft) {
  if (!draft || typeof draft.key !== 'string' || userId === null) return;
  changedAt.set(draft.key, ++tick);
  const before = known.get(draft.key);
  if (before && draft.body !== null && draft.revision <= before.revision) return; // our own save, or older
  applyServer(draft);
}

/** Whether some text typed here is not on the server yet (a deletion on its way is not text). */
export function hasUnsaved() { return [...pending.values()].some(Boolean); }

/** Follow the saving state of the drafts: fn(key, state) (see statusListeners); returns a stop function. */
export function onDraftStatus(fn) { statusListeners.add(fn); return () => statusListeners.delete(fn); }

const inflight = new Set(); // server keys with a save on the way: one at a time per key, in order
const failing = new Set(); // server keys whose last save failed (offline, server unreachable, refused)
const after = new Set(); // server keys cleared (sent) while a save was on the way: deleted once it is back

async function save(key) {
  timers.delete(key);
  if (!pending.has(key) || userId === null || inflight.has(key)) return;
  inflight.add(key);
  let saved = false;
  try {
    saved = await saveOnce(key);
  } finally {
    inflight.delete(key);
  }
  // Typed on while it was saving (and that pause's timer fired meanwhile): save the newer text too. A box
  // cleared meanwhile (its post sent) has '' waiting: the draft the late save wrote is deleted.
  if (after.delete(key) || (saved && pending.has(key) && !timers.has(key))) save(key);
}

async function saveOnce(key) {
  const text = pending.get(key);
  const forUser = userId;
  status(key, 'saving');
  try {
    for (let tries = 0; ; tries++) {
      const base = known.get(key);
      try {
        if (text === '') {
          await api('DELETE', `/api/me/drafts/${key}`);
          known.delete(key);
        } else {
          const d = await api('PUT', `/api/me/drafts/${key}`, { body: text, revision: base ? base.revision : 0 });
          known.set(key, { body: d.draft.body, revision: d.draft.revision });
        }
        break;
      } catch (err) {
        // Changed on another device since this tab heard of it: the person typing here now is the latest word.
        if (err instanceof ApiError && err.code === 'draft_changed' && tries < 2) {
          const current = err.data && err.data.draft;
          if (current) known.set(key, { body: current.body, revision: current.revision });
          else known.delete(key);
          continue;
        }
        throw err;
      }
    }
    failing.delete(key);
    if (forUser === userId && pending.get(key) === text) {
      pending.delete(key);
      status(key, 'saved');
    }
    return true;
  } catch (err) {
    failing.add(key);
    status(key, 'unsaved');
    // Unreachable (offline, restarting) or refused: keep it, and try again when the network returns.
    if (err instanceof ApiError && (err.status === 0 || err.retryable || err.status === 429)) scheduleRetry();
    return false;
  }
}

function scheduleRetry() {
  if (retryTimer) return;
  retryTimer = setTimeout(() => { retryTimer = null; flushDrafts(); }, 5000);
}

/** Save every waiting draft now (the network came back; the page is being hidden). */
export function flushDrafts() {
  for (const key of pending.keys()) {
    clearTimeout(timers.get(key));
    save(key);
  }
}

/**
 * A draft slot of one box: get() → its text ('' if none), set(text) as the person types (saved after a pause;
 * empty deletes it), clear() once the post is sent (the server deleted the draft itself), and
 * watch(fn): fn(text) when the person changed it elsewhere while this box holds nothing unsaved.
 * `serverKey` null: this tab only (a guest's box).
 */
export function draftSlot(localKey, serverKey) {
  const copy = local(localKey);
  return {
    key: serverKey,
    /** fn(state) as this draft is typed, saved, or fails to save; returns a stop function. */
    onStatus(fn) {
      if (!serverKey) return () => {};
      return onDraftStatus((key, state) => { if (key === serverKey) fn(state); });
    },
    get() {
      const mine = copy.get();
      if (mine || !serverKey) return mine;
      const server = known.get(serverKey);
      return server ? server.body : '';
    },
    set(text) {
      copy.set(text);
      if (!serverKey || userId === null) return;
      pending.set(serverKey, text);
      status(serverKey, 'typing');
      clearTimeout(timers.get(serverKey));
      timers.set(serverKey, setTimeout(() => save(serverKey), LIMITS.draft_save_delay_ms));
    },
    /** Sending: no save of this text may land after the post (whose success deletes the draft). */
    hold() {
      if (!serverKey) return;
      clearTimeout(timers.get(serverKey));
      timers.delete(serverKey);
    },
    clear() {
      copy.set('');
      if (!serverKey) return;
      changedAt.set(serverKey, ++tick);
      clearTimeout(timers.get(serverKey));
      timers.delete(serverKey);
      known.delete(serverKey);
      if (inflight.has(serverKey)) {
        // A save that left before the post may land after it and bring the draft back: delete it after that.
        pending.set(serverKey, '');
        after.add(serverKey);
        return;
      }
      pending.delete(serverKey);
      status(serverKey, 'saved');
    },
    /** The person threw it away (closed an editor): delete it here and on the server. */
    discard() {
      copy.set('');
      if (!serverKey || userId === null) return;
      if (!known.has(serverKey) && !pending.has(serverKey)) return;
      pending.set(serverKey, '');
      clearTimeout(timers.get(serverKey));
      save(serverKey);
    },
    /** Fill the box from the server when the list arrives or another tab changes it; returns a stop function. */
    watch(fn) {
      if (!serverKey) return () => {};
      if (!watchers.has(serverKey)) watchers.set(serverKey, new Set());
      const set = watchers.get(serverKey);
      const wrapped = (body) => {
        copy.set(body || '');
        fn(body || '');
      };
      set.add(wrapped);
      return () => set.delete(wrapped);
    },
    loaded: () => loading || Promise.resolve(),
  };
}

// Keepalive requests may carry 64 KiB in all while the page goes (the Fetch standard); leave room for headers.
const KEEPALIVE_BYTES = 60000;

window.addEventListener('beforeunload', (e) => {
  const unsent = [...pending].filter(([, text]) => text);
  if (!unsent.length) return;
  const bytes = unsent.reduce((n, [, text]) => n + new TextEncoder().encode(JSON.stringify({ body: text })).length, 0);
  if (navigator.onLine && !unsent.some(([key]) => failing.has(key)) && bytes <= KEEPALIVE_BYTES) {
    // The server answered a moment ago: the text goes with the page (a keepalive request outlives it), so
    // nobody is asked. Written as it stands here, whatever revision the server holds: it is the latest word.
    for (const [key, text] of unsent) {
      fetch(`/api/me/drafts/${key}`, { method: 'PUT', keepalive: true, credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ body: text }) }).catch(() => {});
    }
    return;
  }
  // Offline, or the last save failed: this text would be lost (or only in this tab's storage). Ask.
  e.preventDefault();
  e.returnValue = ''; // older browsers want a value set to ask
});
window.addEventListener('online', () => flushDrafts());
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') flushDrafts(); });
