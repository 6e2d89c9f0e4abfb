// The responders' app service worker (served as /app-sw.js, scope /app): keeps the app's shell so
// that it opens without a network, and opens the app when a task notification is tapped. The API
// is never cached: tasks always come from the server.
const CACHE = 'onekey-app-v1';
const SHELL = ['/app', '/assets/app.js', '/assets/api.js', '/assets/i18n.js', '/assets/kinds.js', '/assets/style.css',
  '/assets/app.webmanifest', '/assets/icon-192.png', '/assets/icon-512.png'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The shell: the network first (an upgraded server serves new files), the cache when offline.
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return;
  if (!SHELL.includes(url.pathname)) return;
  e.respondWith(fetch(e.request).then((res) => {
    if (res.ok) { const copy = res.clone(); caches.open(CACHE).then((c) => c.put(e.request, copy)); }
    return res;
  }).catch(() => caches.match(e.request, { ignoreSearch: true })));
});

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  e.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
    const open = list.find((c) => new URL(c.url).pathname === '/app');
    return open ? open.focus() : self.clients.openWindow('/app');
  }));
});
