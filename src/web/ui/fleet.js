// The fleet page: devices by state per grid (with the grids nobody covers), then every device in a
// paged, searchable table with its elder's and grid's names.
import { t, tOr } from './i18n.js';
import { get, showError, h, clock } from './api.js';
import { pagedTable } from './admin.js';

export async function renderFleet(v, ctx) {
  v.replaceChildren(h('h1', { i18n: 'fleet.title' }));
  let f;
  try { f = await get('/fleet'); } catch (e) { showError(v, e); return; }
  if (!location.hash.startsWith('#/fleet')) return;
  const uncovered = f.grids.filter((g) => g.uncovered);
  if (uncovered.length) {
    v.append(h('div.alarm-banner.static', { testid: 'uncovered-alarm' }, t('fleet.alarm'), ' ', uncovered.map((g) => g.name || g.code).join('、')));
    ctx.beep();
  }
  const states = ['online', 'silent', 'low_battery', 'tamper', 'total'];
  v.append(h('section.panel', { testid: 'fleet-grids' }, h('h2', { i18n: 'fleet.grids' }),
    h('div.table-wrap', h('table', h('thead', h('tr', h('th', { i18n: 'col.grid' }), states.map((s) => h('th', { i18n: `fleet.${s}` })), h('th', { i18n: 'fleet.on_duty' }))),
      h('tbody', f.grids.map((g) => h('tr', { testid: `fleet-grid-${g.code}` }, h('td', g.name ? `${g.name} (${g.code})` : t('unknown')),
        states.map((s) => h('td', String(g.devices?.[s] ?? 0))),
        h('td', { class: g.uncovered ? 'uncovered' : '' }, `${g.responders_on_duty} `, g.uncovered ? t('fleet.uncovered') : ''))))))));
  v.append(h('section.panel', h('h2', { i18n: 'fleet.devices' }),
    pagedTable({ path: '/tables/devices', testid: 'fleet-devices', searchKey: 'fleet.search', cols: ['col.protocol', 'col.ident', 'col.model', 'col.elder_name', 'col.grid', 'col.state', 'col.battery', 'col.last_seen'],
      row: ({ device: d, elder_name, grid_name }) => h('tr', { testid: `fleet-device-${d.id}` }, h('td', d.protocol), h('td', d.ident), h('td', d.model), h('td', elder_name || '—'),
        h('td', grid_name || '—'), h('td', h(`span.badge.${d.state}`, tOr(`fleet.${d.state}`, d.state))), h('td', d.battery_pct !== null ? `${d.battery_pct}%` : '—'), h('td', clock(d.last_seen))) })));
}
