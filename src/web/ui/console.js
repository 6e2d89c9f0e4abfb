// The operators' console: live queue with SLA clocks and an alarm sound, incident page with the
// elder's record, timeline, actions and map, city map, fleet, reports and administration.

import { call, login, logout, stream, token, esc, clock, when } from './api.js';
import { t, tv, apply, toggle } from './i18n.js';
import { drawMap } from './map.js';
import { histogram, bars } from './charts.js';

/** SLA targets in seconds per category (the server's defaults, README "Dispatch policy"). */
const SLA = {
  emergency: { ack: 60, responder: 120, scene: 1800 },
  service: { scene: 86400 },
  technical: { scene: 7200 },
  welfare: { scene: 86400 },
};
const OUTCOMES = ['resolved', 'emergency_services', 'false_alarm', 'resolved_by_phone', 'service_completed', 'duplicate'];

const state = { incidents: [], elders: new Map(), areas: [], responders: [], detail: null, es: null, audio: null };
const $ = (sel) => document.querySelector(sel);
const view = () => $('#view');

apply();
$('#lang').addEventListener('click', () => toggle(render));
$('#logout').addEventListener('click', async () => { await logout(); location.reload(); });
$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  unlockAudio();
  const f = new FormData(e.target);
  try {
    await login('operator', f.get('name'), f.get('password'));
    await start();
  } catch (err) {
    $('#login-error').textContent = `${t('login_failed')}: ${err.message}`;
  }
});
if (token()) start().catch(() => { sessionStorage.clear(); location.reload(); });

async function start() {
  $('#login').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  view().hidden = false;
  await loadDirectory();
  connect();
  window.addEventListener('hashchange', render);
  if (!location.hash) location.hash = '#/queue';
  await refreshQueue();
  render();
  setInterval(tick, 1000);
}

async function loadDirectory() {
  const [elders, areas, responders] = await Promise.all([
    call('GET', '/api/v1/elders?limit=10000'),
    call('GET', '/api/v1/areas'),
    call('GET', '/api/v1/responders?limit=10000'),
  ]);
  state.elders = new Map(elders.map((e) => [e.id, e]));
  state.areas = areas;
  state.responders = responders;
}

// ---- live feed -------------------------------------------------------------------------------

let refreshTimer = null;
function connect() {
  state.es?.close();
  const es = stream('/api/v1/stream');
  state.es = es;
  es.onopen = () => { $('#live').textContent = t('live'); $('#live').className = 'live ok'; refreshQueue(); };
  es.onerror = () => { $('#live').textContent = t('offline_stream'); $('#live').className = 'live bad'; };
  es.addEventListener('incident', (e) => {
    let ev;
    try { ev = JSON.parse(e.data); } catch { return; }
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      if (ev.kind === 'opened' && !state.elders.has(ev.detail?.elder_id)) await loadDirectory().catch(() => {});
      await refreshQueue();
      if (route().name === 'incident' && route().id === ev.incident_id) renderIncident(ev.incident_id);
      if (route().name === 'map') renderMap();
    }, 150);
  });
}

async function refreshQueue() {
  try {
    state.incidents = await call('GET', '/api/v1/incidents?status=open&limit=500');
  } catch (err) {
    status(err.message);
    return;
  }
  if (route().name === 'queue') renderQueue();
  tick();
}

// ---- SLA clocks and the alarm sound --------------------------------------------------------

function slaCell(inc, clockName) {
  const target = SLA[inc.category]?.[clockName];
  if (!target) return { text: '—', cls: '' };
  const doneAt = { ack: inc.acked_at, responder: inc.accepted_at, scene: inc.on_scene_at ?? (inc.category !== 'emergency' ? inc.closed_at : null) }[clockName];
  if (doneAt) {
    const took = (doneAt - inc.received_at) / 1000;
    return { text: `${t('done')} ${clock(took)}`, cls: took > target ? 'sla done breached' : 'sla done' };
  }
  const left = target - (Date.now() - inc.received_at) / 1000;
  return { text: left < 0 ? `${t('breached')} ${clock(left)}` : clock(left), cls: left < 0 ? 'sla breached' : left < target * 0.25 ? 'sla soon' : 'sla' };
}

function tick() {
  for (const cell of document.querySelectorAll('[data-sla]')) {
    const inc = state.incidents.find((i) => i.id === Number(cell.dataset.incident)) || state.detail?.incident;
    if (!inc) continue;
    const { text, cls } = slaCell(inc, cell.dataset.sla);
    cell.textContent = text;
    cell.className = cls;
  }
  for (const cell of document.querySelectorAll('[data-age]')) cell.textContent = clock((Date.now() - Number(cell.dataset.age)) / 1000);
  const ringing = state.incidents.some((i) => i.category === 'emergency' && !i.acked_at);
  $('#alarm').hidden = !ringing;
  if (ringing && Date.now() - (state.lastBeep || 0) > 2500) { state.lastBeep = Date.now(); beep(); }
}

function unlockAudio() {
  try {
    state.audio = state.audio || new AudioContext();
    state.audio.resume?.();
  } catch { state.audio = null; }
}

function beep() {
  const ctx = state.audio;
  if (!ctx) return;
  try {
    for (const [at, freq] of [[0, 880], [0.35, 660]]) {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.25);
    }
  } catch { /* no audio device */ }
}

// ---- routing --------------------------------------------------------------------------------

function route() {
  const [, name = 'queue', id] = location.hash.split('/');
  return { name, id: id ? Number(id) : null };
}

function status(message) {
  const line = $('#status');
  if (line) line.textContent = message || '';
}

function render() {
  const r = route();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === `#/${r.name}`);
  state.detail = null;
  ({ queue: renderQueue, incident: () => renderIncident(r.id), map: renderMap, fleet: renderFleet, reports: renderReports, admin: renderAdmin }[r.name] || renderQueue)();
}

function elderName(id) { return state.elders.get(id)?.name ?? (id ? `#${id}` : '—'); }

// ---- queue ----------------------------------------------------------------------------------

function renderQueue() {
  const rows = state.incidents.map((i) => `
    <tr class="cat-${esc(i.category)}" data-testid="queue-row" data-id="${i.id}" data-status="${esc(i.status)}">
      <td><span class="badge cat-${esc(i.category)}">${esc(tv('cat', i.category))}</span></td>
      <td><a href="#/incident/${i.id}" data-testid="queue-open">${esc(tv('kind', i.kind))}</a>${i.probable_false_alarm ? ' <span class="badge">?</span>' : ''}</td>
      <td>${esc(elderName(i.elder_id))}</td>
      <td data-age="${i.received_at}"></td>
      <td data-testid="queue-status">${esc(tv('st', i.status))}</td>
      <td data-sla="ack" data-incident="${i.id}"></td>
      <td data-sla="responder" data-incident="${i.id}"></td>
      <td data-sla="scene" data-incident="${i.id}"></td>
    </tr>`).join('');
  view().innerHTML = `
    <p id="status" class="error"></p>
    <table class="queue" data-testid="queue">
      <thead><tr><th>${t('col_priority')}</th><th>${t('col_kind')}</th><th>${t('col_elder')}</th><th>${t('col_age')}</th>
      <th>${t('col_status')}</th><th>${t('col_sla_ack')}</th><th>${t('col_sla_responder')}</th><th>${t('col_sla_scene')}</th></tr></thead>
      <tbody>${rows || `<tr><td colspan="8" class="muted">${t('queue_empty')}</td></tr>`}</tbody>
    </table>`;
  for (const tr of view().querySelectorAll('tr[data-id]')) tr.addEventListener('click', (e) => {
    if (e.target.tagName !== 'A') location.hash = `#/incident/${tr.dataset.id}`;
  });
  tick();
}

// ---- incident page ----------------------------------------------------------------------------

async function renderIncident(id) {
  let d;
  try { d = await call('GET', `/api/v1/incidents/${id}`); } catch (err) { view().innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
  if (route().name !== 'incident' || route().id !== id) return;
  state.detail = d;
  const i = d.incident, e = d.elder, dev = d.device;
  const grid = state.areas.find((a) => a.id === e?.grid_id);
  const contacts = (e?.contacts || []).map((c) => `<li>${esc(c.name)} (${esc(c.relation || '')}) ${esc(c.phone)}${c.key_holder ? ` · ${t('key_holder')}` : ''}</li>`).join('');
  const previous = d.previous.map((p) => `<li><a href="#/incident/${p.id}">${when(p.received_at)} · ${esc(tv('kind', p.kind))} · ${esc(tv('st', p.status))}${p.outcome ? ' · ' + esc(tv('out', p.outcome)) : ''}</a></li>`).join('');
  const timeline = d.events.map((ev) => `<li data-testid="timeline-item" data-kind="${esc(ev.kind)}"><time>${when(ev.at)}</time> <b>${esc(ev.kind)}</b> <span class="muted">${esc(ev.actor)}</span> ${esc(summary(ev.detail))}</li>`).join('');
  const offers = (d.offers || []).map((o) => `<li data-testid="offer" data-status="${esc(o.status)}">${esc(o.name)} · ${esc(o.role)} · <b>${esc(tv('offer', o.status))}</b></li>`).join('');
  const people = state.responders.slice().sort((a, b) => Number(b.on_duty) - Number(a.on_duty));
  const open = i.status !== 'closed';
  const points = [{ lat: e?.lat ?? i.location?.lat, lon: e?.lon ?? i.location?.lon, label: e?.name || t('legend_elder'), cls: 'pt-elder', r: 9, testid: 'map-elder' }]
    .concat((d.offers || []).map((o) => ({ lat: o.lat, lon: o.lon, label: `${o.name} (${tv('offer', o.status)})`, cls: ['accepted', 'arrived', 'completed'].includes(o.status) ? 'pt-accepted' : 'pt-offered', testid: `map-responder-${o.status}` })));
  view().innerHTML = `
    <p id="status" class="error"></p>
    <div class="incident-head card">
      <h2><span class="badge cat-${esc(i.category)}">${esc(tv('cat', i.category))}</span> ${esc(tv('kind', i.kind))} · #${i.id}
        <span data-testid="incident-status" class="status">${esc(tv('st', i.status))}</span></h2>
      <div class="clocks">${t('col_sla_ack')} <b data-sla="ack" data-incident="${i.id}"></b> · ${t('col_sla_responder')} <b data-sla="responder" data-incident="${i.id}"></b> · ${t('col_sla_scene')} <b data-sla="scene" data-incident="${i.id}"></b></div>
      ${i.category === 'emergency' && open ? `<p class="warn">${t('call_120')}</p>` : ''}
    </div>
    <div class="grid2">
      <div class="card">
        <h3>${t('elder_record')}</h3>
        <div class="elder"><div class="photo" aria-label="${t('photo')}">${esc((e?.name || '?').slice(0, 1))}</div>
        <dl><dt>${t('col_elder')}</dt><dd data-testid="elder-name">${esc(e?.name || '—')}</dd>
        <dt>${t('address')}</dt><dd>${esc(e?.address || '—')}</dd>
        <dt>${t('living')}</dt><dd>${esc(tv('living', e?.living))}</dd>
        <dt>${t('health_notes')}</dt><dd>${esc(e?.health_notes || t('none'))}</dd>
        <dt>${t('medications')}</dt><dd>${esc(e?.medications || t('none'))}</dd></dl></div>
        <h4>${t('contacts')}</h4><ul>${contacts || `<li>${t('none')}</li>`}</ul>
        <h4>${t('device')}</h4>
        <dl>${dev ? `<dt>${t('protocol')}</dt><dd>${esc(dev.protocol)} · ${esc(dev.ident)}</dd><dt>${t('model')}</dt><dd>${esc(dev.model)}</dd>
        <dt>${t('battery')}</dt><dd>${dev.battery_pct == null ? '—' : dev.battery_pct + '%'}</dd><dt>${t('signal')}</dt><dd>${dev.signal_pct == null ? '—' : dev.signal_pct + '%'}</dd>
        <dt>${t('last_heartbeat')}</dt><dd>${when(dev.last_seen)}</dd>` : `<dd>${t('none')}</dd>`}</dl>
        <h4>${t('previous')}</h4><ul>${previous || `<li>${t('none')}</li>`}</ul>
      </div>
      <div class="card">
        <h3>${t('map')}</h3>
        ${drawMap({ areas: grid ? [{ ...grid, highlight: true }] : [], points })}
        <p class="legend"><span class="pt-elder">●</span> ${t('legend_elder')} <span class="pt-offered">●</span> ${t('legend_offered')} <span class="pt-accepted">●</span> ${t('legend_accepted')}</p>
        <h4>${t('offers')}</h4><ul data-testid="offers">${offers || `<li>${t('none')}</li>`}</ul>
      </div>
    </div>
    <div class="card actions" ${open ? '' : 'hidden'}>
      <h3>${t('actions')}</h3>
      <div class="row">
        <button data-act="ack" data-testid="act-ack" ${i.acked_at ? 'disabled' : ''}>${t('acknowledge')}</button>
        <button data-act="cmd" data-cmd="help_coming">${t('cmd_help_coming')}</button>
        <button data-act="cmd" data-cmd="call_back">${t('cmd_call_back')}</button>
        <button data-act="cmd" data-cmd="locate">${t('cmd_locate')}</button>
        <button data-act="escalate" data-testid="act-escalate">${t('escalate')}</button>
        <button data-act="false" data-testid="act-false-alarm">${t('false_alarm')}</button>
      </div>
      <div class="row">
        <input id="note" placeholder="${t('note')}" data-testid="note-text"><button data-act="note" data-testid="act-note">${t('add_note')}</button>
      </div>
      <div class="row">
        <select id="offer-to" data-testid="offer-select">${people.map((p) => `<option value="${p.id}">${esc(p.name)}${p.on_duty ? ' ✓' : ''}</option>`).join('')}</select>
        <button data-act="offer" data-testid="act-offer">${t('offer')}</button>
      </div>
      <div class="row">
        <select id="outcome" data-testid="close-outcome">${OUTCOMES.map((o) => `<option value="${o}">${esc(tv('out', o))}</option>`).join('')}</select>
        <button data-act="close" data-testid="act-close">${t('close')}</button>
      </div>
    </div>
    <div class="card"><h3>${t('timeline')}</h3><ol class="timeline" data-testid="timeline">${timeline}</ol></div>`;
  for (const b of view().querySelectorAll('button[data-act]')) b.addEventListener('click', () => act(i.id, b));
  tick();
}

function summary(detail) {
  if (!detail || typeof detail !== 'object') return '';
  const parts = [];
  for (const k of ['kind', 'text', 'note', 'outcome', 'reason', 'responder_id', 'command']) if (detail[k] != null) parts.push(`${k}=${detail[k]}`);
  return parts.join(' ');
}

async function act(id, button) {
  const base = `/api/v1/incidents/${id}`;
  const acts = {
    ack: () => call('POST', `${base}/ack`, {}),
    cmd: () => call('POST', `${base}/command`, { command: button.dataset.cmd }),
    escalate: () => call('POST', `${base}/escalate`, { note: $('#note').value || '' }),
    false: () => call('POST', `${base}/close`, { outcome: 'false_alarm', note: $('#note').value || null }),
    note: () => call('POST', `${base}/notes`, { text: $('#note').value }),
    offer: () => call('POST', `${base}/offer`, { responder_id: Number($('#offer-to').value) }),
    close: () => call('POST', `${base}/close`, { outcome: $('#outcome').value, note: $('#note').value || null }),
  };
  button.disabled = true;
  try {
    await acts[button.dataset.act]();
    await refreshQueue();
    await renderIncident(id);
  } catch (err) {
    status(`${t('error')}: ${err.message}`);
    button.disabled = false;
  }
}

// ---- map ------------------------------------------------------------------------------------

async function renderMap() {
  try { state.responders = await call('GET', '/api/v1/responders?limit=10000'); } catch { /* keep the last list */ }
  const grids = state.areas.filter((a) => a.level === 'grid');
  const points = state.incidents.map((i) => {
    const e = state.elders.get(i.elder_id);
    return { lat: i.location?.lat ?? e?.lat, lon: i.location?.lon ?? e?.lon, label: `${tv('kind', i.kind)} · ${e?.name || ''}`, cls: 'pt-elder', r: 8, testid: 'map-incident' };
  }).concat(state.responders.filter((r) => r.on_duty).map((r) => ({ lat: r.lat ?? r.home_lat, lon: r.lon ?? r.home_lon, label: r.name, cls: 'pt-responder', r: 5, testid: 'map-responder' })));
  view().innerHTML = `<div class="card"><h3>${t('map')}</h3>${drawMap({ areas: grids, points, width: 900, height: 560 })}
    <p class="legend"><span class="pt-elder">●</span> ${t('legend_elder')} <span class="pt-responder">●</span> ${t('legend_responder')}</p></div>`;
}

// ---- fleet ----------------------------------------------------------------------------------

async function renderFleet() {
  let f;
  try { f = await call('GET', '/api/v1/fleet'); } catch (err) { view().innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
  const uncovered = f.grids.filter((g) => g.area_id != null && g.uncovered);
  const rows = f.grids.map((g) => `<tr data-testid="fleet-grid" class="${g.uncovered ? 'uncovered' : ''}">
    <td>${esc(g.name || g.code || '—')}</td><td>${g.devices.online}</td><td>${g.devices.silent}</td><td>${g.devices.low_battery}</td><td>${g.devices.tamper}</td><td>${g.devices.total}</td>
    <td>${g.responders_on_duty}</td><td>${g.area_id == null ? '' : g.uncovered ? `<span class="badge cat-emergency">${t('uncovered')}</span>` : t('covered')}</td></tr>`).join('');
  view().innerHTML = `
    ${uncovered.length ? `<p class="warn" data-testid="uncovered-alarm">${t('uncovered')}: ${uncovered.map((g) => esc(g.name)).join('、')}</p>` : ''}
    <div class="card"><h3>${t('fleet')}</h3><table data-testid="fleet"><thead><tr><th>${t('grid')}</th><th>${t('online')}</th><th>${t('silent')}</th><th>${t('low_battery')}</th><th>${t('tamper')}</th><th>${t('total')}</th><th>${t('on_duty')}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

// ---- reports --------------------------------------------------------------------------------

async function renderReports() {
  let r;
  try { r = await call('GET', '/api/v1/reports'); } catch (err) { view().innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
  const pct = (x) => (x == null ? '—' : `${(x * 100).toFixed(1)}%`);
  const ok = r.answer.share_within_target == null || r.answer.share_within_target >= 0.975;
  view().innerHTML = `
    <div class="kpis">
      <div class="card kpi"><span>${t('incidents_total')}</span><b data-testid="report-total">${r.total}</b></div>
      <div class="card kpi"><span>${t('closed_total')}</span><b data-testid="report-closed">${r.closed}</b></div>
      <div class="card kpi ${ok ? '' : 'breached'}"><span>${t('within_target')}</span><b data-testid="report-within">${pct(r.answer.share_within_target)}</b><small>${t('target')}</small></div>
      <div class="card kpi"><span>${t('service_24h')}</span><b>${pct(r.service.share)}</b><small>${r.service.within_24h} / ${r.service.count}</small></div>
    </div>
    <div class="grid2">
      <div class="card"><h3>${t('answer_time')}</h3>${histogram(r.answer.histogram, { target: 60, unit: t('seconds'), testid: 'chart-answer' })}</div>
      <div class="card"><h3>${t('to_responder')}</h3>${histogram(r.to_responder.histogram, { target: 120, unit: t('seconds'), testid: 'chart-responder' })}</div>
      <div class="card"><h3>${t('to_scene')}</h3>${histogram(r.to_scene.histogram, { target: 1800, unit: t('seconds'), testid: 'chart-scene' })}</div>
      <div class="card"><h3>${t('false_alarm_rate')}</h3>${bars(r.false_alarms.map((m) => ({ label: m.model || '—', value: m.rate, text: `${m.false_alarms}/${m.incidents}` })), { testid: 'chart-false' })}</div>
    </div>`;
}

// ---- administration -------------------------------------------------------------------------

async function renderAdmin() {
  const [elders, devices, responders, operators] = await Promise.all([
    call('GET', '/api/v1/elders?limit=10000').catch(() => []),
    call('GET', '/api/v1/devices?limit=10000').catch(() => []),
    call('GET', '/api/v1/responders?limit=10000').catch(() => []),
    call('GET', '/api/v1/operators').catch(() => null),
  ]);
  const table = (title, head, rows) => `<details class="card"><summary>${title} (${rows.length})</summary><table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
  const area = (id) => state.areas.find((a) => a.id === id)?.name || '—';
  view().innerHTML = `
    <p id="status" class="error"></p>
    <div class="card"><h3>${t('import_csv')}</h3>
      <input type="file" id="csv-file" accept=".csv,.json,text/csv">
      <textarea id="csv" rows="5" placeholder="code,level,name,parent_code" data-testid="import-text"></textarea>
      <button id="import" data-testid="import-submit">${t('import')}</button> <span id="import-result" data-testid="import-result"></span></div>
    ${table(t('elders'), [t('col_elder'), t('address'), t('grid'), t('living')], elders.map((e) => `<tr><td>${esc(e.name)}</td><td>${esc(e.address)}</td><td>${esc(area(e.grid_id))}</td><td>${esc(tv('living', e.living))}</td></tr>`))}
    ${table(t('devices'), [t('protocol'), 'ID', t('model'), t('col_elder'), t('battery')], devices.map((d) => `<tr><td>${esc(d.protocol)}</td><td>${esc(d.ident)}</td><td>${esc(d.model)}</td><td>${esc(elderName(d.elder_id))}</td><td>${d.battery_pct ?? '—'}</td></tr>`))}
    ${table(t('responders'), [t('name'), t('grid'), t('on_duty')], responders.map((r) => `<tr><td>${esc(r.name)} · ${esc(r.kind)}</td><td>${esc(area(r.grid_id))}</td><td>${r.on_duty ? '✓' : ''}</td></tr>`))}
    ${table(t('grids'), ['code', t('name')], state.areas.map((a) => `<tr><td>${esc(a.code)}</td><td>${esc(a.name)} · ${esc(a.level)}</td></tr>`))}
    ${operators ? table(t('operators'), [t('name'), t('role')], operators.map((o) => `<tr><td>${esc(o.name)}</td><td>${esc(o.role)}</td></tr>`)) : ''}
    <form class="card" id="new-op"><h3>${t('new_operator')}</h3>
      <input name="name" placeholder="${t('name')}" required> <input name="password" type="password" placeholder="${t('password')}" required>
      <select name="role"><option>operator</option><option>admin</option></select> <button>${t('create')}</button></form>`;
  $('#csv-file').addEventListener('change', async (e) => { const f = e.target.files[0]; if (f) $('#csv').value = await f.text(); });
  $('#import').addEventListener('click', async () => {
    try {
      const r = await call('POST', '/api/v1/import', $('#csv').value);
      $('#import-result').textContent = `${t('imported')}: ${r.created} ${t('created')}, ${r.updated} ${t('existing')}, ${r.errors.length} ${t('errors')} ${r.errors.map((x) => x.message).join('; ')}`;
      await loadDirectory();
    } catch (err) { $('#import-result').textContent = `${t('error')}: ${err.message}`; }
  });
  $('#new-op').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await call('POST', '/api/v1/operators', { name: f.get('name'), password: f.get('password'), role: f.get('role') });
      status(t('saved'));
      renderAdmin();
    } catch (err) { status(`${t('error')}: ${err.message}`); }
  });
}
