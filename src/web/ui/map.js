// Maps with Leaflet (vendored, loaded by console.html as the global `L`): raster tiles from the
// tile server named in `[console.map] tile_url`, or, without one or when its tiles fail to load,
// the grid outlines alone (an offline map that still zooms and pans). Elders are drawn at their
// registered homes and clustered; the incident page's map shows the elder and the responders.
// The container's data-basemap ("tiles" | "outline"), data-zoom and data-center say what it shows.
import { t } from './i18n.js';
import { get, h, showError } from './api.js';

const COLORS = { elder: '#d62828', incident: '#d62828', offered: '#f4a261', accepted: '#2a9d8f', responder: '#577590', home: '#6c757d' };

function icon(kind, testid) {
  return L.divIcon({
    className: `pt pt-${kind}`,
    html: `<span data-testid="${testid || `map-${kind}`}" style="background:${COLORS[kind] || COLORS.responder}"></span>`,
    iconSize: kind === 'elder' || kind === 'incident' ? [18, 18] : [14, 14],
  });
}

/** A Leaflet map in `box` with the configured base layer; falls back to outlines on tile errors. */
function baseMap(box, mapCfg) {
  box.replaceChildren();
  const map = L.map(box, { zoomControl: true, attributionControl: true, maxZoom: mapCfg?.max_zoom || 18, minZoom: 3 });
  const note = h('div.map-note', { testid: 'map-basemap-note' });
  box.append(note);
  const outline = () => {
    box.dataset.basemap = 'outline';
    note.textContent = t('map.offline');
    note.dataset.i18n = 'map.offline';
  };
  if (mapCfg?.tile_url) {
    box.dataset.basemap = 'tiles';
    let loaded = 0, failed = 0;
    const layer = L.tileLayer(mapCfg.tile_url, { maxZoom: mapCfg.max_zoom || 18, attribution: mapCfg.attribution || '' });
    layer.on('tileload', () => { loaded += 1; });
    layer.on('tileerror', () => {
      failed += 1;
      if (!loaded && failed >= 4 && map.hasLayer(layer)) { map.removeLayer(layer); outline(); }
    });
    layer.addTo(map);
  } else {
    outline();
  }
  const track = () => {
    const c = map.getCenter();
    box.dataset.zoom = String(map.getZoom());
    box.dataset.center = `${c.lat.toFixed(5)},${c.lng.toFixed(5)}`;
  };
  map.on('moveend zoomend', track);
  return { map, track };
}

const polygons = new WeakMap();

function drawAreas(map, areas, bounds) {
  const drawn = [];
  for (const a of areas) {
    if (!a.boundary?.length) continue;
    const poly = L.polygon(a.boundary, { className: 'map-area', color: '#2a9d8f', weight: 2, dashArray: '6 3', fillOpacity: 0.08 }).addTo(map);
    poly.bindTooltip(a.name || a.code, { sticky: true });
    drawn.push([poly, a.code]);
    for (const c of a.boundary) bounds.push(c);
  }
  polygons.set(map, drawn);
}

function fit(map, bounds, track) {
  if (bounds.length) map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
  else map.setView([27.11, 114.98], 13);
  // Paths exist once the map has a view.
  for (const [poly, code] of polygons.get(map) || []) poly.getElement()?.setAttribute('data-testid', `map-area-${code}`);
  track();
}

function legend(kinds) {
  return h('div.map-legend', kinds.map((k) => h('span', h('i', { style: `background:${COLORS[k]}` }), ' ', t(`map.${k}`))));
}

/** The incident page's map: the elder (at the reported fix, else the registered home) and responders. */
export function incidentMap(box, mapCfg, { areas = [], points = [] }) {
  const wrap = h('div.leaflet-box');
  box.replaceChildren(wrap, legend(['elder', 'offered', 'accepted']));
  const { map, track } = baseMap(wrap, mapCfg);
  const bounds = [];
  drawAreas(map, areas, bounds);
  for (const p of points.filter((x) => Number.isFinite(x.lat) && Number.isFinite(x.lon))) {
    L.marker([p.lat, p.lon], { icon: icon(p.kind, p.testid), title: p.label }).bindTooltip(p.label || '').addTo(map);
    bounds.push([p.lat, p.lon]);
  }
  fit(map, bounds, track);
  return map;
}

/** The city map: grid outlines, every elder at home (clustered), open incidents, responders on duty. */
export async function renderCityMap(v, ctx) {
  v.replaceChildren(h('h1', { i18n: 'map.title' }));
  let areas, points;
  try { [areas, points] = await Promise.all([get('/areas'), get('/map/points')]); } catch (e) { showError(v, e); return; }
  if (!location.hash.startsWith('#/map')) return;
  const wrap = h('div.leaflet-box.city', { testid: 'city-map' });
  v.append(h('section.panel', wrap, legend(['incident', 'home', 'responder'])));
  const { map, track } = baseMap(wrap, ctx.config.map);
  const bounds = [];
  drawAreas(map, areas.filter((a) => a.level === 'grid'), bounds);
  const homes = new Map(points.elders.map((e) => [e.id, e]));
  const cluster = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 48 });
  for (const e of points.elders) {
    cluster.addLayer(L.marker([e.lat, e.lon], { icon: icon('home', `map-home-${e.id}`), title: e.name }).bindTooltip(e.name));
    bounds.push([e.lat, e.lon]);
  }
  map.addLayer(cluster);
  for (const r of ctx.rows.filter((x) => x.incident.status !== 'closed')) {
    const at = r.incident.location || homes.get(r.incident.elder_id);
    if (!at) continue;
    L.marker([at.lat, at.lon], { icon: icon('incident', `map-incident-${r.incident.id}`), zIndexOffset: 1000, title: r.elder_name || '' })
      .bindTooltip(`#${r.incident.id} ${r.elder_name || ''}`).on('click', () => { location.hash = `#/incident/${r.incident.id}`; }).addTo(map);
    bounds.push([at.lat, at.lon]);
  }
  for (const r of points.responders) {
    L.marker([r.lat, r.lon], { icon: icon('responder', `map-responder-${r.id}`), title: r.name }).bindTooltip(r.name).addTo(map);
  }
  fit(map, bounds, track);
}
