// Applying live events to a thread's state. Pure: no DOM, no I/O; every
// function returns a new state and never mutates the one it was given.
//
// state = {thread, question, responses: [{...post, comments: [post…]}…]}
//
// Rules: an event with seq <= state.thread.seq is a duplicate and ignored;
// after applying, state.thread.seq = event.seq. Posts in events carry
// my_vote 0, so the reader's own my_vote is always kept.

/** Find a post by id: {post, where: 'question'|'response'|'comment', responseIndex, commentIndex}. */
export function findPost(state, id) {
  if (!state) return null;
  if (state.question && state.question.id === id) return { post: state.question, where: 'question' };
  for (let i = 0; i < state.responses.length; i++) {
    const r = state.responses[i];
    if (r.id === id) return { post: r, where: 'response', responseIndex: i };
    const comments = r.comments || [];
    for (let j = 0; j < comments.length; j++) {
      if (comments[j].id === id) return { post: comments[j], where: 'comment', responseIndex: i, commentIndex: j };
    }
  }
  return null;
}

/** Return a new state with post `id` replaced by fn(post); unchanged state if it is not there. */
export function updatePost(state, id, fn) {
  const found = findPost(state, id);
  if (!found) return state;
  if (found.where === 'question') return { ...state, question: fn(state.question) };
  const responses = state.responses.slice();
  if (found.where === 'response') {
    responses[found.responseIndex] = fn(responses[found.responseIndex]);
  } else {
    const r = responses[found.responseIndex];
    const comments = r.comments.slice();
    comments[found.commentIndex] = fn(comments[found.commentIndex]);
    responses[found.responseIndex] = { ...r, comments };
  }
  return { ...state, responses };
}

/** Merge a newer version of a post, keeping the reader's my_vote and the response's comments. */
export function mergePost(old, incoming) {
  const merged = { ...old, ...incoming, my_vote: old.my_vote ?? 0 };
  if (old.comments) merged.comments = old.comments;
  return merged;
}

/**
 * Insert a new post (from an event or from our own POST). Ignored when the id already
 * exists or a comment's response is not loaded. Returns {state, change}.
 */
export function insertPost(state, post) {
  if (findPost(state, post.id)) return { state, change: null };
  const fresh = { ...post, my_vote: post.my_vote ?? 0 };
  if (post.kind === 'question') {
    return { state: { ...state, question: fresh }, change: { type: 'created', post: fresh } };
  }
  const thread = { ...state.thread, last_activity_at: post.created_at || state.thread.last_activity_at };
  if (post.kind === 'comment') {
    const idx = state.responses.findIndex((r) => r.id === post.parent_id);
    if (idx < 0) return { state, change: null };
    const responses = state.responses.slice();
    responses[idx] = { ...responses[idx], comments: [...(responses[idx].comments || []), fresh] };
    return { state: { ...state, thread, responses }, change: { type: 'created', post: fresh, parentId: post.parent_id } };
  }
  thread.response_count = (state.thread.response_count || 0) + 1;
  const response = { ...fresh, comments: post.comments || [] };
  return {
    state: { ...state, thread, responses: [...state.responses, response] },
    change: { type: 'created', post: response },
  };
}

/**
 * Mark post `id` deleted (it keeps its place and comments; its text goes). A response deleted here no
 * longer counts in thread.response_count, as on the server — once: marking it again (our own DELETE's
 * answer, then its event) changes nothing more. Unchanged state if the post is not there.
 */
export function markDeleted(state, id) {
  const found = findPost(state, id);
  if (!found) return state;
  const next = updatePost(state, id, (p) => ({ ...p, deleted: true, body: '', html: '' }));
  if (found.where === 'response' && !found.post.deleted) {
    next.thread = { ...next.thread, response_count: (next.thread.response_count || 0) - 1 };
  }
  return next;
}

/**
 * Apply one event frame ({seq, name, data}, optionally {thread}) to the state.
 * Returns {state, change}; change is null when the event changed nothing visible
 * (a duplicate, or a post that is not loaded), else a small description for the view.
 */
export function applyEvent(state, event) {
  if (!state || !state.thread || !event) return { state, change: null };
  if (event.thread !== undefined && event.thread !== null && event.thread !== state.thread.id) {
    return { state, change: null };
  }
  if (typeof event.seq !== 'number' || event.seq <= (state.thread.seq || 0)) return { state, change: null };
  const data = event.data || {};
  let result = { state, change: null };
  switch (event.name) {
    case 'post.created':
      result = insertPost(state, data);
      break;
    case 'post.edited':
      if (findPost(state, data.id)) {
        result = { state: updatePost(state, data.id, (p) => mergePost(p, data)), change: { type: 'edited', id: data.id } };
      }
      break;
    case 'post.deleted':
      if (findPost(state, data.id)) {
        result = {
          state: markDeleted(state, data.id),
          change: { type: 'deleted', id: data.id, question: state.question && state.question.id === data.id },
        };
      }
      break;
    case 'vote.changed':
      if (findPost(state, data.post_id)) {
        const voted = updatePost(state, data.post_id, (p) => ({ ...p, score: data.score }));
        // A vote on the question is also the thread's score (Thread.score).
        if (state.question && state.question.id === data.post_id) voted.thread = { ...voted.thread, score: data.score };
        result = { state: voted, change: { type: 'vote', id: data.post_id } };
      }
      break;
    case 'thread.updated':
      result = { state: { ...state, thread: { ...state.thread, ...data } }, change: { type: 'thread' } };
      break;
    default:
      break;
  }
  const next = result.state === state ? { ...state } : result.state;
  next.thread = { ...next.thread, seq: event.seq };
  return { state: next, change: result.change };
}
