// SVG charts: a histogram of time buckets and a horizontal bar chart. No library.
import { t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function secs(v) {
  return v >= 3600 ? `${v / 3600}${t('time.h')}` : v >= 120 ? `${v / 60}${t('time.min')}` : `${v}${t('reports.seconds')}`;
}
function bucketLabel(b, prev) {
  if (b.le_s === null || b.le_s === undefined) return `>${secs(prev ?? 0)}`;
  return `≤${secs(b.le_s)}`;
}

/** Histogram of [{le_s, count}]; buckets above `targetS` are drawn in the warning colour. */
export function histogram(buckets = [], { targetS, width = 520, height = 200, testid } = {}) {
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', 'data-testid': testid || 'histogram' });
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const left = 36, bottom = 34, top = 12;
  const bw = (width - left - 8) / Math.max(1, buckets.length);
  svg.append(s('line', { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: 'axis' }));
  svg.append(s('text', { x: 4, y: top + 8, class: 'tick' }, String(max)));
  let prev = null;
  buckets.forEach((b, i) => {
    const hgt = ((height - bottom - top) * b.count) / max;
    const x = left + i * bw + 2;
    const over = targetS !== undefined && (b.le_s === null || b.le_s > targetS);
    svg.append(s('rect', { x, y: height - bottom - hgt, width: Math.max(1, bw - 4), height: hgt, class: over ? 'bar over' : 'bar' }));
    if (b.count) svg.append(s('text', { x: x + bw / 2 - 2, y: height - bottom - hgt - 3, 'text-anchor': 'middle', class: 'val' }, String(b.count)));
    svg.append(s('text', { x: x + bw / 2 - 2, y: height - bottom + 14, 'text-anchor': 'middle', class: 'tick' }, bucketLabel(b, prev)));
    prev = b.le_s;
  });
  return svg;
}

/** Horizontal bars of [{label, value}] with value in 0..1 shown as percent. */
export function bars(rows = [], { width = 520, testid } = {}) {
  const rowH = 26, height = Math.max(rowH, rows.length * rowH) + 8;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', 'data-testid': testid || 'bars' });
  const left = 160;
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const w = (width - left - 70) * Math.min(1, Math.max(0, r.value || 0));
    svg.append(s('text', { x: 4, y: y + 16, class: 'tick' }, r.label));
    svg.append(s('rect', { x: left, y: y + 4, width: Math.max(1, w), height: rowH - 8, class: 'bar over' }));
    svg.append(s('text', { x: left + w + 6, y: y + 16, class: 'val' }, `${((r.value || 0) * 100).toFixed(1)}%${r.note ? ` (${r.note})` : ''}`));
  });
  return svg;
}
