// Administration: paged, searchable tables of elders, devices and responders with names, each row
// editable and switchable off and on; grids; operator accounts (new, role and password, disable);
// CSV import with a preview of what it would change before anything is written.
import { t, tOr } from './i18n.js';
import { api, get, post, put, showError, toast, h, clock } from './api.js';

const LIVING = ['alone', 'empty_nest', 'three_no', 'with_family'];
const KINDS = ['volunteer', 'family', 'grid_worker', 'social_worker', 'nursing_student', 'carer', 'provider', 'staff'];
const PROTOCOLS = ['native', 'gt06', 'watch', 'h02', 'sia', 'mqtt'];
let grids = null;

/**
 * A paged table fed by `/tables/<what>?q=&offset=&limit=`: a search box, the rows, previous/next.
 * `row(item)` returns the cells; the table's testid is `testid`.
 */
export function pagedTable({ path, cols, row, testid, searchKey = 'table.search', limit = 25 }) {
  const state = { q: '', offset: 0 };
  const body = h('tbody');
  const info = h('span.muted', { testid: `${testid}-page` });
  const prev = h('button', { testid: `${testid}-prev`, i18n: 'table.prev', onclick: () => { state.offset = Math.max(0, state.offset - limit); load(); } });
  const next = h('button', { testid: `${testid}-next`, i18n: 'table.next', onclick: () => { state.offset += limit; load(); } });
  const msg = h('div');
  let timer = null;
  const search = h('input', { type: 'search', testid: `${testid}-search`, 'data-i18n-ph': searchKey, placeholder: t(searchKey),
    oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => { state.q = e.target.value; state.offset = 0; load(); }, 200); } });
  const el = h('div.paged', h('div.row.table-tools', search, prev, next, info), msg,
    h('div.table-wrap', h('table', { testid }, h('thead', h('tr', cols.map((c) => h('th', { i18n: c })))), body)));
  async function load() {
    try {
      const page = await get(`${path}?q=${encodeURIComponent(state.q)}&offset=${state.offset}&limit=${limit}`);
      body.replaceChildren(...page.items.map(row));
      const last = Math.min(page.total, state.offset + page.items.length);
      info.textContent = t('table.page', { from: page.total ? state.offset + 1 : 0, to: last, total: page.total });
      el.dataset.total = page.total;
      prev.disabled = state.offset === 0;
      next.disabled = last >= page.total;
      msg.replaceChildren();
    } catch (e) { showError(msg, e, true); }
  }
  el.reload = load;
  load();
  return el;
}

function field(key, value, { type = 'text', options, testid } = {}) {
  const id = testid || `field-${key}`;
  const input = options
    ? h('select', { testid: id, name: key }, options.map(([v, l]) => h('option', { value: v, selected: String(value ?? '') === String(v) }, l)))
    : type === 'textarea' ? h('textarea', { testid: id, name: key }, value ?? '')
      : h('input', { testid: id, name: key, type, value: value ?? '', step: type === 'number' ? 'any' : undefined });
  return h('label.field', h('span', { i18n: `admin.field.${key}` }), input);
}

/** An edit form; `save(values)` gets the inputs' values by name. */
function editForm(title, fields, save, close) {
  const msg = h('div');
  const form = h('form.panel.edit', { testid: 'edit-form', onsubmit: async (e) => {
    e.preventDefault();
    const values = Object.fromEntries([...form.querySelectorAll('[name]')].map((i) => [i.name, i.value]));
    try { await save(values); toast(t('admin.saved')); close(true); } catch (x) { showError(msg, x, true); }
  } },
  h('h2', title), h('div.fields', fields), msg,
  h('div.row', h('button.primary', { type: 'submit', testid: 'edit-save', i18n: 'admin.save' }),
    h('button', { type: 'button', testid: 'edit-cancel', i18n: 'admin.cancel', onclick: () => close(false) })));
  return form;
}

const num = (v) => (v === '' || v === undefined ? null : Number(v));
const gridOptions = () => [['', '—'], ...(grids || []).filter((a) => a.level === 'grid').map((a) => [a.id, a.name])];

function activeButton(path, active, reload, testid) {
  return h(`button${active ? '' : '.ok'}`, { testid, i18n: active ? 'admin.disable' : 'admin.enable', onclick: async (e) => {
    e.stopPropagation();
    try { await post(path, { active: !active }); reload(); } catch (x) { toast(x.message, 'error'); }
  } });
}

function elderForm(e, done) {
  const contacts = (e.contacts || []).map((c) => [c.name, c.relation, c.phone, c.key_holder ? 'key' : ''].filter((x, i) => i < 3 || x).join('|')).join('\n');
  return editForm(`${t('admin.edit')} · ${e.name}`, [
    field('name', e.name), field('phone', e.phone), field('address', e.address), field('lat', e.lat, { type: 'number' }), field('lon', e.lon, { type: 'number' }),
    field('grid', e.grid_id, { options: gridOptions() }), field('living', e.living, { options: LIVING.map((l) => [l, t(`living.${l}`)]) }),
    field('health_notes', e.health_notes, { type: 'textarea' }), field('medications', e.medications), field('key_safe_code', e.key_safe_code),
    field('checkin_hours', e.checkin_hours, { type: 'number' }), field('contacts', contacts, { type: 'textarea' }),
  ], (x) => put(`/elders/${e.id}`, {
    name: x.name, phone: x.phone || null, address: x.address, lat: num(x.lat), lon: num(x.lon), grid_id: num(x.grid), living: x.living,
    health_notes: x.health_notes, medications: x.medications, key_safe_code: x.key_safe_code || null, checkin_hours: num(x.checkin_hours) ?? 24,
    contacts: x.contacts.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => { const [name, relation = '', phone = '', key = ''] = l.split('|').map((p) => p.trim()); return { name, relation, phone, key_holder: key === 'key' }; }),
  }), done);
}

function deviceForm(d, done) {
  return editForm(`${t('admin.edit')} · ${d.ident}`, [
    field('protocol', d.protocol, { options: PROTOCOLS.map((p) => [p, p]) }), field('ident', d.ident), field('model', d.model),
    field('elder_id', d.elder_id, { type: 'number' }), field('heartbeat_s', d.heartbeat_s, { type: 'number' }),
  ], (x) => put(`/devices/${d.id}`, { protocol: x.protocol, ident: x.ident, model: x.model, elder_id: num(x.elder_id), heartbeat_s: num(x.heartbeat_s) ?? 300, enabled: d.enabled }), done);
}

function responderForm(r, done) {
  return editForm(`${t('admin.edit')} · ${r.name}`, [
    field('name', r.name), field('phone', r.phone), field('kind', r.kind, { options: KINDS.map((k) => [k, tOr(`kind.${k}`, k)]) }), field('team', r.team),
    field('skills', (r.skills || []).join(', ')), field('grid', r.grid_id, { options: gridOptions() }),
    field('home_lat', r.home_lat, { type: 'number' }), field('home_lon', r.home_lon, { type: 'number' }), field('max_tasks', r.max_tasks, { type: 'number' }),
    field('password', '', { type: 'password' }),
  ], (x) => put(`/responders/${r.id}`, {
    name: x.name, phone: x.phone, kind: x.kind, team: x.team || null, skills: x.skills.split(/[,，、]/).map((s) => s.trim()).filter(Boolean), grid_id: num(x.grid),
    home_lat: num(x.home_lat), home_lon: num(x.home_lon), max_tasks: num(x.max_tasks) ?? 1, shifts: r.shifts || [], password: x.password || undefined,
  }), done);
}

export async function renderAdmin(v, ctx, tab = sessionStorage.getItem('onekey.admin.tab') || 'elders') {
  sessionStorage.setItem('onekey.admin.tab', tab);
  const tabs = ['elders', 'devices', 'responders', 'grids', 'operators', 'import'];
  const editor = h('div', { testid: 'editor' });
  const body = h('section.panel');
  v.replaceChildren(h('h1', { i18n: 'admin.title' }),
    h('div.tabs', tabs.map((k) => h(`button${k === tab ? '.active' : ''}`, { testid: `admin-tab-${k}`, i18n: `admin.${k}`, onclick: () => renderAdmin(v, ctx, k) }))), editor, body);
  try { grids = await get('/areas'); } catch (e) { showError(body, e); return; }
  const open = (form) => { editor.replaceChildren(form); form.scrollIntoView?.({ block: 'nearest' }); form.querySelector('input,select')?.focus(); };
  const closer = (table) => (saved) => { editor.replaceChildren(); if (saved) table.reload(); };
  const off = (active) => (active ? '' : '.inactive');
  if (tab === 'elders') {
    const table = pagedTable({ path: '/tables/elders', testid: 'elders-table', cols: ['col.id', 'col.name', 'col.address', 'col.phone', 'col.living', 'col.grid', 'col.devices', 'col.active', 'col.actions'],
      row: ({ elder: e, grid_name, devices }) => h(`tr${off(e.active)}`, { testid: `elder-row-${e.id}`, 'data-active': e.active ? '1' : '0' },
        h('td', e.id), h('td', e.name), h('td', e.address), h('td', e.phone || '—'), h('td', t(`living.${e.living}`)), h('td', grid_name || '—'), h('td', String(devices)),
        h('td', e.active ? '✓' : t('admin.disabled')),
        h('td', h('button', { testid: `edit-elder-${e.id}`, i18n: 'admin.edit', onclick: () => open(elderForm(e, closer(table))) }), ' ',
          activeButton(`/elders/${e.id}/active`, e.active, () => table.reload(), `toggle-elder-${e.id}`))) });
    body.append(table);
  } else if (tab === 'devices') {
    const table = pagedTable({ path: '/tables/devices', testid: 'devices-table', searchKey: 'fleet.search', cols: ['col.id', 'col.protocol', 'col.ident', 'col.model', 'col.elder_name', 'col.grid', 'col.state', 'col.battery', 'col.last_seen', 'col.active', 'col.actions'],
      row: ({ device: d, elder_name, grid_name }) => h(`tr${off(d.enabled)}`, { testid: `device-row-${d.id}`, 'data-active': d.enabled ? '1' : '0' },
        h('td', d.id), h('td', d.protocol), h('td', d.ident), h('td', d.model), h('td', elder_name || '—'), h('td', grid_name || '—'),
        h('td', tOr(`fleet.${d.state}`, d.state)), h('td', d.battery_pct ?? '—'), h('td', clock(d.last_seen)), h('td', d.enabled ? '✓' : t('admin.disabled')),
        h('td', h('button', { testid: `edit-device-${d.id}`, i18n: 'admin.edit', onclick: () => open(deviceForm(d, closer(table))) }), ' ',
          activeButton(`/devices/${d.id}/active`, d.enabled, () => table.reload(), `toggle-device-${d.id}`))) });
    body.append(table);
  } else if (tab === 'responders') {
    const table = pagedTable({ path: '/tables/responders', testid: 'responders-table', cols: ['col.id', 'col.name', 'col.kind', 'col.phone', 'col.team', 'col.grid', 'col.duty', 'col.load', 'col.active', 'col.actions'],
      row: ({ responder: r, grid_name, load }) => h(`tr${off(r.active)}`, { testid: `responder-row-${r.id}`, 'data-active': r.active ? '1' : '0' },
        h('td', r.id), h('td', r.name), h('td', tOr(`kind.${r.kind}`, r.kind)), h('td', r.phone), h('td', r.team || '—'), h('td', grid_name || '—'),
        h('td', r.on_duty ? '✓' : '—'), h('td', `${load}/${r.max_tasks}`), h('td', r.active ? '✓' : t('admin.disabled')),
        h('td', h('button', { testid: `edit-responder-${r.id}`, i18n: 'admin.edit', onclick: () => open(responderForm(r, closer(table))) }), ' ',
          activeButton(`/responders/${r.id}/active`, r.active, () => table.reload(), `toggle-responder-${r.id}`))) });
    body.append(table);
  } else if (tab === 'grids') {
    const byId = new Map(grids.map((a) => [a.id, a]));
    body.append(h('table', { testid: 'grids-table' }, h('thead', h('tr', ['col.id', 'col.code', 'col.name', 'col.kind'].map((c) => h('th', { i18n: c })))),
      h('tbody', grids.map((a) => h('tr', h('td', a.id), h('td', a.code), h('td', a.name, a.parent_id ? h('span.muted', ` · ${byId.get(a.parent_id)?.name || ''}`) : ''), h('td', tOr(`level.${a.level}`, a.level)))))));
  } else if (tab === 'operators') {
    const name = h('input', { testid: 'operator-name', 'data-i18n-ph': 'col.name', placeholder: t('col.name') });
    const pass = h('input', { type: 'password', testid: 'operator-password', 'data-i18n-ph': 'login.password', placeholder: t('login.password') });
    const role = h('select', { testid: 'operator-role' }, ['dispatcher', 'viewer', 'admin'].map((r) => h('option', { value: r, i18n: `account.${r}` })));
    const msg = h('div');
    body.append(h('h2', { i18n: 'admin.add_operator' }), h('div.actions', h('div.row', name, pass, role,
      h('button.primary', { testid: 'operator-create', i18n: 'admin.save', onclick: async () => {
        try { await post('/operators', { name: name.value, password: pass.value, role: role.value }); toast(t('admin.saved')); renderAdmin(v, ctx, 'operators'); } catch (e) { showError(msg, e, true); }
      } }))), msg);
    try {
      const list = await get('/operators');
      const reload = () => renderAdmin(v, ctx, 'operators');
      body.append(h('table', { testid: 'operators-table' }, h('thead', h('tr', ['col.id', 'col.name', 'col.role', 'col.active', 'col.actions'].map((c) => h('th', { i18n: c })))),
        h('tbody', list.map((o) => h(`tr${off(!o.disabled)}`, { testid: `operator-row-${o.id}`, 'data-active': o.disabled ? '0' : '1' },
          h('td', o.id), h('td', o.name), h('td', tOr(`account.${o.role}`, o.role)), h('td', o.disabled ? t('admin.disabled') : '✓'),
          h('td', h('button', { testid: `edit-operator-${o.id}`, i18n: 'admin.edit', onclick: () => open(editForm(`${t('admin.edit')} · ${o.name}`,
            [field('role', o.role, { options: ['dispatcher', 'viewer', 'admin'].map((r) => [r, t(`account.${r}`)]) }), field('password', '', { type: 'password' })],
            (x) => put(`/operators/${o.id}`, { role: x.role, password: x.password || null }), (saved) => { editor.replaceChildren(); if (saved) reload(); })) }), ' ',
          o.name === ctx.me?.name ? null : activeButton(`/operators/${o.id}/active`, !o.disabled, reload, `toggle-operator-${o.id}`)))))));
    } catch (e) { showError(body, e); }
  } else if (tab === 'import') {
    const file = h('input', { type: 'file', accept: '.csv,text/csv,.json', testid: 'import-file', title: t('admin.import_file') });
    const out = h('div', { testid: 'import-result' });
    const confirm = h('button.primary', { testid: 'import-confirm', i18n: 'admin.import_confirm', disabled: true });
    let text = '';
    const run = async (preview) => {
      try {
        text = preview ? (await file.files[0]?.text()) || '' : text;
        const r = await api('POST', `/import${preview ? '?preview=true' : ''}`, text, { raw: true, contentType: 'text/csv' });
        const n = (a) => r.rows.filter((x) => x.action === a).length;
        out.replaceChildren(
          h('p', { testid: preview ? 'import-preview-summary' : 'import-summary' }, preview
            ? t('admin.import_preview_title', { create: n('create'), exists: n('exists'), error: n('error') })
            : t('admin.import_result', { created: r.created, updated: r.updated, errors: r.errors.length })),
          h('table', { testid: preview ? 'import-preview' : 'import-rows' }, h('thead', h('tr', ['col.line', 'col.kind', 'col.name', 'col.action', 'col.message'].map((c) => h('th', { i18n: c })))),
            h('tbody', r.rows.map((x) => h(`tr.import-${x.action}`, { testid: `import-line-${x.line}`, 'data-action': x.action },
              h('td', x.line), h('td', t(`admin.${x.kind === 'areas' ? 'grids' : x.kind}`)), h('td', x.name), h('td', h(`span.badge.${x.action}`, t(`admin.action.${x.action}`))), h('td', x.message || ''))))));
        confirm.disabled = !preview || n('create') === 0;
        if (!preview) grids = null;
      } catch (e) { showError(out, e, true); }
    };
    confirm.onclick = () => run(false);
    body.append(h('h2', { i18n: 'admin.import' }), h('div.actions', h('div.row', file,
      h('button', { testid: 'import-preview-run', i18n: 'admin.import_preview', onclick: () => run(true) }), confirm)), out);
  }
}
