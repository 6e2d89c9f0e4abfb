// Fetch wrapper for /api/v1: bearer token from sessionStorage, JSON in and out, errors as ApiError
// carrying the server's message, shown to the user by showError().
import { t } from './i18n.js';

const KEY = document.body?.dataset.page === 'app' ? 'onekey.app.token' : 'onekey.console.token';

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
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
    throw new ApiError(res.status, `${res.status} ${msg}`);
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}) => api('POST', p, b);
export const put = (p, b) => api('PUT', p, b);

export async function login(kind, name, password) {
  const r = await api('POST', '/auth/login', { kind, name, password });
  setToken(r.token);
  return r;
}

/** An error line inside `el` (replacing its content when `replace`). */
export function showError(el, err, replace = false) {
  const line = document.createElement('div');
  line.className = 'error';
  line.dataset.testid = 'error';
  line.setAttribute('role', 'alert');
  line.textContent = t('error.prefix') + (err?.message || String(err));
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
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

/** "3 min" style duration. */
export function dur(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} ${t('time.s')}`;
  if (s < 7200) return `${Math.floor(s / 60)} ${t('time.min')} ${s % 60} ${t('time.s')}`;
  return `${Math.floor(s / 3600)} ${t('time.h')} ${Math.floor((s % 3600) / 60)} ${t('time.min')}`;
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
  if (focused) container.querySelector(`[data-testid="${focused}"]`)?.focus();
}
