// The volunteer app on a 390×844 phone: the sign-in asks for the phone number (and says what went
// wrong in Chinese); it is an installable PWA (manifest, icons, service worker) that opens offline;
// the duty switch shows what the server has; a new offer while the app is in the background
// vibrates and raises a system notification with the kind, the elder and the distance; declining
// and arriving ask first; after accepting the phone numbers and a call-the-centre button show.
import { env, URL, T, page, shot, step, check, run, raise } from './lib.mjs';

const elderName = env('ONEKEY_ELDER_NAME');
const elderPhone = env('ONEKEY_ELDER_PHONE');
const lat = Number(env('ONEKEY_RESPONDER_LAT')), lon = Number(env('ONEKEY_RESPONDER_LON'));

await run(async (browser) => {
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: 'zh-CN', geolocation: { latitude: lat, longitude: lon }, permissions: ['geolocation', 'notifications'],
  });
  // Records vibrations (the phone's motor is not observable otherwise).
  await phone.addInitScript(() => { window.__vibrations = []; navigator.vibrate = (p) => { window.__vibrations.push(p); return true; }; });
  const app = await page(phone, 'app');
  await app.goto(`${URL}/app`);

  step('sign-in asks for the phone number; a wrong password is explained in Chinese');
  check((await app.getByTestId('app-login-label').textContent()) === '手机号', 'label: phone number');
  check(await app.getByTestId('app-login-name').getAttribute('type') === 'tel', 'a phone keypad');
  await app.getByTestId('app-login-name').fill(env('ONEKEY_RESPONDER_PHONE'));
  await app.getByTestId('app-login-password').fill('wrong-password');
  await app.getByTestId('app-login-submit').click();
  const err = app.getByTestId('error');
  await err.waitFor({ timeout: T });
  check(!/401|login required/.test(await err.textContent()) && (await err.textContent()).includes('密码'), `translated: ${await err.textContent()}`);
  await app.getByTestId('app-login-password').fill(env('ONEKEY_RESPONDER_PASSWORD'));
  await app.getByTestId('app-login-submit').click();
  await app.getByTestId('no-tasks').waitFor({ timeout: T });

  step('installable: manifest, icons, service worker');
  const manifest = await app.evaluate(async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json());
  check(manifest.start_url === '/app' && manifest.display === 'standalone', 'manifest start and display');
  check(manifest.icons.some((i) => i.sizes === '512x512') && manifest.icons.some((i) => i.sizes === '192x192'), 'icons 192 and 512');
  const icon = await app.evaluate(async () => (await fetch('/assets/icon-512.png')).headers.get('content-type'));
  check(icon === 'image/png', 'icon served');
  const sw = await app.evaluate(async () => (await navigator.serviceWorker.ready).active.scriptURL);
  check(sw.endsWith('/app-sw.js'), `service worker active: ${sw}`);

  step('the duty switch shows what the server has, also after a reload');
  await app.getByTestId('duty-toggle').click();
  await app.locator('[data-testid=duty-status][data-on="1"]').waitFor({ timeout: T });
  await app.reload();
  await app.locator('[data-testid=duty-status][data-on="1"]').waitFor({ timeout: T });
  check((await app.getByTestId('duty-status').textContent()).includes('在岗中'), 'on duty after reload');
  check((await app.getByTestId('call-centre').getAttribute('href')) === 'tel:12349', 'call the centre');

  step('an offer that goes away (the incident was closed at the centre) is not silently dropped');
  await raise('fall', 2);
  await app.getByTestId('task-accept').waitFor({ timeout: 60_000 });
  const login = await (await fetch(`${URL}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: env('ONEKEY_OPERATOR'), password: env('ONEKEY_OPERATOR_PASSWORD') }) })).json();
  const fall = (await (await fetch(`${URL}/api/v1/responder/tasks`, { headers: { authorization: `Bearer ${await app.evaluate(() => sessionStorage.getItem('onekey.app.token'))}` } })).json())[0].offer.incident_id;
  await fetch(`${URL}/api/v1/incidents/${fall}/close`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
    body: JSON.stringify({ outcome: 'false_alarm' }) });
  await app.getByTestId('offer-gone').waitFor({ timeout: T });
  check((await app.getByTestId('offer-gone').textContent()).includes(`#${fall}`), 'the app says the offer went away');
  await app.getByTestId('no-tasks').waitFor({ timeout: T });

  step('a new offer while another page is in front: vibration and a system notification');
  const other = await phone.newPage();
  await other.goto(`${URL}/assets/icon-192.png`);
  await other.bringToFront();
  await raise('sos', 1);
  await app.getByTestId('task-accept').waitFor({ timeout: 60_000 });
  let note = null;
  for (let i = 0; i < 40 && !note; i++) {
    const notes = await app.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body })));
    note = notes.find((n) => n.title.includes('紧急呼叫'));
    if (!note) await app.waitForTimeout(500);
  }
  check(note, `a system notification for the SOS (${await app.evaluate(() => document.body.dataset.notified)})`);
  check(note.body.includes(elderName) && /\d+ m/.test(note.body), `notification: ${JSON.stringify(note)}`);
  check((await app.evaluate(() => window.__vibrations.length)) >= 1, 'vibrated');
  await other.close();
  await app.bringToFront();
  check((await app.getByTestId('task-kind').textContent()).includes('紧急呼叫'), 'card: kind');
  check((await app.getByTestId('task-elder').textContent()) === elderName, 'card: elder');
  check(/\d+ m/.test(await app.getByTestId('task-distance').textContent()), 'card: distance');
  await shot(app, 'app-offer.png');

  step('decline asks first; cancelling keeps the offer');
  await app.getByTestId('task-decline').click();
  check((await app.getByTestId('confirm-text').textContent()).includes('确定拒绝'), 'asks before declining');
  await app.getByTestId('confirm-no').click();
  check(await app.getByTestId('task-accept').count() === 1, 'still offered');

  step('accept: phone numbers and the right message');
  await app.getByTestId('task-accept').click();
  await app.locator('.toast', { hasText: '已接单' }).waitFor({ timeout: T });
  await app.getByTestId('task-call-elder').waitFor({ timeout: T });
  check(await app.getByTestId('task-call-elder').getAttribute('href') === `tel:${elderPhone}`, 'elder phone');
  check((await app.getByTestId('task-call-contact-0').getAttribute('href')).startsWith('tel:'), 'key holder phone');
  check((await app.getByTestId('task-contacts').textContent()).includes('持有钥匙'), 'key holder marked');
  await shot(app, 'app-accepted.png');

  step('arrived asks first');
  await app.getByTestId('task-arrived').click();
  check((await app.getByTestId('confirm-text').textContent()).includes('确认已到达'), 'asks before arrived');
  await app.getByTestId('confirm-yes').click();
  await app.locator('.toast', { hasText: '已标记到达' }).waitFor({ timeout: T });
  await app.getByTestId('task-completed').waitFor({ timeout: T });

  step('offline: the app still opens from its service worker and says it is offline');
  await phone.setOffline(true);
  await app.reload();
  await app.getByTestId('offline').waitFor({ state: 'visible', timeout: T });
  await shot(app, 'app-offline.png');
  await phone.setOffline(false);
});
