// Small SVG charts for the reports page: histograms with an optional target line, and bars.

import { esc } from './api.js';

/** A histogram of `buckets` ({le_s, count}); `target` draws a vertical line at that bound. */
export function histogram(buckets, { target = null, unit = 's', testid = 'chart' } = {}) {
  const w = 460, h = 200, left = 36, bottom = 28, top = 12;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = (w - left - 10) / Math.max(1, buckets.length);
  let svg = `<svg viewBox="0 0 ${w} ${h}" width="100%" class="chart" data-testid="${esc(testid)}">`;
  svg += `<line x1="${left}" y1="${h - bottom}" x2="${w - 5}" y2="${h - bottom}" class="axis"/>`;
  svg += `<text x="${left - 6}" y="${top + 8}" class="tick" text-anchor="end">${max}</text>`;
  buckets.forEach((b, i) => {
    const bh = (h - bottom - top) * b.count / max;
    const bx = left + i * bw + 3;
    const over = target != null && (b.le_s == null || b.le_s > target);
    svg += `<rect x="${bx.toFixed(1)}" y="${(h - bottom - bh).toFixed(1)}" width="${(bw - 6).toFixed(1)}" height="${bh.toFixed(1)}" class="bar${over ? ' bar-over' : ''}"/>`;
    if (b.count) svg += `<text x="${(bx + bw / 2 - 3).toFixed(1)}" y="${(h - bottom - bh - 3).toFixed(1)}" class="tick" text-anchor="middle">${b.count}</text>`;
    svg += `<text x="${(bx + bw / 2 - 3).toFixed(1)}" y="${h - bottom + 14}" class="tick" text-anchor="middle">${b.le_s == null ? '>' : '≤' + b.le_s}${unit}</text>`;
    if (target != null && b.le_s === target) {
      const tx = bx + bw - 3;
      svg += `<line x1="${tx.toFixed(1)}" y1="${top}" x2="${tx.toFixed(1)}" y2="${h - bottom}" class="target"/>`;
    }
  });
  return svg + '</svg>';
}

/** Horizontal bars of `rows` ({label, value in 0..1, text}). */
export function bars(rows, { testid = 'bars' } = {}) {
  const w = 460, rowH = 24, h = Math.max(rowH, rows.length * rowH) + 8, left = 170;
  let svg = `<svg viewBox="0 0 ${w} ${h}" width="100%" class="chart" data-testid="${esc(testid)}">`;
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const bw = (w - left - 60) * Math.max(0, Math.min(1, r.value));
    svg += `<text x="${left - 6}" y="${y + 15}" class="tick" text-anchor="end">${esc(r.label)}</text>`;
    svg += `<rect x="${left}" y="${y + 3}" width="${bw.toFixed(1)}" height="${rowH - 8}" class="bar bar-over"/>`;
    svg += `<text x="${(left + bw + 6).toFixed(1)}" y="${y + 15}" class="tick">${esc(r.text)}</text>`;
  });
  return svg + '</svg>';
}
