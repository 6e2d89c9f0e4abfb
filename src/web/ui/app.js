// The responders' app (mobile, installable): sign in with the phone number, the duty switch as the
// server has it, offers live over /api/v1/responder/stream with the alarm kind, the elder's name
// and the distance, a system notification and vibration for a new offer (also while the app is in
// the background), accept; decline and arrived after a confirmation; once accepted the phone numbers
// (elder, contacts, key holders), the key-safe code, health notes and a call-the-centre button.
// The service worker (/app-sw.js) keeps the shell so the app opens offline.
import { t, apply, toggleLang, onLangChange } from './i18n.js';
import { get, post, login, token, setToken, showError, toast, h, keepInputs, metres, openStream, keepSessionAlive } from './api.js';
import { kindBadge, kindName } from './kinds.js';

const root = document.getElementById('root');
let onDuty = false;
let here = null;
let watch = null;
let stream = null;
let lastSent = 0;
let centrePhone = '';
let confirming = null; // { id, action }
const known = new Set();

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/app-sw.js', { scope: '/app' }).catch(() => { /* no offline shell then */ });
}
window.addEventListener('offline', () => offlineView());
window.addEventListener('online', () => { offlineView(); if (token()) loadTasks(); });

function offlineView() {
  const el = document.getElementById('offline');
  if (el) el.hidden = navigator.onLine;
}

function loginView() {
  const err = h('div');
  const name = h('input', { type: 'tel', inputmode: 'tel', 'data-i18n-ph': 'login.phone_hint', placeholder: t('login.phone_hint'), testid: 'app-login-name', autocomplete: 'tel' });
  const pass = h('input', { type: 'password', 'data-i18n-ph': 'login.password', placeholder: t('login.password'), testid: 'app-login-password', autocomplete: 'current-password' });
  root.replaceChildren(h('form.login', { onsubmit: async (e) => {
    e.preventDefault();
    try { await login('responder', name.value.trim(), pass.value); start(); } catch (x) { showError(err, x, true); }
  } },
  h('h1', { i18n: 'app.responder_title' }), h('p.muted', { i18n: 'app.login_hint' }),
  h('label.field', h('span', { testid: 'app-login-label', i18n: 'login.phone' }), name),
  h('label.field', h('span', { i18n: 'login.password' }), pass), err,
  h('button.primary', { type: 'submit', testid: 'app-login-submit', i18n: 'login.submit' }),
  h('button', { type: 'button', testid: 'lang-switch', i18n: 'lang.switch', onclick: toggleLang })));
}

function shell() {
  root.replaceChildren(
    h('header.top', h('span.brand', { i18n: 'app.responder_title' }), h('span', { style: 'flex:1' }),
      h('button', { testid: 'lang-switch', i18n: 'lang.switch', onclick: toggleLang }),
      h('button', { testid: 'logout', i18n: 'logout', onclick: async () => {
        if (onDuty) await setDuty(false);
        try { await post('/auth/logout'); } catch { /* signing out anyway */ }
        setToken(null); stream?.close(); loginView();
      } })),
    h('div.offline-bar', { id: 'offline', testid: 'offline', hidden: navigator.onLine, i18n: 'app.offline' }),
    h('main',
      h('div.card.duty', h('button', { id: 'duty', testid: 'duty-toggle', onclick: () => setDuty(!onDuty) }),
        h('span', { id: 'duty-status', testid: 'duty-status' })),
      h('div', { id: 'msg' }),
      h('h2', { i18n: 'app.tasks' }),
      h('div', { id: 'tasks', testid: 'tasks' }),
      h('div', { id: 'centre' })));
  dutyView();
}

function dutyView() {
  const b = document.getElementById('duty'), s = document.getElementById('duty-status');
  if (!b) return;
  b.className = onDuty ? '' : 'ok';
  b.dataset.i18n = onDuty ? 'app.off_duty' : 'app.on_duty';
  b.textContent = t(b.dataset.i18n);
  s.dataset.on = onDuty ? '1' : '0';
  s.dataset.i18n = onDuty ? 'app.status_on' : 'app.status_off';
  s.textContent = t(s.dataset.i18n);
  const c = document.getElementById('centre');
  if (c) c.replaceChildren(centrePhone ? h('a.button.call.centre', { href: `tel:${centrePhone}`, testid: 'call-centre' }, `☎ ${t('app.call_centre', { phone: centrePhone })}`) : '');
}

const msg = () => document.getElementById('msg');

function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition((p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  });
}

function follow(on) {
  if (watch !== null) { navigator.geolocation.clearWatch(watch); watch = null; }
  if (on && navigator.geolocation) {
    watch = navigator.geolocation.watchPosition((p) => {
      here = { lat: p.coords.latitude, lon: p.coords.longitude };
      if (Date.now() - lastSent > 15000) { lastSent = Date.now(); post('/responder/location', here).catch(() => {}); }
      renderTasks();
    }, () => {}, { enableHighAccuracy: true });
  }
}

async function setDuty(on) {
  try {
    if (on && 'Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
    here = on ? (await position()) || here : here;
    if (on && !here) toast(t('app.no_location'), 'error');
    await post('/responder/duty', { on_duty: on, lat: here?.lat ?? null, lon: here?.lon ?? null });
    onDuty = on;
    follow(on);
    dutyView();
  } catch (e) { showError(msg(), e, true); }
}

function distance(a, b) {
  const R = 6371000, rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
  const x = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(x));
}

let tasks = [];
const isLive = (x) => ['pending', 'offered', 'accepted', 'arrived'].includes(x.offer.status);

async function loadTasks() {
  let next;
  try { next = (await get('/responder/tasks')).filter(isLive); } catch (e) { showError(msg(), e, true); return; }
  const ids = new Set(next.map((x) => x.offer.incident_id));
  // An offer that disappears without this phone answering it expired, was withdrawn or was taken.
  for (const old of tasks) {
    const id = old.offer.incident_id;
    if (!ids.has(id) && ['pending', 'offered'].includes(old.offer.status) && !answered.has(id)) {
      msg().replaceChildren(h('div.notice', { testid: 'offer-gone', role: 'status' }, t('app.offer_gone', { id })));
    }
  }
  for (const task of next) {
    const id = task.offer.incident_id;
    if (task.offer.status === 'pending' && !known.has(id)) announce(task);
    known.add(id);
  }
  tasks = next;
  renderTasks();
}

/**
 * A new offer: vibrate, and a system notification (through the service worker, so it shows while
 * the app is in the background or the screen is locked; one per offer, by its tag).
 */
async function announce(task) {
  try { navigator.vibrate?.([300, 100, 300, 100, 600]); } catch { /* no vibration */ }
  // What happened to the last announcement, for a person (or a test) looking at the page.
  const said = (how) => { document.body.dataset.notified = how; };
  if (!('Notification' in window) || Notification.permission !== 'granted') return said('not_allowed');
  const dist = here && task.lat !== null ? distance(here, { lat: task.lat, lon: task.lon }) : null;
  const title = t('app.new_offer', { kind: kindName(task.kind) });
  const body = [task.elder_name, task.address, dist === null ? null : metres(dist)].filter(Boolean).join(' · ');
  try {
    const reg = await navigator.serviceWorker?.ready;
    const options = { body, tag: `offer-${task.offer.incident_id}`, vibrate: [300, 100, 300, 100, 600], requireInteraction: true, icon: '/assets/icon-192.png', data: { url: '/app' } };
    if (reg) await reg.showNotification(title, options); else new Notification(title, options);
    said('shown');
  } catch (e) { said(`failed: ${e.message}`); /* the card and the vibration remain */ }
}

const answered = new Set();
const DONE_KEYS = { accept: 'app.accepted', decline: 'app.declined', arrived: 'app.marked_arrived', completed: 'app.task_done' };

function renderTasks() {
  const box = document.getElementById('tasks');
  if (!box) return;
  if (!tasks.length) { box.replaceChildren(h('p.muted', { testid: 'no-tasks', i18n: 'app.no_tasks' })); return; }
  keepInputs(box, () => box.replaceChildren(...tasks.map((task) => {
    const o = task.offer, id = o.incident_id;
    const holds = o.status === 'accepted' || o.status === 'arrived';
    const act = (path, body) => async (e) => {
      e.currentTarget.disabled = true;
      confirming = null;
      answered.add(id);
      try { await post(`/responder/tasks/${id}/${path}`, body); toast(t(DONE_KEYS[path])); }
      catch (x) { showError(msg(), x.status === 409 ? new Error(t('app.taken')) : x, true); }
      await loadTasks();
    };
    const ask = (action) => () => { confirming = { id, action }; renderTasks(); };
    const confirmBar = confirming?.id === id
      ? h('div.confirm', { testid: 'confirm' }, h('p', { testid: 'confirm-text' }, t(confirming.action === 'decline' ? 'app.confirm_decline' : 'app.confirm_arrived')),
        h('div.buttons', h('button.danger', { testid: 'confirm-yes', i18n: 'app.confirm', onclick: act(confirming.action) }),
          h('button', { testid: 'confirm-no', i18n: 'app.cancel', onclick: () => { confirming = null; renderTasks(); } })))
      : null;
    const dist = here && task.lat !== null ? distance(here, { lat: task.lat, lon: task.lon }) : null;
    const nav = task.lat !== null ? `geo:${task.lat},${task.lon}?q=${task.lat},${task.lon}` : null;
    const note = h('textarea', { testid: 'complete-note', 'data-i18n-ph': 'app.complete_note', placeholder: t('app.complete_note') });
    const tel = (number, testid, label) => number ? h('a.button.call', { href: `tel:${number}`, testid }, `☎ ${label ? `${label} ` : ''}${number}`) : null;
    return h(`div.card.${holds ? 'accepted' : 'offer'}`, { testid: `task-${id}`, 'data-status': o.status },
      h('div.title', kindBadge(task.kind, { testid: 'task-kind', big: true }), ' ', h('span', holds ? t(`offer.${o.status}`) : t('app.offer')), ` · #${id}`),
      h('dl.kv',
        h('dt', { i18n: 'app.elder' }), h('dd', { testid: 'task-elder' }, task.elder_name || '—'),
        h('dt', { i18n: 'app.distance' }), h('dd', { testid: 'task-distance' }, metres(dist)),
        h('dt', { i18n: 'app.address' }), h('dd', { testid: 'task-address' }, task.address || '—'),
        h('dt', { i18n: 'app.category' }), h('dd', { testid: 'task-category' }, task.category ? t(`cat.${task.category}`) : '—'),
        ...(holds ? [] : [h('dt', { i18n: 'app.expires' }), h('dd', { testid: 'task-expires', 'data-until': o.expires_at }, left(o.expires_at))]),
        ...(holds ? [h('dt', { i18n: 'app.key_safe' }), h('dd.secret', { testid: 'task-key-safe' }, task.key_safe_code || '—'),
          h('dt', { i18n: 'app.health' }), h('dd', { testid: 'task-health' }, task.health_notes || '—'),
          h('dt', { i18n: 'app.phone' }), h('dd', tel(task.elder_phone, 'task-call-elder') || '—'),
          h('dt', { i18n: 'app.contacts' }), h('dd', { testid: 'task-contacts' }, task.contacts?.length ? h('ul.contacts', task.contacts.map((c, i) => h('li',
            `${c.name}（${c.relation || '—'}）`, c.key_holder ? h('span.badge', { i18n: 'incident.key_holder' }) : '', ' ', tel(c.phone, `task-call-contact-${i}`)))) : '—')] : [])),
      confirmBar,
      h('div.buttons',
        nav ? h('a.button', { href: nav, testid: 'task-navigate', i18n: 'app.navigate' }) : null,
        o.status === 'pending' || o.status === 'offered' ? [
          h('button.ok', { testid: 'task-accept', i18n: 'app.accept', onclick: act('accept') }),
          h('button', { testid: 'task-decline', i18n: 'app.decline', onclick: ask('decline') })] : null,
        o.status === 'accepted' ? h('button.primary', { testid: 'task-arrived', i18n: 'app.arrived', onclick: ask('arrived') }) : null),
      o.status === 'arrived' ? h('div', note, h('div.buttons', h('button.ok', { testid: 'task-completed', i18n: 'app.completed', onclick: (e) => act('completed', { note: note.value })(e) }))) : null);
  })));
}

function left(until) {
  const s = Math.max(0, Math.round((until - Date.now()) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
setInterval(() => { for (const el of document.querySelectorAll('[data-until]')) el.textContent = left(Number(el.dataset.until)); }, 1000);

function connect() {
  stream?.close();
  stream = openStream('/responder/stream');
  const again = () => loadTasks();
  // Tell the centre the message reached this phone (the console shows the offer as received).
  const receipt = (e) => {
    const id = Number(e.lastEventId);
    if (Number.isFinite(id) && id > 0) post('/responder/receipts', { ids: [id] }).catch(() => {});
  };
  for (const kind of ['offer', 'assigned', 'stand_down', 'escalation', 'cancel_notice', 'message', 'resync', 'push']) {
    stream.addEventListener(kind, (e) => { receipt(e); again(e); });
  }
  stream.onopen = again;
}

async function start() {
  shell();
  apply();
  try {
    const [me, config] = await Promise.all([get('/responder/me'), get('/console/config')]);
    onDuty = me.on_duty;
    centrePhone = config.centre_phone;
    follow(onDuty);
    if (onDuty) here = (await position()) || here;
  } catch (e) { showError(msg(), e, true); }
  dutyView();
  connect();
  await loadTasks();
}

window.addEventListener('onekey:unauthorized', () => { if (token()) { setToken(null); stream?.close(); loginView(); } });
onLangChange(() => { dutyView(); renderTasks(); });
apply();
if (token()) { keepSessionAlive(); start(); } else loginView();
