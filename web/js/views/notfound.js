// Any page URL the app does not know (the server answers 404 with the page).

import { h } from '../dom.js';
import { errorPanel } from '../ui.js';

export function renderNotFound(main, params, ctx) {
  ctx.setTitle('Page not found');
  main.append(errorPanel('Page not found', "We couldn't find that page. It may have moved or been deleted.",
    h('a', { class: 'btn btn-primary', href: '/' }, 'Back to the forum')));
  ctx.ready();
}
