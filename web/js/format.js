// Dates in the reader's own time zone, "February 23, 2018 9:12 AM MST" style.

const full = new Intl.DateTimeFormat('en-US', {
  year: 'numeric', month: 'long', day: 'numeric',
  hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
});
const dateOnly = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'long', day: 'numeric' });
const relativeFmt = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

function parse(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "February 23, 2018 9:12 AM MST" (built from parts: newer ICU inserts " at "). */
export function formatDateTime(iso) {
  const d = parse(iso);
  if (!d) return '';
  const p = {};
  for (const part of full.formatToParts(d)) if (part.type !== 'literal') p[part.type] = part.value;
  return `${p.month} ${p.day}, ${p.year} ${p.hour}:${p.minute} ${p.dayPeriod || ''} ${p.timeZoneName || ''}`
    .replace(/\s+/g, ' ').trim();
}

/** "February 23, 2018". */
export function formatDate(iso) {
  const d = parse(iso);
  return d ? dateOnly.format(d) : '';
}

/** "just now", "5 minutes ago", "yesterday", then a date. */
export function formatRelative(iso, now = Date.now()) {
  const d = parse(iso);
  if (!d) return '';
  const secs = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relativeFmt.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return relativeFmt.format(Math.round(secs / 3600), 'hour');
  if (abs < 7 * 86400) return relativeFmt.format(Math.round(secs / 86400), 'day');
  return formatDate(d);
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}
