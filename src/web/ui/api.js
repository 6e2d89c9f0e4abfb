// The JSON API client shared by the console and the app: bearer token in sessionStorage, errors
// turned into exceptions carrying the server's message.

const KEY = 'onekey.token';

/** The session token, if logged in. */
export function token() { return sessionStorage.getItem(KEY); }

/** Logs in as `kind` (`operator` or `responder`) and keeps the token. */
export async function login(kind, name, password) {
  const body = await call('POST', '/api/v1/auth/login', { kind, name, password });
  sessionStorage.setItem(KEY, body.token);
  return body.principal;
}

/** Forgets the session. */
export async function logout() {
  try { await call('POST', '/api/v1/auth/logout'); } catch { /* already gone */ }
  sessionStorage.removeItem(KEY);
}

/** Calls the API; `body` is JSON unless it is a string (sent as text/csv). */
export async function call(method, path, body) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let payload;
  if (typeof body === 'string') { headers['Content-Type'] = 'text/csv'; payload = body; }
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const res = await fetch(path, { method, headers, body: payload });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    const message = json?.error?.message || `${res.status} ${res.statusText}`;
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return json;
}

/** An EventSource on an API stream with the token in the query (browsers cannot set headers). */
export function stream(path) {
  return new EventSource(`${path}?token=${encodeURIComponent(token() || '')}`);
}

/** Escapes text for HTML. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** Distance in metres between two points. */
export function metres(lat1, lon1, lat2, lon2) {
  const r = 6371000, rad = Math.PI / 180;
  const a = Math.sin((lat2 - lat1) * rad / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(a));
}

/** `mm:ss` or `h:mm:ss` for a number of seconds (negative shown with a minus). */
export function clock(seconds) {
  const s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
  const body = h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
  return seconds < 0 ? `-${body}` : body;
}

/** Local date and time of a Unix millisecond. */
export function when(ms) { return ms ? new Date(ms).toLocaleString() : '—'; }
