// The operators' console: a single page with hash routes #/queue, #/incident/<id>, #/map, #/fleet,
// #/reports and #/admin. This file is the shell: sign-in, navigation, the live feed (SSE
// /api/v1/stream), the alarm sound and its "sound is off" state, the banner and the SLA ticker.
// Each page lives in its own module and gets `ctx` (the queue rows, the configuration, who I am).
import { t, apply, toggleLang, onLangChange } from './i18n.js';
import { get, post, login, token, setToken, showError, h, dur, openStream, keepSessionAlive } from './api.js';
import { renderQueue } from './queue.js';
import { renderIncident } from './incident.js';
import { renderCityMap } from './map.js';
import { renderFleet } from './fleet.js';
import { renderReports } from './reports.js';
import { renderAdmin } from './admin.js';

const root = document.getElementById('root');
let feed = null;
let renderQueued = null;
let lastRoute = '';

/** What every page reads. */
export const ctx = {
  rows: [],
  config: { sla: {}, procedures: {}, map: {}, centre_phone: '' },
  me: null,
  render: () => render(),
  refresh: () => refresh(),
  slaCell: (inc, which) => slaCell(inc, which),
  beep: () => beep(),
};

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
      h('button.sound', { id: 'sound', testid: 'sound-state', onclick: enableSound }),
      h('span.me', { testid: 'me' }, ctx.me?.name || ''),
      h('button', { testid: 'lang-switch', i18n: 'lang.switch', onclick: toggleLang }),
      h('button', { testid: 'logout', i18n: 'logout', onclick: async () => {
        try { await post('/auth/logout'); } catch { /* signing out anyway */ }
        signOut();
      } })),
    h('div', { id: 'banner' }),
    h('main', { id: 'view' }));
  soundView();
}

function signOut() {
  setToken(null); feed?.close(); feed = null; location.hash = ''; loginView();
}

// ---------- live feed ----------

function connect() {
  feed?.close();
  feed = openStream('/stream');
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

async function loadQueue() {
  try {
    ctx.rows = await get('/queue');
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
    await loadQueue();
    const r = route();
    if (r.name === 'queue') renderQueue(view(), ctx, r.params);
    else if (r.name === 'incident' && (incidentId === undefined || String(incidentId) === r.arg)) renderIncident(view(), ctx, r.arg, true);
  }, 120);
}

// ---------- alarm sound ----------

let audioCtx = null;
function audio() {
  try { audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)(); } catch { audioCtx = null; }
  return audioCtx;
}
/** On when the browser lets the page play sound; off (and said so on screen) until a click. */
function soundOn() { return audio()?.state === 'running'; }
function soundView() {
  const b = document.getElementById('sound');
  if (!b) return;
  const on = soundOn();
  document.body.dataset.sound = on ? 'on' : 'off';
  b.classList.toggle('off', !on);
  b.dataset.i18n = on ? 'sound.on' : 'sound.off';
  b.textContent = t(b.dataset.i18n);
}
async function enableSound() {
  try { await audio()?.resume(); } catch { /* stays off; the button says so */ }
  soundView();
  if (soundOn()) beep();
}
function beep() {
  const c = audio();
  soundView();
  if (!c || c.state !== 'running') return;
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
  } catch { /* the banner still blinks */ }
}

let beeper = null;
function alarmState() {
  const open = ctx.rows.filter((r) => r.incident.status !== 'closed');
  const unacked = open.filter((r) => r.incident.category === 'emergency' && !r.incident.acked_at);
  // An escalation that needs a human calls the operator back, even after the acknowledgement.
  const attention = open.filter((r) => r.incident.attention);
  const system = ctx.system || [];
  const sounding = unacked.length + attention.length + system.length;
  document.body.dataset.alarm = sounding ? 'on' : 'off';
  document.body.dataset.attention = String(attention.length);
  const banner = document.getElementById('banner');
  if (banner) {
    const parts = [];
    if (unacked.length) parts.push(h('div.alarm-banner', { testid: 'alarm-banner', 'data-count': unacked.length },
      h('span', { testid: 'alarm-count' }, t('queue.unacked_count', { n: unacked.length })), ' ',
      h('a', { href: '#/queue?stage=waiting_ack', testid: 'alarm-link', i18n: 'queue.show' })));
    if (attention.length) parts.push(h('div.alarm-banner.attention', { testid: 'attention-banner', 'data-count': attention.length },
      h('span', { testid: 'attention-count' }, t('queue.attention_count', { n: attention.length })), ' ',
      h('a', { href: `#/incident/${attention[0].incident.id}`, testid: 'attention-link', i18n: 'queue.show' })));
    // The system itself: a dependency down, or a protocol's or grid's traffic stopped (/healthz).
    if (system.length) parts.push(h('div.alarm-banner.system', { testid: 'system-banner', 'data-count': system.length },
      ...system.map((s) => h('div', { testid: 'system-item', 'data-key': s.key, 'data-name': s.name || '' }, t(s.key, s)))));
    banner.replaceChildren(...parts);
  }
  if (sounding && !beeper) { beep(); beeper = setInterval(beep, 4000); }
  if (!sounding && beeper) { clearInterval(beeper); beeper = null; }
}

// ---------- system health ----------

/** Reads /healthz into `ctx.system`: what is down or quiet, for the banner. */
async function pollHealth() {
  const items = [];
  try {
    const res = await fetch('/healthz', { cache: 'no-store' });
    const body = await res.json();
    if (body.store?.state === 'down') items.push({ key: 'system.store_down' });
    if (body.broker?.state === 'down') items.push({ key: 'system.broker_down' });
    for (const q of body.traffic_quiet || []) {
      const grid = q.scope === 'grid';
      const name = grid ? (ctx.areas?.get(Number(q.name)) || `#${q.name}`) : q.name;
      items.push({ key: grid ? 'system.grid_quiet' : 'system.protocol_quiet', name, usual: Math.round(q.usual) });
    }
  } catch {
    items.push({ key: 'system.unreachable' });
  }
  ctx.system = items;
  alarmState();
}

// ---------- SLA clocks ----------

/** An SLA clock: time left to the deadline, or how far past it; met or breached once done. */
function slaCell(inc, which) {
  const targets = ctx.config.sla?.[inc.category] || {};
  const target = { ack: targets.ack_s, responder: targets.accept_s, scene: targets.on_scene_s ?? targets.done_s }[which];
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
    : left >= 0 ? dur(left) : `+${dur(left)} ${t('sla.breached')}`;
}
setInterval(() => {
  for (const c of document.querySelectorAll('.sla[data-deadline]')) tickCell(c);
  for (const c of document.querySelectorAll('[data-since]')) c.textContent = dur(Date.now() - Number(c.dataset.since));
  for (const c of document.querySelectorAll('[data-until]')) c.textContent = dur(Math.max(0, Number(c.dataset.until) - Date.now()));
}, 1000);

// ---------- routes ----------

function route() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const [, name = 'queue', arg] = path.split('/');
  return { name: name || 'queue', arg, params: new URLSearchParams(query), key: path };
}

const view = () => document.getElementById('view');

function render() {
  const r = route();
  for (const a of document.querySelectorAll('header.top nav a')) a.classList.toggle('active', a.dataset.route === r.name);
  // A new page opens at its top, whatever the scroll position of the previous one.
  if (r.key !== lastRoute) { window.scrollTo(0, 0); lastRoute = r.key; }
  const pages = {
    queue: () => renderQueue(view(), ctx, r.params),
    incident: () => renderIncident(view(), ctx, r.arg),
    map: () => renderCityMap(view(), ctx),
    fleet: () => renderFleet(view(), ctx),
    reports: () => renderReports(view(), ctx),
    admin: () => renderAdmin(view(), ctx),
  };
  (pages[r.name] || pages.queue)();
}

// ---------- start ----------

async function start() {
  try {
    [ctx.me, ctx.config] = await Promise.all([get('/auth/me'), get('/console/config')]);
  } catch (e) {
    loginView();
    showError(root.querySelector('form'), e);
    return;
  }
  shell();
  apply();
  connect();
  await loadQueue();
  render();
  get('/areas').then((areas) => { ctx.areas = new Map(areas.map((a) => [a.id, a.name])); }).catch(() => {});
  pollHealth();
  setInterval(pollHealth, 10000);
}

window.addEventListener('hashchange', () => token() && document.getElementById('view') && render());
window.addEventListener('onekey:unauthorized', () => { if (token()) { signOut(); showError(root.querySelector('form'), new Error(t('err.unauthorized'))); } });
onLangChange(() => { if (token() && document.getElementById('view')) { soundView(); alarmState(); render(); } });
apply();
if (token()) { keepSessionAlive(); start(); } else loginView();
