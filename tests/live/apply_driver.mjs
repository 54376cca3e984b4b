// Runs web/js/apply.js — the page's own file, unchanged — over histories sent as JSON lines on
// stdin: {"state": <GET /api/threads/{id} body>, "events": [<event frame>…]} → one line on stdout,
// {"state": <the state after applyEvent for each event in order>} or {"error": "…"}.
// One process serves a whole property-test run (tests/live/test_live_property.py), not one per example.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

// apply.js is an ES module served to the browser as-is, with no package.json around it to mark it as one;
// importing its exact bytes from a data: URL runs it as a module in any Node without flags.
const source = readFileSync(new URL('../../web/js/apply.js', import.meta.url), 'utf8');
const { applyEvent } = await import('data:text/javascript;base64,' + Buffer.from(source).toString('base64'));

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  let out;
  try {
    const { state, events } = JSON.parse(line);
    let s = state;
    for (const event of events) s = applyEvent(s, event).state;
    out = { state: s };
  } catch (err) {
    out = { error: String(err && err.stack || err) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
