// The responders' app (mobile): sign in, go on duty sharing the browser's location, receive offers
// live over /api/v1/responder/stream, accept or decline, navigate, mark arrived and completed.
import { t, apply, toggleLang, onLangChange } from './i18n.js';
import { get, post, login, token, setToken, showError, toast, h, keepInputs } from './api.js';

const root = document.getElementById('root');
let onDuty = false;
let here = null;
let watch = null;
let stream = null;
let lastSent = 0;

function loginView() {
  const err = h('div');
  const name = h('input', { 'data-i18n-ph': 'login.name', placeholder: t('login.name'), testid: 'app-login-name', autocomplete: 'username' });
  const pass = h('input', { type: 'password', 'data-i18n-ph': 'login.password', placeholder: t('login.password'), testid: 'app-login-password', autocomplete: 'current-password' });
  root.replaceChildren(h('form.login', { onsubmit: async (e) => {
    e.preventDefault();
    try { await login('responder', name.value, pass.value); start(); } catch (x) { showError(err, x, true); }
  } },
  h('h1', { i18n: 'app.responder_title' }), h('p.muted', { i18n: 'app.login_hint' }), name, pass, err,
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
    h('main',
      h('div.card.duty', h('button', { id: 'duty', testid: 'duty-toggle', onclick: () => setDuty(!onDuty) }),
        h('span', { id: 'duty-status', testid: 'duty-status' })),
      h('div', { id: 'msg' }),
      h('h2', { i18n: 'app.tasks' }),
      h('div', { id: 'tasks', testid: 'tasks' })));
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
}

const msg = () => document.getElementById('msg');

function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition((p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  });
}

async function setDuty(on) {
  try {
    here = on ? (await position()) || here : here;
    if (on && !here) toast(t('app.no_location'), 'error');
    await post('/responder/duty', { on_duty: on, lat: here?.lat ?? null, lon: here?.lon ?? null });
    onDuty = on;
    localStorage.setItem('onekey.app.duty', on ? '1' : '0');
    if (watch !== null) { navigator.geolocation.clearWatch(watch); watch = null; }
    if (on && navigator.geolocation) {
      watch = navigator.geolocation.watchPosition((p) => {
        here = { lat: p.coords.latitude, lon: p.coords.longitude };
        if (Date.now() - lastSent > 15000) { lastSent = Date.now(); post('/responder/location', here).catch(() => {}); }
        renderTasks();
      }, () => {}, { enableHighAccuracy: true });
    }
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
async function loadTasks() {
  try { tasks = await get('/responder/tasks'); } catch (e) { showError(msg(), e, true); }
  renderTasks();
}

function renderTasks() {
  const box = document.getElementById('tasks');
  if (!box) return;
  const live = tasks.filter((x) => ['pending', 'offered', 'accepted', 'arrived'].includes(x.offer.status));
  if (!live.length) { box.replaceChildren(h('p.muted', { testid: 'no-tasks', i18n: 'app.no_tasks' })); return; }
  keepInputs(box, () => box.replaceChildren(...live.map((task) => {
    const o = task.offer, id = o.incident_id;
    const holds = o.status === 'accepted' || o.status === 'arrived';
    const act = (path, body) => async (e) => {
      e.currentTarget.disabled = true;
      try { await post(`/responder/tasks/${id}/${path}`, body); toast(t('action.done')); }
      catch (x) { showError(msg(), x.status === 409 ? new Error(t('app.taken')) : x, true); }
      await loadTasks();
    };
    const dist = here && task.lat !== null ? distance(here, { lat: task.lat, lon: task.lon }) : null;
    const nav = task.lat !== null ? `geo:${task.lat},${task.lon}?q=${task.lat},${task.lon}` : null;
    const note = h('textarea', { testid: 'complete-note', 'data-i18n-ph': 'app.complete_note', placeholder: t('app.complete_note') });
    return h(`div.card.${holds ? 'accepted' : 'offer'}`, { testid: `task-${id}`, 'data-status': o.status },
      h('div.title', holds ? t(`offer.${o.status}`) : t('app.offer'), ` · #${id}`),
      h('dl.kv',
        h('dt', { i18n: 'app.category' }), h('dd', { testid: 'task-category' }, task.category ? t(`cat.${task.category}`) : '—'),
        h('dt', { i18n: 'app.distance' }), h('dd', { testid: 'task-distance' }, dist === null ? '—' : dist < 1000 ? `${Math.round(dist)} m` : `${(dist / 1000).toFixed(1)} km`),
        h('dt', { i18n: 'app.address' }), h('dd', { testid: 'task-address' }, task.address || '—'),
        ...(holds ? [] : [h('dt', { i18n: 'app.expires' }), h('dd', { testid: 'task-expires', 'data-until': o.expires_at }, left(o.expires_at))]),
        ...(holds ? [h('dt', { i18n: 'app.key_safe' }), h('dd.secret', { testid: 'task-key-safe' }, task.key_safe_code || '—'),
          h('dt', { i18n: 'app.health' }), h('dd', { testid: 'task-health' }, task.health_notes || '—')] : [])),
      h('div.buttons',
        nav ? h('a.button', { href: nav, testid: 'task-navigate', i18n: 'app.navigate' }) : null,
        o.status === 'pending' || o.status === 'offered' ? [
          h('button.ok', { testid: 'task-accept', i18n: 'app.accept', onclick: act('accept') }),
          h('button', { testid: 'task-decline', i18n: 'app.decline', onclick: act('decline') })] : null,
        o.status === 'accepted' ? h('button.primary', { testid: 'task-arrived', i18n: 'app.arrived', onclick: act('arrived') }) : null),
      o.status === 'arrived' ? h('div', note, h('div.buttons', h('button.ok', { testid: 'task-completed', i18n: 'app.completed', onclick: (e) => act('completed', { note: note.value })(e) }))) : null);
  })));
}

function left(until) {
  const s = Math.max(0, Math.round((until - Date.now()) / 1000));
  return `${s} ${t('time.s')}`;
}
setInterval(() => { for (const el of document.querySelectorAll('[data-until]')) el.textContent = left(Number(el.dataset.until)); }, 1000);

function connect() {
  stream?.close();
  stream = new EventSource(`/api/v1/responder/stream?token=${encodeURIComponent(token())}`);
  const again = () => loadTasks();
  for (const kind of ['offer', 'assigned', 'stand_down', 'escalation', 'resync', 'push']) stream.addEventListener(kind, again);
  stream.addEventListener('offer', () => { try { navigator.vibrate?.([300, 100, 300]); } catch { /* no vibration */ } });
  stream.onopen = again;
}

async function start() {
  shell();
  apply();
  connect();
  await loadTasks();
  if (localStorage.getItem('onekey.app.duty') === '1') await setDuty(true);
}

onLangChange(() => { dutyView(); renderTasks(); });
apply();
if (token()) start(); else loginView();
