// A word-level diff between two texts (the revisions of a post), with no DOM.
// Words and the whitespace between them are tokens; the longest common
// subsequence of tokens is kept, the rest is deleted or inserted. O(n·m) time
// and memory, so very long texts fall back to "all deleted, all inserted".

const MAX_CELLS = 4_000_000; // ~16 MB of Uint32 at most: a 2,000 × 2,000-token pair

/** Split into words and whitespace runs: "a  b" → ["a", "  ", "b"]. */
export function tokenize(text) {
  return (text || '').match(/\s+|[^\s]+/g) || [];
}

/**
 * Diff `before` and `after` word by word.
 * Returns [{op: '=' | '-' | '+', text}], adjacent parts of one op merged.
 */
export function wordDiff(before, after) {
  const a = tokenize(before);
  const b = tokenize(after);
  // Common prefix and suffix first: edits are usually small.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const out = [];
  const push = (op, text) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.op === op) last.text += text; else out.push({ op, text });
  };
  push('=', a.slice(0, start).join(''));
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  const n = x.length;
  const m = y.length;
  if (n * m > MAX_CELLS) {
    push('-', x.join(''));
    push('+', y.join(''));
  } else {
    // lcs[i][j] = length of the LCS of x[i:] and y[j:], in one flat array.
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { push('=', x[i]); i++; j++; } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
        push('-', x[i]); i++;
      } else { push('+', y[j]); j++; }
    }
    while (i < n) push('-', x[i++]);
    while (j < m) push('+', y[j++]);
  }
  push('=', a.slice(endA).join(''));
  return out;
}
