// The live queue: counts per stage, filters (stage, category, alarm kind, handler), search, and one
// row per open incident with its kind, elder, address, grid, stage, handler, responder, age and
// SLA clocks. Columns are a list (COLUMNS) so that another column is one entry more.
import { t } from './i18n.js';
import { h, dur, keepInputs } from './api.js';
import { kindBadge, kindName } from './kinds.js';

export const STAGES = ['waiting_ack', 'dispatching', 'acknowledged', 'accepted', 'on_scene', 'done'];

export const stageBadge = (stage, outcome, testid) => h(`span.badge.stage-${stage}`, { testid, 'data-stage': stage },
  h('span', { 'data-i18n': `stage.${stage}` }, t(`stage.${stage}`)), outcome ? h('span', ' · ', h('span', { 'data-i18n': `outcome.${outcome}` }, t(`outcome.${outcome}`))) : null);

/** The queue's columns: header key, cell. */
export const COLUMNS = [
  { key: 'col.id', cell: (r) => `#${r.incident.id}` },
  { key: 'col.kind_alarm', cell: (r) => kindBadge(r.incident.kind, { testid: 'queue-kind' }) },
  { key: 'col.elder', cell: (r) => h('span', { testid: 'queue-elder' }, r.elder_name || '—') },
  { key: 'col.address', cell: (r) => h('span.addr', { testid: 'queue-address' }, r.address || '—') },
  { key: 'col.grid', cell: (r) => r.grid_name || '—' },
  { key: 'col.status', cell: (r) => stageBadge(r.stage, r.incident.outcome, 'queue-stage') },
  { key: 'col.handler', cell: (r) => h('span', { testid: 'queue-handler' }, r.incident.taken_by || '—') },
  { key: 'col.responder', cell: (r) => r.responder_name || (r.pending_offers ? `… ${r.pending_offers}` : '—') },
  { key: 'col.attention', cell: (r) => r.incident.attention
    ? h('span.badge.attention', { testid: 'queue-attention', 'data-reason': r.incident.attention, i18n: `attention.${r.incident.attention}` })
    : '' },
  { key: 'col.age', cell: (r) => h('span.age', { 'data-since': r.incident.received_at }, dur(Date.now() - r.incident.received_at)) },
];
const SLA_COLUMNS = [['col.sla_ack', 'ack'], ['col.sla_responder', 'responder'], ['col.sla_scene', 'scene']];

const filters = { stage: '', category: '', kind: '', handler: '', q: '' };

function matches(r, f, me) {
  const i = r.incident;
  if (f.stage && r.stage !== f.stage) return false;
  if (f.category && i.category !== f.category) return false;
  if (f.kind && i.kind !== f.kind) return false;
  if (f.handler === 'mine' && i.taken_by !== me) return false;
  if (f.handler === 'unassigned' && i.taken_by) return false;
  if (f.q) {
    const q = f.q.trim().toLowerCase();
    const hay = [`#${i.id}`, String(i.id), r.elder_name, r.elder_phone, r.address, r.grid_name, i.taken_by, r.responder_name, kindName(i.kind), i.kind]
      .filter(Boolean).join(' ').toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

export function renderQueue(v, ctx, params) {
  if (params?.get('stage') !== null && params?.get('stage') !== undefined) {
    filters.stage = params.get('stage');
    history.replaceState(null, '', '#/queue');
  }
  const rows = ctx.rows.filter((r) => r.incident.status !== 'closed');
  const me = ctx.me?.name;
  const count = (pred) => rows.filter(pred).length;
  const chip = (value, label, n, testid) => h(`button.chip${filters.stage === value ? '.active' : ''}`, {
    testid, 'data-count': n, onclick: () => { filters.stage = value; renderQueue(v, ctx); } },
  h('span', label), ' ', h('b.count', String(n)));
  const counts = h('div.chips', { testid: 'queue-counts' },
    chip('', t('queue.all'), rows.length, 'count-all'),
    STAGES.map((s) => chip(s, t(`stage.${s}`), count((r) => r.stage === s), `count-${s}`)));
  const kinds = [...new Set(rows.map((r) => r.incident.kind))].sort();
  const select = (key, testid, options) => h('select', { testid, onchange: (e) => { filters[key] = e.target.value; renderQueue(v, ctx); } },
    options.map(([value, label]) => h('option', { value, selected: filters[key] === value }, label)));
  const search = h('input.search', { type: 'search', testid: 'queue-search', value: filters.q, 'data-i18n-ph': 'queue.search', placeholder: t('queue.search'),
    oninput: (e) => { filters.q = e.target.value; renderBody(); } });
  const bar = h('div.filters',
    select('category', 'filter-category', [['', t('queue.any_category')], ...['emergency', 'welfare', 'technical', 'service'].map((c) => [c, t(`cat.${c}`)])]),
    select('kind', 'filter-kind', [['', t('queue.any_kind')], ...kinds.map((k) => [k, kindName(k)])]),
    select('handler', 'filter-handler', [['', t('queue.any_handler')], ['mine', t('queue.mine')], ['unassigned', t('queue.unassigned')]]),
    search);
  const head = h('tr', COLUMNS.map((c) => h('th', { i18n: c.key })), SLA_COLUMNS.map(([k]) => h('th', { i18n: k })));
  const tbody = h('tbody');
  const note = h('p.muted', { testid: 'queue-shown' });
  const renderBody = () => {
    const list = rows.filter((r) => matches(r, filters, me));
    note.textContent = t('queue.shown', { n: list.length, total: rows.length });
    tbody.replaceChildren(...list.map((r) => h(`tr.row.cat-${r.incident.category}.stage-${r.stage}`, {
      testid: `queue-row-${r.incident.id}`, 'data-incident': r.incident.id, 'data-status': r.incident.status, 'data-stage': r.stage,
      onclick: () => { location.hash = `#/incident/${r.incident.id}`; } },
    COLUMNS.map((c) => h('td', c.cell(r, ctx))), SLA_COLUMNS.map(([, w]) => h('td', ctx.slaCell(r.incident, w))))));
    if (!list.length && rows.length) tbody.append(h('tr', h('td', { colspan: COLUMNS.length + 3, class: 'muted', testid: 'queue-none-match', i18n: 'queue.none_match' })));
  };
  renderBody();
  keepInputs(v, () => v.replaceChildren(
    h('h1', { i18n: 'queue.title' }),
    ...(rows.length ? [counts, bar, note, h('div.table-wrap', h('table.queue', { testid: 'queue' }, h('thead', head), tbody))]
      : [h('div', { testid: 'queue' }, h('p.muted', { testid: 'queue-empty', i18n: 'queue.empty' }))])));
}
