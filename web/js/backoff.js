// Back-off with "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): the wait before
// retry n is uniform in [0, min(cap, base · 2^n)). After a restart every client's first retry lands anywhere
// in the first half second rather than all at once, and later ones spread over ever wider windows, so a
// crowd of sockets returns as a trickle instead of a herd. DOM-free (tests/web/js/backoff.test.mjs).

/** The ceiling of the n-th wait (n from 0): base · 2^n, at most cap. */
export function ceiling(attempt, { base = 500, cap = 30000 } = {}) {
  return Math.min(cap, base * 2 ** Math.max(0, attempt));
}

/** The n-th wait in ms: uniform in [floor, ceiling(n)); `floor` (default 0) keeps a minimum, e.g. after 1008. */
export function fullJitter(attempt, { base = 500, cap = 30000, floor = 0, random = Math.random } = {}) {
  const top = Math.max(floor, ceiling(attempt, { base, cap }));
  return floor + random() * (top - floor);
}
