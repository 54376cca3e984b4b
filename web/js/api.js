// The HTTP API client: JSON in and out, the session cookie, errors as ApiError.

export class ApiError extends Error {
  constructor(status, code, message, field = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }

  /** Worth retrying with the same Idempotency-Key (the request may not have landed). */
  get retryable() {
    return this.status === 0 || this.status === 503 || this.code === 'idempotency_in_progress';
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// The API answers the server embedded in a page it rendered (server/seo.py): the first GET of each path is
// answered from them, so the first view renders without fetching what the page already holds (and in the
// same task, so the server's HTML is replaced without a flash). forgetPreloaded() drops what is left.
const preloaded = new Map();
if (typeof document !== 'undefined') {
  const el = document.getElementById('preload');
  if (el) {
    try {
      for (const [path, data] of Object.entries(JSON.parse(el.textContent))) preloaded.set(path, data);
    } catch { /* a damaged embed: the view fetches as usual */ }
    el.remove();
  }
}

export function forgetPreloaded() { preloaded.clear(); }

const FALLBACK = {
  0: "Couldn't reach Parley. Check your connection and try again — your text is kept.",
  401: 'Please sign in first.',
  403: "You're not allowed to do that.",
  404: "That doesn't exist (any more).",
  409: 'That conflicts with a change someone else made.',
  413: 'That is too long.',
  503: 'Parley is briefly unavailable. Try again in a moment.',
};

function friendly(status, message, retryAfter) {
  if (status === 429) {
    const wait = retryAfter ? `${retryAfter} second${retryAfter === 1 ? '' : 's'}` : 'a moment';
    return `You're going a little fast. Please try again in ${wait}.`;
  }
  return message || FALLBACK[status] || `Something went wrong (${status}). Please try again.`;
}

/**
 * Call the API. State-changing requests always send Content-Type: application/json.
 * Resolves to the parsed JSON (null for 204); rejects with ApiError.
 */
export async function api(method, path, body, headers = {}) {
  if (method === 'GET' && preloaded.has(path)) {
    const data = preloaded.get(path);
    preloaded.delete(path);
    return data;
  }
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (STATE_CHANGING.has(method)) init.headers['Content-Type'] = 'application/json';
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', friendly(0));
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    let retryAfter = null;
    if (res.status === 429) {
      const n = parseInt(res.headers.get('Retry-After') || '', 10);
      retryAfter = Number.isFinite(n) ? n : null;
    }
    const error = new ApiError(res.status, err.code || `http_${res.status}`, friendly(res.status, err.message, retryAfter),
      err.field || null, retryAfter);
    error.data = data; // the whole answer: a 409 of a draft carries the current one beside the error
    throw error;
  }
  return data;
}

/** A random UUID; crypto.randomUUID needs a secure context, so fall back to getRandomValues. */
export function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * POST a reply with an Idempotency-Key, retrying transient failures with the SAME key,
 * so that a retry never makes a second post. The caller keeps `key` across manual
 * retries too, and drops it after success or a definitive error.
 */
export async function postReply(threadId, body, parentId, key) {
  const payload = parentId ? { body, parent_id: parentId } : { body };
  const delays = [600, 1500, 3000];
  for (let attempt = 0; ; attempt++) {
    try {
      return await api('POST', `/api/threads/${threadId}/posts`, payload, { 'Idempotency-Key': key });
    } catch (e) {
      if (!(e instanceof ApiError) || !e.retryable || attempt >= delays.length) throw e;
      if (e.status === 0 && typeof navigator !== 'undefined' && navigator.onLine === false) throw e; // queued by the caller
      await new Promise((r) => setTimeout(r, delays[attempt]));
    }
  }
}
