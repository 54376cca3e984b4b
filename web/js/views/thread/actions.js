// What a reader does to a post besides writing: vote, delete, lock the
// thread (moderators), and look at a post's edit history.

import { api, ApiError } from '../../api.js';
import { findPost, markDeleted, updatePost } from '../../apply.js';
import { wordDiff } from '../../diff.js';
import { h, setPostHtml } from '../../dom.js';
import { confirmDialog, displayName, openDialog, showFormMessage, timeEl, toast, userHandle } from '../../ui.js';

/**
 * Vote optimistically: the pressed state and score change at once, the request
 * goes out, and clicks made meanwhile only change what we want (a second click
 * withdraws). When the answer comes the next wanted value is sent, or the
 * server's score and my_vote are taken; an error rolls back to the last value
 * the server confirmed. Live vote.changed events keep the score honest meanwhile.
 */
export function vote(view, id, value) {
  if (!view.me) { toast('Sign in to vote.'); return; }
  const found = findPost(view.state, id);
  if (!found) return;
  let v = view.votes.get(id);
  if (!v) {
    v = { confirmed: 0, want: null, inflight: false };
    view.votes.set(id, v);
  }
  if (!v.inflight) v.confirmed = found.post.my_vote || 0; // nothing pending: the state is the server's
  const next = (found.post.my_vote || 0) === value ? 0 : value;
  showVote(view, id, next);
  const r = view.refs.get(id);
  if (r) showFormMessage(r.msg, '');
  v.want = next;
  if (!v.inflight) sendVotes(view, id, v);
}

/** Show my_vote = value, moving the score by the difference. */
function showVote(view, id, value) {
  view.state = updatePost(view.state, id, (p) => ({ ...p, score: (p.score || 0) - (p.my_vote || 0) + value, my_vote: value }));
  view.refreshPost(id);
}

async function sendVotes(view, id, v) {
  v.inflight = true;
  try {
    while (v.want !== null) {
      const value = v.want;
      v.want = null;
      if (value === v.confirmed) continue; // clicked back to where the server already is
      let d;
      try {
        d = await api('PUT', `/api/posts/${id}/vote`, { value });
      } catch (e) {
        if (e instanceof ApiError && e.status === 0) {
          // Offline or Parley unreachable: the vote stays shown and goes once the connection is back (a PUT of
          // the value: sent twice it is still one vote). Clicks meanwhile only change what goes.
          if (v.want === null) v.want = value;
          const r = view.refs.get(id);
          if (r) showFormMessage(r.msg, "You're offline: your vote is kept and sent once the connection is back.", 'info');
          await connectionBack();
          if (r) showFormMessage(r.msg, '');
          continue;
        }
        v.want = null;
        showVote(view, id, v.confirmed);
        const r = view.refs.get(id);
        if (r) showFormMessage(r.msg, e.message);
        return;
      }
      v.confirmed = d.my_vote;
      if (v.want === null) {
        view.state = updatePost(view.state, id, (p) => ({ ...p, score: d.score, my_vote: d.my_vote }));
        view.refreshPost(id);
      }
    }
  } finally {
    v.inflight = false;
  }
}

/** Resolves when the browser is online again or the live connection is back (app.js: parley:back). */
function connectionBack() {
  return new Promise((resolve) => {
    const done = () => {
      window.removeEventListener('online', done);
      window.removeEventListener('parley:back', done);
      resolve();
    };
    window.addEventListener('online', done);
    window.addEventListener('parley:back', done);
  });
}

/** The reader's own vote made elsewhere (a `my_vote` frame): the pressed arrow, unless a vote is in flight here. */
export function myVote(view, msg) {
  const v = view.votes.get(msg.post_id);
  if (v && v.inflight) return;
  const found = findPost(view.state, msg.post_id);
  if (!found || (found.post.my_vote || 0) === msg.my_vote) return;
  if (v) v.confirmed = msg.my_vote;
  view.state = updatePost(view.state, msg.post_id, (p) => ({ ...p, my_vote: msg.my_vote }));
  view.refreshPost(msg.post_id);
}

export async function deletePost(view, id) {
  const found = findPost(view.state, id);
  if (!found) return;
  const kind = found.post.kind;
  const ok = await confirmDialog(`Delete this ${kind}?`, kind === 'question'
    ? 'This deletes the whole thread for everyone.'
    : `Everyone will see "This ${kind} was deleted." in its place. This can't be undone.`);
  if (!ok) return;
  const r = view.refs.get(id);
  try {
    await api('DELETE', `/api/posts/${id}`);
    if (kind === 'question') { view.threadDeleted(); return; }
    view.state = markDeleted(view.state, id);
    view.refreshPost(id);
    view.updateCounts();
    view.ctx.announce(`Your ${kind} was deleted.`);
    if (r) r.root.focus();
  } catch (e) {
    if (r) showFormMessage(r.msg, e.message);
  }
}

export async function setLocked(view, locked) {
  try {
    const d = await api('PATCH', `/api/threads/${view.id}`, { locked });
    view.state = { ...view.state, thread: { ...view.state.thread, ...d.thread, seq: view.state.thread.seq } };
    view.renderThreadHead();
  } catch (e) {
    toast(e.message);
  }
}

/** Accept a response (the asker or a moderator), or withdraw it with null. */
export async function setAccepted(view, postId) {
  try {
    const d = await api('PUT', `/api/threads/${view.id}/accepted`, { post_id: postId });
    view.state = { ...view.state, thread: { ...view.state.thread, ...d.thread, seq: view.state.thread.seq } };
    view.threadChanged();
    view.ctx.announce(postId ? 'Answer accepted.' : 'Accepted answer withdrawn.');
  } catch (e) {
    toast(e.message);
  }
}

export async function showRevisions(view, id) {
  let d;
  try {
    d = await api('GET', `/api/posts/${id}/revisions`);
  } catch (e) {
    toast(e.message);
    return;
  }
  const oldestFirst = d.revisions || [];
  const previous = new Map(oldestFirst.map((rv, i) => [rv.revision, i > 0 ? oldestFirst[i - 1] : null]));
  const revs = oldestFirst.slice().reverse();
  const list = h('ol', { class: 'revisions', 'data-testid': 'revisions' }, revs.map((rv, i) => {
    const before = previous.get(rv.revision);
    let body;
    if (before) {
      // What this edit changed, word by word, on the Markdown source.
      body = h('div', { class: 'revision-diff', 'data-testid': 'revision-diff', dir: 'auto' },
        wordDiff(before.body || '', rv.body || '').map((part) => (part.op === '=' ? part.text
          : h(part.op === '+' ? 'ins' : 'del', null, part.text))));
    } else {
      body = h('div', { class: 'prose revision-body', dir: 'auto' });
      setPostHtml(body, rv.html);
    }
    return h('li', { class: 'revision', dataset: { revision: rv.revision } },
      h('div', { class: 'revision-meta' },
        h('strong', null, `Revision ${rv.revision}`),
        i === 0 ? h('span', { class: 'badge' }, 'Current') : null,
        h('span', null, rv.revision === 1 ? 'Posted by ' : 'Edited by ', h('span', { dir: 'auto' }, displayName(rv.edited_by)),
          ' ', userHandle(rv.edited_by),
          ' · ', timeEl(rv.edited_at, 'relative'))),
      body);
  }));
  openDialog('Edit history', list, 'revisions-dialog');
}
