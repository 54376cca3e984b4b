// A view that could not load: what happened in plain words (offline, Parley down, a fault on our side) and a
// "Try again" button; it also tries again on its own: when the browser or the live connection is back, and
// after a growing, jittered wait while Parley cannot be reached or fails on its side.

import { fullJitter } from './backoff.js';
import { h } from './dom.js';

/** The words for a failed load (never "your text is kept": a list has no text of yours). */
export function failureText(err) {
  const status = err && err.status;
  if (status === 0) return "Parley can't be reached: you may be offline. This will load again by itself once your connection is back.";
  if (status === 503) return 'Parley is briefly unavailable. Try again in a moment.';
  if (status >= 500) return `Something went wrong on Parley's side (error ${status}). Try again; if it keeps happening, tell a moderator.`;
  return (err && err.message) || 'Something went wrong. Try again.';
}

/**
 * A panel saying what failed, with "Try again" (which draws the view again), and the same when the browser
 * says it is back online. `heading` is 'h1' for a whole view, 'h2' for a part of one.
 */
export function failedPanel(ctx, title, err, { heading = 'h1', retry = null } = {}) {
  const again = retry || (() => ctx.navigate(location.pathname + location.search + location.hash, { replace: true }));
  const button = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'try-again' }, 'Try again');
  const panel = h('section', { class: 'panel panel-empty', 'data-testid': 'load-failed', role: 'alert' },
    h(heading, null, title), h('p', null, failureText(err)), button);
  button.addEventListener('click', () => { button.disabled = true; button.textContent = 'Trying…'; again(); });
  if (err && (err.status === 0 || err.status >= 500)) retryByItself(panel, again);
  return panel;
}

let autoRetries = 0; // in a row, across the panels of one outage: their waits grow (./backoff.js)

/** Unreachable or failing on Parley's side: try again when the browser is back online, when the live
 * connection is back (`parley:back`, app.js), or after a jittered wait that grows while it keeps failing. */
function retryByItself(panel, again) {
  let done = false;
  const go = () => {
    if (done) return;
    done = true;
    window.removeEventListener('online', onBack);
    window.removeEventListener('parley:back', onBack);
    clearTimeout(timer);
    if (panel.isConnected) again();
  };
  const onBack = () => { autoRetries = 0; go(); };
  window.addEventListener('online', onBack);
  window.addEventListener('parley:back', onBack);
  const timer = setTimeout(() => {
    if (typeof navigator !== 'undefined' && navigator.onLine === false) return; // `online` will come
    autoRetries += 1;
    go();
  }, fullJitter(autoRetries, { base: 2000, cap: 60000, floor: 1000 }));
}

/** A "Show more" that failed: what happened, briefly, and that pressing it again tries again. */
export function moreFailedLabel(err) {
  const status = err && err.status;
  const why = status === 0 ? "Parley can't be reached" : status === 503 ? 'Parley is briefly unavailable'
    : status >= 500 ? `error ${status} on Parley's side` : ((err && err.message) || 'it failed');
  return `Could not load more: ${why}. Try again`;
}
