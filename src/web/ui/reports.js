// Reports for a chosen period: every incident counted (an emergency nobody acknowledged misses the
// answer target), the answer-time histogram against 60 s, time to responder and to scene, false
// alarms per model, and figures per operator and per grid, drawn with Apache ECharts (vendored,
// loaded on first use, SVG renderer); the period's incidents export as CSV.
import { t } from './i18n.js';
import { get, token, showError, h, dur } from './api.js';

let echartsReady = null;
function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  echartsReady = echartsReady || new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/assets/vendor/echarts/echarts.min.js';
    s.onload = () => resolve(window.echarts);
    s.onerror = () => { echartsReady = null; reject(new Error('echarts')); };
    document.head.append(s);
  });
  return echartsReady;
}

const DAY = 86_400_000;
const isoDay = (ms) => { const d = new Date(ms); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`; };
const period = { from: null, to: null };

function secs(v) { return v >= 3600 ? `${v / 3600}${t('time.h')}` : v >= 120 ? `${v / 60}${t('time.min')}` : `${v}${t('reports.seconds')}`; }
function bucketLabels(buckets) {
  let prev = 0;
  return buckets.map((b) => { const l = b.le_s === null ? `>${secs(prev)}` : `≤${secs(b.le_s)}`; prev = b.le_s ?? prev; return l; });
}

function chart(echarts, el, option) {
  const c = echarts.init(el, null, { renderer: 'svg' });
  c.setOption({ animation: false, grid: { left: 48, right: 16, top: 24, bottom: 40 }, tooltip: { trigger: 'axis' }, ...option });
  return c;
}

function histogramOption(dist, targetS) {
  const labels = bucketLabels(dist?.histogram || []);
  return {
    xAxis: { type: 'category', data: labels },
    yAxis: { type: 'value', minInterval: 1 },
    series: [{ type: 'bar', name: t('reports.count'), label: { show: true, position: 'top' },
      data: (dist?.histogram || []).map((b) => ({ value: b.count, itemStyle: { color: targetS !== undefined && (b.le_s === null || b.le_s > targetS) ? '#e76f51' : '#2a9d8f' } })) }],
  };
}

export async function renderReports(v) {
  const now = Date.now();
  period.from = period.from || isoDay(now - 29 * DAY);
  period.to = period.to || isoDay(now);
  const from = h('input', { type: 'date', testid: 'report-from', value: period.from });
  const to = h('input', { type: 'date', testid: 'report-to', value: period.to });
  const range = () => ({ since: new Date(`${from.value}T00:00:00`).getTime(), until: new Date(`${to.value}T00:00:00`).getTime() + DAY });
  const out = h('div', { testid: 'report-body' });
  const exportCsv = async () => {
    const { since, until } = range();
    try {
      const res = await fetch(`/api/v1/reports/incidents.csv?since=${since}&until=${until}`, { headers: { authorization: `Bearer ${token()}` } });
      if (!res.ok) throw new Error(`${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `onekey-incidents-${from.value}-${to.value}.csv` });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) { showError(out, e); }
  };
  v.replaceChildren(h('h1', { i18n: 'reports.title' }),
    h('div.filters', { testid: 'report-range' }, h('span', { i18n: 'reports.range' }), h('span', { i18n: 'reports.from' }), from, h('span', { i18n: 'reports.to' }), to,
      h('button.primary', { testid: 'report-apply', i18n: 'reports.apply', onclick: () => { period.from = from.value; period.to = to.value; renderReports(v); } }),
      h('button', { testid: 'report-export', i18n: 'reports.export', onclick: exportCsv })),
    out);
  let r, echarts;
  try {
    const { since, until } = range();
    [r, echarts] = await Promise.all([get(`/reports?since=${since}&until=${until}`), loadECharts()]);
  } catch (e) { showError(out, e); return; }
  const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
  const sec = (x) => (x === null || x === undefined ? '—' : dur(x * 1000));
  const stat = (key, val, testid) => h('div.panel.stat', h('span.muted', { i18n: key }), h('span.big', { testid }, String(val)));
  const box = (testid, height = 240) => h('div.echart', { testid, style: `height:${height}px` });
  const answerBox = box('chart-answer'), responderBox = box('chart-to-responder'), sceneBox = box('chart-to-scene');
  const falseBox = box('chart-false-alarms', 200), opBox = box('chart-operators'), gridBox = box('chart-grids');
  const table = (cols, rows, testid) => h('table', { testid }, h('thead', h('tr', cols.map((c) => h('th', { i18n: c })))), h('tbody', rows));
  out.replaceChildren(
    h('div.grid4', stat('reports.total', r.total, 'report-total'), stat('reports.closed', r.closed, 'report-closed'),
      stat('reports.within_target', pct(r.answer.share_within_target), 'report-answer-share'), stat('reports.unacked', r.answer.unacknowledged, 'report-unacked')),
    h('section.panel', h('h2', { i18n: 'reports.answer' }),
      h('p', `${t('reports.measured')}: `, h('b', { testid: 'report-answer-count' }, String(r.answer.count)),
        ` · ${t('col.within_target')}: `, h('b', { testid: 'report-within' }, String(r.answer.within_target)),
        ` · ${t('reports.unacked')}: ${r.answer.unacknowledged} · ${t('reports.pending')}: ${r.answer.pending}`), answerBox),
    h('div.grid2',
      h('section.panel', h('h2', { i18n: 'reports.to_responder' }),
        h('p', `${t('reports.count')}: ${r.to_responder.count} · ${t('reports.p50')} ${sec(r.to_responder.p50_s)} · ${t('reports.p90')} ${sec(r.to_responder.p90_s)}`), responderBox),
      h('section.panel', h('h2', { i18n: 'reports.to_scene' }),
        h('p', `${t('reports.count')}: ${r.to_scene.count} · ${t('reports.p50')} ${sec(r.to_scene.p50_s)} · ${t('reports.p90')} ${sec(r.to_scene.p90_s)}`), sceneBox)),
    h('div.grid2',
      h('section.panel', h('h2', { i18n: 'reports.per_operator' }), opBox,
        table(['col.operator', 'col.acknowledged', 'col.within_target', 'col.median_answer', 'col.closed'], r.operators.map((o) => h('tr', { testid: `report-operator-${o.operator}` },
          h('td', o.operator), h('td', { testid: 'acknowledged' }, String(o.acknowledged)), h('td', `${o.within_target}/${o.emergencies}`), h('td', sec(o.p50_answer_s)), h('td', { testid: 'closed' }, String(o.closed)))), 'report-operators')),
      h('section.panel', h('h2', { i18n: 'reports.per_grid' }), gridBox,
        table(['col.grid', 'col.incidents', 'col.emergencies', 'col.within_target', 'col.median_scene', 'col.false_alarms'], r.grids.map((g) => h('tr', { testid: `report-grid-${g.grid || 'none'}` },
          h('td', g.grid || t('unknown')), h('td', { testid: 'incidents' }, String(g.incidents)), h('td', String(g.emergencies)), h('td', String(g.within_target)), h('td', sec(g.p50_to_scene_s)), h('td', String(g.false_alarms)))), 'report-grids'))),
    h('div.grid2',
      h('section.panel', h('h2', { i18n: 'reports.service' }),
        h('p.big', { testid: 'report-service' }, `${r.service.within_24h} / ${r.service.count} (${pct(r.service.share)})`)),
      h('section.panel', h('h2', { i18n: 'reports.false_alarms' }), falseBox)));
  chart(echarts, answerBox, histogramOption(r.answer, r.answer.target_s));
  chart(echarts, responderBox, histogramOption(r.to_responder));
  chart(echarts, sceneBox, histogramOption(r.to_scene));
  chart(echarts, falseBox, { grid: { left: 120, right: 40, top: 8, bottom: 24 }, xAxis: { type: 'value', max: 1, axisLabel: { formatter: (x) => `${x * 100}%` } },
    yAxis: { type: 'category', data: r.false_alarms.map((m) => m.model || t('unknown')) },
    series: [{ type: 'bar', data: r.false_alarms.map((m) => m.rate), itemStyle: { color: '#e76f51' }, label: { show: true, position: 'right', formatter: (p) => pct(p.value) } }] });
  chart(echarts, opBox, { legend: { top: 0 }, xAxis: { type: 'category', data: r.operators.map((o) => o.operator) }, yAxis: { type: 'value', minInterval: 1 },
    series: [{ type: 'bar', name: t('col.acknowledged'), data: r.operators.map((o) => o.acknowledged) }, { type: 'bar', name: t('col.closed'), data: r.operators.map((o) => o.closed) }] });
  chart(echarts, gridBox, { legend: { top: 0 }, xAxis: { type: 'category', data: r.grids.map((g) => g.grid || t('unknown')) }, yAxis: { type: 'value', minInterval: 1 },
    series: [{ type: 'bar', name: t('col.incidents'), data: r.grids.map((g) => g.incidents) }, { type: 'bar', name: t('col.emergencies'), data: r.grids.map((g) => g.emergencies) }] });
}
