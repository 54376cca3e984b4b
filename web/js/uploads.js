// Pictures in the composers (CONTRACT "Pictures"): paste, drop or pick an image; it is uploaded with a
// progress bar (POST /api/uploads, multipart: XMLHttpRequest, which reports upload progress), a placeholder
// stands in the text meanwhile, and the Markdown `![name](/uploads/…)` replaces it when the upload is done.
// A failed upload keeps its row with the reason and Retry / Remove.

import { ApiError } from './api.js';
import { h } from './dom.js';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

/** POST one file to /api/uploads; resolves to the Upload, rejects with ApiError. onProgress(0..1). */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/uploads');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener('load', () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300 && data && data.upload) { resolve(data.upload); return; }
      const err = (data && data.error) || {};
      const message = xhr.status === 413 ? 'That image is too large.'
        : xhr.status === 429 ? "You're uploading a lot. Please try again later."
          : err.message || `The upload failed (${xhr.status}).`;
      reject(new ApiError(xhr.status, err.code || `http_${xhr.status}`, message, err.field || null));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', "Couldn't reach Parley. Try again.")));
    const form = new FormData();
    form.append('file', file, file.name || 'image');
    xhr.send(form);
  });
}

let counter = 0;

/** The name an image gets as its alt text: the file's name without its extension, or "image". */
function altOf(file) {
  const base = (file.name || '').replace(/\.[A-Za-z0-9]+$/, '').replace(/[[\]\\]/g, '').trim();
  return !base || base === 'image' ? 'image' : base.slice(0, 100);
}

/**
 * Image uploads into the textarea `ta`: paste and drop on it, and pick() (a file chooser). Returns
 * {list, pick}: `list` shows each upload's progress (place it near the box), `pick` opens the chooser.
 * changed(ta) is called after the text changes (drafts, previews).
 */
export function imageUploads(ta, changed) {
  const list = h('ul', { class: 'md-uploads', 'data-testid': 'md-uploads', 'aria-live': 'polite' });
  const chooser = h('input', { type: 'file', accept: IMAGE_TYPES.join(','), multiple: true, hidden: true,
    tabindex: '-1', 'aria-hidden': 'true', 'data-testid': 'md-image-file' });

  const insert = (text) => {
    const { selectionStart: s, selectionEnd: e } = ta;
    const before = ta.value.slice(0, s);
    const pad = before && !before.endsWith('\n') ? '\n' : '';
    ta.setRangeText(pad + text + '\n', s, e, 'end');
  };

  const attach = (file) => {
    const name = file.name || 'image';
    const mark = `![Uploading ${altOf(file)} #${++counter}…]()`;
    const progress = h('progress', { max: '1', value: '0', 'aria-label': `Uploading ${name}` });
    const status = h('span', { class: 'md-upload-status' }, 'Uploading…');
    const retry = h('button', { type: 'button', class: 'btn btn-sm', hidden: true, 'data-testid': 'upload-retry' },
      'Retry');
    const remove = h('button', { type: 'button', class: 'btn btn-sm btn-quiet', hidden: true }, 'Remove');
    const item = h('li', { class: 'md-upload', 'data-testid': 'md-upload' },
      h('span', { class: 'md-upload-name', dir: 'auto' }, name), progress, status, retry, remove);
    list.append(item);
    if (!IMAGE_TYPES.includes(file.type)) {
      progress.hidden = true;
      status.textContent = 'Only PNG, JPEG, GIF or WebP images can be added.';
      item.classList.add('is-error');
      remove.hidden = false;
      remove.addEventListener('click', () => item.remove());
      return;
    }
    insert(mark);
    changed(ta);
    const run = async () => {
      retry.hidden = true;
      remove.hidden = true;
      item.classList.remove('is-error');
      progress.hidden = false;
      progress.value = 0;
      status.textContent = 'Uploading…';
      try {
        const up = await uploadFile(file, (f) => { progress.value = f; });
        const md = `![${altOf(file)}](${up.url})`;
        if (ta.value.includes(mark)) ta.value = ta.value.replace(mark, md); else insert(md);
        changed(ta);
        item.remove();
      } catch (err) {
        progress.hidden = true;
        status.textContent = err.message;
        item.classList.add('is-error');
        retry.hidden = err.status === 413 || err.status === 422;
        remove.hidden = false;
      }
    };
    retry.addEventListener('click', run);
    remove.addEventListener('click', () => {
      if (ta.value.includes(mark)) { ta.value = ta.value.replace(mark, ''); changed(ta); }
      item.remove();
    });
    run();
  };

  const images = (files) => [...(files || [])].filter((f) => f.type.startsWith('image/'));
  ta.addEventListener('paste', (e) => {
    const files = images(e.clipboardData && e.clipboardData.files);
    if (!files.length) return;
    e.preventDefault();
    files.forEach(attach);
  });
  ta.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
  });
  ta.addEventListener('drop', (e) => {
    const files = images(e.dataTransfer && e.dataTransfer.files);
    if (!files.length) return;
    e.preventDefault();
    files.forEach(attach);
  });
  chooser.addEventListener('change', () => {
    [...(chooser.files || [])].forEach(attach);
    chooser.value = '';
  });
  return { list: h('div', { class: 'md-uploads-wrap' }, chooser, list), pick: () => chooser.click(), attach };
}
