// /developers: the API in a readable page, from the server's own OpenAPI document (GET /api/openapi.json):
// each endpoint by subject with its method, path, who may call it, its parameters, its body and its answers.
// The raw document stays one link away (for generated clients).

import { api } from '../api.js';
import { h } from '../dom.js';
import { failedPanel } from '../failed.js';
import { loading } from '../ui.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function schemaName(schema) {
  if (!schema) return null;
  if (schema.$ref) return schema.$ref.split('/').pop();
  if (schema.type === 'array' && schema.items) return `[${schemaName(schema.items) || 'item'}…]`;
  return schema.type || null;
}

function operation(path, method, op) {
  const params = (op.parameters || []).map((p) => h('li', null, h('code', null, p.name),
    ` (${p.in}${p.required ? ', required' : ''})`, p.description ? ` — ${p.description}` : ''));
  const body = op.requestBody && op.requestBody.content
    ? Object.entries(op.requestBody.content).map(([type, c]) => h('li', null, h('code', null, type), ' ',
      schemaName(c.schema) ? h('code', null, schemaName(c.schema)) : null))
    : [];
  const answers = Object.entries(op.responses || {}).map(([code, r]) => h('li', null, h('strong', null, code), ' ',
    r.description || ''));
  const signedIn = op.security && op.security.length > 0;
  return h('li', { class: 'api-op', 'data-testid': 'api-op' },
    h('details', null,
      h('summary', null, h('span', { class: ['api-method', `api-${method}`] }, method.toUpperCase()), ' ',
        h('code', { class: 'api-path' }, path), ' ', h('span', { class: 'api-summary' }, op.summary || '')),
      h('div', { class: 'api-detail' },
        op.description ? h('p', null, op.description) : null,
        h('p', { class: 'muted' }, signedIn ? 'Needs a signed-in session (or an API key).' : 'Anyone may call it.'),
        params.length ? [h('h4', null, 'Parameters'), h('ul', null, params)] : null,
        body.length ? [h('h4', null, 'Body'), h('ul', null, body)] : null,
        answers.length ? [h('h4', null, 'Answers'), h('ul', null, answers)] : null)));
}

export function renderDevelopers(main, params, ctx) {
  let alive = true;
  ctx.setTitle('The Parley API');
  main.append(loading());
  api('GET', '/api/openapi.json').then((doc) => {
    if (!alive) return;
    const groups = new Map();
    for (const [path, ops] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = ops[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!groups.has(tag)) groups.set(tag, []);
        groups.get(tag).push(operation(path, method, op));
      }
    }
    const sections = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([tag, items]) =>
      h('section', { class: 'api-group', 'aria-labelledby': `api-${tag}` },
        h('h2', { id: `api-${tag}` }, tag[0].toUpperCase() + tag.slice(1)), h('ul', { class: 'api-ops' }, items)));
    main.replaceChildren(h('div', { class: 'page-developers card' },
      h('h1', null, 'The Parley API'),
      h('p', null, (doc.info && doc.info.description) || ''),
      h('p', null, 'Every answer is JSON. The machine-readable description, for generated clients: ',
        h('a', { href: '/api/openapi.json', 'data-testid': 'openapi-raw' }, 'openapi.json'), '.'),
      sections));
    ctx.ready();
  }).catch((e) => {
    if (!alive) return;
    ctx.setTitle('Could not load the API description');
    main.replaceChildren(failedPanel(ctx, 'Could not load the API description', e));
    ctx.ready();
  });
  return () => { alive = false; };
}
