// One incident, for the operator handling it: at the top what happened (alarm kind), where it
// stands (stage, outcome once closed), who handles it (take, hand over, release) and the clocks;
// the acknowledge button on its own; then the elder's record with call buttons on every number,
// the procedure for the alarm kind with its steps ticked into the log, the timeline (newest
// first, translated, actors by name), the actions, the responders (offers with time left, and a
// picker sorted by distance) and the map. `#incident-flags` is where per-incident flags go.
import { t, tOr, currentLang } from './i18n.js';
import { get, post, showError, toast, h, dur, clock, metres, keepInputs } from './api.js';
import { kindBadge, kindName } from './kinds.js';
import { stageBadge } from './queue.js';
import { incidentMap } from './map.js';

const OUTCOMES = ['resolved', 'emergency_services', 'false_alarm', 'resolved_by_phone', 'service_completed', 'duplicate'];
const RESULTS = ['reached', 'no_answer', 'busy', 'wrong_number', 'voicemail'];
let areas = null;
let colleagues = null;
let pickAll = false;
let pickQuery = '';
let callDraft = null;
let renderSeq = 0;
let drawn = '';
// A live update never replaces the page between a button's press and its release (the click
// would be lost).
let pressed = false;
let released = [];
document.addEventListener('pointerdown', () => { pressed = true; }, true);
// Resumed in a later task, so that the click that follows the release reaches its button first.
document.addEventListener('pointerup', () => { pressed = false; setTimeout(() => released.splice(0).forEach((f) => f()), 50); }, true);
const untilReleased = () => (pressed ? new Promise((r) => { released.push(r); setTimeout(r, 1500); }) : Promise.resolve());

const none = () => h('span.muted', { i18n: 'incident.none' });
const kv = (...pairs) => h('dl.kv', pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
  .flatMap(([k, v, testid]) => [h('dt', { i18n: k }), h('dd', { testid }, v)]));

function actorName(actor, actors) {
  if (!actor) return '';
  if (actor === 'system') return t('actor.system');
  if (actors?.[actor]) return actors[actor];
  const [kind, rest] = actor.split(':');
  return kind === 'operator' ? rest : kind === 'device' ? `${t('actor.device')} ${rest}` : actor;
}

function stepLabel(step) {
  return step.label?.[currentLang()] || step.label?.['zh-CN'] || tOr(`step.${step.id}`, step.id);
}

function evText(e, d) {
  const x = e.detail || {};
  const responder = (id) => actorName(`responder:${id}`, d.actors);
  switch (e.kind) {
    case 'opened': case 'alarm_joined': return x.alarm ? kindName(x.alarm) : x.service ? kindName(x.service) : '';
    case 'note': return x.text || '';
    case 'closed': return [x.outcome ? t(`outcome.${x.outcome}`) : '', x.note || ''].filter(Boolean).join(' · ');
    case 'command_sent': return tOr(`action.cmd.${x.command}`, x.command || '');
    case 'taken': return x.from ? `${x.from} → ${x.operator}` : x.operator || '';
    case 'handed_over': return t('evtext.handover', { from: x.from, to: x.to }) + (x.note ? ` · ${x.note}` : '');
    case 'procedure_step': {
      const step = d.procedure?.steps.find((s) => s.id === x.step) || { id: x.step };
      return t('evtext.step', { step: stepLabel(step), outcome: t(`step.${x.outcome}`) }) + (x.note ? ` · ${x.note}` : '');
    }
    case 'call': return t('evtext.call', { party: tOr(`party.${x.party}`, x.party), name: x.name || '', number: x.number, result: tOr(`call.${x.result}`, x.result) })
      + (x.note ? ` · ${x.note}` : '');
    case 'escalated': return [x.to === 'grid_worker' ? t('role.grid_worker') : x.to ? tOr(`account.${x.to}`, x.to) : '', x.note || ''].filter(Boolean).join(' · ');
    case 'sla_breached': return tOr(`col.sla_${x.clock}`, x.clock || '');
    default:
      if (x.responder_id !== undefined) return [responder(x.responder_id), x.role ? tOr(`role.${x.role}`, x.role) : '', x.note || ''].filter(Boolean).join(' · ');
      if (x.radius_m) return metres(x.radius_m);
      return x.text || x.note || '';
  }
}

/** A number as a one-click call: a `tel:` link that also opens the call record form. */
function callLink(party, name, number, rerender, testid) {
  if (!number) return null;
  return h('a.button.call', { href: `tel:${number}`, testid: testid || `call-${party}`, 'data-number': number,
    onclick: () => { callDraft = { party, name, number }; rerender(); } }, '☎ ', number);
}

function callForm(base, rerender) {
  if (!callDraft) return null;
  const result = h('select', { testid: 'call-result' }, RESULTS.map((r) => h('option', { value: r, i18n: `call.${r}` })));
  const note = h('input', { testid: 'call-note', 'data-i18n-ph': 'call.note', placeholder: t('call.note') });
  const msg = h('div');
  const who = `${tOr(`party.${callDraft.party}`, callDraft.party)} ${callDraft.name || ''} ${callDraft.number}`;
  return h('section.panel.call-form', { testid: 'call-form' },
    h('h2', t('call.title', { who })),
    h('div.actions', h('div.row', h('span', { i18n: 'call.result' }), result, note,
      h('button.primary', { testid: 'call-save', i18n: 'call.save', onclick: async () => {
        try {
          await post(`${base}/calls`, { ...callDraft, result: result.value, note: note.value || null });
          callDraft = null; rerender();
        } catch (e) { showError(msg, e, true); }
      } }),
      h('button', { testid: 'call-cancel', i18n: 'call.cancel', onclick: () => { callDraft = null; rerender(); } }))), msg);
}

export async function renderIncident(v, ctx, id, live = false) {
  if (!live) { v.replaceChildren(h('p.muted', '…')); callDraft = null; }
  // Renders overlap (a click and the live feed); only the latest one started may draw.
  const seq = ++renderSeq;
  let d, cands;
  const base = `/incidents/${id}`;
  try {
    [d, areas, cands, colleagues] = await Promise.all([get(base), areas ? Promise.resolve(areas) : get('/areas'),
      get(`${base}/candidates?all=${pickAll}&q=${encodeURIComponent(pickQuery)}`),
      colleagues ? Promise.resolve(colleagues) : get('/console/operators').catch(() => [])]);
  } catch (e) { showError(v, e, true); return; }
  if (seq !== renderSeq || !location.hash.startsWith(`#/incident/${id}`)) return;
  // Nothing new: leave the page as it is (the clocks tick on their own).
  const snapshot = JSON.stringify([d, cands, colleagues, callDraft, pickAll, pickQuery]);
  if (live && snapshot === drawn) return;
  await untilReleased();
  if (seq !== renderSeq) return;
  drawn = snapshot;
  const inc = d.incident, el = d.elder, dev = d.device, offers = d.offers || [];
  const rerender = () => renderIncident(v, ctx, id, true);
  const me = ctx.me?.name;
  const closed = inc.status === 'closed';
  const msg = h('div', { id: 'action-msg' });
  const act = (fn, done) => async (e) => {
    const b = e.currentTarget; b.disabled = true;
    try { await fn(); if (done) toast(done); await rerender(); } catch (x) { showError(msg, x, true); b.disabled = false; }
  };

  // --- header: what, where it stands, who has it
  const closedEvent = [...d.events].reverse().find((e) => e.kind === 'closed');
  const holder = inc.taken_by;
  const handoverTo = h('select', { testid: 'handover-to' }, colleagues.filter((n) => n !== me).map((n) => h('option', { value: n }, n)));
  const handler = h('div.handler', { testid: 'incident-handler-box' },
    h('span.muted', { i18n: 'incident.handler' }), ' ',
    h('b', { testid: 'incident-handler' }, holder || t('incident.nobody')), ' ',
    closed ? null : [
      !holder ? h('button.primary', { testid: 'action-take', i18n: 'incident.take', onclick: act(() => post(`${base}/take`, {})) }) : null,
      holder && holder !== me ? [h('span.warn', { testid: 'taken-by-other' }, t('incident.taken_by_other', { who: holder })), ' ',
        h('button', { testid: 'action-take-over', i18n: 'incident.take_over', onclick: act(() => post(`${base}/take`, { force: true })) })] : null,
      !holder || holder === me ? [handoverTo, h('button', { testid: 'action-handover', i18n: 'incident.handover', disabled: !colleagues.some((n) => n !== me),
        onclick: act(() => post(`${base}/handover`, { to: handoverTo.value })) })] : null,
      holder === me ? h('button', { testid: 'action-release', i18n: 'incident.release', onclick: act(() => post(`${base}/release`)) }) : null,
    ]);
  const ackButton = closed || inc.acked_at
    ? h('button.ack.done', { testid: 'action-ack', disabled: true }, '✓ ', h('span', { i18n: 'status.acknowledged' }), ` ${inc.acked_by || ''} ${clock(inc.acked_at)}`)
    : h('button.ack', { testid: 'action-ack', i18n: 'action.ack_big', onclick: act(() => post(`${base}/ack`)) });
  const head = h('section.incident-head', { testid: 'incident-head' },
    h('div.line1', kindBadge(inc.kind, { big: true, testid: 'incident-kind' }),
      h('h1', { testid: 'incident-title' }, `#${inc.id} `, h('span', { testid: 'incident-elder' }, el?.name || t('unknown'))),
      stageBadge(d.stage, inc.outcome, 'incident-status'),
      h('span.muted', clock(inc.received_at)),
      h('span', { id: 'incident-flags', testid: 'incident-flags' },
        inc.attention && !closed ? h('span.attention-flag', { testid: 'incident-attention', 'data-reason': inc.attention },
          h('span.badge.attention', { i18n: `attention.${inc.attention}` }), ' ',
          h('button.ack', { testid: 'action-attend', i18n: 'action.attend', onclick: act(() => post(`${base}/attention`)) })) : null,
        d.stage !== 'done' && inc.probable_false_alarm && !closed && offers.some((o) => ['accepted', 'arrived'].includes(o.status))
          ? h('button', { testid: 'action-confirm-false-alarm', i18n: 'action.confirm_false_alarm', onclick: act(() => post(`${base}/false-alarm`)) }) : null)),
    h('div.line2', handler, ackButton),
    closed ? h('div.closed-summary', { testid: 'closed-summary' },
      t('incident.closed_summary', { outcome: inc.outcome ? t(`outcome.${inc.outcome}`) : '', who: inc.closed_by || '', at: clock(inc.closed_at) }),
      closedEvent?.detail?.note ? h('div', { testid: 'closed-note' }, closedEvent.detail.note) : null) : null,
    h('div.clocks',
      h('span', h('span.muted', { i18n: 'col.sla_ack' }), ' ', ctx.slaCell(inc, 'ack')),
      h('span', h('span.muted', { i18n: 'col.sla_responder' }), ' ', ctx.slaCell(inc, 'responder')),
      h('span', h('span.muted', { i18n: 'col.sla_scene' }), ' ', ctx.slaCell(inc, 'scene'))));

  // --- elder, with a call button on every number
  const keyHolder = el?.contacts?.find((c) => c.key_holder);
  const contacts = el?.contacts?.length ? h('ul.contacts', el.contacts.map((c, i) => h('li', { testid: `contact-${i}` },
    `${c.name} (${c.relation || '—'}) `, c.key_holder ? h('span.badge', { i18n: 'incident.key_holder' }) : '', ' ',
    callLink(c.key_holder ? 'key_holder' : 'contact', c.name, c.phone, rerender, `call-contact-${i}`)))) : none();
  const elder = h('section.panel', { testid: 'elder' },
    h('div.photo', { title: t('incident.photo'), testid: 'elder-photo' }, (el?.name || '?').slice(0, 1)),
    h('h2', { i18n: 'incident.elder' }),
    h('div.big', { testid: 'elder-name' }, el?.name || t('unknown')),
    kv(['incident.address', el?.address, 'elder-address'],
      ['incident.phone', el?.phone ? callLink('elder', el.name, el.phone, rerender, 'call-elder') : null],
      ['incident.living', el ? t(`living.${el.living}`) : null],
      ['incident.health', el?.health_notes || null, 'elder-health'], ['incident.medications', el?.medications || null],
      ['incident.key_safe', el?.key_safe_code || null], ['incident.contacts', contacts],
      ['incident.previous', d.previous?.length ? h('ul', d.previous.map((p) => h('li', h('a', { href: `#/incident/${p.id}` }, `#${p.id}`), ' ', clock(p.received_at), ' ',
        kindName(p.kind), ' ', p.outcome ? t(`outcome.${p.outcome}`) : t(`status.${p.status}`)))) : null]));

  // --- the procedure for this kind
  const latest = new Map();
  for (const e of d.events) if (e.kind === 'procedure_step') latest.set(e.detail.step, e);
  const callFor = (step) => {
    const c = step.call;
    if (!c) return null;
    if (c === 'elder') return callLink('elder', el?.name, el?.phone, rerender, `step-call-${step.id}`);
    if (c === 'key_holder') return keyHolder ? callLink('key_holder', keyHolder.name, keyHolder.phone, rerender, `step-call-${step.id}`) : null;
    if (c === 'contacts') { const first = el?.contacts?.[0]; return first ? callLink('contact', first.name, first.phone, rerender, `step-call-${step.id}`) : null; }
    if (/^[0-9+]+$/.test(c)) return callLink('emergency', c, c, rerender, `step-call-${step.id}`);
    return null;
  };
  const procedure = h('section.panel', { testid: 'procedure' }, h('h2', { i18n: 'incident.procedure' }),
    d.procedure ? h('ol.steps', d.procedure.steps.map((s) => {
      const done = latest.get(s.id);
      const tick = (outcome) => h(`button.step-${outcome}`, { testid: `step-${s.id}-${outcome}`, disabled: closed, i18n: `step.${outcome}`,
        onclick: act(() => post(`${base}/steps`, { step: s.id, outcome })) });
      return h(`li.step${done ? `.ticked.${done.detail.outcome}` : ''}`, { testid: `step-${s.id}`, 'data-outcome': done?.detail.outcome || '' },
        h('span.step-label', stepLabel(s)), ' ', callFor(s),
        done ? h('span.step-state', h('b', t(`step.${done.detail.outcome}`)), ' ', h('span.muted', t('step.by', { who: actorName(done.actor, d.actors), at: clock(done.at) })))
          : h('span.step-buttons', tick('done'), tick('skipped'), tick('failed')));
    })) : h('p.muted', { i18n: 'incident.no_procedure' }));

  // --- timeline, newest first
  const timeline = h('section.panel', h('h2', { i18n: 'incident.timeline' }),
    h('ol.timeline', { testid: 'timeline' }, [...d.events].reverse().map((e) => h('li', { 'data-kind': e.kind, 'data-id': e.id },
      h('time', clock(e.at)), h('div', h('b', tOr(`ev.${e.kind}`, e.kind)), ' ', h('span.actor', actorName(e.actor, d.actors)),
        h('div.ev-text', evText(e, d)))))));

  // --- device
  const device = h('section.panel', { testid: 'device' }, h('h2', { i18n: 'incident.device' }),
    dev ? kv(['incident.protocol', `${dev.protocol} · ${dev.model || ''} · ${dev.ident}`], ['col.state', h(`span.badge.${dev.state}`, tOr(`fleet.${dev.state}`, dev.state))],
      ['incident.battery', dev.battery_pct !== null ? `${dev.battery_pct}%${dev.mains ? ' ⚡' : ''}` : null],
      ['incident.heartbeat', dev.last_seen ? `${clock(dev.last_seen)} (${dur(Date.now() - dev.last_seen)} ${t('time.ago')})` : null],
      ['incident.signal', dev.signal_pct !== null ? `${dev.signal_pct}%` : null]) : none());

  // --- actions
  const note = h('input', { testid: 'note-text', 'data-i18n-ph': 'action.note_ph', placeholder: t('action.note_ph') });
  const cmd = h('select', { testid: 'command' }, ['help_coming', 'locate', 'ring'].map((c) => h('option', { value: c, i18n: `action.cmd.${c}` })));
  const why = h('input', { testid: 'escalate-note', 'data-i18n-ph': 'action.escalate_ph', placeholder: t('action.escalate_ph') });
  const outcome = h('select', { testid: 'close-outcome' }, OUTCOMES.map((o) => h('option', { value: o, i18n: `outcome.${o}` })));
  const closeNote = h('input', { testid: 'close-note', 'data-i18n-ph': 'action.note_ph', placeholder: t('action.note_ph') });
  const actions = h('section.panel', { testid: 'actions' }, h('h2', { i18n: 'incident.actions' }), msg,
    h('div.actions',
      dev ? h('div.row', h('button.call-back', { testid: 'action-call-back', disabled: closed, i18n: 'action.call_back',
        onclick: act(() => post(`${base}/command`, { command: 'call_back' })) }), cmd,
        h('button', { testid: 'action-command', disabled: closed, i18n: 'action.command', onclick: act(() => post(`${base}/command`, { command: cmd.value })) })) : null,
      h('div.row', note, h('button', { testid: 'action-note', i18n: 'action.note', onclick: act(() => post(`${base}/notes`, { text: note.value })) })),
      h('div.row', why, h('button', { testid: 'action-escalate', disabled: closed, i18n: 'action.escalate', onclick: act(() => post(`${base}/escalate`, { note: why.value })) })),
      h('div.row', h('button', { testid: 'action-false-alarm', disabled: closed, i18n: 'action.false_alarm', onclick: act(() => post(`${base}/close`, { outcome: 'false_alarm', note: closeNote.value || null })) })),
      h('div.row', outcome, closeNote, h('button.primary', { testid: 'action-close', disabled: closed, i18n: 'action.close', onclick: act(() => post(`${base}/close`, { outcome: outcome.value, note: closeNote.value || null })) }))));

  // --- responders: the offers, then the picker
  const offered = ['pending', 'offered'];
  const offersTable = offers.length ? h('table', { testid: 'offers' }, h('tbody', offers.map((o) => h('tr', { testid: `offer-${o.responder_id}`, 'data-status': o.status },
    h('td', o.name), h('td', o.role ? tOr(`role.${o.role}`, o.role) : ''), h('td', h(`span.badge.${o.status}`, tOr(`offer.${o.status}`, o.status))),
    h('td', offered.includes(o.status) ? h('span.expires', { testid: `offer-expires-${o.responder_id}` }, h('span', { 'data-until': o.expires_at }, dur(Math.max(0, o.expires_at - Date.now())))) : clock(o.answered_at || o.sent_at)),
    h('td', o.delivery ? h(`span.badge.delivery-${o.delivery}`, { testid: `offer-delivery-${o.responder_id}`, 'data-delivery': o.delivery },
      t(`delivery.${o.delivery}`), o.delivery_channel ? ` · ${t(`channel.${o.delivery_channel}`)}` : '') : ''),
    h('td', callLink('responder', o.name, o.phone, rerender, `call-responder-${o.responder_id}`)))))) : h('p.muted', { i18n: 'incident.none' });
  const search = h('input', { type: 'search', testid: 'pick-search', value: pickQuery, 'data-i18n-ph': 'incident.pick_search', placeholder: t('incident.pick_search'),
    onchange: (e) => { pickQuery = e.target.value; rerender(); } });
  const all = h(`button.toggle${pickAll ? '.active' : ''}`, { testid: 'pick-all', 'data-on': pickAll ? '1' : '0', onclick: () => { pickAll = !pickAll; rerender(); } },
    pickAll ? '☑ ' : '☐ ', h('span', { i18n: 'incident.pick_all' }));
  const picker = h('div.picker', { testid: 'picker' }, h('h3', { i18n: 'incident.pick' }), h('div.row', search, all),
    h('table', { testid: 'candidates' }, h('thead', h('tr', ['col.name', 'col.kind', 'col.distance', 'col.available', 'col.skills', 'col.load', 'col.phone', 'col.actions'].map((k) => h('th', { i18n: k })))),
      h('tbody', cands.map((c) => h('tr', { testid: `candidate-${c.id}`, 'data-available': c.available ? '1' : '0', 'data-distance': c.distance_m ?? '' },
        h('td', c.name, c.same_grid ? ' ★' : ''), h('td', tOr(`kind.${c.kind}`, c.kind)), h('td', { testid: 'candidate-distance' }, metres(c.distance_m)),
        h('td', h(`span.badge.${c.available ? 'online' : 'silent'}`, t(c.available ? 'incident.available' : 'incident.unavailable'))),
        h('td', c.skills.join('、') || '—'), h('td', `${c.load}/${c.max_tasks}`),
        h('td', callLink('responder', c.name, c.phone, rerender, `call-candidate-${c.id}`)),
        h('td', c.offer ? h(`span.badge.${c.offer}`, tOr(`offer.${c.offer}`, c.offer))
          : h('button', { testid: `offer-to-${c.id}`, disabled: closed, i18n: 'incident.offer_to', onclick: act(() => post(`${base}/offer`, { responder_id: c.id })) })))))));
  const responders = h('section.panel', { testid: 'responders' }, h('h2', { i18n: 'incident.responders' }), offersTable, closed ? null : picker);

  const mapBox = h('div.map-box', { testid: 'incident-map' });
  keepInputs(v, () => v.replaceChildren(...[
    h('p', h('a', { href: '#/queue', i18n: 'incident.back' })),
    head,
    callForm(base, rerender),
    h('div.grid2',
      h('div', elder, procedure, timeline),
      h('div', actions, responders, device, h('section.panel', h('h2', { i18n: 'incident.map' }), mapBox)))].filter(Boolean)));
  const grid = (areas || []).filter((a) => a.id === el?.grid_id);
  const points = [];
  const eLat = inc.location?.lat ?? el?.lat, eLon = inc.location?.lon ?? el?.lon;
  if (eLat !== undefined && eLat !== null) points.push({ lat: eLat, lon: eLon, kind: 'elder', label: el?.name || t('map.elder'), testid: 'map-elder' });
  for (const o of offers) {
    if (o.lat === null || o.lat === undefined || !['pending', 'offered', 'accepted', 'arrived'].includes(o.status)) continue;
    const kind = offered.includes(o.status) ? 'offered' : 'accepted';
    points.push({ lat: o.lat, lon: o.lon, kind, label: o.name, testid: `map-${kind}-${o.responder_id}` });
  }
  incidentMap(mapBox, ctx.config.map, { areas: grid, points });
}
