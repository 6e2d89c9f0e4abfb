// The responders' app (mobile): log in, go on duty sharing the browser's location, receive offers
// live, accept or decline, navigate, then (task holders only) key-safe code and health notes,
// arrived, completed with a note.

import { call, login, logout, stream, token, esc, metres } from './api.js';
import { t, tv, apply, toggle } from './i18n.js';

const state = { me: null, onDuty: false, position: null, tasks: [], es: null, watch: null };
const $ = (sel) => document.querySelector(sel);

apply();
$('#lang').addEventListener('click', () => toggle(render));
$('#logout').addEventListener('click', async () => { await logout(); location.reload(); });
$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    state.me = await login('responder', f.get('name'), f.get('password'));
    await start();
  } catch (err) {
    $('#login-error').textContent = `${t('login_failed')}: ${err.message}`;
  }
});
$('#duty').addEventListener('click', () => setDuty(!state.onDuty));
if (token()) start().catch(() => { sessionStorage.clear(); location.reload(); });

async function start() {
  $('#login').hidden = true;
  $('#home').hidden = false;
  $('#logout').hidden = false;
  const me = await call('GET', '/api/v1/auth/me');
  state.me = me;
  const profile = await call('GET', `/api/v1/responders/${me.id}`).catch(() => null);
  state.onDuty = Boolean(profile?.on_duty);
  if (state.onDuty) locate(() => {});
  connect();
  await refresh();
  setInterval(refresh, 10000);
}

function connect() {
  state.es?.close();
  state.es = stream('/api/v1/responder/stream');
  for (const kind of ['offer', 'assigned', 'stand_down', 'escalation', 'resync', 'push']) {
    state.es.addEventListener(kind, () => refresh());
  }
}

/** Reads the browser's position; calls `done(position | null)`. */
function locate(done) {
  if (!navigator.geolocation) { done(null); return; }
  navigator.geolocation.getCurrentPosition(
    (p) => { state.position = { lat: p.coords.latitude, lon: p.coords.longitude }; done(state.position); },
    () => { $('#duty-error').textContent = t('location_denied'); done(null); },
    { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 },
  );
  if (state.watch == null && navigator.geolocation.watchPosition) {
    state.watch = navigator.geolocation.watchPosition((p) => {
      state.position = { lat: p.coords.latitude, lon: p.coords.longitude };
      if (state.onDuty) call('POST', '/api/v1/responder/location', state.position).catch(() => {});
    }, () => {}, { enableHighAccuracy: true, maximumAge: 30000 });
  }
}

function setDuty(on) {
  $('#duty-error').textContent = '';
  const send = async (pos) => {
    try {
      await call('POST', '/api/v1/responder/duty', { on_duty: on, lat: pos?.lat ?? null, lon: pos?.lon ?? null });
      state.onDuty = on;
      render();
    } catch (err) { $('#duty-error').textContent = `${t('error')}: ${err.message}`; }
  };
  if (on) locate(send); else send(null);
}

async function refresh() {
  try { state.tasks = await call('GET', '/api/v1/responder/tasks'); } catch (err) { $('#duty-error').textContent = err.message; return; }
  render();
}

function render() {
  $('#duty-state').textContent = state.onDuty ? t('on_duty_now') : t('off_duty_now');
  $('#duty-state').className = state.onDuty ? 'badge ok' : 'badge';
  $('#duty').textContent = state.onDuty ? t('go_off_duty') : t('go_on_duty');
  const list = $('#tasks');
  if (!state.tasks.length) { list.innerHTML = `<p class="muted">${t('no_tasks')}</p>`; return; }
  list.innerHTML = state.tasks.map((task) => {
    const o = task.offer;
    const dist = state.position && task.lat != null ? metres(state.position.lat, state.position.lon, task.lat, task.lon) : null;
    const nav = task.lat != null ? `https://uri.amap.com/marker?position=${task.lon},${task.lat}&name=${encodeURIComponent(task.address || '')}` : null;
    const holder = ['accepted', 'arrived'].includes(o.status);
    return `<article class="card task cat-${esc(task.category)}" data-testid="task" data-incident="${o.incident_id}" data-status="${esc(o.status)}">
      <h3>${o.status === 'pending' ? `<span class="badge cat-emergency">${t('new_offer')}</span> ` : ''}${esc(tv('kind', task.kind))} · ${esc(tv('cat', task.category))}</h3>
      <p data-testid="task-distance">${t('distance')}: ${dist == null ? '—' : dist < 1000 ? `${Math.round(dist)} m` : `${(dist / 1000).toFixed(1)} km`}</p>
      <p>${t('address')}: <b data-testid="task-address">${esc(task.address || '—')}</b> ${nav ? `<a href="${nav}" target="_blank" rel="noopener" data-testid="task-navigate">${t('navigate')}</a>` : ''}</p>
      ${holder ? `<p>${t('key_safe_code')}: <b data-testid="task-key">${esc(task.key_safe_code || '—')}</b></p><p>${t('health_notes')}: <span data-testid="task-notes">${esc(task.health_notes || '—')}</span></p>` : ''}
      <p class="muted">${esc(tv('offer', o.status))}</p>
      <div class="row">
        ${o.status === 'pending' ? `<button data-do="accept" data-testid="task-accept">${t('accept')}</button><button data-do="decline" class="secondary" data-testid="task-decline">${t('decline')}</button>` : ''}
        ${o.status === 'accepted' ? `<button data-do="arrived" data-testid="task-arrived">${t('arrived')}</button>` : ''}
        ${o.status === 'arrived' ? `<input data-note placeholder="${t('completion_note')}" data-testid="task-note"><button data-do="completed" data-testid="task-complete">${t('complete')}</button>` : ''}
      </div></article>`;
  }).join('');
  for (const b of list.querySelectorAll('button[data-do]')) {
    b.addEventListener('click', async () => {
      const card = b.closest('[data-incident]');
      const note = card.querySelector('[data-note]')?.value || '';
      b.disabled = true;
      try {
        await call('POST', `/api/v1/responder/tasks/${card.dataset.incident}/${b.dataset.do}`, b.dataset.do === 'completed' ? { note } : {});
      } catch (err) { $('#duty-error').textContent = `${t('error')}: ${err.message}`; }
      await refresh();
    });
  }
}
