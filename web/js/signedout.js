// Why the reader was signed out, in words, with any time in their own time zone: a suspension (until when,
// and the moderator's reason from the public log), or a session ended elsewhere (a sign-out, a password
// change). Shown once the page has been drawn again as a guest, so the redraw never hides it.

import { api } from './api.js';
import { formatDateTime } from './format.js';

const SUSPENDED_AT = /suspended until (\S+?Z)/; // the sign-in refusal names the time in UTC

/** "Your account is suspended until December 13, 2026 1:18 AM CET: spam." or the plain reason of a sign-out. */
export async function signedOutReason(user) {
  if (!user || !user.username) return null;
  try {
    const d = await api('GET', `/api/users/${encodeURIComponent(user.username)}`);
    const until = d.user && d.user.suspended_until;
    if (until && new Date(until).getTime() > Date.now()) return suspendedText(until, await suspensionReason(user));
  } catch { /* unknown: the plain reason below */ }
  return 'You were signed out: your session ended elsewhere (a sign-out or a password change). Sign in again to carry on.';
}

/** The reason of the newest suspension of `user` in the public moderation log (its first page), or null. */
async function suspensionReason(user) {
  try {
    const d = await api('GET', '/api/modlog?limit=50');
    const wanted = user.username.toLowerCase();
    const entry = (d.entries || []).find((e) => e.action === 'user.suspended'
      && e.target && String(e.target.username || '').toLowerCase() === wanted);
    return entry ? entry.reason : null;
  } catch {
    return null;
  }
}

export function suspendedText(until, reason) {
  return `Your account is suspended until ${formatDateTime(until)}${reason ? ` (reason: ${reason})` : ''}.`;
}

/** A sign-in refusal's message with its UTC time put in the reader's own time zone. */
export function localizeSuspension(message) {
  const m = SUSPENDED_AT.exec(message || '');
  return m ? suspendedText(m[1], null).replace('Your account', 'This account') : message;
}
