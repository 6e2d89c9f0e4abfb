// The operators' console: a single page with hash routes #/queue, #/incident/<id>, #/map, #/fleet,
// #/reports and #/admin. Live updates come from the SSE stream /api/v1/stream.
import { t, tOr, apply, toggleLang, onLangChange } from './i18n.js';
import { api, get, post, login, token, setToken, showError, toast, h, dur, clock, keepInputs } from './api.js';
import { renderMap } from './map.js';
import { histogram, bars } from './charts.js';

const root = document.getElementById('root');
const OUTCOMES = ['resolved', 'emergency_services', 'false_alarm', 'resolved_by_phone', 'service_completed', 'duplicate'];
// SLA clocks per category, in seconds from the alarm (the defaults of src/dispatch/policy.rs): to
// acknowledge, to a responder, to the scene (for service orders: done).
const SLA = {
  emergency: { ack: 60, responder: 120, scene: 1800 },
  welfare: { ack: 600, responder: 3600, scene: 24 * 3600 },
  technical: { ack: 3600, responder: null, scene: null },
  service: { ack: null, responder: null, scene: 24 * 3600 },
};

let incidents = [];
const elderNames = new Map();
let areas = null;
let responders = null;
let feed = null;
let renderQueued = null;

// ---------- login and shell ----------

function loginView() {
  const err = h('div');
  const name = h('input', { 'data-i18n-ph': 'login.name', placeholder: t('login.name'), testid: 'login-name', autocomplete: 'username' });
  const pass = h('input', { type: 'password', 'data-i18n-ph': 'login.password', placeholder: t('login.password'), testid: 'login-password', autocomplete: 'current-password' });
  const form = h('form.login', { testid: 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    try { await login('operator', name.value, pass.value); start(); } catch (x) { showError(err, x, true); }
  } },
  h('h1', { i18n: 'app.title' }),
  name, pass, err,
  h('button.primary', { type: 'submit', testid: 'login-submit', i18n: 'login.submit' }),
  h('button', { type: 'button', testid: 'lang-switch', i18n: 'lang.switch', onclick: toggleLang }));
  root.replaceChildren(form);
}

function shell() {
  const link = (route, key) => h('a', { href: `#/${route}`, 'data-route': route, testid: `nav-${route}`, i18n: key });
  root.replaceChildren(
    h('header.top',
      h('span.brand', { i18n: 'app.title' }),
      h('nav', link('queue', 'nav.queue'), link('map', 'nav.map'), link('fleet', 'nav.fleet'), link('reports', 'nav.reports'), link('admin', 'nav.admin')),
      h('span.live.off', { id: 'live', testid: 'live', i18n: 'queue.offline' }),
      h('button', { testid: 'sound-enable', i18n: 'sound.enable', onclick: () => { audio(); beep(); } }),
      h('button', { testid: 'lang-switch', i18n: 'lang.switch', onclick: toggleLang }),
      h('button', { testid: 'logout', i18n: 'logout', onclick: async () => {
        try { await post('/auth/logout'); } catch { /* signing out anyway */ }
        setToken(null); feed?.close(); location.hash = ''; loginView();
      } })),
    h('div', { id: 'banner' }),
    h('main', { id: 'view' }));
}

// ---------- live feed, alarm sound, SLA ticker ----------

function connect() {
  feed?.close();
  feed = new EventSource(`/api/v1/stream?token=${encodeURIComponent(token())}`);
  const live = (on) => {
    const el = document.getElementById('live');
    if (!el) return;
    el.classList.toggle('off', !on);
    el.dataset.i18n = on ? 'queue.live' : 'queue.offline';
    el.textContent = t(el.dataset.i18n);
  };
  feed.onopen = () => { live(true); refresh(); };
  feed.onerror = () => live(false);
  feed.addEventListener('incident', (m) => {
    let ev = null;
    try { ev = JSON.parse(m.data); } catch { /* a malformed event only triggers a refresh */ }
    refresh(ev?.incident_id);
  });
}

async function loadIncidents() {
  try {
    incidents = await get('/incidents?status=open&limit=500');
    if (incidents.some((i) => i.elder_id && !elderNames.has(i.elder_id))) {
      try { for (const e of await get('/elders?limit=5000')) elderNames.set(e.id, e.name); } catch { /* ids instead of names */ }
    }
    document.getElementById('queue-error')?.remove();
  } catch (e) {
    const v = document.getElementById('view');
    if (v && !document.getElementById('queue-error')) { const line = showError(v, e); line.id = 'queue-error'; v.prepend(line); }
  }
  alarmState();
}

function refresh(incidentId) {
  clearTimeout(renderQueued);
  renderQueued = setTimeout(async () => {
    await loadIncidents();
    const r = route();
    if (r.name === 'queue') renderQueue();
    else if (r.name === 'incident' && (incidentId === undefined || String(incidentId) === r.arg)) renderIncident(r.arg, true);
    else if (r.name === 'map') renderMapPage();
  }, 150);
}

let ctx = null;
function audio() {
  try { ctx = ctx || new (window.AudioContext || window.webkitAudioContext)(); ctx.resume?.().catch(() => {}); } catch { ctx = null; }
  return ctx;
}
function beep() {
  const c = audio();
  if (!c) return;
  try {
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = c.createOscillator(), g = c.createGain();
      o.frequency.value = f; o.type = 'square';
      g.gain.setValueAtTime(0.08, c.currentTime + i * 0.25);
      g.gain.setValueAtTime(0, c.currentTime + i * 0.25 + 0.2);
      o.connect(g).connect(c.destination);
      o.start(c.currentTime + i * 0.25); o.stop(c.currentTime + i * 0.25 + 0.22);
    }
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
  } catch { /* autoplay refused: the banner still blinks */ }
}
let beeper = null;
function alarmState() {
  const unacked = incidents.filter((i) => i.category === 'emergency' && !i.acked_at && i.status !== 'closed');
  document.body.dataset.alarm = unacked.length ? 'on' : 'off';
  const banner = document.getElementById('banner');
  if (banner) {
    banner.replaceChildren(...(unacked.length ? [h('div.alarm-banner', { testid: 'alarm-banner' },
      `${t('queue.unacked')}: `, unacked.map((i) => h('a', { href: `#/incident/${i.id}`, style: 'color:#fff;margin-right:8px' }, `#${i.id} ${elderNames.get(i.elder_id) || ''}`)))] : []));
  }
  if (unacked.length && !beeper) { beep(); beeper = setInterval(beep, 4000); }
  if (!unacked.length && beeper) { clearInterval(beeper); beeper = null; }
}

function slaCell(inc, which) {
  const target = SLA[inc.category]?.[which];
  const doneAt = { ack: inc.acked_at, responder: inc.accepted_at, scene: inc.on_scene_at }[which];
  const cell = h('span.sla', { testid: `sla-${which}` });
  if (!target) { cell.textContent = '—'; return cell; }
  cell.dataset.deadline = inc.received_at + target * 1000;
  if (doneAt) cell.dataset.done = doneAt;
  else if (inc.status === 'closed') cell.dataset.done = inc.closed_at || Date.now();
  tickCell(cell);
  return cell;
}
function tickCell(cell) {
  const deadline = Number(cell.dataset.deadline);
  const done = cell.dataset.done ? Number(cell.dataset.done) : null;
  const now = done ?? Date.now();
  const left = deadline - now;
  cell.classList.toggle('breached', left < 0);
  cell.classList.toggle('met', done !== null && left >= 0);
  cell.classList.toggle('running', done === null && left >= 0);
  cell.textContent = done !== null
    ? `${left >= 0 ? '✓' : '✗'} ${t(left >= 0 ? 'sla.met' : 'sla.breached')}`
    : left >= 0 ? dur(left) : `−${dur(left)} ${t('sla.breached')}`;
}
setInterval(() => {
  for (const c of document.querySelectorAll('.sla[data-deadline]')) tickCell(c);
  for (const c of document.querySelectorAll('[data-since]')) c.textContent = dur(Date.now() - Number(c.dataset.since));
}, 1000);

// ---------- routes ----------

function route() {
  const [, name = 'queue', arg] = location.hash.split('/');
  return { name: name || 'queue', arg };
}

function render() {
  const r = route();
  for (const a of document.querySelectorAll('header.top nav a')) a.classList.toggle('active', a.dataset.route === r.name);
  const pages = { queue: renderQueue, incident: () => renderIncident(r.arg), map: renderMapPage, fleet: renderFleet, reports: renderReports, admin: renderAdmin };
  (pages[r.name] || renderQueue)();
}

const view = () => document.getElementById('view');
const cat = (c) => h(`span.badge.${c}`, { 'data-i18n': `cat.${c}` }, t(`cat.${c}`));
const status = (s, testid) => h(`span.badge.${s}`, { 'data-i18n': `status.${s}`, testid }, t(`status.${s}`));

function renderQueue() {
  const list = [...incidents].filter((i) => i.status !== 'closed')
    .sort((a, b) => a.priority - b.priority || a.received_at - b.received_at);
  const head = h('tr', ...['col.id', 'col.priority', 'col.category', 'col.elder', 'col.status', 'col.age', 'col.sla_ack', 'col.sla_responder', 'col.sla_scene']
    .map((k) => h('th', { i18n: k })));
  const rows = list.map((i) => h(`tr.row.prio-${i.priority}${!i.acked_at ? '.unacked' : ''}`, {
    testid: `queue-row-${i.id}`, 'data-incident': i.id, 'data-status': i.status,
    onclick: () => { location.hash = `#/incident/${i.id}`; } },
  h('td', `#${i.id}`), h('td', `P${i.priority}`), h('td', cat(i.category)),
  h('td', { testid: 'queue-elder' }, elderNames.get(i.elder_id) || (i.elder_id ? `#${i.elder_id}` : '—')),
  h('td', status(i.status)), h('td', { 'data-since': i.received_at }, dur(Date.now() - i.received_at)),
  h('td', slaCell(i, 'ack')), h('td', slaCell(i, 'responder')), h('td', slaCell(i, 'scene'))));
  const v = view();
  const err = document.getElementById('queue-error');
  v.replaceChildren(...(err ? [err] : []), h('section.panel', { testid: 'queue' },
    h('h1', { i18n: 'queue.title' }),
    list.length ? h('table', h('thead', head), h('tbody', rows)) : h('p.muted', { testid: 'queue-empty', i18n: 'queue.empty' })));
}

async function loadAreas() {
  if (!areas) { try { areas = await get('/areas'); } catch { areas = []; } }
  return areas;
}
async function loadResponders() {
  try { responders = await get('/responders?limit=1000'); } catch { responders = responders || []; }
  return responders;
}

/** Offers of an incident: the detail's `offers` when the server sends them, else from its events. */
function offersOf(d, people) {
  if (Array.isArray(d.offers)) return d.offers;
  const byId = new Map((people || []).map((r) => [r.id, r]));
  const offers = new Map();
  const statusOf = { offer_sent: 'pending', offer_accepted: 'accepted', offer_declined: 'declined', offer_expired: 'expired', arrived: 'arrived', task_completed: 'completed' };
  for (const e of d.events) {
    const id = e.detail?.responder_id;
    if (id === undefined || !statusOf[e.kind]) continue;
    const r = byId.get(id) || {};
    offers.set(id, { responder_id: id, name: r.name || `#${id}`, kind: r.kind, role: e.detail?.role || '', status: statusOf[e.kind], sent_at: offers.get(id)?.sent_at ?? e.at, lat: r.lat ?? null, lon: r.lon ?? null });
  }
  return [...offers.values()];
}

function evText(e) {
  const d = e.detail || {};
  const bits = [];
  if (d.responder_id !== undefined) bits.push((responders || []).find((r) => r.id === d.responder_id)?.name || `#${d.responder_id}`);
  if (d.outcome) bits.push(t(`outcome.${d.outcome}`));
  if (d.role) bits.push(tOr(`role.${d.role}`, d.role));
  for (const k of ['text', 'note', 'command']) if (d[k] !== undefined && d[k] !== null && d[k] !== '' && typeof d[k] !== 'object') bits.push(String(d[k]));
  return bits.join(' · ');
}

async function renderIncident(id, quiet) {
  const v = view();
  let d;
  try { d = await get(`/incidents/${encodeURIComponent(id)}`); } catch (e) { if (!quiet) showError(v, e, true); return; }
  const [people, grids] = await Promise.all([loadResponders(), loadAreas()]);
  if (route().name !== 'incident' || route().arg !== String(id)) return;
  const inc = d.incident, el = d.elder, dev = d.device;
  const offers = offersOf(d, people);
  const none = () => h('span.muted', { i18n: 'incident.none' });
  const kv = (...pairs) => h('dl.kv', pairs.flatMap(([k, val, testid]) => [h('dt', { i18n: k }), h('dd', { testid }, val ?? none())]));
  const msg = h('div');
  const act = (fn) => async (e) => {
    const b = e.currentTarget; b.disabled = true;
    try { await fn(); toast(t('action.done')); msg.replaceChildren(); await renderIncident(id, true); }
    catch (x) { showError(msg, x, true); } finally { b.disabled = false; }
  };
  const base = `/incidents/${inc.id}`;
  const note = h('input', { testid: 'note-text', 'data-i18n-ph': 'action.note_ph', placeholder: t('action.note_ph') });
  const cmd = h('select', { testid: 'command' }, ['help_coming', 'call_back', 'locate'].map((c) => h('option', { value: c, i18n: `action.cmd.${c}` })));
  const who = h('select', { testid: 'offer-to' }, h('option', { value: '', i18n: 'action.offer_to' }),
    (people || []).map((r) => h('option', { value: r.id }, `${r.name} · ${r.on_duty ? t('col.duty') : '—'}`)));
  const why = h('input', { testid: 'escalate-note', 'data-i18n-ph': 'action.escalate_ph', placeholder: t('action.escalate_ph') });
  const outcome = h('select', { testid: 'close-outcome' }, OUTCOMES.map((o) => h('option', { value: o, i18n: `outcome.${o}` })));
  const closeNote = h('input', { testid: 'close-note', 'data-i18n-ph': 'action.note_ph', placeholder: t('action.note_ph') });
  const closed = inc.status === 'closed';
  const contacts = el?.contacts?.length ? h('ul', el.contacts.map((c) => h('li', `${c.name} (${c.relation || '—'}) ${c.phone}`, c.key_holder ? h('span.badge', { i18n: 'incident.key_holder' }) : ''))) : none();
  const mapBox = h('div', { testid: 'incident-map' });
  const points = [];
  const eLat = inc.location?.lat ?? el?.lat, eLon = inc.location?.lon ?? el?.lon;
  if (eLat !== undefined) points.push({ lat: eLat, lon: eLon, kind: 'elder', label: el?.name || t('map.elder'), testid: 'map-elder' });
  for (const o of offers) {
    if (o.lat === null || o.lat === undefined || !['pending', 'offered', 'accepted', 'arrived'].includes(o.status)) continue;
    const kind = o.status === 'pending' || o.status === 'offered' ? 'offered' : 'accepted';
    points.push({ lat: o.lat, lon: o.lon, kind, label: o.name, testid: `map-${kind}-${o.responder_id}` });
  }
  const grid = (grids || []).filter((a) => a.id === el?.grid_id || (a.level === 'grid' && !el?.grid_id));
  renderMap(mapBox, { areas: grid, points });

  keepInputs(v, () => v.replaceChildren(
    h('p', h('a', { href: '#/queue', i18n: 'incident.back' })),
    h('h1', { testid: 'incident-title' }, `${t('incident.title')} #${inc.id} `, cat(inc.category), ' ', status(inc.status, 'incident-status'), ' ',
      h('span.muted', clock(inc.received_at))),
    h('div.grid3', { style: 'grid-template-columns: repeat(3, minmax(0,1fr))' },
      h('div.panel', h('span', { i18n: 'col.sla_ack' }), ' ', slaCell(inc, 'ack')),
      h('div.panel', h('span', { i18n: 'col.sla_responder' }), ' ', slaCell(inc, 'responder')),
      h('div.panel', h('span', { i18n: 'col.sla_scene' }), ' ', slaCell(inc, 'scene'))),
    h('div.grid2',
      h('div',
        h('section.panel', { testid: 'elder' }, h('div.photo', { title: t('incident.photo'), testid: 'elder-photo' }, (el?.name || '?').slice(0, 1)),
          h('h2', { i18n: 'incident.elder' }),
          h('div.big', { testid: 'elder-name' }, el?.name || t('unknown')),
          kv(['incident.address', el?.address, 'elder-address'], ['incident.phone', el?.phone], ['incident.living', el ? t(`living.${el.living}`) : null],
            ['incident.health', el?.health_notes || null, 'elder-health'], ['incident.medications', el?.medications || null],
            ['incident.key_safe', el?.key_safe_code || null], ['incident.contacts', contacts],
            ['incident.previous', d.previous?.length ? h('ul', d.previous.map((p) => h('li', h('a', { href: `#/incident/${p.id}` }, `#${p.id}`), ' ', clock(p.received_at), ' ', t(`cat.${p.category}`), ' ', p.outcome ? t(`outcome.${p.outcome}`) : t(`status.${p.status}`)))) : null])),
        h('section.panel', { testid: 'device' }, h('h2', { i18n: 'incident.device' }),
          dev ? kv(['incident.protocol', `${dev.protocol} · ${dev.model || ''} · ${dev.ident}`], ['col.state', h(`span.badge.${dev.state}`, tOr(`fleet.${dev.state}`, dev.state))],
            ['incident.battery', dev.battery_pct !== null ? `${dev.battery_pct}%${dev.mains ? ' ⚡' : ''}` : null],
            ['incident.heartbeat', dev.last_seen ? `${clock(dev.last_seen)} (${dur(Date.now() - dev.last_seen)} ${t('time.ago')})` : null],
            ['incident.signal', dev.signal_pct !== null ? `${dev.signal_pct}%` : null]) : none()),
        h('section.panel', h('h2', { i18n: 'incident.timeline' }),
          h('ol.timeline', { testid: 'timeline' }, d.events.map((e) => h('li', { 'data-kind': e.kind },
            h('time', clock(e.at)), h('div', h('b', tOr(`ev.${e.kind}`, e.kind)), ' ', h('span.muted', e.actor), h('div', evText(e)))))))),
      h('div',
        h('section.panel', { testid: 'actions' }, h('h2', { i18n: 'incident.actions' }), msg,
          h('div.actions',
            h('div.row', h('button.danger', { testid: 'action-ack', disabled: Boolean(inc.acked_at) || closed, i18n: 'action.ack', onclick: act(() => post(`${base}/ack`)) }),
              h('button', { testid: 'action-false-alarm', disabled: closed, i18n: 'action.false_alarm', onclick: act(() => post(`${base}/close`, { outcome: 'false_alarm', note: note.value || null })) })),
            h('div.row', note, h('button', { testid: 'action-note', i18n: 'action.note', onclick: act(() => post(`${base}/notes`, { text: note.value })) })),
            h('div.row', cmd, h('button', { testid: 'action-command', disabled: closed, i18n: 'action.command', onclick: act(() => post(`${base}/command`, { command: cmd.value })) })),
            h('div.row', who, h('button', { testid: 'action-offer', disabled: closed, i18n: 'action.offer', onclick: act(() => post(`${base}/offer`, { responder_id: Number(who.value) })) })),
            h('div.row', why, h('button', { testid: 'action-escalate', disabled: closed, i18n: 'action.escalate', onclick: act(() => post(`${base}/escalate`, { note: why.value })) })),
            h('div.row', outcome, closeNote, h('button.primary', { testid: 'action-close', disabled: closed, i18n: 'action.close', onclick: act(() => post(`${base}/close`, { outcome: outcome.value, note: closeNote.value || null })) })))),
        h('section.panel', h('h2', { i18n: 'incident.responders' }),
          offers.length ? h('table', { testid: 'offers' }, h('tbody', offers.map((o) => h('tr', { testid: `offer-${o.responder_id}`, 'data-status': o.status },
            h('td', o.name), h('td', o.role ? tOr(`role.${o.role}`, o.role) : ''), h('td', h(`span.badge.${o.status}`, tOr(`offer.${o.status}`, o.status))), h('td', clock(o.sent_at)))))) : h('p.muted', { i18n: 'incident.none' })),
        h('section.panel', h('h2', { i18n: 'incident.map' }), mapBox)))));
}

async function renderMapPage() {
  const v = view();
  const [grids, people] = await Promise.all([loadAreas(), loadResponders()]);
  if (route().name !== 'map') return;
  const points = [];
  const seen = new Set();
  for (const i of incidents.filter((x) => x.location)) points.push({ lat: i.location.lat, lon: i.location.lon, kind: 'elder', label: `#${i.id}` });
  for (const r of people || []) {
    if (!r.on_duty || seen.has(r.id)) continue;
    seen.add(r.id);
    points.push({ lat: r.lat ?? r.home_lat, lon: r.lon ?? r.home_lon, kind: 'responder', label: r.name });
  }
  const box = h('div');
  v.replaceChildren(h('section.panel', h('h1', { i18n: 'map.title' }), box));
  renderMap(box, { areas: (grids || []).filter((a) => a.boundary?.length), points, width: 960, height: 600 });
}

async function renderFleet() {
  const v = view();
  v.replaceChildren(h('h1', { i18n: 'fleet.title' }));
  let f;
  try { f = await get('/fleet'); } catch (e) { showError(v, e); return; }
  const uncovered = f.grids.filter((g) => g.uncovered);
  if (uncovered.length) {
    v.append(h('div.alarm-banner', { testid: 'uncovered-alarm' }, t('fleet.alarm'), ' ', uncovered.map((g) => g.name || g.code).join('、')));
    beep();
  }
  const states = ['online', 'silent', 'low_battery', 'tamper', 'total'];
  v.append(h('section.panel', { testid: 'fleet-grids' }, h('h2', { i18n: 'fleet.grids' }),
    h('table', h('thead', h('tr', h('th', { i18n: 'col.grid' }), states.map((s) => h('th', { i18n: `fleet.${s}` })), h('th', { i18n: 'fleet.on_duty' }))),
      h('tbody', f.grids.map((g) => h('tr', { testid: `fleet-grid-${g.code}` }, h('td', `${g.name} (${g.code})`),
        states.map((s) => h('td', String(g.devices?.[s] ?? 0))),
        h('td', { class: g.uncovered ? 'uncovered' : '' }, `${g.responders_on_duty} `, g.uncovered ? t('fleet.uncovered') : '')))))));
  v.append(h('section.panel', h('h2', { i18n: 'fleet.devices' }),
    h('table', h('thead', h('tr', ['col.protocol', 'col.ident', 'col.model', 'col.grid', 'col.state', 'col.battery', 'col.last_seen'].map((k) => h('th', { i18n: k })))),
      h('tbody', f.devices.map((d) => h('tr', h('td', d.protocol), h('td', d.ident), h('td', d.model), h('td', d.grid_id ?? '—'),
        h('td', h(`span.badge.${d.state}`, t(`fleet.${d.state}`))), h('td', d.battery_pct !== null ? `${d.battery_pct}%` : '—'), h('td', clock(d.last_seen))))))));
}

async function renderReports() {
  const v = view();
  v.replaceChildren(h('h1', { i18n: 'reports.title' }));
  let r;
  try { r = await get('/reports'); } catch (e) { showError(v, e); return; }
  const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
  const sec = (x) => (x === null || x === undefined ? '—' : dur(x * 1000));
  const stat = (key, val, testid) => h('div.panel.stat', h('span.muted', { i18n: key }), h('span.big', { testid }, String(val)));
  v.append(
    h('div.grid3', stat('reports.total', r.total, 'report-total'), stat('reports.closed', r.closed, 'report-closed'),
      stat('reports.within_target', pct(r.answer?.share_within_target), 'report-answer-share')),
    h('section.panel', h('h2', { i18n: 'reports.answer' }),
      h('p', `${t('reports.count')}: `, h('b', { testid: 'report-answer-count' }, String(r.answer?.count ?? 0)), ` · ${t('reports.within_target')}: ${r.answer?.within_target ?? 0} (${pct(r.answer?.share_within_target)})`),
      histogram(r.answer?.histogram, { targetS: r.answer?.target_s ?? 60, testid: 'chart-answer', width: 1040, height: 220 })),
    h('div.grid2',
      h('section.panel', h('h2', { i18n: 'reports.to_responder' }),
        h('p', `${t('reports.count')}: ${r.to_responder?.count ?? 0} · ${t('reports.p50')} ${sec(r.to_responder?.p50_s)} · ${t('reports.p90')} ${sec(r.to_responder?.p90_s)}`),
        histogram(r.to_responder?.histogram, { testid: 'chart-to-responder' })),
      h('section.panel', h('h2', { i18n: 'reports.to_scene' }),
        h('p', `${t('reports.count')}: ${r.to_scene?.count ?? 0} · ${t('reports.p50')} ${sec(r.to_scene?.p50_s)} · ${t('reports.p90')} ${sec(r.to_scene?.p90_s)}`),
        histogram(r.to_scene?.histogram, { testid: 'chart-to-scene' }))),
    h('div.grid2',
      h('section.panel', h('h2', { i18n: 'reports.service' }),
        h('p.big', { testid: 'report-service' }, `${r.service?.within_24h ?? 0} / ${r.service?.count ?? 0} (${pct(r.service?.share)})`)),
      h('section.panel', h('h2', { i18n: 'reports.false_alarms' }),
        bars((r.false_alarms || []).map((m) => ({ label: m.model || t('unknown'), value: m.rate, note: `${m.false_alarms}/${m.incidents}` })), { testid: 'chart-false-alarms' }))));
}

async function renderAdmin(tab = sessionStorage.getItem('onekey.admin.tab') || 'elders') {
  sessionStorage.setItem('onekey.admin.tab', tab);
  const v = view();
  const tabs = ['elders', 'devices', 'responders', 'grids', 'operators', 'import'];
  const body = h('section.panel');
  v.replaceChildren(h('h1', { i18n: 'admin.title' }),
    h('div.tabs', tabs.map((k) => h(`button${k === tab ? '.active' : ''}`, { testid: `admin-tab-${k}`, i18n: `admin.${k}`, onclick: () => renderAdmin(k) }))), body);
  const table = (cols, rows) => h('table', h('thead', h('tr', cols.map((c) => h('th', { i18n: c })))), h('tbody', rows));
  try {
    if (tab === 'elders') {
      const list = await get('/elders?limit=1000');
      body.append(table(['col.id', 'col.name', 'col.address', 'col.living', 'col.grid'], list.map((e) => h('tr', h('td', e.id), h('td', e.name), h('td', e.address), h('td', t(`living.${e.living}`)), h('td', e.grid_id ?? '—')))));
    } else if (tab === 'devices') {
      const list = await get('/devices?limit=1000');
      body.append(table(['col.id', 'col.protocol', 'col.ident', 'col.model', 'col.state', 'col.battery', 'col.last_seen'], list.map((d) => h('tr', h('td', d.id), h('td', d.protocol), h('td', d.ident), h('td', d.model), h('td', t(`fleet.${d.state}`)), h('td', d.battery_pct ?? '—'), h('td', clock(d.last_seen))))));
    } else if (tab === 'responders') {
      const list = await get('/responders?limit=1000');
      body.append(table(['col.id', 'col.name', 'col.kind', 'col.phone', 'col.grid', 'col.duty'], list.map((r) => h('tr', h('td', r.id), h('td', r.name), h('td', tOr(`kind.${r.kind}`, r.kind)), h('td', r.phone), h('td', r.grid_id ?? '—'), h('td', r.on_duty ? '✓' : '—')))));
    } else if (tab === 'grids') {
      areas = null;
      const list = await loadAreas();
      body.append(table(['col.id', 'col.code', 'col.name', 'col.kind'], list.map((a) => h('tr', h('td', a.id), h('td', a.code), h('td', a.name), h('td', tOr(`level.${a.level}`, a.level))))));
    } else if (tab === 'operators') {
      const name = h('input', { testid: 'operator-name', 'data-i18n-ph': 'col.name', placeholder: t('col.name') });
      const pass = h('input', { type: 'password', testid: 'operator-password', 'data-i18n-ph': 'login.password', placeholder: t('login.password') });
      const role = h('select', { testid: 'operator-role' }, ['operator', 'admin'].map((r) => h('option', { value: r, i18n: `account.${r}` })));
      const msg = h('div');
      body.append(h('h2', { i18n: 'admin.add_operator' }), h('div.actions', h('div.row', name, pass, role,
        h('button.primary', { i18n: 'admin.save', onclick: async () => {
          try { await post('/operators', { name: name.value, password: pass.value, role: role.value }); toast(t('admin.saved')); renderAdmin('operators'); } catch (e) { showError(msg, e, true); }
        } }))), msg);
      try {
        const list = await get('/operators');
        body.append(table(['col.id', 'col.name', 'col.role'], list.map((o) => h('tr', h('td', o.id), h('td', o.name), h('td', tOr(`account.${o.role}`, o.role))))));
      } catch (e) { showError(body, e); }
    } else if (tab === 'import') {
      const kind = h('select', { testid: 'import-kind' }, ['areas', 'elders', 'devices', 'responders'].map((k) => h('option', { value: k, i18n: `admin.${k === 'areas' ? 'grids' : k}` })));
      const file = h('input', { type: 'file', accept: '.csv,text/csv', testid: 'import-file', title: t('admin.import_file') });
      const out = h('div', { testid: 'import-result' });
      body.append(h('h2', { i18n: 'admin.import' }), h('div.actions', h('div.row', h('span', { i18n: 'admin.import_kind' }), kind, file,
        h('button.primary', { i18n: 'admin.import_run', onclick: async () => {
          try {
            const text = await file.files[0]?.text();
            const r = await api('POST', `/import?kind=${kind.value}`, text || '', { raw: true, contentType: 'text/csv' });
            out.replaceChildren(h('p', t('admin.import_result', { created: r.created, updated: r.updated, errors: r.errors.length })),
              h('ul', r.errors.map((e) => h('li.error', `#${e.line}: ${e.message}`))));
            areas = null;
          } catch (e) { showError(out, e, true); }
        } }))), out);
    }
  } catch (e) { showError(body, e); }
}

// ---------- start ----------

async function start() {
  shell();
  apply();
  connect();
  await loadIncidents();
  render();
}

window.addEventListener('hashchange', () => token() && render());
onLangChange(() => { if (token() && document.getElementById('view')) { alarmState(); render(); } });
apply();
if (token()) start(); else loginView();
