// The view of one post (question, response or comment): built once, then
// refilled in place when it changes (score, body, edited marker, actions).

import { h, icon, setPostHtml } from '../../dom.js';
import { api } from '../../api.js';
import { avatar, displayName, formMessage, openDialog, showFormMessage, timeEl, toast, userHandle, userLink } from '../../ui.js';
import { deletePost, setAccepted, setLocked, showRevisions, vote } from './actions.js';
import { flagDialog } from '../flags.js';
import { buildCommentForm } from './composers.js';
import { openEditor } from './editor.js';

// Discourse's rule: the author's own edits within 5 minutes of posting (a typo fixed at once) are not marked.
export const EDIT_GRACE_MS = 5 * 60 * 1000;

/** Whether an edit falls in that grace window: by the author, within EDIT_GRACE_MS of posting. */
export function inEditGrace(post) {
  if (!post.edited_at || !post.edited_by || !post.author || post.edited_by.id !== post.author.id) return false;
  return Date.parse(post.edited_at) - Date.parse(post.created_at) < EDIT_GRACE_MS;
}

/** Build the element of a question, response or comment (its comments too). */
export function buildPost(view, post) {
  const kind = post.kind;
  const root = h(kind === 'question' ? 'article' : 'li', {
    class: ['post', `post-${kind}`], tabindex: '-1', 'data-testid': kind,
    dataset: { postId: post.id, kind, authorId: post.author ? post.author.id : '' },
  });
  const up = h('button', { type: 'button', class: 'vote-btn vote-up', 'data-testid': 'vote-up', 'aria-label': 'Upvote',
    'aria-pressed': 'false', onClick: () => vote(view, post.id, 1) }, icon('up'));
  const down = h('button', { type: 'button', class: 'vote-btn vote-down', 'data-testid': 'vote-down',
    'aria-label': 'Downvote', 'aria-pressed': 'false', onClick: () => vote(view, post.id, -1) }, icon('down'));
  const score = h('span', { class: 'score', 'data-testid': 'score' }, '0');
  const voteEl = h('div', { class: 'vote', role: 'group', 'aria-label': 'Score and votes' }, up, score, down);
  const head = h('div', { class: 'post-head' });
  const body = h('div', { class: 'post-body prose', 'data-testid': 'post-body', dir: 'auto' });
  const editorSlot = h('div', { class: 'editor-slot' });
  const edited = h('p', { class: 'edited-note' });
  const actions = h('div', { class: 'post-actions' });
  const msg = formMessage();
  const refs = { root, vote: voteEl, up, down, score, head, body, editorSlot, edited, actions, msg, kind };
  view.refs.set(post.id, refs);
  let mainEl;
  if (kind === 'comment') {
    mainEl = h('div', { class: 'post-main' }, body, editorSlot,
      h('div', { class: 'comment-foot' }, head, edited, actions), msg);
  } else {
    mainEl = h('div', { class: 'post-main' }, head, body, editorSlot, edited, actions, msg);
  }
  if (kind === 'response') {
    refs.comments = h('ul', { class: 'comment-list', 'data-testid': 'comments', 'aria-label': 'Comments' },
      (post.comments || []).map((c) => buildPost(view, c)));
    // "NAME is commenting…" (indicators.js Typing): there for guests too, who see others type.
    refs.typing = h('p', { class: 'typing typing-comment', 'data-testid': 'comment-typing', 'aria-live': 'polite' });
    mainEl.append(refs.comments, refs.typing);
    refs.commentForm = buildCommentForm(view, post.id);
    if (refs.commentForm) mainEl.append(refs.commentForm);
  }
  root.append(voteEl, mainEl);
  fillPost(view, post);
  return root;
}

/** (Re)fill the parts of a post that change: head, body, votes, edited marker, actions. */
/** Whether the reader ignores the post's author. The server marks the posts of a page it sends (`ignored`);
 * live frames are the same for every reader, so the view remembers whom the page showed as ignored and a live
 * post or edit by them stays collapsed too. */
function isIgnored(view, post) {
  const id = post.author && post.author.id;
  if (post.ignored && id != null) (view.ignoredAuthors ||= new Set()).add(id);
  return Boolean(post.ignored || (id != null && view.ignoredAuthors && view.ignoredAuthors.has(id)));
}

export function fillPost(view, post) {
  const r = view.refs.get(post.id);
  if (!r) return;
  const me = view.me;
  const mine = !!(me && post.author && post.author.id === me.id);
  const mod = !!(me && me.is_moderator);
  const kind = post.kind;
  r.root.classList.toggle('is-deleted', !!post.deleted);
  r.root.classList.toggle('is-mine', mine);
  // A deleted post takes no votes and no comments: no score, no pressed button, no box.
  r.vote.hidden = !!post.deleted;
  if (r.commentForm) r.commentForm.hidden = !!post.deleted;

  r.score.textContent = String(post.score ?? 0);
  r.score.classList.toggle('is-positive', (post.score || 0) > 0);
  r.score.classList.toggle('is-negative', (post.score || 0) < 0);
  r.up.setAttribute('aria-pressed', String(!post.deleted && post.my_vote === 1));
  r.down.setAttribute('aria-pressed', String(!post.deleted && post.my_vote === -1));
  const noVote = mine || post.deleted;
  // Privileges (view.trust, thread.js loadTrust): below a threshold the button says what it takes.
  const lacks = (name) => {
    const t = view.trust;
    if (!t || !(name in t.needs)) return null;
    const need = t.needs[name];
    return need === null || t.reputation >= need ? null : `You need ${need} reputation to ${name.replace('_', ' ')}`;
  };
  const lackUp = lacks('vote_up');
  const lackDown = lacks('vote_down');
  r.up.disabled = !!(noVote || lackUp);
  r.down.disabled = !!(noVote || lackDown);
  r.up.title = mine ? "You can't vote on your own post" : lackUp || (me ? 'This is useful' : 'Sign in to vote');
  r.down.title = mine ? "You can't vote on your own post" : lackDown || (me ? 'This is not useful' : 'Sign in to vote');
  r.root.classList.toggle('is-pending', !!post.pending);

  const q = view.state.question;
  const isOp = kind !== 'question' && q && post.author && q.author && post.author.id === q.author.id;
  const author = userLink(post.author, 'author');
  author.setAttribute('data-testid', 'post-author');
  author.setAttribute('dir', 'auto');
  // Display names are free (two people may both be "Alice"): the unique @username goes beside it.
  const handle = userHandle(post.author);
  const accepted = kind === 'response' && !post.deleted && view.state.thread.accepted_id === post.id;
  r.root.classList.toggle('is-accepted', accepted);
  const acceptedBadge = accepted ? h('span', { class: 'badge badge-accepted', 'data-testid': 'accepted-badge' },
    '✓ Accepted answer') : null;
  const you = [mine ? h('span', { class: 'badge badge-you', 'data-testid': 'you-badge' }, 'You') : null,
    post.pending ? h('span', { class: 'badge badge-pending', 'data-testid': 'pending-badge' },
      mine ? 'Waiting for a moderator: only you and the moderators see it' : 'Held by the spam check') : null];
  if (kind === 'comment') {
    r.head.replaceChildren(...['– ', author, handle && ' ', handle,
      isOp ? h('span', { class: 'badge badge-op' }, 'Author') : null, ...you,
      timeEl(post.created_at, 'relative')].filter(Boolean));
  } else {
    r.head.replaceChildren(avatar(post.author, kind === 'question' ? 'lg' : ''),
      h('span', { class: 'byline' }, author, handle && ' ', handle,
        isOp ? h('span', { class: 'badge badge-op' }, 'Author') : null,
        you, acceptedBadge,
        h('span', { class: 'posted' }, kind === 'question' ? 'Posted ' : '', timeEl(post.created_at, 'relative'))));
  }

  if (post.deleted) {
    // A one-line tombstone (walk.css): no author, time, votes or actions beside it.
    r.body.replaceChildren(h('em', { class: 'deleted-text', 'data-testid': 'tombstone' }, `This ${kind} was deleted.`));
  } else if (isIgnored(view, post) && !(view.shownIgnored && view.shownIgnored.has(post.id))) {
    // By someone the reader ignores: collapsed, one click away.
    r.body.replaceChildren(h('p', { class: 'ignored-text', 'data-testid': 'ignored' },
      `A ${kind} by someone you ignore. `,
      h('button', { type: 'button', class: 'link-btn', 'data-testid': 'show-ignored', onClick: () => {
        view.shownIgnored = view.shownIgnored || new Set();
        view.shownIgnored.add(post.id);
        fillPost(view, post);
      } }, 'Show it')));
  } else {
    setPostHtml(r.body, post.html);
  }

  if (post.edited_at && post.edited_by && !post.deleted && !inEditGrace(post)) {
    r.edited.hidden = false;
    r.edited.replaceChildren(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'edited-marker',
      'aria-haspopup': 'dialog', onClick: () => showRevisions(view, post.id) },
    'Edited ', timeEl(post.edited_at, 'relative'), ' by ', h('bdi', null, displayName(post.edited_by)), ' ',
    userHandle(post.edited_by)));
  } else {
    r.edited.hidden = true;
    r.edited.replaceChildren();
  }

  const buttons = [];
  if (post.pending && !post.deleted && mod) {
    const judge = (approved) => async () => {
      try {
        await api('PUT', `/api/posts/${post.id}/approval`, { approved });
        toast(approved ? 'Published.' : 'Deleted.');
        location.reload();
      } catch (e) {
        toast(e.message);
      }
    };
    buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'approve', onClick: judge(true) },
      'Approve'), h('button', { type: 'button', class: 'link-btn', 'data-testid': 'refuse', onClick: judge(false) },
      'Refuse'));
  }
  if (!post.deleted) {
    buttons.push(h('a', { class: 'link-btn', href: `/t/${post.thread_id}#post-${post.id}`, 'data-testid': 'permalink',
      'aria-label': `Link to this ${kind}` }, 'Link'));
  }
  const asker = !!(me && q && q.author && q.author.id === me.id);
  if (kind === 'response' && !post.deleted && (asker || mod) && !(view.state.thread.locked && !mod)) {
    buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': accepted ? 'unaccept' : 'accept',
      onClick: () => setAccepted(view, accepted ? null : post.id) }, accepted ? 'Unaccept' : 'Accept'));
  }
  if (!post.deleted && me) {
    if (mine || mod) {
      buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'edit',
        onClick: () => openEditor(view, post.id) }, 'Edit'));
    }
    if ((mine && kind !== 'question') || mod) {
      buttons.push(h('button', { type: 'button', class: 'link-btn link-danger', 'data-testid': 'delete',
        onClick: () => deletePost(view, post.id) }, 'Delete'));
    }
    buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'bookmark',
      onClick: () => api('PUT', `/api/posts/${post.id}/bookmark`, { bookmarked: true })
        .then(() => toast('Bookmarked: your bookmarks are on your profile'), (e) => toast(e.message)) }, 'Bookmark'));
    if (!mine) {
      const lackFlag = lacks('flag');
      buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'flag', 'aria-haspopup': 'dialog',
        disabled: !!lackFlag, title: lackFlag || null, onClick: () => flagDialog(post) }, 'Flag'));
    }
    if (kind === 'question' && mod) {
      const dup = view.state.thread.duplicate_of;
      buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': dup ? 'not-duplicate' : 'mark-duplicate',
        'aria-haspopup': dup ? null : 'dialog', onClick: () => (dup ? setDuplicate(view, null) : duplicateDialog(view)) },
      dup ? 'Not a duplicate' : 'Mark duplicate'));
    }
    if (kind === 'question' && mod) {
      const locked = view.state.thread.locked;
      buttons.push(h('button', { type: 'button', class: 'link-btn', 'data-testid': 'lock',
        onClick: () => setLocked(view, !locked) }, locked ? 'Unlock thread' : 'Lock thread'));
    }
  }
  r.actions.replaceChildren(...buttons);
  r.actions.hidden = !buttons.length || view.editors.has(post.id);
}

/** A moderator marks the thread a duplicate (or lifts it with null); the banner comes with the thread.updated event. */
async function setDuplicate(view, of) {
  try {
    await api('PUT', `/api/threads/${view.id}/duplicate`, { of });
    return true;
  } catch (e) {
    toast(e.message);
    return false;
  }
}

/** Ask for the original: its number or a link to it (/t/ID…). */
function duplicateDialog(view) {
  const input = h('input', { id: 'duplicate-of', type: 'text', inputmode: 'url', autocomplete: 'off', required: true,
    'data-testid': 'duplicate-of' });
  const msg = formMessage();
  const form = h('form', { class: 'dialog-form', novalidate: true },
    h('label', { for: 'duplicate-of' }, 'The original question (its number or link)'), input, msg,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary',
      'data-testid': 'duplicate-submit' }, 'Mark duplicate')));
  const dlg = openDialog('Mark as a duplicate', form, 'duplicate-dialog');
  input.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = input.value.trim();
    const m = v.match(/\/t\/(\d+)/) || v.match(/^#?(\d+)$/);
    if (!m) { showFormMessage(msg, 'Give the number of the original thread, or a link to it.'); return; }
    if (await setDuplicate(view, Number(m[1]))) dlg.close();
  });
}
