// Fetch wrapper for /api/v1: bearer token from sessionStorage, JSON in and out, errors as ApiError
// carrying the server's stable code and message, shown to the user translated by showError(). The
// session is renewed while the page is open; when it ends (expired, revoked, server says 401) a
// banner says so, because the live feed and the alarm sound stop with it. Live streams open with
// single-use tickets (openStream): a token never goes into a URL.
import { t } from './i18n.js';

const KEY = document.body?.dataset.page === 'app' ? 'onekey.app.token' : 'onekey.console.token';

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

const CODES = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 422: 'taken', 503: 'unavailable', 500: 'internal' };

/** What went wrong, in the user's language: the translated kind of error, then the server's words. */
export function describe(err) {
  if (!(err instanceof ApiError)) return err?.message || String(err);
  if (err.status === 0) return t('err.network');
  const code = err.code || CODES[err.status] || 'internal';
  const kind = t(`err.${code}`);
  const known = kind !== `err.${code}`;
  return known ? (err.message && code !== 'unauthorized' && code !== 'internal' ? `${kind}（${err.message}）` : kind) : `${err.status} ${err.message}`;
}

export const token = () => sessionStorage.getItem(KEY);
export const setToken = (v) => (v ? sessionStorage.setItem(KEY, v) : sessionStorage.removeItem(KEY));

export async function api(method, path, body, { raw = false, contentType } = {}) {
  const headers = {};
  const tok = token();
  if (tok) headers.authorization = `Bearer ${tok}`;
  let payload;
  if (body !== undefined) {
    if (raw) { payload = body; headers['content-type'] = contentType || 'text/plain'; }
    else { payload = JSON.stringify(body); headers['content-type'] = 'application/json'; }
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, e.message);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const msg = data?.error?.message || data?.message || (typeof data === 'string' && data) || res.statusText;
    const err = new ApiError(res.status, msg, data?.error?.code);
    if (res.status === 401 && !path.startsWith('/auth/login')) {
      if (tok) sessionLost();
      window.dispatchEvent(new CustomEvent('onekey:unauthorized'));
    }
    throw err;
  }
  return data;
}

// ---------- session renewal and its end ----------

const RENEW_MS = 5 * 60 * 1000;
let renewTimer = null;
const LOST = {
  'zh-CN': '会话已结束：实时更新和警报声已停止。请重新登录。',
  en: 'Your session has ended: live updates and the alarm sound have stopped. Please log in again.',
};
const RELOGIN = { 'zh-CN': '重新登录', en: 'Log in again' };

/** Shows, once, that the session is gone (and so the live feed and alarm sound with it). */
export function sessionLost() {
  clearInterval(renewTimer);
  renewTimer = null;
  if (document.getElementById('session-lost')) return;
  const lang = (document.documentElement.lang || 'zh-CN').startsWith('en') ? 'en' : 'zh-CN';
  const bar = document.createElement('div');
  bar.id = 'session-lost';
  bar.dataset.testid = 'session-lost';
  bar.setAttribute('role', 'alert');
  bar.style.cssText = 'position:fixed;top:0;left:0;right:0;z-index:1000;padding:12px;background:#b00020;color:#fff;font-weight:bold;text-align:center';
  bar.textContent = LOST[lang] + ' ';
  const again = document.createElement('button');
  again.dataset.testid = 'session-relogin';
  again.textContent = RELOGIN[lang];
  again.onclick = () => { setToken(null); location.reload(); };
  bar.append(again);
  document.body.append(bar);
}

async function renew() {
  if (!token()) return;
  try {
    await api('POST', '/auth/renew');
  } catch (e) {
    if (e.status === 401) sessionLost();
  }
}

/** Keeps the session alive while the page is open (and checks it at once). */
export function keepSessionAlive() {
  clearInterval(renewTimer);
  document.getElementById('session-lost')?.remove();
  renewTimer = setInterval(renew, RENEW_MS);
  renew();
}

/**
 * A live stream (Server-Sent Events) opened with a single-use ticket, with EventSource's
 * interface (addEventListener, onopen, onerror, close). When the connection drops it fetches a new
 * ticket and reconnects, resuming after the last event id; without a session it stops and says so.
 */
export function openStream(path) {
  const target = new EventTarget();
  const kinds = new Set();
  const s = {
    onopen: null, onerror: null, es: null, closed: false, lastId: null, timer: null,
    addEventListener(kind, fn) {
      target.addEventListener(kind, fn);
      if (!kinds.has(kind)) { kinds.add(kind); s.es?.addEventListener(kind, forward); }
    },
    close() { s.closed = true; clearTimeout(s.timer); s.es?.close(); },
  };
  function forward(e) {
    if (e.lastEventId) s.lastId = e.lastEventId;
    target.dispatchEvent(new MessageEvent(e.type, { data: e.data, lastEventId: e.lastEventId }));
  }
  const retry = () => { if (!s.closed) s.timer = setTimeout(connect, 2000); };
  async function connect() {
    if (s.closed) return;
    let ticket;
    try {
      ticket = (await api('POST', '/auth/ticket', { path: `/api/v1${path}` })).ticket;
    } catch (e) {
      s.onerror?.(e);
      if (e.status !== 401) retry();
      return;
    }
    const q = new URLSearchParams({ ticket });
    if (s.lastId) q.set('after', s.lastId);
    const es = new EventSource(`/api/v1${path}?${q}`);
    s.es = es;
    for (const k of kinds) es.addEventListener(k, forward);
    es.onopen = (e) => s.onopen?.(e);
    es.onerror = (e) => { es.close(); s.onerror?.(e); retry(); };
  }
  connect();
  return s;
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}) => api('POST', p, b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

export async function login(kind, name, password) {
  const r = await api('POST', '/auth/login', { kind, name, password });
  setToken(r.token);
  keepSessionAlive();
  return r;
}

/** An error line inside `el` (replacing its content when `replace`). */
export function showError(el, err, replace = false) {
  const line = document.createElement('div');
  line.className = 'error';
  line.dataset.testid = 'error';
  line.setAttribute('role', 'alert');
  line.dataset.code = err?.code || '';
  line.textContent = t('error.prefix') + describe(err);
  if (replace) el.replaceChildren(line); else el.append(line);
  return line;
}

/** A toast in the page's status bar. */
export function toast(msg, kind = 'info') {
  let bar = document.getElementById('toasts');
  if (!bar) { bar = document.createElement('div'); bar.id = 'toasts'; document.body.append(bar); }
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = msg;
  bar.append(el);
  setTimeout(() => el.remove(), 5000);
}

/** Element builder: h('div.cls', {attrs}, ...children). */
export function h(tag, attrs, ...kids) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'i18n') { el.dataset.i18n = v; el.textContent = t(v); }
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

/** A duration as a clock, the same everywhere: `0:45`, `12:05`, `1:02:03` (the sign is the caller's). */
export function dur(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const two = (n) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
  if (s < 86400) return `${Math.floor(s / 3600)}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
  return `${Math.floor(s / 86400)}${t('time.d')} ${Math.floor((s % 86400) / 3600)}${t('time.h')}`;
}

/** Metres as the app and the picker show them. */
export function metres(m) {
  if (m === null || m === undefined || !Number.isFinite(m)) return '—';
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

export function clock(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return d.toLocaleString(document.documentElement.lang || 'zh-CN', { hour12: false });
}

/** Re-renders `container` with `fn()` keeping what the user typed or chose in its test-id'd fields. */
export function keepInputs(container, fn) {
  const saved = new Map();
  for (const el of container.querySelectorAll('input[data-testid], select[data-testid], textarea[data-testid]')) {
    if (el.type !== 'file') saved.set(el.dataset.testid, el.value);
  }
  const focused = document.activeElement?.dataset?.testid;
  fn();
  for (const [id, value] of saved) {
    const el = container.querySelector(`[data-testid="${id}"]`);
    if (el && value !== '' && [...(el.options || [{ value }])].some((o) => o.value === value)) el.value = value;
  }
  if (focused) container.querySelector(`[data-testid="${focused}"]`)?.focus({ preventScroll: true });
}
