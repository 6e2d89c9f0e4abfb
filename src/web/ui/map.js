// An SVG map that needs no tile server: grid outlines and points projected around their bounding
// box (equirectangular, corrected for latitude), so it works on a network without the internet.

import { esc } from './api.js';

/**
 * Draws `areas` (each with a `boundary` of [lat, lon]) and `points` ({lat, lon, label, cls}) into
 * an SVG string of the given size.
 */
export function drawMap({ areas = [], points = [], width = 640, height = 420 }) {
  const coords = [];
  for (const a of areas) for (const [lat, lon] of a.boundary || []) coords.push([lat, lon]);
  for (const p of points) if (p.lat != null && p.lon != null) coords.push([p.lat, p.lon]);
  if (coords.length === 0) return `<svg class="map" width="${width}" height="${height}" data-testid="map"></svg>`;
  let [minLat, maxLat, minLon, maxLon] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [lat, lon] of coords) {
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
  }
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const spanX = Math.max((maxLon - minLon) * k, 0.002), spanY = Math.max(maxLat - minLat, 0.002);
  const pad = 30, scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY);
  const cx = (minLon + maxLon) / 2, cy = (minLat + maxLat) / 2;
  const x = (lon) => width / 2 + (lon - cx) * k * scale;
  const y = (lat) => height / 2 - (lat - cy) * scale;
  let svg = `<svg class="map" viewBox="0 0 ${width} ${height}" width="100%" data-testid="map" role="img">`;
  svg += `<rect width="${width}" height="${height}" class="map-bg"/>`;
  for (const a of areas) {
    if (!a.boundary?.length) continue;
    const pts = a.boundary.map(([lat, lon]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join(' ');
    svg += `<polygon points="${pts}" class="map-area${a.highlight ? ' map-area-hl' : ''}"/>`;
    // The name at the top of the outline, where it does not cover the points inside.
    const top = Math.max(...a.boundary.map(([lat]) => lat));
    const lo = a.boundary.reduce((s, [, q]) => s + q, 0) / a.boundary.length;
    svg += `<text x="${x(lo).toFixed(1)}" y="${(y(top) + 16).toFixed(1)}" class="map-area-label">${esc(a.name)}</text>`;
  }
  // A 500 m scale bar.
  const bar = 500 / 111320 * scale;
  svg += `<line x1="${pad}" y1="${height - 12}" x2="${(pad + bar).toFixed(1)}" y2="${height - 12}" class="map-scale"/><text x="${pad}" y="${height - 16}" class="map-scale-label">500 m</text>`;
  for (const p of points) {
    if (p.lat == null || p.lon == null) continue;
    svg += `<g class="map-point ${p.cls || ''}" data-testid="${esc(p.testid || 'map-point')}">` +
      `<circle cx="${x(p.lon).toFixed(1)}" cy="${y(p.lat).toFixed(1)}" r="${p.r || 7}"/>` +
      `<text x="${(x(p.lon) + 10).toFixed(1)}" y="${(y(p.lat) + 4).toFixed(1)}">${esc(p.label)}</text></g>`;
  }
  return svg + '</svg>';
}
