// Tiny DOM helpers. User text only ever goes in as text nodes; the single
// exception is setPostHtml(), which takes the server's sanitized post `html`.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Create an element: h('a', {class: 'x', href: '/'}, 'text', child…). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendChildren(el, children);
  return el;
}

function setProps(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value') {
      el.value = value;
    } else if (key === 'style') {
      throw new Error('style attributes are forbidden by the CSP; use a class');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * The one place HTML strings enter the page: the server-sanitized `html` of a post.
 * It is parsed in an inert <template> (nothing loads), then images become links
 * (docs/security.md, "Images"): the CSP allows no remote images, and a broken icon
 * helps nobody, so `![a loaf](https://…)` shows as a link "a loaf" to the picture.
 */
export function setPostHtml(target, html) {
  const el = document.createElement('template');
  el.innerHTML = html || '';
  const frag = el.content;
  for (const img of frag.querySelectorAll('img')) {
    if (OUR_IMAGE.test(img.getAttribute('src') || '')) inlineImage(img); else img.replaceWith(imageLink(img));
  }
  for (const a of frag.querySelectorAll('a[title^="Image: "]')) {  // an image from elsewhere, as the server links it
    a.classList.add('img-link');
    a.dataset.testid = 'image-link';
    a.prepend(icon('image', 'icon icon-sm'), h('span', { class: 'sr-only' }, 'Image: '));
  }
  for (const a of frag.querySelectorAll('a[href]')) {
    // Belt and braces: external links open safely even if rel was dropped.
    const rel = new Set((a.getAttribute('rel') || '').split(/\s+/).filter(Boolean));
    for (const r of ['nofollow', 'ugc', 'noopener']) rel.add(r);
    a.setAttribute('rel', [...rel].join(' '));
  }
  target.replaceChildren(frag);
}

// One of our uploads (CONTRACT "Pictures"): the server gave it width, height and loading="lazy".
const OUR_IMAGE = /^\/uploads\/[0-9a-f]{64}\.(png|jpg|gif|webp)$/;

/** Our upload shown inline, put in a button that opens it large in a dialog (Escape or × closes it). */
function inlineImage(img) {
  const alt = (img.getAttribute('alt') || '').trim();
  img.setAttribute('loading', 'lazy');
  img.setAttribute('decoding', 'async');
  const button = h('button', { type: 'button', class: 'post-image', 'data-testid': 'post-image',
    'aria-label': alt ? `Enlarge image: ${alt}` : 'Enlarge image' });
  img.replaceWith(button);
  button.append(img);
  button.addEventListener('click', () => enlarge(img.getAttribute('src'), alt));
}

function enlarge(src, alt) {
  const close = h('button', { type: 'button', class: 'btn btn-quiet dialog-close', 'aria-label': 'Close' }, '×');
  const dlg = h('dialog', { class: 'dialog dialog-image', 'aria-label': alt || 'Image', 'data-testid': 'image-dialog' },
    h('div', { class: 'dialog-head' }, h('h2', { class: 'sr-only' }, alt || 'Image'), close),
    h('img', { src, alt, class: 'enlarged' }));
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  close.focus();
}

/** A post's image as a link with its alt text (plain text when the address is not http(s)). */
function imageLink(img) {
  const alt = (img.getAttribute('alt') || '').trim();
  const label = alt || 'image';
  let url = null;
  // No address (the server drops data: and other unsafe ones): the alt text alone, never a link to this page.
  const src = img.getAttribute('src');
  try { url = src ? new URL(src, location.href) : null; } catch { url = null; }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    return h('span', { class: 'img-link', 'data-testid': 'image-link' }, icon('image', 'icon icon-sm'), label);
  }
  return h('a', { class: 'img-link', href: url.href, rel: 'nofollow ugc noopener noreferrer',
    title: img.getAttribute('title') || `Image: ${url.href}`, 'data-testid': 'image-link' },
  icon('image', 'icon icon-sm'), h('span', { class: 'sr-only' }, 'Image: '), label);
}

const ICONS = {
  up: 'M12 5l7 9h-4.5v5h-5v-5H5z',
  down: 'M12 19l-7-9h4.5V5h5v5H19z',
  chat: 'M4 4h16v11H8l-4 4z',
  eye: 'M12 5C6.5 5 2.7 9.6 2 12c.7 2.4 4.5 7 10 7s9.3-4.6 10-7c-.7-2.4-4.5-7-10-7zm0 11a4 4 0 110-8 4 4 0 010 8z',
  clock: 'M12 3a9 9 0 100 18 9 9 0 000-18zm1 9.6l3.2 1.9-.8 1.3L11 13V7h2z',
  lock: 'M7 10V8a5 5 0 0110 0v2h1v10H6V10zm2 0h6V8a3 3 0 00-6 0z',
  arrowDown: 'M12 20l-7-7 1.4-1.4 4.6 4.6V4h2v12.2l4.6-4.6L19 13z',
  folder: 'M3 6h7l2 2h9v11H3z',
  image: 'M4 5h16v14H4zm2 2v8.6l3.5-3.6 2.5 2.5 3.5-4.5L18 14V7z',
  bell: 'M12 22a2.5 2.5 0 002.45-2h-4.9A2.5 2.5 0 0012 22zm7-6V11a7 7 0 00-5.5-6.84V3a1.5 1.5 0 00-3 0v1.16A7 7 0 005 11v5l-2 2v1h18v-1z',
};

/** An inline SVG icon (decorative: hidden from assistive tech). */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.append(path);
  return svg;
}
