// An offline SVG map: lat/lon projected equirectangularly around the data's bounding box, with grid
// outlines, the elder and responders (offered vs accepted colours) and labels. No tile server.
import { t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const COLORS = { elder: '#d62828', offered: '#f4a261', accepted: '#2a9d8f', responder: '#577590' };

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * Draws into `container`: `areas` ([{code,name,boundary:[[lat,lon]...]}]) and `points`
 * ([{lat,lon,kind,label,testid}]). Returns the <svg>.
 */
export function renderMap(container, { areas = [], points = [], width = 640, height = 420 }) {
  const pts = points.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  const all = [...pts.map((p) => [p.lat, p.lon])];
  for (const a of areas) for (const c of a.boundary || []) all.push(c);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'map', role: 'img', 'data-testid': 'map' });
  svg.append(s('rect', { x: 0, y: 0, width, height, class: 'map-bg' }));
  if (!all.length) {
    svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'map-empty' }, t('map.empty')));
    container.replaceChildren(svg);
    return svg;
  }
  let [minLat, maxLat, minLon, maxLon] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [la, lo] of all) {
    minLat = Math.min(minLat, la); maxLat = Math.max(maxLat, la);
    minLon = Math.min(minLon, lo); maxLon = Math.max(maxLon, lo);
  }
  const pad = 0.002;
  minLat -= pad; maxLat += pad; minLon -= pad; maxLon += pad;
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180); // metres per degree of lon vs lat
  const spanX = (maxLon - minLon) * k, spanY = maxLat - minLat;
  const margin = 24;
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
  const ox = (width - spanX * scale) / 2, oy = (height - spanY * scale) / 2;
  const xy = (la, lo) => [ox + (lo - minLon) * k * scale, oy + (maxLat - la) * scale];

  // A 100 m graticule for scale.
  const g = s('g', { class: 'map-grid' });
  const step = 0.001;
  const lat0 = maxLat - (height - oy) / scale, lat1 = maxLat + oy / scale;
  const lon0 = minLon - ox / (k * scale), lon1 = minLon + (width - ox) / (k * scale);
  for (let la = Math.ceil(lat0 / step) * step; la < lat1; la += step) {
    const [, y] = xy(la, minLon);
    g.append(s('line', { x1: 0, x2: width, y1: y, y2: y }));
  }
  for (let lo = Math.ceil(lon0 / step) * step; lo < lon1; lo += step) {
    const [x] = xy(minLat, lo);
    g.append(s('line', { y1: 0, y2: height, x1: x, x2: x }));
  }
  svg.append(g);

  for (const a of areas) {
    if (!a.boundary?.length) continue;
    const d = a.boundary.map(([la, lo]) => xy(la, lo).map((v) => v.toFixed(1)).join(',')).join(' ');
    svg.append(s('polygon', { points: d, class: 'map-area', 'data-testid': `map-area-${a.code}` }));
    const proj = a.boundary.map(([la, lo]) => xy(la, lo));
    const x = proj.reduce((m, p) => m + p[0], 0) / proj.length;
    const ys = proj.map((p) => p[1]);
    const y = Math.min(...ys) + (Math.max(...ys) - Math.min(...ys)) * 0.12 + 14;
    svg.append(s('text', { x, y, 'text-anchor': 'middle', class: 'map-area-label' }, a.name || a.code));
  }
  for (const p of pts) {
    const [x, y] = xy(p.lat, p.lon);
    const grp = s('g', { class: `map-point ${p.kind}`, 'data-testid': p.testid || `map-${p.kind}` });
    if (p.kind === 'elder') {
      grp.append(s('rect', { x: x - 7, y: y - 7, width: 14, height: 14, fill: COLORS.elder, stroke: '#fff', 'stroke-width': 2 }));
    } else {
      grp.append(s('circle', { cx: x, cy: y, r: 7, fill: COLORS[p.kind] || COLORS.responder, stroke: '#fff', 'stroke-width': 2 }));
    }
    if (p.label) grp.append(s('text', { x: x + 10, y: y + 4, class: 'map-label' }, p.label));
    svg.append(grp);
  }
  // Legend.
  const legend = s('g', { class: 'map-legend' });
  ['elder', 'offered', 'accepted', 'responder'].forEach((kind, i) => {
    const y = height - 14 - i * 16;
    legend.append(s('rect', { x: 8, y: y - 9, width: 10, height: 10, fill: COLORS[kind] }));
    legend.append(s('text', { x: 24, y }, t(`map.${kind}`)));
  });
  svg.append(legend);
  container.replaceChildren(svg);
  return svg;
}
